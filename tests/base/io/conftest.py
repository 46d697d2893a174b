"""Small synthetic movies and EER event sets for the I/O tests."""

from __future__ import annotations

import numpy as np
import pytest

from tests.base.io.naive import random_events


@pytest.fixture
def rng():
    return np.random.default_rng(20261123)


def eer_frames(rng, n_frames, sensor_shape, density, *, horz_bits=2, vert_bits=2):
    """Per-frame (x, y) positions in sub-pixel units, and the (pix, h, v) they encode."""
    frames, events = [], []
    for _ in range(n_frames):
        pix, h, v = random_events(rng, sensor_shape, density, horz_bits=horz_bits, vert_bits=vert_bits)
        y, x = np.divmod(pix, sensor_shape[1])
        frames.append(((x << horz_bits) + h, (y << vert_bits) + v))
        events.append((pix, h, v))
    return frames, events
