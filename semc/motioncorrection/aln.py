"""MotionCor's alignment file (``-OutAln`` / ``-InAln``): the measured motion, to sum a movie again
without aligning it.

Layout, as MotionCor3 writes it (``Align/CSaveAlign.cpp``)::

    setting
       stackSize: <nx> <ny> <frames> 1
       patches: <px> <py> <overlap %>
       throw: <throw> <trunc>
    #    Global Shift
    #---------------------
    globalShift
       stackID 0
         0    +0.000    +0.000          (frame, x, y: one line per processed frame)
    #    Local Shift
    #---------------------
    localShift
       patchID: 0
       Converge: 1
         0    288.00    204.00    +0.012    -0.034   (frame, patch centre x y, shift x y)

The file is named after the movie with its extension replaced by ``.aln``. Shifts follow the
sign of MotionCor's log (the correction: minus the content's motion), in pixels of the input
movie; SEMC writes the local rows as the patch's residual after the whole-frame shift, as in its
``-Patch-Patch.log``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from semc.base.errors import CorruptInput, InputMissing

__all__ = ["AlignmentFile", "aln_path", "aln_read", "aln_write"]

_STEP = "motioncorrection"


@dataclass(frozen=True, slots=True)
class AlignmentFile:
    """Contents of an ``.aln`` file (shifts in the log's convention: the correction, pixels)."""

    stack_size: tuple[int, int, int]
    patches: tuple[int, int, int]
    throw: tuple[int, int]
    global_shifts_px: NDArray[np.float64]
    patch_centres_px: NDArray[np.float64]
    patch_shifts_px: NDArray[np.float64]


def aln_path(folder: str, movie: str) -> str:
    """``<folder>/<movie name with .aln for its extension>``."""
    return os.path.join(folder, os.path.splitext(os.path.basename(movie))[0] + ".aln")


def aln_write(path: str, data: AlignmentFile) -> None:
    """Write ``data`` in MotionCor3's layout (see the module docstring)."""
    lines = ["setting",
             "   stackSize: %d %d %d 1" % data.stack_size,
             "   patches: %d %d %d" % data.patches,
             "   throw: %d %d" % data.throw,
             "#    Global Shift", "#---------------------", "globalShift", "   stackID 0"]
    lines += ["%6d  %+8.3f  %+8.3f" % (i, x, y) for i, (x, y) in enumerate(data.global_shifts_px)]
    if len(data.patch_centres_px):
        lines += ["#    Local Shift", "#---------------------", "localShift"]
        for p, (cx, cy) in enumerate(data.patch_centres_px):
            if p:
                lines.append("")
            lines += [f"   patchID: {p}", "   Converge: 1"]
            lines += ["%6d  %8.2f  %8.2f  %+8.3f  %+8.3f" % (j, cx, cy, x, y)
                      for j, (x, y) in enumerate(data.patch_shifts_px[p])]
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")


def aln_read(path: str) -> AlignmentFile:
    """Read an ``.aln`` file.

    Raises
    ------
    InputMissing
        The file does not exist.
    CorruptInput
        A line does not parse, a section is missing, or the patches disagree in frame count.
    """
    if not os.path.isfile(path):
        raise InputMissing("alignment file not found", step=_STEP, path=path)
    settings: dict[str, list[int]] = {}
    shifts: list[tuple[float, float]] = []
    patches: dict[int, list[tuple[float, float, float, float]]] = {}
    section, patch = "", -1
    with open(path) as fh:
        for number, raw in enumerate(fh, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            try:
                if line in ("setting", "globalShift", "localShift"):
                    section = line
                elif section == "setting" and ":" in line:
                    key, value = line.split(":", 1)
                    settings[key.strip()] = [int(v) for v in value.split()]
                elif line.startswith("stackID"):
                    continue
                elif line.startswith("patchID:"):
                    patch = int(line.split(":", 1)[1])
                    patches[patch] = []
                elif line.startswith("Converge:"):
                    continue
                elif section == "globalShift":
                    _, x, y = line.split()
                    shifts.append((float(x), float(y)))
                elif section == "localShift" and patch >= 0:
                    _, cx, cy, x, y = line.split()
                    patches[patch].append((float(cx), float(cy), float(x), float(y)))
                else:
                    raise ValueError("unexpected line")
            except ValueError as exc:
                raise CorruptInput(f"line {number} ({line!r}) does not parse: {exc}", step=_STEP,
                                   path=path) from None
    for key in ("stackSize", "patches", "throw"):
        if key not in settings:
            raise CorruptInput(f"no {key} in the setting section", step=_STEP, path=path)
    if not shifts:
        raise CorruptInput("no globalShift rows", step=_STEP, path=path)
    rows = [patches[k] for k in sorted(patches)]
    if any(len(r) != len(shifts) for r in rows):
        raise CorruptInput("a patch does not have one row per frame", step=_STEP, path=path)
    table = np.array(rows, dtype=np.float64).reshape(len(rows), len(shifts), 4)
    return AlignmentFile(
        stack_size=tuple(settings["stackSize"][:3]),  # type: ignore[arg-type]
        patches=tuple((settings["patches"] + [0, 0, 0])[:3]),  # type: ignore[arg-type]
        throw=tuple((settings["throw"] + [0, 0])[:2]),  # type: ignore[arg-type]
        global_shifts_px=np.array(shifts, dtype=np.float64),
        patch_centres_px=table[:, 0, :2].copy(),
        patch_shifts_px=table[:, :, 2:].copy(),
    )
