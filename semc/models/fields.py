"""Field factories for the classic (sinedon-encoded) Leginon/Appion column names.

Column names are reproduced exactly (appion-compat §1.3): ``DEF_id``,
``DEF_timestamp``, ``REF|<Table>|<field>`` (same database),
``REF|<module>|<Table>|<field>`` (another database: a plain integer, no
constraint), ``SUBD|<key>|<subkey>``, ``SEQ|<name>`` (text holding a Python
repr, decoded by :mod:`semc.models.codecs`, never ``eval``) and ``MRC|image``.
Every classic column is nullable, as in the legacy MySQL schema.
"""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now

__all__ = [
    "ClassicTimestampField",
    "ClassicModel",
    "ref",
    "xref",
    "subd",
    "seq",
    "mrc",
    "text",
    "integer",
    "double",
    "flag",
    "varchar",
]


class ClassicTimestampField(models.DateTimeField):
    """``DEF_timestamp``: a TIMESTAMP that the database fills (R8: SEMC never sends it)."""

    def db_type(self, connection):  # noqa: D102 - Django API
        if connection.vendor == "mysql":
            return "timestamp"
        return super().db_type(connection)


class ClassicModel(models.Model):
    """Base of every classic table: ``DEF_id`` and ``DEF_timestamp``; never migrated by Django."""

    id = models.AutoField(primary_key=True, db_column="DEF_id")
    timestamp = ClassicTimestampField(db_column="DEF_timestamp", db_default=Now(), editable=False)

    class Meta:
        abstract = True
        managed = False


def _opts(kwargs: dict) -> dict:
    kwargs.setdefault("null", True)
    kwargs.setdefault("blank", True)
    return kwargs


def ref(to: str, table: str, name: str, *, related_name: str = "+", **kwargs) -> models.ForeignKey:
    """A same-database reference ``REF|<table>|<name>``; 0 or NULL means none."""
    return models.ForeignKey(
        to,
        db_column=f"REF|{table}|{name}",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name=related_name,
        **_opts(kwargs),
    )


def xref(module: str, table: str, name: str, **kwargs) -> models.IntegerField:
    """A cross-database reference ``REF|<module>|<table>|<name>``: an indexed integer id."""
    kwargs.setdefault("db_index", True)
    return models.IntegerField(db_column=f"REF|{module}|{table}|{name}", **_opts(kwargs))


def subd(*path: str, kind: str = "double", **kwargs) -> models.Field:
    """A flattened dictionary leaf ``SUBD|a|b`` (nested dicts repeat ``SUBD|``)."""
    column = "|".join(f"SUBD|{p}" for p in path[:-1]) + f"|{path[-1]}"
    field_class = {"double": models.FloatField, "int": models.IntegerField, "flag": models.BooleanField}[kind]
    return field_class(db_column=column, **_opts(kwargs))


def seq(name: str, **kwargs) -> models.TextField:
    """A sequence column ``SEQ|<name>``: text holding a Python repr such as ``(0, 1, 2)``."""
    return models.TextField(db_column=f"SEQ|{name}", **_opts(kwargs))


def mrc(name: str = "image", **kwargs) -> models.TextField:
    """``MRC|image``: a file name relative to the owning session's ``image path``."""
    return models.TextField(db_column=f"MRC|{name}", **_opts(kwargs))


def text(column: str | None = None, **kwargs) -> models.TextField:
    """A TEXT column (``column`` when its name differs from the attribute)."""
    return models.TextField(db_column=column, **_opts(kwargs))


def varchar(length: int, column: str | None = None, **kwargs) -> models.CharField:
    """A VARCHAR(length) column."""
    return models.CharField(max_length=length, db_column=column, **_opts(kwargs))


def integer(column: str | None = None, **kwargs) -> models.IntegerField:
    """An INT column."""
    return models.IntegerField(db_column=column, **_opts(kwargs))


def double(column: str | None = None, **kwargs) -> models.FloatField:
    """A DOUBLE column."""
    return models.FloatField(db_column=column, **_opts(kwargs))


def flag(column: str | None = None, **kwargs) -> models.BooleanField:
    """A TINYINT(1) column."""
    return models.BooleanField(db_column=column, **_opts(kwargs))
