"""``voltproof audit`` over a log made by the running gateway (real mosquitto, real MQTT)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.app import Gateway
from gateway.store import AnchorStatus, SqliteStore
from ledger.checkpoint import verify_checkpoint
from ledger.device_index import index_root_from_extensions
from ledger.keys import load_key_file
from tests.support.cli_process import run_voltproof as _voltproof
from tests.support.gateway_world import Deployment, write_deployment
from tests.support.pty_run import run_on_a_terminal
from voltproof.broker import MosquittoBroker

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
ROUNDS = 6


async def _run(deployment: Deployment, mosquitto: MosquittoBroker) -> None:
    """Publish ROUNDS messages per device, each round checkpointed (every 0.5 s) before the next."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="pub", protocol=mqtt.MQTTv5)
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    gateway = Gateway(deployment.settings)
    task = asyncio.create_task(gateway.run(install_signal_handlers=False))
    try:
        await asyncio.wait_for(gateway.started.wait(), 20)
        assert gateway.runtime is not None
        store = gateway.runtime.store
        for round_ in range(ROUNDS):
            for device in deployment.devices:
                data = device.message(t_ms=time.time_ns() // 1_000_000)
                client.publish(device.topic, data, qos=1).wait_for_publish(10)
            want = len(deployment.devices) * (round_ + 2)
            deadline = time.monotonic() + 20
            while (checkpoint := await store.latest_checkpoint()) is None or (
                checkpoint.size < want
            ):
                assert time.monotonic() < deadline, "timed out"
                await asyncio.sleep(0.05)
    finally:
        gateway.request_stop()
        await asyncio.wait_for(task, 30)
        client.loop_stop()
        client.disconnect()


async def _checkpoints(deployment: Deployment) -> list[str]:
    store = await SqliteStore.open(deployment.settings.db_path)
    try:
        return [record.note for record in await store.checkpoints_in(list(AnchorStatus))]
    finally:
        await store.close()


def test_gateway_log_audits_clean(tmp_path: Path, mosquitto: MosquittoBroker) -> None:
    """Every checkpoint the gateway signed carries an index line that the audit recomputes."""
    deployment = write_deployment(tmp_path / "gw", mosquitto, devices=3, every_leaves=1000)
    asyncio.run(_run(deployment, mosquitto))
    key = load_key_file(deployment.settings.key_file)
    notes = asyncio.run(_checkpoints(deployment))
    assert len(notes) >= ROUNDS
    for note in notes:
        checkpoint = verify_checkpoint(note, verifier_key=key.verifier_key)
        assert index_root_from_extensions(checkpoint.extensions) is not None
    audited = _voltproof("audit", "--workdir", str(deployment.workdir))
    assert audited.returncode == 0, audited.stderr
    assert (
        f"leaves: {3 + 3 * ROUNDS} ({3 * ROUNDS} telemetry, 3 registry entries)" in audited.stdout
    )
    assert f"checkpoints: {len(notes)} recomputed" in audited.stdout
    export = tmp_path / "log.jsonl"
    exported = _voltproof(
        "log", "export", "--workdir", str(deployment.workdir), "--out", str(export)
    )
    assert exported.returncode == 0, exported.stderr
    operator = load_key_file(deployment.settings.operator_key_file)
    replayed = _voltproof("audit", "--leaves", str(export), "--gateway-key", key.verifier_key,
                          "--operator-key", operator.verifier_key)  # fmt: skip
    assert replayed.returncode == 0, replayed.stderr
    assert "CLEAN" in replayed.stdout
    assert "Traceback" not in audited.stderr + exported.stderr + replayed.stderr
    # At a terminal each of them shows its progress bar on stderr, and prints the same.
    for args, bar in (
        (["audit", "--workdir", str(deployment.workdir)], "replaying"),
        (["log", "export", "--workdir", str(deployment.workdir), "--out",
          str(tmp_path / "again.jsonl")], "exporting"),
    ):  # fmt: skip
        shown = run_on_a_terminal(*args)
        assert shown.returncode == 0, shown.terminal
        assert bar in shown.terminal, shown.terminal
    assert run_on_a_terminal("audit", "--workdir", str(deployment.workdir)).stdout == (
        audited.stdout
    )
