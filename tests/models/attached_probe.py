"""Run in a subprocess by test_attached.py: SEMC attached to an existing classic schema.

Records every SQL statement per database alias, runs ``semc init``, reads the
session Leginon wrote, writes an aligned exposure and a CTF result, and prints
a JSON report on stdout.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "semc.settings")
    import django
    from django.db.backends.signals import connection_created

    statements: list[tuple[str, str]] = []

    def record(execute, sql, params, many, context):
        statements.append((context["connection"].alias, sql))
        return execute(sql, params, many, context)

    def install(sender, connection, **kwargs):
        if record not in connection.execute_wrappers:
            connection.execute_wrappers.append(record)

    connection_created.connect(install)
    django.setup()
    from semc import models as m
    from semc.commands.init_databases import databases_init
    from semc.models.databases import appion_alias_for_project, appion_use

    report = {"init": databases_init(create_default_project=False)}
    session = m.SessionData.objects.get(name=sys.argv[1])
    raw = m.AcquisitionImageData.objects.filter(session=session).order_by("id").first()
    aligned = m.AcquisitionImageData.objects.create(session=session, preset=raw.preset, camera=raw.camera,
                                                    scope=raw.scope, filename=raw.filename + "-a",
                                                    image=raw.filename + "-a.mrc")
    project_id = m.ProjectExperiment.objects.get(session_id=session.pk).project_id
    alias = appion_alias_for_project(project_id)
    with appion_use(alias):
        path = m.ApPathData.objects.create(path="/data/appion/run1")
        acerun = m.ApAceRunData.objects.create(name="ctffind4run1", session_id=session.pk, path=path)
        m.ApCtfData.objects.create(acerun=acerun, image_id=aligned.pk, defocus1=1.0e-6, defocus2=1.1e-6)
    report.update(session=session.name, raw_filename=raw.filename, aligned_id=aligned.pk, appion_alias=alias,
                  statements=statements)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
