"""Attached mode against a real MariaDB: the classic schema made the way Leginon makes it (plain CREATE TABLE,
MyISAM, extra columns SEMC does not model); SEMC reads and writes rows there and issues no DDL."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.models.schema_spec import ALL

MYSQL = {k: os.environ.get(f"SEMC_TEST_MYSQL_{k.upper()}") for k in ("host", "port", "user", "password")}
pytestmark = [
    pytest.mark.mariadb,
    pytest.mark.skipif(not MYSQL["host"], reason="no MariaDB test server (run scripts/mariadb-up.sh, which CI does)"),
]

_TYPES = {"INT": "INT(20)", "DOUBLE": "DOUBLE", "TINYINT": "TINYINT(1)", "TEXT": "TEXT"}
#: columns real classic tables have and SEMC does not model (compat §1.4 "classic extra")
_EXTRA = {"SessionData": {"REF|InstrumentData|instrument": "INT", "uid": "INT", "gid": "INT"},
          "AcquisitionImageData": {"REF|PhasePlateUsageData|phase plate": "INT"}}


def _ddl(table: str, columns: dict[str, str]) -> str:
    parts = []
    for name, kind in {**columns, **_EXTRA.get(table, {})}.items():
        if name == "DEF_id":
            parts.append("`DEF_id` INT(20) NOT NULL AUTO_INCREMENT PRIMARY KEY")
        elif kind == "TIMESTAMP":
            parts.append(f"`{name}` TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP")
        else:
            parts.append(f"`{name}` {_TYPES.get(kind, kind)} NULL")
    return f"CREATE TABLE `{table}` ({', '.join(parts)}) ENGINE=MyISAM DEFAULT CHARSET=latin1"


def _connect(db: str | None = None):
    import MySQLdb

    return MySQLdb.connect(host=MYSQL["host"], port=int(MYSQL["port"]), user=MYSQL["user"],
                           password=MYSQL["password"], database=db or "", autocommit=True)


@pytest.fixture
def classic_server(tmp_path):
    """Three classic databases filled the way Leginon/myamiweb would, plus an empty SEMC state database."""
    tag = secrets.token_hex(3)
    names = {"leginon": f"leg_{tag}", "projects": f"prj_{tag}", "appion": f"ap5_{tag}", "semc": f"semc_{tag}"}
    conn = _connect()
    cur = conn.cursor()
    for name in names.values():
        cur.execute(f"CREATE DATABASE `{name}`")
    for kind in ("leginon", "projects", "appion"):
        cur.execute(f"USE `{names[kind]}`")
        for table, columns in ALL[kind].items():
            cur.execute(_ddl(table, columns))
    cur.execute(f"USE `{names['leginon']}`")
    cur.execute("INSERT INTO `SessionData` (`name`, `image path`, `frame path`, `uid`) "
                "VALUES ('26nov23b', '/d/leginon/26nov23b/rawdata', '/d/frames/26nov23b/rawdata', 1000)")
    session_id = cur.lastrowid
    cur.execute("INSERT INTO `PresetData` (`REF|SessionData|session`, `name`, `dose`) VALUES (%s, 'enn', 5.4e21)",
                [session_id])
    preset_id = cur.lastrowid
    cur.execute("INSERT INTO `AcquisitionImageData` (`REF|SessionData|session`, `REF|PresetData|preset`, `filename`,"
                " `MRC|image`, `REF|PhasePlateUsageData|phase plate`) VALUES (%s, %s, '26nov23b_00001enn',"
                " '26nov23b_00001enn.mrc', 0)", [session_id, preset_id])
    cur.execute(f"USE `{names['projects']}`")
    cur.execute("INSERT INTO `projects` (`name`) VALUES ('p5')")
    project_id = cur.lastrowid
    cur.execute("INSERT INTO `processingdb` (`REF|projects|project`, `appiondb`) VALUES (%s, %s)",
                [project_id, names["appion"]])
    cur.execute("INSERT INTO `projectexperiments` (`REF|projects|project`, `REF|leginondata|SessionData|session`)"
                " VALUES (%s, %s)", [project_id, session_id])
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "sinedon.cfg").write_text(
        f"[global]\nhost: {MYSQL['host']}\nuser: {MYSQL['user']}\npasswd: {MYSQL['password']}\n"
        f"port: {MYSQL['port']}\n\n[leginondata]\ndb: {names['leginon']}\n\n[projectdata]\ndb = {names['projects']}\n"
        "\n[appiondata]\ndb:\n")
    yield names, tmp_path
    for name in names.values():
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()


def _schema_fingerprint(names: dict[str, str]) -> list[tuple]:
    conn = _connect()
    cur = conn.cursor()
    cur.execute("SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA IN (%s, %s, %s) ORDER BY 1, 2, 3",
                [names["leginon"], names["projects"], names["appion"]])
    rows = cur.fetchall()
    conn.close()
    return rows


def test_attached_semc_reads_and_writes_classic_rows_and_issues_no_ddl(classic_server):
    names, tmp_path = classic_server
    before = _schema_fingerprint(names)
    env = {**os.environ, "SEMC_MODE": "attached", "SINEDON_CFG_PATH": str(tmp_path / "cfg"),
           "SEMC_HOME": str(tmp_path / "home"), "SEMC_CONFIG": "none", "SEMC_DB_BACKEND": "mysql",
           "SEMC_DB_HOST": MYSQL["host"], "SEMC_DB_PORT": MYSQL["port"], "SEMC_DB_USER": MYSQL["user"],
           "SEMC_DB_PASSWORD": MYSQL["password"], "SEMC_DB_SEMC": names["semc"]}
    for key in ("SEMC_DB_LEGINON", "SEMC_DB_PROJECTS", "SEMC_DB_APPION"):
        env.pop(key, None)
    proc = subprocess.run([sys.executable, "-m", "tests.models.attached_probe", "26nov23b"], env=env,
                          cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["raw_filename"] == "26nov23b_00001enn"
    assert report["appion_alias"] == names["appion"]
    ddl = ("CREATE", "ALTER", "DROP", "RENAME", "TRUNCATE")
    classic_ddl = [sql for alias, sql in report["statements"]
                   if alias != "default" and sql.lstrip().upper().startswith(ddl)]
    assert classic_ddl == []
    assert any(alias == "default" and sql.upper().startswith("CREATE TABLE") for alias, sql in report["statements"])
    assert _schema_fingerprint(names) == before
    conn = _connect(names["leginon"])
    cur = conn.cursor()
    cur.execute("SELECT `filename`, `DEF_timestamp` FROM `AcquisitionImageData` WHERE `DEF_id` = %s",
                [report["aligned_id"]])
    filename, timestamp = cur.fetchone()
    assert filename == "26nov23b_00001enn-a" and timestamp is not None
    cur.execute(f"SELECT `defocus1`, `REF|leginondata|AcquisitionImageData|image` FROM `{names['appion']}`.`ApCtfData`")
    assert cur.fetchall() == ((1.0e-6, report["aligned_id"]),)
    conn.close()
