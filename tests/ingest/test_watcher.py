"""The watcher on simulated EPU and SerialEM folders, with files appearing while it runs (some written
slowly, some truncated and never finished) and restarts mid-session: every complete movie registered
once with the right metadata, none of the unfinished ones, the gain oriented onto the frames."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from semc import models as m
from semc.base.io import load_gain, orient_gain
from semc.base.retrieve import exposure_inputs_get
from semc.ingest.models import WatchedFile
from semc.ingest.register import Overrides
from semc.ingest.watcher import PassReport, Watcher, WatchOptions, session_counts
from semc.simulation.layouts import (
    exposure_place,
    exposure_place_slowly,
    exposure_place_truncated,
    layout_prepare,
    usc_session_dir,
)
from semc.simulation.session import SessionSpec

pytestmark = pytest.mark.django_db(databases="__all__")

FAST = {"settle_s": 0.3, "broken_after_s": 2.0, "metadata_wait_s": 1.0, "racy_s": 0.0}


#: one simulated session (TIFF movies) that every test lays out anew
SPEC = SessionSpec(name="sim", root=Path("."), n_exposures=6, camera="small", fmt="tiff", seed=3, n_particles=5)


#: small movies: these tests need files and metadata, not physics
FRAMES = {"frame_shape": (256, 256), "n_frames": 6}


@pytest.fixture(scope="module")
def staging(tmp_path_factory):
    path = tmp_path_factory.mktemp("staging")
    layout_prepare(SPEC, style="epu", directory=path / "unused", staging=path, **FRAMES)
    return path


def _drive(watcher: Watcher, done, *, timeout_s: float = 30.0) -> PassReport:
    """Pass after pass until ``done(report)`` (or fail after the timeout)."""
    deadline = time.monotonic() + timeout_s
    while True:
        report = watcher.run_pass()
        if done(report):
            return report
        assert time.monotonic() < deadline, f"watcher did not settle: {report}"
        time.sleep(0.1)


def _n_registered() -> int:
    return WatchedFile.objects.filter(kind=WatchedFile.Kind.MOVIE, state=WatchedFile.State.REGISTERED).count()


def _registered(session_name: str) -> dict[str, m.AcquisitionImageData]:
    images = m.AcquisitionImageData.objects.filter(session__name=session_name).select_related(
        "camera", "scope", "preset", "norm")
    return {i.camera.frames_name: i for i in images}


def _truth(exposure) -> dict:
    return json.loads(exposure.truth.read_text())


def _check_gain_orientation(image: m.AcquisitionImageData, exposure) -> None:
    """What the daemon will do with the registered gain (load, orient by the camera row) gives the truth's gain."""
    inputs = exposure_inputs_get(image.pk)
    gain = load_gain(inputs.gain_path, movie_kind="tiff")
    oriented = orient_gain(gain, rotate_90=inputs.frame_rotate, flip=int(inputs.frame_flip), convention="leginon")
    truth = _truth(exposure)
    reference = load_gain(exposure.truth.parent / truth["paths"]["gain_reference"])
    assert np.array_equal(oriented, reference)


def test_an_epu_session_arriving_live_registers_complete_movies_once_and_never_the_unfinished(tmp_path, staging):
    layout = layout_prepare(SPEC, style="epu", directory=tmp_path / "epu1", staging=staging, **FRAMES,
                            gain_orientation=(1, 2))
    first, slow, truncated, late, last = layout.exposures[:5]
    exposure_place(first)
    options = WatchOptions(overrides=Overrides(gain_rotate=1, gain_flip=2), **FAST)
    watcher = Watcher(layout.directory, options)
    _drive(watcher, lambda r: _n_registered() == 1)
    writer = threading.Thread(target=exposure_place_slowly, args=(slow,), kwargs={"chunks": 6, "pause_s": 0.15})
    writer.start()
    exposure_place_truncated(truncated)
    seen_incomplete = False
    while writer.is_alive():
        watcher.run_pass()
        row = WatchedFile.objects.filter(path=str(slow.movie)).first()
        seen_incomplete |= row is not None and row.state == WatchedFile.State.WAITING
        time.sleep(0.05)
    writer.join()
    assert seen_incomplete  # the watcher saw the movie while it was being written, and waited
    exposure_place(late)
    exposure_place(last)
    _drive(watcher, lambda r: r.waiting == 0)
    registered = _registered("epu1")
    assert sorted(registered) == sorted(e.movie.name for e in (first, slow, late, last))
    broken = WatchedFile.objects.get(path=str(truncated.movie))
    assert broken.state == WatchedFile.State.BROKEN and "past the end" in broken.reason
    for exposure in (first, slow, late, last):
        image, truth = registered[exposure.movie.name], _truth(exposure)
        inputs = exposure_inputs_get(image.pk)
        # the XML describes a 2x-binned integrated image: its 2 Å pixel is 1 Å on the fractions
        assert inputs.pixel_size_angstrom == pytest.approx(truth["pixel_size_angstrom"])
        assert inputs.voltage_kv == pytest.approx(truth["voltage_kv"]) and inputs.cs_mm == pytest.approx(2.7)
        assert inputs.total_dose_e_per_a2 == pytest.approx(truth["total_dose_e_per_a2"])
        assert inputs.n_frames == truth["n_frames"] and inputs.camera_dimensions == (256, 256)
        mean_defocus = 0.5 * (truth["ctf"]["defocus1_angstrom"] + truth["ctf"]["defocus2_angstrom"])
        assert inputs.nominal_defocus_angstrom == pytest.approx(mean_defocus)
        assert Path(inputs.movie_path).resolve() == exposure.movie.resolve()  # <frame path>/<filename>.frames.tif
        assert inputs.movie_path.endswith(f"{image.filename}.frames.tif")
        assert image.filename == exposure.movie.name.removesuffix("_fractions.tiff")
        assert image.camera.system_time == pytest.approx(exposure.acquired_at)
        assert image.preset.name == "enn" and image.scope.magnification == 105000
        row = WatchedFile.objects.get(path=str(exposure.movie))
        square, hole = exposure.movie.parent.parent.name.split("_")[1], exposure.movie.name.split("_")[1]
        assert (row.grid_square, row.foil_hole, row.exposure_id) == (square, hole, image.pk)
        _check_gain_orientation(image, exposure)
    assert m.NormImageData.objects.count() == 1
    session = m.SessionData.objects.get(name="epu1")
    assert session.frame_path == str(tmp_path / "epu1" / "processed" / "frames")
    assert m.ProjectExperiment.objects.filter(session_id=session.pk).exists()
    counts = session_counts(session.pk)
    assert (counts["raw_files"], counts["registered"], counts["broken"]) == (5, 4, 1)
    assert not (tmp_path / "epu1" / layout.exposures[5].movie.name).exists()  # the sixth was never placed


def test_a_restart_mid_session_registers_each_movie_once_and_scans_only_what_changed(tmp_path, staging):
    layout = layout_prepare(SPEC, style="serialem", directory=tmp_path / "sem1", staging=staging, **FRAMES,
                            gain_orientation=(3, 0))
    for exposure in layout.exposures[:3]:
        exposure_place(exposure)
    exposure_place_truncated(layout.exposures[3], fraction=0.3)
    options = WatchOptions(overrides=Overrides(gain_rotate=3), **FAST)
    _drive(Watcher(layout.directory, options), lambda r: _n_registered() == 3)
    # a crash after the Leginon rows but before the registry row: the rows are found again, not duplicated
    crashed = WatchedFile.objects.get(path=str(layout.exposures[2].movie))
    crashed.state, crashed.exposure_id = WatchedFile.State.WAITING, None
    crashed.save()
    for exposure in layout.exposures[4:]:
        exposure_place(exposure)
    restarted = Watcher(layout.directory, options)
    _drive(restarted, lambda r: r.waiting == 0)
    registered = _registered("sem1")
    expected = [e for i, e in enumerate(layout.exposures) if i != 3]
    assert sorted(registered) == sorted(e.movie.name for e in expected)
    assert m.AcquisitionImageData.objects.filter(session__name="sem1").count() == 5
    assert WatchedFile.objects.get(path=str(layout.exposures[2].movie)).exposure_id == \
        registered[layout.exposures[2].movie.name].pk
    for exposure in expected:
        truth, inputs = _truth(exposure), exposure_inputs_get(registered[exposure.movie.name].pk)
        assert inputs.pixel_size_angstrom == pytest.approx(truth["pixel_size_angstrom"])
        assert inputs.total_dose_e_per_a2 == pytest.approx(truth["total_dose_e_per_a2"], rel=1e-5)
        assert inputs.gain_path and Path(inputs.gain_path).resolve() == layout.gain.resolve()
        _check_gain_orientation(registered[exposure.movie.name], exposure)
    assert WatchedFile.objects.get(path=str(layout.exposures[3].movie)).state == WatchedFile.State.BROKEN
    time.sleep(0.05)
    quiet = restarted.run_pass()  # nothing changed: every directory stat-ed, none listed, nothing registered
    assert quiet.directories_listed == 0 and quiet.new_files == 0 and quiet.registered == 0
    third = Watcher(layout.directory, options).run_pass()  # a restart lists nothing either
    assert third.directories_listed == 0 and third.registered == 0
    assert m.AcquisitionImageData.objects.filter(session__name="sem1").count() == 5


def test_a_usc_tree_registers_each_session_with_its_project_and_user(tmp_path, staging):
    raw = usc_session_dir(tmp_path, "proj7", "alice", "s1")
    layout = layout_prepare(SPEC, style="serialem", directory=raw, staging=staging, **FRAMES)
    for exposure in layout.exposures[:2]:
        exposure_place(exposure)
    other = usc_session_dir(tmp_path, "proj7", "bob", "s2")
    other.mkdir(parents=True)
    _drive(Watcher(tmp_path, WatchOptions(layout="usc", **FAST)), lambda r: _n_registered() == 2 and r.sessions == 2)
    session = m.SessionData.objects.get(name="s1")
    assert session.user.username == "alice"
    assert session.image_path == str(tmp_path / "proj7/sessions/alice/s1/processed/rawdata")
    session_ids = list(m.SessionData.objects.filter(name__in=["s1", "s2"]).values_list("id", flat=True))
    project_ids = set(m.ProjectExperiment.objects.filter(session_id__in=session_ids).values_list("project_id",
                                                                                               flat=True))
    assert [p.name for p in m.Project.objects.filter(id__in=project_ids)] == ["proj7"]
    assert m.SessionData.objects.get(name="s2").user.username == "bob"
    assert m.SessionData.objects.filter(name="s1_ref", hidden=True).exists()


def test_a_movie_without_metadata_waits_then_fails_naming_what_is_missing_until_its_mdoc_arrives(tmp_path, staging):
    layout = layout_prepare(SPEC, style="serialem", directory=tmp_path / "plain1", staging=staging, **FRAMES)
    exposure = layout.exposures[0]
    exposure.movie.write_bytes(exposure.staged.read_bytes())  # the movie, and no mdoc yet
    os.unlink(layout.gain)
    watcher = Watcher(layout.directory, WatchOptions(**FAST))
    report = _drive(watcher, lambda r: r.failed == 1)
    row = WatchedFile.objects.get(path=str(exposure.movie))
    assert "no voltage" in row.reason and row.error_kind == "CorruptInput"
    assert not m.AcquisitionImageData.objects.filter(session__name="plain1").exists()
    assert report.registered == 0
    exposure.metadata.write_text(exposure.metadata_text)  # SerialEM writes the mdoc late: the movie is retried
    _drive(watcher, lambda r: _n_registered() == 1)
    inputs = exposure_inputs_get(m.AcquisitionImageData.objects.get(session__name="plain1").pk)
    truth = _truth(exposure)
    assert inputs.voltage_kv == pytest.approx(truth["voltage_kv"])
    assert inputs.total_dose_e_per_a2 == pytest.approx(truth["total_dose_e_per_a2"], rel=1e-5)


def test_a_plain_folder_registers_from_headers_and_options(tmp_path, staging):
    layout = layout_prepare(SPEC, style="serialem", directory=tmp_path / "plain2", staging=staging, **FRAMES)
    exposure = layout.exposures[1]
    exposure.movie.write_bytes(exposure.staged.read_bytes())
    os.unlink(layout.gain)
    options = WatchOptions(metadata="none", overrides=Overrides(voltage_kv=300.0, dose_per_frame_e_per_a2=4.0), **FAST)
    _drive(Watcher(layout.directory, options), lambda r: _n_registered() == 1)
    inputs = exposure_inputs_get(m.AcquisitionImageData.objects.get(session__name="plain2").pk)
    assert inputs.voltage_kv == pytest.approx(300.0) and inputs.pixel_size_angstrom == pytest.approx(1.0)  # header
    assert inputs.total_dose_e_per_a2 == pytest.approx(4.0 * 6) and inputs.gain_path is None


def test_a_gain_that_does_not_fit_the_frames_fails_the_movie_naming_the_gain(tmp_path, staging):
    layout = layout_prepare(SPEC, style="epu", directory=tmp_path / "badgain", staging=staging, **FRAMES)
    import tifffile

    tifffile.imwrite(layout.gain, np.ones((128, 256), dtype=np.float32))
    exposure_place(layout.exposures[0])
    _drive(Watcher(layout.directory, WatchOptions(**FAST)), lambda r: r.failed == 1)
    row = WatchedFile.objects.get(path=str(layout.exposures[0].movie))
    assert str(layout.gain) in row.reason and "128x256" in row.reason
    assert not m.AcquisitionImageData.objects.filter(session__name="badgain").exists()


def test_the_admin_shows_the_registry(tmp_path, staging, client):
    from django.contrib.auth.models import User
    from django.urls import reverse

    from semc.ingest.models import WatchedSession

    layout = layout_prepare(SPEC, style="serialem", directory=tmp_path / "adm1", staging=staging, **FRAMES)
    exposure_place(layout.exposures[0])
    exposure_place_truncated(layout.exposures[1], fraction=0.5)
    _drive(Watcher(layout.directory, WatchOptions(**FAST)), lambda r: _n_registered() == 1 and r.broken == 1)
    client.force_login(User.objects.create_superuser("admin", password="pw-for-tests"))
    for model in (WatchedSession, WatchedFile):
        name = model._meta.model_name
        listing = client.get(reverse(f"admin:semc_ingest_{name}_changelist"))
        assert listing.status_code == 200
        row = model.objects.order_by("pk").first()
        page = client.get(reverse(f"admin:semc_ingest_{name}_change", args=[row.pk]))
        assert page.status_code == 200 and str(tmp_path / "adm1") in page.content.decode()
    broken = client.get(reverse("admin:semc_ingest_watchedfile_changelist") + "?state=broken").content.decode()
    assert layout.exposures[1].movie.name in broken and layout.exposures[0].movie.name not in broken


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_run_until_idle_registers_what_arrives_while_it_runs_then_exits(tmp_path, staging):
    layout = layout_prepare(SPEC, style="epu", directory=tmp_path / "idle1", staging=staging, **FRAMES)
    exposure_place(layout.exposures[0])
    later = threading.Timer(0.8, exposure_place, args=(layout.exposures[1],))
    later.start()
    started = time.monotonic()
    totals = Watcher(layout.directory, WatchOptions(**FAST)).run(interval_s=0.1, idle_exit_s=1.5)
    later.join()
    assert totals.registered == 2 and totals.waiting == 0
    assert time.monotonic() - started >= 0.8 + 1.5 - 0.2  # it kept watching until the second one, then idled
    assert m.AcquisitionImageData.objects.filter(session__name="idle1").count() == 2


def test_epu_movies_written_apart_from_their_xml_find_it_under_the_metadata_root(tmp_path, staging):
    layout = layout_prepare(SPEC, style="epu", directory=tmp_path / "epu_session", staging=staging, **FRAMES)
    exposure = layout.exposures[0]
    exposure_place(exposure)  # XML and movie in the EPU session folder; now move the movie to the movie store
    movies = tmp_path / "movies"
    moved = movies / exposure.movie.relative_to(layout.directory)
    moved.parent.mkdir(parents=True)
    os.replace(exposure.movie, moved)
    options = WatchOptions(metadata_root=layout.directory, metadata_wait_s=60.0,
                           **{k: v for k, v in FAST.items() if k != "metadata_wait_s"})
    _drive(Watcher(movies, options), lambda r: _n_registered() == 1)
    inputs = exposure_inputs_get(m.AcquisitionImageData.objects.get(session__name="movies").pk)
    assert inputs.total_dose_e_per_a2 == pytest.approx(_truth(exposure)["total_dose_e_per_a2"])
    assert WatchedFile.objects.get(path=str(moved)).metadata_path == str(exposure.metadata)


@pytest.mark.parametrize("orientation", [(1, 2), (2, 0), (3, 1)])
def test_the_gain_orientation_is_found_from_the_first_movie_when_asked(tmp_path, staging, orientation):
    layout = layout_prepare(SPEC, style="epu", directory=tmp_path / "auto1", staging=staging, **FRAMES,
                            gain_orientation=orientation)
    for exposure in layout.exposures[:2]:
        exposure_place(exposure)
    _drive(Watcher(layout.directory, WatchOptions(gain_orientation_auto=True, **FAST)),
           lambda r: _n_registered() == 2)
    registered = _registered("auto1")
    for exposure in layout.exposures[:2]:
        _check_gain_orientation(registered[exposure.movie.name], exposure)
    gain_row = WatchedFile.objects.get(kind=WatchedFile.Kind.GAIN)
    rotate, flip = gain_row.details["orientation"]
    stored = np.asarray(load_gain(layout.gain), dtype=np.float32)
    expected = orient_gain(stored, rotate_90=orientation[0], flip=orientation[1])
    assert np.array_equal(orient_gain(stored, rotate_90=rotate, flip=flip), expected)


def test_gain_orientation_detection_refuses_to_guess_on_corrected_movies():
    from semc.base.errors import CorruptInput
    from semc.ingest.register import gain_orientation_detect

    rng = np.random.default_rng(0)
    gain = rng.uniform(0.8, 1.2, size=(64, 64))
    corrected = rng.poisson(50.0, size=(64, 64)).astype(float)  # no trace of the gain left
    with pytest.raises(CorruptInput, match="cannot tell"):
        gain_orientation_detect(gain, corrected, path="g.gain")
    raw = rng.poisson(50.0 / orient_gain(gain, rotate_90=1, flip=1)).astype(float)
    (rotate, flip), scores = gain_orientation_detect(gain, raw, path="g.gain")
    assert (rotate, flip) == (1, 1) and len(scores) == 8
    with pytest.raises(CorruptInput, match="fits frames"):
        gain_orientation_detect(gain, raw[:32], path="g.gain")
