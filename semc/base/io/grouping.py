"""How raw frames are summed into fractions (groups): fixed sizes or a MotionCor FmIntFile.

A :class:`FrameGrouping` is a tuple of group sizes in raw frames, taken in
order from raw frame 0. Frames past the last group are not used (RELION drops
the trailing EER frames that do not fill a group; appion-compat §5.5).

FmIntFile (appion-compat §5.5, MotionCor3 ``DataUtil/CReadFmIntFile.cpp``):
one entry per line, ``<raw frames in block> <raw frames per fraction> [dose per
raw frame, e/Å²]``. Blocks are consecutive. A block's count is clipped to the
raw frames left (Appion's quirk writes the full raw count on its last line:
``39 39 0.032`` / ``1539 100 0.032`` on a 1539-frame movie gives one fraction
of 39 and fifteen of 100). Raw frames of a block that do not fill a whole
fraction are added to the block's last fraction.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from semc.base.errors import InvalidParameters

__all__ = ["FrameGrouping"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FrameGrouping:
    """Consecutive groups of raw frames.

    Parameters
    ----------
    sizes
        Raw frames in each group, in order; every size >= 1.
    dose_per_raw_frame_e_per_a2
        Dose per raw frame of each group (e/Å²), when known (from a 3-column
        FmIntFile), else None.
    """

    sizes: tuple[int, ...]
    dose_per_raw_frame_e_per_a2: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        sizes = tuple(int(s) for s in self.sizes)
        if not sizes:
            raise InvalidParameters("a frame grouping needs at least one group", step="io")
        if min(sizes) < 1:
            raise InvalidParameters(f"group sizes must be >= 1, got {sizes}", step="io")
        object.__setattr__(self, "sizes", sizes)
        dose = self.dose_per_raw_frame_e_per_a2
        if dose is not None:
            dose = tuple(float(d) for d in dose)
            if len(dose) != len(sizes):
                raise InvalidParameters("one dose per group is needed", step="io")
            if min(dose) < 0:
                raise InvalidParameters(f"doses must be >= 0, got {dose}", step="io")
            object.__setattr__(self, "dose_per_raw_frame_e_per_a2", dose)

    @property
    def n_groups(self) -> int:
        """Number of groups (fractions)."""
        return len(self.sizes)

    @property
    def n_frames_used(self) -> int:
        """Raw frames covered by the groups."""
        return sum(self.sizes)

    def bounds(self) -> list[tuple[int, int]]:
        """``(start, stop)`` raw-frame index range of each group (stop exclusive)."""
        out = []
        start = 0
        for size in self.sizes:
            out.append((start, start + size))
            start += size
        return out

    @classmethod
    def fixed(cls, n_frames: int, group_size: int, *, remainder: str = "drop") -> "FrameGrouping":
        """Groups of ``group_size`` raw frames.

        Parameters
        ----------
        n_frames
            Raw frames in the movie.
        group_size
            Raw frames per group.
        remainder
            What to do with the ``n_frames % group_size`` trailing frames:
            ``"drop"`` (RELION), ``"merge"`` (add them to the last group) or
            ``"keep"`` (a last, smaller group).

        Raises
        ------
        InvalidParameters
            On sizes < 1, fewer frames than one group, or an unknown remainder rule.
        """
        if n_frames < 1 or group_size < 1:
            raise InvalidParameters(
                f"n_frames and group_size must be >= 1, got {n_frames}, {group_size}", step="io"
            )
        if remainder not in ("drop", "merge", "keep"):
            raise InvalidParameters(f"remainder must be drop, merge or keep, got {remainder!r}", step="io")
        q, m = divmod(n_frames, group_size)
        if q == 0:
            if remainder == "drop":
                raise InvalidParameters(
                    f"{n_frames} frames do not fill one group of {group_size}", step="io"
                )
            return cls((m,))
        sizes = [group_size] * q
        if m and remainder == "merge":
            sizes[-1] += m
        elif m and remainder == "keep":
            sizes.append(m)
        return cls(tuple(sizes))

    @classmethod
    def from_fmintfile(cls, path_or_text: str | os.PathLike[str], n_frames: int) -> "FrameGrouping":
        """Groups from a MotionCor FmIntFile (a path, or the file's text when it holds a newline).

        Raises
        ------
        InvalidParameters
            When a line does not parse, or no fraction results.
        """
        text, source = _fmint_text(path_or_text)
        sizes: list[int] = []
        doses: list[float | None] = []
        remaining = int(n_frames)
        for lineno, line in enumerate(text.splitlines(), 1):
            fields = line.split()
            if not fields or remaining <= 0:
                continue
            block, size, dose = _fmint_line(fields, lineno, source)
            block = min(block, remaining)
            remaining -= block
            q, m = divmod(block, size)
            block_sizes = [size] * q if q else [m]
            if q and m:
                block_sizes[-1] += m
            sizes += block_sizes
            doses += [dose] * len(block_sizes)
        if not sizes:
            raise InvalidParameters("FmIntFile gives no fraction", step="io", path=source)
        dose_tuple = None if any(d is None for d in doses) else tuple(d for d in doses if d is not None)
        return cls(tuple(sizes), dose_tuple)


def _fmint_text(path_or_text: str | os.PathLike[str]) -> tuple[str, str | None]:
    if isinstance(path_or_text, str) and "\n" in path_or_text:
        return path_or_text, None
    path = os.fspath(path_or_text)
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return fh.read(), path
    except OSError as exc:
        raise InvalidParameters(f"cannot read FmIntFile: {exc}", step="io", path=path) from None


def _fmint_line(fields: list[str], lineno: int, source: str | None) -> tuple[int, int, float | None]:
    try:
        block = int(float(fields[0]))
        size = int(float(fields[1]))
        dose = float(fields[2]) if len(fields) > 2 else None
    except (ValueError, IndexError):
        raise InvalidParameters(
            f"FmIntFile line {lineno} is not '<frames> <group> [dose]': {' '.join(fields)!r}",
            step="io",
            path=source,
        ) from None
    if block < 1 or size < 1:
        raise InvalidParameters(f"FmIntFile line {lineno} needs positive counts", step="io", path=source)
    return block, size, dose
