"""A small validator for the JSON Schema subset the OpenAPI description uses (no dependency needed):
``$ref`` (local), ``type`` (one or a list), ``enum``, ``const``, ``properties``, ``required``,
``additionalProperties``, ``items``, ``anyOf``, ``minimum``/``maximum``, ``pattern`` and ``format: date-time``.
Unknown keywords are refused, so the description cannot use a keyword this validator would ignore."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

__all__ = ["response_schema", "schema_errors"]

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}
_ANNOTATIONS = {"description", "title", "example"}
_KEYWORDS = {"$ref", "type", "enum", "const", "properties", "required", "additionalProperties", "items", "anyOf",
             "minimum", "maximum", "pattern", "format"} | _ANNOTATIONS


def _resolve(ref: str, document: dict[str, Any]) -> dict[str, Any]:
    if not ref.startswith("#/"):
        raise ValueError(f"only local references are supported, got {ref!r}")
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def schema_errors(instance: Any, schema: dict[str, Any], document: dict[str, Any], path: str = "$") -> list[str]:
    """Every way ``instance`` breaks ``schema`` (empty when it conforms), as ``path: reason`` lines."""
    unknown = set(schema) - _KEYWORDS
    if unknown:
        raise ValueError(f"{path}: schema keywords not supported: {sorted(unknown)}")
    if "$ref" in schema:
        return schema_errors(instance, _resolve(schema["$ref"], document), document, path)
    if "anyOf" in schema:
        if not any(not schema_errors(instance, option, document, path) for option in schema["anyOf"]):
            return [f"{path}: matches none of anyOf"]
        return []
    errors: list[str] = []
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[k](instance) for k in kinds):
            return [f"{path}: {type(instance).__name__} is not {'/'.join(kinds)}"]
    if "enum" in schema and instance not in schema["enum"]:
        errors.append(f"{path}: {instance!r} not in {schema['enum']}")
    if "const" in schema and instance != schema["const"]:
        errors.append(f"{path}: {instance!r} != {schema['const']!r}")
    if isinstance(instance, (int, float)) and not isinstance(instance, bool):
        if "minimum" in schema and instance < schema["minimum"]:
            errors.append(f"{path}: {instance} < {schema['minimum']}")
        if "maximum" in schema and instance > schema["maximum"]:
            errors.append(f"{path}: {instance} > {schema['maximum']}")
    if isinstance(instance, str):
        if "pattern" in schema and not re.search(schema["pattern"], instance):
            errors.append(f"{path}: {instance!r} does not match {schema['pattern']}")
        if schema.get("format") == "date-time":
            try:
                dt.datetime.fromisoformat(instance)
            except ValueError:
                errors.append(f"{path}: {instance!r} is not an ISO 8601 date-time")
    if isinstance(instance, dict):
        errors += _object_errors(instance, schema, document, path)
    if isinstance(instance, list) and "items" in schema:
        for index, item in enumerate(instance):
            errors += schema_errors(item, schema["items"], document, f"{path}[{index}]")
    return errors


def _object_errors(instance: dict, schema: dict[str, Any], document: dict[str, Any], path: str) -> list[str]:
    errors = [f"{path}: missing {key!r}" for key in schema.get("required", []) if key not in instance]
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for key, value in instance.items():
        if key in properties:
            errors += schema_errors(value, properties[key], document, f"{path}.{key}")
        elif extra is False:
            errors.append(f"{path}: unexpected {key!r}")
        elif isinstance(extra, dict):
            errors += schema_errors(value, extra, document, f"{path}.{key}")
    return errors


def response_schema(document: dict[str, Any], *, path: str, method: str, status: int) -> dict[str, Any]:
    """The JSON schema of one documented response (KeyError when it is not documented)."""
    response = document["paths"][path][method.lower()]["responses"][str(status)]
    return response["content"]["application/json"]["schema"]
