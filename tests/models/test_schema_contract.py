"""The classic tables match the spec exactly: names, column names, column types (model and live database)."""

from __future__ import annotations

import pytest
from django.db import connections, models

from semc.models.databases import classic_models
from semc.models.fields import ClassicTimestampField
from tests.models.schema_spec import ALL


def _model_type(field: models.Field) -> str:
    if isinstance(field, ClassicTimestampField):
        return "TIMESTAMP"
    if isinstance(field, (models.AutoField, models.IntegerField, models.ForeignKey)):
        return "INT"
    if isinstance(field, models.FloatField):
        return "DOUBLE"
    if isinstance(field, models.BooleanField):
        return "TINYINT"
    if isinstance(field, models.CharField):
        return f"VARCHAR({field.max_length})"
    if isinstance(field, models.TextField):
        return "TEXT"
    raise AssertionError(f"unexpected field type {type(field).__name__}")


def _model_columns(model) -> dict[str, str]:
    return {f.column: _model_type(f) for f in model._meta.concrete_fields}


@pytest.mark.parametrize("kind", sorted(ALL))
def test_every_specified_table_is_modelled_in_its_database(kind):
    tables = {m._meta.db_table for m in classic_models(kind)}
    assert tables == set(ALL[kind])


@pytest.mark.parametrize("kind,table", [(k, t) for k in sorted(ALL) for t in sorted(ALL[k])])
def test_model_columns_and_types_match_the_spec(kind, table):
    model = next(m for m in classic_models(kind) if m._meta.db_table == table)
    assert _model_columns(model) == ALL[kind][table]
    assert model._meta.managed is False


def _category(db_type: str) -> str:
    db_type = db_type.lower()
    for prefix, category in (("varchar", "VARCHAR"), ("int", "INT"), ("integer", "INT"), ("bigint", "INT"),
                             ("double", "DOUBLE"), ("real", "DOUBLE"), ("float", "DOUBLE"), ("tinyint", "TINYINT"),
                             ("bool", "TINYINT"), ("longtext", "TEXT"), ("text", "TEXT"), ("timestamp", "TIMESTAMP"),
                             ("datetime", "TIMESTAMP")):
        if db_type.startswith(prefix):
            return category
    return db_type


@pytest.mark.django_db(databases="__all__")
@pytest.mark.parametrize("kind", sorted(ALL))
def test_live_database_tables_have_the_specified_columns(kind):
    connection = connections[kind]
    with connection.cursor() as cursor:
        for table, columns in ALL[kind].items():
            description = connection.introspection.get_table_description(cursor, table)
            live = {}
            for col in description:
                if connection.vendor == "mysql":
                    cursor.execute(
                        "SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
                        "AND TABLE_NAME = %s AND COLUMN_NAME = %s", [table, col.name])
                    live[col.name] = _category(cursor.fetchone()[0])
                else:
                    live[col.name] = _category(col.type_code if isinstance(col.type_code, str) else str(col.type_code))
            expected = {name: (t.split("(")[0] if t.startswith("VARCHAR") else t) for name, t in columns.items()}
            assert live == expected, table
