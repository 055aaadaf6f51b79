"""``[mqtt]`` reconnect delays in gateway.toml: the schedule they make, and what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, GatewaySettings, MqttSettings
from ledger.backoff import Backoff


def test_reconnect_settings_are_the_backoff_schedule() -> None:
    """reconnect_min_s and reconnect_max_s are the base and the cap of ledger.backoff."""
    assert MqttSettings().reconnect == Backoff(base_s=0.5, cap_s=30.0)
    assert MqttSettings(reconnect_min_s=0.1, reconnect_max_s=0.1).reconnect == Backoff(
        base_s=0.1, cap_s=0.1
    )


def test_minimum_above_maximum_is_refused(tmp_path: Path) -> None:
    """A minimum above the maximum is a configuration error naming both settings (it was
    silently raised to the minimum before)."""
    config = tmp_path / "gateway.toml"
    config.write_text("[mqtt]\nreconnect_min_s = 5\nreconnect_max_s = 1\n", encoding="utf-8")
    with pytest.raises(
        ConfigError,
        match=r"(?s)gateway\.toml: .*mqtt\.reconnect_min_s 5\.0 exceeds mqtt\.reconnect_max_s 1\.0",
    ):
        GatewaySettings.from_file(config)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"reconnect_min_s": 0}, "reconnect_min_s\n  Input should be greater than 0"),
        ({"reconnect_max_s": -1}, "reconnect_max_s\n  Input should be greater than 0"),
        ({"reconnect_max_s": float("inf")}, "reconnect_max_s\n  Input should be less than inf"),
    ],
)
def test_out_of_range_delays_are_refused(values: dict[str, float], message: str) -> None:
    """A delay of zero or less, or an infinite maximum, is refused with the setting named."""
    with pytest.raises(ValueError, match=message):
        MqttSettings.model_validate(values)
