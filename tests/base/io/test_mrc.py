"""MRC: round trips for every mode, agreement with mrcfile, header pixel size, broken files."""

from __future__ import annotations

import os

import mrcfile
import numpy as np
import pytest

from semc.base.errors import CorruptInput, InputMissing, InvalidParameters
from semc.base.io import FrameGrouping, open_movie, read_image, write_mrc
from semc.base.io.mrc import mrc_expected_size
from tests.realdata import REALDATA

DTYPES = [np.int8, np.uint8, np.int16, np.uint16, np.float32, np.float16]


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_stack_written_by_us_reads_back_exactly_with_its_pixel_size(tmp_path, rng, dtype):
    data = rng.integers(0, 120, (5, 40, 56)).astype(dtype)
    path = tmp_path / "s.mrc"
    write_mrc(path, data, pixel_size_angstrom=0.826)
    with open_movie(path) as movie:
        assert movie.format == "mrc" and movie.n_frames == 5 and movie.frame_shape == (40, 56)
        np.testing.assert_array_equal(movie.read_frames(), data)
        assert movie.pixel_size_angstrom == pytest.approx(0.826, rel=1e-6)
    with mrcfile.open(path) as mrc:  # the independent reader agrees, and sees an image stack
        np.testing.assert_array_equal(mrc.data, data)
        assert mrc.is_image_stack()
        assert float(mrc.voxel_size.x) == pytest.approx(0.826, rel=1e-6)


def test_uint8_counts_above_127_are_kept_exactly(tmp_path):
    data = np.array([[0, 127, 128, 255]], dtype=np.uint8)
    write_mrc(tmp_path / "u.mrc", data, pixel_size_angstrom=1.0)
    image, _ = read_image(tmp_path / "u.mrc")
    np.testing.assert_array_equal(image, data)


@pytest.mark.parametrize("mode,dtype", [(0, np.int8), (1, np.int16), (2, np.float32), (6, np.uint16),
                                        (12, np.float16)])
def test_files_written_by_mrcfile_read_the_same_through_us(tmp_path, rng, mode, dtype):
    data = rng.integers(-5 if mode in (0, 1) else 0, 100, (3, 17, 23)).astype(dtype)
    path = tmp_path / "m.mrcs"
    with mrcfile.new(path) as mrc:
        mrc.set_data(data)
        assert mrc.header.mode == mode
    with open_movie(path) as movie:
        np.testing.assert_array_equal(movie.read_frames(1, 3), data[1:3])
        assert movie.pixel_size_angstrom is None


def test_group_sums_equal_float_sums_of_the_frames(tmp_path, rng):
    data = rng.integers(0, 5, (10, 16, 16)).astype(np.int8)
    write_mrc(tmp_path / "g.mrc", data, pixel_size_angstrom=None)
    with open_movie(tmp_path / "g.mrc") as movie:
        grouped = movie.read_grouped(FrameGrouping.fixed(10, 4, remainder="keep"))
    expected = [data[0:4].sum(0), data[4:8].sum(0), data[8:10].sum(0)]
    np.testing.assert_array_equal(grouped, np.array(expected, dtype=np.float32))


def test_integer_group_sums_are_refused_where_they_could_be_wrong(tmp_path, rng):
    signed = rng.integers(0, 5, (6, 8, 8)).astype(np.int8)
    write_mrc(tmp_path / "s.mrc", signed, pixel_size_angstrom=None)
    counts = rng.integers(0, 255, (6, 8, 8)).astype(np.uint16)   # MRC mode 6
    write_mrc(tmp_path / "c.mrc", counts, pixel_size_angstrom=None)
    with open_movie(tmp_path / "s.mrc") as movie, pytest.raises(InvalidParameters, match="do not fit"):
        movie.read_grouped(FrameGrouping.fixed(6, 3), dtype=np.uint16)   # signed frames
    with open_movie(tmp_path / "c.mrc") as movie:
        with pytest.raises(InvalidParameters, match="do not fit"):
            movie.read_grouped(FrameGrouping.fixed(6, 3), dtype=np.uint16)   # 3 x 65535 could overflow
        sums = movie.read_grouped(FrameGrouping.fixed(6, 3), dtype=np.uint32)
    np.testing.assert_array_equal(sums, counts.reshape(2, 3, 8, 8).sum(1))


def test_writing_is_atomic_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "a.mrc"
    write_mrc(path, np.zeros((4, 4), np.float32), pixel_size_angstrom=1.0)
    with pytest.raises(InvalidParameters):
        write_mrc(path, np.full((4, 4), 1000.0), pixel_size_angstrom=1.0, mode=0)
    assert sorted(os.listdir(tmp_path)) == ["a.mrc"]
    assert read_image(path)[0].dtype == np.float32


def test_real_epu_micrograph_reads_like_mrcfile():
    path = str(REALDATA / "micrographs/fei-extended.mrc")
    if not os.path.exists(path):
        pytest.skip("real micrograph not available")
    image, pixel = read_image(path)
    with mrcfile.open(path) as mrc:
        np.testing.assert_array_equal(image, mrc.data)
        voxel = float(mrc.voxel_size.x)
    assert image.shape == (3838, 3710) and pixel == pytest.approx(voxel)


def test_a_truncated_mrc_names_the_first_incomplete_frame(tmp_path, rng):
    path = tmp_path / "t.mrc"
    write_mrc(path, rng.normal(size=(6, 32, 32)).astype(np.float32), pixel_size_angstrom=1.0)
    expected, offset, frame_bytes, _, _ = mrc_expected_size(path)
    with open(path, "r+b") as fh:
        fh.truncate(offset + 3 * frame_bytes + 10)
    with pytest.raises(CorruptInput) as info:
        open_movie(path)
    assert info.value.frame == 3 and info.value.path == str(path)


def test_wrong_header_empty_and_unreadable_files_raise_typed_errors(tmp_path):
    bad_mode = tmp_path / "mode.mrc"
    write_mrc(bad_mode, np.zeros((8, 8), np.float32), pixel_size_angstrom=1.0)
    with open(bad_mode, "r+b") as fh:
        fh.seek(12)
        fh.write(np.int32(99).tobytes())
    empty = tmp_path / "empty.mrc"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.mrc"
    garbage.write_bytes(b"\x00" * 2000)
    folder = tmp_path / "folder.mrc"
    folder.mkdir()
    for path in (bad_mode, empty, garbage, folder):
        with pytest.raises(CorruptInput) as info:
            open_movie(path)
        assert info.value.path == str(path)
    with pytest.raises(InputMissing):
        open_movie(tmp_path / "missing.mrc")
