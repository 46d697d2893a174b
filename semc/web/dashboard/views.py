"""The live session dashboard: server-rendered pages, HTML fragments for the poller, pictures, requeue.

Every view needs a logged-in Django user. Staff see every session; other users see the sessions
that :func:`semc.web.stats.session_visible` grants to the Leginon user of the same name (their own,
shared with them, or in a project they own). Sessions, runs, exposures and ledger lines are named by
integer ids in URLs, checked against the database; no URL part ever names a file.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from pathlib import Path

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import redirect
from django.template.backends.django import DjangoTemplates
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from semc import models as m
from semc.base.store import exposure_steps_requeue
from semc.web import stats
from semc.web.dashboard import data, pictures

__all__ = [
    "LoginView",
    "LogoutView",
    "asset",
    "exposure_picture",
    "requeue",
    "session",
    "session_fragment",
    "session_plot",
    "sessions",
    "sessions_fragment",
]

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
#: the dashboard's own template engine (its templates live beside this module, not in an app folder)
ENGINE = DjangoTemplates({
    "NAME": "semc-dashboard", "DIRS": [str(HERE / "templates")], "APP_DIRS": False,
    "OPTIONS": {"context_processors": ["django.template.context_processors.request",
                                       "django.template.context_processors.csrf",
                                       "django.contrib.auth.context_processors.auth",
                                       "django.contrib.messages.context_processors.messages"]},
})
#: the only static files served (name -> (file under static/dashboard, content type))
ASSETS = {"dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
          "dashboard.css": ("dashboard.css", "text/css; charset=utf-8")}
LOGIN_URL = reverse_lazy("dashboard:login")
POLL_DEFAULT_S = 5.0
LIST_POLL_DEFAULT_S = 15.0  # the list computes every session's status: poll it less often
THUMBNAILS = 6
FAILURES_SHOWN = 50


def _render(request: HttpRequest, template: str, context: dict, *, status: int = 200) -> HttpResponse:
    return HttpResponse(ENGINE.get_template(template).render(context, request), status=status)


def _digest(version: str) -> str:
    return hashlib.sha256(version.encode()).hexdigest()[:12]


def dashboard_view(view):
    """Login required (sent to the dashboard's login page), never cached."""
    return login_required(never_cache(view), login_url=LOGIN_URL)


# --- who sees what -------------------------------------------------------------------------------
def _project_of(session_id: int) -> int | None:
    return (m.ProjectExperiment.objects.filter(session_id=session_id).order_by("id")
            .values_list("project_id", flat=True).first())


def _session_or_404(request: HttpRequest, session_id: int) -> m.SessionData:
    session = m.SessionData.objects.filter(pk=session_id).first()
    if session is None or not _may_see(request.user, session_id):
        raise Http404("no such session")  # the same answer for "absent" and "not yours"
    return session


def _may_see(user, session_id: int) -> bool:
    if user.is_staff or user.is_superuser:
        return True
    return stats.session_visible(project_id=_project_of(session_id), session_id=session_id, username=user.username)


def _poll_seconds(request: HttpRequest, *, default: float = POLL_DEFAULT_S) -> float:
    """The page's poll period: ``?poll=<seconds>``, 1 to 60 s."""
    try:
        value = float(request.GET.get("poll", default))
    except ValueError:
        return default
    return min(60.0, max(1.0, value)) if math.isfinite(value) else default


def _int_param(request: HttpRequest, name: str) -> int | None:
    value = request.GET.get(name, "")
    return int(value) if value.isdigit() and len(value) < 19 else None


# --- the session list ----------------------------------------------------------------------------
def _sessions_context(request: HttpRequest) -> dict:
    user = request.user
    if user.is_staff or user.is_superuser:
        rows = stats.session_list(limit=200)
    else:
        rows = stats.session_list(username=user.username, limit=200)
    return {"sessions": rows, "poll_s": _poll_seconds(request, default=LIST_POLL_DEFAULT_S)}


@dashboard_view
@require_GET
def sessions(request: HttpRequest) -> HttpResponse:
    """The list of sessions with their state and counts."""
    context = _sessions_context(request)
    context["fragment_url"] = reverse("dashboard:sessions_fragment")
    return _render(request, "dashboard/sessions.html", context)


@dashboard_view
@require_GET
def sessions_fragment(request: HttpRequest) -> HttpResponse:
    return _render(request, "dashboard/sessions_fragment.html", _sessions_context(request))


# --- one session ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Plot:
    kind: str
    title: str
    url: str


_PLOT_TITLES = {"backlog": "Backlog", "throughput": "Throughput", "latency": "Latency (arrival to stored)",
                "defocus": "Defocus", "resolution": "CTF fit resolution", "astigmatism": "Astigmatism",
                "drift": "Total drift per exposure"}


def _run_of(request: HttpRequest, session_id: int) -> m.ProcessingRun | None:
    chosen = _int_param(request, "run")
    if chosen is not None:
        run = m.ProcessingRun.objects.filter(pk=chosen, session_id=session_id).first()
        if run is None:
            raise Http404("no such run in this session")
        return run
    return stats.run_current(session_id)


def _session_context(request: HttpRequest, session: m.SessionData) -> dict:
    run = _run_of(request, session.pk)
    status = stats.session_status(session.pk)
    if run is not None and status.run is not None and status.run.run_id != run.pk:
        status = None  # an older run chosen: the live status is about the current one
    with data.session_appion(session.pk):
        runs = data.classic_runs(session.pk, run)
        micrographs = data.newest_micrographs(runs.ddstackrun, THUMBNAILS)
        shown = [i for mg in micrographs for i in (mg.aligned_id, mg.source_id)]
        ctfs = {p.image_id: p for p in data.ctf_points(session.pk, runs.acerun, image_ids=shown)}
        drifts = {p.aligned_id: p for p in data.drift_points(session.pk, runs.ddstackrun, image_ids=shown)}
        counts = {"ctf_count": m.ApCtfData.objects.filter(acerun=runs.acerun).count() if runs.acerun else 0,
                  "drift_count": (m.ApDDAlignStatsData.objects.filter(ddstackrun=runs.ddstackrun).count()
                                  if runs.ddstackrun else 0)}
        plot_versions = {kind: pictures.session_version(session.pk, run, kind, runs) for kind in pictures.SESSION_KINDS}
    selected = _int_param(request, "exposure")
    selected_name = (m.AcquisitionImageData.objects.filter(pk=selected, session_id=session.pk)
                     .values_list("filename", flat=True).first() if selected is not None else None)
    if selected_name is None:  # none asked for, or not an exposure of this session: the newest
        selected = micrographs[0].aligned_id if micrographs else None
        selected_name = micrographs[0].filename if micrographs else None
    newest = [{"micrograph": mg, "ctf": ctfs.get(mg.aligned_id) or ctfs.get(mg.source_id),
               "drift": drifts.get(mg.aligned_id)} for mg in micrographs]
    run_query = f"run={run.pk}&" if run is not None and request.GET.get("run") else ""
    query = request.GET.urlencode()
    plots = [Plot(kind, _PLOT_TITLES[kind], reverse("dashboard:session_plot", args=[session.pk, kind])
                  + f"?{run_query}v={_digest(plot_versions[kind])}")
             for kind in pictures.SESSION_KINDS]
    return {
        "session": session, "status": status, "run": run, "runs": stats.session_runs(session.pk),
        "steps": status.steps if status is not None else [],
        "failures": stats.failure_list(run.pk, limit=FAILURES_SHOWN) if run is not None else [],
        "newest": newest, "selected": selected, "selected_name": selected_name, "plots": plots,
        "pipeline_plots": [p for p in plots if p.kind in ("backlog", "throughput", "latency")],
        "science_plots": [p for p in plots if p.kind not in ("backlog", "throughput", "latency")],
        **counts, "poll_s": _poll_seconds(request),
        "page_url": reverse("dashboard:session", args=[session.pk]) + (f"?{query}" if query else ""),
    }


@dashboard_view
@require_GET
def session(request: HttpRequest, session_id: int) -> HttpResponse:
    """One session: counts, backlog, latency and throughput, science plots, newest micrographs, failures."""
    current = _session_or_404(request, session_id)
    context = _session_context(request, current)
    query = request.GET.urlencode()
    context["fragment_url"] = reverse("dashboard:session_fragment", args=[session_id]) + (f"?{query}" if query else "")
    return _render(request, "dashboard/session.html", context)


@dashboard_view
@require_GET
def session_fragment(request: HttpRequest, session_id: int) -> HttpResponse:
    """The live part of the session page (what the page's poller swaps in)."""
    current = _session_or_404(request, session_id)
    return _render(request, "dashboard/session_fragment.html", _session_context(request, current))


def _png(path: Path | None) -> HttpResponse:
    if path is None:
        raise Http404("nothing to show yet")
    response = HttpResponse(path.read_bytes(), content_type="image/png")  # small: read at once
    response["Cache-Control"] = "private, max-age=60"
    return response


@login_required(login_url=LOGIN_URL)
@require_GET
def session_plot(request: HttpRequest, session_id: int, kind: str) -> HttpResponse:
    if kind not in pictures.SESSION_KINDS:
        raise Http404("no such plot")
    _session_or_404(request, session_id)
    return _png(pictures.session_picture(session_id, _run_of(request, session_id), kind))


@login_required(login_url=LOGIN_URL)
@require_GET
def exposure_picture(request: HttpRequest, image_id: int, kind: str) -> HttpResponse:
    """Thumbnail, spectrum with rings, 1-D CTF fit or drift trajectory of one exposure (raw or aligned id)."""
    if kind not in pictures.EXPOSURE_KINDS:
        raise Http404("no such picture")
    session_id = m.AcquisitionImageData.objects.filter(pk=image_id).values_list("session_id", flat=True).first()
    if session_id is None:
        raise Http404("no such exposure")
    _session_or_404(request, session_id)
    return _png(pictures.exposure_picture(image_id, kind))


@login_required(login_url=LOGIN_URL)
@require_POST
def requeue(request: HttpRequest, line_id: int) -> HttpResponse:
    """Requeue one failed or quarantined ledger line (POST with the CSRF token)."""
    line = m.ExposureStep.objects.select_related("run").filter(pk=line_id).first()
    if line is None:
        raise Http404("no such ledger line")
    _session_or_404(request, line.run.session_id)
    count = exposure_steps_requeue(m.ExposureStep.objects.filter(pk=line.pk))
    logger.info("exposure=%s step=%s requeued from the dashboard by %s (%d line)", line.exposure_id, line.step,
                request.user.get_username(), count)
    text = (f"{line.filename or line.exposure_id}: {line.step} requeued" if count
            else f"{line.filename or line.exposure_id}: {line.step} was not failed (nothing to requeue)")
    if request.headers.get("Accept", "").startswith("application/json"):
        return JsonResponse({"requeued": count, "line_id": line.pk, "message": text})
    messages.success(request, text) if count else messages.info(request, text)
    target = reverse("dashboard:session", args=[line.run.session_id])
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()},
                                                require_https=request.is_secure()):
        target = back
    return redirect(target)


def asset(request: HttpRequest, name: str) -> HttpResponse:
    """The dashboard's own script and style sheet (served here, so the pages work offline and without
    a static-files set-up). Only the names in :data:`ASSETS` exist."""
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    if name not in ASSETS:
        raise Http404("no such file")
    filename, content_type = ASSETS[name]
    response = HttpResponse((HERE / "static" / "dashboard" / filename).read_bytes(), content_type=content_type)
    response["Cache-Control"] = "public, max-age=300"
    return response


# --- log in and out ------------------------------------------------------------------------------
class LoginView(auth_views.LoginView):
    template_name = "dashboard/login.html"
    redirect_authenticated_user = True

    def get_default_redirect_url(self) -> str:
        return reverse("dashboard:sessions")

    def render_to_response(self, context, **response_kwargs):
        return _render(self.request, self.template_name, context, status=response_kwargs.get("status", 200))


class LogoutView(auth_views.LogoutView):
    next_page = LOGIN_URL
