"""Readiness: incomplete vs complete vs stable, a file growing in a background thread, broken files."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from semc.base.errors import CorruptInput
from semc.base.io import movie_readiness, write_eer, write_mrc, write_tiff_movie
from tests.base.io.conftest import eer_frames


def _grow(source: bytes, target, chunks: int, pause_s: float, done: threading.Event):
    step = len(source) // chunks + 1
    with open(target, "wb") as fh:
        for k in range(0, len(source), step):
            fh.write(source[k:k + step])
            fh.flush()
            os.fsync(fh.fileno())
            time.sleep(pause_s)
    done.set()


@pytest.mark.parametrize("kind", ["mrc", "tif", "eer"])
def test_a_movie_being_written_is_not_ready_until_complete_and_unchanged(tmp_path, rng, kind):
    source = tmp_path / f"source.{kind}"
    if kind == "mrc":
        write_mrc(source, rng.normal(size=(8, 64, 64)).astype(np.float32), pixel_size_angstrom=1.0)
    elif kind == "tif":
        write_tiff_movie(source, rng.integers(0, 9, (8, 64, 64)).astype(np.uint8), bigtiff=False)
    else:
        frames, _ = eer_frames(rng, 8, (64, 64), 0.1)
        write_eer(source, frames, sensor_shape=(64, 64))
    target = tmp_path / f"movie.{kind}"
    done = threading.Event()
    writer = threading.Thread(target=_grow, args=(source.read_bytes(), target, 12, 0.05, done))
    writer.start()
    seen_incomplete = False
    previous = None
    while not done.is_set():
        if target.exists():
            state = movie_readiness(target, previous=previous)
            if not done.is_set() and not state.complete:
                seen_incomplete = True
            assert not (state.ready and not done.is_set() and state.size_bytes < source.stat().st_size)
            previous = state
        time.sleep(0.01)
    writer.join()
    first = movie_readiness(target)
    assert first.complete and not first.ready and first.size_bytes == source.stat().st_size
    second = movie_readiness(target, previous=first)
    assert second.ready and second.reason == "ready"
    assert seen_incomplete


def test_missing_empty_and_quiet_files(tmp_path):
    assert not movie_readiness(tmp_path / "none.mrc").complete
    (tmp_path / "empty.tif").write_bytes(b"")
    assert movie_readiness(tmp_path / "empty.tif").reason == "file is empty"
    write_mrc(tmp_path / "old.mrc", np.zeros((2, 8, 8), np.float32), pixel_size_angstrom=1.0)
    past = time.time() - 60
    os.utime(tmp_path / "old.mrc", (past, past))
    assert movie_readiness(tmp_path / "old.mrc", quiet_s=30).ready


def test_fewer_frames_than_expected_is_incomplete(tmp_path):
    write_mrc(tmp_path / "m.mrc", np.zeros((3, 8, 8), np.float32), pixel_size_angstrom=1.0)
    state = movie_readiness(tmp_path / "m.mrc", expected_frames=4)
    assert not state.complete and state.n_frames == 3


def test_a_file_that_can_never_become_a_movie_is_corrupt(tmp_path):
    path = tmp_path / "bad.mrc"
    write_mrc(path, np.zeros((8, 8), np.float32), pixel_size_angstrom=1.0)
    with open(path, "r+b") as fh:
        fh.seek(12)
        fh.write(np.int32(99).tobytes())
    with pytest.raises(CorruptInput):
        movie_readiness(path)
    (tmp_path / "x.tif").write_bytes(b"not a tiff but long enough to have a header")
    with pytest.raises(CorruptInput):
        movie_readiness(tmp_path / "x.tif")
