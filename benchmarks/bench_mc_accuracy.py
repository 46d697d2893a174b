"""Benchmark: trajectory accuracy of the motion-correction engine on movies from semc.simulation.

Usage: python benchmarks/bench_mc_accuracy.py [--size ci|realistic] [--seeds N] [--no-relion]

For each kind of movie (1024², known motion: decay + drift + a smoothed random walk, intra-frame
blur, radiation damage, detector MTF), N seeds are simulated and aligned by SEMC's engine with its
default correlation weights (SSNR), by the same engine with MotionCor's B-factor filter, and by
RELION 3.1.3 ``relion_run_motioncorr --use_own`` (whole-frame, B 150) on the very same counts (the
movies have no gain variation, so neither program needs a gain reference). The figure is the RMS
over frames of found − true position after removing the common offset (px), median/mean/max over
the seeds. ``ci``: 2 seeds; ``realistic``: 6.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sizes import size_apply, size_argument  # noqa: E402

SIZE_DEFAULTS = {"ci": {"seeds": 2}, "realistic": {"seeds": 6}}


def movie_kinds():
    from semc.simulation.types import DetectorSpec, MotionSpec, MovieSpec, SpecimenSpec

    flat = dataclasses.replace(DetectorSpec(), gain_sigma=0.0)
    base = dict(shape=(1024, 1024), detector=flat)
    return {
        "particles in ice, 1 e/px/frame, 20 frames": MovieSpec(n_frames=20, dose_per_frame_e_per_a2=1.0, **base),
        "particles in ice, 1 e/px/frame, 40 frames": MovieSpec(n_frames=40, dose_per_frame_e_per_a2=1.0, **base),
        "textured ice (ice_texture 3), 1 e/px/frame, 20 frames": MovieSpec(
            n_frames=20, dose_per_frame_e_per_a2=1.0, specimen=SpecimenSpec(ice_texture=3.0), **base),
        "textured ice (ice_texture 3), 0.5 e/px/frame, 20 frames": MovieSpec(
            n_frames=20, dose_per_frame_e_per_a2=0.5, specimen=SpecimenSpec(ice_texture=3.0), **base),
        "demo session movie: 3 particle models, 4 e/px/frame, 10 frames, decay 1 frame": MovieSpec(
            n_frames=10, dose_per_frame_e_per_a2=4.0,
            specimen=SpecimenSpec(models=("globular", "apoferritin", "ribosome"), ice_thickness_angstrom=400.0),
            motion=MotionSpec(decay_frames=1.0), **base),
    }


def rms_error(found: np.ndarray, truth: np.ndarray) -> float:
    err = np.asarray(found, dtype=np.float64) - truth
    err -= err.mean(axis=0)
    return float(np.sqrt(np.mean(np.sum(err**2, axis=1))))


def relion_motion(frames: np.ndarray) -> np.ndarray:
    """RELION's whole-frame content motion (x, y) in array row order (algorithms.md §2.2 conventions)."""
    import starfile
    import tifffile

    with tempfile.TemporaryDirectory() as d:
        tifffile.imwrite(os.path.join(d, "m.tif"), frames.astype(np.uint8), compression="lzw")
        cmd = ["relion_run_motioncorr", "--i", "m.tif", "--o", "R/", "--use_own", "--j", "2", "--angpix", "1",
               "--voltage", "300", "--bfactor", "150", "--patch_x", "1", "--patch_y", "1"]
        subprocess.run(cmd, cwd=d, env=dict(os.environ, OMP_NUM_THREADS="1"), check=True, capture_output=True)
        shifts = starfile.read(os.path.join(d, "R", "m.star"))["global_shift"]
    return np.stack([-shifts["rlnMicrographShiftX"].to_numpy(), shifts["rlnMicrographShiftY"].to_numpy()], 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    size_argument(ap)
    ap.add_argument("--seeds", "--repeats", dest="seeds", type=int, default=None,
                    help="seeds per kind of movie (--repeats: the suite's name for it)")
    ap.add_argument("--no-relion", action="store_true")
    opts = size_apply(ap.parse_args(), SIZE_DEFAULTS)
    from semc.motioncorrection.calc.internal.correct import correct_frames
    from semc.motioncorrection.types import MotionCorrectionParams
    from semc.simulation.movie import simulate_movie

    use_relion = not opts.no_relion and shutil.which("relion_run_motioncorr") is not None
    methods = {"SEMC (SSNR weights, default)": MotionCorrectionParams(),
               "SEMC (B-factor filter, MotionCor's)": MotionCorrectionParams(correlation_weighting="bfactor")}
    rows = []
    for kind, spec in movie_kinds().items():
        errors: dict[str, list[float]] = {name: [] for name in methods}
        if use_relion:
            errors["RELION 3.1.3 --use_own"] = []
        for seed in range(100, 100 + opts.seeds):
            movie = simulate_movie(spec, seed)
            truth = movie.truth.shifts_px
            for name, params in methods.items():
                errors[name].append(rms_error(correct_frames(movie.frames, params=params, workers=2).motion_px, truth))
            if use_relion:
                errors["RELION 3.1.3 --use_own"].append(rms_error(relion_motion(movie.frames), truth))
        for name, values in errors.items():
            rows.append((kind, name, np.median(values), np.mean(values), np.max(values)))
        print(f"done {kind}", file=sys.stderr, flush=True)
    print(f"command: python benchmarks/bench_mc_accuracy.py --size {opts.size} --seeds {opts.seeds}"
          f"{'' if use_relion else ' --no-relion'}")
    print(f"movies: 1024², semc.simulation, seeds 100..{99 + opts.seeds}; error = RMS over frames of found − true "
          "position after removing the common offset, px\n")
    print("| movies | aligner | median | mean | max |")
    print("|---|---|---|---|---|")
    for kind, name, med, mean, top in rows:
        print(f"| {kind} | {name} | {med:.3f} | {mean:.3f} | {top:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
