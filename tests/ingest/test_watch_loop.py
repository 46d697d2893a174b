"""End to end: a simulated EPU session folder is watched, registered, and processed by the daemon (motion
correction and CTF on a real LocalCluster) like a Leginon session; the stored results match the
simulation's ground truth. And ``semc watch`` as a program: a second run registers nothing again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from semc import models as m
from semc.ingest.register import Overrides
from semc.ingest.watcher import Watcher, WatchOptions, session_counts
from semc.models.codecs import seq_decode
from semc.simulation.layouts import exposure_place, layout_prepare, layout_write
from semc.simulation.session import SessionSpec
from tests.factories import chained_loop_params, daemon_run


@pytest.mark.slow
@pytest.mark.django_db(databases="__all__", transaction=True)
def test_a_watched_epu_session_is_processed_by_semc_loop_end_to_end(tmp_path):
    from semc.commands.init_databases import default_project_ensure

    default_project_ensure()
    spec = SessionSpec(name="sim", root=Path("."), n_exposures=1, camera="small", fmt="tiff", seed=11,
                       defocus_range_um=(1.0, 2.5))
    layout = layout_prepare(spec, style="epu", directory=tmp_path / "grid1", staging=tmp_path / "staging",
                            gain_orientation=(2, 1))
    for exposure in layout.exposures:
        exposure_place(exposure)
    watcher = Watcher(layout.directory, WatchOptions(settle_s=0.0, metadata_wait_s=0.0, racy_s=0.0,
                                                     overrides=Overrides(gain_rotate=2, gain_flip=1)))
    assert watcher.run(once=True).registered == 1
    processed = tmp_path / "grid1" / "processed"
    daemon_run(chained_loop_params(session="grid1", rundir=str(processed / "run1")))
    counts = session_counts(m.SessionData.objects.get(name="grid1").pk)
    assert (counts["raw_files"], counts["registered"], counts["processed_files"], counts["failed_jobs"]) == (1, 1, 1, 0)
    for exposure in layout.exposures:
        truth = json.loads(exposure.truth.read_text())
        source = m.AcquisitionImageData.objects.get(session__name="grid1", preset__name="enn",
                                                  camera__frames_name=exposure.movie.name)
        aligned = m.AcquisitionImageData.objects.get(filename=f"{source.filename}-a")
        assert m.ApDDAlignImagePairData.objects.filter(source_id=source.pk).count() == 2
        assert (processed / "rawdata" / aligned.image).is_file()  # results under <session>/processed
        trajectory = m.ApDDFrameTrajectoryData.objects.get(image_id=aligned.pk)
        stored = np.column_stack([seq_decode(trajectory.pos_x, item_type=float),
                                  seq_decode(trajectory.pos_y, item_type=float)])
        shift = np.column_stack([truth["trajectory"]["shift_x_px"], truth["trajectory"]["shift_y_px"]])
        assert np.sqrt(np.mean((stored - (shift - shift[len(shift) // 2])) ** 2)) < 0.25
        ctf_row = m.ApCtfData.objects.get(image_id=aligned.pk)
        mean_true = 0.5 * (truth["ctf"]["defocus1_angstrom"] + truth["ctf"]["defocus2_angstrom"])
        assert 0.5 * (ctf_row.defocus1 + ctf_row.defocus2) * 1e10 == pytest.approx(mean_true, rel=0.02)


def _semc_watch(root: Path, home: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SEMC_HOME": str(home), "SEMC_DB_BACKEND": "sqlite", "SEMC_MODE": "standalone"}
    return subprocess.run([sys.executable, "-m", "semc", "watch", str(root), "--once", "--settle", "0",
                           "--metadata-wait", "0", *extra], check=False, env=env, capture_output=True, text=True,
                          timeout=240)


@pytest.mark.slow
def test_semc_watch_registers_a_serialem_folder_once_across_runs(tmp_path):
    spec = SessionSpec(name="sim", root=Path("."), n_exposures=2, camera="small", seed=5, n_particles=5)
    layout = layout_write(spec, style="serialem", directory=tmp_path / "s26", staging=tmp_path / "staging",
                 frame_shape=(128, 128), n_frames=4)
    home = tmp_path / "home"
    first = _semc_watch(layout.directory, home)
    assert first.returncode == 0, first.stderr
    assert "registered 2, waiting 0, broken 0, failed 0" in first.stdout
    assert "s26:" in first.stdout and str(tmp_path / "s26" / "processed") in first.stdout
    again = _semc_watch(tmp_path / "s26", home)
    assert again.returncode == 0, again.stderr
    assert "registered 0, waiting 0" in again.stdout
    links = sorted(p.name for p in (tmp_path / "s26" / "processed" / "frames").iterdir())
    assert len(links) == 2 and all(name.endswith(".frames.mrc") for name in links)
    bad = _semc_watch(tmp_path / "absent", home)
    assert bad.returncode == 1 and "does not exist" in bad.stderr


@pytest.mark.slow
@pytest.mark.django_db(databases="__all__")
def test_an_epu_eer_session_registers_eer_movies_with_their_gain(tmp_path):
    from semc.base.retrieve import exposure_inputs_get

    spec = SessionSpec(name="sim", root=Path("."), n_exposures=1, camera="small", fmt="eer", seed=2, n_particles=3)
    layout = layout_write(spec, style="epu", directory=tmp_path / "eer1", staging=tmp_path / "staging",
                          frame_shape=(256, 256), n_frames=20)
    [exposure] = layout.exposures
    assert exposure.movie.name.endswith("_EER.eer")
    watcher = Watcher(layout.directory, WatchOptions(settle_s=0.0, metadata_wait_s=0.0, racy_s=0.0))
    assert watcher.run(once=True).registered == 1
    image = m.AcquisitionImageData.objects.select_related("camera", "camera__ccdcamera").get(session__name="eer1")
    inputs = exposure_inputs_get(image.pk)
    truth = json.loads(exposure.truth.read_text())
    assert inputs.eer and image.camera.eer_frames and not image.camera.tiff_frames
    assert inputs.movie_path.endswith(f"{image.filename}.frames.eer") and inputs.n_frames == 20
    assert image.camera.ccdcamera.name == "GatanK3"  # the XML's camera name wins over the file type
    assert inputs.total_dose_e_per_a2 == pytest.approx(truth["total_dose_e_per_a2"])
    assert Path(inputs.gain_path).resolve() == layout.gain.resolve()


@pytest.mark.slow
def test_semc_watch_runs_until_sigterm_and_stops_cleanly(tmp_path):
    import signal
    import time

    spec = SessionSpec(name="sim", root=Path("."), n_exposures=2, camera="small", seed=5, n_particles=5)
    layout = layout_write(spec, style="serialem", directory=tmp_path / "s27", staging=tmp_path / "staging",
                          frame_shape=(128, 128), n_frames=4)
    env = {**os.environ, "SEMC_HOME": str(tmp_path / "home"), "SEMC_DB_BACKEND": "sqlite", "SEMC_MODE": "standalone"}
    process = subprocess.Popen([sys.executable, "-m", "semc", "watch", str(layout.directory), "--settle", "0",
                                "--metadata-wait", "0", "--interval", "0.2"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    frames = layout.directory / "processed" / "frames"
    deadline = time.monotonic() + 120
    while not (frames.is_dir() and len(list(frames.iterdir())) == 2):
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read() if process.poll() else ""
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "registered 2, waiting 0" in out
