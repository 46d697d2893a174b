"""Django DATABASES from SEMC's configuration (no model imports: settings.py uses this).

Four aliases: ``default`` (SEMC's state), ``leginon``, ``projects`` and
``appion``. SQLite files live under ``$SEMC_HOME``; MySQL/MariaDB databases
on the configured server, or, in attached mode, where ``sinedon.cfg`` says.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from semc.base.errors import InvalidParameters
from semc.config import Config

__all__ = ["LEGINON", "PROJECTS", "APPION", "DEFAULT", "databases_from_config", "database_name_check",
           "sqlite_settings", "mysql_settings"]

LEGINON, PROJECTS, APPION, DEFAULT = "leginon", "projects", "appion", "default"

_DB_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def database_name_check(name: str, *, what: str = "database name") -> str:
    """Validate a database name read from configuration or from the database itself.

    Names become SQLite file names and MySQL identifiers, so only letters,
    digits and ``_`` are accepted.
    """
    if not isinstance(name, str) or not _DB_NAME.match(name):
        raise InvalidParameters(f"invalid {what} {name!r}: use letters, digits and _ only (max 64)")
    return name


def sqlite_settings(home: Path, name: str) -> dict[str, Any]:
    database_name_check(name)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(home / f"{name}.sqlite3"),
        # IMMEDIATE: a transaction that reads then writes takes the write lock at BEGIN, so a second
        # writer (the simulator, the web, another daemon) waits for the timeout instead of failing at
        # once with "database is locked" when the other wrote in between (SQLite deferred mode).
        "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE",
                    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"},
        "TEST": {"NAME": str(home / f"test_{name}.sqlite3")},
    }


def mysql_settings(name: str, *, host: str, port: int, user: str, password: str) -> dict[str, Any]:
    database_name_check(name)
    return {
        "ENGINE": "django.db.backends.mysql",
        "NAME": name,
        "HOST": host,
        "PORT": str(port),
        "USER": user,
        "PASSWORD": password,
        "OPTIONS": {"charset": "utf8mb4"},
        "CONN_HEALTH_CHECKS": True,
        "TEST": {"CHARSET": "utf8mb4"},
    }


def databases_from_config(config: Config) -> dict[str, dict[str, Any]]:
    """Django DATABASES for the four aliases, from the configuration."""
    home = config.home
    names = {alias: config[f"database.{key}"] for alias, key in
             ((DEFAULT, "semc"), (LEGINON, "leginon"), (PROJECTS, "projects"), (APPION, "appion"))}
    if config["database.backend"] == "sqlite":
        dbs = {alias: sqlite_settings(home, name) for alias, name in names.items()}
    else:
        server = dict(host=config["database.host"], port=config["database.port"],
                      user=config["database.user"], password=config["database.password"])
        dbs = {alias: mysql_settings(name, **server) for alias, name in names.items()}
    if config.attached and config.sinedon is not None:
        for alias in (LEGINON, PROJECTS, APPION):
            db = getattr(config.sinedon, alias)
            if db is not None and config.sources[f"database.{alias}"].startswith("sinedon"):
                dbs[alias] = mysql_settings(db.name, host=db.host, port=db.port, user=db.user, password=db.password)
    for alias in (LEGINON, PROJECTS, APPION):
        dbs[alias]["ATOMIC_REQUESTS"] = False
    return dbs
