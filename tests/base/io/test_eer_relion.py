"""RELION 3.1's own EER renderer (relion_convert_to_tiff) as a second independent decoder.

It settles the 65000 question of infra.md §3 for our files: RELION reads 4 sub-pixel bits
after a run of 255, as our default does, and rejects the EER-3.0 (imagecodecs) packing of
such runs. RELION writes TIFF rows in the opposite order (algorithms.md §2.2), hence the flip.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import tifffile

from semc.base.io import EerCoding, FrameGrouping, open_movie, write_eer
from tests.base.io.conftest import eer_frames

pytestmark = [pytest.mark.relion,
              pytest.mark.skipif(shutil.which("relion_convert_to_tiff") is None, reason="RELION not installed")]


def _relion_render(path, out_dir, upsampling, n_frames):
    subprocess.run(["relion_convert_to_tiff", "--i", path.name, "--o", f"{out_dir.name}/", "--eer_grouping",
                    str(n_frames), "--eer_upsampling", str(upsampling), "--compression", "none", "--short"],
                   check=True, capture_output=True, timeout=300, cwd=path.parent)
    return tifffile.imread(out_dir / (path.stem + ".tif")).astype(np.float32)


@pytest.mark.parametrize("compression", [65000, 65001])
@pytest.mark.parametrize("upsampling", [1, 2])
def test_relion_renders_our_sparse_eer_exactly_like_our_reader(tmp_path, rng, compression, upsampling):
    frames, _ = eer_frames(rng, 3, (4096, 4096), 0.002)  # sparse: many runs of 255 for 65000
    path = tmp_path / "movie.eer"
    write_eer(path, frames, compression=compression, pixel_size_angstrom=1.0)
    relion = _relion_render(path, tmp_path / "out", upsampling, 3)
    with open_movie(path, eer_upsampling=upsampling) as movie:
        (ours,) = movie.read_grouped(FrameGrouping.fixed(3, 3))
    assert ours.sum() > 0
    np.testing.assert_array_equal(relion[::-1], ours)


def test_relion_rejects_8bit_runs_of_255_without_sub_pixel_bits(tmp_path, rng):
    frames, _ = eer_frames(rng, 2, (4096, 4096), 0.002)
    path = tmp_path / "ic.eer"
    write_eer(path, frames, compression=65000, coding=EerCoding(8, 2, 2, False))
    relion = _relion_render(path, tmp_path / "out", 1, 2)
    assert relion.sum() == 0  # every frame skipped as "number of pixels is not right"
