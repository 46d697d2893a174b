"""Round trips through the ORM on the configured backend (SQLite files, or MariaDB in CI's second pass)."""

from __future__ import annotations

import pytest
from django.db import connections

from semc import models as m
from semc.dbsettings import APPION, LEGINON, PROJECTS
from semc.models.codecs import pairs_decode, seq_decode
from semc.models.databases import appion_alias_for_project, appion_use
from tests.factories import appion_results_populate, session_populate

pytestmark = pytest.mark.django_db(databases="__all__")


def test_session_preset_and_exposures_read_back_with_all_references():
    populated = session_populate(n_images=2)
    image = m.AcquisitionImageData.objects.select_related("session", "preset", "camera", "scope", "norm",
                                                          "corrector_plan").get(pk=populated.images[1].pk)
    assert image.session.name == "26nov23a"
    assert image.session.frame_path == "/data/frames/26nov23a/rawdata"
    assert image.preset.name == "enn"
    assert image.preset.dose == pytest.approx(5.4546e21)
    assert image.camera.dimension_x == 5760 and image.camera.binning_x == 2
    assert image.scope.high_tension == 300000
    assert image.scope.defocus == pytest.approx(-1.6e-6)
    assert image.norm.session.hidden is True
    assert seq_decode(image.corrector_plan.bad_cols) == (1151, 1152)
    assert pairs_decode(image.corrector_plan.bad_pixels) == ((10, 20),)
    assert seq_decode(image.camera.use_frames) == tuple(range(50))
    assert image.timestamp is not None


def test_def_timestamp_is_filled_by_the_database_not_sent():
    user = m.UserData.objects.create(username="x")
    user.refresh_from_db()
    assert user.timestamp is not None


def test_rows_land_in_their_own_databases():
    populated = session_populate(n_images=1)
    appion_results_populate(populated)
    tables = {alias: set(connections[alias].introspection.table_names()) for alias in (LEGINON, PROJECTS, APPION)}
    assert "AcquisitionImageData" in tables[LEGINON] and "ApCtfData" not in tables[LEGINON]
    assert "projects" in tables[PROJECTS] and "SessionData" not in tables[PROJECTS]
    assert "ApCtfData" in tables[APPION] and "SessionData" not in tables[APPION]
    with connections[LEGINON].cursor() as cursor:
        cursor.execute('SELECT COUNT(*) FROM %s' % connections[LEGINON].ops.quote_name("AcquisitionImageData"))
        assert cursor.fetchone()[0] == 1
    with connections[APPION].cursor() as cursor:
        cursor.execute('SELECT %s FROM %s' % (connections[APPION].ops.quote_name("REF|leginondata|AcquisitionImageData|image"),
                                              connections[APPION].ops.quote_name("ApCtfData")))
        assert [row[0] for row in cursor.fetchall()] == [populated.images[0].pk]


def test_cross_database_references_resolve_through_the_router():
    populated = session_populate(n_images=2)
    run, acerun, job = appion_results_populate(populated)
    ctf = m.ApCtfData.objects.select_related("acerun__path").filter(acerun=acerun).order_by("id").first()
    image = m.AcquisitionImageData.objects.get(pk=ctf.image_id)
    assert image.filename == populated.images[0].filename
    assert ctf.acerun.path.path.endswith("ctf/ctffind4run1")
    done = set(m.ApDDAlignImagePairData.objects.filter(ddstackrun__path__path=run.path.path)
               .values_list("source_id", flat=True))
    assert done == {i.pk for i in populated.images}
    session = m.SessionData.objects.get(pk=job.session_id)
    assert session.name == "26nov23a"
    experiment = m.ProjectExperiment.objects.get(session_id=session.pk)
    assert experiment.project.name == "test project"


def test_project_appion_database_resolves_through_processingdb():
    project = m.Project.objects.create(name="p")
    m.ProcessingDB.objects.create(project=project, appiondb="ap1")
    assert appion_alias_for_project(project.pk) == APPION


def test_project_with_another_appion_database_gets_its_own_alias():
    project = m.Project.objects.create(name="q")
    m.ProcessingDB.objects.create(project=project, appiondb="ap77")
    alias = appion_alias_for_project(project.pk)
    try:
        assert alias == "ap77"
        assert connections.settings[alias]["ENGINE"] == connections.settings[APPION]["ENGINE"]
        with appion_use(alias):
            assert m.ApCtfData.objects.db == "ap77"
        assert m.ApCtfData.objects.db == APPION
    finally:  # the alias would otherwise join every later "__all__" test
        connections.settings.pop(alias, None)


def test_a_hostile_appion_database_name_is_refused():
    from semc.base.errors import InvalidParameters

    project = m.Project.objects.create(name="evil")
    m.ProcessingDB.objects.create(project=project, appiondb="../../etc/passwd")
    with pytest.raises(InvalidParameters, match="processingdb.appiondb"):
        appion_alias_for_project(project.pk)


def test_a_project_without_processingdb_is_an_input_missing_error():
    from semc.base.errors import InputMissing

    project = m.Project.objects.create(name="none")
    with pytest.raises(InputMissing, match=f"project {project.pk}"):
        appion_alias_for_project(project.pk)


def test_ledger_rows_enforce_one_line_per_exposure_and_step():
    from django.db import IntegrityError, transaction

    run = m.ProcessingRun.objects.create(name="ddstack1", rundir="/tmp/r1", session_id=1, session_name="s")
    m.ExposureStep.objects.create(run=run, exposure_id=5, step=m.Step.MOTION_CORRECTION)
    with pytest.raises(IntegrityError), transaction.atomic():
        m.ExposureStep.objects.create(run=run, exposure_id=5, step=m.Step.MOTION_CORRECTION)


def test_a_done_ledger_line_must_have_a_store_time():
    from django.db import IntegrityError, transaction

    run = m.ProcessingRun.objects.create(name="ddstack1", rundir="/tmp/r2", session_id=1, session_name="s")
    with pytest.raises(IntegrityError), transaction.atomic():
        m.ExposureStep.objects.create(run=run, exposure_id=6, step=m.Step.CTF_ESTIMATION, state=m.StepState.DONE)
