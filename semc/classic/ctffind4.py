"""``ctffind4.py`` (and ``ctffind5.py``): classic Appion's CTF estimation command line, run by SEMC.

myamiweb's command lines run unchanged (compat §4.1, §4.3): every classic flag is accepted with its
classic meaning, and the run is SEMC's daemon (CTF estimation only) on the images of ``--preset``
(normally the aligned ``<preset>-a`` or ``<preset>-a-DW``), with classic ApAceRunData/ApCtfData rows
and CTFFIND's files. Each image is searched as classic did: around ``--nominal``, else the best
previous CTF of the image (``--bestdb``), else the microscope's defocus, ``--numstep`` steps of
``--defstep`` µm either way. Example::

    ctffind4.py --ampcontrast=0.07 --fieldsize=1024 --resmin=50 --resmax=4 --defstep=0.1 --numstep=25
        --dast=0.05 --bestdb --runname=ctffind4run1 --rundir=/data/appion/26nov23a/ctf/ctffind4run1
        --preset=enn-a-DW --commit --projectid=1 --session=26nov23a --no-rejects --continue --parallel
        --expid=7 --jobtype=ctfestimate --jobid=75
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace

from semc.classic.options import ClassicArgs, ClassicParser, ClassicUsageError
from semc.classic.script import (
    RunContext,
    ScriptSpec,
    loop_values,
    script_main,
    selection_from_args,
)

__all__ = [
    "CTF_ENGINES",
    "SPEC",
    "SPEC_CTFFIND5",
    "classic_options",
    "ctf_adjust",
    "main",
    "main_ctffind5",
    "params_build",
    "parser_build",
]

SPEC = ScriptSpec(prog="ctffind4.py", function="ctffind4", process_dir="ctf", jobtype="ctfestimate",
                  steps=("ctfestimation",))
SPEC_CTFFIND5 = replace(SPEC, prog="ctffind5.py", function="ctffind5")
CTF_ENGINES = ("builtin", "builtin-gpu", "ctffind4", "ctffind5", "gctf")
ENGINE_ENV = "SEMC_CLASSIC_CTF_ENGINE"


def parser_build(spec: ScriptSpec = SPEC, env: Mapping[str, str] | None = None) -> ClassicParser:
    """The script's full option set: classic global/loop flags plus the CTFFIND flags."""
    env = os.environ if env is None else env
    p = ClassicParser(spec.prog, "\n\n".join(__doc__.split("\n\n")[1:3]))
    g = "CTF estimation (classic ctffind4.py)"
    p.value(g, "--ampcontrast", dest="ampcontrast", type=float, default=0.07, help="amplitude contrast (fraction)")
    p.value(g, "--fieldsize", dest="fieldsize", type=int, default=1024, help="amplitude spectrum box, pixels")
    p.value(g, "--nominal", dest="nominal", type=float,
            help="start defocus, µm (absolute value used); excludes --bestdb")
    p.value(g, "--resmin", dest="resmin", type=float, default=50.0, help="lowest resolution fitted, Å (10–50)")
    p.value(g, "--resmax", dest="resmax", type=float, default=4.0,
            help="highest resolution fitted, Å (<= 15 and < --resmin; web default)")
    p.value(g, "--defstep", dest="defstep", type=float, default=0.1,
            help="defocus search step, µm (0.0001–2; web default: the script's own 1000 failed its check)")
    p.value(g, "--numstep", dest="numstep", type=int, default=25, help="search steps either side of the start")
    p.value(g, "--dast", dest="dast", type=float, default=0.05, help="expected (tolerated) astigmatism, µm")
    p.value(g, "--minphaseshift", "--min_phase_shift", dest="min_phase_shift", type=float, default=10.0,
            help="phase plate: lowest phase shift searched, degrees")
    p.value(g, "--maxphaseshift", "--max_phase_shift", dest="max_phase_shift", type=float, default=170.0,
            help="phase plate: highest phase shift searched, degrees")
    p.value(g, "--phasestep", "--phase_search_step", dest="phase_search_step", type=float, default=10.0,
            help="phase plate: phase shift search step, degrees")
    p.switch(g, ["--bestdb", "--best-database"], [], dest="bestdb", default=False,
             help="seed amplitude contrast, astigmatism and resmax from the image's best previous CTF")
    p.switch(g, ["--phaseplate", "--phase_plate"], [], dest="shift_phase", default=False,
             help="search an additional phase shift (phase plate)")
    p.switch(g, ["--exhaust", "--exhaustive-search"], [], dest="exhaustiveSearch", default=False,
             help="slower, more exhaustive astigmatism search")
    p.value(g, "--engine", dest="engine", default=env.get(ENGINE_ENV) or "builtin", choices=CTF_ENGINES,
            help=f"SEMC: builtin (SEMC's CTFFIND 4.1 search), builtin-gpu, or an installed ctffind4/ctffind5/gctf "
                 f"(SEMC_CTFFIND4_EXE, ... or PATH); default ${ENGINE_ENV} else")
    r = "classic flags SEMC refuses unless left at their default"
    p.value(r, "--ddstackid", dest="ddstackid", type=int,
            help="CTF on a saved frame stack (movie mode) is not supported: run on the aligned preset")
    p.value(r, "--reprocess", dest="reprocess", type=float,
            help="redoing images below a confidence is not supported: SEMC stores each image once per run; "
                 "use a new --runname")
    p.ignored("--num_frame_avg", dest="num_frame_avg", why="movie mode only (--ddstackid, refused)")
    p.ignored("--uncorrected", dest="uncorrected", why="classic loop flag without effect on CTF estimation",
              takes_value=False)
    return p


def classic_options(args: ClassicArgs):
    """`ClassicCtffindOptions` of the command line (checks classic's ranges; pure)."""
    from semc.ctfestimation.calc.external_classic import ClassicCtffindOptions

    for dest in ("ddstackid", "reprocess"):
        if args[dest] is not None:
            raise ClassicUsageError(f"{args.given[dest]}={args[dest]} is not supported (see --help)")
    return ClassicCtffindOptions(
        ampcontrast=args["ampcontrast"], fieldsize=args["fieldsize"], resmin_angstrom=args["resmin"],
        resmax_angstrom=args["resmax"], defstep_um=args["defstep"], numstep=args["numstep"], dast_um=args["dast"],
        nominal_um=args["nominal"], bestdb=bool(args["bestdb"]), exhaust=bool(args["exhaustiveSearch"]),
        phaseplate=bool(args["shift_phase"]), min_phase_shift_deg=args["min_phase_shift"],
        max_phase_shift_deg=args["max_phase_shift"], phase_search_step_deg=args["phase_search_step"])


def previous_ctf_get(image_id: int):
    """The image's best previous CTF (lowest res80, else the newest row), or None (controller only)."""
    from semc import models as m
    from semc.ctfestimation.calc.external_classic import PreviousCtf

    rows = m.ApCtfData.objects.filter(image_id=image_id, defocus1__isnull=False, defocus2__isnull=False)
    row = (rows.filter(resolution_80_percent__isnull=False).order_by("resolution_80_percent", "-id").first()
           or rows.order_by("-id").first())
    if row is None:
        return None
    return PreviousCtf(defocus1_m=abs(row.defocus1), defocus2_m=abs(row.defocus2),
                       amplitude_contrast=row.amplitude_contrast, resolution_80_percent=row.resolution_80_percent,
                       resolution_50_percent=row.resolution_50_percent)


def ctf_adjust(options, *, previous_get=previous_ctf_get):
    """Per image: classic's start defocus and search range, and the ``--bestdb`` seeds, set on the config
    (and the start defocus on the inputs, stored as ``defocusinit``)."""
    from semc.ctfestimation.calc.external_classic import ctffind_params_from_classic

    def adjust(inputs, config):
        previous = previous_get(inputs.exposure_id) if options.bestdb else None
        scope_m = inputs.nominal_defocus_angstrom * 1e-10 if inputs.nominal_defocus_angstrom else None
        found, start = ctffind_params_from_classic(
            input_path=f"{inputs.filename}.mrc", diagnostic_path=f"{inputs.filename}-pow.mrc",
            pixel_size_angstrom=inputs.pixel_size_angstrom, voltage_kv=inputs.voltage_kv, cs_mm=inputs.cs_mm,
            options=options, previous=previous, scope_defocus_m=scope_m)
        ctf = config.ctfestimation
        params = replace(
            ctf.params, amplitude_contrast=found.amplitude_contrast,
            max_resolution_angstrom=found.resolution_max_angstrom, min_defocus_angstrom=found.defocus_min_angstrom,
            max_defocus_angstrom=found.defocus_max_angstrom, defocus_step_angstrom=found.defocus_step_angstrom,
            astigmatism_restraint_angstrom=found.expected_astigmatism_angstrom,
            exhaustive_search=found.exhaustive_search, find_phase_shift=found.phase_shift,
            min_phase_shift_radian=math.radians(found.phase_shift_min_deg),
            max_phase_shift_radian=math.radians(found.phase_shift_max_deg),
            phase_shift_step_radian=math.radians(found.phase_shift_step_deg))
        return replace(inputs, nominal_defocus_angstrom=start), replace(config, ctfestimation=replace(ctf, params=params))

    return adjust


def _params_build(spec: ScriptSpec):
    def params_build(args: ClassicArgs, context: RunContext):
        """(LoopParams, ImageSelection, adjust) of a parsed command line and its resolved run (pure)."""
        from semc.ctfestimation.task import ctf_task_config
        from semc.loop import LoopParams
        from semc.pipeline import PipelineConfig

        options = classic_options(args)
        ctf = ctf_task_config(rundir=context.rundir, box=options.fieldsize, resmin=options.resmin_angstrom,
                              resmax=options.resmax_angstrom, amplitude_contrast=options.ampcontrast,
                              engine=args["engine"])
        ctf = replace(ctf, params=replace(ctf.params, defocus_step_angstrom=options.defstep_um * 1e4))
        params = LoopParams(pipeline=PipelineConfig(steps=spec.steps, ctfestimation=ctf),
                            engines={"ctfestimation": args["engine"]}, **loop_values(args, spec=spec, context=context))
        return params, selection_from_args(args), ctf_adjust(options)

    return params_build


params_build = _params_build(SPEC)


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``ctffind4.py``."""
    return script_main(SPEC, parser_build, params_build, sys.argv[1:] if argv is None else argv)


def main_ctffind5(argv: Sequence[str] | None = None) -> int:
    """Console script ``ctffind5.py`` (classic's CTFFIND 5 variant: the same options)."""
    return script_main(SPEC_CTFFIND5, lambda: parser_build(SPEC_CTFFIND5), _params_build(SPEC_CTFFIND5),
                       sys.argv[1:] if argv is None else argv)
