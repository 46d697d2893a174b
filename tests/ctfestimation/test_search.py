"""The score kernel against its numpy twin, the Pearson score against numpy, and the 1D search."""

import numpy as np
import pytest

from semc.ctfestimation.calc.internal._kernels import _score_kernel
from semc.ctfestimation.calc.internal.model import CtfOptics, ctf_values, xy_from_defoci
from semc.ctfestimation.calc.internal.search import FitPixels, score_batch, search_defocus_1d
from tests.ctfestimation.naive import score_sums_naive


@pytest.mark.parametrize("n", [0, 1, 7, 1000])
def test_score_kernel_matches_its_numpy_twin(n):
    rng = np.random.default_rng(n)
    arrays = [rng.uniform(0, 0.1, n), rng.normal(size=n) * 0.05, rng.normal(size=n) * 0.05, rng.normal(size=n), rng.normal(size=n)]
    coefficients = rng.normal(size=(5, 4)) * [1000, 30, 30, 1]
    np.testing.assert_allclose(_score_kernel(*arrays, coefficients), score_sums_naive(*arrays, coefficients), rtol=1e-9, atol=1e-9)


def test_score_kernel_on_zeros_gives_zero_sums():
    zeros = np.zeros(10)
    assert not _score_kernel(zeros, zeros, zeros, zeros, zeros, np.zeros((2, 4))).any()


def test_score_is_numpys_pearson_correlation_with_the_absolute_ctf():
    rng = np.random.default_rng(5)
    n = 3000
    g = rng.uniform(1 / 30, 1 / 4, n)
    theta = rng.uniform(-np.pi / 2, np.pi / 2, n)
    data = rng.normal(size=n)
    pixels = FitPixels(g**2, np.cos(2 * theta), np.sin(2 * theta), data - data.mean(), float(np.linalg.norm(data - data.mean())))
    optics = CtfOptics(300, 2.7, 0.07)
    model = np.abs(ctf_values(optics=optics, spatial_frequency_per_angstrom=g, azimuth_radian=theta, defocus_1_angstrom=21000,
                              defocus_2_angstrom=20000, astigmatism_azimuth_degree=25, phase_shift_radian=0.4))
    mean, x, y = xy_from_defoci(21000, 20000, 25)
    score = score_batch(pixels, optics=optics, mean_angstrom=mean, x_angstrom=x, y_angstrom=y, phase_shift_radian=0.4)
    assert score[0] == pytest.approx(np.corrcoef(model, data)[0, 1], rel=1e-9)


def test_one_dimensional_search_finds_the_defocus_and_phase_of_a_clean_profile():
    optics = CtfOptics(300, 2.7, 0.07)
    g = np.linspace(1 / 30, 1 / 5, 300)
    truth = np.abs(ctf_values(optics=optics, spatial_frequency_per_angstrom=g, azimuth_radian=0.0, defocus_1_angstrom=17340,
                              defocus_2_angstrom=17340, astigmatism_azimuth_degree=0.0, phase_shift_radian=1.0))
    defocus, phase, score = search_defocus_1d(frequency=g, profile=truth, optics=optics, defoci_angstrom=np.arange(5000, 40001, 100.0),
                                              phases_radian=np.arange(0, 3.2, 0.5))
    assert score > 0.95
    assert phase == pytest.approx(1.0)
    assert defocus == pytest.approx(17340, abs=20)
