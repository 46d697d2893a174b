"""Services behind the API: resolve a session from (project, user, name) through the database, and record
control requests. Nothing here starts work: ``semc supervise`` carries the requests out."""

from __future__ import annotations

import logging
from typing import Any

from semc.base.errors import InputMissing, ProcessingError
from semc.web import stats
from semc.web.api.params import NAME_RE, StartParameters, parameters_from_dict
from semc.web.models import ControlRequest, SupervisedSession

__all__ = [
    "control_request_record",
    "preset_check",
    "request_as_dict",
    "resume_parameters",
    "session_resolve",
    "session_values_for_checks",
    "start_conflict",
]

logger = logging.getLogger(__name__)


def session_resolve(*, project_id: int, username: str | None, session_name: str):
    """The session named ``session_name`` in the project, visible to ``username`` (None: any user); None when
    there is no such session or it is not visible. The name is checked by pattern first and only ever used
    in a database query."""
    from semc import models as m

    if not NAME_RE.match(session_name):
        return None
    candidates = list(m.SessionData.objects.filter(name=session_name).exclude(hidden=True)
                      .order_by("-id").values_list("id", flat=True))
    for session_id in candidates:
        if stats.session_visible(project_id=project_id, session_id=session_id, username=username):
            return m.SessionData.objects.select_related("user").get(pk=session_id)
    return None


def session_values_for_checks(session_id: int, preset: str | None) -> dict[str, float | None]:
    """Pixel size (Å), voltage (kV) and dose (e/Å², per frame and per exposure) of the newest exposure of the
    preset, from the database; None values when the session has no exposure yet."""
    from semc import models as m
    from semc.base.retrieve import exposure_inputs_get

    query = m.AcquisitionImageData.objects.filter(session_id=session_id)
    preset = preset or stats.raw_preset_guess(session_id)
    query = query.filter(preset__isnull=True) if preset == "manual" else query.filter(preset__name=preset)
    newest = query.order_by("-id").values_list("id", flat=True).first()
    empty = {"pixel_size_angstrom": None, "voltage_kv": None, "dose_per_frame": None, "total_dose": None}
    if newest is None:
        return empty
    try:
        inputs = exposure_inputs_get(newest)
    except ProcessingError as exc:  # rows incomplete: nothing to check against, say so in the log
        logger.warning("exposure=%s cannot be read for the parameter checks: %s", newest, exc)
        return empty
    return {"pixel_size_angstrom": inputs.pixel_size_angstrom, "voltage_kv": inputs.voltage_kv,
            "dose_per_frame": inputs.dose_per_frame_e_per_a2, "total_dose": inputs.total_dose_e_per_a2}


def preset_check(session_id: int, preset: str | None) -> None:
    """A named preset must exist in the session (``manual``: images without a preset)."""
    from semc import models as m

    if preset is None or preset == "manual":
        return
    if not m.PresetData.objects.filter(session_id=session_id, name=preset).exists():
        raise InputMissing(f"the session has no preset {preset!r}")


def start_conflict(session_id: int) -> str | None:
    """Why a start cannot be recorded now (a loop runs or is starting), or None."""
    status = stats.session_status(session_id, detail=False)
    if status.state in ("processing", "processing_start", "stopping"):
        return f"the session is {status.state.replace('_', ' ')}: stop it first"
    return None


def resume_parameters(session_id: int, given: dict[str, Any]) -> StartParameters:
    """Parameters of a resume: the last start's (or the current run's), with any given ones on top."""
    supervised = SupervisedSession.objects.filter(session_id=session_id).first()
    base: dict[str, Any] = dict(supervised.parameters) if supervised and supervised.parameters else {}
    if not base:
        run = stats.run_current(session_id)
        if run is None:
            raise InputMissing("nothing to resume: the session was never processed (start it instead)")
        base = {"preset": run.preset or None, "steps": list(run.steps), "runname": run.name,
                "engine": (run.engines or {}).get("motioncorrection", "builtin"),
                "ctf_engine": (run.engines or {}).get("ctfestimation", "builtin")}
    return parameters_from_dict({**base, **given})


def control_request_record(*, action: str, session, project_id: int, requested_by: str,
                           parameters: StartParameters | None = None) -> ControlRequest:
    request = ControlRequest.objects.create(
        action=action, project_id=project_id, session_id=session.pk, session_name=session.name,
        requested_by=requested_by, parameters=parameters.as_dict() if parameters is not None else {})
    logger.info("control request %s: %s %s by %s", request.pk, action, session.name, requested_by)
    return request


def request_as_dict(request: ControlRequest) -> dict[str, Any]:
    return {"id": request.pk, "action": request.action, "state": request.state,
            "created_at": request.created_at.isoformat(timespec="seconds"),
            "handled_at": request.handled_at.isoformat(timespec="seconds") if request.handled_at else None,
            "requested_by": request.requested_by, "parameters": request.parameters, "message": request.message}
