"""A simulated session (files + Leginon rows from the simulator) processed end to end by the daemon:
the rows are valid for it, and the stored drift and defocus match the simulation's ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from semc import models as m
from semc.base.retrieve import exposure_inputs_get
from semc.models.codecs import seq_decode
from semc.simulation.leginon_rows import session_rows_write_leginon
from semc.simulation.session import SessionSpec, session_plan, session_run
from tests.factories import chained_loop_params, daemon_run

pytestmark = [pytest.mark.django_db(databases="__all__", transaction=True), pytest.mark.slow]


@pytest.fixture
def simulated(tmp_path):
    from semc.commands.init_databases import default_project_ensure

    default_project_ensure()
    plan = session_plan(SessionSpec(name="sim26a", root=tmp_path, n_exposures=3, camera="small", seed=11,
                                    defocus_range_um=(1.0, 2.5)))
    files = session_run(plan, realtime=False, rows_writer=session_rows_write_leginon)
    return plan, files


def test_simulated_rows_are_valid_for_the_daemon(simulated):
    plan, files = simulated
    images = list(m.AcquisitionImageData.objects.filter(session__name="sim26a").order_by("id"))
    assert [i.filename for i in images] == [e.filename for e in plan.exposures]
    for image, exposure, written in zip(images, plan.exposures, files):
        truth = json.loads(written.truth.read_text())
        inputs = exposure_inputs_get(image.pk)
        assert inputs.movie_path == str(written.movie) and Path(inputs.movie_path).is_file()
        assert inputs.pixel_size_angstrom == pytest.approx(truth["pixel_size_angstrom"])
        assert inputs.voltage_kv == pytest.approx(truth["voltage_kv"]) and inputs.cs_mm == pytest.approx(2.7)
        assert inputs.n_frames == truth["n_frames"]
        assert inputs.total_dose_e_per_a2 == pytest.approx(truth["total_dose_e_per_a2"])
        assert inputs.gain_path == str(written.gain) and Path(inputs.gain_path).is_file()
        assert set(inputs.defects.bad_cols) == set(truth["detector"]["dead_columns"])
        assert set(inputs.defects.bad_pixels) == {tuple(p) for p in truth["detector"]["hot_pixels_xy"]}
        assert (Path(image.session.image_path) / image.image).is_file()
        assert seq_decode(image.use_frames) == tuple(range(truth["n_frames"]))
    assert m.ProjectExperiment.objects.filter(session_id=images[0].session_id).exists()


def test_the_daemon_recovers_the_simulated_drift_and_defocus(simulated, tmp_path):
    plan, files = simulated
    daemon_run(chained_loop_params(session="sim26a", rundir=str(tmp_path / "run1")))
    for exposure, written in zip(plan.exposures, files):
        truth = json.loads(written.truth.read_text())
        source = m.AcquisitionImageData.objects.get(filename=exposure.filename)
        aligned = m.AcquisitionImageData.objects.get(filename=f"{exposure.filename}-a")
        assert m.ApDDAlignImagePairData.objects.filter(source_id=source.pk).count() == 2
        trajectory = m.ApDDFrameTrajectoryData.objects.get(image_id=aligned.pk)
        stored = np.column_stack([seq_decode(trajectory.pos_x, item_type=float),
                                  seq_decode(trajectory.pos_y, item_type=float)])
        shift = np.column_stack([truth["trajectory"]["shift_x_px"], truth["trajectory"]["shift_y_px"]])
        expected = shift - shift[len(shift) // 2]  # motioncorr positions: displacement relative to the middle frame
        # plumbing and sign conventions, not the engine's accuracy (tests/motioncorrection holds those bounds):
        # a 512², 10-frame movie at 4 e/px/frame aligns to about 0.1-0.15 px RMS
        assert np.sqrt(np.mean((stored - expected) ** 2)) < 0.25
        assert np.sign(stored[0]).tolist() == np.sign(expected[0]).tolist()
        ctf = m.ApCtfData.objects.get(image_id=aligned.pk)
        mean_true = 0.5 * (truth["ctf"]["defocus1_angstrom"] + truth["ctf"]["defocus2_angstrom"])
        assert 0.5 * (ctf.defocus1 + ctf.defocus2) * 1e10 == pytest.approx(mean_true, rel=0.02)
