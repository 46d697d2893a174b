"""Fixtures for the API tests: two Leginon users with a session each in one project, a token each."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from semc import models as m
from semc.web.api.openapi import openapi_document
from semc.web.api.schema import response_schema, schema_errors


@dataclass
class ApiWorld:
    populated: object
    project_id: int
    session: object
    other_session: object
    token: str
    other_token: str
    staff_token: str


@pytest.fixture
def api_world(db, django_db_blocker):
    from django.core.cache import cache

    from semc.web.auth import token_create
    from tests.factories import session_populate

    cache.clear()  # the failed-authentication counters live in the cache
    populated = session_populate(n_images=3)
    other_user = m.UserData.objects.create(username="rroe", firstname="Rick", lastname="Roe")
    other = m.SessionData.objects.create(name="27nov23b", user=other_user, image_path="/data/leginon/27nov23b",
                                         frame_path="/data/frames/27nov23b", hidden=False)
    m.ProjectExperiment.objects.create(project=populated.project, session_id=other.pk)
    _, token = token_create(username="jdoe", label="tests")
    _, other_token = token_create(username="rroe")
    _, staff_token = token_create(username="facility", staff=True)
    yield ApiWorld(populated=populated, project_id=populated.project.pk, session=populated.session,
                   other_session=other, token=token, other_token=other_token, staff_token=staff_token)
    cache.clear()


def assert_documented(response, template: str, method: str = "get") -> dict:
    """The response's JSON conforms to the OpenAPI description of (template, method, status)."""
    document = openapi_document()
    body = response.json()
    schema = response_schema(document, path=template, method=method, status=response.status_code)
    errors = schema_errors(body, schema, document)
    assert not errors, f"{method.upper()} {template} {response.status_code}: {errors}"
    return body
