"""A simulated session processed by the real daemon (motion correction + CTF on a LocalCluster), for
the dashboard's page, picture and browser tests.

``SimulatedRun.process(k)`` writes Leginon's rows of the next ``k`` exposures (their movies are already
on disk, as Leginon's rawtransfer leaves them) and runs the daemon once over what exists, so a test can
make new results arrive while a page is open.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from tests.factories import chained_loop_params, daemon_run

PASSWORD = "dashboard-test-pw"  # a test user's password, in a throw-away test database


@dataclass
class SimulatedRun:
    root: Path
    name: str
    plan: object
    files: list
    written: int = 0
    rundir: str = ""
    session_id: int | None = None
    run_id: int | None = None
    failed_exposure_ids: list[int] = field(default_factory=list)

    def rows_write(self, count: int) -> None:
        from semc.simulation.leginon_rows import session_rows_write_leginon

        for exposure, files in list(zip(self.plan.exposures, self.files))[self.written:self.written + count]:
            session_rows_write_leginon(self.plan, exposure, files, acquired_at=files.movie.stat().st_mtime)
        self.written += count

    def process(self, count: int, *, corrupt_last: bool = False) -> None:
        """Write the rows of ``count`` more exposures and run the daemon once over the session."""

        if corrupt_last:  # a movie whose header is garbage: a real failure, quarantined at once
            movie = self.files[self.written + count - 1].movie
            with open(movie, "r+b") as handle:
                handle.write(b"\xff" * 1024)
        self.rows_write(count)
        controller = daemon_run(chained_loop_params(session=self.name, rundir=self.rundir, runname="run1",
                                                    max_attempts=1))
        self.session_id = controller.session.pk
        self.run_id = controller.run.pk


def simulated_run(root: Path, *, name: str, n_exposures: int) -> SimulatedRun:
    """Movies and ground truth of a small session on disk; no rows yet."""
    from semc.commands.init_databases import default_project_ensure
    from semc.simulation.session import SessionSpec, session_plan, session_run

    default_project_ensure()
    plan = session_plan(SessionSpec(name=name, root=root, n_exposures=n_exposures, camera="small", seed=5,
                                    defocus_range_um=(1.0, 2.5)))
    files = session_run(plan, realtime=False, rows_writer=None)
    rundir = root / "appion" / name / "run1"
    rundir.mkdir(parents=True)
    return SimulatedRun(root=root, name=name, plan=plan, files=files, rundir=str(rundir))


def user_create(username: str = "microscopist", *, staff: bool = False) -> User:
    return User.objects.create_user(username, password=PASSWORD, is_staff=staff)


@pytest.fixture(scope="module")
def processed_session(django_db_setup, django_db_blocker, tmp_path_factory):
    """Three exposures processed (the third one's movie is broken: quarantined), one more on disk without
    rows yet; committed once for the module, emptied afterwards."""
    with django_db_blocker.unblock():
        sim = simulated_run(tmp_path_factory.mktemp("dash"), name="dash26a", n_exposures=4)
        sim.process(3, corrupt_last=True)
        try:
            yield sim
        finally:
            _empty_every_database()


def _empty_every_database() -> None:
    from django.db import connections

    from semc.dbsettings import APPION, LEGINON, PROJECTS
    from semc.models.databases import classic_models
    from semc.models.semc import ExposureStep, ProcessingRun

    for alias in (LEGINON, PROJECTS, APPION):
        connection = connections[alias]
        with connection.cursor() as cursor:
            for model in classic_models(alias):
                cursor.execute(f"DELETE FROM {connection.ops.quote_name(model._meta.db_table)}")
    ExposureStep.objects.all().delete()
    ProcessingRun.objects.all().delete()
    User.objects.all().delete()
