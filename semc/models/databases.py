"""Per-project Appion databases, and (standalone mode only) creating the classic schema.

In attached mode SEMC never issues DDL against the Leginon, project or Appion
databases (R8); :func:`classic_schema_create` refuses to run there.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings as django_settings
from django.db import connections

from semc.base.errors import ConfigurationError, InputMissing
from semc.dbsettings import APPION, DEFAULT, PROJECTS, database_name_check, sqlite_settings
from semc.models.routers import _MODULE_ALIAS, current_appion_alias

__all__ = [
    "appion_alias_for_project",
    "appion_use",
    "classic_models",
    "classic_schema_create",
    "database_create",
]

logger = logging.getLogger(__name__)

def classic_models(alias_kind: str) -> list[type]:
    """The classic models that live in one kind of database (leginon, projects or appion)."""
    return [m for m in apps.get_app_config("semc").get_models() if _MODULE_ALIAS.get(m.__module__) == alias_kind]


def _register_alias(alias: str, settings: dict[str, Any]) -> None:
    if alias in connections.settings:
        return
    merged = {DEFAULT: connections.settings[DEFAULT], alias: settings}
    connections.settings[alias] = connections.configure_settings(merged)[alias]


def appion_alias_for_project(project_id: int) -> str:
    """The database alias of a project's Appion database, registered on first use.

    The name comes from ``processingdb.appiondb`` (first row of the project),
    and is validated before it touches a connection or a file name.

    Raises
    ------
    InputMissing
        If the project has no processingdb row.
    InvalidParameters
        If the stored database name is not a plain identifier.
    """
    from semc.models.projects import ProcessingDB

    row = ProcessingDB.objects.using(PROJECTS).filter(project_id=project_id).order_by("id").first()
    if row is None or not row.appiondb:
        raise InputMissing(f"project {project_id} has no processingdb row naming its Appion database")
    name = database_name_check(row.appiondb, what="processingdb.appiondb")
    if name == django_settings.SEMC_CONFIG["database.appion"]:
        return APPION
    base = connections.settings[APPION]
    settings = dict(base)
    if base["ENGINE"].endswith("sqlite3"):
        home = Path(base["NAME"]).parent
        settings.update(sqlite_settings(home, name))
    else:
        settings["NAME"] = name
        settings["TEST"] = {"CHARSET": "utf8mb4"}
    _register_alias(name, settings)
    return name


@contextlib.contextmanager
def appion_use(alias: str) -> Iterator[str]:
    """Within the block, Appion models use the given database alias."""
    token = current_appion_alias.set(alias)
    try:
        yield alias
    finally:
        current_appion_alias.reset(token)


def database_create(alias: str) -> None:
    """Create the database behind an alias if it does not exist (standalone MySQL only; SQLite needs nothing)."""
    settings = connections.settings[alias]
    if settings["ENGINE"].endswith("sqlite3"):
        Path(settings["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        return
    import MySQLdb  # noqa: PLC0415 - only needed for MySQL

    name = database_name_check(settings["NAME"])
    conn = MySQLdb.connect(host=settings["HOST"], port=int(settings["PORT"] or 3306),
                           user=settings["USER"], password=settings["PASSWORD"])
    try:
        conn.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4")
    finally:
        conn.close()


def classic_schema_create(alias: str, kind: str, *, attached: bool) -> list[str]:
    """Create the classic tables of one database kind in ``alias`` (standalone mode only).

    Returns the names of the tables created; existing tables are left alone.

    Raises
    ------
    ConfigurationError
        In attached mode: SEMC never issues DDL against a facility's databases.
    """
    if attached:
        raise ConfigurationError(
            "refusing to create classic tables in attached mode (the facility's schema is never altered)",
            key="mode",
        )
    connection = connections[alias]
    existing = set(connection.introspection.table_names())
    created = []
    with connection.schema_editor() as editor:
        for model in classic_models(kind):
            if model._meta.db_table not in existing:
                editor.create_model(model)
                created.append(model._meta.db_table)
    if created:
        logger.info("created %d classic %s tables in database %s", len(created), kind, alias)
    return created
