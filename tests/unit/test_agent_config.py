"""Agent settings: TOML file, environment overrides and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_sim.agent.config import AgentConfigError, load_settings, settings_from_mapping

REPO = Path(__file__).resolve().parents[2]
BASE = {"device_id": "pack-0001", "kind": "pack", "key_file": "k", "state_file": "s"}


def test_example_file_loads() -> None:
    """configs/agent.example.toml is valid as shipped."""
    settings = load_settings(REPO / "configs" / "agent.example.toml")
    assert settings.topic == f"voltproof/{settings.fleet}/{settings.device_id}/telemetry"
    assert settings.status_topic.endswith("/status")
    assert settings.historical_after_ms == 2 * settings.period_s * 1000


def test_environment_overrides_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """VOLTPROOF_AGENT_* variables win over the file, nested keys with __."""
    monkeypatch.setenv("VOLTPROOF_AGENT_PERIOD_S", "5")
    monkeypatch.setenv("VOLTPROOF_AGENT_MQTT__URL", "mqtts://broker.example:8884")
    settings = settings_from_mapping(dict(BASE))
    assert settings.period_s == 5
    assert (settings.mqtt.host, settings.mqtt.port, settings.mqtt.tls) == (
        "broker.example",
        8884,
        True,
    )


def test_password_is_secret() -> None:
    """The password never shows in the settings' repr."""
    settings = settings_from_mapping(BASE | {"mqtt": {"username": "u", "password": "s3cr3t-x"}})
    assert "s3cr3t-x" not in repr(settings)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"mqtt": {"username": "u", "password": "change-me"}}, "placeholder"),
        ({"mqtt": {"username": "u", "password": ""}}, "placeholder"),
        ({"mqtt": {"password": "gh7-Kq2z"}}, "username is not"),
        ({"mqtt": {"url": "http://x"}}, "url must be"),
        ({"mqtt": {"cert_file": "c.pem"}}, "go together"),
        ({"kind": "tram"}, "kind"),
        ({"device_id": "bad id!"}, "device_id"),
        ({"period_s": 31}, "period_s"),
        ({"backoff": {"base_s": 10, "cap_s": 1}}, "exceeds cap_s"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_invalid_settings_are_refused(override: dict[str, object], match: str) -> None:
    """Each invalid value is refused with a message naming the key."""
    with pytest.raises(AgentConfigError, match=match):
        settings_from_mapping(BASE | override)


def test_missing_file(tmp_path: Path) -> None:
    """A missing file is a AgentConfigError naming it."""
    with pytest.raises(AgentConfigError, match="cannot read"):
        load_settings(tmp_path / "none.toml")


def test_bad_toml(tmp_path: Path) -> None:
    """A file that is not TOML is a AgentConfigError."""
    path = tmp_path / "a.toml"
    path.write_text("device_id = [", encoding="utf-8")
    with pytest.raises(AgentConfigError, match="not valid TOML"):
        load_settings(path)


def test_invalid_file_names_file(tmp_path: Path) -> None:
    """Validation errors of a file name the file."""
    path = tmp_path / "a.toml"
    path.write_text('device_id = "x"\n', encoding="utf-8")
    with pytest.raises(AgentConfigError, match=r"a\.toml: invalid agent settings: kind"):
        load_settings(path)
