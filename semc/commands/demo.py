"""``semc demo``: simulate a live session, process it with the daemon while it arrives, grade the results.

Runs on the embedded defaults only (a fresh SEMC home with SQLite files, a local Dask cluster,
the built-in engines), so it needs no database server, no Slurm and no GPU::

    semc demo                                  # 20 CI-size exposures, one every 4 s (about 2 minutes)
    semc demo --exposures 4 --interval 1       # quicker
    semc demo --keep                           # keep the data to open it in the dashboard afterwards
    semc demo --home ~/semc-demo               # this home (created if missing, always kept)
    semc demo --camera k3 --exposures 2        # full-size K3 TIFF movies (minutes per exposure)
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path


def _pair(text: str) -> tuple[int, int]:
    try:
        x, y = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two comma-separated integers, got {text!r}") from None
    return x, y


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from semc.simulation.session import CAMERA_PRESETS

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = __doc__
    parser.add_argument("--exposures", type=int, default=20, help="exposures in the session (default 20)")
    parser.add_argument("--camera", choices=sorted(CAMERA_PRESETS), default="small",
                        help="small: 1024² 10-frame MRC (CI size, default); k3: 5760x4092 40-frame TIFF; "
                             "falcon4-eer: 4096² 1000-frame EER")
    parser.add_argument("--interval", type=float, default=4.0,
                        help="seconds between exposures (default 4; 0: as fast as the simulator writes them)")
    parser.add_argument("--workers", type=int, default=None,
                        help="Dask workers of the local cluster (default: half the CPUs, 1 to 4)")
    parser.add_argument("--home", type=Path, default=None,
                        help="SEMC home to use (created if missing, kept); default: a fresh temporary one")
    parser.add_argument("--keep", action="store_true", help="keep the fresh home (and say how to open it)")
    parser.add_argument("--session", default=None, help="session name (default demo<yymmddHHMMSS>)")
    parser.add_argument("--seed", type=int, default=1, help="simulation seed (default 1)")
    parser.add_argument("--patches", type=_pair, default=(3, 3), help="motion-correction patches x,y (default 3,3)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds before the demo stops the daemon (default: from the camera and size)")


def run(args: argparse.Namespace) -> int:
    from semc.demo.runner import DemoOptions, demo_run

    root = logging.getLogger()
    if root.level > logging.DEBUG:  # the progress line and the summary are the output; -v shows the logs
        root.setLevel(logging.WARNING)

    options = DemoOptions(home=args.home, keep=args.keep, exposures=args.exposures, camera=args.camera,
                          interval_s=args.interval, workers=args.workers, session=args.session, seed=args.seed,
                          patches=args.patches, timeout_s=args.timeout)
    return demo_run(options)
