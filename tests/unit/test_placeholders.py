"""One placeholder rule for every secret: the gateway, the agent and the simulator agree."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_sim.agent.config import AgentConfigError, settings_from_mapping
from firmware_sim.sim.fleet import FleetError, load_fleet
from gateway.config import ConfigError, GatewaySettings, load_settings
from ledger.placeholders import has_placeholder_password, is_placeholder
from voltproof.cli import main
from voltproof.cli.gateway import with_store_url

PLACEHOLDERS = [
    "...", "", "  ", "....", "change-me", "CHANGEME", "change_me",
    "changeit", "change-this", "password", "Secret", "example", "xxx", "todo", "<password>",
    "<the password broker-credentials wrote>",
]  # fmt: skip
REAL = ["kQ7-vB2mZx9_Lr4T", "exchange-2031-rate", "p4ssword!", "my.secret.key", "<a"]


@pytest.mark.parametrize("value", PLACEHOLDERS)
def test_placeholders_are_refused_everywhere(
    value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway, the agent and a fleet file refuse the same example values."""
    assert is_placeholder(value)
    config = tmp_path / "gateway.toml"
    config.write_text('origin = "example.test/gw"\n', encoding="utf-8")
    monkeypatch.setenv("VOLTPROOF_GATEWAY__MQTT__PASSWORD", value)
    with pytest.raises(ConfigError, match="placeholder"):
        load_settings(config)
    agent = {"device_id": "pack-1", "kind": "pack", "key_file": "k", "state_file": "s"}
    with pytest.raises(AgentConfigError, match="placeholder"):
        settings_from_mapping(agent | {"mqtt": {"username": "pack-1", "password": value}})
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(f'[credentials]\nshared_username = "sim"\nshared_password = "{value}"\n')
    with pytest.raises(FleetError, match="shared_password is a placeholder"):
        load_fleet(fleet)


@pytest.mark.parametrize("value", REAL)
def test_real_secrets_are_taken(
    value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A password that only contains a placeholder word is no placeholder."""
    assert not is_placeholder(value)
    config = tmp_path / "gateway.toml"
    config.write_text('origin = "example.test/gw"\n', encoding="utf-8")
    monkeypatch.setenv("VOLTPROOF_GATEWAY__MQTT__PASSWORD", value)
    settings = load_settings(config)
    assert settings.mqtt.password is not None
    assert settings.mqtt.password.get_secret_value() == value
    agent = {"device_id": "pack-1", "kind": "pack", "key_file": "k", "state_file": "s"}
    settings_from_mapping(agent | {"mqtt": {"username": "pack-1", "password": value}})


def test_placeholder_passwords_in_database_urls() -> None:
    """Only the URL's password is judged; a URL without one is not a placeholder."""
    assert has_placeholder_password("postgresql://gw:...@db/ledger")
    assert has_placeholder_password("postgresql://gw:change-me@db:5432/ledger")
    assert not has_placeholder_password("postgresql://gw@db/ledger")
    assert not has_placeholder_password("postgresql://gw:kQ7-vB2mZx9@db/ledger")
    with pytest.raises(ConfigError, match="placeholder"):
        with_store_url(GatewaySettings(), "postgresql://gw:...@db/ledger")


@pytest.mark.parametrize(
    "args",
    [
        ["migrate", "--from", "sqlite:gateway.db", "--to", "postgresql://gw:...@127.0.0.1:9/l"],
        ["demo", "--store", "postgresql://gw:change-me@127.0.0.1:9/l", "--duration", "1"],
    ],
)
def test_commands_refuse_a_placeholder_in_a_database_url(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """migrate and demo refuse the docs' example password before they connect (exit 2)."""
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "password in the URL is a placeholder" in err
    assert "gw:" not in err, "the URL is never repeated with its password"
