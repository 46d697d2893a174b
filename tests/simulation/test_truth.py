"""Ground-truth helpers: Euler angles rebuild the rotation they describe."""

from __future__ import annotations

import math

import numpy as np

from semc.simulation.physics.models import random_rotations
from semc.simulation.truth import euler_zyz_degree_from_matrix


def _rz(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _ry(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def test_zyz_angles_rebuild_the_rotation_including_the_degenerate_case():
    rots = list(random_rotations(np.random.default_rng(4), 20)) + [_rz(0.7)]
    for rot in rots:
        a, b, c = np.radians(euler_zyz_degree_from_matrix(rot))
        assert np.allclose(_rz(c) @ _ry(b) @ _rz(a), rot, atol=1e-9)
