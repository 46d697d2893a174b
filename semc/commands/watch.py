"""``semc watch ROOT``: register EPU, SerialEM and plain movie folders in the Leginon tables, so that
``semc loop`` processes them like Leginon exposures (:mod:`semc.ingest`).

Examples::

    semc watch /data/epu/26nov23_grid3                       # one session folder, until stopped
    semc watch /data/usc --layout usc --once                  # every <project>/sessions/<user>/<session>/raw
    semc watch /data/serialem/s1 --kv 300 --gain-rotate 2 --gain-flip 1 --until-idle 600
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import signal
import threading
from pathlib import Path

from semc.ingest.layout import (
    DEFAULT_EXCLUDES,
    DEFAULT_GAIN_PATTERNS,
    DEFAULT_MOVIE_PATTERNS,
    LAYOUTS,
)

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", help="a session folder, or (--layout usc) a root of "
                                     "<project>/sessions/<user>/<session>/raw")
    where = parser.add_argument_group("layout")
    where.add_argument("--layout", choices=LAYOUTS, default="session",
                       help="session: ROOT is one session; usc: the USC CryoEM service's tree (default: session)")
    where.add_argument("--session", default=None, help="Leginon session name (layout session; default: folder name)")
    where.add_argument("--project", default=None, help="project name (layout session; default: the default project)")
    where.add_argument("--user", default=None, help="Leginon user name (layout session; default: you)")
    where.add_argument("--processed", type=Path, default=None,
                       help="where SEMC writes for the session (default: <session>/processed beside raw/, else "
                            "ROOT/processed)")
    files = parser.add_argument_group("files")
    files.add_argument("--pattern", action="append", default=None, metavar="GLOB",
                       help=f"movie name pattern, repeatable (default: {' '.join(DEFAULT_MOVIE_PATTERNS)})")
    files.add_argument("--gain-pattern", action="append", default=None, metavar="GLOB",
                       help=f"gain reference pattern, repeatable (default: {' '.join(DEFAULT_GAIN_PATTERNS)})")
    files.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                       help=f"names never taken, added to {' '.join(DEFAULT_EXCLUDES)}")
    files.add_argument("--metadata-root", type=Path, default=None,
                       help="EPU session folder holding the XMLs when the movies are written elsewhere (the same "
                            "Images-Disc*/GridSquare_*/Data tree under it)")
    files.add_argument("--metadata", choices=("auto", "epu", "serialem", "none"), default="auto",
                       help="metadata to wait for: EPU XML, SerialEM mdoc, either (auto), or none (headers and "
                            "options only)")
    timing = parser.add_argument_group("timing")
    timing.add_argument("--settle", type=float, default=10.0, help="seconds a file must be unchanged (default 10)")
    timing.add_argument("--broken-after", type=float, default=120.0,
                        help="an incomplete file unchanged this long is broken (default 120 s)")
    timing.add_argument("--metadata-wait", type=float, default=30.0,
                        help="seconds a ready movie waits for its metadata file (default 30)")
    timing.add_argument("--interval", type=float, default=5.0, help="seconds between passes (default 5)")
    mode = timing.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="one pass, then exit")
    mode.add_argument("--until-idle", type=float, default=None, metavar="S",
                      help="exit when nothing has appeared or waited for S seconds")
    values = parser.add_argument_group("values (win over metadata and headers)")
    values.add_argument("--apix", type=float, default=None, help="movie pixel size, Å")
    values.add_argument("--kv", type=float, default=None, help="acceleration voltage, kV")
    dose = values.add_mutually_exclusive_group()
    dose.add_argument("--dose", type=float, default=None, help="total dose per exposure, e/Å²")
    dose.add_argument("--fmdose", type=float, default=None, help="dose per frame, e/Å²")
    values.add_argument("--cs", type=float, default=2.7, help="spherical aberration, mm (default 2.7)")
    values.add_argument("--preset", default="enn", help="preset name given to the exposures (default enn)")
    values.add_argument("--microscope", default=None, help="microscope name (default: from the metadata)")
    values.add_argument("--camera", default=None, help="camera name as Leginon knows it (GatanK3, Falcon4EC, ...)")
    gain = parser.add_argument_group("gain reference")
    gain.add_argument("--gain", type=Path, default=None, help="use this gain reference for every movie")
    gain.add_argument("--gain-orientation", choices=("given", "auto"), default="given",
                      help="given: --gain-rotate/--gain-flip (default); auto: found for each gain from the first "
                           "movie that uses it (raw, not gain-corrected movies)")
    gain.add_argument("--gain-rotate", type=int, choices=(0, 1, 2, 3), default=0,
                      help="quarter turns that bring the gain onto the frames (MotionCor -RotGain)")
    gain.add_argument("--gain-flip", type=int, choices=(0, 1, 2), default=0,
                      help="then flip: 1 up-down, 2 left-right (MotionCor -FlipGain)")


def _options(args: argparse.Namespace):
    from semc.ingest.layout import FilePatterns
    from semc.ingest.register import Overrides
    from semc.ingest.watcher import WatchOptions

    patterns = FilePatterns(movies=tuple(args.pattern or DEFAULT_MOVIE_PATTERNS),
                            gains=tuple(args.gain_pattern or DEFAULT_GAIN_PATTERNS),
                            excludes=(*DEFAULT_EXCLUDES, *args.exclude))
    overrides = Overrides(pixel_size_angstrom=args.apix, voltage_kv=args.kv, total_dose_e_per_a2=args.dose,
                          dose_per_frame_e_per_a2=args.fmdose, cs_mm=args.cs, preset_name=args.preset,
                          microscope=args.microscope, camera=args.camera, gain_rotate=args.gain_rotate,
                          gain_flip=args.gain_flip)
    return WatchOptions(layout=args.layout, session_name=args.session, project=args.project, user=args.user,
                        processed=args.processed.absolute() if args.processed else None, patterns=patterns,
                        metadata=args.metadata, settle_s=args.settle,
                        metadata_root=args.metadata_root.absolute() if args.metadata_root else None, broken_after_s=args.broken_after,
                        metadata_wait_s=args.metadata_wait, gain=args.gain.absolute() if args.gain else None,
                        gain_orientation_auto=args.gain_orientation == "auto",
                        overrides=overrides)


class _StopOnSignal:
    """A signal handler that only sets the stop flag (the pass in progress finishes)."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop

    def __call__(self, signum, frame) -> None:
        logger.info("signal %s: stopping after this pass", signum)
        self.stop.set()


def run(args: argparse.Namespace) -> int:
    from semc.cli import django_setup

    django_setup()
    from django.conf import settings

    from semc.base.errors import InputMissing
    from semc.base.runlock import RunDirLock
    from semc.commands.init_databases import databases_init
    from semc.ingest.watcher import Watcher

    options = _options(args)
    root = Path(args.root).absolute()
    if not root.is_dir():
        raise InputMissing("the folder to watch does not exist", step="ingest", path=str(root))
    if not settings.SEMC_CONFIG.attached:
        databases_init()  # idempotent: a fresh home gets its databases
    lock_dir = settings.SEMC_HOME / "watch" / hashlib.sha1(str(root).encode()).hexdigest()[:16]
    lock_dir.mkdir(parents=True, exist_ok=True)
    (lock_dir / "root.txt").write_text(f"{root}\n")
    stop = threading.Event()
    with RunDirLock(lock_dir):
        watcher = Watcher(root, options)
        previous = {sig: signal.signal(sig, _StopOnSignal(stop)) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            totals = watcher.run(once=args.once, interval_s=args.interval, idle_exit_s=args.until_idle, stop=stop)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    for watch in watcher.sessions.values():
        print(f"{watch.row.session_name}: {watch.root} -> SessionData {watch.row.leginon_session_id}, "
              f"processed in {watch.processed}")
    print(f"registered {totals.registered}, waiting {totals.waiting}, broken {totals.broken}, "
          f"failed {totals.failed}")
    return 0
