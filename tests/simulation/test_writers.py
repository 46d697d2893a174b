"""Files on disk: movies decode to what was simulated, truth files say what they should, same seed same bytes."""

from __future__ import annotations

import json

import imagecodecs
import mrcfile
import numpy as np
import pytest
import tifffile

from semc.simulation.eer_events import eer_events_simulate
from semc.simulation.movie import simulate_movie
from semc.simulation.types import DetectorSpec, MotionSpec, MovieSpec, SpecimenSpec
from semc.simulation.writers import movie_write

SPEC = MovieSpec(shape=(128, 128), n_frames=6, detector=DetectorSpec(n_hot_pixels=2, n_dead_columns=1),
                 motion=MotionSpec(local_amplitude_px=0.3), specimen=SpecimenSpec(n_particles=8))
EER_SPEC = MovieSpec(shape=(128, 96), n_frames=30, dose_per_frame_e_per_a2=0.05,
                     specimen=SpecimenSpec(n_particles=2, models=("small",)),
                     detector=DetectorSpec(n_hot_pixels=1, n_dead_columns=1))


def _eer_frames_with_imagecodecs(path):
    """Decode every EER frame on the 16K grid with tifffile + imagecodecs (independent of semc.base.io)."""
    out = []
    with tifffile.TiffFile(path) as tif, open(path, "rb") as fh:
        for page in tif.pages:
            fh.seek(page.dataoffsets[0])
            data = fh.read(page.databytecounts[0])
            assert page.compression == 65001
            img = imagecodecs.eer_decode(data, (page.shape[0] * 4, page.shape[1] * 4), 7, 2, 2, superres=2)
            out.append(img)
    return out


def test_eer_file_decodes_to_the_simulated_events(tmp_path):
    files = movie_write(EER_SPEC, 4, directory=tmp_path, name="e", fmt="eer", eer_raw_frames_per_fraction=10)
    events = eer_events_simulate(EER_SPEC, 4, raw_frames_per_fraction=10)
    decoded = _eer_frames_with_imagecodecs(files.movie)
    assert len(decoded) == EER_SPEC.n_frames
    total = 0
    for img, (x, y) in zip(decoded, events.frames):
        assert img.shape == (128 * 4, 96 * 4)
        yy, xx = np.nonzero(img)
        assert sorted(zip(yy.tolist(), xx.tolist())) == sorted(zip(y.tolist(), x.tolist()))
        total += x.size
    truth = json.loads(files.truth.read_text())
    assert truth["eer_coincidence_lost_events"] == events.lost_events[0]
    expected = EER_SPEC.n_frames * EER_SPEC.counts_per_pixel_per_frame * 128 * 95  # one dead column
    assert total + events.lost_events[0] == pytest.approx(expected, rel=0.05)


def test_tiff_movie_holds_the_simulated_counts_as_lzw_uint8(tmp_path):
    files = movie_write(SPEC, 3, directory=tmp_path, name="t", fmt="tiff")
    frames = simulate_movie(SPEC, 3).frames
    with tifffile.TiffFile(files.movie) as tif:
        assert all(p.compression == 5 for p in tif.pages)  # LZW
        data = tif.asarray()
    assert data.dtype == np.uint8
    assert np.array_equal(data, np.minimum(frames, 255))
    assert files.movie.name == "t.frames.tif"


def test_mrc_movie_clean_sum_and_gain_match_the_in_memory_simulation(tmp_path):
    files = movie_write(SPEC, 3, directory=tmp_path, name="m", fmt="mrc")
    movie = simulate_movie(SPEC, 3)
    with mrcfile.open(files.movie) as m:
        assert np.array_equal(m.data, movie.frames)
    with mrcfile.open(files.clean_sum) as m:
        assert np.array_equal(m.data, movie.clean_sum)
    with mrcfile.open(files.gain) as m:
        assert np.array_equal(m.data, movie.gain_reference)
    rects = [tuple(map(int, line.split())) for line in files.defects_text.read_text().splitlines()]
    det = movie.truth.detector
    assert {(c, 0, 1, 128) for c in det.dead_columns} | {(x, y, 1, 1) for x, y in det.hot_pixels_xy} == set(rects)


def test_truth_file_states_the_trajectory_and_its_sign_convention(tmp_path):
    files = movie_write(SPEC, 3, directory=tmp_path, name="m", fmt="mrc")
    truth = json.loads(files.truth.read_text())
    movie = simulate_movie(SPEC, 3)
    assert truth["trajectory"]["shift_x_px"] == pytest.approx(movie.truth.shifts_px[:, 0].tolist())
    assert truth["trajectory"]["shift_y_px"] == pytest.approx(movie.truth.shifts_px[:, 1].tolist())
    assert "-shift" in truth["conventions"]["shift"]
    assert truth["paths"]["clean_reference_sum"] == "m.clean.mrc"
    assert (tmp_path / truth["paths"]["gain_reference"]).exists()
    assert truth["local_motion"]["time_weight"][0] == 0
    assert truth["ctf"]["defocus1_angstrom"] == SPEC.optics.defocus1_angstrom
    assert len(truth["particles"]) == 8


@pytest.mark.parametrize("fmt", ["mrc", "tiff", "eer"])
def test_the_same_seed_writes_the_same_bytes(tmp_path, fmt):
    spec = EER_SPEC if fmt == "eer" else SPEC
    a = movie_write(spec, 12, directory=tmp_path / "a", name="x", fmt=fmt, eer_raw_frames_per_fraction=10)
    b = movie_write(spec, 12, directory=tmp_path / "b", name="x", fmt=fmt, eer_raw_frames_per_fraction=10)
    c = movie_write(spec, 13, directory=tmp_path / "c", name="x", fmt=fmt, eer_raw_frames_per_fraction=10)
    for name in ("movie", "truth", "clean_sum", "gain", "defects_text"):
        assert getattr(a, name).read_bytes() == getattr(b, name).read_bytes(), name
    assert a.movie.read_bytes() != c.movie.read_bytes()
