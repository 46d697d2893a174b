"""The classic scripts end to end on a simulated session (SQLite here; MariaDB in CI's second pass): the same
rows and files as `semc loop` with the same parameters, classic provenance and job letters, ctffind4.py on
the aligned images, and --no-commit writing nothing to any database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from semc import models as m
from semc.classic import ctffind4, makeddalign
from tests.classic.conftest import (
    FRAMES,
    N_IMAGES,
    SIZE,
    files_of,
    max_ids,
    new_rows,
    row_counts,
    rows_delete,
)

pytestmark = [pytest.mark.django_db(databases="__all__", transaction=True), pytest.mark.slow]


def _classic_argv(rundir: Path, project_id: int, *extra: str) -> list[str]:
    return ["--session=26nov23a", "--preset=enn", f"--rundir={rundir}", "--runname=ddstack1", "--no-wait",
            "--align", "--doseweight", "--Patchrows=0", "--Patchcols=0", "--Iter=5", "--Tol=0.5",
            "--Bft_global=500", "--Bft_local=100", "--nrw=1", "--rendered_frame_size=1", "--alignlabel=a",
            f"--projectid={project_id}", "--no-rejects", "--continue", "--parallel", "--commit",
            "--cluster=local", "--nproc=1", "--poll-interval=0.2", *extra]


def _loop_argv(rundir: Path) -> list[str]:
    return ["loop", "--session", "26nov23a", "--preset", "enn", "--steps", "motioncorrection", "--rundir",
            str(rundir), "--runname", "ddstack1", "--no-wait", "--patches", "0,0", "--iterations", "5",
            "--tolerance", "0.5", "--bfactor", "500,100", "--bin", "1", "--alignlabel", "a", "--eer-fraction", "1",
            "--cluster", "local", "--workers", "1", "--poll-interval", "0.2"]


def _aligned_files(image_path: Path) -> dict[str, bytes]:
    """Aligned sums by name: their pixels and pixel size (the header also holds a creation date)."""
    import mrcfile

    out = {}
    for path in image_path.glob("*-a*.mrc"):
        with mrcfile.open(path, permissive=False) as mrc:
            out[path.name] = mrc.data.tobytes() + str(mrc.voxel_size).encode()
    return out


def test_makeddalign_stores_the_same_rows_and_files_as_semc_loop(tmp_path, movie_session):
    from semc.cli import main as semc_main
    from semc.commands import loop as loop_command

    image_path = Path(movie_session.session.image_path)
    classic_dir, loop_dir = tmp_path / "classic" / "ddstack1", tmp_path / "loop" / "ddstack1"
    project = movie_session.project.pk

    # the same parameters, built both ways (the run directory aside)
    args = makeddalign.parser_build(env={}).parse(_classic_argv(classic_dir, project))
    classic_context = makeddalign.RunContext(session_name="26nov23a", session_id=movie_session.session.pk,
                                             project_id=project, rundir=str(loop_dir), runname="ddstack1")
    classic_params, _, _ = makeddalign.params_build(args, classic_context)
    import argparse

    parser = argparse.ArgumentParser()
    loop_command.add_arguments(parser)
    loop_params = loop_command.loop_params_from_args(parser.parse_args(_loop_argv(loop_dir)[1:]))
    assert classic_params.pipeline == loop_params.pipeline
    assert classic_params.engines == loop_params.engines

    before = max_ids()
    assert makeddalign.main(_classic_argv(classic_dir, project)) == 0
    classic_rows, classic_files = new_rows(before), files_of(classic_dir)
    classic_aligned = _aligned_files(image_path)
    assert len(classic_rows["ApDDAlignImagePairData"]) == 2 * N_IMAGES
    assert len(classic_aligned) == 2 * N_IMAGES and len(classic_rows["ApDDFrameTrajectoryData"]) == N_IMAGES
    # classic-only provenance: the job row (letters, jobtype), Script* rows and <function>.log
    job = m.ApAppionJobData.objects.get(pk__gt=before[m.ApAppionJobData])
    assert (job.status, job.jobtype, job.name) == ("D", "makeddrawframestack", "ddstack1.appionsub.job")
    run = m.ScriptProgramRun.objects.get(pk__gt=before[m.ScriptProgramRun])
    assert run.progname.name == "makeDDAlignMotionCor2_UCSF" and run.job_id == job.pk and run.runname == "ddstack1"
    usages = set(m.ScriptParamValue.objects.filter(progrun=run).values_list("usage", flat=True))
    assert {"--doseweight", "--Patchrows=0", "--no-wait", "--preset=enn", "--no-rejects"} <= usages
    assert "--preset=enn" in (classic_dir / "makeDDAlignMotionCor2_UCSF.log").read_text()

    rows_delete(before)
    for name in classic_aligned:
        (image_path / name).unlink()
    assert semc_main(_loop_argv(loop_dir)) == 0
    loop_rows, loop_files = new_rows(before), files_of(loop_dir)
    assert loop_rows == classic_rows
    assert loop_files.keys() == classic_files.keys() and loop_files == classic_files
    assert _aligned_files(image_path) == classic_aligned


def test_ctffind4_fits_each_image_around_its_own_defocus_with_classic_rows(tmp_path, movie_session):
    """ctffind4.py on a preset's micrographs (here the raw ones, written as frame sums)."""
    import mrcfile

    for image in movie_session.images:
        with mrcfile.open(Path(movie_session.session.frame_path) / f"{image.filename}.frames.mrc") as movie:
            total = movie.data.sum(axis=0).astype("float32")
        with mrcfile.new(Path(movie_session.session.image_path) / image.image) as mrc:
            mrc.set_data(total)
    project = movie_session.project.pk
    ctf_dir = tmp_path / "ctf" / "ctffind4run1"
    ctf_argv = ["--session=26nov23a", "--preset=enn", f"--rundir={ctf_dir}", "--ampcontrast=0.07",
                "--fieldsize=128", "--resmin=30", "--resmax=6", "--defstep=0.1", "--numstep=25", "--dast=0.05",
                f"--projectid={project}", "--no-wait", "--commit", "--cluster=local", "--nproc=1",
                "--poll-interval=0.2", "--jobtype=ctfestimate"]
    before = max_ids()
    assert ctffind4.main(ctf_argv) == 0
    rows = list(m.ApCtfData.objects.filter(pk__gt=before[m.ApCtfData]))
    images = {i.pk: i for i in movie_session.images}
    assert sorted(r.image_id for r in rows) == sorted(images)
    for row in rows:
        scope_defocus = abs(m.AcquisitionImageData.objects.get(pk=row.image_id).scope.defocus)
        assert row.defocusinit == pytest.approx(scope_defocus)  # classic start: the microscope's defocus
        assert abs(row.defocus1) <= abs(row.defocus2) and -90 < row.angle_astigmatism <= 90
        assert row.acerun.name == "ctffind4run1" and (ctf_dir / "opimages" / row.graph3).is_file()
    job = m.ApAppionJobData.objects.get(pk__gt=before[m.ApAppionJobData])
    assert (job.status, job.jobtype, job.name) == ("D", "ctfestimate", "ctffind4run1.appionsub.job")
    assert m.ScriptProgramRun.objects.get(pk__gt=before[m.ScriptProgramRun]).progname.name == "ctffind4"


def test_no_commit_writes_nothing_to_any_database_and_leaves_the_outputs_in_the_run_dir(tmp_path, movie_session):
    rundir = tmp_path / "dry" / "ddstack1"
    counts = row_counts()
    argv = ["--session=26nov23a", f"--rundir={rundir}", "--no-commit", "--align", "--doseweight",
            "--Iter=5", "--cluster=local", "--nproc=1", "--mrclist=" + movie_session.images[1].filename]
    assert makeddalign.main(argv) == 0
    assert row_counts() == counts
    name = movie_session.images[1].filename
    produced = sorted(p.name for p in rundir.iterdir() if not p.name.startswith("."))
    assert produced == sorted([f"{name}_c.mrc", f"{name}_c_DW.mrc", f"{name}_st_Log.txt",
                               f"{name}_motioncorrection.db.json", "makeDDAlignMotionCor2_UCSF.log"])
    summary = json.loads((rundir / f"{name}_motioncorrection.db.json").read_text())
    assert summary["exposure_id"] == movie_session.images[1].pk
    assert summary["would_store"]["output_shape"] == [SIZE, SIZE] and summary["would_store"]["n_frames"] == FRAMES
    assert (rundir / f"{name}_st_Log.txt").read_text().startswith(f"Sum Frame #000 - #{FRAMES:03d}")
    assert not list(Path(movie_session.session.image_path).glob("*-a*"))


def test_a_bad_command_line_or_session_touches_nothing(tmp_path, movie_session, capsys):
    counts = row_counts()
    rundir = tmp_path / "x" / "ddstack1"
    assert makeddalign.main(["--session=nosuchsession", f"--rundir={rundir}", "--no-wait"]) == 1
    assert "nosuchsession" in capsys.readouterr().err
    assert makeddalign.main(["--session=26nov23a", "--preset=enn", "--mrclist=a", f"--rundir={rundir}"]) == 2
    assert "mutually exclusive" in capsys.readouterr().err
    assert makeddalign.main(["--session=26nov23a", f"--rundir={rundir}", "--projectid=999"]) == 2
    assert "not --projectid 999" in capsys.readouterr().err
    assert row_counts() == counts and not rundir.exists()
