"""Electron events of a simulated EER movie (Falcon-style counting at a high frame rate).

Rendering a full image per detector frame would cost one 4K FFT per frame, so
frames are simulated by *fraction* (``raw_frames_per_fraction`` consecutive
detector frames): the mean expected image of the fraction is rendered once
(motion inside it as a uniform blur along the chord between its first and last
knot), the fraction's counts are drawn as Poisson(g · λ · sensitivity) per
pixel, and each electron is assigned to one of the g detector frames uniformly
at random. By the splitting property of the Poisson process this is the same
distribution as drawing each detector frame independently. A detector frame
can hold one event per pixel; a second electron on the same pixel in the same
frame is lost (coincidence loss), and the number lost is recorded. Sub-pixel
positions (2 + 2 bits, the 16K grid) are uniform inside the pixel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
from numpy.typing import NDArray

from semc.base.errors import InvalidParameters
from semc.simulation.movie import MovieTruth, exposure_prepare
from semc.simulation.physics.models import DensityModel
from semc.simulation.physics.noise import poisson_counts
from semc.simulation.types import MovieSpec

__all__ = ["EerEvents", "eer_events_simulate"]

SUBPIXEL_BITS = 2


@dataclass
class EerEvents:
    """Truth, clean reference sum and a one-shot iterator of per-frame event positions.

    ``frames`` yields ``(x, y)`` int64 arrays on the 16K grid (sensor pixel × 4 +
    sub-pixel), sorted by sensor pixel; ``lost_events`` counts coincidence
    losses so far (complete once ``frames`` is exhausted).
    """

    truth: MovieTruth
    clean_sum: NDArray[np.float32]
    raw_frames_per_fraction: int
    frames: Iterator[tuple[NDArray[np.int64], NDArray[np.int64]]]
    lost_events: list[int]


def _fraction_frames(rng, counts: NDArray, g: int, nx: int, lost: list[int]):
    idx = np.flatnonzero(counts)
    events = np.repeat(idx, counts.ravel()[idx].astype(np.int64))
    frame_of = rng.integers(0, g, size=events.size, dtype=np.uint8 if g <= 255 else np.uint16)
    order = np.argsort(frame_of, kind="stable")
    events = events[order]
    bounds = np.concatenate([[0], np.cumsum(np.bincount(frame_of, minlength=g))])
    for j in range(g):
        pix = events[bounds[j]:bounds[j + 1]]
        keep = np.ones(pix.size, dtype=bool)
        keep[1:] = pix[1:] != pix[:-1]
        lost[0] += int(pix.size - keep.sum())
        pix = pix[keep]
        sub = rng.integers(0, 16, size=pix.size, dtype=np.int64)
        x = (pix % nx) * 4 + (sub & 3)
        y = (pix // nx) * 4 + (sub >> 2)
        yield x, y


def eer_events_simulate(
    spec: MovieSpec,
    seed: int,
    *,
    raw_frames_per_fraction: int = 20,
    models: dict[str, DensityModel] | None = None,
    camera_seed: int | None = None,
) -> EerEvents:
    """Simulate the detector events of an EER movie of ``spec.n_frames`` detector frames.

    ``spec.dose_per_frame_e_per_a2`` is the dose per *detector* frame (e.g.
    0.0182 e/px at 0.725 Å for a Falcon 4 at 248 fps). The detector must be
    counting; hot pixels fire at ``hot_pixel_rate`` per fraction.

    Raises
    ------
    InvalidParameters
        A non-counting detector or a fraction size < 1.
    """
    if not spec.detector.counting:
        raise InvalidParameters("EER needs a counting detector", step="simulation")
    if raw_frames_per_fraction < 1:
        raise InvalidParameters("raw_frames_per_fraction must be >= 1", step="simulation")
    rngs, renderer, truth = exposure_prepare(spec, seed, models, camera_seed)
    det, g_max, n = truth.detector, raw_frames_per_fraction, spec.n_frames
    lost = [0]

    def frames():
        rng = rngs["noise"]
        for i0 in range(0, n, g_max):
            i1 = min(n, i0 + g_max)
            lam = renderer.expected_span(i0, i1).astype(np.float64) * det.sensitivity * (i1 - i0)
            counts = poisson_counts(rng, lam)
            if len(det.hot_pixels_xy):
                hx, hy = det.hot_pixels_xy[:, 0], det.hot_pixels_xy[:, 1]
                counts[hy, hx] += rng.poisson(spec.detector.hot_pixel_rate, size=len(hx))
            counts[:, det.dead_columns] = 0
            yield from _fraction_frames(rng, counts, i1 - i0, spec.shape[1], lost)

    return EerEvents(truth, renderer.clean_sum(), g_max, frames(), lost)
