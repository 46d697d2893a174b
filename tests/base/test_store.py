"""Classic run provenance: paths normalised once, job status letters as myamiweb expects, Script* rows."""

from __future__ import annotations

import pytest

from semc import models as m
from semc.base.store import (
    appion_job_aborted,
    appion_job_start,
    appion_job_status_set,
    path_get_or_create,
    script_run_record,
)

pytestmark = pytest.mark.django_db(databases="__all__")


def test_paths_are_normalised_so_trailing_slashes_and_dots_find_the_same_row(tmp_path):
    a = path_get_or_create(f"{tmp_path}/run1/")
    b = path_get_or_create(f"{tmp_path}/x/../run1")
    assert a.pk == b.pk and a.path == f"{tmp_path}/run1"


def test_duplicate_path_rows_resolve_to_the_oldest():
    first = m.ApPathData.objects.create(path="/d/run")
    m.ApPathData.objects.create(path="/d/run")
    assert path_get_or_create("/d/run").pk == first.pk


def test_a_web_created_job_is_updated_to_running_without_touching_its_jobtype():
    web = m.ApAppionJobData.objects.create(name="x", jobtype="makeddrawframestack", status="Q")
    job = appion_job_start(job_id=web.pk, rundir="/d/ddstack1", runname="ddstack1", jobtype="other",
                           session_id=3, user="jdoe", cluster="head1", clusterjobid=None)
    job.refresh_from_db()
    assert job.pk == web.pk and job.jobtype == "makeddrawframestack"
    assert (job.status, job.name, job.session_id, job.path.path) == ("R", "ddstack1.appionsub.job", 3, "/d/ddstack1")


def test_without_a_web_job_one_is_created_and_status_letters_follow_the_run():
    job = appion_job_start(job_id=None, rundir="/d/c1", runname="ctffind4run1", jobtype="ctfestimate",
                           session_id=3, user="jdoe", cluster="head1", clusterjobid=1234)
    assert (job.jobtype, job.status, job.clusterjobid) == ("ctfestimate", "R", 1234)
    appion_job_status_set(job, "D")
    job.refresh_from_db()
    assert job.status == "D"


def test_an_aborted_job_stays_aborted_and_is_detected():
    job = appion_job_start(job_id=None, rundir="/d/c2", runname="r", jobtype="ctfestimate", session_id=1,
                           user="u", cluster="h")
    assert not appion_job_aborted(job)
    m.ApAppionJobData.objects.filter(pk=job.pk).update(status="A")
    assert appion_job_aborted(job)
    appion_job_status_set(job, "D")
    job.refresh_from_db()
    assert job.status == "A"


def test_script_rows_record_each_reference_in_its_own_column_and_real_flags():
    job = appion_job_start(job_id=None, rundir="/d/ddstack1", runname="ddstack1", jobtype="makeddrawframestack",
                           session_id=1, user="u", cluster="h")
    run = script_run_record(program="makeDDAlignMotionCor2_UCSF", runname="ddstack1", rundir="/d/ddstack1",
                            job=job, revision="0.1.0",
                            parameters=[("bin", 2.0, "--bin=2.0"), ("wait", False, "--no-wait"), ("x", 1, None)])
    run.refresh_from_db()
    assert run.rundir.path == "/d/ddstack1" and run.job_id == job.pk  # not swapped (defect D1)
    assert run.progname.name == "makeDDAlignMotionCor2_UCSF"  # function name, not argv[0] (D27)
    usages = sorted(m.ScriptParamValue.objects.filter(progrun=run).values_list("usage", flat=True))
    assert usages == ["--bin=2.0", "--no-wait"]
    assert run.hostname.nproc and run.hostname.memory
