"""Per-frame detector correction: dark, gain and defect replacement (pure arrays)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from semc.motioncorrection.calc.internal.prepare_kernels import (
    correct_and_bin,
    correct_and_warp,
    correct_frame,
)

__all__ = ["defect_sources", "FramePreparer", "integration_ranges"]


def defect_sources(
    defect_mask: NDArray[np.bool_], *, radius_px: int = 2, seed: int = 0
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """For each defect pixel, a random good pixel within +-radius (as RELION/MotionCor do).

    Returns
    -------
    (targets, sources)
        Flat indices: ``frame.flat[targets] = frame.flat[sources]`` repairs a frame.
        Defects with no good neighbour within the radius take the nearest good
        pixel found in a widening search.
    """
    mask = np.asarray(defect_mask, dtype=bool)
    ny, nx = mask.shape
    ys, xs = np.nonzero(mask)
    rng = np.random.default_rng(seed)
    src = np.full(ys.size, -1, dtype=np.int64)
    r = radius_px
    todo = np.arange(ys.size)
    while todo.size and r <= max(ny, nx):
        for _ in range(8):
            if not todo.size:
                break
            dy = rng.integers(-r, r + 1, todo.size)
            dx = rng.integers(-r, r + 1, todo.size)
            cy = np.clip(ys[todo] + dy, 0, ny - 1)
            cx = np.clip(xs[todo] + dx, 0, nx - 1)
            ok = ~mask[cy, cx]
            src[todo[ok]] = cy[ok] * nx + cx[ok]
            todo = todo[~ok]
        r *= 2
    if todo.size:
        raise ValueError("defect mask covers the whole image")
    return ys.astype(np.int64) * nx + xs, src


@dataclass(frozen=True, slots=True)
class FramePreparer:
    """Turns a raw frame into a corrected float32 frame: (raw - dark) * gain, defects repaired.

    Build it with `FramePreparer.build`, which folds the defect repair into the
    references: a defect pixel takes its source pixel's raw value, gain and dark,
    so the corrected value equals the source's corrected value exactly.

    Attributes
    ----------
    gain, dark
        Shape (ny, nx) float32 C-contiguous or None (already oriented to the movie).
    defect_targets, defect_sources
        Flat indices from `defect_sources`, or None.
    """

    gain: NDArray[np.float32] | None = None
    dark: NDArray[np.float32] | None = None
    defect_targets: NDArray[np.int64] | None = None
    defect_sources: NDArray[np.int64] | None = None

    @classmethod
    def build(
        cls, *, gain: NDArray[np.floating] | None = None, dark: NDArray[np.floating] | None = None,
        defect_mask: NDArray[np.bool_] | None = None,
    ) -> "FramePreparer":
        """Preparer with references copied to float32 and defects folded in (see class docstring)."""
        g = None if gain is None else np.array(gain, dtype=np.float32, order="C")
        d = None if dark is None else np.array(dark, dtype=np.float32, order="C")
        targets = sources = None
        if defect_mask is not None and np.any(defect_mask):
            targets, sources = defect_sources(defect_mask)
            for ref in (g, d):
                if ref is not None:
                    flat = ref.reshape(-1)
                    flat[targets] = flat[sources]
        return cls(gain=g, dark=d, defect_targets=targets, defect_sources=sources)

    def repaired(self, raw: NDArray[np.generic]) -> NDArray[np.generic]:
        """The raw frame, C-contiguous, with defect pixels copied from their sources (a copy if so)."""
        if self.defect_targets is None or not self.defect_targets.size:
            return np.ascontiguousarray(raw)
        out = np.array(raw, order="C")
        flat = out.reshape(-1)
        flat[self.defect_targets] = flat[self.defect_sources]
        return out

    def repair_stack(
        self, frames: NDArray[np.generic], index: NDArray[np.integer], *, in_place: bool = False
    ) -> tuple[NDArray[np.generic], "FramePreparer"]:
        """Repair the defect pixels of frames ``index`` once for the whole movie.

        Returns the frames (C-contiguous; repaired in place when ``in_place`` and the
        array allows it, else a repaired copy) and a preparer that does not repair
        again. Without defects the frames and this preparer are returned as they are.
        """
        if self.defect_targets is None or not self.defect_targets.size:
            return frames, self
        ok = in_place and isinstance(frames, np.ndarray) and frames.flags.writeable and frames.flags.c_contiguous
        out = frames if ok else np.array(frames, order="C")
        for i in index:
            flat = out[i].reshape(-1)
            flat[self.defect_targets] = flat[self.defect_sources]
        return out, replace(self, defect_targets=None, defect_sources=None)

    def __call__(self, raw: NDArray[np.generic], out: NDArray[np.float32] | None = None) -> NDArray[np.float32]:
        return correct_frame(self.repaired(raw), gain=self.gain, dark=self.dark, out=out)

    def binned(self, raw: NDArray[np.generic], factor: int, out: NDArray[np.float32] | None = None) -> NDArray[np.float32]:
        """Corrected frame summed over factor x factor blocks."""
        return correct_and_bin(self.repaired(raw), gain=self.gain, dark=self.dark, factor=factor, out=out)

    def warped(
        self, raw: NDArray[np.generic], *, coefficients_x: NDArray[np.float64],
        coefficients_y: NDArray[np.float64], out: NDArray[np.float32] | None = None,
    ) -> NDArray[np.float32]:
        """Corrected frame resampled to undo a smooth local motion."""
        return correct_and_warp(self.repaired(raw), gain=self.gain, dark=self.dark,
                                coefficients_x=coefficients_x, coefficients_y=coefficients_y, out=out)


def integration_ranges(
    lines: tuple[tuple[int, int, float | None], ...], *, n_raw: int, fallback_dose_e_per_a2: float
) -> tuple[list[tuple[int, int]], list[float]]:
    """Raw-frame ranges and doses of the rendered frames described by an FmIntFile.

    Each line is (raw frames it covers, raw frames per rendered frame, dose per
    raw frame or None). Lines are consumed in order and capped at the raw frames
    left (MotionCor's reading: Appion writes the total count on its last line);
    raw frames that do not fill a rendered frame are dropped. Without a dose
    column a rendered frame gets ``fallback_dose_e_per_a2`` (``-FmDose``).

    Returns
    -------
    (ranges, doses)
        ``[start, stop)`` raw-frame ranges and the dose (e/A^2) of each rendered frame.

    Raises
    ------
    ValueError
        On non-positive counts or when no rendered frame results.
    """
    ranges: list[tuple[int, int]] = []
    doses: list[float] = []
    start = 0
    for count, size, dose in lines:
        if count < 1 or size < 1:
            raise ValueError(f"FmIntFile line ({count}, {size}) needs positive counts")
        count = min(count, n_raw - start)
        for _ in range(count // size):
            ranges.append((start, start + size))
            doses.append(size * dose if dose is not None else fallback_dose_e_per_a2)
            start += size
        start += count % size
        if start >= n_raw:
            break
    if not ranges:
        raise ValueError("the FmIntFile describes no rendered frame")
    return ranges, doses
