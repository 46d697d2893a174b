"""Shared fixtures: test databases with the classic schema, on SQLite files or a real MariaDB.

The environment is isolated by the ``semc.testing.pytest_env`` plugin (a fresh
``SEMC_HOME`` per run). Run the database tests on MariaDB with
``SEMC_DB_BACKEND=mysql SEMC_DB_HOST=... SEMC_DB_PORT=... SEMC_DB_USER=... SEMC_DB_PASSWORD=...``.
"""

from __future__ import annotations

import pytest

from semc.dbsettings import APPION, LEGINON, PROJECTS


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """After Django creates the test databases, create the classic tables in them (standalone mode)."""
    from semc.models.databases import classic_schema_create

    with django_db_blocker.unblock():
        for alias in (LEGINON, PROJECTS, APPION):
            classic_schema_create(alias, alias, attached=False)


@pytest.fixture
def populated_session(db, django_db_blocker):
    """A small session with references, three exposures and a project (see tests/factories.py)."""
    from tests.factories import session_populate

    return session_populate()


@pytest.fixture(autouse=True)
def classic_tables_emptied_after_transactional_tests(request, django_db_blocker):
    """Django's flush skips unmanaged models, so a transactional test's classic rows would leak into
    the next test: empty the classic tables after each transactional test."""
    yield
    marker = request.node.get_closest_marker("django_db")
    if marker is None or not marker.kwargs.get("transaction"):
        return
    from django.db import connections

    from semc.models.databases import classic_models

    with django_db_blocker.unblock():
        for alias in (LEGINON, PROJECTS, APPION):
            connection = connections[alias]
            with connection.cursor() as cursor:
                for model in classic_models(alias):
                    cursor.execute(f"DELETE FROM {connection.ops.quote_name(model._meta.db_table)}")
