"""Gain orientation (both conventions, all eight orientations), gain loading, defects, on-the-fly correction."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tifffile

from semc.base.errors import CorruptInput, InvalidParameters
from semc.base.io import (
    DetectorCorrection,
    defect_mask_from_correctorplan,
    defect_mask_from_image,
    defect_mask_from_motioncor_file,
    load_gain,
    orient_gain,
    resample_gain,
    write_mrc,
)
from tests.realdata import REALDATA

K3_DEFECTS = str(REALDATA / "appion_oracles/defect_maps")
PATTERN = np.arange(12, dtype=np.float32).reshape(3, 4)  # no symmetry: every orientation differs


def _rotate_right(a):
    """DigitalMicrograph 'Rotate Right' by explicit indexing: the top row becomes the right column."""
    h, w = a.shape
    out = np.empty((w, h), a.dtype)
    for i in range(w):
        for j in range(h):
            out[i, j] = a[h - 1 - j, i]
    return out


def _motioncor_explicit(a, rot, flip):
    for _ in range(rot):
        a = _rotate_right(a)
    if flip == 1:  # upside-down: row i <- row h-1-i
        a = np.array([a[a.shape[0] - 1 - i] for i in range(a.shape[0])])
    elif flip == 2:  # left-right
        a = np.array([[row[a.shape[1] - 1 - j] for j in range(a.shape[1])] for row in a])
    return a


def _appion_defect_orientation(a, rot, flipped):
    """appion-compat §3.3, how Appion orients its defect map like the frames."""
    if flipped and rot == 2:
        return np.fliplr(a)
    out = np.rot90(a, 4 - rot)
    return np.flipud(out) if flipped else out


@pytest.mark.parametrize("rot", [0, 1, 2, 3])
@pytest.mark.parametrize("flip", [0, 1, 2])
def test_motioncor_rotgain_flipgain_rotate_right_then_flip(rot, flip):
    np.testing.assert_array_equal(orient_gain(PATTERN, rotate_90=rot, flip=flip), _motioncor_explicit(PATTERN, rot, flip))


@pytest.mark.parametrize("rot", [0, 1, 2, 3])
@pytest.mark.parametrize("flip", [False, True])
def test_leginon_frame_rotate_and_flip_match_appions_defect_map_orientation(rot, flip):
    ours = orient_gain(PATTERN, rotate_90=rot, flip=flip, convention="leginon")
    np.testing.assert_array_equal(ours, _appion_defect_orientation(PATTERN, rot, flip))
    np.testing.assert_array_equal(ours, orient_gain(PATTERN, rotate_90=rot, flip=int(flip)))


def test_the_eight_orientations_are_distinct():
    seen = {orient_gain(PATTERN, rotate_90=r, flip=f).tobytes() + bytes(orient_gain(PATTERN, rotate_90=r, flip=f).shape)
            for r in range(4) for f in (0, 1)}
    assert len(seen) == 8


def test_orientations_outside_a_convention_are_refused():
    with pytest.raises(InvalidParameters):
        orient_gain(PATTERN, rotate_90=4)
    with pytest.raises(InvalidParameters):
        orient_gain(PATTERN, flip=2, convention="leginon")


def test_eer_mrc_gains_are_divisors_and_tiff_gains_multipliers(tmp_path, rng):
    raw = rng.uniform(0.5, 2.0, (16, 16)).astype(np.float32)
    raw[3, 4] = 0.0
    write_mrc(tmp_path / "gain.mrc", raw, pixel_size_angstrom=None)
    tifffile.imwrite(tmp_path / "gain.gain", raw)
    divisor = load_gain(tmp_path / "gain.mrc", movie_kind="eer")
    good = raw > 0
    np.testing.assert_allclose(divisor[good] * raw[good], raw[good].mean(dtype=np.float64), rtol=1e-5)
    assert divisor[3, 4] == 0
    np.testing.assert_array_equal(load_gain(tmp_path / "gain.gain", movie_kind="eer"), raw)
    np.testing.assert_array_equal(load_gain(tmp_path / "gain.mrc", movie_kind="tiff"), raw)


def test_gains_scale_between_4k_and_8k_grids(rng):
    gain = rng.uniform(0.5, 2.0, (8, 8)).astype(np.float32)
    up = resample_gain(gain, (16, 16))
    np.testing.assert_array_equal(up[::2, ::2], gain)
    np.testing.assert_array_equal(up[1::2, 1::2], gain)
    np.testing.assert_allclose(resample_gain(up, (8, 8)), gain, rtol=1e-6)
    with pytest.raises(InvalidParameters):
        resample_gain(gain, (12, 12))


def test_correctorplan_and_motioncor_defect_files_give_the_same_mask(tmp_path):
    shape = (20, 30)
    plan = defect_mask_from_correctorplan(shape, bad_rows=[2], bad_cols=[5, 6], bad_pixels=[(10, 15)])
    expected = np.zeros(shape, bool)
    expected[2, :] = True
    expected[:, [5, 6]] = True
    expected[15, 10] = True
    np.testing.assert_array_equal(plan, expected)
    lines = ["5 0 1 20", "6 0 1 20", "0 2 30 1", "10 15 1 1", "# comment", ""]
    (tmp_path / "defects.txt").write_text("\n".join(lines))
    np.testing.assert_array_equal(defect_mask_from_motioncor_file(tmp_path / "defects.txt", shape), expected)
    with pytest.raises(InvalidParameters):
        defect_mask_from_correctorplan(shape, bad_rows=[20])
    (tmp_path / "bad.txt").write_text("1 2 three 4\n")
    with pytest.raises(CorruptInput):
        defect_mask_from_motioncor_file(tmp_path / "bad.txt", shape)


def test_a_clip_made_128_129_map_is_read_with_the_low_bit(tmp_path):
    data = np.full((6, 6), 128, np.uint8)
    data[1, 2] = 129
    write_mrc(tmp_path / "clip.mrc", data, pixel_size_angstrom=None)
    mask = defect_mask_from_image(tmp_path / "clip.mrc")
    assert mask.sum() == 1 and mask[1, 2]


def test_real_k3_defect_maps_load_as_two_bad_columns():
    names = sorted(f for f in os.listdir(K3_DEFECTS) if f.endswith(".mrc.gz"))
    assert len(names) == 6
    for name in names:
        mask = defect_mask_from_image(os.path.join(K3_DEFECTS, name))
        assert mask.shape == (4092, 5760)
        assert set(np.flatnonzero(mask.any(axis=0))) == {1151, 1152}
        assert mask[:, 1151].all() and mask[:, 1152].all() and mask.sum() == 2 * 4092


def test_correction_on_a_real_k3_map_removes_outliers_and_leaves_good_pixels_alone(rng):
    mask = defect_mask_from_image(os.path.join(K3_DEFECTS, "27489513.mrc.gz"))
    frame = rng.poisson(1.0, mask.shape).astype(np.uint8)
    frame[mask] = 250  # hot columns
    correction = DetectorCorrection(defect_mask=mask, seed=7)
    out = correction.apply(frame, frame_index=3)
    np.testing.assert_array_equal(out[~mask], frame[~mask].astype(np.float32))
    assert out[mask].max() <= frame[~mask].max()
    # each filled value is one of the good pixels within ±2 px on its row band
    ys, xs = np.nonzero(mask)
    for y, x in zip(ys[:200], xs[:200]):
        window = frame[max(0, y - 2):y + 3, x - 2:x + 3][~mask[max(0, y - 2):y + 3, x - 2:x + 3]]
        assert out[y, x] in set(window.tolist())
    np.testing.assert_array_equal(out, correction.apply(frame, frame_index=3))  # reproducible
    assert not np.array_equal(out, correction.apply(frame, frame_index=4))


def test_dark_and_gain_are_applied_per_raw_frame_in_float32(rng):
    gain = rng.uniform(0.5, 1.5, (32, 32)).astype(np.float32)
    dark = rng.uniform(0.0, 0.2, (32, 32)).astype(np.float32)
    group = rng.poisson(10.0, (32, 32)).astype(np.float32)
    out = DetectorCorrection(gain=gain, dark=dark).apply(group, n_raw_frames=5)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, (group - 5 * dark) * gain, rtol=1e-6)


def test_a_zero_gain_pixel_is_treated_as_a_defect(rng):
    gain = np.ones((16, 16), np.float32)
    gain[4, 4] = 0.0
    frame = np.full((16, 16), 3.0, np.float32)
    out = DetectorCorrection(gain=gain).apply(frame)
    assert out[4, 4] == 3.0


def test_references_of_different_shapes_are_refused():
    with pytest.raises(InvalidParameters):
        DetectorCorrection(gain=np.ones((4, 4)), dark=np.zeros((4, 5)))
    with pytest.raises(InvalidParameters):
        DetectorCorrection(gain=np.ones((4, 4))).apply(np.ones((5, 5)))


def test_a_correction_pickles_for_dask_and_corrects_the_same_after(rng):
    import pickle

    mask = np.zeros((16, 16), bool)
    mask[5, :] = True
    correction = DetectorCorrection(gain=rng.uniform(0.5, 1.5, (16, 16)), defect_mask=mask, seed=11)
    frame = rng.poisson(3.0, (16, 16))
    clone = pickle.loads(pickle.dumps(correction))
    np.testing.assert_array_equal(clone.apply(frame, frame_index=2), correction.apply(frame, frame_index=2))
