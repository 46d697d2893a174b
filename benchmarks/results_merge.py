"""Rebuild benchmarks/RESULTS.md from the per-topic figures in benchmarks/results/*.md.

    python benchmarks/results_merge.py

Each bench_<topic>.py script writes its measured table into results/<topic>.md; this puts them
together, in a fixed order, under one header naming the machine kind.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["suite", "io", "simulation", "motioncorrection", "ctf", "external_runner", "daemon", "ingest"]
HEADER = """# Benchmark results

Figures measured by the scripts in this folder (commands in each section). Unless a section says
otherwise: the project's 2-core, 24 GiB CI-class machine (Debian 12, Python 3.11), with the cores
shared with other work while these ran — timings are noisy; medians of several runs are given and
ratios against a peer are measured in the same run. No GPU was lent to the session that measured
these, so GPU figures (issue 12) are absent. `python benchmarks/run.py --size ci|realistic` runs every
benchmark and rebuilds this file (`python benchmarks/results_merge.py` rebuilds it alone); each topic's
"Suite run" block is written by it, the rest of a topic is earlier measurements and notes.

"""


def main() -> int:
    parts = [HEADER]
    files = {p.stem: p for p in (HERE / "results").glob("*.md")}
    for name in ORDER + sorted(set(files) - set(ORDER)):
        if name in files:
            parts.append(files[name].read_text().rstrip() + "\n\n")
    (HERE / "RESULTS.md").write_text("".join(parts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
