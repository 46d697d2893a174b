"""The OpenAPI 3.1 description of the status and control API, served at ``/api/openapi.json``.

Schemas are strict (``additionalProperties: false``) so that a response that drifts from this description
fails the tests (``tests/web/api``), which validate every response against it.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from semc import __version__
from semc.web.api.params import CTF_ENGINES, ENGINES

__all__ = ["openapi_document"]


def _nullable(kind: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(kind, str):
        return {"type": [kind, "null"]}
    return {"anyOf": [kind, {"type": "null"}]}


def _obj(properties: dict[str, Any], *, optional: tuple[str, ...] = (), description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties,
                              "required": [k for k in properties if k not in optional],
                              "additionalProperties": False}
    if description:
        schema["description"] = description
    return schema


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


INT, NUM, STR, BOOL = {"type": "integer"}, {"type": "number"}, {"type": "string"}, {"type": "boolean"}
TIME = {"type": "string", "format": "date-time"}
STATES = ["incomplete_or_empty", "needs_processing", "processing_start", "processing", "stopping",
          "processing_complete", "processing_failure"]


def _schemas() -> dict[str, Any]:
    step_stats = _obj({
        "step": STR, "pending": INT, "deferred": INT, "running": INT, "done": INT, "failed": INT,
        "quarantined": INT, "backlog": INT, "throughput_per_min": NUM, "latency_p50_s": _nullable("number"),
        "latency_p95_s": _nullable("number"), "latency_max_s": _nullable("number"),
        "catch_up_s": _nullable("number")}, description="One step of the run: ledger counts and live figures.")
    run = _obj({
        "run_id": INT, "name": STR, "rundir": STR, "preset": STR, "steps": {"type": "array", "items": STR},
        "status": {"enum": ["running", "stopped", "failed"]}, "alive": _nullable("boolean"), "host": STR,
        "pid": _nullable("integer"), "created_at": TIME, "updated_at": TIME})
    supervisor = _obj({
        "desired": {"enum": ["running", "stopped"]},
        "state": {"enum": ["starting", "running", "stopping", "stopped", "failed"]},
        "pid": _nullable("integer"), "host": STR, "started_at": _nullable(TIME), "stopped_at": _nullable(TIME),
        "exit_code": _nullable("integer"), "failures": INT, "message": STR})
    pending = _obj({"id": INT, "action": {"enum": ["start", "stop", "resume"]}, "created_at": TIME,
                    "requested_by": STR})
    status = _obj({
        "id": INT, "session_id": {"type": "string", "description": "the session name (as the USC service)"},
        "project_id": _nullable("integer"), "user": STR, "state": {"enum": STATES}, "preset": _nullable("string"),
        "raw_files": INT, "processed_files": INT, "failed_jobs": INT, "quarantined": INT, "in_flight": INT,
        "rejected": INT, "backlog": INT, "backlog_trend_per_min": _nullable("number"), "throughput_per_min": NUM,
        "latency_p50_s": _nullable("number"), "latency_p95_s": _nullable("number"),
        "latency_all_p50_s": _nullable("number"), "latency_all_p95_s": _nullable("number"),
        "catch_up_s": _nullable("number"), "percent_current_cycle": NUM,
        "percent_done_total": {"type": "integer", "minimum": 0, "maximum": 100},
        "cycle_started_at": _nullable(TIME), "last_exposure_at": _nullable(TIME), "last_result_at": _nullable(TIME),
        "window_s": NUM, "run": _nullable(_ref("RunInfo")), "steps": {"type": "array", "items": _ref("StepStats")},
        "supervisor": _nullable(_ref("Supervisor")), "pending_requests": {"type": "array",
                                                                           "items": _ref("PendingRequest")}},
        description="A session's status: the USC service's fields (state, raw_files, processed_files, "
                    "failed_jobs, percent_current_cycle, percent_done_total) and SEMC's live figures.")
    summary = _obj({
        "id": INT, "session_id": STR, "project_id": _nullable("integer"), "user": STR, "comment": STR,
        "created_at": _nullable(TIME), "state": {"enum": STATES}, "raw_files": INT, "processed_files": INT,
        "failed_jobs": INT, "backlog": INT, "percent_done_total": INT, "last_exposure_at": _nullable(TIME)})
    request = _obj({
        "id": INT, "action": {"enum": ["start", "stop", "resume"]}, "state": {"enum": ["pending", "done", "refused"]},
        "created_at": TIME, "handled_at": _nullable(TIME), "requested_by": STR,
        "parameters": {"type": "object"}, "message": STR})
    check = _obj({"given": NUM, "database": _nullable("number"), "ok": _nullable("boolean")})
    point = _obj({"start": TIME, "end": TIME, "arrived": INT, "stored": INT, "failed": INT, "backlog": INT,
                  "throughput_per_min": NUM, "latency_p50_s": _nullable("number"),
                  "latency_p95_s": _nullable("number")})
    failure = _obj({"line_id": INT, "run_id": INT, "exposure_id": INT, "filename": STR, "step": STR,
                    "state": {"enum": ["failed", "quarantined"]}, "attempts": INT, "error_kind": STR,
                    "last_error": STR, "next_attempt_at": _nullable(TIME), "finished_at": _nullable(TIME)})
    return {
        "Error": _obj({"error": STR, "detail": STR, "checks": {"type": "object",
                                                               "additionalProperties": _ref("ParameterCheck")}},
                      optional=("checks",)),
        "StepStats": step_stats, "RunInfo": run, "Supervisor": supervisor, "PendingRequest": pending,
        "SessionStatus": status, "SessionSummary": summary,
        "SessionList": _obj({"project_id": INT, "user": STR,
                             "sessions": {"type": "array", "items": _ref("SessionSummary")}}),
        "ControlRequest": request, "ParameterCheck": check,
        "ControlAccepted": _obj({"result": {"const": "ok"}, "request": _ref("ControlRequest"),
                                 "checks": {"type": "object", "additionalProperties": _ref("ParameterCheck")}}),
        "RequestList": _obj({"session_id": STR, "requests": {"type": "array", "items": _ref("ControlRequest")}}),
        "TimelinePoint": point,
        "Timeline": _obj({"session_id": STR, "run_id": _nullable("integer"), "step": _nullable("string"),
                          "bin_s": NUM, "points": {"type": "array", "items": _ref("TimelinePoint")}}),
        "FailureLine": failure,
        "FailureList": _obj({"session_id": STR, "run_id": _nullable("integer"),
                             "failures": {"type": "array", "items": _ref("FailureLine")}}),
    }


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


_ERRORS = {
    "400": _json("Error", "invalid name or parameter (nothing was recorded)"),
    "401": _json("Error", "no token, or an invalid, expired or revoked one"),
    "403": _json("Error", "the token acts for another user (or a login without its CSRF token)"),
    "404": _json("Error", "no such project, or no such session visible to the user"),
    "429": _json("Error", "too many failed authentications from this address (see Retry-After)"),
}
_PATH = [
    {"name": "project_id", "in": "path", "required": True, "schema": INT,
     "description": "the Leginon project id (projects.DEF_id)"},
    {"name": "user", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,149}$"},
     "description": "the Leginon user name (UserData.username)"},
]
_SESSION = {"name": "session", "in": "path", "required": True,
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$"},
            "description": "the session name (SessionData.name)"}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


_START = [
    _query("preset", STR, "raw preset (default: the session's raw preset, guessed from its exposures)"),
    _query("steps", STR, "comma list of motioncorrection, ctfestimation (default both)"),
    _query("engine", {"enum": list(ENGINES)}, "motion-correction engine"),
    _query("ctf_engine", {"enum": list(CTF_ENGINES)}, "CTF engine"),
    _query("runname", STR, "run name (default ddstack_semc); the run directory is the supervisor's choice"),
    _query("bin", NUM, "Fourier binning of the sums (1-8)"),
    _query("superresolution", BOOL, "super-resolution movies: bin the sums by 2 (unless bin is given)"),
    _query("apix", NUM, "pixel size (Å/px): checked against the database (3%)"),
    _query("fmdose", NUM, "dose (e/Å²) per frame, or per exposure when ≥ 2: checked against the database (10%)"),
    _query("kev", NUM, "voltage (kV): checked against the database (1 kV)"),
]


def _get(summary: str, schema: str, params: list, description: str = "") -> dict[str, Any]:
    return {"get": {"summary": summary, "description": description, "parameters": params,
                    "responses": {"200": _json(schema, summary), **_ERRORS}}}


def _post(summary: str, params: list, description: str) -> dict[str, Any]:
    return {"post": {"summary": summary, "description": description, "parameters": params, "responses": {
        "202": _json("ControlAccepted", "recorded; `semc supervise` carries it out"),
        **_ERRORS, "409": _json("Error", "conflicts with the session's state, or parameters disagree with "
                                         "the database (see checks)")}}}


def _paths() -> dict[str, Any]:
    base, session = "/api/{project_id}/{user}", "/api/{project_id}/{user}/session/{session}"
    with_session = [*_PATH, _SESSION]
    return {
        f"{base}/sessions": _get("The user's sessions in the project, with state and counts", "SessionList",
                                 _PATH),
        session: _get("A session's status", "SessionStatus", [*with_session, _query(
            "window_s", NUM, "window of the live figures, seconds (default 600)")]),
        f"{session}/start-processing": _post("Start processing the session", [*with_session, *_START],
                                             "Recorded as a control request; refused while a loop runs."),
        f"{session}/stop-processing": _post("Stop processing the session", with_session,
                                            "The loop stops submitting and finishes its work in flight."),
        f"{session}/resume-processing": _post(
            "Resume processing the session", [*with_session, *_START],
            "Continues the last run with its parameters (given ones override); done exposures are not redone."),
        f"{session}/requests": _get("The session's latest control requests", "RequestList", with_session),
        f"{session}/timeline": _get("Arrivals, results, backlog and latency over time", "Timeline", [
            *with_session, _query("step", STR, "step (default the run's last)"),
            _query("bin_s", NUM, "bin width, seconds (default 60)")]),
        f"{session}/failures": _get("Failed and quarantined exposures, newest first", "FailureList", [
            *with_session, _query("limit", INT, "at most this many (default 100)")]),
    }


@cache
def _document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "SEMC status and control API", "version": __version__,
                 "description": "Session status and processing control, compatible with the USC CryoEM "
                                "service's endpoints. Control requests are recorded and carried out by "
                                "`semc supervise`."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"accessTokenHeader": []}, {"accessTokenQuery": []}],
        "paths": _paths(),
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "Authorization: Bearer <token> (or Token <token>); `semc token create`"},
                "accessTokenHeader": {"type": "apiKey", "in": "header", "name": "access_token"},
                "accessTokenQuery": {"type": "apiKey", "in": "query", "name": "access_token",
                                     "description": "for compatibility; ends up in access logs, prefer the header"},
            },
        },
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI description (a fresh copy: callers may change it)."""
    return copy.deepcopy(_document())
