"""``semc loop``: process a session with the daemon until stopped (or one pass with ``--no-wait``).

Example::

    semc loop --session 26nov23a --preset enn --steps motioncorrection,ctfestimation \\
        --engine builtin --ctf-engine ctffind4 --cluster local --rundir /data/appion/26nov23a/ddstack/ddstack1 --runname ddstack1
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from semc.cli import django_setup

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--session", required=True, help="session name or id")
    parser.add_argument("--preset", default=None, help="raw preset name (manual: images without a preset)")
    parser.add_argument("--steps", default="motioncorrection,ctfestimation",
                        help="comma list: motioncorrection, ctfestimation (default both, chained)")
    parser.add_argument("--engine", "--mc-engine", dest="engine", default="builtin",
                        choices=("builtin", "builtin-gpu", "motioncor2", "motioncor3"),
                        help="motion-correction engine: builtin, or motioncor2/motioncor3 (executable from "
                             "engines.motioncor2_exe / SEMC_MOTIONCOR2_EXE, ... or PATH)")
    parser.add_argument("--ctf-engine", default="builtin", choices=("builtin", "builtin-gpu", "ctffind4",
                                                                    "ctffind5", "gctf"),
                        help="CTF engine: builtin, or ctffind4/ctffind5/gctf (executable from "
                             "engines.ctffind4_exe / SEMC_CTFFIND4_EXE, ... or PATH)")
    parser.add_argument("--external-timeout", type=float, default=None,
                        help="seconds an external program may run on one exposure "
                             "(default: engines.timeout_s, 600)")
    parser.add_argument("--cluster", default=None, help="local, slurm, or a scheduler address (default: config)")
    parser.add_argument("--workers", type=int, default=None, help="local cluster: number of workers")
    parser.add_argument("--rundir", required=True, help="run directory (basename = run name)")
    parser.add_argument("--runname", default=None, help="run name (default: basename of --rundir)")
    parser.add_argument("--no-wait", dest="wait", action="store_false", help="one pass over what exists, then exit")
    parser.add_argument("--limit", type=int, default=None, help="stop after this many exposures")
    parser.add_argument("--reverse", action="store_true", help="newest first when not live")
    parser.add_argument("--max-in-flight", type=int, default=None, help="cap on exposures in flight")
    parser.add_argument("--max-attempts", type=int, default=3, help="attempts before quarantine")
    parser.add_argument("--poll-interval", type=float, default=1.0, help="seconds between polls")
    parser.add_argument("--tiltangle", default="all", help="tilt filter (all, notilt, hightilt, ...)")
    parser.add_argument("--no-rejects", dest="apply_rejects", action="store_false",
                        help="do not skip hidden/trashed/rejected exposures")
    parser.add_argument("--projectid", type=int, default=None, help="project id (default: the session's)")
    parser.add_argument("--jobid", type=int, default=None, help="ApAppionJobData id created by the web")
    mc = parser.add_argument_group("motion correction")
    mc.add_argument("--patches", default="5,5", help="patches x,y (0,0: global only)")
    mc.add_argument("--iterations", type=int, default=15)
    mc.add_argument("--tolerance", type=float, default=0.1, help="pixels")
    mc.add_argument("--bfactor", default="500,100", help="global,local B-factor (pixel²)")
    mc.add_argument("--bin", type=float, default=1.0, help="Fourier binning of the output sums (-FtBin)")
    mc.add_argument("--no-doseweight", dest="doseweight", action="store_false")
    mc.add_argument("--alignlabel", default="a", help="aligned preset suffix")
    mc.add_argument("--eer-fraction", type=int, default=30, help="EER frames per rendered fraction")
    ctf = parser.add_argument_group("CTF estimation")
    ctf.add_argument("--ctf-box", type=int, default=512, help="amplitude spectrum box (px)")
    ctf.add_argument("--resmin", type=float, default=30.0, help="lowest resolution fitted (Å)")
    ctf.add_argument("--resmax", type=float, default=5.0, help="highest resolution fitted (Å)")
    ctf.add_argument("--defocus-range", default="5000,50000", help="min,max defocus searched (Å)")
    ctf.add_argument("--ampcontrast", type=float, default=0.07)


def _pair(text: str, kind=float) -> tuple:
    parts = [kind(p) for p in text.split(",")]
    if len(parts) != 2:
        raise SystemExit(f"expected two comma-separated values, got {text!r}")
    return tuple(parts)


def engines_of(args: argparse.Namespace, steps: tuple[str, ...]) -> dict[str, str]:
    """The engine of each step that runs (what the run records, and what is resolved at start-up)."""
    chosen = {"motioncorrection": getattr(args, "engine", "builtin"),
              "ctfestimation": getattr(args, "ctf_engine", "builtin")}
    return {step: chosen[step] for step in steps if step in chosen}


def external_timeout_s(args: argparse.Namespace) -> float:
    """``--external-timeout``, else the configuration's ``engines.timeout_s``."""
    if getattr(args, "external_timeout", None) is not None:
        if not args.external_timeout > 0:
            raise SystemExit(f"--external-timeout must be > 0, got {args.external_timeout}")
        return float(args.external_timeout)
    from semc.config import config_load

    return float(config_load().values["engines.timeout_s"])


def loop_params_from_args(args: argparse.Namespace):
    """The controller's frozen parameters from parsed arguments (pure apart from imports)."""
    from semc.loop import LoopParams
    from semc.motioncorrection.task import MotionCorrectionTaskConfig
    from semc.motioncorrection.types import MotionCorrectionParams
    from semc.pipeline import PipelineConfig

    steps = tuple(s.strip() for s in args.steps.split(",") if s.strip())
    rundir = os.path.abspath(args.rundir)
    mc = ctf = None
    if "motioncorrection" in steps:
        bft = _pair(args.bfactor)
        mc = MotionCorrectionTaskConfig(
            params=MotionCorrectionParams(patches_xy=_pair(args.patches, int), iterations=args.iterations,
                                          tolerance_px=args.tolerance, bfactor_global_px2=bft[0],
                                          bfactor_local_px2=bft[1], output_bin=args.bin),
            rundir=rundir, dose_weighting=args.doseweight, eer_frames_per_fraction=args.eer_fraction,
            engine=args.engine, external_timeout_s=external_timeout_s(args))
    if "ctfestimation" in steps:
        from semc.ctfestimation.task import ctf_task_config

        ctf = ctf_task_config(rundir=rundir, box=args.ctf_box, resmin=args.resmin, resmax=args.resmax,
                              defocus_range=_pair(args.defocus_range), amplitude_contrast=args.ampcontrast,
                              engine=getattr(args, "ctf_engine", "builtin"),
                              external_timeout_s=external_timeout_s(args))
    return LoopParams(
        session=args.session, preset=args.preset, steps=steps, rundir=rundir,
        runname=args.runname or os.path.basename(rundir), pipeline=PipelineConfig(steps=steps, motioncorrection=mc,
                                                                                  ctfestimation=ctf),
        engines=engines_of(args, steps), parameters={k: v for k, v in vars(args).items()},
        command_line=tuple(sys.argv), wait=args.wait, poll_interval_s=args.poll_interval,
        max_in_flight=args.max_in_flight, max_attempts=args.max_attempts, reverse=args.reverse, limit=args.limit,
        tilt_mode=args.tiltangle, apply_rejects=args.apply_rejects, project_id=args.projectid, job_id=args.jobid)


def run(args: argparse.Namespace) -> int:
    django_setup()
    from semc.loop import loop_run

    return loop_run(loop_params_from_args(args), cluster_backend=args.cluster, n_workers=args.workers)
