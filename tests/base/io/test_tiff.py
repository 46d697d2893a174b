"""TIFF: round trips for types and compressions, agreement with tifffile, pixel size, broken files."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from semc.base.errors import CorruptInput, InvalidParameters
from semc.base.io import FrameGrouping, open_movie, read_image, write_tiff_movie


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("compression", ["lzw", "deflate", "none"])
def test_a_movie_written_by_us_reads_back_exactly(tmp_path, rng, dtype, compression):
    frames = rng.integers(0, 60, (4, 50, 70)).astype(dtype)
    path = tmp_path / "m.tif"
    assert write_tiff_movie(path, frames, compression=compression, pixel_size_angstrom=0.83) == 4
    with open_movie(path) as movie:
        assert (movie.format, movie.n_frames, movie.frame_shape, movie.dtype) == ("tiff", 4, (50, 70), dtype)
        np.testing.assert_array_equal(movie.read_frames(), frames)
        assert movie.pixel_size_angstrom == pytest.approx(0.83, rel=1e-6)
    np.testing.assert_array_equal(tifffile.imread(path), frames)
    with tifffile.TiffFile(path) as tif:
        assert len(tif.pages) == 4
        expected = {"lzw": 5, "deflate": 8, "none": 1}[compression]
        assert int(tif.pages[0].compression) == expected


def test_frames_from_an_iterable_are_written_one_by_one(tmp_path, rng):
    frames = [rng.integers(0, 3, (20, 30)).astype(np.uint8) for _ in range(3)]
    write_tiff_movie(tmp_path / "i.tif", iter(frames))
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "i.tif"), np.array(frames))


def test_files_written_by_tifffile_read_the_same_through_us(tmp_path, rng):
    frames = rng.integers(0, 255, (6, 33, 45)).astype(np.uint8)
    path = tmp_path / "camera.tif"
    tifffile.imwrite(path, frames, compression="lzw", photometric="minisblack")
    with open_movie(path) as movie:
        np.testing.assert_array_equal(movie.read_frames(2, 5), frames[2:5])
        groups = list(movie.iter_groups(FrameGrouping.fixed(6, 1)))
    np.testing.assert_array_equal(np.array(groups), frames.astype(np.float32))


def test_a_single_page_tiff_is_an_image(tmp_path, rng):
    gain = rng.random((12, 10)).astype(np.float32)
    tifffile.imwrite(tmp_path / "gain.gain", gain)
    image, pixel = read_image(tmp_path / "gain.gain")
    np.testing.assert_array_equal(image, gain)
    assert pixel is None


def test_truncated_and_corrupt_tiffs_name_the_frame(tmp_path, rng):
    frames = rng.integers(0, 255, (5, 64, 64)).astype(np.uint8)
    path = tmp_path / "c.tif"
    write_tiff_movie(path, frames, compression="lzw", bigtiff=False)
    with tifffile.TiffFile(path) as tif:
        offset3 = tif.pages[3].dataoffsets[0]
        offset1, count1 = tif.pages[1].dataoffsets[0], tif.pages[1].databytecounts[0]
    data = path.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(data[: offset3 + 5])
    with pytest.raises(CorruptInput) as info:
        open_movie(cut)
    assert info.value.frame == 3 and info.value.path == str(cut)
    corrupt = bytearray(data)
    corrupt[offset1:offset1 + count1] = b"\x00" * count1  # not an LZW stream (no clear code)
    bad = tmp_path / "bad.tif"
    bad.write_bytes(bytes(corrupt))
    with open_movie(bad) as movie:
        with pytest.raises(CorruptInput) as info:
            movie.read_frames()
    assert info.value.frame == 1


def test_not_a_tiff_and_mixed_pages_are_corrupt(tmp_path, rng):
    fake = tmp_path / "fake.tif"
    fake.write_bytes(b"this is not a tiff file at all")
    with pytest.raises(CorruptInput):
        open_movie(fake)
    mixed = tmp_path / "mixed.tif"
    with tifffile.TiffWriter(mixed) as writer:
        writer.write(np.zeros((8, 8), np.uint8))
        writer.write(np.zeros((8, 9), np.uint8))
    with pytest.raises(CorruptInput) as info:
        open_movie(mixed)
    assert info.value.frame == 1


def test_bad_writer_arguments_are_refused(tmp_path):
    with pytest.raises(InvalidParameters):
        write_tiff_movie(tmp_path / "x.tif", np.zeros((2, 4, 4), np.uint8), compression="jpeg")
    with pytest.raises(InvalidParameters):
        write_tiff_movie(tmp_path / "x.tif", np.zeros((2, 4, 4), np.float64))
