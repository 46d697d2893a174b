"""The `semc` command and manage.py on a fresh data directory (standalone SQLite, and attached MariaDB)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(args, env, check=True):
    proc = subprocess.run([sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=180)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def fresh_env(tmp_path):
    return {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "SEMC_HOME": str(tmp_path / "semc-home"),
            "SEMC_CONFIG": "none"}


def test_init_creates_all_four_databases_and_is_idempotent(fresh_env):
    first = _run(["-m", "semc", "init"], fresh_env)
    assert "default project: 1 (SEMC)" in first.stdout
    home = Path(fresh_env["SEMC_HOME"])
    assert {p.name for p in home.glob("*.sqlite3")} == {"semc.sqlite3", "leginondb.sqlite3", "projectdb.sqlite3",
                                                        "ap1.sqlite3"}
    assert oct((home / "secret_key").stat().st_mode & 0o777) == "0o600"
    second = _run(["-m", "semc", "init"], fresh_env)
    assert "0 classic tables created" in second.stdout
    with sqlite3.connect(home / "projectdb.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM projects").fetchone()[0] == 1
        assert db.execute("SELECT appiondb FROM processingdb").fetchall() == [("ap1",)]


def test_createsuperuser_works_on_a_fresh_standalone_home(fresh_env):
    _run(["-m", "semc", "init"], fresh_env)
    env = {**fresh_env, "DJANGO_SUPERUSER_PASSWORD": "a-long-test-password-1"}
    _run(["manage.py", "createsuperuser", "--noinput", "--username", "boss", "--email", "boss@example.org"], env)
    with sqlite3.connect(Path(fresh_env["SEMC_HOME"]) / "semc.sqlite3") as db:
        assert db.execute("SELECT username, is_superuser FROM auth_user").fetchall() == [("boss", 1)]


def test_semc_without_a_command_prints_help_and_fails(fresh_env):
    proc = _run(["-m", "semc"], fresh_env, check=False)
    assert proc.returncode == 2 and "init" in proc.stdout


@pytest.mark.mariadb
@pytest.mark.skipif(not os.environ.get("SEMC_TEST_MYSQL_HOST"), reason="no MariaDB test server (scripts/mariadb-up.sh)")
def test_init_and_createsuperuser_on_mariadb_standalone(fresh_env):
    import secrets

    tag = secrets.token_hex(3)
    env = {**fresh_env, "SEMC_DB_BACKEND": "mysql", "SEMC_DB_HOST": os.environ["SEMC_TEST_MYSQL_HOST"],
           "SEMC_DB_PORT": os.environ["SEMC_TEST_MYSQL_PORT"], "SEMC_DB_USER": os.environ["SEMC_TEST_MYSQL_USER"],
           "SEMC_DB_PASSWORD": os.environ["SEMC_TEST_MYSQL_PASSWORD"], "SEMC_DB_SEMC": f"semc_{tag}",
           "SEMC_DB_LEGINON": f"leg_{tag}", "SEMC_DB_PROJECTS": f"prj_{tag}", "SEMC_DB_APPION": f"ap_{tag}"}
    import MySQLdb

    try:
        assert "classic tables created" in _run(["-m", "semc", "init"], env).stdout
        _run(["manage.py", "createsuperuser", "--noinput", "--username", "boss", "--email", "b@example.org"],
             {**env, "DJANGO_SUPERUSER_PASSWORD": "a-long-test-password-1"})
        conn = MySQLdb.connect(host=env["SEMC_DB_HOST"], port=int(env["SEMC_DB_PORT"]), user=env["SEMC_DB_USER"],
                               password=env["SEMC_DB_PASSWORD"], database=f"semc_{tag}")
        cur = conn.cursor()
        cur.execute("SELECT username FROM auth_user")
        assert cur.fetchall() == (("boss",),)
        conn.close()
    finally:
        conn = MySQLdb.connect(host=env["SEMC_DB_HOST"], port=int(env["SEMC_DB_PORT"]), user=env["SEMC_DB_USER"],
                               password=env["SEMC_DB_PASSWORD"], autocommit=True)
        for name in (f"semc_{tag}", f"leg_{tag}", f"prj_{tag}", f"ap_{tag}"):
            conn.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()
