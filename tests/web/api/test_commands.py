"""``semc token`` and ``semc web`` as a user runs them: real processes on the test databases, real HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.web.api.test_supervise import _test_database_names

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


def _semc(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "semc", *args], env=env, capture_output=True, text=True, check=False,
                          timeout=120)


@pytest.fixture
def env():
    return {**os.environ, **_test_database_names()}


def test_token_create_prints_the_token_once_and_list_and_revoke_follow(env):
    from semc.web.auth import token_authenticate
    from semc.web.models import ApiToken

    created = _semc("token", "create", "jdoe", "--label", "dashboard", env=env)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    row = token_authenticate(token)
    assert row is not None and row.user.username == "jdoe" and row.label == "dashboard"
    assert token not in created.stderr and ApiToken.objects.get().digest != token  # stored hashed only
    listing = _semc("token", "list", env=env)
    assert row.prefix in listing.stdout and "active" in listing.stdout and token not in listing.stdout
    assert _semc("token", "revoke", row.prefix, env=env).returncode == 0
    assert token_authenticate(token) is None
    assert "revoked" in _semc("token", "list", "jdoe", env=env).stdout
    assert _semc("token", "revoke", "ffffffff", env=env).returncode == 1  # nothing to revoke
    bad = _semc("token", "create", "../jdoe", env=env)
    assert bad.returncode == 1 and "invalid user name" in bad.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str, token: str | None = None) -> tuple[int, bytes, object]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers


SERVERS = ["runserver", pytest.param("waitress", marks=pytest.mark.skipif(
    __import__("importlib").util.find_spec("waitress") is None, reason="waitress is not installed"))]


@pytest.mark.parametrize("server", SERVERS)
def test_semc_web_serves_the_api_and_static_files_on_loopback(env, server):
    from semc.web.auth import token_create
    from tests.factories import session_populate

    populated = session_populate(n_images=2)
    _, token = token_create(username="jdoe")
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "semc", "web", "--port", str(port), "--server", server],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body, _ = _get(f"{base}/api/openapi.json")
                break
            except (ConnectionError, urllib.error.URLError):
                assert process.poll() is None and time.monotonic() < deadline, process.stdout.read().decode()
                time.sleep(0.3)
        assert status == 200 and b'"openapi": "3.1.0"' in body
        status, body, headers = _get(f"{base}/api/{populated.project.pk}/jdoe/sessions")
        assert status == 401 and "Bearer" in headers["WWW-Authenticate"]
        status, body, _ = _get(f"{base}/api/{populated.project.pk}/jdoe/session/26nov23a", token)
        assert status == 200 and b'"raw_files": 2' in body
        status, body, _ = _get(f"{base}/static/admin/css/base.css")
        assert status == 200 and b"{" in body
        for attempt in ("..%2f..%2fsettings.py", "admin/css/..%2f..%2f..%2f..%2fsettings.py", "%2fetc%2fpasswd"):
            status, body, _ = _get(f"{base}/static/{attempt}")
            assert status in (400, 404) and b"SECRET" not in body and b"root:" not in body
        addresses = {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
        outside = sorted(a for a in addresses if not a.startswith("127."))
        if outside:  # bound to loopback only: another address of this machine is refused
            with pytest.raises(OSError):
                socket.create_connection((outside[0], port), timeout=2).close()
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 0, output[-2000:]
