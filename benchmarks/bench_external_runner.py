"""Benchmark: overhead of SEMC's one runner of external programs, per exposure.

Usage: python benchmarks/bench_external_runner.py [--size ci|realistic] [--repeats N]   (ci: 7 repeats; realistic: 21)

Measures (median and min of N runs, wall time):

* ``subprocess.run([python, -c, pass])`` — the floor: starting a Python interpreter;
* ``semc.base.external.run`` on the same command — adds PATH lookup, a new session, output capture
  and writing the per-exposure log file;
* ``run_interactive`` answering the 18 CTFFIND4 questions of a CTFFIND-style dialog
  (``tests/data/ctffind/fake_ctffind.py``) through a pseudo-terminal;
* the same dialog fed blindly on stdin (what classic Appion did), for comparison.

Prints a markdown table with the machine and versions. The machine's 2 cores are shared, so figures are
noisy; the median is reported.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sizes import size_apply, size_argument

from semc.base.external import run, run_interactive
from semc.ctfestimation.calc.external import CtffindParams, CtffindVersion, ctffind_prompt_table

FAKE = ROOT / "tests" / "data" / "ctffind" / "fake_ctffind.py"
SPECIMEN = ROOT / "tests" / "data" / "ctffind" / "4.1.14" / "mic_00021-pow.txt"
PARAMS = CtffindParams(input_path="mic.mrc", diagnostic_path="mic-pow.mrc", pixel_size_angstrom=1.0,
                       voltage_kv=300.0, cs_mm=2.7, amplitude_contrast=0.07)


def timed(fn, repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size_argument(parser)
    parser.add_argument("--repeats", type=int, default=None)
    args = size_apply(parser.parse_args(), {"ci": {"repeats": 7}, "realistic": {"repeats": 21}})
    tmp = Path(tempfile.mkdtemp(prefix="semc-bench-runner-"))
    noop = [sys.executable, "-c", "pass"]
    dialog = [sys.executable, str(FAKE), "--results", str(SPECIMEN)]
    table = ctffind_prompt_table(PARAMS, version=CtffindVersion("ctffind4", "4.1.14"))
    blind = "\n".join(table.answers() + [""]) + "\n"
    blind = blind.replace("no\n", "", 1)  # the optional movie question is not asked for a single image
    cases = {
        "subprocess.run, python -c pass (floor)": lambda: subprocess.run(noop, check=True, capture_output=True),
        "external.run, python -c pass": lambda: run(noop, cwd=tmp, timeout_s=60, log_path=tmp / "noop.log"),
        "run_interactive, 18-question CTFFIND4 dialog": lambda: run_interactive(
            dialog, answers=table, cwd=tmp, timeout_s=60, log_path=tmp / "dialog.log", prompt_timeout_s=10),
        "subprocess.run, same dialog fed blindly on stdin": lambda: subprocess.run(
            dialog, input=blind, text=True, cwd=tmp, check=True, capture_output=True),
    }
    print(f"Machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs (shared), "
          f"Python {platform.python_version()}, Linux {platform.release()}")
    print(f"Command: python benchmarks/bench_external_runner.py --size {args.size} --repeats {args.repeats}\n")
    print("| case | median (ms) | min (ms) |\n|---|---:|---:|")
    for name, fn in cases.items():
        fn()  # warm the page cache
        med, best = timed(fn, args.repeats)
        print(f"| {name} | {med * 1e3:.1f} | {best * 1e3:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
