"""Reading exposures and their inputs from Leginon rows (oracles from appion-compat §1.4, §2, §5.5)."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from semc import models as m
from semc.base.errors import InputMissing, InvalidParameters
from semc.base.retrieve import exposure_ids_list, exposure_inputs_get, movie_path_find, rejected_ids, session_get
from tests.factories import session_populate

pytestmark = pytest.mark.django_db(databases="__all__")


def test_inputs_of_a_k3_exposure_follow_the_classic_rules(tmp_path):
    populated = session_populate(n_images=2, frame_path=str(tmp_path))
    image = populated.images[0]
    (tmp_path / f"{image.filename}.frames.tif").write_bytes(b"")
    inputs = exposure_inputs_get(image.pk)
    assert inputs.pixel_size_angstrom == pytest.approx(0.826)  # 4.13e-11 m × bin 2 (compat §1.4 oracle)
    assert inputs.n_frames == 50  # K3: exposure time / frame time = 2000 / 40
    assert inputs.dose_per_frame_e_per_a2 == pytest.approx(1.091, abs=5e-4)  # 5.4546e21 e/m², 50 frames (§5.5)
    assert inputs.voltage_kv == 300 and inputs.cs_mm == pytest.approx(2.7)
    assert inputs.movie_path == str(tmp_path / f"{image.filename}.frames.tif")
    assert inputs.gain_path == f"/data/leginon/26nov23a/rawdata/{populated.norm.image}"
    assert inputs.defects.bad_cols == (1151, 1152) and inputs.defects.bad_pixels == ((10, 20),)
    assert inputs.nominal_defocus_angstrom == pytest.approx(15000)
    assert inputs.preset_name == "enn"


def test_pixel_size_uses_the_calibration_in_force_at_the_image_time():
    populated = session_populate(n_images=1)
    image = populated.images[0]
    image.refresh_from_db()
    later = m.PixelSizeCalibrationData.objects.create(tem=populated.tem, ccdcamera=populated.camera_instrument,
                                                      magnification=105000, pixelsize=5.0e-11)
    m.PixelSizeCalibrationData.objects.filter(pk=later.pk).update(timestamp=image.timestamp + dt.timedelta(days=1))
    assert exposure_inputs_get(image.pk).pixel_size_angstrom == pytest.approx(0.826)
    m.PixelSizeCalibrationData.objects.exclude(pk=later.pk).delete()
    # only a calibration newer than the image: the oldest one is used, no off-by-one
    assert exposure_inputs_get(image.pk).pixel_size_angstrom == pytest.approx(1.0)


def test_missing_calibration_is_a_clear_error():
    populated = session_populate(n_images=1)
    m.PixelSizeCalibrationData.objects.all().delete()
    with pytest.raises(InputMissing, match="pixel size calibration") as info:
        exposure_inputs_get(populated.images[0].pk)
    assert info.value.exposure_id == populated.images[0].pk


def test_exposures_are_listed_incrementally_by_preset_and_manual_means_no_preset():
    populated = session_populate(n_images=3)
    manual = m.AcquisitionImageData.objects.create(session=populated.session, filename="manual_0001")
    ids = [pk for pk, _ in exposure_ids_list(session_id=populated.session.pk, preset="enn")]
    assert ids == [i.pk for i in populated.images]
    newer = exposure_ids_list(session_id=populated.session.pk, preset="enn", after_id=ids[0])
    assert [pk for pk, _ in newer] == ids[1:]
    assert [pk for pk, _ in exposure_ids_list(session_id=populated.session.pk, preset="manual")] == [manual.pk]


def test_newest_viewer_status_and_newest_assessment_decide_rejection():
    populated = session_populate(n_images=3)
    a, b, c = (i.pk for i in populated.images)
    m.ViewerImageStatus.objects.create(image_id=a, session=populated.session, status="hidden")
    m.ViewerImageStatus.objects.create(image_id=a, session=populated.session, status="visible")
    m.ViewerImageStatus.objects.create(image_id=b, session=populated.session, status="trash")
    run = m.ApAssessmentRunData.objects.create(session_id=populated.session.pk, name="run1")
    m.ApAssessmentData.objects.create(assessmentrun=run, image_id=c, selectionkeep=0)
    assert rejected_ids(image_ids=[a, b, c]) == {b, c}
    m.ApAssessmentData.objects.create(assessmentrun=run, image_id=c, selectionkeep=1)
    assert rejected_ids(image_ids=[a, b, c]) == {b}
    assert rejected_ids(image_ids=[a, b, c], use_viewer=False) == set()


def test_tilt_filter_rejects_by_stage_alpha():
    populated = session_populate(n_images=2)
    tilted = populated.images[1]
    m.ScopeEMData.objects.filter(pk=tilted.scope_id).update(stage_a=math.radians(40))
    assert rejected_ids(image_ids=[i.pk for i in populated.images], tilt_mode="notilt") == {tilted.pk}


def test_session_lookup_by_name_or_id_and_missing_session():
    populated = session_populate(n_images=1)
    assert session_get("26nov23a").pk == populated.session.pk
    assert session_get(populated.session.pk).name == "26nov23a"
    with pytest.raises(InputMissing, match="nosuch"):
        session_get("nosuch")


def test_movie_lookup_prefers_the_camera_extension_and_probes_the_others(tmp_path):
    (tmp_path / "x.frames.eer").write_bytes(b"")
    assert movie_path_find(str(tmp_path), "x", None) == str(tmp_path / "x.frames.eer")
    assert movie_path_find(str(tmp_path), "y", None) == str(tmp_path / "y.frames.mrc")


@pytest.mark.parametrize("name", ["../../etc/passwd", "a/b", "..", ""])
def test_file_names_from_the_database_cannot_escape_the_frame_path(tmp_path, name):
    with pytest.raises(InvalidParameters, match="invalid filename"):
        movie_path_find(str(tmp_path), name, None)
