"""``makeDDAlignMotionCor2_UCSF.py``: classic Appion's motion-correction command line, run by SEMC.

myamiweb's command lines run unchanged (compat §4.1–§4.2): every classic flag is accepted with its
classic meaning and default, and the run is SEMC's daemon (motion correction only) with the
classic rows and files. The engine is SEMC's own (``builtin``) or an installed MotionCor2/MotionCor3
(``--engine``, default ``$SEMC_CLASSIC_MOTIONCOR_ENGINE`` else ``builtin``). Example (what the web
sends, through runJob.py)::

    makeDDAlignMotionCor2_UCSF.py --bin=1 --align --gpuids=0 --rendered_frame_size=1 --ddstartframe=0
        --Patchrows=5 --Patchcols=5 --Iter=7 --Tol=0.5 --doseweight --Bft_global=500 --Bft_local=100
        --alignlabel=a --nrw=1 --runname=ddstack1 --rundir=/data/appion/26nov23a/ddstack/ddstack1
        --preset=enn --commit --projectid=1 --session=26nov23a --no-rejects --continue --parallel
        --expid=7 --jobtype=makeddrawframestack --jobid=74
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace

from semc.base.errors import InvalidParameters
from semc.classic.options import ClassicArgs, ClassicParser, ClassicUsageError
from semc.classic.script import (
    RunContext,
    ScriptSpec,
    loop_values,
    script_main,
    selection_from_args,
)

__all__ = ["MOTIONCOR_ENGINES", "SPEC", "SPEC_MOTIONCOR3", "main", "main_motioncor3", "motioncor_adjust", "params_build",
           "parser_build"]

SPEC = ScriptSpec(prog="makeDDAlignMotionCor2_UCSF.py", function="makeDDAlignMotionCor2_UCSF",
                  process_dir="ddstack", jobtype="makeddrawframestack", steps=("motioncorrection",))
#: leginon-fork's MotionCor3 variant: the same flags plus --gainfile/--forceTiff, engine motioncor3
SPEC_MOTIONCOR3 = replace(SPEC, prog="makeDDAlignMotionCor3.py", function="makeDDAlignMotionCor3")
MOTIONCOR_ENGINES = ("builtin", "builtin-gpu", "motioncor2", "motioncor3")
ENGINE_ENV = "SEMC_CLASSIC_MOTIONCOR_ENGINE"

#: flags whose non-default values SEMC cannot honour yet: refused with this reason, never ignored
_REFUSED = {
    "stackid": (None, "selecting the images of a particle stack is not supported"),
    "square": (False, "square output geometry is not supported"),
    "override_db": (False, "overriding the database's bad rows/columns/flip is not supported"),
    "flipgain": (False, "flipping the dark/bright references by hand is not supported"),
    "framepath": (None, "forcing a frame path is not supported: SEMC reads the session's frame path"),
    "refimgid": (None, "taking references from another image is not supported"),
    "trim": (0, "trimming the aligned image edge is not supported"),
    "clip": (None, "clipping raw frames is not supported"),
    "eer_sampling": (1, "EER super-resolution sampling (2, 3) is not supported"),
    "gainfile": (None, "a gain file instead of the image's norm reference is not supported"),
}


def parser_build(env: Mapping[str, str] | None = None, *, spec: ScriptSpec = SPEC,
                 default_engine: str = "builtin") -> ClassicParser:
    """The script's full option set: classic global/loop flags plus the motion-correction flags."""
    env = os.environ if env is None else env
    p = ClassicParser(spec.prog, "\n\n".join(__doc__.split("\n\n")[1:3]))
    g = "motion correction (MotionCor2 flag in brackets)"
    p.value(g, "--ddstartframe", dest="startframe", type=int, default=0,
            help="first frame summed (frames before it are thrown away) [-Throw]")
    p.value(g, "--ddnframe", dest="nframe", type=int,
            help="number of frames summed from --ddstartframe (default: to the end) [-Trunc]")
    p.value(g, "--alignlabel", dest="alignlabel", default="a",
            help="aligned preset suffix: <preset>-<label> and <preset>-<label>-DW")
    p.value(g, "--bin", dest="bin", type=float, default=1.0, help="Fourier binning of the aligned sums [-FtBin]")
    p.switch(g, ["--doseweight"], [], dest="doseweight", default=False,
             help="also make and store the dose-weighted sum (<preset>-a-DW) [-FmDose -PixSize -kV]")
    p.value(g, "--totaldose", dest="totaldose", type=float,
            help="total dose e/Å² (default: the preset's dose); dose per frame = total / frames")
    p.switch(g, ["--align"], [], dest="align", default=False,
             help="align the frames (myamiweb always sends it); without it the frames are only summed")
    p.value(g, "--nrw", dest="nrw", type=int, default=1,
            help="frames grouped for the global alignment (running-average window) [-Group]")
    p.value(g, "--Iter", dest="Iter", type=int, default=7, help="alignment iterations (0: engine default) [-Iter]")
    p.value(g, "--Tol", dest="Tol", type=float, default=0.5,
            help="alignment tolerance, pixels (0: engine default) [-Tol]")
    p.value(g, "--Patchrows", dest="Patchrows", type=int, default=0, help="patches along y (0: global only) [-Patch]")
    p.value(g, "--Patchcols", dest="Patchcols", type=int, default=0, help="patches along x (0: global only) [-Patch]")
    p.value(g, "--Bft_global", dest="Bft_global", type=float, default=500.0,
            help="B-factor of the global alignment, pixel² (> 0) [-Bft]")
    p.value(g, "--Bft_local", dest="Bft_local", type=float, default=150.0,
            help="B-factor of the patch alignment, pixel² (> 0; the web sends 100) [-Bft]")
    p.value(g, "--rendered_frame_size", dest="rendered_frame_size", type=int, default=1,
            help="EER: raw frames per rendered frame [-FmIntFile]; other movies: no effect in SEMC")
    p.value(g, "--eer_sampling", dest="eer_sampling", type=int, default=1,
            help="EER up-sampling (only 1 is supported) [-EerSampling]")
    p.value(g, "--engine", dest="engine", default=env.get(ENGINE_ENV) or default_engine, choices=MOTIONCOR_ENGINES,
            help=f"SEMC: builtin, builtin-gpu, or an installed motioncor2/motioncor3 (SEMC_MOTIONCOR2_EXE / "
                 f"SEMC_MOTIONCOR3_EXE or PATH); default ${ENGINE_ENV} else {default_engine}")
    r = "classic flags SEMC refuses unless left at their default"
    p.value(r, "--stackid", dest="stackid", type=int, help=_REFUSED["stackid"][1])
    p.switch(r, ["--square"], [], dest="square", default=False, help=_REFUSED["square"][1])
    p.switch(r, ["--override_db"], [], dest="override_db", default=False, help=_REFUSED["override_db"][1])
    p.switch(r, ["--flipgain"], [], dest="flipgain", default=False, help=_REFUSED["flipgain"][1])
    p.value(r, "--framepath", dest="framepath", help=_REFUSED["framepath"][1])
    p.value(r, "--refimgid", dest="refimgid", type=int, help=_REFUSED["refimgid"][1])
    p.value(r, "--trim", dest="trim", type=int, default=0, help=_REFUSED["trim"][1])
    p.value(r, "--clip", dest="clip", type=int, help=_REFUSED["clip"][1])
    for flags, dest, why, value in (
        (("--keepstack",), "keepstack", "classic forced it off for MotionCor2: no frame stack is kept", False),
        (("--no-keepstack",), "nokeepstack", "no frame stack is kept (classic forced this for MotionCor2)", False),
        (("--tempdir",), "tempdir", "scratch space: SEMC writes each attempt under <rundir>/.attempts", True),
        (("--alignoffset",), "fod", "MotionCorr 1 only", True),
        (("--alignccbox",), "pbx", "MotionCorr 1 only", True),
        (("--rawarea",), "rawarea", "frame-stack geometry of classic's own stacks: not used", False),
        (("--useGS",), "useGS", "Gram-Schmidt dark scaling of classic's CPU flat field: not used", False),
        (("--no-cyclechannels",), "nocyclechannels", "reference channel cycling: not used", False),
        (("--compress",), "compress", "compressing raw frames after stacking: SEMC never touches the movies",
         False),
        (("--bad_cols",), "bad_cols", "only with --override_db (refused); the web sends it empty", True),
        (("--bad_rows",), "bad_rows", "only with --override_db (refused); the web sends it empty", True),
        (("--defergpu",), "defergpu", "stacks now, alignment later: SEMC aligns as images arrive", False),
        (("--gpuid",), "gpuid", "GPUs are placed by the cluster (Dask resource GPU)", True),
        (("--gpuids",), "gpuids", "GPUs are placed by the cluster (Dask resource GPU)", True),
        (("--FmRef",), "FmRef", "classic never passed -FmRef: the central frame is the reference", True),
        (("--MaskCentrow",), "MaskCentrow", "-MaskCent: not in MotionCor2 >= 1.5 nor MotionCor3", True),
        (("--MaskCentcol",), "MaskCentcol", "-MaskCent: not in MotionCor2 >= 1.5 nor MotionCor3", True),
        (("--MaskSizerows",), "MaskSizerows", "-MaskSize: not in MotionCor2 >= 1.5 nor MotionCor3", True),
        (("--MaskSizecols",), "MaskSizecols", "-MaskSize: not in MotionCor2 >= 1.5 nor MotionCor3", True),
        (("--force_cpu_flat",), "force_cpu_flat", ("the gain is applied in the camera's orientation either "
                                                   "way (classic rotated it on the CPU, not by -RotGain/-FlipGain)"),
         False),
    ):
        p.ignored(*flags, dest=dest, why=why, takes_value=value)
    if spec is SPEC_MOTIONCOR3:  # leginon-fork's MotionCor3 script adds two flags (compat §5.1)
        p.value(r, "--gainfile", dest="gainfile", help="a gain file instead of the image's norm reference is not "
                                                        "supported")
        p.ignored("--forceTiff", dest="forceTiff", why="MotionCor3 reads the movie as Leginon saved it",
                  takes_value=False)
    return p


def _refusals(args: ClassicArgs) -> None:
    for dest, (default, why) in _REFUSED.items():
        if args.values.get(dest, default) != default:
            raise ClassicUsageError(f"{args.given.get(dest, '--' + dest)}={args[dest]}: {why}")


def _check(args: ClassicArgs) -> None:
    _refusals(args)
    if not (args["Bft_global"] > 0 and args["Bft_local"] > 0):
        raise ClassicUsageError(f"--Bft_global and --Bft_local must be > 0, got {args['Bft_global']} "
                                f"and {args['Bft_local']}")
    if args["bin"] < 1:
        raise ClassicUsageError(f"--bin must be >= 1, got {args['bin']}")
    for dest in ("startframe", "Patchrows", "Patchcols", "Iter", "nrw"):
        if args[dest] < 0:
            raise ClassicUsageError(f"--{dest if dest != 'startframe' else 'ddstartframe'} must be >= 0")
    if args["nframe"] is not None and args["nframe"] < 1:
        raise ClassicUsageError(f"--ddnframe must be >= 1, got {args['nframe']}")
    if args["totaldose"] is not None and not args["totaldose"] > 0:
        raise ClassicUsageError(f"--totaldose must be > 0, got {args['totaldose']}")
    if args["rendered_frame_size"] < 1:
        raise ClassicUsageError(f"--rendered_frame_size must be >= 1, got {args['rendered_frame_size']}")


def motioncorrection_config(args: ClassicArgs, *, rundir: str):
    """The run's `MotionCorrectionTaskConfig` with the classic flags' meaning (pure).

    A zero ``--Iter``/``--Tol``/``--nrw`` was not passed to MotionCor2 by classic, so the engine's
    default applies (15 iterations, 0.1 px, group 1).
    """
    from semc.motioncorrection.task import MotionCorrectionTaskConfig
    from semc.motioncorrection.types import MotionCorrectionParams

    _check(args)
    params = MotionCorrectionParams(
        patches_xy=(args["Patchcols"], args["Patchrows"]), iterations=args["Iter"] or 15,
        tolerance_px=args["Tol"] or 0.1, bfactor_global_px2=args["Bft_global"], bfactor_local_px2=args["Bft_local"],
        group_global=args["nrw"] or 1, throw_frames=args["startframe"], output_bin=args["bin"],
        align=bool(args["align"]))
    return MotionCorrectionTaskConfig(params=params, rundir=rundir, dose_weighting=bool(args["doseweight"]),
                                      eer_frames_per_fraction=args["rendered_frame_size"],
                                      apply_gain_geometry=True, engine=args["engine"])


def motioncor_adjust(*, total_dose_e_per_a2: float | None, n_frames_summed: int | None):
    """The per-exposure rules of ``--totaldose`` and ``--ddnframe`` (None when neither is given); a movie
    shorter than ``--ddstartframe`` + ``--ddnframe`` is that exposure's failure (`InvalidParameters`)."""
    if total_dose_e_per_a2 is None and n_frames_summed is None:
        return None

    def adjust(inputs, config):
        if total_dose_e_per_a2 is not None:
            inputs = replace(inputs, total_dose_e_per_a2=total_dose_e_per_a2,
                             dose_per_frame_e_per_a2=total_dose_e_per_a2 / inputs.n_frames)
        if n_frames_summed is not None:
            mc = config.motioncorrection
            trunc = inputs.n_frames - mc.params.throw_frames - n_frames_summed
            if trunc < 0:
                raise InvalidParameters(f"--ddnframe={n_frames_summed} from --ddstartframe={mc.params.throw_frames} "
                                        f"needs {n_frames_summed + mc.params.throw_frames} frames; the movie has "
                                        f"{inputs.n_frames}", step="motioncorrection", exposure_id=inputs.exposure_id,
                                        path=inputs.movie_path)
            config = replace(config, motioncorrection=replace(mc, params=replace(mc.params, truncate_frames=trunc)))
        return inputs, config

    return adjust


def params_build(args: ClassicArgs, context: RunContext, *, spec: ScriptSpec = SPEC):
    """(LoopParams, ImageSelection, adjust) of a parsed command line and its resolved run (pure)."""
    from semc.loop import LoopParams
    from semc.pipeline import PipelineConfig

    mc = motioncorrection_config(args, rundir=context.rundir)
    params = LoopParams(pipeline=PipelineConfig(steps=spec.steps, motioncorrection=mc),
                        engines={"motioncorrection": args["engine"]}, **loop_values(args, spec=spec, context=context))
    adjust = motioncor_adjust(total_dose_e_per_a2=args["totaldose"], n_frames_summed=args["nframe"])
    return params, selection_from_args(args), adjust


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``makeDDAlignMotionCor2_UCSF.py``."""
    return script_main(SPEC, parser_build, params_build, sys.argv[1:] if argv is None else argv)


def main_motioncor3(argv: Sequence[str] | None = None) -> int:
    """Console script ``makeDDAlignMotionCor3.py`` (engine ``motioncor3`` unless configured otherwise)."""
    return script_main(SPEC_MOTIONCOR3, lambda: parser_build(spec=SPEC_MOTIONCOR3, default_engine="motioncor3"),
                       lambda args, context: params_build(args, context, spec=SPEC_MOTIONCOR3),
                       sys.argv[1:] if argv is None else argv)
