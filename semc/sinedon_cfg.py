"""Reading ``sinedon.cfg``, the database configuration file of Leginon/Appion.

The file is INI: ``[global]`` holds ``host``, ``user``, ``passwd`` (and
optionally ``port`` and ``engine``); ``[leginondata]``, ``[projectdata]`` and
``[appiondata]`` hold ``db`` and may override any global key. Values use
``key: value`` or ``key = value`` (appion-compat §1.2).

Lookup (both classic and SEMC-sinedon rules are honoured): every existing file
among ``/etc/myami/sinedon.cfg``, ``~/sinedon.cfg`` and
``$SINEDON_CFG_PATH/sinedon.cfg`` is read, later files overriding earlier
ones, as classic sinedon did; ``SINEDON_CFG_PATH`` names a *directory*, and
naming one without a ``sinedon.cfg`` in it is an error.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass, field
from pathlib import Path

from semc.base.errors import ConfigurationError

__all__ = ["SinedonDatabase", "SinedonConfig", "sinedon_cfg_paths", "sinedon_cfg_read", "sinedon_cfg_parse"]

SECTIONS = {"leginon": "leginondata", "projects": "projectdata", "appion": "appiondata"}
DEFAULT_PORT = 3306


@dataclass(frozen=True, slots=True)
class SinedonDatabase:
    """Connection settings of one logical database, with where each value came from."""

    name: str
    host: str
    user: str
    password: str = field(repr=False)
    port: int = DEFAULT_PORT
    source: str = ""


@dataclass(frozen=True, slots=True)
class SinedonConfig:
    """The databases a ``sinedon.cfg`` names. ``appion`` is None when its ``db`` is empty."""

    leginon: SinedonDatabase | None
    projects: SinedonDatabase | None
    appion: SinedonDatabase | None
    files: tuple[str, ...]


def sinedon_cfg_paths(environ: dict[str, str] | None = None) -> list[Path]:
    """Existing ``sinedon.cfg`` files, lowest priority first.

    Raises
    ------
    ConfigurationError
        If ``SINEDON_CFG_PATH`` is set but holds no ``sinedon.cfg``.
    """
    env = os.environ if environ is None else environ
    candidates = [Path("/etc/myami/sinedon.cfg")]
    home = env.get("HOME")
    if home:
        candidates.append(Path(home) / "sinedon.cfg")
    explicit = env.get("SINEDON_CFG_PATH")
    if explicit:
        path = Path(explicit) / "sinedon.cfg"
        if not path.is_file():
            raise ConfigurationError(
                f"SINEDON_CFG_PATH names {explicit!r}, which holds no sinedon.cfg",
                key="SINEDON_CFG_PATH",
                source="environment",
                path=str(path),
            )
        candidates.append(path)
    return [p for p in candidates if p.is_file()]


def sinedon_cfg_parse(texts: list[tuple[str, str]]) -> SinedonConfig:
    """Parse and merge ``sinedon.cfg`` texts given as ``(source name, text)``, lowest priority first."""
    parser = configparser.ConfigParser(interpolation=None)
    origin: dict[tuple[str, str], str] = {}
    for source, text in texts:
        single = configparser.ConfigParser(interpolation=None, strict=False)  # classic files repeat sections
        try:
            single.read_string(text, source=source)
        except configparser.Error as exc:
            raise ConfigurationError(f"cannot parse sinedon.cfg: {exc}", source=source) from None
        for section in single.sections():
            if not parser.has_section(section):
                parser.add_section(section)
            for key, value in single.items(section, raw=True):
                parser.set(section, key, value)
                origin[(section, key)] = source
    databases = {
        alias: _database_from_section(parser, origin, section) for alias, section in SECTIONS.items()
    }
    return SinedonConfig(files=tuple(s for s, _ in texts), **databases)


def sinedon_cfg_read(environ: dict[str, str] | None = None) -> SinedonConfig | None:
    """Find, read and merge the ``sinedon.cfg`` files; None when there is none."""
    paths = sinedon_cfg_paths(environ)
    if not paths:
        return None
    texts = []
    for path in paths:
        try:
            texts.append((str(path), path.read_text()))
        except OSError as exc:
            raise ConfigurationError(f"cannot read sinedon.cfg: {exc}", path=str(path)) from None
    return sinedon_cfg_parse(texts)


def _lookup(parser: configparser.ConfigParser, section: str, key: str) -> str | None:
    for sec in (section, "global"):
        if parser.has_section(sec) and parser.has_option(sec, key):
            return parser.get(sec, key, raw=True).strip()
    return None


def _database_from_section(
    parser: configparser.ConfigParser, origin: dict[tuple[str, str], str], section: str
) -> SinedonDatabase | None:
    name = _lookup(parser, section, "db")
    if not name:
        return None
    source = origin.get((section, "db"), "")
    host = _lookup(parser, section, "host")
    user = _lookup(parser, section, "user")
    if not host or not user:
        missing = "host" if not host else "user"
        raise ConfigurationError(
            f"sinedon.cfg section [{section}] names db {name!r} but no {missing} "
            f"(neither in [{section}] nor in [global])",
            key=f"{section}.{missing}",
            source=source,
        )
    port_text = _lookup(parser, section, "port") or str(DEFAULT_PORT)
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigurationError(
            f"sinedon.cfg port must be an integer, got {port_text!r}",
            key=f"{section}.port",
            source=source,
        ) from None
    if not 0 < port < 65536:
        raise ConfigurationError(
            f"sinedon.cfg port out of range: {port}", key=f"{section}.port", source=source
        )
    return SinedonDatabase(
        name=name,
        host=host,
        user=user,
        password=_lookup(parser, section, "passwd") or "",
        port=port,
        source=source,
    )
