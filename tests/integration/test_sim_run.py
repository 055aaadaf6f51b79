"""``voltproof sim`` against a real mosquitto: every message verifies and chains."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.message import MessageError, decode_message
from tests.support.agent_collector import Collector, Received, verify_chain
from voltproof.broker import MosquittoBroker

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]

FLEET = """name = "t"
buses = 2
spare_packs = 1
period_s = 2
ramp_s = 0.5
[faults]
pack_swaps = 1
pack_swap_at_s = 3
[faults.offline]
fraction = 0.4
start_s = 2
duration_s = 3
"""
ATTACKS = """[attacks]
at_s = 3
forged_signature = 1
replay = 1
reorder = 1
fork = 1
wrong_topic = 1
wrong_kid = 1
garbage = 1
oversized = 1
"""


def _sim(tmp_path: Path, broker: MosquittoBroker, fleet: str, duration: int) -> dict[str, object]:
    (tmp_path / "fleet.toml").write_text(fleet, encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "voltproof",
            "sim",
            "--fleet",
            str(tmp_path / "fleet.toml"),
            "--broker",
            broker.url,
            "--duration",
            str(duration),
            "--export-keys",
            str(tmp_path / "keys.json"),
            "--summary-json",
            str(tmp_path / "summary.json"),
            # each run its own devices: the default state folder is per user and fleet name
            "--state-dir",
            str(tmp_path / "state"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "attacks injected" in result.stdout
    summary: dict[str, object] = json.loads((tmp_path / "summary.json").read_text())
    return summary


def test_fleet_messages_verify_and_chain(tmp_path: Path, mosquitto: MosquittoBroker) -> None:
    """With offline windows and a pack swap, each device's chain arrives whole and valid."""
    with Collector(broker=mosquitto) as sub:
        summary = _sim(tmp_path, mosquitto, FLEET, 8)
        keys = json.loads((tmp_path / "keys.json").read_text())
        sub.wait(
            lambda: (
                len([m for m in sub.snapshot() if "telemetry" in m.topic])
                >= int(str(summary["acked"]))
            )
        )
    assert sorted(keys) == ["bus-0000", "bus-0001", "pack-0000", "pack-0001", "pack-0002"]
    enroll = json.loads((tmp_path / "keys.enroll.json").read_text())
    assert {d["device_id"]: d["public_key"] for d in enroll} == keys
    assert {d["kind"] for d in enroll} == {"bus", "pack"}
    assert summary["faults"] == {"offline": 2, "pack_swap": 1}
    total = 0
    for dev in ("bus-0000", "bus-0001", "pack-0000", "pack-0001"):
        seqs = verify_chain(sub.telemetry(dev), base64.b64decode(keys[dev]))
        total += len(seqs)
    assert total >= 8
    assert summary["historical"] != 0


def _decodes(message: Received) -> bool:
    try:
        decode_message(message.payload)
    except MessageError:
        return False
    return True


def test_attacks_are_counted_and_published(tmp_path: Path, mosquitto: MosquittoBroker) -> None:
    """Every attack kind switched on is injected once and counted in the summary."""
    with Collector(broker=mosquitto) as sub:
        summary = _sim(
            tmp_path, mosquitto, FLEET.replace("fraction = 0.4", "fraction = 0.0") + ATTACKS, 6
        )
        sub.wait(
            lambda: (
                len([m for m in sub.snapshot() if "telemetry" in m.topic])
                >= int(str(summary["acked"])) + 8
            )
        )
    attacks = summary["attacks"]
    assert isinstance(attacks, dict)
    assert set(attacks) == {
        "forged_signature",
        "replay",
        "reorder",
        "fork",
        "wrong_topic",
        "wrong_kid",
        "garbage",
        "oversized",
    }
    assert all(v == 1 for v in attacks.values())
    undecodable = [m for m in sub.snapshot() if "telemetry" in m.topic and not _decodes(m)]
    assert len(undecodable) == 2  # garbage and oversized
