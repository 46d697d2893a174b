"""SEMC configuration: precedence env > semc.toml > sinedon.cfg > defaults; typed values; clear errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from semc.base.errors import ConfigurationError
from semc.config import config_lines, config_load


def _env(tmp_path, **extra):
    return {"HOME": str(tmp_path), "SEMC_HOME": str(tmp_path / "home"), **extra}


def test_defaults_are_standalone_sqlite_with_sources_named(tmp_path):
    config = config_load(_env(tmp_path))
    assert config["mode"] == "standalone" and config["database.backend"] == "sqlite"
    assert config.sources["mode"] == "default"
    assert config.sources["home"] == "environment SEMC_HOME"
    assert config["debug"] is False


def test_file_values_override_defaults_and_environment_overrides_the_file(tmp_path):
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "semc.toml").write_text(
        'debug = true\nallowed_hosts = ["a.example"]\n[database]\nbackend = "mysql"\nport = 3310\n')
    config = config_load(_env(tmp_path, SEMC_DB_PORT="3311"))
    assert config["debug"] is True and config["allowed_hosts"] == ["a.example"]
    assert config["database.backend"] == "mysql"
    assert config["database.port"] == 3311 and config.sources["database.port"] == "environment SEMC_DB_PORT"
    assert config.sources["debug"].startswith("file ") and config.sources["debug"].endswith("semc.toml")


@pytest.mark.parametrize("env,key", [
    ({"SEMC_DB_PORT": "abc"}, "database.port"),
    ({"SEMC_MODE": "cloud"}, "mode"),
    ({"SEMC_DEBUG": "maybe"}, "debug"),
    ({"SEMC_DB_BACKEND": "oracle"}, "database.backend"),
])
def test_a_bad_value_names_its_key_and_source(tmp_path, env, key):
    with pytest.raises(ConfigurationError) as info:
        config_load(_env(tmp_path, **env))
    assert info.value.key == key
    assert "environment" in info.value.source


def test_an_unknown_key_in_the_file_is_refused(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text('[database]\nhots = "typo"\n')
    with pytest.raises(ConfigurationError, match="database.hots") as info:
        config_load(_env(tmp_path, SEMC_CONFIG=str(path)))
    assert info.value.source == str(path)


def test_attached_mode_takes_leginon_and_project_databases_from_sinedon_cfg(tmp_path):
    (tmp_path / "sinedon.cfg").write_text(
        "[global]\nhost: h\nuser: u\npasswd: p\n[leginondata]\ndb: legdb\n[projectdata]\ndb: prjdb\n")
    config = config_load(_env(tmp_path, SEMC_MODE="attached"))
    assert config["database.leginon"] == "legdb" and config["database.projects"] == "prjdb"
    assert config.sources["database.leginon"].startswith("sinedon.cfg")
    assert config["database.appion"] == "ap1" and config.sources["database.appion"] == "default"


def test_attached_mode_without_a_leginon_database_stops_with_a_named_key(tmp_path):
    with pytest.raises(ConfigurationError) as info:
        config_load(_env(tmp_path, SEMC_MODE="attached"))
    assert info.value.key == "database.leginon"


def test_environment_beats_sinedon_cfg_in_attached_mode(tmp_path):
    (tmp_path / "sinedon.cfg").write_text("[global]\nhost: h\nuser: u\n[leginondata]\ndb: legdb\n[projectdata]\ndb: p\n")
    config = config_load(_env(tmp_path, SEMC_MODE="attached", SEMC_DB_LEGINON="override"))
    assert config["database.leginon"] == "override"


def test_secrets_are_masked_in_the_printed_configuration(tmp_path):
    config = config_load(_env(tmp_path, SEMC_DB_PASSWORD="hunter2", SEMC_SECRET_KEY="k" * 40))
    text = "\n".join(config_lines(config))
    assert "hunter2" not in text and "k" * 40 not in text and "********" in text
    assert "hunter2" in "\n".join(config_lines(config, show_secrets=True))


def test_semc_config_command_prints_sources_and_fails_clearly_on_bad_values(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SEMC_HOME": str(tmp_path / "h"),
           "SEMC_DB_PASSWORD": "hunter2"}
    ok = subprocess.run([sys.executable, "-m", "semc", "config"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "database.password = '********'   (environment SEMC_DB_PASSWORD)" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "semc", "config"], env={**env, "SEMC_DB_PORT": "x"},
                         capture_output=True, text=True)
    assert bad.returncode == 1
    assert "database.port" in bad.stderr and "SEMC_DB_PORT" in bad.stderr
    assert "Traceback" not in bad.stderr
