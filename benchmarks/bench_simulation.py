"""Benchmark: seconds to simulate movies, an EER movie, a tilt series and a session with semc.simulation.

Usage: python benchmarks/bench_simulation.py [--size ci|realistic] [--cases 1k,k3,eer,tilt41,session100] [--repeats N]

Cases (each run in a fresh child process, outputs in a temporary folder that is removed):

- ``1k``: ``simulate_movie`` in memory, 1024² × 30 frames, 40 particles, 1 e/Å²/frame (the fixture path);
- ``k3``: ``movie_write`` of a K3-size movie (4092 × 5760 × 40 frames) as LZW uint8 TIFF, with truth,
  clean sum, gain and defects;
- ``eer``: ``movie_write`` of a 4096² EER movie of 800 detector frames at 0.0182 e/px/frame
  (0.725 Å pixels), rendered in fractions of 20 frames, 65001 coding;
- ``tilt41``: one 41-tilt dose-symmetric series (−60..60°, step 3°), 1024² at 2 Å, 30 particles,
  8-frame TIFF movies per tilt, stack, noise-free stack, mdoc, rawtlt, truth;
- ``session100``: a files-only session of 100 exposures of the CI camera preset (``small``: 1024² × 10
  frames MRC since commit c9f1bb5, 512² before) written at once (``session<N>``: N exposures).

``--size ci`` runs ``1k`` and ``session10``; ``realistic`` every case above.

Prints a markdown table: median and min wall seconds of the repeats, and peak RSS of the child.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from sizes import size_apply, size_argument

CASES = ("1k", "k3", "eer", "tilt41", "session100")
SIZE_DEFAULTS = {"ci": {"cases": "1k,session10", "repeats": 3}, "realistic": {"cases": ",".join(CASES), "repeats": 3}}


def _case(name: str, out: str) -> None:
    from semc.simulation.types import MovieSpec, SpecimenSpec

    if name == "1k":
        from semc.simulation.movie import simulate_movie

        simulate_movie(MovieSpec(shape=(1024, 1024), n_frames=30), seed=1)
    elif name == "k3":
        from semc.simulation.writers import movie_write

        spec = MovieSpec(shape=(4092, 5760), n_frames=40, pixel_size_angstrom=0.826,
                         dose_per_frame_e_per_a2=1.25, specimen=SpecimenSpec(n_particles=150))
        movie_write(spec, 1, directory=out, name="k3", fmt="tiff")
    elif name == "eer":
        from semc.simulation.writers import movie_write

        spec = MovieSpec(shape=(4096, 4096), n_frames=800, pixel_size_angstrom=0.725,
                         dose_per_frame_e_per_a2=0.0182 / 0.725**2, specimen=SpecimenSpec(n_particles=150))
        movie_write(spec, 1, directory=out, name="eer", fmt="eer", eer_raw_frames_per_fraction=20)
    elif name == "tilt41":
        from semc.simulation.tiltseries import tiltseries_config_from_dict, tiltseries_run

        tiltseries_run(tiltseries_config_from_dict({
            "root": os.path.join(out, "ts"), "n_series": 1, "processes": 1, "shape": [1024, 1024],
            "pixel_size_angstrom": 2.0, "tilt_step_degree": 3, "frames_per_tilt": 8,
            "assembler_options": {"n_particles": 30, "models": ["apoferritin", "ribosome", "globular"]}}))
    elif name.startswith("session") and name[7:].isdigit():
        from pathlib import Path

        from semc.simulation.session import SessionSpec, session_plan, session_run

        plan = session_plan(SessionSpec(name="bench", root=Path(out), n_exposures=int(name[7:]), camera="small",
                                        n_particles=10))
        session_run(plan, realtime=False)
    else:
        raise SystemExit(f"unknown case {name}")


def _child(name: str) -> None:
    out = tempfile.mkdtemp(prefix=f"bench_sim_{name}_")
    try:
        t0 = time.perf_counter()
        _case(name, out)
        seconds = time.perf_counter() - t0
    finally:
        shutil.rmtree(out, ignore_errors=True)
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(json.dumps({"seconds": seconds, "rss_gb": rss_gb}))


def _versions() -> str:
    import imagecodecs
    import numba
    import numpy
    import scipy
    import tifffile

    return (f"Python {platform.python_version()}, numpy {numpy.__version__}, scipy {scipy.__version__}, "
            f"numba {numba.__version__}, tifffile {tifffile.__version__}, imagecodecs {imagecodecs.__version__}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size_argument(parser)
    parser.add_argument("--cases", default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = size_apply(parser.parse_args(), SIZE_DEFAULTS)
    if args.child:
        _child(args.child)
        return 0
    rows = []
    for name in args.cases.split(","):
        runs = []
        for _ in range(args.repeats):
            res = subprocess.run([sys.executable, __file__, "--child", name], capture_output=True, text=True,
                                 check=False)
            if res.returncode != 0:
                print(res.stderr, file=sys.stderr)
                return 1
            runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
        secs = [r["seconds"] for r in runs]
        rows.append((name, statistics.median(secs), min(secs), max(r["rss_gb"] for r in runs), secs))
    print(f"Machine: {platform.node()} ({os.cpu_count()} CPUs, {platform.machine()}), {_versions()}")
    print(f"Command: python benchmarks/bench_simulation.py --size {args.size} --cases {args.cases} "
          f"--repeats {args.repeats}")
    print(f"SEMC_FFT_WORKERS={os.environ.get('SEMC_FFT_WORKERS', '(default: all CPUs)')}\n")
    print("| case | median s | min s | peak RSS GB | every run, s |")
    print("|---|---|---|---|---|")
    for name, med, lo, rss, secs in rows:
        print(f"| {name} | {med:.2f} | {lo:.2f} | {rss:.2f} | {', '.join(f'{v:.2f}' for v in secs)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
