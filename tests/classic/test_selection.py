"""Classic image selection (--mrclist, --best-images, --startimgid/--endimgid) on real rows, and the
classic controller processing only what it selects."""

from __future__ import annotations

import pytest

from semc import models as m
from semc.classic.selection import ImageSelection, best_image_ids, excluded_ids


def _assess(image, keep: int) -> None:
    run = m.ApAssessmentRunData.objects.create(session_id=image.session_id, name="assess")
    m.ApAssessmentData.objects.create(assessmentrun=run, image_id=image.pk, selectionkeep=keep)


@pytest.mark.django_db(databases="__all__")
def test_best_images_follow_the_combined_classic_status(populated_session):
    a, b, c = populated_session.images
    extra = populated_session.images[0].__class__.objects.create(
        session=a.session, preset=a.preset, filename="26nov23a_00009enn", image="26nov23a_00009enn.mrc")
    m.ViewerImageStatus.objects.create(status="exemplar", image=a, session=a.session)
    _assess(b, 1)
    m.ViewerImageStatus.objects.create(status="exemplar", image=c, session=c.session)
    _assess(c, 0)  # a reject overrides a keep
    ids = [i.pk for i in (a, b, c, extra)]
    assert best_image_ids(ids) == {a.pk, b.pk}
    m.ViewerImageStatus.objects.create(status="hidden", image=a, session=a.session)  # the newest row wins
    assert best_image_ids(ids) == {b.pk}
    assert excluded_ids(ids, ImageSelection(best_only=True)) == {a.pk, c.pk, extra.pk}


@pytest.mark.django_db(databases="__all__")
def test_names_and_id_bounds(populated_session):
    a, b, c = populated_session.images
    ids = [a.pk, b.pk, c.pk]
    assert excluded_ids(ids, ImageSelection()) == set()
    assert excluded_ids(ids, ImageSelection(filenames=(f"{b.filename}.mrc",))) == {a.pk, c.pk}
    assert excluded_ids(ids, ImageSelection(start_id=b.pk)) == {a.pk}
    assert excluded_ids(ids, ImageSelection(end_id=b.pk, filenames=(a.filename, c.filename))) == {b.pk, c.pk}


@pytest.mark.slow
@pytest.mark.django_db(databases="__all__", transaction=True)
def test_the_classic_controller_processes_only_the_selected_images_and_records_bad_adjustments(
        tmp_path, movie_session):
    from semc.classic import makeddalign
    from semc.models.semc import ExposureStep, StepState

    first, second = movie_session.images
    m.ViewerImageStatus.objects.create(status="exemplar", image=first, session=first.session)
    rundir = tmp_path / "ddstack" / "ddstack1"
    argv = ["--session=26nov23a", "--preset=enn", f"--rundir={rundir}", "--no-wait", "--align", "--Iter=5",
            "--best-images", "--cluster=local", "--nproc=1", "--poll-interval=0.2", "--ddnframe=3",
            "--ddstartframe=6", "--max-attempts=1"]
    assert makeddalign.main(argv) == 0
    lines = {line.exposure_id: line for line in ExposureStep.objects.all()}
    # the exemplar was selected, but 8 frames cannot give 3 from frame 6: its attempt fails, recorded
    assert lines[first.pk].state == StepState.QUARANTINED and "frame" in lines[first.pk].last_error
    assert lines[second.pk].state == StepState.PENDING and lines[second.pk].attempts == 0
    assert not m.ApDDAlignImagePairData.objects.exists()
    assert m.ApAppionJobData.objects.get().status == "D"
