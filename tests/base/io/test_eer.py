"""EER files: our writer and reader against tifffile + imagecodecs, grouping, memory, broken files."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import imagecodecs
import numpy as np
import pytest
import tifffile

from semc.base.errors import CorruptInput, InvalidParameters
from semc.base.io import EerCoding, FrameGrouping, open_movie, write_eer
from tests.base.io.conftest import eer_frames
from tests.base.io.naive import render_truth


@pytest.fixture
def eer_4k(tmp_path, rng):
    """Three 4096² detector frames at Falcon-4 dose, 65001."""
    frames, events = eer_frames(rng, 3, (4096, 4096), 0.0182)
    path = tmp_path / "movie.eer"
    write_eer(path, frames, pixel_size_angstrom=0.725, metadata={"totalDose": "0.0546"})
    return path, events


def test_every_4k_frame_equals_tifffile_and_imagecodecs_event_for_event(eer_4k):
    path, events = eer_4k
    reference = tifffile.imread(path)  # bool (3, 4096, 4096), decoded by imagecodecs
    with open_movie(path) as movie:
        assert (movie.format, movie.n_frames, movie.frame_shape) == ("eer", 3, (4096, 4096))
        ours = movie.read_frames()
    np.testing.assert_array_equal(ours, reference.astype(np.uint8))
    for k, (pix, h, v) in enumerate(events):
        assert np.array_equal(np.flatnonzero(ours[k]), pix)


@pytest.mark.parametrize("upsampling", [2, 4])
def test_upsampled_group_sums_equal_imagecodecs_renderings(tmp_path, rng, upsampling):
    sensor = (256, 384)
    frames, events = eer_frames(rng, 6, sensor, 0.05)
    path = tmp_path / "small.eer"
    write_eer(path, frames, sensor_shape=sensor)
    superres = {2: 1, 4: 2}[upsampling]
    shape = (sensor[0] * upsampling, sensor[1] * upsampling)
    expected = np.zeros((2,) + shape, dtype=np.float32)
    with tifffile.TiffFile(path) as tif:
        for i, page in enumerate(tif.pages):
            fh = tif.filehandle
            fh.seek(page.dataoffsets[0])
            strip = fh.read(page.databytecounts[0])
            expected[i // 3] += imagecodecs.eer_decode(strip, shape, 7, 2, 2, superres=superres)
    truth = sum(render_truth(*e, sensor_shape=sensor, upsampling=upsampling) for e in events[:3])
    with open_movie(path, eer_upsampling=upsampling) as movie:
        assert movie.frame_shape == shape
        grouped = movie.read_grouped(FrameGrouping.fixed(6, 3))
        counts = movie.read_grouped(FrameGrouping.fixed(6, 3), dtype=np.uint16)
    np.testing.assert_array_equal(grouped, expected)
    np.testing.assert_array_equal(grouped[0], truth)
    assert counts.dtype == np.uint16 and grouped.dtype == np.float32
    np.testing.assert_array_equal(counts, expected)   # the same counts in a quarter of the memory


def test_pixel_size_and_metadata_come_from_the_tag_65001_xml(eer_4k):
    path, _ = eer_4k
    with open_movie(path, eer_upsampling=2) as movie:
        assert movie.pixel_size_angstrom == pytest.approx(0.725 / 2, rel=1e-9)
        assert movie.metadata["totalDose"] == "0.0546"
        assert movie.metadata["numberOfFrames"] == "3"
    with tifffile.TiffFile(path) as tif:
        assert tif.is_eer


@pytest.mark.parametrize("compression,coding", [
    (65000, EerCoding(8, 2, 2, True)),  # density 0.1: no run of 255, where the two readings agree
    (65002, EerCoding(7, 1, 1)),
    (65002, EerCoding(7, 2, 2)),
])
def test_other_compressions_round_trip_and_match_tifffile(tmp_path, rng, compression, coding):
    sensor = (128, 128)
    frames, events = eer_frames(rng, 4, sensor, 0.1, horz_bits=coding.horz_bits, vert_bits=coding.vert_bits)
    path = tmp_path / "c.eer"
    write_eer(path, frames, sensor_shape=sensor, compression=compression, coding=coding)
    with open_movie(path) as movie:
        ours = movie.read_frames()
        assert movie.coding.skip_bits == coding.skip_bits and movie.coding.horz_bits == coding.horz_bits
    np.testing.assert_array_equal(ours, tifffile.imread(path).astype(np.uint8))


@pytest.mark.parametrize("max_run_has_subpixel", [True, False])
def test_8bit_files_with_runs_of_255_read_back_under_either_reading(tmp_path, rng, max_run_has_subpixel):
    sensor = (128, 128)
    frames, events = eer_frames(rng, 2, sensor, 0.002)  # sparse: many runs of 255
    path = tmp_path / "e8.eer"
    write_eer(path, frames, sensor_shape=sensor, compression=65000,
              coding=EerCoding(8, 2, 2, max_run_has_subpixel))
    with open_movie(path, eer_upsampling=4, eer_65000_max_run_has_subpixel=max_run_has_subpixel) as movie:
        ours = movie.read_frames()
    for k, e in enumerate(events):
        np.testing.assert_array_equal(ours[k], render_truth(*e, sensor_shape=sensor, upsampling=4))
    if not max_run_has_subpixel:  # imagecodecs reads the EER 3.0 way
        np.testing.assert_array_equal(ours[:, ::4, ::4].shape, tifffile.imread(path).shape)
        np.testing.assert_array_equal(
            ours.reshape(2, 128, 4, 128, 4).sum(axis=(2, 4)), tifffile.imread(path).astype(np.uint8))


def test_fmintfile_grouping_sums_the_right_frames(tmp_path, rng):
    sensor = (64, 64)
    frames, _ = eer_frames(rng, 25, sensor, 0.1)
    path = tmp_path / "g.eer"
    write_eer(path, frames, sensor_shape=sensor)
    grouping = FrameGrouping.from_fmintfile("5\t5\t0.030\n25\t10\t0.030\n", 25)
    assert grouping.sizes == (5, 10, 10)
    with open_movie(path) as movie:
        raw = movie.read_frames().astype(np.float32)
        groups = list(movie.iter_groups(grouping))
    np.testing.assert_array_equal(groups[0], raw[:5].sum(0))
    np.testing.assert_array_equal(groups[2], raw[15:25].sum(0))


def test_upsampling_beyond_the_sub_pixel_bits_is_refused(tmp_path, rng):
    frames, _ = eer_frames(rng, 1, (32, 32), 0.1, horz_bits=1, vert_bits=1)
    path = tmp_path / "b.eer"
    write_eer(path, frames, sensor_shape=(32, 32), compression=65002, coding=EerCoding(7, 1, 1))
    with pytest.raises(InvalidParameters):
        open_movie(path, eer_upsampling=4)


def test_a_truncated_eer_names_the_first_missing_frame(eer_4k, tmp_path):
    path, _ = eer_4k
    data = path.read_bytes()
    with tifffile.TiffFile(path) as tif:
        cut = tif.pages[1].dataoffsets[0] + 100
    broken = tmp_path / "cut.eer"
    broken.write_bytes(data[:cut])
    with pytest.raises(CorruptInput) as info:
        open_movie(broken)
    assert info.value.path == str(broken)
    assert info.value.frame in (1, None) or "structure" in str(info.value)


def test_a_corrupt_strip_raises_with_the_frame_number(tmp_path, rng):
    sensor = (64, 64)
    frames, _ = eer_frames(rng, 3, sensor, 0.1)
    path = tmp_path / "x.eer"
    write_eer(path, frames, sensor_shape=sensor)
    with tifffile.TiffFile(path) as tif:
        offset, count = tif.pages[2].dataoffsets[0], tif.pages[2].databytecounts[0]
    data = bytearray(path.read_bytes())
    data[offset:offset + count] = b"\xff" * count  # maximal runs only: runs past the frame
    path.write_bytes(bytes(data))
    with open_movie(path) as movie:
        movie.read_frames(0, 2)
        with pytest.raises(CorruptInput) as info:
            movie.read_frames(2, 3)
    assert info.value.frame == 2


_MEMORY_SCRIPT = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from semc.base.io import FrameGrouping, open_movie
    path, n = sys.argv[1], int(sys.argv[2])
    with open_movie(path) as movie:
        next(movie.iter_groups(FrameGrouping.fixed(2, 1)))  # compile and warm up
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        total = 0.0
        for group in movie.iter_groups(FrameGrouping.fixed(n, 20)):
            total += float(group.sum())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(base, peak, total)
""")


def test_grouped_reading_of_a_long_eer_stays_within_a_few_group_buffers(tmp_path, rng):
    """400 frames at 4K would be 6.7 GB as a stack; grouped reading must stay below 700 MB extra.

    Peak RSS is measured in a subprocess (ru_maxrss) after a warm-up group, with 2 decode threads.
    """
    n = 400
    sensor = (4096, 4096)
    path = tmp_path / "long.eer"
    n_events = 0

    def frames():
        nonlocal n_events
        for _ in range(n):
            pix = np.unique(rng.integers(0, sensor[0] * sensor[1], 20000))
            n_events += pix.size
            y, x = np.divmod(pix, sensor[1])
            yield x << 2, y << 2

    write_eer(path, frames(), sensor_shape=sensor)
    env = dict(os.environ, SEMC_IO_THREADS="2")
    result = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, str(path), str(n)], capture_output=True,
                            text=True, env=env, check=True, timeout=600)
    base_kb, peak_kb, total = result.stdout.split()
    extra_mb = (int(peak_kb) - int(base_kb)) / 1024
    assert float(total) == n_events
    print(f"peak RSS over baseline: {extra_mb:.0f} MB")
    assert extra_mb < 700, f"grouped reading used {extra_mb:.0f} MB over the baseline"


def test_a_frame_that_ends_early_is_corrupt_unless_permissive(tmp_path, rng):
    sensor = (64, 64)
    frames, _ = eer_frames(rng, 2, sensor, 0.1)
    path = tmp_path / "short.eer"
    write_eer(path, frames, sensor_shape=sensor)
    with tifffile.TiffFile(path) as tif:
        offset, count = tif.pages[1].dataoffsets[0], tif.pages[1].databytecounts[0]
    data = bytearray(path.read_bytes())
    data[offset + count // 2:offset + count] = bytes(count - count // 2)  # zero runs: events, never the end
    path.write_bytes(bytes(data))
    with open_movie(path) as movie:
        with pytest.raises(CorruptInput) as info:
            movie.read_frames()
        assert info.value.frame == 1
    with open_movie(path, permissive=True) as movie:
        with pytest.warns(RuntimeWarning, match="frame 1"):
            frames_read = movie.read_frames()
    assert frames_read.shape == (2, 64, 64)


def test_one_long_group_split_over_threads_equals_the_frame_sum(tmp_path, rng, monkeypatch):
    sensor = (64, 64)
    frames, _ = eer_frames(rng, 9, sensor, 0.2)
    path = tmp_path / "one.eer"
    write_eer(path, frames, sensor_shape=sensor)
    monkeypatch.setenv("SEMC_IO_THREADS", "2")
    with open_movie(path) as movie:
        (total,) = movie.read_grouped(FrameGrouping.fixed(9, 9))
        expected = movie.read_frames().sum(axis=0, dtype=np.float32)
    np.testing.assert_array_equal(total, expected)
