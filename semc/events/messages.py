"""SEMC's messages: typed, versioned, JSON with a schema.

Every message is an :class:`Envelope` (the same fields for every type) around one payload dataclass.
The JSON Schema (draft 2020-12) is generated from these dataclasses by :func:`json_schema` and kept in
``semc/events/schema/semc-events-v1.json`` (a test checks the two agree). Versioning: ``version`` is the
schema's major version; a consumer must ignore fields it does not know (new optional fields keep the
version), and a change that removes or retypes a field raises it.

Envelope::

    {"id": "<uuid>", "type": "semc.session.verdict", "version": 1, "time": "2026-11-23T12:00:00Z",
     "seq": 17, "run": {...RunRef...}, "payload": {...}}

``id`` is unique per message (consumers de-duplicate on it: delivery is at least once); ``seq`` counts
the messages of one run from 1 without gaps, in the order they were committed (consumers can see a gap
or a reordering); ``run`` says which run, session and host sent it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import types
import typing
import uuid
from dataclasses import dataclass, field
from typing import Any

from semc.events.qc import Finding

__all__ = [
    "PAYLOADS",
    "SCHEMA_VERSION",
    "CtfStored",
    "Envelope",
    "ExposureFailed",
    "ExposureVerdictMessage",
    "MotionCorrectionStored",
    "RunProgress",
    "RunRef",
    "RunState",
    "SessionVerdictMessage",
    "envelope_from_json",
    "json_schema",
    "message_id_for",
    "payload_type",
]

SCHEMA_VERSION = 1
_NAMESPACE = uuid.UUID("6c1d3e0a-5e3c-4f0e-9a51-2f6a8f1c0b11")  # SEMC's namespace for uuid5 message ids


def message_id_for(*parts: object) -> str:
    """A message id derived from a natural key (the same result stored twice gets the same id)."""
    return str(uuid.uuid5(_NAMESPACE, "|".join(str(p) for p in parts)))


@dataclass(frozen=True, slots=True)
class RunRef:
    """Which run sent the message."""

    run_id: int
    run_name: str
    rundir: str
    session_id: int
    session_name: str
    preset: str
    host: str


@dataclass(frozen=True, slots=True)
class MotionCorrectionStored:
    """An exposure's motion correction was stored (classic rows committed). Drift in Å and pixels;
    ``attempts``: failed attempts before this one; ``latency_s``: from the exposure row to stored."""

    TYPE: typing.ClassVar[str] = "semc.exposure.motioncorrection.stored"
    exposure_id: int
    filename: str
    aligned_id: int | None
    aligned_filename: str | None
    drift_total_px: float | None
    drift_total_A: float | None
    drift_early_A: float | None
    drift_late_A: float | None
    pixel_size_A: float | None
    latency_s: float | None
    attempts: int
    reconciled: bool = False


@dataclass(frozen=True, slots=True)
class CtfStored:
    """An exposure's CTF estimate was stored. Defocus underfocus-positive in Å; angle in degrees;
    ``attempts``: failed attempts before this one."""

    TYPE: typing.ClassVar[str] = "semc.exposure.ctfestimation.stored"
    exposure_id: int
    filename: str
    image_id: int | None
    defocus_u_A: float | None
    defocus_v_A: float | None
    astigmatism_A: float | None
    angle_deg: float | None
    phase_shift_rad: float | None
    resolution_A: float | None
    cc: float | None
    latency_s: float | None
    attempts: int
    reconciled: bool = False


@dataclass(frozen=True, slots=True)
class ExposureFailed:
    """A processing attempt failed (``failed``: it will be retried; ``quarantined``: needs a person)."""

    TYPE: typing.ClassVar[str] = "semc.exposure.failed"
    exposure_id: int
    filename: str
    step: str
    state: str
    attempts: int
    error_kind: str
    error: str


@dataclass(frozen=True, slots=True)
class RunState:
    """The run started, stopped cleanly or failed."""

    TYPE: typing.ClassVar[str] = "semc.run.state"
    state: str  # started | stopped | failed
    steps: list[str]
    pid: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RunProgress:
    """Backlog and latency of one step (sent at most every ``events.progress_interval_s``)."""

    TYPE: typing.ClassVar[str] = "semc.run.progress"
    step: str
    counts: dict[str, int]
    backlog: int
    throughput_per_min: float
    latency_p50_s: float | None
    latency_p95_s: float | None
    latency_max_s: float | None
    catch_up_s: float | None


@dataclass(frozen=True, slots=True)
class ExposureVerdictMessage:
    """Keep or reject of one exposure by QC; ``assessed``: written as a classic ApAssessmentData row."""

    TYPE: typing.ClassVar[str] = "semc.exposure.verdict"
    exposure_id: int
    filename: str
    keep: bool
    findings: list[Finding]
    metrics: dict[str, float | None]
    assessed: bool


@dataclass(frozen=True, slots=True)
class SessionVerdictMessage:
    """The session's verdict for acquisition: GOOD, STOP_AT_END or STOP_NOW, with the reason.

    Sent when the verdict (or the set of rules behind it) changes. ``exposure_id`` is the exposure whose
    result made it; ``previous`` the verdict before (null for the first).
    """

    TYPE: typing.ClassVar[str] = "semc.session.verdict"
    verdict: str  # GOOD | STOP_AT_END | STOP_NOW
    previous: str | None
    reason: str
    findings: list[Finding]
    exposures_seen: int
    exposure_id: int | None


PAYLOADS: tuple[type, ...] = (MotionCorrectionStored, CtfStored, ExposureFailed, RunState, RunProgress,
                              ExposureVerdictMessage, SessionVerdictMessage)
_BY_TYPE = {p.TYPE: p for p in PAYLOADS}


def payload_type(name: str) -> type:
    try:
        return _BY_TYPE[name]
    except KeyError:
        raise ValueError(f"unknown SEMC message type {name!r} (known: {', '.join(_BY_TYPE)})") from None


@dataclass(frozen=True, slots=True)
class Envelope:
    id: str
    type: str
    version: int
    time: str
    seq: int
    run: RunRef
    payload: Any = field(default=None)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), separators=(",", ":"), sort_keys=True, allow_nan=False)

    @staticmethod
    def now_iso() -> str:
        return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def envelope_from_json(text: str | bytes) -> Envelope:
    """Parse a message back into its dataclasses (unknown fields are ignored, as the versioning asks).

    Raises
    ------
    ValueError
        Not JSON, not an SEMC envelope, an unknown type, a newer major version or a missing field.
    """
    data = json.loads(text)
    if not isinstance(data, dict) or not {"id", "type", "version", "seq", "run", "payload"} <= set(data):
        raise ValueError("not an SEMC message envelope")
    if data["version"] > SCHEMA_VERSION:
        raise ValueError(f"message version {data['version']} is newer than this reader's {SCHEMA_VERSION}")
    kind = payload_type(data["type"])
    return Envelope(id=data["id"], type=data["type"], version=data["version"], time=data.get("time", ""),
                    seq=data["seq"], run=_build(RunRef, data["run"]), payload=_build(kind, data["payload"]))


def _build(cls: type, data: dict[str, Any]) -> Any:
    values = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        if f.name == "findings":
            value = [_build(Finding, v) for v in value]
        values[f.name] = value
    try:
        return cls(**values)
    except TypeError as exc:  # a required field is missing
        raise ValueError(f"{cls.__name__}: {exc}") from None


# --- JSON Schema ------------------------------------------------------------------------------------------
def _type_schema(annotation: Any) -> dict[str, Any]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [_type_schema(a) for a in typing.get_args(annotation)]
        return {"anyOf": options}
    if annotation is type(None):
        return {"type": "null"}
    if annotation is bool:
        return {"type": "boolean"}
    if annotation is int:
        return {"type": "integer"}
    if annotation is float:
        return {"type": "number"}
    if annotation is str:
        return {"type": "string"}
    if origin is list:
        (item,) = typing.get_args(annotation)
        return {"type": "array", "items": _type_schema(item)}
    if origin is dict:
        _, value = typing.get_args(annotation)
        return {"type": "object", "additionalProperties": _type_schema(value)}
    if dataclasses.is_dataclass(annotation):
        return {"$ref": f"#/$defs/{annotation.__name__}"}
    raise TypeError(f"no JSON schema for {annotation!r}")


def _object_schema(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    props, required = {}, []
    for f in dataclasses.fields(cls):
        props[f.name] = _type_schema(hints[f.name])
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(f.name)
    schema = {"type": "object", "description": " ".join((cls.__doc__ or "").split()), "properties": props,
              "required": required}
    return schema


def json_schema() -> dict[str, Any]:
    """The JSON Schema of every SEMC message (envelope + payload by type)."""
    defs = {c.__name__: _object_schema(c) for c in (RunRef, Finding, *PAYLOADS)}
    envelope = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "type": {"enum": [p.TYPE for p in PAYLOADS]},
            "version": {"const": SCHEMA_VERSION},
            "time": {"type": "string", "format": "date-time"},
            "seq": {"type": "integer", "minimum": 1},
            "run": {"$ref": "#/$defs/RunRef"},
            "payload": {"type": "object"},
        },
        "required": ["id", "type", "version", "time", "seq", "run", "payload"],
        "allOf": [{"if": {"properties": {"type": {"const": p.TYPE}}},
                   "then": {"properties": {"payload": {"$ref": f"#/$defs/{p.__name__}"}}}} for p in PAYLOADS],
    }
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://semc.invalid/schema/semc-events-v{SCHEMA_VERSION}.json",
            "title": f"SEMC event message, version {SCHEMA_VERSION}", **envelope, "$defs": defs}
