"""The agent as a process against a real mosquitto: no loss across restarts and kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.keys import create_key_file, load_key_file
from ledger.message import verify_message
from tests.support.agent_collector import Collector, Received, verify_chain
from voltproof.broker import MosquittoBroker

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
DEV = "pack-7"


def _config(tmp_path: Path, broker: MosquittoBroker) -> Path:
    create_key_file(tmp_path / "device.key", name=DEV)
    path = tmp_path / "agent.toml"
    path.write_text(
        f'device_id = "{DEV}"\nfleet = "t"\nkind = "pack"\nkey_file = "{tmp_path}/device.key"\n'
        f'state_file = "{tmp_path}/state.sqlite3"\nperiod_s = 1\n'
        f'[mqtt]\nurl = "{broker.url}"\nkeepalive_s = 5\n'
        "[backoff]\nbase_s = 0.05\ncap_s = 0.3\n",
        encoding="utf-8",
    )
    return path


def _start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "voltproof", "agent", "--config", str(config)],
            stdout=out,
            stderr=out,
            env=env,
            cwd=REPO,
        )


@pytest.fixture
def collector(mosquitto: MosquittoBroker) -> Iterator[Collector]:
    """A persistent-session subscriber to everything under voltproof/."""
    with Collector(broker=mosquitto) as sub:
        yield sub


def _public_key(tmp_path: Path) -> bytes:
    return load_key_file(tmp_path / "device.key").public_key


def test_kill_9_continues_chain_without_gap_or_reuse(
    tmp_path: Path, mosquitto: MosquittoBroker, collector: Collector
) -> None:
    """SIGKILL mid-run, restart: seq continues, chain unbroken, last will says offline."""
    config = _config(tmp_path, mosquitto)
    agent = _start(config, tmp_path / "agent.log")
    try:
        collector.wait(lambda: len(collector.telemetry(DEV)) >= 3)
        collector.wait(lambda: b"online" in collector.status(DEV))
        agent.send_signal(signal.SIGKILL)
        agent.wait(5)
        collector.wait(lambda: collector.status(DEV)[-1:] == [b"offline"])
        before = {
            verify_message(m.payload, public_key=_public_key(tmp_path))["seq"]
            for m in collector.telemetry(DEV)
        }
        agent = _start(config, tmp_path / "agent.log")
        collector.wait(lambda: len(collector.telemetry(DEV)) >= len(before) + 3)
        collector.wait(lambda: collector.status(DEV)[-1:] == [b"online"])
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(10)
    assert agent.returncode == 0, (tmp_path / "agent.log").read_text()
    seqs = verify_chain(collector.telemetry(DEV), _public_key(tmp_path))
    assert seqs[-1] >= max(before) + 3


def test_broker_restart_loses_nothing(
    tmp_path: Path, mosquitto: MosquittoBroker, collector: Collector
) -> None:
    """Messages produced while the broker is down are backfilled, flagged historical."""
    agent = _start(_config(tmp_path, mosquitto), tmp_path / "agent.log")
    try:
        collector.wait(lambda: len(collector.telemetry(DEV)) >= 2)
        mosquitto.stop()
        # the agent keeps sampling and signing into its outbox while the broker is down
        collector.wait(
            lambda: False if agent.poll() is not None else len(_unpublished(tmp_path)) >= 3,
            timeout_s=10,
        )
        # Still in the outbox and never seen here (one in flight when the broker stopped may
        # have arrived unmarked): never published before the broker is back, so the agent
        # must send each of them marked historical.
        seen = {_seq(m, tmp_path) for m in collector.telemetry(DEV)}
        made_offline = [seq for seq in _unpublished(tmp_path) if seq not in seen]
        assert made_offline
        mosquitto.start()
        collector.wait(lambda: any(m.properties for m in collector.telemetry(DEV)))
        count = len(collector.telemetry(DEV))
        collector.wait(lambda: len(collector.telemetry(DEV)) >= count + 2)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(10)
    received = collector.telemetry(DEV)
    seqs = verify_chain(received, _public_key(tmp_path))
    assert len(seqs) >= 5
    assert set(made_offline) <= set(seqs)
    for message in received:
        if _seq(message, tmp_path) in made_offline:
            assert ("voltproof-historical", "1") in message.properties, _seq(message, tmp_path)


def _seq(message: Received, tmp_path: Path) -> object:
    return verify_message(message.payload, public_key=_public_key(tmp_path))["seq"]


def _unpublished(tmp_path: Path) -> list[int]:
    """The seqs in the agent's outbox: made and not yet published (no receipts here)."""
    import sqlite3

    with sqlite3.connect(tmp_path / "state.sqlite3") as db:
        return [seq for (seq,) in db.execute("SELECT seq FROM outbox ORDER BY seq")]


def test_bad_config_exits_2(tmp_path: Path) -> None:
    """A configuration with a placeholder password is a usage error (exit 2) with the reason."""
    path = tmp_path / "a.toml"
    path.write_text(
        'device_id = "d"\nkind = "pack"\nkey_file = "k"\nstate_file = "s"\n'
        '[mqtt]\nusername = "d"\npassword = "change-me"\n',
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "voltproof", "agent", "--config", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 2
    assert "placeholder" in result.stderr


def test_missing_key_exits_2(tmp_path: Path, mosquitto: MosquittoBroker) -> None:
    """An agent whose key file is missing is a usage error (exit 2) naming the file."""
    config = _config(tmp_path, mosquitto)
    (tmp_path / "device.key").unlink()
    result = subprocess.run(
        [sys.executable, "-m", "voltproof", "agent", "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 2
    assert "no key file" in result.stderr
