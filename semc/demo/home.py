"""The demo's SEMC home: pinned to the embedded defaults (standalone, SQLite), whatever the environment says."""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

from semc.base.errors import ConfigurationError

__all__ = ["environment_prepare"]

#: variables that would point the demo (and its children) at another configuration or database
_OVERRIDES = ("SEMC_CONFIG", "SEMC_MODE", "SEMC_DB_BACKEND", "SEMC_DB_HOST", "SEMC_DB_PORT", "SEMC_DB_USER",
              "SEMC_DB_PASSWORD", "SEMC_DB_SEMC", "SEMC_DB_LEGINON", "SEMC_DB_PROJECTS", "SEMC_DB_APPION")
_TOML = """# Written by `semc demo`: this SEMC home runs on the embedded defaults (standalone, SQLite).
mode = "standalone"

[database]
backend = "sqlite"
"""


def environment_prepare(home: Path) -> list[str]:
    """Point this process (and its children) at ``home`` on the embedded defaults.

    Writes ``home/semc.toml`` (standalone, SQLite) when the home has none, so that ``SEMC_HOME=home
    semc web`` later finds the same databases; removes the variables that would override it and
    returns their names. Must run before Django is set up.

    Raises
    ------
    ConfigurationError
        If Django is already set up for another home, or the home's own ``semc.toml`` is not standalone
        SQLite (the demo never writes into a facility's databases).
    """
    from semc.config import config_load

    home = home.resolve()
    if "django.conf" in sys.modules:
        from django.conf import settings

        if settings.configured and Path(settings.SEMC_HOME).resolve() != home:
            raise ConfigurationError("semc demo must run in its own process (Django is already set up for "
                                     f"{settings.SEMC_HOME})", key="SEMC_HOME")
    home.mkdir(parents=True, exist_ok=True)
    toml = home / "semc.toml"
    if not toml.exists():
        toml.write_text(_TOML)
    try:
        table = tomllib.loads(toml.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read the home's config file: {exc}", source=str(toml)) from None
    mode, backend = table.get("mode", "standalone"), table.get("database", {}).get("backend", "sqlite")
    if (mode, backend) != ("standalone", "sqlite"):
        raise ConfigurationError(f"the demo runs standalone on SQLite; {toml} says mode={mode} backend={backend}: "
                                 "choose a fresh --home", key="mode", source=str(toml))
    overridden = [name for name in _OVERRIDES if os.environ.pop(name, None) not in (None, "")]
    os.environ["SEMC_HOME"] = str(home)
    config_load()  # the rest of the home's configuration must be valid too
    return overridden
