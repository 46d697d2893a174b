"""Creating SEMC's databases: the service behind ``semc init`` (also used by tests and the demo)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.management import call_command
from django.db import connections

from semc.dbsettings import APPION, DEFAULT, LEGINON, PROJECTS
from semc.models.databases import classic_schema_create, database_create

__all__ = ["databases_init", "default_project_ensure"]

logger = logging.getLogger(__name__)


def databases_init(*, create_default_project: bool = True) -> list[str]:
    """Migrate SEMC's state database; in standalone mode also create the classic schema."""
    config = settings.SEMC_CONFIG
    config.home.mkdir(parents=True, exist_ok=True)
    report = []
    database_create(DEFAULT)  # SEMC's own state database: created in every mode
    call_command("migrate", database=DEFAULT, interactive=False, verbosity=0)
    report.append(f"state database ({DEFAULT}): migrated")
    if config.attached:
        for alias in (LEGINON, PROJECTS):
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT 1")
            report.append(f"{alias} database {connections.settings[alias]['NAME']}: reachable (attached, not altered)")
        return report
    for alias in (LEGINON, PROJECTS, APPION):
        database_create(alias)
        created = classic_schema_create(alias, alias, attached=False)
        report.append(f"{alias} database {connections.settings[alias]['NAME']}: {len(created)} classic tables created")
    if create_default_project:
        project = default_project_ensure()
        report.append(f"default project: {project.pk} ({project.name})")
    return report


def default_project_ensure():
    """The project whose Appion database is the configured default (created in standalone mode)."""
    from semc.models.projects import ProcessingDB, Project

    name = connections.settings[APPION]["NAME"]
    appiondb = settings.SEMC_CONFIG["database.appion"]
    row = ProcessingDB.objects.filter(appiondb=appiondb).select_related("project").order_by("id").first()
    if row is not None and row.project is not None:
        return row.project
    project = Project.objects.create(name="SEMC", short_description="default project created by semc init")
    ProcessingDB.objects.create(project=project, appiondb=appiondb)
    logger.info("created default project %s with Appion database %s (%s)", project.pk, appiondb, name)
    return project
