"""SEMC's configuration: typed values from three layers, checked at start-up.

Precedence, highest first:

1. environment variables ``SEMC_*`` (listed per key in :data:`SETTINGS`);
2. the config file ``semc.toml`` — ``$SEMC_CONFIG`` if set (empty or ``none``: no file), else
   ``$SEMC_HOME/semc.toml``, else ``/etc/semc/semc.toml``;
3. ``sinedon.cfg`` (only the Leginon and project database connections, in
   attached mode; see :mod:`semc.sinedon_cfg`);
4. built-in defaults.

A bad value (wrong type, unknown choice, unknown key in ``semc.toml``) raises
:class:`~semc.base.errors.ConfigurationError` naming the key and where it was
read. ``semc config`` prints the effective configuration with its sources and
with secrets masked.

Cluster settings (queue, walltime, memory, GPUs) are not here: they live in
Dask's own configuration under the ``semc`` namespace (style convention 13).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semc.base.errors import ConfigurationError
from semc.sinedon_cfg import SinedonConfig, sinedon_cfg_read

__all__ = ["Setting", "SETTINGS", "Config", "config_load", "config_lines", "default_home"]


@dataclass(frozen=True, slots=True)
class Setting:
    """One configuration key: dotted name, environment variable, type, default, and whether it is secret."""

    key: str
    env: str
    kind: str  # str | int | bool | path | list | choice:<a>|<b>
    default: Any
    help: str
    secret: bool = False


def default_home(environ: dict[str, str] | None = None) -> Path:
    """The per-user data folder: ``$XDG_DATA_HOME/semc`` or ``~/.local/share/semc``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".local" / "share")
    return Path(base) / "semc"


SETTINGS: tuple[Setting, ...] = (
    Setting("home", "SEMC_HOME", "path", None, "data directory (SQLite files, secret key, run output)"),
    Setting("mode", "SEMC_MODE", "choice:standalone|attached", "standalone",
            "standalone: SEMC owns the classic tables (created by `semc init`); "
            "attached: a facility's Leginon/Appion databases, never altered"),
    Setting("secret_key", "SEMC_SECRET_KEY", "str", None,
            "Django secret key; if unset, one is generated once into $SEMC_HOME/secret_key", secret=True),
    Setting("debug", "SEMC_DEBUG", "bool", False, "Django DEBUG (never on in production)"),
    Setting("allowed_hosts", "SEMC_ALLOWED_HOSTS", "list", ["localhost", "127.0.0.1", "[::1]"],
            "host names the web server answers to"),
    Setting("database.backend", "SEMC_DB_BACKEND", "choice:sqlite|mysql", "sqlite",
            "engine of SEMC's own databases (and of the classic ones in standalone mode)"),
    Setting("database.host", "SEMC_DB_HOST", "str", "127.0.0.1", "MySQL/MariaDB host"),
    Setting("database.port", "SEMC_DB_PORT", "int", 3306, "MySQL/MariaDB port"),
    Setting("database.user", "SEMC_DB_USER", "str", "root", "MySQL/MariaDB user"),
    Setting("database.password", "SEMC_DB_PASSWORD", "str", "", "MySQL/MariaDB password", secret=True),
    Setting("database.semc", "SEMC_DB_SEMC", "str", "semc", "name of SEMC's state database"),
    Setting("database.leginon", "SEMC_DB_LEGINON", "str", "leginondb",
            "name of the Leginon database (attached mode: sinedon.cfg [leginondata] db)"),
    Setting("database.projects", "SEMC_DB_PROJECTS", "str", "projectdb",
            "name of the project database (attached mode: sinedon.cfg [projectdata] db)"),
    Setting("database.appion", "SEMC_DB_APPION", "str", "ap1",
            "default Appion database; per project it is resolved through processingdb.appiondb"),
    Setting("log_level", "SEMC_LOG_LEVEL", "choice:DEBUG|INFO|WARNING|ERROR", "INFO", "log level"),
    # external engines (semc/base/engines.py): executable (a name on PATH or a path); unset: the usual name
    Setting("engines.motioncor2_exe", "SEMC_MOTIONCOR2_EXE", "str", None,
            "MotionCor2 executable (default: motioncor2 on PATH)"),
    Setting("engines.motioncor3_exe", "SEMC_MOTIONCOR3_EXE", "str", None,
            "MotionCor3 executable (default: MotionCor3 on PATH)"),
    Setting("engines.ctffind4_exe", "SEMC_CTFFIND4_EXE", "str", None,
            "CTFFIND 4.1 executable (default: ctffind on PATH)"),
    Setting("engines.ctffind5_exe", "SEMC_CTFFIND5_EXE", "str", None,
            "CTFFIND 5 executable (default: ctffind on PATH)"),
    Setting("engines.gctf_exe", "SEMC_GCTF_EXE", "str", None,
            "Gctf executable (default: Gctf on PATH)"),
    Setting("engines.timeout_s", "SEMC_EXTERNAL_TIMEOUT_S", "int", 600,
            "seconds an external program may run on one exposure before its process group is killed"),
    Setting("engines.version_timeout_s", "SEMC_VERSION_TIMEOUT_S", "int", 60,
            "seconds an external program's version probe may take (once per worker)"),
    # result events and quality control (semc/events/; README "Events and quality control")
    Setting("events.broker_url", "SEMC_EVENTS_BROKER_URL", "str", None,
            "message broker: amqp[s]://user:password@host:port/vhost or stomp[+ssl]://user:password@host:port/vhost;"
            " unset: no messages are written or published", secret=True),
    Setting("events.exchange", "SEMC_EVENTS_EXCHANGE", "str", "semc.events", "AMQP topic exchange (durable)"),
    Setting("events.topic_prefix", "SEMC_EVENTS_TOPIC_PREFIX", "str", "semc",
            "first word of every routing key: <prefix>.<type words>.<session>"),
    Setting("events.stomp_destination", "SEMC_EVENTS_STOMP_DESTINATION", "str", "/topic/{routing_key}",
            "STOMP destination template ({routing_key}, {exchange})"),
    Setting("events.publisher", "SEMC_EVENTS_PUBLISHER", "choice:thread|external", "thread",
            "thread: the daemon publishes from a background thread; external: `semc events publish` does"),
    Setting("events.progress_interval_s", "SEMC_EVENTS_PROGRESS_INTERVAL_S", "int", 30,
            "seconds between backlog/latency messages of a run"),
    Setting("events.retention_days", "SEMC_EVENTS_RETENTION_DAYS", "int", 7,
            "published messages are deleted from the outbox after this many days"),
    Setting("qc.enabled", "SEMC_QC", "bool", True, "quality control of each run's results"),
    Setting("qc.rules", "SEMC_QC_RULES", "path", None, "TOML file of QC rules (default: the built-in rules)"),
    Setting("qc.assess", "SEMC_QC_ASSESS", "bool", False,
            "write QC keep/reject as classic ApAssessmentData rows (never over an existing assessment); "
            "off by default: classic Appion never hid an image by itself"),
    Setting("qc.notify_email", "SEMC_QC_NOTIFY_EMAIL", "list", [],
            "addresses e-mailed on a session verdict (Django's EMAIL_* settings)"),
    Setting("qc.webhook_url", "SEMC_QC_WEBHOOK_URL", "str", None,
            "URL POSTed the session verdict message as JSON", secret=True),
    Setting("qc.notify_level", "SEMC_QC_NOTIFY_LEVEL", "choice:GOOD|STOP_AT_END|STOP_NOW", "STOP_AT_END",
            "least severe verdict that notifies (a recovery to GOOD notifies when a notified verdict ends)"),
)

_BY_KEY = {s.key: s for s in SETTINGS}


@dataclass(frozen=True, slots=True)
class Config:
    """The effective configuration: typed values, and for each key where it was read."""

    values: dict[str, Any]
    sources: dict[str, str]
    sinedon: SinedonConfig | None
    config_file: str | None

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    @property
    def home(self) -> Path:
        return Path(self.values["home"])

    @property
    def attached(self) -> bool:
        return self.values["mode"] == "attached"


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat


def _convert(setting: Setting, raw: Any, source: str) -> Any:
    def fail(why: str) -> ConfigurationError:
        return ConfigurationError(f"{setting.key}: {why}, got {raw!r}", key=setting.key, source=source)

    kind = setting.kind
    if kind == "str":
        if not isinstance(raw, (str, int, float)):
            raise fail("expected a string")
        return str(raw)
    if kind == "int":
        if isinstance(raw, bool):
            raise fail("expected an integer")
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise fail("expected an integer") from None
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off", ""}:
            return False
        raise fail("expected a boolean (true/false)")
    if kind == "path":
        if not isinstance(raw, str) or not raw.strip():
            raise fail("expected a path")
        return str(Path(raw).expanduser().absolute())
    if kind == "list":
        if isinstance(raw, list):
            return [str(v) for v in raw]
        return [part.strip() for part in str(raw).split(",") if part.strip()]
    if kind.startswith("choice:"):
        choices = kind.split(":", 1)[1].split("|")
        if str(raw) not in choices:
            raise fail(f"expected one of {', '.join(choices)}")
        return str(raw)
    raise AssertionError(f"unknown setting kind {kind}")


def _config_file(environ: dict[str, str]) -> Path | None:
    explicit = environ.get("SEMC_CONFIG")
    if explicit is not None and explicit.strip().lower() in ("", "none"):
        return None  # explicitly no config file
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigurationError(
                f"SEMC_CONFIG names {explicit!r}, which is not a file", key="SEMC_CONFIG", source="environment"
            )
        return path
    home = environ.get("SEMC_HOME")
    for candidate in ([Path(home).expanduser() / "semc.toml"] if home else []) + [
        default_home(environ) / "semc.toml",
        Path("/etc/semc/semc.toml"),
    ]:
        if candidate.is_file():
            return candidate
    return None


def _file_values(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        table = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read config file: {exc}", source=str(path)) from None
    flat = _flatten(table)
    unknown = sorted(set(flat) - set(_BY_KEY))
    if unknown:
        raise ConfigurationError(
            f"unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(_BY_KEY))})",
            key=unknown[0],
            source=str(path),
        )
    return flat


def config_load(environ: dict[str, str] | None = None) -> Config:
    """Read the configuration from the environment, ``semc.toml`` and ``sinedon.cfg``.

    Raises
    ------
    ConfigurationError
        For any missing or invalid value, naming the key and its source.
    """
    env = dict(os.environ if environ is None else environ)
    path = _config_file(env)
    from_file = _file_values(path)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in SETTINGS:
        if setting.env in env:
            raw, source = env[setting.env], f"environment {setting.env}"
        elif setting.key in from_file:
            raw, source = from_file[setting.key], f"file {path}"
        else:
            values[setting.key], sources[setting.key] = setting.default, "default"
            continue
        values[setting.key], sources[setting.key] = _convert(setting, raw, source), source
    if values["home"] is None:
        values["home"], sources["home"] = str(default_home(env)), "default"
    sinedon = sinedon_cfg_read(env) if values["mode"] == "attached" else None
    if values["mode"] == "attached":
        _apply_sinedon(values, sources, sinedon)
    return Config(values=values, sources=sources, sinedon=sinedon, config_file=str(path) if path else None)


def _apply_sinedon(values: dict[str, Any], sources: dict[str, str], sinedon: SinedonConfig | None) -> None:
    """In attached mode the Leginon, project (and any Appion) databases come from sinedon.cfg unless set explicitly."""
    for alias in ("leginon", "projects", "appion"):
        key = f"database.{alias}"
        if sources[key] != "default":
            continue
        db = getattr(sinedon, alias) if sinedon else None
        if db is None and alias == "appion":
            continue  # [appiondata] db is normally empty: resolved per project through processingdb
        if db is None:
            raise ConfigurationError(
                f"attached mode needs the {alias} database: set {_BY_KEY[key].env} "
                f"or a sinedon.cfg with [{'leginondata' if alias == 'leginon' else 'projectdata'}] db",
                key=key,
                source=", ".join(sinedon.files) if sinedon else "no sinedon.cfg found",
            )
        values[key], sources[key] = db.name, f"sinedon.cfg {db.source}"


def config_lines(config: Config, *, show_secrets: bool = False) -> list[str]:
    """Human-readable ``key = value   (source)`` lines, secrets masked."""
    lines = []
    for setting in SETTINGS:
        value = config.values[setting.key]
        if setting.secret and value and not show_secrets:
            value = "********"
        lines.append(f"{setting.key} = {value!r}   ({config.sources[setting.key]})")
    if config.sinedon:
        lines.append(f"# sinedon.cfg files read: {', '.join(config.sinedon.files)}")
        for alias in ("leginon", "projects", "appion"):
            db = getattr(config.sinedon, alias)
            if db:
                lines.append(f"# sinedon {alias}: db={db.name} host={db.host}:{db.port} user={db.user} passwd=********")
    return lines

