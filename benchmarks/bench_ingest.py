"""Watcher cost on a large EPU tree: the first pass (discover + register), passes with nothing new, a pass
after new movies land, and a restart; compared with a naive full re-walk of the tree.

    python benchmarks/bench_ingest.py [--size ci|realistic] [--squares 200 --per-square 100] [--out FILE]

The tree is EPU's: ``Images-Disc1/GridSquare_<n>/Data/`` with, per exposure, the movie
(``FoilHole_..._fractions.mrc``, a tiny but valid 2-frame MRC), its XML, EPU's integrated ``.mrc``
and a ``.jpg`` (four files per exposure), plus each grid square's own ``.xml``/``.jpg``. ``ci``: 20
squares x 100 exposures (8,000+ files); ``realistic``: 200 x 100 (80,000+ files). Runs against a
throw-away SEMC home (SQLite) and prints a markdown table; ``--out`` appends it to a results file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sizes import figure_table_emit, size_apply, size_argument, standalone_home_setup

SIZE_DEFAULTS = {"ci": {"squares": 20, "per_square": 100}, "realistic": {"squares": 200, "per_square": 100}}


def _tree(root: Path, squares: int, per_square: int, *, start: int = 0) -> int:
    """Write the EPU tree; returns the number of files written."""
    import numpy as np

    from semc.base.io import write_mrc
    from semc.simulation.layouts import epu_xml_text

    template = root.parent / "template.mrc"
    if not template.exists():
        write_mrc(template, np.zeros((2, 16, 16), dtype=np.int8), pixel_size_angstrom=1.0)
    movie_bytes = template.read_bytes()
    old = time.time() - 3600
    written = 0
    for square in range(start, start + squares):
        folder = root / "Images-Disc1" / f"GridSquare_{100000 + square}" / "Data"
        folder.mkdir(parents=True, exist_ok=True)
        (folder.parent / f"GridSquare_{100000 + square}_20261123_120000.xml").write_text("<x/>")
        (folder.parent / f"GridSquare_{100000 + square}_20261123_120000.jpg").write_bytes(b"\xff\xd8")
        written += 2
        for i in range(per_square):
            n = square * per_square + i
            when = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC) + dt.timedelta(seconds=5 * n)
            base = f"FoilHole_{500000 + n}_Data_{700000 + n}_{800000 + n}_{when:%Y%m%d_%H%M%S}"
            (folder / f"{base}_fractions.mrc").write_bytes(movie_bytes)
            (folder / f"{base}.xml").write_text(epu_xml_text(
                pixel_size_m=1.0e-10, readout=(16, 16), binning=1, voltage_v=300000.0, dose_e_per_m2=4e21,
                applied_defocus_m=-1.5e-6, exposure_time_s=2.0, n_fractions=2, acquired=when, magnification=105000,
                stage_xyz_m=(0.0, 0.0, 0.0)))
            (folder / f"{base}.mrc").write_bytes(movie_bytes[:1024])
            (folder / f"{base}.jpg").write_bytes(b"\xff\xd8")
            written += 4
        for path in folder.iterdir():
            os.utime(path, (old, old))
        os.utime(folder, (old, old))
    return written


def _naive_walk(root: Path) -> int:
    """What a watcher without a cache does each pass: walk everything, stat every file."""
    n = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            os.stat(os.path.join(folder, name))
            n += 1
    return n


def bench(squares: int, per_square: int) -> list[str]:
    from semc import models as m
    from semc.ingest.watcher import Watcher, WatchOptions

    root = Path(tempfile.mkdtemp(prefix="semc-bench-epu-")) / "session1"
    t = time.perf_counter()
    files = _tree(root, squares, per_square)
    build_s = time.perf_counter() - t
    options = WatchOptions(settle_s=1.0, metadata_wait_s=0.0, racy_s=1.0)
    watcher = Watcher(root, options)
    cpu, t = time.process_time(), time.perf_counter()
    first = watcher.run_pass()
    first_s, first_cpu = time.perf_counter() - t, time.process_time() - cpu
    movies = squares * per_square
    assert first.registered == movies, first
    time.sleep(options.racy_s + 0.2)  # directories written within racy_s of a listing are listed once more
    watcher.run_pass()
    quiet = []
    for _ in range(5):
        t = time.perf_counter()
        report = watcher.run_pass()
        quiet.append(time.perf_counter() - t)
        assert report.directories_listed == 0 and report.registered == 0, report
    naive = []
    for _ in range(3):
        t = time.perf_counter()
        _naive_walk(root)
        naive.append(time.perf_counter() - t)
    new_files = _tree(root, 1, per_square, start=squares)  # a new grid square lands
    t = time.perf_counter()
    arrived = watcher.run_pass()
    arrived_s = time.perf_counter() - t
    assert arrived.registered == per_square, arrived
    time.sleep(options.racy_s + 0.2)
    watcher.run_pass()
    t = time.perf_counter()
    restarted = Watcher(root, options)
    restarted.discover()  # loads the registry: directories and files known
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    after_restart = restarted.run_pass()
    restart_pass_s = time.perf_counter() - t
    assert after_restart.registered == 0 and after_restart.directories_listed == 0, after_restart
    exposures = m.AcquisitionImageData.objects.count()
    assert exposures == movies + per_square
    return [
        (f"| tree | {squares} grid squares x {per_square} exposures: {files + new_files:,} files, "
        f"{first.directories_checked} directories |"),
        f"| building the tree (setup) | {build_s:.1f} s |",
        (f"| first pass: discover + register {movies:,} movies (header, XML, Leginon rows) | "
        f"{first_s:.1f} s ({1000 * first_s / movies:.1f} ms per movie, CPU {1000 * first_cpu / movies:.1f} ms) |"),
        (f"| pass with nothing new (stat {report.directories_checked} directories, list none), median of 5 | "
        f"{1000 * statistics.median(quiet):.1f} ms |"),
        (f"| naive full walk + stat of every file, median of 3 (what the cache avoids) | "
        f"{1000 * statistics.median(naive):.0f} ms |"),
        (f"| pass after a new grid square of {per_square} exposures lands | {arrived_s:.2f} s "
        f"({arrived.directories_listed} directories listed) |"),
        f"| restart: load the registry ({len(restarted.sessions[str(root)].files):,} files) | {1000 * load_s:.0f} ms |",
        f"| restart: first pass (nothing re-registered, nothing listed) | {1000 * restart_pass_s:.1f} ms |",
        f"| exposures in the Leginon tables at the end | {exposures:,} (each once) |",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size_argument(parser)
    parser.add_argument("--squares", type=int, default=None)
    parser.add_argument("--per-square", type=int, default=None)
    parser.add_argument("--out", default=None, help="append the table to this markdown file")
    args = size_apply(parser.parse_args(argv), SIZE_DEFAULTS)
    home = Path(tempfile.mkdtemp(prefix="semc-bench-"))
    standalone_home_setup(home)
    rows = bench(args.squares, args.per_square)
    shown = " ".join(argv if argv is not None else sys.argv[1:])
    figure_table_emit("Watcher scan and registration cost (SQLite)", f"python benchmarks/bench_ingest.py {shown}",
                      rows, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
