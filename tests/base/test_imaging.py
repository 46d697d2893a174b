"""Pictures for the dashboard and the admin: real PNG files, read back and checked pixel by pixel."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.image import imread

from semc.base.imaging import (
    block_mean,
    cached_png,
    ctf_profile_png,
    drift_trajectory_png,
    histogram_png,
    series_png,
    spectrum_rings_png,
    thumbnail_png,
)


def _is_png(path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_block_mean_averages_whole_blocks_and_drops_the_ragged_edge():
    rng = np.random.default_rng(1)
    image = rng.normal(size=(10, 13)).astype(np.float32)
    binned = block_mean(image, 3)
    assert binned.shape == (3, 4)
    for i in range(3):
        for j in range(4):
            assert binned[i, j] == pytest.approx(image[3 * i:3 * i + 3, 3 * j:3 * j + 3].mean(), rel=1e-5)


@pytest.mark.parametrize("image, factor", [(np.zeros((2, 2, 2)), 2), (np.zeros((4, 4)), 0), (np.zeros((2, 8)), 3)])
def test_block_mean_refuses_what_it_cannot_bin(image, factor):
    with pytest.raises(ValueError):
        block_mean(image, factor)


def test_thumbnail_is_small_grey_and_keeps_the_mrc_orientation(tmp_path):
    image = np.zeros((1000, 700), dtype=np.float32)
    image[900:, :] = 10.0  # the last rows (the top of an MRC as myamiweb shows it) are bright
    path = thumbnail_png(image, tmp_path / "t.png", size_px=256)
    assert _is_png(path)
    picture = imread(path)
    assert picture.ndim == 2  # one grey channel
    assert max(picture.shape) <= 256 and picture.shape[0] > picture.shape[1]
    assert picture[0].mean() > 0.9 and picture[-1].mean() < 0.6


def test_spectrum_rings_are_drawn_where_the_phase_crosses_multiples_of_pi(tmp_path):
    n = 128
    yy, xx = np.mgrid[0:n, 0:n] - n // 2
    radius2 = (xx**2 + yy**2).astype(np.float64)
    spectrum = np.random.default_rng(2).normal(size=(n, n))
    plain = imread(spectrum_rings_png(spectrum, tmp_path / "plain.png", size_px=128))
    ringed = imread(spectrum_rings_png(spectrum, tmp_path / "rings.png", ring_phase=radius2 / 400.0 * np.pi,
                                       size_px=128))
    assert np.allclose(plain[..., 0], plain[..., 1], atol=1e-6)  # grey only
    green = (ringed[..., 1] - np.maximum(ringed[..., 0], ringed[..., 2])) > 0.2
    assert green.sum() > 50
    rows, cols = np.nonzero(green)
    radii = np.hypot(rows - 64, cols - 64)
    # chi = pi r^2 / 400 crosses pi at r = 20 px and 2 pi at r = 28.3 px (in a 128-px picture of a 128-px grid)
    assert np.any(np.abs(radii - 20) < 2) and np.any(np.abs(radii - 28.3) < 2)
    masked = np.where(radius2 < 24**2, radius2 / 400.0 * np.pi, np.nan)  # no ring beyond r = 24 px
    partly = imread(spectrum_rings_png(spectrum, tmp_path / "masked.png", ring_phase=masked, size_px=128))
    rows, cols = np.nonzero((partly[..., 1] - np.maximum(partly[..., 0], partly[..., 2])) > 0.2)
    radii = np.hypot(rows - 64, cols - 64)
    assert np.any(np.abs(radii - 20) < 2) and not np.any(np.abs(radii - 28.3) < 2)
    with pytest.raises(ValueError, match="does not match"):
        spectrum_rings_png(spectrum, tmp_path / "bad.png", ring_phase=np.zeros((4, 4)))


def test_drift_trajectory_and_plots_write_pngs(tmp_path):
    assert _is_png(drift_trajectory_png([0.0, 1.0, 2.5], [0.0, -0.5, -0.7], tmp_path / "d.png", title="total 2.6 Å"))
    with pytest.raises(ValueError):
        drift_trajectory_png([0.0, 1.0], [0.0], tmp_path / "bad.png")
    assert _is_png(series_png([0, 1, 2], {"a": [1.0, None, 3.0], "b": [2, 2, 2]}, tmp_path / "s.png",
                              xlabel="minutes", ylabel="µm"))
    with pytest.raises(ValueError, match="series 'a'"):
        series_png([0, 1], {"a": [1.0]}, tmp_path / "bad.png", xlabel="x", ylabel="y")
    assert _is_png(series_png([], {"a": []}, tmp_path / "empty.png", xlabel="x", ylabel="y"))
    assert _is_png(histogram_png([3.5, 4.0, float("inf"), 6.0], tmp_path / "h.png", xlabel="Å"))
    assert _is_png(histogram_png([], tmp_path / "h0.png", xlabel="Å"))
    frequency = np.linspace(0, 0.3, 100)
    assert (tmp_path / "p.png").exists() is False
    ctf_profile_png(frequency, {"fit": np.sin(frequency * 50) ** 2}, tmp_path / "p.png", dpi=60, size_in=(4, 2.5))
    assert imread(tmp_path / "p.png").shape[:2] == (150, 240)


def test_cached_png_renders_once_per_version_and_removes_old_versions(tmp_path):
    calls = []

    def render(path):
        calls.append(path)
        series_png([0, 1], {"y": [0, len(calls)]}, path, xlabel="x", ylabel="y")

    first = cached_png(tmp_path, "defocus", 7, "v1", render)
    again = cached_png(tmp_path, "defocus", 7, "v1", render)
    assert first == again and len(calls) == 1 and first.parent == tmp_path / "defocus" and _is_png(first)
    second = cached_png(tmp_path, "defocus", 7, "v2", render)
    assert second != first and len(calls) == 2 and not first.exists() and second.exists()
    other = cached_png(tmp_path, "defocus", 8, "v1", render)
    assert other.exists() and second.exists()
    assert sorted(p.name for p in (tmp_path / "defocus").iterdir()) == sorted([second.name, other.name])


@pytest.mark.parametrize("kind, object_id", [("../etc", 1), ("a/b", 1), ("Thumb", 1), ("", 1), ("thumb", -1),
                                             ("thumb", "1"), ("thumb", True), ("thumb", 1.5)])
def test_cached_png_refuses_kinds_and_ids_that_could_name_another_path(tmp_path, kind, object_id):
    with pytest.raises(ValueError):
        cached_png(tmp_path, kind, object_id, "v", lambda path: path.write_bytes(b""))
    assert list(tmp_path.iterdir()) == []


def test_a_failed_render_leaves_nothing_behind(tmp_path):
    def render(path):
        path.write_bytes(b"partial")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        cached_png(tmp_path, "thumb", 3, "v", render)
    assert list((tmp_path / "thumb").iterdir()) == []
