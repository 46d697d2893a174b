"""The dashboard with Django's test client on a session processed by the real daemon: every page, fragment
and picture, who may see them, the requeue button, and what the pictures are drawn from."""

from __future__ import annotations

import json
import math
import re
from io import BytesIO

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse
from matplotlib.image import imread

from semc import models as m
from semc.models.semc import StepState
from semc.web.dashboard import data, pictures
from tests.factories import session_populate
from tests.web.dashboard.conftest import PASSWORD, user_create

pytestmark = [pytest.mark.django_db(databases="__all__"), pytest.mark.slow]


@pytest.fixture
def staff(client):
    client.force_login(user_create("staff1", staff=True))
    return client


def _aligned(sim):
    return list(m.AcquisitionImageData.objects.filter(session_id=sim.session_id, filename__endswith="-a")
                .order_by("id"))


def _png(response):
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"] == "image/png"
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert body[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(body) < 200_000  # small pictures
    return imread(BytesIO(body))


def _urls(sim):
    image = _aligned(sim)[0].pk
    line = m.ExposureStep.objects.filter(run_id=sim.run_id, state=StepState.QUARANTINED).first().pk
    return {
        "get": [reverse("dashboard:sessions"), reverse("dashboard:sessions_fragment"),
                reverse("dashboard:session", args=[sim.session_id]),
                reverse("dashboard:session_fragment", args=[sim.session_id]),
                reverse("dashboard:session_plot", args=[sim.session_id, "defocus"]),
                reverse("dashboard:exposure_picture", args=[image, "thumb"])],
        "post": [reverse("dashboard:requeue", args=[line])],
    }


def test_every_page_needs_a_login_and_sends_anonymous_users_to_the_login_page(processed_session):
    client = Client()
    urls = _urls(processed_session)
    for url in urls["get"]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("dashboard:login")), url
    response = client.post(urls["post"][0])
    assert response.status_code == 302 and reverse("dashboard:login") in response["Location"]
    assert m.ExposureStep.objects.filter(state=StepState.QUARANTINED).count() == 2  # nothing requeued


def test_logging_in_through_the_form_reaches_the_page_asked_for(processed_session):
    user_create("alice", staff=True)
    client = Client(enforce_csrf_checks=True)
    target = reverse("dashboard:session", args=[processed_session.session_id])
    page = client.get(reverse("dashboard:login") + f"?next={target}")
    assert page.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    wrong = client.post(reverse("dashboard:login"), {"username": "alice", "password": "nope", "next": target,
                                                    "csrfmiddlewaretoken": token})
    assert wrong.status_code == 200 and "did not match" in wrong.content.decode()
    right = client.post(reverse("dashboard:login"), {"username": "alice", "password": PASSWORD, "next": target,
                                                    "csrfmiddlewaretoken": token})
    assert right.status_code == 302 and right["Location"] == target
    assert client.get(target).status_code == 200
    page = client.get(target).content.decode()
    logout_token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    assert client.post(reverse("dashboard:logout"), {"csrfmiddlewaretoken": logout_token}).status_code == 302
    assert client.get(target).status_code == 302


def test_the_session_list_shows_state_and_counts(staff, processed_session):
    html = staff.get(reverse("dashboard:sessions")).content.decode()
    row = re.search(rf'<tr data-session-id="{processed_session.session_id}">(.*?)</tr>', html, re.DOTALL).group(1)
    assert "dash26a" in row
    fields = dict(re.findall(r'data-field="(\w+)">([^<]+)<', row))
    # 3 exposures have rows, 2 processed, the third's movie is broken (quarantined): nothing left to do
    assert fields == {"raw_files": "3", "processed_files": "2", "failed_jobs": "1", "backlog": "0",
                      "percent_done_total": "67 %"}
    assert "processing_complete" in row
    fragment = staff.get(reverse("dashboard:sessions_fragment")).content.decode()
    assert "<html" not in fragment and f'data-session-id="{processed_session.session_id}"' in fragment


def _tile(html: str, name: str) -> str:
    return re.search(rf'id="stat-{name}"[^>]*>([^<]*)<', html).group(1).strip()


def test_the_session_page_shows_counts_plots_micrographs_and_failures(staff, processed_session):
    sim = processed_session
    html = staff.get(reverse("dashboard:session", args=[sim.session_id])).content.decode()
    assert {name: _tile(html, name) for name in ("raw", "processed", "backlog", "failed", "inflight")} == {
        "raw": "3", "processed": "2", "backlog": "0", "failed": "1", "inflight": "0"}
    assert re.search(r'data-step="ctfestimation">.*?data-field="done">2<', html, re.DOTALL)
    for kind in pictures.SESSION_KINDS:
        assert f'data-plot="{kind}"' in html
    aligned = _aligned(sim)
    assert len(aligned) == 2
    for image in aligned:
        assert reverse("dashboard:exposure_picture", args=[image.pk, "thumb"]) in html
        assert reverse("dashboard:exposure_picture", args=[image.pk, "spectrum"]) in html
        assert image.filename in html
    newest = aligned[-1]
    assert f'id="selected" data-image-id="{newest.pk}"' in html  # the newest one is selected by default
    broken = m.ExposureStep.objects.filter(run_id=sim.run_id, state=StepState.QUARANTINED).first()
    assert "invalid MRC mode" in html and broken.error_kind and broken.error_kind in html
    failure_rows = re.findall(r'<tr data-line-id="(\d+)">', html)
    assert len(failure_rows) == 2  # both steps of the broken exposure
    assert html.count('name="csrfmiddlewaretoken"') >= 2
    assert "2 CTF fits, 2 aligned" in html


def test_the_fragment_is_the_live_part_and_follows_the_selected_exposure(staff, processed_session):
    sim = processed_session
    first = _aligned(sim)[0]
    url = reverse("dashboard:session_fragment", args=[sim.session_id]) + f"?exposure={first.pk}"
    html = staff.get(url).content.decode()
    assert "<html" not in html and _tile(html, "processed") == "2"
    assert f'id="selected" data-image-id="{first.pk}"' in html
    assert reverse("dashboard:exposure_picture", args=[first.pk, "drift"]) in html
    assert f'id="selected-name">{first.filename}<' in html
    newest = _aligned(sim)[-1]
    for foreign in (999999, session_populate(name="other26a", n_images=1).images[0].pk):
        other = staff.get(reverse("dashboard:session_fragment", args=[sim.session_id]) + f"?exposure={foreign}")
        assert f'id="selected" data-image-id="{newest.pk}"' in other.content.decode()  # not another session's
    # the requeue form comes back to the page, not to the fragment
    assert f'name="next" value="{reverse("dashboard:session", args=[sim.session_id])}?exposure={first.pk}"' in html


@pytest.mark.parametrize("kind", pictures.SESSION_KINDS)
def test_each_session_plot_is_a_small_png_rendered_once(staff, processed_session, kind):
    url = reverse("dashboard:session_plot", args=[processed_session.session_id, kind])
    picture = _png(staff.get(url))
    assert picture.shape[:2] == (208, 336)
    cached = sorted((pictures.cache_dir() / f"ses_{kind}").glob(f"{processed_session.session_id}-*.png"))
    assert len(cached) == 1
    before = cached[0].stat().st_mtime_ns
    _png(staff.get(url))
    after = sorted((pictures.cache_dir() / f"ses_{kind}").glob(f"{processed_session.session_id}-*.png"))
    assert len(after) == 1  # a stale version is removed once its successor is in place
    if kind not in ("backlog", "throughput", "latency"):  # these follow the clock (a new version each minute)
        assert after == cached and after[0].stat().st_mtime_ns == before


@pytest.mark.parametrize("kind", pictures.EXPOSURE_KINDS)
def test_each_exposure_picture_exists_for_aligned_and_raw_ids(staff, processed_session, kind):
    aligned = _aligned(processed_session)[0]
    raw = m.ApDDAlignImagePairData.objects.filter(result_id=aligned.pk).values_list("source_id", flat=True).first()
    for image_id in (aligned.pk, raw):
        _png(staff.get(reverse("dashboard:exposure_picture", args=[image_id, kind])))


def test_pictures_of_an_exposure_without_results_and_unknown_names_are_not_found(staff, processed_session):
    broken = m.ExposureStep.objects.filter(state=StepState.QUARANTINED).first().exposure_id
    for kind in ("ctffit", "drift"):
        assert staff.get(reverse("dashboard:exposure_picture", args=[broken, kind])).status_code == 404
    # Leginon's own sum of the exposure is there: its spectrum is computed, without rings (no CTF fit)
    spectrum = _png(staff.get(reverse("dashboard:exposure_picture", args=[broken, "spectrum"])))
    assert not np.any((spectrum[..., 1] - np.maximum(spectrum[..., 0], spectrum[..., 2])) > 0.2)
    image = _aligned(processed_session)[0].pk
    assert staff.get(f"/exposure/{image}/passwd.png").status_code == 404
    assert staff.get(f"/exposure/{image}/..%2F..%2Fetc.png").status_code == 404
    assert staff.get(f"/session/{processed_session.session_id}/plot/thumb.png").status_code == 404
    assert staff.get("/exposure/999999/thumb.png").status_code == 404
    assert staff.get("/assets/views.py").status_code == 404
    assert staff.get("/assets/..%2Fviews.py").status_code == 404
    assert staff.get(reverse("dashboard:asset", args=["dashboard.js"]))["Content-Type"].startswith("text/javascript")
    assert staff.get(reverse("dashboard:session", args=[processed_session.session_id]) + "?run=999999"
                     ).status_code == 404
    assert staff.get("/session/999999/").status_code == 404


def test_a_user_sees_only_sessions_visible_to_their_leginon_name(client, processed_session):
    sim = processed_session
    client.force_login(user_create("stranger"))
    assert f'data-session-id="{sim.session_id}"' not in client.get(reverse("dashboard:sessions")).content.decode()
    image = _aligned(sim)[0].pk
    line = m.ExposureStep.objects.filter(state=StepState.QUARANTINED).first()
    for url in (reverse("dashboard:session", args=[sim.session_id]),
                reverse("dashboard:session_fragment", args=[sim.session_id]),
                reverse("dashboard:session_plot", args=[sim.session_id, "defocus"]),
                reverse("dashboard:exposure_picture", args=[image, "thumb"])):
        assert client.get(url).status_code == 404, url
    assert client.post(reverse("dashboard:requeue", args=[line.pk])).status_code == 404
    assert m.ExposureStep.objects.get(pk=line.pk).state == StepState.QUARANTINED
    owner = Client()
    owner.force_login(user_create("semc-sim"))  # the simulated session's Leginon user
    assert f'data-session-id="{sim.session_id}"' in owner.get(reverse("dashboard:sessions")).content.decode()
    assert owner.get(reverse("dashboard:session", args=[sim.session_id])).status_code == 200


def test_requeue_needs_post_and_csrf_and_puts_the_line_back_to_pending(processed_session):
    sim = processed_session
    user_create("operator", staff=True)
    client = Client(enforce_csrf_checks=True)
    client.login(username="operator", password=PASSWORD)
    line = m.ExposureStep.objects.filter(run_id=sim.run_id, state=StepState.QUARANTINED,
                                         step="motioncorrection").first()
    url = reverse("dashboard:requeue", args=[line.pk])
    assert client.get(url).status_code == 405
    assert client.post(url).status_code == 403  # no CSRF token
    assert m.ExposureStep.objects.get(pk=line.pk).state == StepState.QUARANTINED
    page = client.get(reverse("dashboard:session", args=[sim.session_id])).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    back = reverse("dashboard:session", args=[sim.session_id]) + "?exposure=1"
    response = client.post(url, {"csrfmiddlewaretoken": token, "next": back})
    assert response.status_code == 302 and response["Location"] == back
    line.refresh_from_db()
    assert (line.state, line.attempts, line.next_attempt_at) == (StepState.PENDING, 0, None)
    other = m.ExposureStep.objects.get(run_id=sim.run_id, exposure_id=line.exposure_id, step="ctfestimation")
    assert other.state == StepState.QUARANTINED  # only the line asked for
    answer = client.post(reverse("dashboard:requeue", args=[other.pk]), {"csrfmiddlewaretoken": token,
                                                                         "next": "https://evil.example/"},
                         HTTP_ACCEPT="application/json")
    assert json.loads(answer.content)["requeued"] == 1
    again = client.post(reverse("dashboard:requeue", args=[other.pk]), {"csrfmiddlewaretoken": token,
                                                                        "next": "https://evil.example/"})
    assert again["Location"] == reverse("dashboard:session", args=[sim.session_id])  # no open redirect


def test_the_plotted_values_are_the_stored_results_in_the_plots_units(processed_session):
    sim = processed_session
    with data.session_appion(sim.session_id):
        runs = data.classic_runs(sim.session_id, m.ProcessingRun.objects.get(pk=sim.run_id))
        ctfs = data.ctf_points(sim.session_id, runs.acerun)
        drifts = data.drift_points(sim.session_id, runs.ddstackrun)
    truth = {e.filename: json.loads(f.truth.read_text()) for e, f in zip(sim.plan.exposures, sim.files)}
    assert len(ctfs) == 2 and len(drifts) == 2
    ledger_ctf = {line.exposure_id: line.result for line in m.ExposureStep.objects.filter(
        run_id=sim.run_id, step="ctfestimation", state=StepState.DONE)}
    for point in ctfs:
        row = m.ApCtfData.objects.get(pk=point.ctf_id)
        assert point.defocus_um == pytest.approx((row.defocus1 + row.defocus2) / 2 * 1e6)
        fit = ledger_ctf[point.source_id]  # CTFFIND's own values (Å), as the task returned them
        assert point.defocus_um == pytest.approx((fit["defocus_u_A"] + fit["defocus_v_A"]) / 2 / 1e4, rel=1e-6)
        assert point.astigmatism_angstrom == pytest.approx(abs(fit["defocus_u_A"] - fit["defocus_v_A"]), abs=1e-3)
        assert point.resolution_angstrom == pytest.approx(fit["resolution_A"])
        assert m.AcquisitionImageData.objects.get(pk=point.source_id).filename in truth
        assert point.minutes is not None and point.minutes >= 0
    ledger = {line.exposure_id: line.result for line in m.ExposureStep.objects.filter(
        run_id=sim.run_id, step="motioncorrection", state=StepState.DONE)}
    for point in drifts:
        # the same path length RELION's rlnAccumMotionTotal holds (computed by the store from the shifts)
        assert point.total_angstrom == pytest.approx(ledger[point.source_id]["accum_motion_total_A"], abs=1e-3)


def test_the_spectrum_rings_sit_on_the_fitted_ctf_zeros(staff, processed_session):
    aligned = _aligned(processed_session)[0]
    with data.session_appion(processed_session.session_id):
        results = data.exposure_results(aligned.pk)
    from semc.base.io import read_image

    spectrum, pixel = read_image(results.diagnostic_path)
    box = spectrum.shape[0]
    picture = _png(staff.get(reverse("dashboard:exposure_picture", args=[aligned.pk, "spectrum"])))
    size = picture.shape[0]
    green = (picture[..., 1] - np.maximum(picture[..., 0], picture[..., 2])) > 0.2
    assert green.sum() > 20
    rows, cols = np.nonzero(green)
    # picture row 0 is the top: the highest frequency row of the spectrum (origin="lower")
    radius_px = np.hypot((size - 1 - rows) - size / 2, cols - size / 2) * box / size
    ctf = results.ctf
    from semc.ctfestimation.calc.internal.model import CtfOptics

    optics = CtfOptics(voltage_kv=results.voltage_kv, spherical_aberration_mm=ctf.cs,
                       amplitude_contrast=ctf.amplitude_contrast)
    # first zero of the mean defocus (Cs negligible at low frequency): pi*lambda*g^2*df + ac phase = pi
    mean = 0.5 * (ctf.defocus1 + ctf.defocus2) * 1e10
    phase_ac = math.atan2(ctf.amplitude_contrast, math.sqrt(1 - ctf.amplitude_contrast**2))
    g1 = math.sqrt((math.pi - phase_ac) / (math.pi * optics.wavelength_angstrom * mean))
    r1 = g1 * box * pixel
    assert np.min(np.abs(radius_px - r1)) < 2.5
    assert np.all(radius_px > 0.8 * r1 * math.sqrt(min(ctf.defocus1, ctf.defocus2) / max(ctf.defocus1, ctf.defocus2)))


def test_a_session_without_any_run_and_one_processed_by_classic_appion_alone(staff):
    from tests.factories import appion_results_populate

    fresh = session_populate(name="fresh26a", n_images=2)
    html = staff.get(reverse("dashboard:session", args=[fresh.session.pk])).content.decode()
    assert _tile(html, "raw") == "2" and _tile(html, "processed") == "0" and _tile(html, "state") == "needs_processing"
    assert "No aligned micrographs yet." in html and "No failures." in html and "0 CTF fits, 0 aligned" in html
    for kind in pictures.SESSION_KINDS:  # empty plots say so instead of failing
        _png(staff.get(reverse("dashboard:session_plot", args=[fresh.session.pk, kind])))
    classic = session_populate(name="classic26a", n_images=3)
    appion_results_populate(classic)  # rows as classic Appion wrote them, no SEMC run
    html = staff.get(reverse("dashboard:session", args=[classic.session.pk])).content.decode()
    assert "3 CTF fits, 3 aligned" in html
    with data.session_appion(classic.session.pk):
        runs = data.classic_runs(classic.session.pk, None)
        points = data.ctf_points(classic.session.pk, runs.acerun)
        drift = data.drift_points(classic.session.pk, runs.ddstackrun)
    assert [p.defocus_um for p in points] == pytest.approx([1.5] * 3)
    assert [p.astigmatism_angstrom for p in points] == pytest.approx([1000.0] * 3)
    assert [p.resolution_angstrom for p in points] == pytest.approx([3.9] * 3)
    # positions (0, 0), (0.5, -0.25), (1, -0.5) px at 0.826 Å/px: two steps of 0.559 px
    assert [p.total_angstrom for p in drift] == pytest.approx([2 * math.hypot(0.5, 0.25) * 0.826] * 3)
    _png(staff.get(reverse("dashboard:session_plot", args=[classic.session.pk, "defocus"])))
    _png(staff.get(reverse("dashboard:exposure_picture", args=[classic.images[0].pk, "drift"])))
