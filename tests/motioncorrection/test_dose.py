"""Dose weights against the published formula (Grant & Grigorieff 2015) written out independently."""

import math

import numpy as np
import pytest

from semc.motioncorrection.calc.internal.dose import (
    accumulated_dose_e_per_a2,
    critical_exposure_e_per_a2,
    dose_weights,
    voltage_factor,
)


def test_critical_exposure_matches_the_published_fit_at_300_kv():
    # Grant & Grigorieff 2015: N_e(k) = 0.245 k^-1.665 + 2.81
    for k in (0.05, 0.1, 0.25, 0.4):
        assert critical_exposure_e_per_a2(np.array(k), 300.0) == pytest.approx(0.245 * k**-1.665 + 2.81)


@pytest.mark.parametrize("kv,factor", [(300, 1.0), (200, 0.8), (120, 0.45), (250, 0.9), (160, 0.625)])
def test_voltage_factor_follows_motioncor(kv, factor):
    assert voltage_factor(kv) == pytest.approx(factor)


def test_weights_are_the_optimal_exposure_filter_normalised_to_the_frame_count():
    dose = accumulated_dose_e_per_a2(np.full(10, 1.5), 0.5)
    np.testing.assert_allclose(dose, 0.5 + 1.5 * np.arange(1, 11))
    k = np.array([0.0, 0.1, 0.3])
    w = dose_weights(accumulated_dose_e_per_a2=dose, spatial_frequency_per_a=k, voltage_kv=300.0)
    for j, kk in enumerate(k):
        ne = math.inf if kk == 0 else 0.245 * kk**-1.665 + 2.81
        raw = np.array([math.exp(-d / (2 * ne)) for d in dose])
        np.testing.assert_allclose(w[:, j], raw * math.sqrt(10 / np.sum(raw**2)), rtol=1e-10)
    np.testing.assert_allclose(np.sum(w**2, axis=0), 10)
    np.testing.assert_allclose(w[:, 0], 1.0)
