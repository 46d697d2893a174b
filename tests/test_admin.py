"""The admin: every changelist and change page renders for a logged-in staff user on a populated session."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission, User
from django.urls import reverse

from semc import models as m
from tests.factories import appion_results_populate, other_tables_populate, session_populate

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
    run, acerun, job = appion_results_populate(populated)
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
