"""From a parsed MotionCor2 command line to typed parameters (pure, except reading the FmIntFile)."""

from __future__ import annotations

from semc.base.errors import CorruptInput, InputMissing, InvalidParameters
from semc.motioncorrection.motioncor2_args import MotionCor2Args
from semc.motioncorrection.types import MotionCorrectionParams

__all__ = ["params_from_args", "fmintfile_lines", "fmintfile_groups"]

_STEP = "motioncorrection"


def params_from_args(args: MotionCor2Args, movie: str | None = None) -> MotionCorrectionParams:
    """`MotionCorrectionParams` with MotionCor3's meaning of every flag that changes the result.

    ``-SumRange`` makes a ``_DWS`` sum only when given explicitly; ``-FtBin``
    sets the output binning; ``-OutStack 1`` keeps the aligned frames.

    Raises
    ------
    InvalidParameters
        When a value is out of range (the message names the parameter).
    """
    patch = args["Patch"]
    bft = args["Bft"]
    group = args["Group"]
    pix = args.first("PixSize")
    fm_dose = args.first("FmDose")
    try:
        return MotionCorrectionParams(
            pixel_size_angstrom=pix if pix > 0 else None,
            voltage_kv=args.first("kV"),
            dose_per_frame_e_per_a2=fm_dose if pix > 0 else 0.0,
            initial_dose_e_per_a2=args.first("InitDose"),
            patches_xy=(patch[0], patch[1]),
            patch_overlap_percent=float(patch[2]),
            iterations=args.first("Iter"),
            tolerance_px=args.first("Tol"),
            bfactor_global_px2=bft[0],
            bfactor_local_px2=bft[1],
            phase_only=bool(args.first("PhaseOnly")),
            group_global=group[0],
            group_local=group[1],
            reference_frame=args.first("FmRef"),
            throw_frames=args.first("Throw"),
            truncate_frames=args.first("Trunc"),
            output_bin=args.first("FtBin"),
            dose_range_sum_e_per_a2=tuple(args["SumRange"]) if "SumRange" in args.given else None,
            split_sum=bool(args.first("SplitSum")),
            output_stack=bool(args.first("OutStack")),
            mag_anisotropy=tuple(args["Mag"]),
            align=bool(args.first("Align")),
            in_frame_motion=bool(args.first("InFmMotion")),
            correct_interpolation=bool(args.first("CorrInterp")),
        )
    except InvalidParameters as exc:
        raise InvalidParameters(exc.message, step=_STEP, path=movie) from None


def fmintfile_lines(text: str) -> tuple[tuple[int, int, float | None], ...]:
    """Parse FmIntFile text: ``<raw frames> <raw frames per rendered frame> [<dose per raw frame>]``.

    Raises
    ------
    ValueError
        On a line that is not two or three numbers.
    """
    out = []
    for raw in text.splitlines():
        words = raw.split()
        if not words or words[0].startswith("#"):
            continue
        if len(words) not in (2, 3):
            raise ValueError(f"FmIntFile line {raw!r} must hold 2 or 3 numbers")
        dose = float(words[2]) if len(words) == 3 else None
        out.append((int(float(words[0])), int(float(words[1])), dose))
    return tuple(out)


def fmintfile_groups(args: MotionCor2Args, movie: str | None = None) -> tuple[tuple[int, int, float | None], ...]:
    """Read and parse ``-FmIntFile``.

    Raises
    ------
    InputMissing
        The file does not exist.
    CorruptInput
        The file does not parse.
    """
    path = args["FmIntFile"]
    try:
        with open(path) as fh:
            return fmintfile_lines(fh.read())
    except FileNotFoundError:
        raise InputMissing("FmIntFile not found", step=_STEP, path=path) from None
    except ValueError as exc:
        raise CorruptInput(str(exc), step=_STEP, path=path) from None
