"""Benchmark: SEMC built-in CTF estimation, seconds per micrograph.

Usage: python benchmarks/bench_ctf.py [--size ci|realistic] [--repeats N]

``--size ci``: the 4096 x 4096 micrograph with one FFT thread and the spectrum, 3 repeats;
``realistic``: both micrographs with 1 and 2 FFT threads and the spectrum, 5 repeats.

Inputs: synthetic micrographs with a known CTF (tests/ctfestimation/synthetic.py:
white phase texture filtered by -sin(chi) and a B-factor of 40 Å^2, 15 % contrast,
Poisson at 20 e/px) of 4096 x 4096 (0.83 Å/px) and 5760 x 4092 (0.83 Å/px), and
the real 512 x 512 amplitude spectrum of RELION-tutorial movie 00021
(--amplitude-spectrum-input path). CTFFIND defaults: box 512, 30-5 Å, defocus
5000-50000 Å in 100 Å steps (500 Å for the spectrum, as the RELION tutorial),
resampled to <= 1.4 Å. "1 thread"/"2 threads" is the scipy.fft worker count
(the search kernel is single-threaded). Rows marked "exhaustive" answer yes to "Slower, more
exhaustive search?" (the full defocus/astigmatism grid of calc/internal/exhaustive.py; RELION
3.1 answers yes unless --fast_search), on the 4096 x 4096 micrograph, on the same micrograph
with 6000 Å of astigmatism, and on the spectrum; the "sample tilt" row adds CTFFIND 5's tilt
estimation (calc/internal/tilt.py; its time counts in the wall and CPU columns, not in the per-stage split).
Each figure is the median of the repeats
after one warm-up call (numba compilation excluded); wall and CPU (process) time
are both given because the machine's cores are shared with other jobs.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sizes import size_apply, size_argument

from semc.ctfestimation.api import estimate_ctf, estimate_ctf_from_amplitude_spectrum
from semc.ctfestimation.types import CtfSearchParameters
from tests.ctfestimation.synthetic import synthetic_micrograph

SIZE_DEFAULTS = {"ci": {"repeats": 3, "shapes": ((4096, 4096),), "threads": (1,)},
                 "realistic": {"repeats": 5, "shapes": ((4096, 4096), (4092, 5760)), "threads": (1, 2)}}

SPECTRUM = Path("/work/shared/realdata/relion_tutorial_ps/spectra/20170629_00021_frameImage_PS.mrc")
TRUTH = {"defocus_1_angstrom": 15600.0, "defocus_2_angstrom": 15000.0, "azimuth_degree": 20.0}
LARGE_ASTIGMATISM = {"defocus_1_angstrom": 22000.0, "defocus_2_angstrom": 16000.0, "azimuth_degree": 30.0}


def _time(call, repeats: int):
    call()  # warm-up (numba compilation, caches)
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = call()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), result


def _row(label, threads, wall, cpu, result, truth=None):
    error = ""
    if truth is not None:
        mean_truth = 0.5 * (truth["defocus_1_angstrom"] + truth["defocus_2_angstrom"])
        error = f"{result.mean_defocus_angstrom - mean_truth:+.1f} Å"
    t = result.timings_s
    return (f"| {label} | {threads} | {wall:.3f} | {cpu:.3f} | {t['spectrum']:.3f} / {t['search']:.3f} / {t['diagnostics']:.3f} "
            f"| {result.defocus_1_angstrom:.0f} / {result.defocus_2_angstrom:.0f} / {result.astigmatism_azimuth_degree:.1f} | {error} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size_argument(parser)
    parser.add_argument("--repeats", type=int, default=None)
    args = size_apply(parser.parse_args(argv), SIZE_DEFAULTS)
    import numba
    import scipy

    print(f"Machine: {platform.node()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
          f"(load average {os.getloadavg()[0]:.1f}); Python {platform.python_version()}, numpy {np.__version__}, "
          f"scipy {scipy.__version__}, numba {numba.__version__}")
    print(f"Command: python benchmarks/bench_ctf.py --size {args.size} --repeats {args.repeats}\n")
    print("| input | FFT threads | wall s (median) | CPU s (median) | spectrum / search / diagnostics s (last run) "
          "| d1 / d2 Å / azimuth ° | mean-defocus error |")
    print("|---|---|---|---|---|---|---|")
    params = CtfSearchParameters(pixel_size_angstrom=0.83)
    exhaustive = CtfSearchParameters(pixel_size_angstrom=0.83, exhaustive_search=True)
    for shape in args.shapes:
        image = _micrograph(shape, TRUTH)
        for threads in args.threads:
            wall, cpu, result = _time(lambda image=image, threads=threads: estimate_ctf(image, params=params, workers=threads), args.repeats)
            print(_row(f"micrograph {shape[1]}x{shape[0]}, box 512", threads, wall, cpu, result, TRUTH), flush=True)
    shape = args.shapes[0]
    image = _micrograph(shape, TRUTH)
    wall, cpu, result = _time(lambda: estimate_ctf(image, params=exhaustive, workers=1), args.repeats)
    print(_row(f"micrograph {shape[1]}x{shape[0]}, box 512, exhaustive", 1, wall, cpu, result, TRUTH), flush=True)
    tilt = replace(params, determine_tilt=True)
    wall, cpu, result = _time(lambda: estimate_ctf(image, params=tilt, workers=1), args.repeats)
    print(_row(f"micrograph {shape[1]}x{shape[0]}, box 512, with sample tilt (tile scan + plane fit)", 1, wall, cpu, result, TRUTH),
          flush=True)
    image = _micrograph(shape, LARGE_ASTIGMATISM)
    for label, search in (("default search", params), ("exhaustive", exhaustive)):
        wall, cpu, result = _time(lambda search=search: estimate_ctf(image, params=search, workers=1), args.repeats)
        print(_row(f"micrograph {shape[1]}x{shape[0]}, 22000 / 16000 / 30.0, {label}", 1, wall, cpu, result, LARGE_ASTIGMATISM),
              flush=True)
    if SPECTRUM.is_file():
        spectrum_params = CtfSearchParameters(pixel_size_angstrom=1.39955, voltage_kv=200, spherical_aberration_mm=1.4,
                                              amplitude_contrast=0.1, defocus_step_angstrom=500)
        label = "real amplitude spectrum 512x512 (RELION 00021; official 10865 / 10571 / 79.1)"
        for suffix, search in (("", spectrum_params), (", exhaustive", replace(spectrum_params, exhaustive_search=True))):
            wall, cpu, result = _time(lambda search=search: estimate_ctf_from_amplitude_spectrum(SPECTRUM, params=search), args.repeats)
            print(_row(label + suffix, 1, wall, cpu, result), flush=True)
    return 0


def _micrograph(shape, truth):
    return synthetic_micrograph(shape=shape, pixel_size_angstrom=0.83, voltage_kv=300, cs_mm=2.7, amplitude_contrast=0.07,
                                defocus_1_angstrom=truth["defocus_1_angstrom"], defocus_2_angstrom=truth["defocus_2_angstrom"],
                                azimuth_degree=truth["azimuth_degree"], seed=1)


if __name__ == "__main__":
    raise SystemExit(main())
