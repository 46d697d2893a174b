"""Engine choice per step: built-in or an external program, with its executable and detected version.

Names: ``builtin``, ``builtin-gpu`` (both steps); ``motioncor2``,
``motioncor3`` (motion correction); ``ctffind4``, ``ctffind5``, ``gctf`` (CTF
estimation). An external engine's executable comes from the configuration key
``engines.<name>_exe`` (environment ``SEMC_<NAME>_EXE``, e.g.
``SEMC_MOTIONCOR2_EXE=/opt/mc2/MotionCor2``, or ``semc.toml``), else the
program's usual name on PATH. Its version is detected once per process (a Dask
worker) and cached by (engine, executable path, file mtime); the version picks
the log parser. The `EngineSpec` is what the run records.

Version detection runs ``<exe> --version`` (Gctf: ``--help``, whose banner
names the version; its exit status is not trusted) through
`semc.base.external.run` and hands the output to the step's pure parser, named
here as data (``module:function``) so that ``base`` does not import the steps at
import time.
"""

from __future__ import annotations

import importlib
import os
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from semc.base.errors import ConfigurationError, ExternalProgramFailed, ProcessingError
from semc.base.external import run, which

__all__ = ["ENGINES", "EngineSpec", "engine_names", "engine_resolve", "engine_versions", "env_key_for",
           "version_cache_clear"]


@dataclass(frozen=True, slots=True)
class _EngineDef:
    step: str
    default_executable: str | None
    version_parser: str | None  # "module:function", returning an object with .version (and .program/.engine)
    version_args: tuple[str, ...] = ("--version",)


_MC = "motioncorrection"
_CTF = "ctfestimation"
_MC_PARSER = "semc.motioncorrection.calc.external_log:motioncor_version_parse"
_CTF_PARSER = "semc.ctfestimation.calc.external:ctffind_version_parse"
_GCTF_PARSER = "semc.ctfestimation.calc.external_gctf:gctf_version_parse"

#: (step, name) -> definition
ENGINES: dict[tuple[str, str], _EngineDef] = {
    (_MC, "builtin"): _EngineDef(_MC, None, None),
    (_MC, "builtin-gpu"): _EngineDef(_MC, None, None),
    (_MC, "motioncor2"): _EngineDef(_MC, "motioncor2", _MC_PARSER),
    (_MC, "motioncor3"): _EngineDef(_MC, "MotionCor3", _MC_PARSER),
    (_CTF, "builtin"): _EngineDef(_CTF, None, None),
    (_CTF, "builtin-gpu"): _EngineDef(_CTF, None, None),
    (_CTF, "ctffind4"): _EngineDef(_CTF, "ctffind", _CTF_PARSER),
    (_CTF, "ctffind5"): _EngineDef(_CTF, "ctffind", _CTF_PARSER),
    (_CTF, "gctf"): _EngineDef(_CTF, "Gctf", _GCTF_PARSER, ("--help",)),
}
#: an engine must detect a version of this family (program or engine name)
_FAMILY = {"motioncor2": "MotionCor2", "motioncor3": "MotionCor3", "ctffind4": "ctffind4", "ctffind5": "ctffind5",
           "gctf": "gctf"}
#: seconds a version probe may take when the configuration does not say (``engines.version_timeout_s``)
VERSION_TIMEOUT_S = 60.0

_cache: dict[tuple[str, str, str, float], object] = {}
_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class EngineSpec:
    """A resolved engine: what to run and how to read it.

    Attributes
    ----------
    step, name
        E.g. ``("motioncorrection", "motioncor2")``.
    external
        False for the built-in engines.
    executable
        Absolute path of the program (None for built-in engines).
    env_key
        The environment variable that configures it (None for built-in).
    version
        Detected version text (None for built-in engines, or without detection).
    detected
        The step parser's version object (e.g. a ``MotionCorVersion``), or None.
    """

    step: str
    name: str
    external: bool
    executable: str | None = None
    env_key: str | None = None
    version: str | None = None
    detected: object | None = None


def engine_names(step: str) -> tuple[str, ...]:
    """Engine names valid for ``step``."""
    return tuple(name for s, name in ENGINES if s == step)


def env_key_for(name: str) -> str:
    """``SEMC_<NAME>_EXE`` for an engine name."""
    return f"SEMC_{name.upper().replace('-', '_')}_EXE"


def config_key_for(name: str) -> str:
    """``engines.<name>_exe``: the configuration key (``semc.toml``) of an engine's executable."""
    return f"engines.{name.replace('-', '_')}_exe"


def _configuration(env: Mapping[str, str] | None):
    from semc.config import config_load

    return config_load(dict(os.environ if env is None else env))


def _configured_executable(name: str, default: str, env: Mapping[str, str] | None,
                           config=None) -> tuple[str, str]:
    """(executable as configured, where it was read): environment, then ``semc.toml``, then the default name."""
    source = os.environ if env is None else env
    key = env_key_for(name)
    if source.get(key):
        return source[key], f"environment {key}"
    config = config or _configuration(env)
    value = config.values.get(config_key_for(name))
    if value:
        return value, config.sources[config_key_for(name)]
    return default, "default (PATH)"


def version_cache_clear() -> None:
    """Forget detected versions (tests; or after replacing a program in place)."""
    with _lock:
        _cache.clear()


def _parser(dotted: str):
    module, func = dotted.split(":")
    return getattr(importlib.import_module(module), func)


def _probe_output(name: str, definition: _EngineDef, executable: str, env: Mapping[str, str] | None,
                  timeout_s: float) -> str:
    """The version probe's output; a program whose help exits non-zero (Gctf) still printed its banner."""
    log_dir = tempfile.mkdtemp(prefix="semc-version-")
    log_path = os.path.join(log_dir, f"{name}-version.log")
    try:
        done = run([executable, *definition.version_args], cwd=log_dir, timeout_s=timeout_s, log_path=log_path,
                   env=env, step=definition.step, program=name)
    except ExternalProgramFailed as exc:
        if definition.version_args == ("--version",) or exc.returncode is None:
            raise
        return Path(log_path).read_text(encoding="utf-8", errors="replace")
    return done.stdout + "\n" + done.stderr


def _detect(name: str, definition: _EngineDef, executable: str, env: Mapping[str, str] | None,
            config=None) -> object:
    key = (definition.step, name, executable, os.stat(executable).st_mtime)
    with _lock:
        if key in _cache:
            return _cache[key]
    config = config or _configuration(env)
    timeout_s = float(config.values.get("engines.version_timeout_s") or VERSION_TIMEOUT_S)
    detected = _parser(definition.version_parser)(_probe_output(name, definition, executable, env, timeout_s))
    family = getattr(detected, "program", None) or getattr(detected, "engine", None)
    if name in _FAMILY and family != _FAMILY[name]:
        raise ConfigurationError(f"engine {name} is configured with {executable}, which reports "
                                 f"{family} {getattr(detected, 'version', '?')}", key=config_key_for(name),
                                 source="environment or semc.toml", step=definition.step)
    with _lock:
        _cache[key] = detected
    return detected


def engine_resolve(step: str, name: str, *, env: Mapping[str, str] | None = None,
                   detect_version: bool = True) -> EngineSpec:
    """Resolve an engine choice for a step: executable from configuration, version detected once.

    Parameters
    ----------
    step
        ``motioncorrection`` or ``ctfestimation``.
    name
        An engine name valid for the step (see `engine_names`).
    env
        Environment to read ``SEMC_<NAME>_EXE`` and ``PATH`` from (default
        ``os.environ``); also passed to the version probe. Without the
        variable, ``engines.<name>_exe`` of ``semc.toml`` is used.
    detect_version
        Run the version probe (cached per process) and check the program family.

    Raises
    ------
    ConfigurationError
        Unknown engine for the step, executable not found, or a program of
        another family behind the name.
    UnsupportedVersion, LogParseError, ExternalProgramFailed
        From the version probe.
    """
    definition = ENGINES.get((step, name))
    if definition is None:
        raise ConfigurationError(f"unknown engine {name!r} for step {step!r}; choose one of "
                                 f"{', '.join(engine_names(step)) or '(unknown step)'}", key="engine", step=step)
    if definition.default_executable is None:
        return EngineSpec(step, name, external=False)
    source = os.environ if env is None else env
    key = env_key_for(name)
    config = None if source.get(key) else _configuration(env)
    configured, origin = _configured_executable(name, definition.default_executable, env, config)
    executable = which(configured, env=env)
    if executable is None:
        raise ConfigurationError(f"engine {name}: executable {configured!r} (from {origin}) not found (set {key} "
                                 f"or {config_key_for(name)} in semc.toml, or PATH={source.get('PATH', '')})",
                                 key=key, source=origin, step=step)
    executable = os.path.abspath(executable)
    if not detect_version or definition.version_parser is None:
        return EngineSpec(step, name, True, executable, key)
    try:
        detected = _detect(name, definition, executable, env, config)
    except ProcessingError as exc:
        raise exc.with_context(step=step) from exc
    return EngineSpec(step, name, True, executable, key, getattr(detected, "version", None), detected)


def engine_versions(engines: Mapping[str, str], *, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """What a run records per step: ``<executable> (<version>)`` for an external engine, ``<name> (semc)``
    for a built-in one. Resolves each engine once (a missing or unsupported program raises here).

    Raises
    ------
    ConfigurationError, UnsupportedVersion, LogParseError, ExternalProgramFailed
        As `engine_resolve`.
    """
    versions = {}
    for step, name in engines.items():
        spec = engine_resolve(step, name, env=env)
        versions[step] = f"{spec.executable} ({spec.version})" if spec.external else f"{name} (semc)"
    return versions
