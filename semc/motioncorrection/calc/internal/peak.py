"""Sub-pixel location of correlation peaks near the origin."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["peak_near_origin"]


def _parabola_offset(minus: NDArray, centre: NDArray, plus: NDArray) -> NDArray[np.float64]:
    denom = minus - 2.0 * centre + plus
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.where(denom < 0, 0.5 * (minus - plus) / denom, 0.0)
    return np.clip(off, -0.5, 0.5)


def peak_near_origin(cc: NDArray[np.floating], max_shift_px: int) -> NDArray[np.float64]:
    """Sub-pixel (x, y) of the maximum of periodic correlation maps within +-max_shift_px.

    The integer maximum is refined with a separate three-point parabola along x
    and along y (the neighbours wrap around periodically).

    Parameters
    ----------
    cc
        Shape (n, cy, cx): correlation maps with the zero shift at index (0, 0).
    max_shift_px
        Search radius in map pixels (clipped to fit the map).

    Returns
    -------
    ndarray
        Shape (n, 2), float64: (x, y) positions in map pixels, signed.

    Raises
    ------
    ValueError
        If ``cc`` is not 3-D or ``max_shift_px`` is negative.
    """
    if cc.ndim != 3:
        raise ValueError(f"cc must have shape (n, cy, cx), got {cc.shape}")
    if max_shift_px < 0:
        raise ValueError(f"max_shift_px must be >= 0, got {max_shift_px}")
    n, cy, cx = cc.shape
    wy = int(min(max_shift_px, cy // 2 - 2))
    wx = int(min(max_shift_px, cx // 2 - 2))
    iy = np.arange(-wy - 1, wy + 2) % cy
    ix = np.arange(-wx - 1, wx + 2) % cx
    win = cc[:, iy[:, None], ix[None, :]].astype(np.float64)  # (n, 2wy+3, 2wx+3)
    inner = win[:, 1:-1, 1:-1].reshape(n, -1)
    flat = np.argmax(inner, axis=1)
    py, px = np.unravel_index(flat, (2 * wy + 1, 2 * wx + 1))
    py = py + 1
    px = px + 1
    rows = np.arange(n)
    c0 = win[rows, py, px]
    ox = _parabola_offset(win[rows, py, px - 1], c0, win[rows, py, px + 1])
    oy = _parabola_offset(win[rows, py - 1, px], c0, win[rows, py + 1, px])
    out = np.empty((n, 2), dtype=np.float64)
    out[:, 0] = px - 1 - wx + ox
    out[:, 1] = py - 1 - wy + oy
    return out
