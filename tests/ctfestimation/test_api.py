"""The Python API: arrays or paths in, CtfResult (CTFFIND conventions) and files out; typed errors."""

import numpy as np
import pytest

from semc.base.errors import InputMissing, InvalidParameters
from semc.ctfestimation.api import estimate_ctf, estimate_ctf_from_amplitude_spectrum
from semc.ctfestimation.calc.internal.spectrum import amplitude_spectrum_from_image
from semc.ctfestimation.types import CtfSearchParameters
from tests.ctfestimation.conftest import TRUTH

PARAMS = CtfSearchParameters(pixel_size_angstrom=1.0, voltage_kv=300, spherical_aberration_mm=2.7, amplitude_contrast=0.07,
                             max_resolution_angstrom=4.0)


def test_path_and_array_inputs_give_the_same_result_and_write_ctffind_files(micrograph_path, tmp_path):
    from semc.base.io import read_image

    from_path = estimate_ctf(micrograph_path, params=PARAMS, diagnostic_path=tmp_path / "x-pow.mrc", workers=1)
    from_array = estimate_ctf(read_image(micrograph_path)[0], params=PARAMS, workers=1)
    assert from_path.defocus_1_angstrom == pytest.approx(from_array.defocus_1_angstrom)
    assert from_path.defocus_1_angstrom == pytest.approx(TRUTH["defocus_1"], abs=60)
    assert from_path.defocus_2_angstrom == pytest.approx(TRUTH["defocus_2"], abs=60)
    assert from_path.defocus_1_angstrom >= from_path.defocus_2_angstrom
    assert -90 < from_path.astigmatism_azimuth_degree <= 90
    assert 2.0 <= from_path.fit_resolution_angstrom <= 10.0
    assert {p.name for p in tmp_path.iterdir()} == {"x-pow.mrc", "x-pow.txt", "x-pow_avrot.txt"}
    assert set(from_path.timings_s) == {"spectrum", "search", "diagnostics"}


def test_a_precomputed_amplitude_spectrum_gives_the_same_ctf(micrograph_path):
    from semc.base.io import read_image

    spectrum, pixel = amplitude_spectrum_from_image(read_image(micrograph_path)[0], pixel_size_angstrom=1.0, box_size=512)
    params = CtfSearchParameters(pixel_size_angstrom=pixel, voltage_kv=300, spherical_aberration_mm=2.7, amplitude_contrast=0.07,
                                 max_resolution_angstrom=4.0)
    result = estimate_ctf_from_amplitude_spectrum(spectrum, params=params)
    assert result.mean_defocus_angstrom == pytest.approx(0.5 * (TRUTH["defocus_1"] + TRUTH["defocus_2"]), abs=60)


def test_known_astigmatism_is_kept_and_only_the_defocus_is_fitted(micrograph_path):
    params = CtfSearchParameters(pixel_size_angstrom=1.0, max_resolution_angstrom=4.0, known_astigmatism_angstrom=800.0,
                                 known_astigmatism_azimuth_degree=33.0)
    result = estimate_ctf(micrograph_path, params=params, workers=1)
    assert result.astigmatism_angstrom == pytest.approx(800.0)
    assert result.astigmatism_azimuth_degree == pytest.approx(33.0)
    assert result.mean_defocus_angstrom == pytest.approx(15000.0, abs=60)


def test_missing_files_and_bad_parameters_raise_typed_errors(tmp_path):
    with pytest.raises(InputMissing):
        estimate_ctf(tmp_path / "none.mrc", params=PARAMS)
    with pytest.raises(InvalidParameters):
        CtfSearchParameters(pixel_size_angstrom=1.0, min_resolution_angstrom=4.0, max_resolution_angstrom=5.0)
    with pytest.raises(InvalidParameters):
        estimate_ctf(np.zeros((100, 100)), params=PARAMS)
    with pytest.raises(InvalidParameters):
        estimate_ctf_from_amplitude_spectrum(np.zeros((100, 90)), params=PARAMS)


def test_movie_mode_averages_frames_and_finds_the_ctf(tmp_path):
    from semc.base.io import write_mrc
    from semc.ctfestimation.api import estimate_ctf_from_movie
    from tests.ctfestimation.synthetic import synthetic_micrograph

    frames = np.stack([synthetic_micrograph(shape=(768, 768), pixel_size_angstrom=1.0, voltage_kv=300, cs_mm=2.7,
                                            amplitude_contrast=0.07, defocus_1_angstrom=15400, defocus_2_angstrom=14600,
                                            azimuth_degree=33, seed=s, dose_per_pixel=5) for s in range(4)])
    write_mrc(tmp_path / "movie.mrc", frames, pixel_size_angstrom=1.0)
    result = estimate_ctf_from_movie(tmp_path / "movie.mrc", params=PARAMS, frames_to_average=2,
                                     diagnostic_path=tmp_path / "movie-pow.mrc", workers=1)
    assert result.mean_defocus_angstrom == pytest.approx(15000.0, abs=100)
    assert (tmp_path / "movie-pow.txt").is_file()
