"""Classic ctffind4.py input rules (start defocus, search range, --bestdb seeding) and validity checks."""

from __future__ import annotations

import pytest

from semc.base.errors import InvalidParameters
from semc.ctfestimation.calc.external import CtfDataValues
from semc.ctfestimation.calc.external_classic import (
    ClassicCtffindOptions,
    PreviousCtf,
    apctfdata_validity_problems,
    ctffind_params_from_classic,
)

COMMON = {"input_path": "m.mrc", "diagnostic_path": "m-pow.mrc", "pixel_size_angstrom": 1.0, "voltage_kv": 300.0,
          "cs_mm": 2.7}


def test_nominal_defocus_sets_the_start_and_the_range():
    params, start = ctffind_params_from_classic(**COMMON, options=ClassicCtffindOptions(nominal_um=2.0))
    # 2 um = 20000 A; range 0.1 um x 25 = 25000 A -> min negative -> the step (1000 A); max 45000 A
    assert start == 20000.0
    assert (params.defocus_min_angstrom, params.defocus_max_angstrom, params.defocus_step_angstrom) == \
        (1000.0, 45000.0, 1000.0)
    assert params.expected_astigmatism_angstrom == 500.0 and params.amplitude_contrast == 0.07


def test_without_nominal_the_smaller_previous_defocus_then_the_scope_defocus_is_the_start():
    prev = PreviousCtf(defocus1_m=1.8e-6, defocus2_m=2.1e-6)
    _, start = ctffind_params_from_classic(**COMMON, options=ClassicCtffindOptions(), previous=prev,
                                           scope_defocus_m=-3e-6)
    assert start == pytest.approx(18000.0)
    _, start = ctffind_params_from_classic(**COMMON, options=ClassicCtffindOptions(), scope_defocus_m=-3e-6)
    assert start == pytest.approx(30000.0)
    with pytest.raises(InvalidParameters):
        ctffind_params_from_classic(**COMMON, options=ClassicCtffindOptions())


def test_bestdb_seeds_amplitude_contrast_astigmatism_and_resmax_from_the_previous_fit():
    prev = PreviousCtf(defocus1_m=1.80e-6, defocus2_m=1.85e-6, amplitude_contrast=0.1,
                       resolution_80_percent=8.0, resolution_50_percent=6.0)
    params, _ = ctffind_params_from_classic(**COMMON, options=ClassicCtffindOptions(bestdb=True), previous=prev)
    assert params.amplitude_contrast == 0.1
    assert params.expected_astigmatism_angstrom == pytest.approx(500.0)  # |1.80-1.85| um = 500 A
    assert params.resolution_max_angstrom == pytest.approx((8.0 * 6.0 * 4.0) ** (1 / 3))  # 5.77 < 45
    round_prev = PreviousCtf(defocus1_m=1.8e-6, defocus2_m=1.8000001e-6)  # 1 A of astigmatism < 10 A
    params, _ = ctffind_params_from_classic(**COMMON, options=ClassicCtffindOptions(bestdb=True), previous=round_prev)
    assert params.expected_astigmatism_angstrom == 500.0 and params.resolution_max_angstrom == 4.0


@pytest.mark.parametrize("kwargs", [{"resmin_angstrom": 60.0}, {"resmax_angstrom": 20.0}, {"defstep_um": 1000.0},
                                    {"bestdb": True, "nominal_um": 2.0}])
def test_classic_range_checks(kwargs):
    with pytest.raises(InvalidParameters):
        ClassicCtffindOptions(**kwargs)


def _values(**changes):
    base = dict(defocus1=1.5e-6, defocus2=1.6e-6, angle_astigmatism=10.0, defocusinit=1.5e-6,
                amplitude_contrast=0.07, cs=2.7, extra_phase_shift=0.0, cross_correlation=0.1, confidence=0.1,
                confidence_d=0.31623, ctffind4_resolution=4.0)
    return CtfDataValues(**{**base, **changes})


def test_validity_problems_are_listed_like_classic():
    assert apctfdata_validity_problems(_values(), voltage_kv=300) == ()
    problems = apctfdata_validity_problems(_values(defocus2=30e-6, cs=12.0, amplitude_contrast=0.6), voltage_kv=500)
    assert len(problems) == 4 and problems[0].startswith("defocus2 30.000")
