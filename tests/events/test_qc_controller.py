"""QC through the controller's own hook (the call semc/loop.py makes when a result is stored), on a
session in the database whose results are simulated (tests/events/sessions.py): a bad grid square is
rejected exposure by exposure in the classic assessment table, STOP_NOW reaches the acquisition client
within 4 exposures, and a person's earlier assessment is never overwritten."""

from __future__ import annotations

import dataclasses

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from semc import models as m
from semc.base import ledger
from semc.cluster import cluster_open
from semc.ctfestimation.task import ctf_task_config
from semc.events.client_example import VerdictSubscriber
from semc.events.models import ExposureQC, SessionQC
from semc.loop import Controller, LoopParams
from semc.pipeline import PipelineConfig
from tests.events.sessions import Fault, simulated_session
from tests.factories import session_populate

pytestmark = [pytest.mark.django_db(databases="__all__", transaction=True), pytest.mark.rabbitmq]
N, SQUARE = 32, 24  # the bad square starts at the 25th exposure, after the 20-exposure baseline


def _summary(metrics, image_id: int) -> dict:
    if metrics.resolution_A is None:
        raise AssertionError("the simulated bad square still has a fit")
    half = metrics.astigmatism_A / 2
    mean_A = metrics.defocus_measured_um * 1e4
    return {"ctf_id": image_id, "image_id": image_id, "defocus_u_A": mean_A - half, "defocus_v_A": mean_A + half,
            "angle_deg": 10.0, "phase_shift_rad": 0.0, "cc": 0.1, "resolution_A": metrics.resolution_A}


def test_a_bad_grid_square_stops_acquisition_through_the_controller_hook(tmp_path, amqp_url, topic_prefix, settings):
    config = settings.SEMC_CONFIG
    settings.SEMC_CONFIG = dataclasses.replace(config, values={
        **config.values, "events.broker_url": amqp_url, "events.topic_prefix": topic_prefix, "qc.assess": True})
    populated = session_populate(n_images=N)
    images = populated.images
    simulated = simulated_session(N, seed=4, faults=(Fault("bad_square", SQUARE, length=6),))
    for image, metrics in zip(images, simulated):
        m.ScopeEMData.objects.filter(pk=image.scope_id).update(defocus=-metrics.defocus_target_um * 1e-6)
        m.ZeroLossIceThicknessData.objects.create(image=image, thickness=metrics.ice_thickness_nm)
    person = m.ApAssessmentRunData.objects.create(session_id=populated.session.pk, name="run1")
    m.ApAssessmentData.objects.create(assessmentrun=person, image_id=images[SQUARE + 1].pk, selectionkeep=1)

    acquisition = VerdictSubscriber(amqp_url, queue=f"{topic_prefix}.leginon",
                                    bindings=(f"{topic_prefix}.session.verdict.26nov23a",))
    steps = ("ctfestimation",)
    rundir = str(tmp_path / "ctf1")
    params = LoopParams(session="26nov23a", preset="enn", steps=steps, rundir=rundir, runname="ctf1",
                        pipeline=PipelineConfig(steps=steps, ctfestimation=ctf_task_config(rundir=rundir)), wait=False)
    with cluster_open("local", n_workers=1) as cluster:
        controller = Controller(params, cluster)
        controller.prepare()
        ledger.ledger_sync(controller.run, "ctfestimation", [(i.pk, i.filename, None) for i in images])
        counts = []
        for image, metrics in zip(images, simulated):
            summary = _summary(metrics, image.pk)
            with CaptureQueriesContext(connections["default"]) as queries, \
                    controller.events.stored("ctfestimation", image.pk, summary):  # exactly as Controller._store
                ledger.ledger_done(controller.run, "ctfestimation", image.pk, started_at=None,
                                   finished_at=None, worker_host="", durations={}, result=summary)
            counts.append(len(queries))
        controller.shutdown(failed=False)
    verdicts = []
    try:
        acquisition.consume(verdicts.append, idle_timeout_s=3)
    finally:
        acquisition.close()

    assert [v["payload"]["verdict"] for v in verdicts] == ["GOOD", "STOP_NOW", "GOOD"]
    stop = verdicts[1]["payload"]
    assert stop["exposure_id"] == images[SQUARE + 3].pk  # the 4th bad exposure in a row
    assert f"since exposure {images[SQUARE].pk}" in stop["reason"] and stop["previous"] == "GOOD"
    assert verdicts[2]["payload"]["exposure_id"] == images[SQUARE + 6].pk  # the first good one after the square
    rejected = set(ExposureQC.objects.filter(keep=False).values_list("exposure_id", flat=True))
    assert rejected == {i.pk for i in images[SQUARE:SQUARE + 6]}
    classic = dict(m.ApAssessmentData.objects.filter(assessmentrun__name="run1").values_list("image_id",
                                                                                             "selectionkeep"))
    assert classic[images[SQUARE].pk] == 0 and classic[images[0].pk] == 1
    assert classic[images[SQUARE + 1].pk] == 1  # the person's keep stands
    assert m.ApAssessmentData.objects.filter(image_id=images[SQUARE + 1].pk).count() == 1
    assert not ExposureQC.objects.get(exposure_id=images[SQUARE + 1].pk).assessed
    assert SessionQC.objects.get(run=controller.run).verdict == "GOOD"
    # the hot path's cost on SEMC's database, ledger line included: 24 statements per stored exposure
    # (savepoints, the outbox row and its sequence number, the QC rows), a few more on a verdict change
    assert max(counts) <= 32, counts
