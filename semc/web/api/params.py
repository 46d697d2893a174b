"""Processing parameters of start/resume requests: parsed from a query string, typed, checked.

The USC CryoEM service's parameters (``apix``, ``fmdose``, ``kev``, ``superresolution``) are accepted.
SEMC reads pixel size, dose and voltage from the Leginon database, so ``apix``, ``fmdose`` and ``kev`` are
*checks*: a request whose values disagree with the session's rows is refused (409), naming both values.
``superresolution=true`` bins the output sums by 2 (``--bin 2``), as the USC workflow does.
SEMC's own parameters: ``preset``, ``steps``, ``engine``, ``ctf_engine``, ``runname``, ``bin``. The USC parameters about
files (``rawgainref``, ``rawdefectsmap``, ``basename_*``, ``throw``, ``trunc``, ``particle_size``) are refused
with a reason: gain, defects and file names come from the Leginon database.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

from semc.base.errors import InvalidParameters

__all__ = [
    "CTF_ENGINES",
    "DEFAULT_RUNNAME",
    "ENGINES",
    "NAME_RE",
    "PRESET_RE",
    "STEPS",
    "StartParameters",
    "parameters_check_against_session",
    "parameters_from_dict",
    "parameters_from_query",
]

#: session and run names: no path separators, no leading dot or dash, no spaces
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$")
#: preset names (Leginon allows a little more, never a slash)
PRESET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")
STEPS = ("motioncorrection", "ctfestimation")
ENGINES = ("builtin", "builtin-gpu", "motioncor2", "motioncor3")
CTF_ENGINES = ("builtin", "builtin-gpu", "ctffind4", "ctffind5", "gctf")
DEFAULT_RUNNAME = "ddstack_semc"
_NOT_SUPPORTED = {
    "rawgainref": "the gain reference comes from the Leginon database (NormImageData)",
    "rawdefectsmap": "the defects come from the Leginon database (CorrectorPlanData)",
    "basename_prefix": "exposures come from the Leginon database, not from file names",
    "basename_suffix": "exposures come from the Leginon database, not from file names",
    "basename_extension": "exposures come from the Leginon database, not from file names",
    "throw": "frames used come from the Leginon database (use frames)",
    "trunc": "frames used come from the Leginon database (use frames)",
    "particle_size": "particle picking is not a SEMC step",
}
_KNOWN = ("apix", "fmdose", "kev", "superresolution", "preset", "steps", "engine", "ctf_engine", "runname", "bin")
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
_TOLERANCE = {"apix": 0.03, "fmdose": 0.10}


@dataclass(frozen=True, slots=True)
class StartParameters:
    """What a start (or resume) asks for. ``apix`` (Å/px), ``fmdose`` (e/Å² per frame, or per exposure when
    ≥ 2, as the USC service guesses) and ``kev`` (kV) are checked against the database."""

    preset: str | None = None
    steps: tuple[str, ...] = STEPS
    engine: str = "builtin"
    ctf_engine: str = "builtin"
    runname: str = DEFAULT_RUNNAME
    bin: float = 1.0
    superresolution: bool = False
    apix: float | None = None
    fmdose: float | None = None
    kev: float | None = None

    def __post_init__(self) -> None:
        if self.preset is not None and not PRESET_RE.match(self.preset):
            raise InvalidParameters(f"invalid preset name {self.preset!r}")
        if not self.steps or any(s not in STEPS for s in self.steps) or len(set(self.steps)) != len(self.steps):
            raise InvalidParameters(f"steps must be among {', '.join(STEPS)}, got {','.join(self.steps)!r}")
        if list(self.steps) != [s for s in STEPS if s in self.steps]:
            raise InvalidParameters("motion correction must come before CTF estimation")
        if self.engine not in ENGINES:
            raise InvalidParameters(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.ctf_engine not in CTF_ENGINES:
            raise InvalidParameters(f"ctf_engine must be one of {', '.join(CTF_ENGINES)}, got {self.ctf_engine!r}")
        if not NAME_RE.match(self.runname) or self.runname in ("templates", "models"):
            raise InvalidParameters(f"invalid run name {self.runname!r}")
        if not 1.0 <= self.bin <= 8.0:
            raise InvalidParameters(f"bin must be between 1 and 8, got {self.bin}")
        for name, low, high in (("apix", 0.05, 20.0), ("fmdose", 1e-4, 1000.0), ("kev", 60.0, 400.0)):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and low <= value <= high):
                raise InvalidParameters(f"{name} must be between {low} and {high}, got {value}")

    @property
    def output_bin(self) -> float:
        """Fourier binning of the sums: ``bin``, or 2 for a super-resolution session when ``bin`` is not set."""
        return 2.0 if self.superresolution and self.bin == 1.0 else self.bin

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["steps"] = list(self.steps)
        return values


def _one(query, name: str) -> str:
    values = query.getlist(name)
    if len(values) != 1:
        raise InvalidParameters(f"parameter {name} given {len(values)} times")
    return values[0]


def _float(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidParameters(f"{name} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise InvalidParameters(f"{name} must be finite, got {text!r}")
    return value


def _bool(name: str, text: str) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise InvalidParameters(f"{name} must be true or false, got {text!r}")


def parameters_from_query(query, *, ignore: tuple[str, ...] = ("access_token",)) -> dict[str, Any]:
    """The parameters a query string sets (typed, not yet defaulted). Unknown, repeated, unsupported or
    malformed parameters raise :class:`InvalidParameters` naming the parameter."""
    values: dict[str, Any] = {}
    for name in query:
        if name in ignore:
            continue
        if name in _NOT_SUPPORTED:
            raise InvalidParameters(f"parameter {name} is not supported: {_NOT_SUPPORTED[name]}")
        if name not in _KNOWN:
            raise InvalidParameters(f"unknown parameter {name!r} (known: {', '.join(_KNOWN)})")
        text = _one(query, name).strip()
        if name in ("apix", "fmdose", "kev", "bin"):
            values[name] = _float(name, text)
        elif name == "superresolution":
            values[name] = _bool(name, text)
        elif name == "steps":
            values[name] = tuple(s.strip() for s in text.split(",") if s.strip())
        else:
            values[name] = text
    return values


def parameters_from_dict(values: dict[str, Any]) -> StartParameters:
    """Typed parameters from a (stored) dict; unknown keys are refused."""
    unknown = sorted(set(values) - set(StartParameters.__dataclass_fields__))
    if unknown:
        raise InvalidParameters(f"unknown parameters {unknown}")
    values = dict(values)
    if "steps" in values:
        values["steps"] = tuple(values["steps"])
    return StartParameters(**values)


def parameters_check_against_session(params: StartParameters, *, pixel_size_angstrom: float | None,
                                     voltage_kv: float | None, dose_per_frame: float | None,
                                     total_dose: float | None) -> dict[str, dict[str, Any]]:
    """Compare the checked parameters with the database's values; returns name -> {given, database, ok}.
    A value without a database counterpart (no exposure yet) is reported with ``database: None, ok: None``."""
    checks: dict[str, dict[str, Any]] = {}
    if params.apix is not None:
        checks["apix"] = _check(params.apix, pixel_size_angstrom, rel=_TOLERANCE["apix"])
    if params.kev is not None:
        checks["kev"] = _check(params.kev, voltage_kv, absolute=1.0)
    if params.fmdose is not None:
        reference = dose_per_frame if params.fmdose < 2 else total_dose
        checks["fmdose"] = _check(params.fmdose, reference, rel=_TOLERANCE["fmdose"])
    return checks


def _check(given: float, database: float | None, *, rel: float = 0.0, absolute: float = 0.0) -> dict[str, Any]:
    if database is None:
        return {"given": given, "database": None, "ok": None}
    ok = abs(given - database) <= max(absolute, rel * abs(database))
    return {"given": given, "database": round(database, 6), "ok": ok}
