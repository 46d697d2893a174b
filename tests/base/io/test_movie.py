"""open_movie dispatches on content; read_image reads exactly one image."""

from __future__ import annotations

import numpy as np
import pytest

from semc.base.errors import CorruptInput, InputMissing, InvalidParameters
from semc.base.io import MovieReader, movie_format, open_movie, read_image, write_eer, write_mrc, write_tiff_movie


def test_the_format_comes_from_the_content_and_the_eer_name(tmp_path):
    write_mrc(tmp_path / "a.mrcs", np.zeros((2, 4, 4), np.float32), pixel_size_angstrom=1.0)
    write_tiff_movie(tmp_path / "b.tiff", np.zeros((2, 4, 4), np.uint8))
    write_eer(tmp_path / "c.eer", [np.zeros((8, 8), np.uint8)], sensor_shape=(8, 8))
    assert [movie_format(tmp_path / n) for n in ("a.mrcs", "b.tiff", "c.eer")] == ["mrc", "tiff", "eer"]
    for name in ("a.mrcs", "b.tiff", "c.eer"):
        with open_movie(tmp_path / name) as movie:
            assert isinstance(movie, MovieReader) and movie.n_frames >= 1
    (tmp_path / "d.tif").write_bytes(b"\x00" * 64)
    with pytest.raises(CorruptInput):
        movie_format(tmp_path / "d.tif")
    with pytest.raises(InputMissing):
        movie_format(tmp_path / "none.tif")


def test_read_image_refuses_stacks_and_eer(tmp_path):
    write_mrc(tmp_path / "s.mrc", np.zeros((2, 4, 4), np.float32), pixel_size_angstrom=1.0)
    write_eer(tmp_path / "c.eer", [np.zeros((8, 8), np.uint8)], sensor_shape=(8, 8))
    with pytest.raises(InvalidParameters):
        read_image(tmp_path / "s.mrc")
    with pytest.raises(InvalidParameters):
        read_image(tmp_path / "c.eer")


def test_frame_ranges_and_groupings_are_checked(tmp_path):
    from semc.base.io import FrameGrouping

    write_mrc(tmp_path / "s.mrc", np.zeros((3, 4, 4), np.float32), pixel_size_angstrom=1.0)
    with open_movie(tmp_path / "s.mrc") as movie:
        with pytest.raises(InvalidParameters):
            movie.read_frames(2, 5)
        with pytest.raises(InvalidParameters):
            movie.read_grouped(FrameGrouping.fixed(4, 2))
