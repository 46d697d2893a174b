"""Per-frame detector correction: dark, gain and defect replacement (pure arrays)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["defect_sources", "FramePreparer"]


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

    Attributes
    ----------
    gain, dark
        Shape (ny, nx) float32 or None (already oriented to the movie).
    defect_targets, defect_sources
        Flat indices from `defect_sources` (empty arrays for none).
    """

    gain: NDArray[np.float32] | None = None
    dark: NDArray[np.float32] | None = None
    defect_targets: NDArray[np.int64] | None = None
    defect_sources: NDArray[np.int64] | None = None

    def __call__(self, raw: NDArray[np.generic]) -> NDArray[np.float32]:
        frame = np.array(raw, dtype=np.float32, order="C")
        for name, ref in (("dark", self.dark), ("gain", self.gain)):
            if ref is not None and ref.shape != frame.shape:
                raise ValueError(f"{name} shape {ref.shape} does not match frame shape {frame.shape}")
        if self.dark is not None:
            frame -= self.dark
        if self.gain is not None:
            frame *= self.gain
        if self.defect_targets is not None and self.defect_targets.size:
            flat = frame.reshape(-1)
            flat[self.defect_targets] = flat[self.defect_sources]
        return frame


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
