"""Tilt schemes (acquisition order of tilt angles) and tilt geometry.

Geometry: the tilt axis is the image y axis (rows). Tilting by θ rotates the
specimen about y: ``x' = x cos θ + z sin θ``, ``y' = y``, ``z' = −x sin θ + z cos θ``
(x, y, z in the specimen frame, Å, z towards the source, origin at the field
centre). The projection is along z'; a point lands at column ``nx // 2 + x' / pixel``
and row ``ny // 2 + y / pixel``, and is imaged at the local defocus
``Δf_nominal + z'`` (positive = underfocus), so the defocus varies linearly
across the tilted field, perpendicular to the tilt axis.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from semc.base.errors import InvalidParameters

__all__ = ["SCHEMES", "tilt_angles", "tilt_rotation", "tilted_positions"]

SCHEMES = ("dose-symmetric", "bidirectional", "continuous")


def _grid(tilt_min: float, tilt_max: float, step: float) -> list[float]:
    n_neg = int(math.floor(-tilt_min / step + 1e-9))
    n_pos = int(math.floor(tilt_max / step + 1e-9))
    return [float(round(k * step, 6)) for k in range(-n_neg, n_pos + 1)]


def tilt_angles(
    scheme: str, *, tilt_min_degree: float, tilt_max_degree: float, step_degree: float,
    group_size: int = 2, start_degree: float = 0.0,
) -> list[float]:
    """Tilt angles (degrees) in acquisition order.

    - ``dose-symmetric`` (Hagen et al. 2017, JSB 197:191, as SerialEM groups it):
      0°, then groups of ``group_size`` angles alternating between the positive
      and the negative branch (group 2, step 3: 0, 3, 6, −3, −6, 9, 12, −9, −12, ...).
    - ``bidirectional``: from ``start_degree`` up to ``tilt_max``, then from
      ``start_degree − step`` down to ``tilt_min``.
    - ``continuous``: from ``tilt_min`` to ``tilt_max`` in one sweep.

    Raises
    ------
    InvalidParameters
        Unknown scheme, empty range, non-positive step or group size.
    """
    if scheme not in SCHEMES:
        raise InvalidParameters(f"tilt scheme must be one of {SCHEMES}, got {scheme!r}", step="simulation")
    if step_degree <= 0 or group_size < 1 or not tilt_min_degree <= 0 <= tilt_max_degree:
        raise InvalidParameters("need step > 0, group_size >= 1 and tilt_min <= 0 <= tilt_max", step="simulation")
    grid = _grid(tilt_min_degree, tilt_max_degree, step_degree)
    if scheme == "continuous":
        return grid
    if scheme == "bidirectional":
        start = min(grid, key=lambda a: abs(a - start_degree))
        return [a for a in grid if a >= start] + [a for a in reversed(grid) if a < start]
    pos = [a for a in grid if a > 0]
    neg = [a for a in reversed(grid) if a < 0]
    order = [0.0]
    while pos or neg:
        for branch in (pos, neg):
            order += branch[:group_size]
            del branch[:group_size]
    return order


def tilt_rotation(theta_degree: float) -> NDArray[np.float64]:
    """The 3×3 rotation about y by θ (see the module docstring)."""
    t = math.radians(theta_degree)
    c, s = math.cos(t), math.sin(t)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def tilted_positions(positions_angstrom: NDArray[np.float64], theta_degree: float) -> NDArray[np.float64]:
    """Specimen-frame points (n, 3) in the beam frame of tilt θ (n, 3): x', y', z'."""
    return positions_angstrom @ tilt_rotation(theta_degree).T
