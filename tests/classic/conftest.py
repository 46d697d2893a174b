"""A small simulated session with real movies on disk, and helpers to snapshot and remove the rows a run
adds (so two runs can be compared row for row)."""

from __future__ import annotations

from pathlib import Path

import pytest

from semc.dbsettings import APPION, DEFAULT, LEGINON, PROJECTS
from tests.test_loop import FRAMES, SIZE, small_movie_session  # noqa: F401 - FRAMES, SIZE re-exported to the tests

N_IMAGES = 2


@pytest.fixture
def movie_session(tmp_path):
    """Two exposures of a K3-like camera shrunk to SIZE² × FRAMES movies (the daemon tests' camera)."""
    return small_movie_session(tmp_path, N_IMAGES)


def all_models() -> list[tuple[str, type]]:
    """(alias, model) of every classic table and SEMC's own tables."""
    from django.apps import apps

    from semc.models.databases import classic_models

    out = [(alias, model) for alias in (LEGINON, PROJECTS, APPION) for model in classic_models(alias)]
    classic = {model for _, model in out}
    out += [(DEFAULT, model) for model in apps.get_app_config("semc").get_models()
            if model not in classic and model._meta.managed]
    return out


def row_counts() -> dict[str, int]:
    return {f"{alias}:{model._meta.db_table}": model.objects.using(alias).count() for alias, model in all_models()}


def max_ids() -> dict[type, int]:
    return {model: max(model.objects.using(alias).values_list("pk", flat=True), default=0)
            for alias, model in all_models() if alias in (LEGINON, APPION)}


#: compared row for row between a classic run and `semc loop`; paths and provenance differ by design
_SKIP_TABLES = {"ApPathData", "ScriptProgramName", "ScriptUserName", "ScriptHostName", "ScriptProgramRun",
                "ScriptParamName", "ScriptParamValue"}


def _value(value):
    return round(value, 5) if isinstance(value, float) else value


def new_rows(before: dict[type, int]) -> dict[str, list[dict]]:
    """The rows added since ``before``, without ids, timestamps and references (which differ per run)."""
    out = {}
    for model, top in before.items():
        table = model._meta.db_table
        if table in _SKIP_TABLES:
            continue
        fields = [f.attname for f in model._meta.concrete_fields
                  if not f.is_relation and not f.primary_key and f.name != "timestamp"
                  and not f.attname.endswith("_id")]
        added = model.objects.filter(pk__gt=top).order_by("pk")
        rows = ([{k: _value(v) for k, v in row.items()} for row in added.values(*fields)] if fields
                else [{}] * added.count())  # a table of references only: compare the count
        if rows:
            out[table] = sorted(rows, key=repr)
    return out


def rows_delete(before: dict[type, int]) -> None:
    """Remove the rows added since ``before`` (raw DELETE: classic tables have no cascades)."""
    from django.db import connections

    from semc.models.routers import alias_for_model

    for model, top in before.items():
        connection = connections[alias_for_model(model)]
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {connection.ops.quote_name(model._meta.db_table)} WHERE "
                           f"{connection.ops.quote_name(model._meta.pk.column)} > %s", [top])


def files_of(folder: Path) -> dict[str, bytes]:
    """Name → content of the files a run leaves (lock and logs aside)."""
    skip = (".semc.lock", ".log")
    return {p.name: _undated(p.read_bytes()) for p in folder.iterdir() if p.is_file() and not p.name.endswith(skip)}


def _undated(content: bytes) -> bytes:
    """Without starfile's "# Created by ... at <time>" header line."""
    return b"\n".join(line for line in content.split(b"\n") if not line.startswith(b"# Created by"))
