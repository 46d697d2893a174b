"""sinedon.cfg: classic lookup rules, merging, per-section overrides, and clear errors."""

from __future__ import annotations

import pytest

from semc.base.errors import ConfigurationError
from semc.sinedon_cfg import sinedon_cfg_parse, sinedon_cfg_paths, sinedon_cfg_read

CLASSIC = """[global]
host: db.example.org
user: usr_object
passwd: s3cret

[leginondata]
db: leginondb

[projectdata]
db = projectdb

[appiondata]
db:
"""


def test_classic_file_gives_leginon_and_project_databases_and_no_appion():
    cfg = sinedon_cfg_parse([("a", CLASSIC)])
    assert (cfg.leginon.name, cfg.leginon.host, cfg.leginon.user, cfg.leginon.password, cfg.leginon.port) == (
        "leginondb", "db.example.org", "usr_object", "s3cret", 3306)
    assert cfg.projects.name == "projectdb"
    assert cfg.appion is None


def test_section_keys_override_global_ones_and_port_is_read():
    text = CLASSIC.replace("[projectdata]\ndb = projectdb\n", "[projectdata]\ndb = projectdb\nhost: other\nport: 3307\n")
    cfg = sinedon_cfg_parse([("a", text)])
    assert cfg.projects.host == "other" and cfg.projects.port == 3307
    assert cfg.leginon.host == "db.example.org"


def test_later_files_override_earlier_ones():
    cfg = sinedon_cfg_parse([("etc", CLASSIC), ("home", "[leginondata]\ndb: leginon_test\n")])
    assert cfg.leginon.name == "leginon_test" and cfg.leginon.source == "home"
    assert cfg.projects.name == "projectdb" and cfg.projects.source == "etc"


def test_password_never_appears_in_the_repr():
    cfg = sinedon_cfg_parse([("a", CLASSIC)])
    assert "s3cret" not in repr(cfg)


@pytest.mark.parametrize("text,key", [
    ("[leginondata]\ndb: x\n", "leginondata.host"),
    ("[global]\nhost: h\n[leginondata]\ndb: x\n", "leginondata.user"),
    (CLASSIC + "\n[global]\nport: many\n", "leginondata.port"),
    (CLASSIC + "\n[global]\nport: 70000\n", "leginondata.port"),
])
def test_missing_or_invalid_values_name_the_key_and_the_file(text, key):
    with pytest.raises(ConfigurationError) as info:
        sinedon_cfg_parse([("/etc/myami/sinedon.cfg", text)])
    assert info.value.key == key
    assert "/etc/myami/sinedon.cfg" in str(info.value)


def test_unparseable_file_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="cannot parse"):
        sinedon_cfg_parse([("f", "no section header\n")])


def test_lookup_reads_home_and_sinedon_cfg_path_with_the_explicit_directory_winning(tmp_path):
    home, explicit = tmp_path / "home", tmp_path / "explicit"
    home.mkdir(), explicit.mkdir()
    (home / "sinedon.cfg").write_text(CLASSIC)
    (explicit / "sinedon.cfg").write_text("[leginondata]\ndb: from_env\n")
    env = {"HOME": str(home), "SINEDON_CFG_PATH": str(explicit)}
    assert [p.parent for p in sinedon_cfg_paths(env)] == [home, explicit]
    cfg = sinedon_cfg_read(env)
    assert cfg.leginon.name == "from_env" and cfg.leginon.host == "db.example.org"


def test_sinedon_cfg_path_without_a_file_is_an_error(tmp_path):
    with pytest.raises(ConfigurationError, match="holds no sinedon.cfg") as info:
        sinedon_cfg_paths({"HOME": str(tmp_path), "SINEDON_CFG_PATH": str(tmp_path / "nowhere")})
    assert info.value.key == "SINEDON_CFG_PATH"


def test_no_file_anywhere_reads_as_none(tmp_path):
    assert sinedon_cfg_read({"HOME": str(tmp_path)}) is None
