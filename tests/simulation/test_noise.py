"""The Poisson inversion kernel against scipy's quantile function, and its statistics."""

from __future__ import annotations

import numpy as np
import pytest

from semc.simulation.physics.noise import INVERSION_MAX_LAMBDA, _poisson_inversion_kernel, poisson_counts
from tests.simulation.naive import poisson_by_inversion


@pytest.mark.parametrize("scale", [0.02, 1.0, 8.0, INVERSION_MAX_LAMBDA])
def test_kernel_equals_the_scipy_quantile_of_the_same_uniforms(scale):
    rng = np.random.default_rng(3)
    lam = rng.uniform(0, scale, size=(64, 77))
    lam[0, :5] = 0.0
    u = rng.random(lam.shape)
    out = np.empty(lam.shape, dtype=np.int64)
    _poisson_inversion_kernel(lam, u, out)
    naive = poisson_by_inversion(lam, u)
    assert np.mean(out == naive) > 0.9999  # only float rounding at a CDF step may differ
    assert np.all(np.abs(out - naive) <= 1)


def test_counts_have_poisson_mean_variance_and_large_means_use_the_fallback():
    rng = np.random.default_rng(1)
    for lam in (0.3, 3.0, 200.0):
        c = poisson_counts(rng, np.full((400, 400), lam))
        n = c.size
        assert c.mean() == pytest.approx(lam, abs=5 * np.sqrt(lam / n))
        assert c.var() == pytest.approx(lam, rel=5 * np.sqrt(2 / n))


def test_the_same_generator_state_gives_the_same_counts():
    lam = np.random.default_rng(0).uniform(0, 5, size=(50, 60))
    a = poisson_counts(np.random.default_rng(9), lam)
    b = poisson_counts(np.random.default_rng(9), lam)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("bad", [np.ones(5), -np.ones((2, 2)), np.full((2, 2), np.nan)])
def test_bad_means_are_refused(bad):
    with pytest.raises(ValueError):
        poisson_counts(np.random.default_rng(0), bad)
