"""Database routing: Leginon, project and Appion tables to their databases, the rest to SEMC's.

Four aliases: ``leginon`` (Leginon tables), ``projects`` (project tables),
``appion`` (the Appion tables of the project being processed; a project's
own database can be selected with :func:`semc.models.databases.appion_use`),
and ``default`` (SEMC's state, Django's auth/admin/sessions). Classic tables are
never migrated by Django (R8): only ``default`` receives migrations.
"""

from __future__ import annotations

import contextvars

from django.db.models import Model

__all__ = ["ClassicRouter", "alias_for_model", "current_appion_alias", "LEGINON", "PROJECTS", "APPION", "DEFAULT"]

from semc.dbsettings import APPION, DEFAULT, LEGINON, PROJECTS

_MODULE_ALIAS = {
    "semc.models.leginon": LEGINON,
    "semc.models.projects": PROJECTS,
    "semc.models.appion": APPION,
}

#: the Appion alias used for Appion models when a query does not name one
current_appion_alias: contextvars.ContextVar[str] = contextvars.ContextVar("semc_appion_alias", default=APPION)


def alias_for_model(model: type[Model]) -> str:
    """The database alias a model lives in."""
    alias = _MODULE_ALIAS.get(model.__module__, DEFAULT)
    if alias == APPION:
        return current_appion_alias.get()
    return alias


class ClassicRouter:
    """Route classic tables by module; everything else to ``default``."""

    def db_for_read(self, model: type[Model], **hints) -> str:
        instance = hints.get("instance")
        if instance is not None and instance._state.db and _MODULE_ALIAS.get(model.__module__) == APPION:
            return instance._state.db
        return alias_for_model(model)

    db_for_write = db_for_read

    def allow_relation(self, obj1: Model, obj2: Model, **hints) -> bool | None:
        return alias_for_model(type(obj1)) == alias_for_model(type(obj2)) or None

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints) -> bool:
        model = hints.get("model")
        if model is not None and model.__module__ in _MODULE_ALIAS:
            return False  # classic tables: created by `semc init` in standalone mode only, never migrated
        return db == DEFAULT
