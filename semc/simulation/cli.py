"""``semc simulate``: one movie, a tilt-series run, or a Leginon-like session.

A pure parser (:func:`build_parser`, :func:`movie_spec_from_args`) plus
:func:`main`, which returns the exit status::

    semc simulate movie --out DIR --name NAME [--format tiff] [--shape 1024 1024] [--frames 30] ...
    semc simulate tiltseries --config sim.yaml
    semc simulate session --name NAME --exposures N --camera small|k3|falcon4-eer --interval S --seed S --root DIR
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from semc.base.errors import ProcessingError
from semc.simulation import session as session_module
from semc.simulation.session import CAMERA_PRESETS, SessionSpec, session_plan, session_rows_write, session_run
from semc.simulation.types import DetectorSpec, MotionSpec, MovieSpec, OpticsSpec, SpecimenSpec

__all__ = ["build_parser", "movie_spec_from_args", "structures_from_args", "session_spec_from_args", "main"]


def _movie_parser(sub) -> None:
    p = sub.add_parser("movie", help="one movie with its ground truth")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--name", default="sim_00001", help="Leginon filename; the movie is <name>.frames.<ext>")
    p.add_argument("--format", choices=("mrc", "tiff", "eer"), default="tiff")
    p.add_argument("--shape", type=int, nargs=2, default=(1024, 1024), metavar=("NY", "NX"))
    p.add_argument("--frames", type=int, default=30, help="frames (EER: detector frames)")
    p.add_argument("--pixel-size", type=float, default=1.0, help="Å")
    p.add_argument("--dose-per-frame", type=float, default=1.0, help="e/Å² per frame")
    p.add_argument("--pre-exposure", type=float, default=0.0, help="e/Å²")
    p.add_argument("--voltage", type=float, default=300.0, help="kV")
    p.add_argument("--cs", type=float, default=2.7, help="mm")
    p.add_argument("--amplitude-contrast", type=float, default=0.07)
    p.add_argument("--defocus", type=float, default=1.5, help="µm, positive = underfocus")
    p.add_argument("--astigmatism", type=float, default=0.0, help="Δf1 − Δf2, Å")
    p.add_argument("--azimuth", type=float, default=0.0, help="astigmatism azimuth, degrees")
    p.add_argument("--phase-shift", type=float, default=0.0, help="radians")
    p.add_argument("--bfactor", type=float, default=0.0, help="envelope B, Å²")
    p.add_argument("--particles", type=int, default=40)
    p.add_argument("--model", action="append", default=None, help="library model name (repeatable)")
    p.add_argument("--structure", type=Path, action="append", default=None,
                   help="PDB or mmCIF file (.cif/.mmcif) used as a particle model, named by its stem (repeatable)")
    p.add_argument("--ice-thickness", type=float, default=300.0, help="Å")
    p.add_argument("--carbon", type=float, default=0.0, help="carbon thickness, Å (0: none)")
    p.add_argument("--motion", type=float, default=4.0, help="global motion amplitude, px")
    p.add_argument("--drift", type=float, default=0.1, help="px per frame")
    p.add_argument("--local-motion", type=float, default=0.0, help="RMS local deformation, px")
    p.add_argument("--no-blur", action="store_true", help="no intra-frame motion blur")
    p.add_argument("--no-damage", action="store_true", help="no radiation damage")
    p.add_argument("--gain-sigma", type=float, default=0.05)
    p.add_argument("--hot-pixels", type=int, default=0)
    p.add_argument("--dead-columns", type=int, default=0)
    p.add_argument("--eer-fraction", type=int, default=20, help="EER detector frames rendered together")
    p.add_argument("--seed", type=int, default=0)


def _session_parser(sub) -> None:
    p = sub.add_parser("session", help="a Leginon-like session, all at once or at a cadence")
    p.add_argument("--name", required=True)
    p.add_argument("--root", type=Path, required=True, help="folder holding leginon/ and frames/")
    p.add_argument("--exposures", type=int, default=10)
    p.add_argument("--camera", choices=sorted(CAMERA_PRESETS), default="small")
    p.add_argument("--format", choices=("mrc", "tiff", "eer"), default=None, help="default: the camera's")
    p.add_argument("--interval", type=float, default=0.0, help="seconds between exposures (0: all at once)")
    p.add_argument("--burst", type=int, default=1, help="exposures per burst (multi-shot)")
    p.add_argument("--burst-spacing", type=float, default=1.0, help="seconds between shots of a burst")
    p.add_argument("--pause-every", type=int, default=0, help="a pause after every N exposures")
    p.add_argument("--pause", type=float, default=0.0, help="pause length, seconds")
    p.add_argument("--jitter", type=float, default=0.0, help="± fraction of each interval")
    p.add_argument("--schedule", type=Path, default=None, help="file of arrival times (s), one per line")
    p.add_argument("--dose", type=float, default=40.0, help="total e/Å² per exposure")
    p.add_argument("--defocus-range", type=float, nargs=2, default=(0.8, 2.5), metavar=("MIN", "MAX"), help="µm")
    p.add_argument("--motion", type=float, default=1.0, help="motion strength (1 = typical)")
    p.add_argument("--particles", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--files-only", action="store_true", help="write files, no database rows")


def build_parser() -> argparse.ArgumentParser:
    """The ``semc simulate`` parser with its three subcommands."""
    parser = argparse.ArgumentParser(prog="semc simulate", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    _movie_parser(sub)
    ts = sub.add_parser("tiltseries", help="cryo-ET tilt series from a YAML configuration")
    ts.add_argument("--config", type=Path, required=True)
    _session_parser(sub)
    return parser


def movie_spec_from_args(args: argparse.Namespace) -> MovieSpec:
    """The movie specification of parsed ``movie`` arguments."""
    df = args.defocus * 1e4
    return MovieSpec(
        shape=tuple(args.shape), n_frames=args.frames, pixel_size_angstrom=args.pixel_size,
        dose_per_frame_e_per_a2=args.dose_per_frame, pre_exposure_e_per_a2=args.pre_exposure,
        optics=OpticsSpec(voltage_kv=args.voltage, cs_mm=args.cs, amplitude_contrast=args.amplitude_contrast,
                          defocus1_angstrom=df + args.astigmatism / 2, defocus2_angstrom=df - args.astigmatism / 2,
                          astigmatism_azimuth_degree=args.azimuth, phase_shift_radian=args.phase_shift,
                          bfactor_angstrom2=args.bfactor),
        specimen=SpecimenSpec(n_particles=args.particles,
                              models=tuple((args.model or []) + [p.stem for p in args.structure or []])
                              or ("globular",),
                              ice_thickness_angstrom=args.ice_thickness, carbon_thickness_angstrom=args.carbon),
        motion=MotionSpec(global_amplitude_px=args.motion, drift_px_per_frame=args.drift,
                          local_amplitude_px=args.local_motion, intra_frame_blur=not args.no_blur),
        detector=DetectorSpec(gain_sigma=args.gain_sigma, n_hot_pixels=args.hot_pixels,
                              n_dead_columns=args.dead_columns),
        radiation_damage=not args.no_damage)


def structures_from_args(args: argparse.Namespace) -> dict:
    """Particle models read from ``--structure`` files, by file stem."""
    from semc.simulation.physics.models import model_from_mmcif_text, model_from_pdb_text

    models = {}
    for path in args.structure or []:
        reader = model_from_mmcif_text if path.suffix.lower() in (".cif", ".mmcif") else model_from_pdb_text
        models[path.stem] = reader(path.read_text(), name=path.stem)
    return models


def session_spec_from_args(args: argparse.Namespace) -> SessionSpec:
    """The session specification of parsed ``session`` arguments."""
    schedule = None
    if args.schedule is not None:
        schedule = tuple(float(v) for v in args.schedule.read_text().split())
    return SessionSpec(
        name=args.name, root=args.root, n_exposures=args.exposures, camera=args.camera, fmt=args.format,
        total_dose_e_per_a2=args.dose, defocus_range_um=tuple(args.defocus_range), motion_strength=args.motion,
        n_particles=args.particles, seed=args.seed, interval_s=args.interval, burst_size=args.burst,
        burst_spacing_s=args.burst_spacing, pause_every=args.pause_every, pause_s=args.pause,
        jitter_fraction=args.jitter, schedule_s=schedule)


def _run(args: argparse.Namespace) -> int:
    if args.command == "movie":
        from semc.simulation.writers import movie_write

        files = movie_write(movie_spec_from_args(args), args.seed, directory=args.out, name=args.name,
                            fmt=args.format, eer_raw_frames_per_fraction=args.eer_fraction,
                            models=structures_from_args(args))
        print(f"movie: {files.movie}\ntruth: {files.truth}")
        return 0
    if args.command == "tiltseries":
        from semc.simulation.tiltseries import tiltseries_config_read, tiltseries_run

        config = tiltseries_config_read(args.config)
        summaries = tiltseries_run(config)
        print(f"{len(summaries)} tilt series under {config.root} (log: {config.root / 'simulation.log'})")
        return 0
    plan = session_plan(session_spec_from_args(args))
    if not args.files_only and not session_module.ROWS_WRITER_READY:
        raise NotImplementedError("database rows for simulated sessions are not written yet "
                                  "(semc.simulation.session.session_rows_write); use --files-only")
    writer = None if args.files_only else session_rows_write
    files = session_run(plan, realtime=args.interval > 0 or args.schedule is not None, rows_writer=writer)
    print(f"session {plan.spec.name}: {len(files)} exposures in {plan.frame_path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run; returns 0 on success, 1 on a processing error, 2 on bad usage."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return _run(args)
    except NotImplementedError as exc:
        print(f"semc simulate: {exc}", file=sys.stderr)
        return 2
    except ProcessingError as exc:
        print(f"semc simulate: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
