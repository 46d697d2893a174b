"""The dashboard in a real headless Chromium, served by Django on loopback: log in, the numbers of a
session the daemon processed, every picture loads, the page updates by itself (no reload) when the
daemon stores a new result, and a screenshot for CI (``$SEMC_TEST_OUTPUT`` or ``test-output/``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from matplotlib.image import imread

from tests.web.dashboard.cdp import Browser, chromium_path
from tests.web.dashboard.conftest import PASSWORD, simulated_run, user_create

CHROMIUM = chromium_path()

pytestmark = [
    pytest.mark.django_db(databases="__all__", transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian package `chromium`, installed by "
                                                "scripts/install.sh)"),
]

OUTPUT = Path(os.environ.get("SEMC_TEST_OUTPUT") or Path(__file__).resolve().parents[3] / "test-output")


@pytest.fixture
def browser(tmp_path):
    OUTPUT.mkdir(parents=True, exist_ok=True)
    handle = Browser(CHROMIUM, tmp_path / "profile", log=tmp_path / "chromium.log")
    try:
        yield handle
    finally:
        handle.close()


def _text(browser: Browser, element_id: str) -> str | None:
    return browser.evaluate(f"(document.getElementById({json.dumps(element_id)}) || {{}}).textContent")


def _broken_images(browser: Browser) -> list[str]:
    """Images of the page that did not load (after waiting for them to finish)."""
    browser.wait_for("Array.from(document.images).every(i => i.complete)", timeout=60)
    return browser.evaluate("Array.from(document.images).filter(i => !i.naturalWidth).map(i => i.src)")


def test_the_dashboard_in_chromium_shows_the_session_and_updates_itself(live_server, browser, tmp_path):
    sim = simulated_run(tmp_path / "data", name="live26a", n_exposures=2)
    sim.process(1)
    user_create("microscopist", staff=True)
    session_url = f"{live_server.url}/session/{sim.session_id}/?poll=1"

    browser.navigate(session_url)  # not logged in: the login page, which sends us back afterwards
    assert browser.evaluate("location.pathname") == "/login/"
    browser.evaluate(f"""(() => {{
        document.getElementById('id_username').value = 'microscopist';
        document.getElementById('id_password').value = {json.dumps(PASSWORD)};
        document.querySelector('form[action="/login/"]').submit(); }})()""")
    browser.wait_event("Page.loadEventFired", timeout=60)
    assert browser.evaluate("location.pathname") == f"/session/{sim.session_id}/"

    assert _text(browser, "stat-raw").strip() == "1"
    assert _text(browser, "stat-processed").strip() == "1"
    assert _text(browser, "stat-failed").strip() == "0"
    assert browser.evaluate("document.querySelectorAll('#micrographs article').length") == 1
    assert _broken_images(browser) == []  # plots, thumbnail, spectrum, drift, CTF fit: all rendered
    plot_sizes = browser.evaluate("Array.from(document.querySelectorAll('img[data-plot]'))"
                                  ".map(i => [i.naturalWidth, i.naturalHeight])")
    assert len(plot_sizes) == 7 and all(size == [336, 208] for size in plot_sizes)

    browser.evaluate("window.semcMarker = 'same page'")  # gone if the page were reloaded
    refreshed = browser.wait_for("document.getElementById('live').getAttribute('data-refreshed')", timeout=30)
    sim.process(1)  # Leginon writes the next exposure's rows; the daemon stores its results
    browser.wait_for("document.getElementById('stat-processed').textContent.trim() === '2'", timeout=60)
    assert browser.evaluate("window.semcMarker") == "same page"
    assert browser.evaluate("document.getElementById('live').getAttribute('data-refreshed')") != refreshed
    assert _text(browser, "stat-raw").strip() == "2"
    assert browser.evaluate("document.querySelectorAll('#micrographs article').length") == 2
    assert "2 CTF fits, 2 aligned" in _text(browser, "result-counts")
    assert _broken_images(browser) == []
    assert _text(browser, "selected-name").endswith("00002enn-a")  # the newest is selected

    older = browser.evaluate("document.querySelectorAll('#micrographs a[data-exposure]')[1].dataset.exposure")
    browser.evaluate(f"document.querySelector('a[data-exposure=\"{older}\"]').click()")
    browser.wait_for(f"document.getElementById('selected').dataset.imageId === '{older}'", timeout=30)
    assert _text(browser, "selected-name").endswith("00001enn-a")
    assert browser.evaluate("location.search").endswith(f"exposure={older}")
    assert browser.evaluate("window.semcMarker") == "same page"  # selected without a reload
    assert _broken_images(browser) == []

    shot = browser.screenshot(OUTPUT / "dashboard-session.png")
    picture = imread(shot)
    assert 1200 <= picture.shape[1] <= 1280 and picture.shape[0] >= 1000  # less a scroll bar

    browser.navigate(f"{live_server.url}/")
    row = browser.evaluate(f"""(() => {{ const row = document.querySelector('tr[data-session-id="{sim.session_id}"]');
        return Object.fromEntries(Array.from(row.querySelectorAll('[data-field]'))
            .map(c => [c.dataset.field, c.textContent.trim()])); }})()""")
    assert row == {"raw_files": "2", "processed_files": "2", "failed_jobs": "0", "backlog": "0",
                   "percent_done_total": "100 %"}
    browser.screenshot(OUTPUT / "dashboard-sessions.png")
