"""The admin: every changelist and change page renders for a logged-in staff user on a populated session;
exposures of a session the daemon processed show their pictures, and can be rejected as the viewer does."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission, User
from django.urls import reverse

from semc import models as m
from tests.factories import appion_results_populate, other_tables_populate, session_populate
from tests.web.dashboard import conftest as dashboard_fixtures

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def staff_client(client):
    user = User.objects.create_user("staff", password="pw-for-tests", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    client.force_login(user)
    return client


@pytest.fixture
def populated():
    populated = session_populate(n_images=2)
    _run, _acerun, job = appion_results_populate(populated)
    other_tables_populate(populated, job)
    Group.objects.create(name="microscopists")
    ledger_run = m.ProcessingRun.objects.create(name="ddstack1", rundir="/data/appion/r", session_id=populated.session.pk,
                                                session_name=populated.session.name, preset="enn")
    m.ExposureStep.objects.create(run=ledger_run, exposure_id=populated.images[0].pk, step=m.Step.MOTION_CORRECTION,
                                  state=m.StepState.FAILED, attempts=3, last_error="CorruptInput: truncated")
    return populated


def _models():
    return sorted(admin.site._registry, key=lambda model: model._meta.model_name)


@pytest.mark.parametrize("model", _models(), ids=lambda model: model._meta.model_name)
def test_changelist_and_change_page_render(staff_client, populated, model):
    meta = model._meta
    response = staff_client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
    assert response.status_code == 200
    obj = model.objects.order_by("pk").first()
    if obj is None and meta.app_label != "semc":
        pytest.skip(f"no {meta.app_label}.{meta.model_name} row in the populated session (that app's own tests "
                    f"cover its change page); its list rendered")
    assert obj is not None, f"the populated session has no {meta.model_name} row"
    response = staff_client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk]))
    assert response.status_code == 200


def test_every_model_is_registered():
    from django.apps import apps

    assert set(apps.get_app_config("semc").get_models()) <= set(admin.site._registry)


def test_exposure_list_links_to_session_and_preset(staff_client, populated):
    response = staff_client.get(reverse("admin:semc_acquisitionimagedata_changelist"))
    html = response.content.decode()
    session_url = reverse("admin:semc_sessiondata_change", args=[populated.session.pk])
    preset_url = reverse("admin:semc_presetdata_change", args=[populated.preset.pk])
    assert session_url in html and preset_url in html
    assert populated.images[1].filename in html


def test_ctf_list_links_to_the_exposure_and_shows_micrometres(staff_client, populated):
    html = staff_client.get(reverse("admin:semc_apctfdata_changelist")).content.decode()
    assert reverse("admin:semc_acquisitionimagedata_change", args=[populated.images[0].pk]) in html
    assert "1.45" in html and "1.55" in html


def test_session_search_finds_by_name(staff_client, populated):
    html = staff_client.get(reverse("admin:semc_sessiondata_changelist") + "?q=26nov23a_ref").content.decode()
    assert "26nov23a_ref" in html and "1 result" in html


def test_classic_tables_are_read_only(staff_client, populated):
    url = reverse("admin:semc_sessiondata_change", args=[populated.session.pk])
    response = staff_client.post(url, {"name": "renamed"})
    assert response.status_code == 403
    populated.session.refresh_from_db()
    assert populated.session.name == "26nov23a"


def test_requeue_action_resets_a_failed_ledger_line(client, populated):
    admin_user = User.objects.create_superuser("admin", password="pw-for-tests")
    client.force_login(admin_user)
    line = m.ExposureStep.objects.get()
    response = client.post(reverse("admin:semc_exposurestep_changelist"),
                           {"action": "requeue", "_selected_action": [line.pk]})
    assert response.status_code == 302
    line.refresh_from_db()
    assert (line.state, line.attempts) == (m.StepState.PENDING, 0)


def test_anonymous_users_are_sent_to_the_login_page(client):
    response = client.get(reverse("admin:semc_sessiondata_changelist"))
    assert response.status_code == 302 and "/login/" in response["Location"]


# --- exposures of a session processed by the daemon: pictures inline, and the viewer's hide/trash ---
processed_session = dashboard_fixtures.processed_session  # the dashboard tests' module-scoped fixture


def _processed_exposure(sim):
    aligned = m.AcquisitionImageData.objects.filter(session_id=sim.session_id, filename__endswith="-a").order_by(
        "id").first()
    raw = m.ApDDAlignImagePairData.objects.filter(result_id=aligned.pk).values_list("source_id", flat=True).first()
    return raw, aligned


@pytest.mark.slow
def test_exposure_page_shows_its_pictures_and_results(staff_client, processed_session):
    raw, aligned = _processed_exposure(processed_session)
    for image_id in (raw, aligned.pk):
        html = staff_client.get(reverse("admin:semc_acquisitionimagedata_change", args=[image_id])).content.decode()
        for kind in ("thumb", "spectrum", "ctffit", "drift"):
            url = reverse("dashboard:exposure_picture", args=[image_id, kind])
            assert url in html
            picture = staff_client.get(url)
            assert picture.status_code == 200 and picture.content[:4] == b"\x89PNG"
        assert "µm mean defocus" in html and "Å over 10 frames" in html and aligned.filename in html
    broken = m.ExposureStep.objects.filter(state=m.StepState.QUARANTINED).values_list("exposure_id", flat=True)[0]
    html = staff_client.get(reverse("admin:semc_acquisitionimagedata_change", args=[broken])).content.decode()
    assert reverse("dashboard:exposure_picture", args=[broken, "drift"]) not in html
    assert reverse("dashboard:exposure_picture", args=[broken, "thumb"]) in html  # Leginon's own sum


@pytest.mark.slow
def test_reject_actions_write_the_viewer_status_of_the_whole_exposure(client, processed_session):
    from semc.base.retrieve import rejected_ids

    raw, aligned = _processed_exposure(processed_session)
    family = {raw} | set(m.ApDDAlignImagePairData.objects.filter(source_id=raw).values_list("result_id", flat=True))
    assert len(family) == 3  # the movie, its -a and -a-DW sums
    m.ViewerImageStatus.objects.create(status="exemplar", image_id=raw, session_id=processed_session.session_id)
    client.force_login(User.objects.create_superuser("curator", password="pw-for-tests"))
    changelist = reverse("admin:semc_acquisitionimagedata_changelist")
    response = client.post(changelist, {"action": "reject_trash", "_selected_action": [aligned.pk]})
    assert response.status_code == 302
    rows = sorted(m.ViewerImageStatus.objects.values_list("image_id", "status", "session_id"))
    assert rows == sorted((i, "trash", processed_session.session_id) for i in family)  # one row each, replaced
    assert rejected_ids(image_ids=[raw]) == {raw}  # the daemon skips it now
    client.post(changelist, {"action": "reject_hidden", "_selected_action": [raw]})
    assert set(m.ViewerImageStatus.objects.values_list("status", flat=True)) == {"hidden"}
    assert m.ViewerImageStatus.objects.count() == 3
    client.post(changelist, {"action": "unreject", "_selected_action": [raw]})
    assert not m.ViewerImageStatus.objects.exists() and rejected_ids(image_ids=[raw]) == set()


@pytest.mark.slow
def test_staff_without_the_viewer_status_permission_cannot_reject(staff_client, processed_session):
    raw, _ = _processed_exposure(processed_session)
    changelist = reverse("admin:semc_acquisitionimagedata_changelist")
    assert "reject_hidden" not in staff_client.get(changelist).content.decode()
    staff_client.post(changelist, {"action": "reject_hidden", "_selected_action": [raw]})
    assert not m.ViewerImageStatus.objects.filter(image_id=raw).exists()


def test_reject_refuses_a_status_that_does_not_reject():
    from semc.base.errors import InvalidParameters
    from semc.web.dashboard.curation import exposures_reject

    with pytest.raises(InvalidParameters, match="does not reject"):
        exposures_reject([1], status="exemplar")
