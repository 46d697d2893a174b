"""The status and control API through Django's test client on the test databases: every endpoint with a
valid token, none, a wrong one, another user's; hostile names; JSON shapes against the OpenAPI description."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client, override_settings

from semc.web.models import ApiToken, ControlRequest, SupervisedSession
from tests.web.api.conftest import assert_documented

pytestmark = pytest.mark.django_db(databases="__all__")

BASE = "/api/{project_id}/{user}"
SESSION = "/api/{project_id}/{user}/session/{session}"
GETS = [("sessions", f"{BASE}/sessions"), ("status", SESSION), ("requests", f"{SESSION}/requests"),
        ("timeline", f"{SESSION}/timeline"), ("failures", f"{SESSION}/failures")]
POSTS = ["start-processing", "stop-processing", "resume-processing"]


def _url(template: str, world, *, user: str = "jdoe", session: str | None = None, project: int | None = None) -> str:
    return template.format(project_id=world.project_id if project is None else project, user=user,
                           session=world.session.name if session is None else session)


def _bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_openapi_description_is_served_and_valid(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    document = response.json()
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {t for _, t in GETS} | {f"{SESSION}/{p}" for p in POSTS}
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(document)


@pytest.mark.parametrize(("name", "template"), GETS)
def test_every_read_endpoint_answers_a_valid_token_with_its_documented_shape(api_world, client, name, template):
    response = client.get(_url(template, api_world), **_bearer(api_world.token))
    assert response.status_code == 200, response.content
    body = assert_documented(response, template)
    if name == "sessions":
        assert [s["session_id"] for s in body["sessions"]] == ["26nov23a"]  # not rroe's session
    if name == "status":
        assert body["session_id"] == "26nov23a" and body["raw_files"] == 3 and body["state"] == "needs_processing"


@pytest.mark.parametrize("template", [t for _, t in GETS] + [f"{SESSION}/{p}" for p in POSTS])
def test_without_a_token_or_with_a_wrong_one_every_endpoint_says_401(api_world, client, template):
    method = client.post if template.endswith("processing") else client.get
    url = _url(template, api_world)
    missing = method(url)
    assert missing.status_code == 401 and missing["WWW-Authenticate"].startswith("Bearer")
    wrong = api_world.token[:-4] + ("AAAA" if not api_world.token.endswith("AAAA") else "BBBB")
    for headers in (_bearer(wrong), _bearer("not-a-token"), {"HTTP_ACCESS_TOKEN": wrong}):
        response = method(url, **headers)
        assert response.status_code == 401
        assert_documented(response, template, "post" if method == client.post else "get")
    assert method(f"{url}?access_token={wrong}").status_code == 401
    assert not ControlRequest.objects.exists()


@pytest.mark.parametrize("template", [t for _, t in GETS] + [f"{SESSION}/{p}" for p in POSTS])
def test_another_users_sessions_are_forbidden_or_not_found(api_world, client, template):
    method = client.post if template.endswith("processing") else client.get
    # rroe's token on jdoe's paths: 403
    response = method(_url(template, api_world), **_bearer(api_world.other_token))
    assert response.status_code == 403
    if "{session}" in template:
        # jdoe's token, jdoe's path, rroe's session: it does not exist for jdoe
        response = method(_url(template, api_world, session=api_world.other_session.name),
                          **_bearer(api_world.token))
        assert response.status_code == 404
        # a project the session is not in
        response = method(_url(template, api_world, project=api_world.project_id + 100),
                          **_bearer(api_world.token))
        assert response.status_code == 404
    assert not ControlRequest.objects.exists()


def test_the_token_is_accepted_in_each_documented_place(api_world, client):
    url = _url(f"{BASE}/sessions", api_world)
    for headers in ({"HTTP_AUTHORIZATION": f"Bearer {api_world.token}"},
                    {"HTTP_AUTHORIZATION": f"Token {api_world.token}"},
                    {"HTTP_ACCESS_TOKEN": api_world.token}):
        assert client.get(url, **headers).status_code == 200
    assert client.get(f"{url}?access_token={api_world.token}").status_code == 200
    assert ApiToken.objects.get(user__username="jdoe").last_used_at is not None


def test_revoked_and_expired_tokens_are_refused(api_world, client):
    from semc.web.auth import token_revoke

    url = _url(f"{BASE}/sessions", api_world)
    row = ApiToken.objects.get(user__username="jdoe")
    ApiToken.objects.filter(pk=row.pk).update(expires_at=dt.datetime.now() - dt.timedelta(seconds=1))
    assert client.get(url, **_bearer(api_world.token)).status_code == 401
    ApiToken.objects.filter(pk=row.pk).update(expires_at=None)
    assert client.get(url, **_bearer(api_world.token)).status_code == 200
    assert token_revoke(prefix=row.prefix) == 1
    assert client.get(url, **_bearer(api_world.token)).status_code == 401


def test_staff_tokens_act_for_any_user(api_world, client):
    response = client.get(_url(SESSION, api_world), **_bearer(api_world.staff_token))
    assert response.status_code == 200 and response.json()["user"] == "jdoe"
    # but the session must still be visible to the user named in the path
    response = client.get(_url(SESSION, api_world, session=api_world.other_session.name),
                          **_bearer(api_world.staff_token))
    assert response.status_code == 404


@override_settings(SEMC_AUTH_FAILURES_MAX=3, SEMC_AUTH_FAILURES_WINDOW_S=60)
def test_failed_authentications_are_rate_limited_per_address(api_world):
    url = _url(f"{BASE}/sessions", api_world)
    attacker, bystander = Client(REMOTE_ADDR="10.0.0.66"), Client(REMOTE_ADDR="10.0.0.7")
    for _ in range(3):
        assert attacker.get(url, **_bearer("semc_00000000_" + "x" * 43)).status_code == 401
    blocked = attacker.get(url, **_bearer(api_world.token))  # even a good token waits out the window
    assert blocked.status_code == 429 and int(blocked["Retry-After"]) == 60
    assert bystander.get(url, **_bearer(api_world.token)).status_code == 200


HOSTILE_NAMES = ["..", ".hidden", "-rf", "26nov23a;rm -rf ~", "26nov23a' OR '1'='1", "a b", "x" * 200,
                 "26nov23a%00", "$(id)", "`id`", "26nov23a\\..\\x", "<script>alert(1)</script>"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_session_and_user_names_are_refused_and_touch_nothing(api_world, client, name, tmp_path):
    import os

    home = os.environ["SEMC_HOME"]
    before = sorted(os.walk(home))
    from urllib.parse import quote

    quoted = quote(name, safe="")
    for method, template in [(client.get, SESSION), (client.post, f"{SESSION}/start-processing"),
                             (client.post, f"{SESSION}/stop-processing")]:
        response = method(_url(template, api_world, session=quoted), **_bearer(api_world.token))
        assert response.status_code in (400, 404) and response.json()["error"] in ("not_found", "invalid_name")
        response = method(_url(template, api_world, user=quoted), **_bearer(api_world.token))
        assert response.status_code in (400, 403, 404)
    assert not ControlRequest.objects.exists() and not SupervisedSession.objects.exists()
    assert sorted(os.walk(home)) == before


@pytest.mark.parametrize("path", ["/api/1/jdoe/session/..%2F..%2Fetc%2Fpasswd", "/api/1/jdoe/session/../../x",
                                  "/api/1/..%2Fjdoe/sessions", "/api/x/jdoe/sessions", "/api/1/jdoe/session/"])
def test_traversal_paths_get_a_json_404(api_world, client, path):
    response = client.get(path, **_bearer(api_world.token))
    assert response.status_code == 404 and response.json()["error"] == "not_found"


@pytest.mark.parametrize("query", ["runname=../../etc", "runname=.x", "preset=../enn", "preset=enn/x",
                                   "steps=motioncorrection;rm", "engine=/bin/sh", "bin=nan", "bin=100",
                                   "apix=abc", "superresolution=maybe", "throw=2", "rawgainref=*.gain",
                                   "nonsense=1", "apix=1&apix=2", "preset=nosuchpreset"])
def test_bad_start_parameters_are_refused_and_nothing_is_recorded(api_world, client, query):
    url = _url(f"{SESSION}/start-processing", api_world) + "?" + query
    response = client.post(url, **_bearer(api_world.token))
    assert response.status_code == 400, response.content
    assert_documented(response, f"{SESSION}/start-processing", "post")
    assert not ControlRequest.objects.exists()


def test_start_records_a_request_with_checked_parameters(api_world, client):
    url = _url(f"{SESSION}/start-processing", api_world)
    response = client.post(f"{url}?apix=0.826&kev=300&fmdose=1.09&superresolution=False&steps=motioncorrection",
                           **_bearer(api_world.token))
    assert response.status_code == 202, response.content
    body = assert_documented(response, f"{SESSION}/start-processing", "post")
    assert body["result"] == "ok" and body["request"]["state"] == "pending"
    assert {name: check["ok"] for name, check in body["checks"].items()} == {"apix": True, "kev": True,
                                                                              "fmdose": True}
    row = ControlRequest.objects.get()
    assert (row.action, row.session_id, row.requested_by) == ("start", api_world.session.pk, "jdoe")
    assert row.parameters["preset"] == "enn" and row.parameters["steps"] == ["motioncorrection"]
    status = client.get(_url(SESSION, api_world), **_bearer(api_world.token)).json()
    assert status["state"] == "processing_start" and status["pending_requests"][0]["action"] == "start"
    # a second start while the first is pending is a conflict
    again = client.post(url, **_bearer(api_world.token))
    assert again.status_code == 409 and ControlRequest.objects.count() == 1
    listed = client.get(_url(f"{SESSION}/requests", api_world), **_bearer(api_world.token))
    assert [r["id"] for r in assert_documented(listed, f"{SESSION}/requests")["requests"]] == [row.pk]


def test_parameters_that_disagree_with_the_database_are_refused_with_both_values(api_world, client):
    url = _url(f"{SESSION}/start-processing", api_world) + "?apix=1.5&kev=300"
    response = client.post(url, **_bearer(api_world.token))
    assert response.status_code == 409
    body = assert_documented(response, f"{SESSION}/start-processing", "post")
    assert body["checks"]["apix"] == {"given": 1.5, "database": pytest.approx(0.826), "ok": False}
    assert body["checks"]["kev"]["ok"] is True and not ControlRequest.objects.exists()


def test_stop_and_resume(api_world, client):
    session_url = _url(SESSION, api_world)
    stop = client.post(f"{session_url}/stop-processing", **_bearer(api_world.token))
    assert stop.status_code == 202 and ControlRequest.objects.get().action == "stop"
    assert client.post(f"{session_url}/stop-processing?apix=1", **_bearer(api_world.token)).status_code == 400
    ControlRequest.objects.update(state="done")
    resume = client.post(f"{session_url}/resume-processing", **_bearer(api_world.token))
    assert resume.status_code == 409 and resume.json()["error"] == "nothing_to_resume"
    SupervisedSession.objects.create(session_id=api_world.session.pk, session_name="26nov23a",
                                     project_id=api_world.project_id, state="stopped",
                                     parameters={"preset": "enn", "steps": ["motioncorrection"], "runname": "r1"})
    resume = client.post(f"{session_url}/resume-processing?bin=2", **_bearer(api_world.token))
    assert resume.status_code == 202
    parameters = ControlRequest.objects.get(action="resume").parameters
    assert (parameters["runname"], parameters["bin"], parameters["steps"]) == ("r1", 2.0, ["motioncorrection"])


def test_methods_are_checked(api_world, client):
    assert client.get(_url(f"{SESSION}/start-processing", api_world), **_bearer(api_world.token)).status_code == 405
    assert client.post(_url(SESSION, api_world), **_bearer(api_world.token)).status_code == 405
    assert client.delete(_url(SESSION, api_world), **_bearer(api_world.token)).status_code == 405


def test_a_login_reads_but_must_send_the_csrf_token_to_control(api_world):
    from django.contrib.auth import get_user_model

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(get_user_model().objects.get(username="jdoe"))
    assert browser.get(_url(SESSION, api_world)).status_code == 200
    url = _url(f"{SESSION}/stop-processing", api_world)
    refused = browser.post(url)
    assert refused.status_code == 403 and refused.json()["error"] == "csrf_failed"
    assert not ControlRequest.objects.exists()
    browser.get("/admin/login/")  # any page that sets the CSRF cookie
    token = browser.cookies["csrftoken"].value
    assert browser.post(url, HTTP_X_CSRFTOKEN=token).status_code == 202
