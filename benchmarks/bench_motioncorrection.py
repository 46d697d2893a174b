"""Benchmark: SEMC motion correction vs RELION 3.1.3 --use_own on the same synthetic movies.

Usage: python benchmarks/bench_motioncorrection.py [--size ci|realistic] [--sizes k3,1k] [--repeats N] [--no-relion]

``--size ci`` runs the 1k movie only; ``realistic`` k3, eer and 1k (3 repeats each).

Movies follow algorithms.md §9: low-pass noise specimen (15 % contrast) moved
along a known 12.9 px trajectory, Poisson at 1 e/px/frame, uint8 LZW TIFF,
with a gain reference (all ones plus 2 % noise). The EER movie (4096^2, 800
detector frames at 0.0182 e/px/frame, 65001 coding, no gain) is rendered at 4K
into 40 fractions of 20 frames by both programs. Both programs use 5x5
patches and dose weighting; RELION runs with OMP_NUM_THREADS=1 and --j 2.
Prints a markdown table (median of the repeats; peak RSS from ru_maxrss of the
child process).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import scipy.fft
from sizes import size_apply, size_argument

SIZES = {"k3": (4092, 5760, 40), "1k": (1024, 1024, 40), "eer": (4096, 4096, 800)}
EER_FRAMES_PER_FRACTION = 20
EER_DOSE_PER_FRAME = 0.0182  # e/px per detector frame (algorithms.md §8.2)
SIZE_DEFAULTS = {"ci": {"sizes": "1k", "repeats": 3}, "realistic": {"sizes": "k3,eer,1k", "repeats": 3}}


def make_movie(path: str, gain_path: str, shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    import mrcfile
    import tifffile

    ny, nx, n = shape
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(ny).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(nx).astype(np.float32)[None, :]
    spec = scipy.fft.rfft2(rng.standard_normal((ny, nx), dtype=np.float32), workers=2)
    spec *= np.exp(-(fx**2 + fy**2) / (2 * 0.06**2))
    img = scipy.fft.irfft2(spec, s=(ny, nx), workers=2)
    img = 1.0 + 0.15 * img / img.std()
    spec = scipy.fft.rfft2(img, workers=2)
    t = np.arange(n)
    motion = np.stack([6 * (1 - np.exp(-t / 4)) + 0.15 * t, -4 * (1 - np.exp(-t / 5)) + 0.10 * t], 1)
    gain = (1.0 + 0.02 * rng.standard_normal((ny, nx))).astype(np.float32)
    with tifffile.TiffWriter(path, bigtiff=False) as tif:
        for i in range(n):
            ramp = np.exp(-2j * np.pi * (fx * motion[i, 0] + fy * motion[i, 1])).astype(np.complex64)
            frame = scipy.fft.irfft2(spec * ramp, s=(ny, nx), workers=2)
            counts = rng.poisson(np.clip(frame, 0, None) / gain).astype(np.uint8)
            tif.write(counts, compression="lzw")
    with mrcfile.new(gain_path, overwrite=True) as mrc:
        mrc.set_data(gain)
    return motion


def make_eer(path: str, shape: tuple[int, int, int], seed: int = 0) -> None:
    """EER movie: events drawn from the moved specimen density, one fraction's motion per 20 frames."""
    from semc.base.io import write_eer

    ny, nx, n = shape
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(ny).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(nx).astype(np.float32)[None, :]
    spec = scipy.fft.rfft2(rng.standard_normal((ny, nx), dtype=np.float32), workers=2)
    spec *= np.exp(-(fx**2 + fy**2) / (2 * 0.06**2))
    img = scipy.fft.irfft2(spec, s=(ny, nx), workers=2)
    spec = scipy.fft.rfft2(1.0 + 0.15 * img / img.std(), workers=2)
    n_fr = n // EER_FRAMES_PER_FRACTION
    t = np.arange(n_fr)
    motion = np.stack([6 * (1 - np.exp(-t / 4)) + 0.15 * t, -4 * (1 - np.exp(-t / 5)) + 0.10 * t], 1)

    def frames():
        for f in range(n_fr):
            ramp = np.exp(-2j * np.pi * (fx * motion[f, 0] + fy * motion[f, 1])).astype(np.complex64)
            density = np.clip(scipy.fft.irfft2(spec * ramp, s=(ny, nx), workers=2), 0, None).ravel()
            # the fraction's events, each given to one of its detector frames at random
            counts = rng.poisson(density * (EER_DOSE_PER_FRAME * EER_FRAMES_PER_FRACTION))
            pixels = np.repeat(np.arange(ny * nx), counts)
            owner = rng.integers(0, EER_FRAMES_PER_FRACTION, pixels.size)
            order = np.argsort(owner, kind="stable")
            bounds = np.searchsorted(owner[order], np.arange(EER_FRAMES_PER_FRACTION + 1))
            for k in range(EER_FRAMES_PER_FRACTION):
                idx = np.unique(pixels[order[bounds[k] : bounds[k + 1]]])
                y, x = np.divmod(idx, nx)
                yield (x * 4 + rng.integers(0, 4, x.size), y * 4 + rng.integers(0, 4, y.size))

    write_eer(path, frames(), sensor_shape=(ny, nx), pixel_size_angstrom=1.0)


def _in_child(fn, *args) -> None:
    """Run a generator in a forked child so this process stays small (peak RSS of later children)."""
    import multiprocessing

    proc = multiprocessing.get_context("fork").Process(target=fn, args=args)
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        raise RuntimeError(f"{fn.__name__} failed with exit code {proc.exitcode}")


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}):\n{text[-3000:]}")
    return wall, usage.ru_maxrss * 1024, text


def ours(movie: str, gain: str | None, out: str) -> tuple[float, int, str]:
    cmd = [sys.executable, "-c", ("import sys; from semc.motioncorrection.cli import motioncor2_main; "
           "sys.exit(motioncor2_main())"), "-OutMrc", out, "-Patch", "5", "5", "-PixSize", "1.0", "-kV", "300"]
    if movie.endswith(".eer"):
        fmint = out + ".fmint.txt"
        with open(fmint, "w") as fh:
            fh.write(f"{SIZES['eer'][2]} {EER_FRAMES_PER_FRACTION} {EER_DOSE_PER_FRAME}\n")
        cmd += ["-InEer", movie, "-FmIntFile", fmint, "-FmDose", str(EER_DOSE_PER_FRAME * EER_FRAMES_PER_FRACTION)]
    else:
        cmd += ["-InTiff", movie, "-Gain", gain, "-FmDose", "1.0"]
    return timed(cmd)


STAGES = """
import json, sys
from semc.motioncorrection.api import DetectorReferences, correct_movie_file
from semc.motioncorrection.types import MotionCorrectionParams
movie, gain = sys.argv[1], sys.argv[2] or None
groups = ((%d, %d, %r),) if movie.endswith(".eer") else None
p = MotionCorrectionParams(patches_xy=(5, 5), pixel_size_angstrom=1.0, dose_per_frame_e_per_a2=1.0)
r = correct_movie_file(movie, output_path=None, params=p, frame_groups=groups,
                       references=DetectorReferences(gain_path=gain))
print(json.dumps({k: round(v, 2) for k, v in r.timings_s.items()}))
""" % (SIZES["eer"][2], EER_FRAMES_PER_FRACTION, EER_DOSE_PER_FRAME)


def stages(movie: str, gain: str | None) -> str:
    """Seconds per stage of one in-process API run (read, prepare, align_global, align_local, sum, ...)."""
    _, _, out = timed([sys.executable, "-c", STAGES, movie, gain or ""])
    return out.strip().splitlines()[-1]


def relion(movie: str, gain: str | None, outdir: str) -> tuple[float, int, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    dose = EER_DOSE_PER_FRAME * EER_FRAMES_PER_FRACTION if movie.endswith(".eer") else 1.0
    cmd = ["relion_run_motioncorr", "--i", movie, "--o", outdir + "/", "--use_own", "--j", "2",
           "--angpix", "1.0", "--voltage", "300", "--dose_per_frame", str(dose), "--preexposure", "0",
           "--dose_weighting", "--patch_x", "5", "--patch_y", "5", "--bfactor", "150", "--bin_factor", "1"]
    if movie.endswith(".eer"):
        cmd += ["--eer_grouping", str(EER_FRAMES_PER_FRACTION), "--eer_upsampling", "1"]
    else:
        cmd += ["--gainref", gain]
    return timed(cmd, env)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    size_argument(ap)
    ap.add_argument("--sizes", default=None)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--no-relion", action="store_true")
    opts = size_apply(ap.parse_args(), SIZE_DEFAULTS)
    rows = []
    work = tempfile.mkdtemp(prefix="bench_mc_")
    print(f"command: python benchmarks/bench_motioncorrection.py --size {opts.size} --sizes {opts.sizes} --repeats {opts.repeats}",
          file=sys.stderr)
    try:
        for name in opts.sizes.split(","):
            shape = SIZES[name]
            if name == "eer":
                movie, gain = os.path.join(work, "eer.eer"), None
                _in_child(make_eer, movie, shape)
                decoded_gb = shape[0] * shape[1] * (shape[2] // EER_FRAMES_PER_FRACTION) * 4 / 1e9
            else:
                movie, gain = os.path.join(work, f"{name}.tif"), os.path.join(work, f"{name}_gain.mrc")
                _in_child(make_movie, movie, gain, shape)
                decoded_gb = shape[0] * shape[1] * shape[2] * 4 / 1e9
            res = {"ours": [], "relion": []}
            for r in range(opts.repeats):
                res["ours"].append(ours(movie, gain, os.path.join(work, f"{name}_{r}.mrc")))
                if not opts.no_relion and shutil.which("relion_run_motioncorr"):
                    res["relion"].append(relion(movie, gain, os.path.join(work, f"relion_{name}_{r}")))
            stage_line = stages(movie, gain)
            o = statistics.median(t for t, _, _ in res["ours"])
            o_rss = max(m for _, m, _ in res["ours"])
            rel = statistics.median(t for t, _, _ in res["relion"]) if res["relion"] else float("nan")
            rel_rss = max((m for _, m, _ in res["relion"]), default=0)
            rows.append((name, shape, o, rel, o / rel, o_rss / 1e9, rel_rss / 1e9, decoded_gb, stage_line))
            print(f"done {name}: ours {[round(t, 1) for t, _, _ in res['ours']]} s, "
                  f"RELION {[round(t, 1) for t, _, _ in res['relion']]} s; {stage_line}", file=sys.stderr, flush=True)
            for f in (movie, gain):
                if f:
                    os.remove(f)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    import numba
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs; python {platform.python_version()}, "
          f"numpy {np.__version__}, scipy {scipy.__version__}, numba {numba.__version__}")
    print(f"command: python benchmarks/bench_motioncorrection.py --size {opts.size} --sizes {opts.sizes} --repeats {opts.repeats}")
    print("settings: 5x5 patches, dose weighting, gain; RELION 3.1.3 --use_own --j 2, OMP_NUM_THREADS=1\n")
    print("| movie | frames (y x n) | ours, s (median) | RELION, s (median) | ratio | ours peak RSS, GB "
          "| RELION peak RSS, GB | decoded movie (float32 frames/fractions), GB |")
    print("|---|---|---|---|---|---|---|---|")
    for name, shape, o, rel, ratio, orss, rrss, dec, _ in rows:
        print(f"| {name} | {shape[0]}x{shape[1]}x{shape[2]} | {o:.1f} | {rel:.1f} | {ratio:.2f} | {orss:.2f} "
              f"| {rrss:.2f} | {dec:.2f} |")
    print("\nours, seconds per stage (one API run in a fresh process; 'ours' above is the whole CLI process):\n")
    for name, *_, stage_line in rows:
        print(f"- {name}: {stage_line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
