"""Session statistics over a real ledger and real classic rows: counts, percentages, latency, backlog, state."""

from __future__ import annotations

import datetime as dt
import os
import socket

import pytest

from semc import models as m
from semc.models.semc import ExposureStep, ProcessingRun, StepState
from semc.web import stats
from tests.factories import session_populate

pytestmark = pytest.mark.django_db(databases="__all__")

MC, CTF = "motioncorrection", "ctfestimation"
#: seconds before now at which each exposure arrived; exposure 6 is hidden in the viewer (rejected)
ARRIVED = [300, 200, 100, 50, 40, 30, 20]
#: exposures 0-2: both steps stored at these seconds before now (latencies 60, 50, 70 s)
STORED = [240, 150, 30]


def _ago(now: dt.datetime, seconds: float) -> dt.datetime:
    return now - dt.timedelta(seconds=seconds)


@pytest.fixture
def ledger_session():
    now = dt.datetime.now()
    populated = session_populate(n_images=7)
    images = populated.images
    for image, seconds in zip(images, ARRIVED):
        m.AcquisitionImageData.objects.filter(pk=image.pk).update(timestamp=_ago(now, seconds))
    m.ViewerImageStatus.objects.create(status="hidden", image=images[6], session=populated.session)
    run = ProcessingRun.objects.create(name="ddstack1", rundir="/tmp/semc-test/ddstack1",
                                       session_id=populated.session.pk, session_name="26nov23a",
                                       project_id=populated.project.pk, preset="enn", steps=[MC, CTF],
                                       host=socket.gethostname(), pid=os.getpid())
    ProcessingRun.objects.filter(pk=run.pk).update(created_at=_ago(now, 400))

    def line(index: int, step: str, state: str, **values) -> None:
        ExposureStep.objects.create(run=run, exposure_id=images[index].pk, filename=images[index].filename,
                                    step=step, state=state, arrived_at=_ago(now, ARRIVED[index]), **values)

    for index, seconds in enumerate(STORED):
        for step in (MC, CTF):
            line(index, step, StepState.DONE, stored_at=_ago(now, seconds + (5 if step == MC else 0)))
    line(3, MC, StepState.DONE, stored_at=_ago(now, 10))
    line(3, CTF, StepState.RUNNING, submitted_at=_ago(now, 9))
    line(4, MC, StepState.QUARANTINED, attempts=3, last_error="boom", error_kind="CorruptInput",
         finished_at=_ago(now, 5))
    line(4, CTF, StepState.PENDING)
    line(5, MC, StepState.FAILED, attempts=1, last_error="transient", finished_at=_ago(now, 4),
         next_attempt_at=now + dt.timedelta(seconds=30))
    line(5, CTF, StepState.PENDING)
    line(6, MC, StepState.PENDING)
    line(6, CTF, StepState.PENDING)
    return populated, run


def test_session_status_counts_follow_the_ledger_and_the_rejections(ledger_session):
    populated, run = ledger_session
    status = stats.session_status(populated.session.pk)
    assert status.run.run_id == run.pk and status.preset == "enn" and status.user == "jdoe"
    assert status.project_id == populated.project.pk
    assert (status.raw_files, status.processed_files, status.rejected) == (7, 3, 1)
    assert (status.failed_jobs, status.quarantined, status.in_flight) == (2, 1, 1)
    assert status.backlog == 2  # exposures 3 and 5: not done, not quarantined, not rejected
    assert status.percent_done_total == round(100 * 3 / 7)
    assert status.percent_current_cycle == pytest.approx(100 * 3 / 5)
    assert status.state == "processing"
    by_step = {s.step: s for s in status.steps}
    assert (by_step[MC].done, by_step[MC].quarantined, by_step[MC].failed, by_step[MC].pending) == (4, 1, 1, 1)
    assert (by_step[CTF].done, by_step[CTF].running, by_step[CTF].pending) == (3, 1, 3)
    assert by_step[MC].backlog == 1 and by_step[CTF].backlog == 2


def test_live_figures_are_end_to_end_over_the_window(ledger_session):
    populated, _ = ledger_session
    status = stats.session_status(populated.session.pk, window_s=600)
    # latencies of the last step: 60, 50, 70 s; linear percentiles
    assert status.latency_p50_s == pytest.approx(60.0, abs=0.5)
    assert status.latency_p95_s == pytest.approx(69.0, abs=0.5)
    assert status.latency_all_p50_s == pytest.approx(60.0, abs=0.5)
    # 3 results since the first of them, 240 s ago
    assert status.throughput_per_min == pytest.approx(3 / 240 * 60, rel=0.02)
    assert status.catch_up_s == pytest.approx(2 / (3 / 240 * 60) * 60, rel=0.02)
    # 6 arrivals that count (not rejected) and 3 results in 10 minutes
    assert status.backlog_trend_per_min == pytest.approx((6 - 3) / 10)
    assert status.as_dict()["run"]["run_id"] == status.run.run_id


def test_a_short_window_sees_only_recent_results(ledger_session):
    populated, _ = ledger_session
    status = stats.session_status(populated.session.pk, window_s=60)
    assert status.latency_p50_s == pytest.approx(70.0, abs=0.5)  # only exposure 2 was stored in the last minute
    assert status.latency_all_p50_s == pytest.approx(60.0, abs=0.5)


def test_state_follows_the_run_and_the_requests(ledger_session):
    from semc.web.models import ControlRequest, SupervisedSession

    populated, run = ledger_session
    session_id = populated.session.pk
    ProcessingRun.objects.filter(pk=run.pk).update(status=ProcessingRun.Status.STOPPED)
    assert stats.session_status(session_id).state == "needs_processing"
    request = ControlRequest.objects.create(action="start", project_id=populated.project.pk, session_id=session_id,
                                            session_name="26nov23a", requested_by="jdoe")
    assert stats.session_status(session_id).state == "processing_start"
    ControlRequest.objects.filter(pk=request.pk).update(state="done")
    SupervisedSession.objects.create(session_id=session_id, session_name="26nov23a",
                                     project_id=populated.project.pk, state="failed", rundir=run.rundir)
    assert stats.session_status(session_id).state == "processing_failure"
    ProcessingRun.objects.filter(pk=run.pk).update(status=ProcessingRun.Status.RUNNING, pid=2 ** 22 + 12345)
    SupervisedSession.objects.filter(session_id=session_id).update(state="running")
    # a "running" run whose process is gone on this host is a failure, not processing
    assert stats.session_status(session_id).state == "processing_failure"


def test_a_session_without_runs_guesses_its_raw_preset():
    populated = session_populate(n_images=2)
    aligned = m.PresetData.objects.create(session=populated.session, name="enn-a")
    m.AcquisitionImageData.objects.create(session=populated.session, preset=aligned, filename="x-a")
    m.AcquisitionImageData.objects.create(session=populated.session, preset=aligned, filename="y-a")
    m.AcquisitionImageData.objects.create(session=populated.session, preset=aligned, filename="z-a")
    assert stats.raw_preset_guess(populated.session.pk) == "enn"
    status = stats.session_status(populated.session.pk)
    assert (status.state, status.raw_files, status.processed_files, status.run) == ("needs_processing", 2, 0, None)
    assert status.percent_current_cycle == 0.0 and status.percent_done_total == 0


def test_visibility_is_by_project_owner_and_share(ledger_session):
    populated, _ = ledger_session
    project, session_id = populated.project.pk, populated.session.pk
    assert stats.session_visible(project_id=project, session_id=session_id, username="jdoe")
    assert not stats.session_visible(project_id=project, session_id=session_id, username="mallory")
    assert not stats.session_visible(project_id=project + 1, session_id=session_id, username="jdoe")
    other = m.UserData.objects.create(username="rroe")
    assert not stats.session_visible(project_id=project, session_id=session_id, username="rroe")
    m.ShareExperiment.objects.create(user_id=other.pk, session_id=session_id)
    assert stats.session_visible(project_id=project, session_id=session_id, username="rroe")
    owner = m.UserData.objects.create(username="boss")
    m.ProjectOwner.objects.create(project_id=project, user_id=owner.pk)
    assert stats.session_visible(project_id=project, session_id=session_id, username="boss")
    listed = stats.session_list(project_id=project, username="jdoe")
    assert [s.session_id for s in listed] == [session_id]  # the hidden reference session is not listed
    assert listed[0].state == "processing" and listed[0].raw_files == 7


def test_timeline_bins_arrivals_and_results(ledger_session):
    _, run = ledger_session
    points = stats.session_timeline(run.pk, bin_s=60.0)
    assert sum(p.arrived for p in points) == 6  # the rejected exposure is left out
    assert sum(p.stored for p in points) == 3
    assert points[-1].backlog == 3  # exposures 3, 4, 5 not stored in the last step
    assert all(p.end > p.start for p in points)
    # minute bins from the first arrival (300 s ago): arrivals at -300 | -200 | - | -100 | -50 -40 -30,
    # results at - | -240 | -150 | - | -30
    assert [p.backlog for p in points][:5] == [1, 1, 0, 1, 3]
    assert [p.stored for p in points][:5] == [0, 1, 1, 0, 1]
    mc = stats.session_timeline(run.pk, step=MC, bin_s=60.0)
    assert sum(p.stored for p in mc) == 4 and sum(p.failed for p in mc) == 2


def test_failure_list_shows_quarantined_and_retrying_lines(ledger_session):
    _, run = ledger_session
    lines = stats.failure_list(run.pk)
    assert [(f.state, f.error_kind, f.attempts) for f in lines] == [("failed", "", 1), ("quarantined", "CorruptInput", 3)]
    assert [f.state for f in stats.failure_list(run.pk, include_retrying=False)] == ["quarantined"]
