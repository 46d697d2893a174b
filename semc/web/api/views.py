"""The status and control API (JSON). Thin views: authenticate, authorise, validate, call a service.

Every endpoint but ``openapi.json`` needs a token (or, for pages of this site, a Django login; a POST with
a login also needs the CSRF token). Authorisation: a token acts for its own user only (staff for any user);
a session must belong to the project and be the user's, shared with the user or in a project the user owns,
else it does not exist (404). Names from the URL are checked by pattern and only used in database queries.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from semc.base.errors import InputMissing, InvalidParameters
from semc.web import stats
from semc.web.api import control
from semc.web.api.openapi import openapi_document
from semc.web.api.params import (
    STEPS,
    StartParameters,
    parameters_check_against_session,
    parameters_from_query,
)
from semc.web.auth import (
    USERNAME_RE,
    failure_record,
    failures_exceeded,
    token_authenticate,
    token_from_request,
)
from semc.web.models import ControlRequest

__all__ = [
    "not_found",
    "openapi",
    "resume_processing",
    "session_detail",
    "session_failures",
    "session_requests",
    "session_timeline",
    "sessions",
    "start_processing",
    "stop_processing",
]

logger = logging.getLogger(__name__)
_SAFE = ("GET", "HEAD", "OPTIONS")


def _error(status: int, code: str, detail: str, *, headers: dict[str, str] | None = None,
           extra: dict[str, Any] | None = None) -> JsonResponse:
    response = JsonResponse({"error": code, "detail": detail, **(extra or {})}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _unauthorised(detail: str) -> JsonResponse:
    return _error(401, "not_authenticated", detail, headers={"WWW-Authenticate": 'Bearer realm="semc"'})


def _csrf_failure(request: HttpRequest) -> str | None:
    """Run Django's CSRF check for a request authenticated by its login cookie (the view is csrf_exempt
    because token requests carry no cookie)."""
    check = CsrfViewMiddleware(lambda r: None)
    check.process_request(request)
    response = check.process_view(request, None, (), {})
    return None if response is None else "CSRF check failed (send the csrftoken cookie and X-CSRFToken header)"


def _authenticate(request: HttpRequest):
    """The user, or an error response."""
    token = token_from_request(request)
    if token is not None:
        row = token_authenticate(token)
        if row is None:
            failure_record(request)
            return _unauthorised("invalid, expired or revoked token")
        return row.user
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        if request.method not in _SAFE and (reason := _csrf_failure(request)):
            return _error(403, "csrf_failed", reason)
        return user
    return _unauthorised("send a token: Authorization: Bearer <token> (or access_token=<token>)")


def api_endpoint(*methods: str):
    """Method check, failed-authentication throttle, authentication and typed errors, for one view."""

    def decorate(view):
        @csrf_exempt
        @functools.wraps(view)
        def inner(request: HttpRequest, *args, **kwargs):
            if request.method not in methods:
                return _error(405, "method_not_allowed", f"use {' or '.join(methods)}",
                              headers={"Allow": ", ".join(methods)})
            if (wait := failures_exceeded(request)) is not None:
                return _error(429, "too_many_failures", "too many failed authentications from this address",
                              headers={"Retry-After": str(wait)})
            user = _authenticate(request)
            if isinstance(user, JsonResponse):
                return user
            request.api_user = user
            try:
                return view(request, *args, **kwargs)
            except InvalidParameters as exc:
                return _error(400, "invalid_parameters", str(exc))
        return inner
    return decorate


def _authorise(request: HttpRequest, project_id: int, user: str) -> JsonResponse | None:
    from semc import models as m

    if not USERNAME_RE.match(user):
        return _error(400, "invalid_name", "invalid user name")
    api_user = request.api_user
    if api_user.username != user and not api_user.is_staff:
        return _error(403, "forbidden", f"this token acts for {api_user.username!r} only")
    if not m.Project.objects.filter(pk=project_id).exists():
        return _error(404, "not_found", f"no project {project_id}")
    return None


def _session(request: HttpRequest, project_id: int, user: str, session: str):
    """The session, or an error response (400 bad name, 403 other user, 404 not there or not visible)."""
    if (denied := _authorise(request, project_id, user)) is not None:
        return denied
    found = control.session_resolve(project_id=project_id, username=user, session_name=session)
    if found is None:
        return _error(404, "not_found", f"no session {session[:64]!r} of user {user!r} in project {project_id}")
    return found


def session_endpoint(method: str):
    """:func:`api_endpoint` for a ``.../session/{session}`` path: the view gets the resolved session."""

    def decorate(view):
        @api_endpoint(method)
        @functools.wraps(view)
        def inner(request: HttpRequest, project_id: int, user: str, session: str) -> JsonResponse:
            found = _session(request, project_id, user, session)
            if isinstance(found, JsonResponse):
                return found
            return view(request, found, project_id)
        return inner
    return decorate


def _with_names(values: dict[str, Any]) -> dict[str, Any]:
    """``id``: the session's database id; ``session_id``: its name (what the USC service calls session_id)."""
    values["id"] = values.pop("session_id")
    values["session_id"] = values.pop("session_name")
    return values


# --- read ----------------------------------------------------------------------------------------
def openapi(request: HttpRequest) -> JsonResponse:
    """The OpenAPI 3.1 description of this API (no authentication needed)."""
    if request.method not in _SAFE:
        return _error(405, "method_not_allowed", "use GET", headers={"Allow": "GET"})
    return JsonResponse(openapi_document())


@api_endpoint("GET")
def sessions(request: HttpRequest, project_id: int, user: str) -> JsonResponse:
    if (denied := _authorise(request, project_id, user)) is not None:
        return denied
    listed = stats.session_list(project_id=project_id, username=user)
    return JsonResponse({"project_id": project_id, "user": user,
                         "sessions": [_with_names(s.as_dict()) for s in listed]})


@session_endpoint("GET")
def session_detail(request: HttpRequest, found, project_id: int) -> JsonResponse:
    window = _number(request, "window_s", default=600.0, low=10.0, high=86400.0)
    return JsonResponse(_with_names(stats.session_status(found.pk, window_s=window).as_dict()))


def _number(request: HttpRequest, name: str, *, default: float, low: float, high: float) -> float:
    text = request.GET.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise InvalidParameters(f"{name} must be a number, got {text[:32]!r}") from None
    if not low <= value <= high:
        raise InvalidParameters(f"{name} must be between {low:g} and {high:g}")
    return value


@session_endpoint("GET")
def session_requests(request: HttpRequest, found, project_id: int) -> JsonResponse:
    rows = ControlRequest.objects.filter(session_id=found.pk).order_by("-created_at", "-id")[:50]
    return JsonResponse({"session_id": found.name, "requests": [control.request_as_dict(r) for r in rows]})


@session_endpoint("GET")
def session_timeline(request: HttpRequest, found, project_id: int) -> JsonResponse:
    bin_s = _number(request, "bin_s", default=60.0, low=1.0, high=86400.0)
    run = stats.run_current(found.pk)
    step = request.GET.get("step") or (run.steps[-1] if run is not None and run.steps else None)
    if step is not None and (step not in STEPS or (run is not None and step not in run.steps)):
        raise InvalidParameters(f"step must be one of the run's steps, got {step[:32]!r}")
    points = stats.session_timeline(run.pk, step=step, bin_s=bin_s) if run is not None else []
    return JsonResponse({"session_id": found.name, "run_id": run.pk if run is not None else None, "step": step,
                         "bin_s": bin_s, "points": [p.as_dict() for p in points]})


@session_endpoint("GET")
def session_failures(request: HttpRequest, found, project_id: int) -> JsonResponse:
    limit = int(_number(request, "limit", default=100, low=1, high=1000))
    run = stats.run_current(found.pk)
    lines = stats.failure_list(run.pk, limit=limit) if run is not None else []
    return JsonResponse({"session_id": found.name, "run_id": run.pk if run is not None else None,
                         "failures": [f.as_dict() for f in lines]})


# --- control -------------------------------------------------------------------------------------
def _query(request: HttpRequest):
    """Query string and form body together (a parameter given in both counts as repeated)."""
    query = request.GET.copy()
    for key, values in request.POST.lists():
        for value in values:
            query.appendlist(key, value)
    return query


def _checked(found, params: StartParameters) -> tuple[dict[str, Any], JsonResponse | None]:
    values = control.session_values_for_checks(found.pk, params.preset)
    checks = parameters_check_against_session(params, **values)
    wrong = {name: check for name, check in checks.items() if check["ok"] is False}
    if wrong:
        names = ", ".join(f"{n} {c['given']} (database {c['database']})" for n, c in wrong.items())
        return checks, _error(409, "parameter_mismatch", f"parameters disagree with the session: {names}",
                              extra={"checks": checks})
    return checks, None


def _accepted(request_row: ControlRequest, checks: dict[str, Any]) -> JsonResponse:
    return JsonResponse({"result": "ok", "request": control.request_as_dict(request_row), "checks": checks},
                        status=202)


def _control(action: str):
    @session_endpoint("POST")
    def view(request: HttpRequest, found, project_id: int) -> JsonResponse:
        given = parameters_from_query(_query(request))
        if action == ControlRequest.Action.STOP:
            if given:
                raise InvalidParameters(f"stop-processing takes no parameters, got {sorted(given)}")
            row = control.control_request_record(action=action, session=found, project_id=project_id,
                                                 requested_by=request.api_user.username)
            return _accepted(row, {})
        if action == ControlRequest.Action.START:
            given.setdefault("preset", stats.raw_preset_guess(found.pk))
            if given["preset"] is None:
                raise InvalidParameters("the session has no exposures yet: name the raw preset (preset=...)")
            params = StartParameters(**given)
        else:
            try:
                params = control.resume_parameters(found.pk, given)
            except InputMissing as exc:
                return _error(409, "nothing_to_resume", str(exc))
        try:
            control.preset_check(found.pk, params.preset)
        except InputMissing as exc:
            raise InvalidParameters(str(exc)) from None
        if (conflict := control.start_conflict(found.pk)) is not None:
            return _error(409, "conflict", conflict)
        checks, mismatch = _checked(found, params)
        if mismatch is not None:
            return mismatch
        row = control.control_request_record(action=action, session=found, project_id=project_id,
                                             requested_by=request.api_user.username, parameters=params)
        return _accepted(row, checks)

    view.__name__ = view.__qualname__ = f"{action}_processing"
    return view


start_processing = _control(ControlRequest.Action.START)
stop_processing = _control(ControlRequest.Action.STOP)
resume_processing = _control(ControlRequest.Action.RESUME)


@csrf_exempt
def not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    """Any other path under /api/: a JSON 404 (no HTML error pages for API clients)."""
    return _error(404, "not_found", "no such endpoint (see /api/openapi.json)")
