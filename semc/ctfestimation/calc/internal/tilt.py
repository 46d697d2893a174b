"""Sample tilt (axis and angle) from the change of defocus across a micrograph, as CTFFIND 5 reports it.

A tilted specimen's defocus varies linearly across the image. With the tilt axis at
``axis`` degrees from the x axis (counter-clockwise towards y) and a tilt of ``angle``
degrees, a point (x, y) of the image (Å from its centre; x along columns, y along
rows) lies at a signed distance d = -x sin(axis) + y cos(axis) from the axis and at a
defocus of mean + d tan(angle) (more underfocus on the side the axis' normal points
to). The axis is reported in [0, 360) and the angle in [0, 90), so the sign of the
tilt is carried by the axis.

Steps: the micrograph is cut into tiles; the mean defocus of each tile is scanned over
the whole defocus range on the tile's 2D spectrum, the whole micrograph's astigmatism
and phase shift held fixed (the exhaustive grid kernel with one astigmatism row), and
polished; a plane is fitted to the tile defoci (weighted by their scores, one pass of
outlier rejection); the plane is then refined by maximising the sum of the tiles'
scores at the defoci it predicts (Nelder-Mead), and converted to axis and angle.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import scipy.optimize

from semc.base.errors import InvalidParameters
from semc.ctfestimation.calc.internal.exhaustive import grid_scores, grid_step_for_band
from semc.ctfestimation.calc.internal.model import CtfOptics
from semc.ctfestimation.calc.internal.search import PixelScorer, fit_pixels_select
from semc.ctfestimation.calc.internal.spectrum import (
    amplitude_spectrum_from_image,
    spectrum_background_subtract,
)
from semc.ctfestimation.types import CtfSearchParameters

__all__ = ["SampleTilt", "sample_tilt_estimate"]

logger = logging.getLogger(__name__)
_TILE_BOX = 256
_MIN_TILE = 256
_MAX_TILES_PER_SIDE = 6


@dataclass(frozen=True, slots=True, eq=False)
class SampleTilt:
    """Estimated specimen tilt (see the module docstring for the convention).

    Attributes
    ----------
    axis_degree
        Tilt axis, degrees counter-clockwise from x, in [0, 360).
    angle_degree
        Tilt angle, degrees, in [0, 90).
    centre_defocus_angstrom
        Mean defocus of the plane at the image centre (Å).
    tiles
        (n, 4): tile centre x, y (Å from the image centre), its own best defocus (Å) and score.
    score
        Mean tile score at the refined plane.
    """

    axis_degree: float
    angle_degree: float
    centre_defocus_angstrom: float
    tiles: np.ndarray
    score: float


def _tile_layout(shape: tuple[int, int]) -> tuple[int, int, int]:
    """(tiles along y, tiles along x, tile side in px)."""
    short = min(shape)
    per_side = max(2, min(_MAX_TILES_PER_SIDE, short // (_MIN_TILE + _MIN_TILE // 2)))
    side = short // per_side
    side -= side % 2
    if side < 64:
        raise InvalidParameters(f"micrograph {shape} is too small to estimate the sample tilt", step="ctfestimation")
    return max(2, shape[0] // side), max(2, shape[1] // side), side


def _plane(points: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted least squares defocus = a + b x + c y over (n, 3) points (x, y, defocus)."""
    design = np.column_stack([np.ones(len(points)), points[:, 0], points[:, 1]]) * weights[:, None]
    return np.linalg.lstsq(design, points[:, 2] * weights, rcond=None)[0]


def sample_tilt_estimate(
    image: np.ndarray,
    *,
    params: CtfSearchParameters,
    x_angstrom: float,
    y_angstrom: float,
    phase_shift_radian: float,
    workers: int = 1,
) -> SampleTilt:
    """Estimate the specimen tilt of a (ny, nx) micrograph whose astigmatism (x, y) and phase are known.

    Parameters
    ----------
    image
        The micrograph (pixel ``params.pixel_size_angstrom``).
    params
        Optics, resolution band and defocus range of the search.
    x_angstrom, y_angstrom, phase_shift_radian
        Astigmatism (smooth parametrisation, Å) and phase shift of the whole micrograph's fit.
    workers
        FFT threads.

    Raises
    ------
    InvalidParameters
        When the micrograph is too small to be tiled.
    """
    optics = CtfOptics(params.voltage_kv, params.spherical_aberration_mm, params.amplitude_contrast)
    rows, columns, side = _tile_layout(image.shape)
    box = min(_TILE_BOX, side)
    centre = (np.array(image.shape) - 1) / 2.0
    span = params.max_defocus_angstrom - params.min_defocus_angstrom
    tiles, scorers = [], []
    for i in range(rows):
        for j in range(columns):
            y0 = (image.shape[0] - rows * side) // 2 + i * side
            x0 = (image.shape[1] - columns * side) // 2 + j * side
            spectrum, pixel = amplitude_spectrum_from_image(
                image[y0 : y0 + side, x0 : x0 + side], pixel_size_angstrom=params.pixel_size_angstrom, box_size=box,
                target_pixel_size_angstrom=params.target_pixel_size_angstrom if params.resample else None, workers=workers,
            )
            filtered = spectrum_background_subtract(spectrum, pixel_size_angstrom=pixel,
                                                    min_resolution_angstrom=params.min_resolution_angstrom)
            band = max(params.max_resolution_angstrom, 2.0 * pixel)
            pixels = fit_pixels_select(filtered, pixel_size_angstrom=pixel, min_resolution_angstrom=params.min_resolution_angstrom,
                                       max_resolution_angstrom=band)
            step = min(grid_step_for_band(optics, band), params.defocus_step_angstrom)
            n_means = math.floor(span / step + 1e-9) + 1
            scores = grid_scores(
                pixels, optics=optics, mean_first_angstrom=params.min_defocus_angstrom, step_angstrom=step, n_means=n_means,
                x_angstrom=np.array([x_angstrom]), y_angstrom=np.array([y_angstrom]), first=np.array([0]),
                stop=np.array([n_means]), phase_shift_radian=phase_shift_radian,
            )[0]
            best = params.min_defocus_angstrom + int(np.argmax(scores)) * step
            scorer = PixelScorer(pixels, optics)
            polished = scipy.optimize.minimize_scalar(
                lambda mean, s=scorer: -s.one(mean, x_angstrom, y_angstrom, phase_shift_radian),
                bounds=(best - step, best + step), method="bounded",
            )
            centre_y = (y0 + side / 2.0 - 0.5 - centre[0]) * params.pixel_size_angstrom
            centre_x = (x0 + side / 2.0 - 0.5 - centre[1]) * params.pixel_size_angstrom
            tiles.append((centre_x, centre_y, float(polished.x), -float(polished.fun)))
            scorers.append(scorer)
    points = np.array(tiles)
    weights = np.clip(points[:, 3], 1e-3, None)
    plane = _plane(points[:, :3], weights)
    residual = points[:, 2] - (plane[0] + plane[1] * points[:, 0] + plane[2] * points[:, 1])
    spread = 1.4826 * np.median(np.abs(residual - np.median(residual))) + 1e-9
    keep = np.abs(residual) <= max(3.0 * spread, 50.0)
    if keep.sum() >= 3:
        plane = _plane(points[keep, :3], weights[keep])

    def negative(values: np.ndarray) -> float:
        defoci = values[0] + values[1] * points[:, 0] + values[2] * points[:, 1]
        return -sum(s.one(d, x_angstrom, y_angstrom, phase_shift_radian) for s, d in zip(scorers, defoci, strict=True)) / len(scorers)

    extent = float(np.abs(points[:, :2]).max()) or 1.0
    scale = np.array([50.0, 50.0 / extent, 50.0 / extent])
    refined = scipy.optimize.minimize(lambda v: negative(plane + v * scale), np.zeros(3), method="Nelder-Mead",
                                      options={"xatol": 0.05, "fatol": 1e-6, "initial_simplex": np.vstack([np.zeros(3), np.eye(3)])})
    a, b, c = plane + refined.x * scale
    angle = math.degrees(math.atan(math.hypot(b, c)))
    axis = math.degrees(math.atan2(-b, c)) % 360.0 if angle > 0 else 0.0
    logger.debug("sample tilt: axis %.1f°, angle %.1f°, centre defocus %.0f Å from %d tiles", axis, angle, a, len(tiles))
    return SampleTilt(axis_degree=axis, angle_degree=angle, centre_defocus_angstrom=float(a), tiles=points, score=-float(refined.fun))
