"""The Python API on files: gain, EER with an FmIntFile, result dataclass and MotionCor output names."""

import mrcfile
import numpy as np
import pytest
import tifffile

from semc.base.errors import InputMissing, InvalidParameters
from semc.base.io import write_eer
from semc.motioncorrection.api import DetectorReferences, correct_movie_file, output_paths_for
from semc.motioncorrection.types import MotionCorrectionParams

from .conftest import make_movie


def test_output_names_follow_motioncor():
    paths = output_paths_for("/r/x_c.mrc", ["sum", "dose_weighted", "dose_selected", "odd", "even", "stack"])
    assert paths == {"sum": "/r/x_c.mrc", "dose_weighted": "/r/x_c_DW.mrc", "dose_selected": "/r/x_c_DWS.mrc",
                     "odd": "/r/x_c_ODD.mrc", "even": "/r/x_c_EVN.mrc", "stack": "/r/x_c_Stk.mrc"}


def test_gain_is_applied_after_rotation_and_the_result_is_complete(tmp_path):
    m = make_movie(shape=(256, 384), n_frames=10, dose_per_pixel=3.0, seed=31)
    rng = np.random.default_rng(0)
    gain = (0.5 + rng.random((256, 384))).astype(np.float32)
    # the detector saw counts / gain; the file stores the gain a quarter turn counter-clockwise of the frames,
    # so -RotGain 1 (DigitalMicrograph "Rotate Right", numpy rot90(-1); see semc.base.io.orient_gain) undoes it
    raw = np.rint(m.frames / gain).astype(np.uint16)
    tifffile.imwrite(tmp_path / "m.tif", raw)
    with mrcfile.new(tmp_path / "g.mrc") as mrc:
        mrc.set_data(np.rot90(gain, 1).copy())
    params = MotionCorrectionParams(pixel_size_angstrom=1.0, dose_per_frame_e_per_a2=1.0, patches_xy=(3, 3))
    res = correct_movie_file(tmp_path / "m.tif", output_path=tmp_path / "o.mrc", params=params,
                             references=DetectorReferences(gain_path=str(tmp_path / "g.mrc"), rotation_quarters=1))
    with mrcfile.open(res.output_paths["sum"]) as mrc:
        assert mrc.data.mean() == pytest.approx((raw * gain).sum(0).mean(), rel=1e-3)
        assert float(mrc.voxel_size.x) == pytest.approx(1.0)
    assert len(res.motion.shifts_px) == 10 and res.motion.reference_frame == 5
    assert res.motion.shifts_px[5] == (0.0, 0.0)
    assert res.local_model is not None and set(res.output_paths) == {"sum", "dose_weighted"}
    assert {"read", "align_global", "align_local", "sum", "write", "total"} <= set(res.timings_s)
    assert res.peak_memory_bytes > 0 and res.n_frames == 10


def test_eer_movie_is_grouped_by_the_fmintfile(tmp_path):
    m = make_movie(shape=(256, 256), n_frames=6, dose_per_pixel=1.0, seed=32)
    rng = np.random.default_rng(1)
    frames = [(rng.random(m.frames[f].shape) < 0.2 * np.clip(m.frames[f], 0, 1)).astype(np.uint8)
              for f in range(6) for _ in range(5)]
    write_eer(tmp_path / "m.eer", frames, sensor_shape=(256, 256), pixel_size_angstrom=1.0)
    params = MotionCorrectionParams(pixel_size_angstrom=1.0)
    res = correct_movie_file(tmp_path / "m.eer", output_path=tmp_path / "o.mrc", params=params,
                             frame_groups=((30, 5, 0.05),))
    assert len(res.motion.shifts_px) == 6
    with mrcfile.open(res.output_paths["dose_weighted"]) as mrc:  # doses came from the FmIntFile
        assert mrc.data.shape == (256, 256)
    with mrcfile.open(res.output_paths["sum"]) as mrc:
        assert mrc.data.mean() == pytest.approx(np.sum(frames) / 256**2, rel=1e-3)


def test_missing_movie_and_too_few_frames_raise_typed_errors(tmp_path):
    with pytest.raises(InputMissing):
        correct_movie_file(tmp_path / "none.tif", output_path=None, params=MotionCorrectionParams())
    tifffile.imwrite(tmp_path / "one.tif", np.ones((1, 64, 64), np.uint8))
    with pytest.raises(InvalidParameters, match="frame"):
        correct_movie_file(tmp_path / "one.tif", output_path=None, params=MotionCorrectionParams())
