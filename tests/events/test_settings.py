"""The events.* and qc.* configuration: typed, secrets masked, a bad QC rules file stops start-up naming
the key and the file."""

from __future__ import annotations

import pytest

from semc.base.errors import ConfigurationError
from semc.config import config_lines, config_load
from semc.events.hooks import EventSettings, routing_key


def _config(tmp_path, **env):
    return config_load({"SEMC_CONFIG": "none", "SEMC_HOME": str(tmp_path), "HOME": str(tmp_path), **env})


def test_settings_come_from_the_configuration_with_the_broker_password_masked(tmp_path):
    rules = tmp_path / "qc.toml"
    rules.write_text("consecutive_rejects = 6\n[charts.drift_total_A]\nlimit = 40.0\n")
    config = _config(tmp_path, SEMC_EVENTS_BROKER_URL="amqp://semc:s3cret@mq:5672/semc", SEMC_QC_RULES=str(rules),
                     SEMC_QC_NOTIFY_EMAIL="a@x.org, b@x.org", SEMC_EVENTS_PUBLISHER="external")
    settings = EventSettings.from_config(config)
    assert settings.outbox_enabled and settings.publisher == "external"
    assert settings.notify_email == ("a@x.org", "b@x.org") and settings.notify_enabled
    assert settings.rules.consecutive_rejects == 6 and settings.rules.chart("drift_total_A").limit == 40.0
    assert not any("s3cret" in line for line in config_lines(config))
    assert not EventSettings.from_config(_config(tmp_path)).outbox_enabled  # no broker: no messages


def test_a_bad_rules_file_names_the_key_and_the_file(tmp_path):
    rules = tmp_path / "qc.toml"
    rules.write_text("consecutive = 3\n")
    with pytest.raises(ConfigurationError, match="qc.rules.*unknown key") as info:
        EventSettings.from_config(_config(tmp_path, SEMC_QC_RULES=str(rules)))
    assert info.value.key == "qc.rules" and str(rules) in str(info.value)
    with pytest.raises(ConfigurationError, match="expected one of thread, external"):
        _config(tmp_path, SEMC_EVENTS_PUBLISHER="sometimes")


def test_routing_keys_are_words_a_broker_accepts():
    assert routing_key("semc", "semc.session.verdict", "26nov23a") == "semc.session.verdict.26nov23a"
    assert routing_key("semc", "semc.exposure.verdict", "my.session #1") == "semc.exposure.verdict.my_session__1"
