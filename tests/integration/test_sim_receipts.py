"""``voltproof sim --gateway-key`` says what the gateway logged, not only what the broker took.

In issue 19 the simulator reported "acked 84" while the gateway had refused all 84 messages:
a PUBACK is the broker's, not the gateway's verdict. With the gateway's verifier key the
agents take its signed receipts, and the summary counts the messages they covered. A real
mosquitto, a real gateway process and the real simulator: once with the devices enrolled,
once with devices whose keys the gateway never enrolled.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fleet_world import FleetWorld, fleet_world
from tests.support.paths import REPO
from tests.support.processes import gateway_log, start_gateway, wait_until_started
from voltproof.broker import MosquittoBroker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FLEET = """name = "rcpt"
buses = 1
physics = "steady"
period_s = 1
ramp_s = 0.2
"""
LOGGED = re.compile(r"logged by the gateway \(its signed receipts\) (\d+)")


def _sim(world: FleetWorld, broker: MosquittoBroker, state_dir: Path) -> str:
    """Run the simulator for a few seconds with the gateway's key; its summary text."""
    result = subprocess.run(
        [sys.executable, "-m", "voltproof", "sim", "--fleet", str(world.fleet_file),
         "--broker", broker.url, "--duration", "8", "--state-dir", str(state_dir),
         "--gateway-key", world.deployment.gateway_key],
        capture_output=True, text=True, cwd=REPO, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_the_summary_counts_what_the_gateway_logged(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    """Enrolled devices: receipts cover messages. Unknown keys: 0 logged, and it is said."""
    world = fleet_world(tmp_path, mosquitto, FLEET)
    gateway = start_gateway(world.deployment)
    try:
        wait_until_started(world.deployment)
        # Strangers first: the gateway's receipts are retained on the devices' topics, and a
        # receipt names a seq, not a message, so a later chain under the same ids would
        # take the enrolled run's receipts as its own.
        strangers = _sim(world, mosquitto, tmp_path / "other-keys")
        enrolled = _sim(world, mosquitto, world.state_dir)
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(60)
    found = LOGGED.search(enrolled)
    assert found is not None, enrolled
    assert int(found.group(1)) > 0, enrolled + gateway_log(world.deployment)[-3000:]
    assert "NO message was logged" not in enrolled
    refused = LOGGED.search(strangers)
    assert refused is not None, strangers
    assert refused.group(1) == "0"
    assert "acknowledged by the broker 0" not in strangers, "the broker took them"
    assert "NO message was logged by the gateway" in strangers
    assert '"bad_signature"' in gateway_log(world.deployment)


def test_without_the_gateway_key_the_summary_says_what_it_cannot_know(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    """No gateway key, no receipts: the broker's count is labelled as the broker's."""
    (tmp_path / "fleet.toml").write_text(FLEET, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "voltproof", "sim", "--fleet", str(tmp_path / "fleet.toml"),
         "--broker", mosquitto.url, "--duration", "3", "--state-dir", str(tmp_path / "s")],
        capture_output=True, text=True, cwd=REPO, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "not the gateway's verdict: run with --gateway-key" in result.stdout
    assert "logged by the gateway" not in result.stdout
