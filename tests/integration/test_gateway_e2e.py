"""The gateway end to end: real mosquitto, real MQTT clients, real store, log and anchors."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.app import Gateway
from gateway.store import SqliteStore
from ledger.checkpoint import verify_checkpoint
from ledger.keys import load_key_file
from ledger.merkle import hash_leaf, verify_inclusion
from ledger.note import verifier_key
from tests.support.gateway_world import Deployment, write_deployment
from voltproof.broker import MosquittoBroker

pytestmark = pytest.mark.integration


@pytest.fixture
def publisher(mosquitto: MosquittoBroker) -> Iterator[mqtt.Client]:
    """A QoS 1 publisher connected to the test broker."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="pub", protocol=mqtt.MQTTv5)
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    yield client
    client.loop_stop()
    client.disconnect()


def publish(client: mqtt.Client, topic: str, payload: bytes) -> None:
    """Publish at QoS 1 and wait for the broker's PUBACK."""
    client.publish(topic, payload, qos=1).wait_for_publish(10)


def now_ms() -> int:
    """Wall-clock Unix time in ms (the gateway checks timestamps against it)."""
    return time.time_ns() // 1_000_000


async def wait_for(predicate_async: object, timeout_s: float = 20.0) -> None:
    """Poll an async predicate until it holds."""
    assert callable(predicate_async)
    deadline = time.monotonic() + timeout_s
    while not await predicate_async():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def run_gateway(deployment: Deployment, body: object) -> None:
    """Run the gateway in this event loop while ``body`` runs, then stop it gracefully."""
    gateway = Gateway(deployment.settings)
    task = asyncio.create_task(gateway.run(install_signal_handlers=False))
    await asyncio.wait_for(gateway.started.wait(), 20)
    try:
        assert callable(body)
        await body(gateway)
    finally:
        gateway.request_stop()
        await asyncio.wait_for(task, 30)


def test_signed_messages_become_anchored_provable_leaves(
    tmp_path: Path, mosquitto: MosquittoBroker, publisher: mqtt.Client
) -> None:
    """Valid messages are logged once, checkpointed, anchored; bad ones are quarantined."""
    deployment = write_deployment(tmp_path / "gw", mosquitto, devices=3)
    devices = deployment.devices
    registry_leaves = len(devices)
    sent: list[bytes] = []

    async def body(gateway: Gateway) -> None:
        for _ in range(5):
            for device in devices:
                data = device.message(t_ms=now_ms())
                sent.append(data)
                publish(publisher, device.topic, data)
        publish(publisher, devices[0].topic, sent[0])  # a redelivery: idempotent
        forged = bytearray(devices[1].message(t_ms=now_ms()))
        forged[-1] ^= 1
        publish(publisher, devices[1].topic, bytes(forged))
        publish(publisher, devices[2].topic, b"\x00garbage")
        publish(publisher, devices[0].topic, devices[2].message(t_ms=now_ms()))
        assert gateway.runtime is not None
        store = gateway.runtime.store

        async def everything_committed() -> bool:
            quarantined = sum(c.total for c in await store.quarantine_counts())
            return (await store.log_head()).size == registry_leaves + len(sent) and quarantined >= 3

        await wait_for(everything_committed)
        metrics = await asyncio.to_thread(_scrape, gateway.runtime.metrics_port)
        assert "voltproof_messages_accepted_total 15.0" in metrics
        assert "voltproof_messages_duplicate_total 1.0" in metrics

    asyncio.run(run_gateway(deployment, body))
    asyncio.run(_check_store(deployment, sent, registry_leaves))


def _scrape(port: int | None) -> str:
    assert port is not None
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text: str = response.read().decode()
        return text


async def _check_store(deployment: Deployment, sent: list[bytes], registry_leaves: int) -> None:
    settings = deployment.settings
    key = load_key_file(settings.key_file)
    store = await SqliteStore.open(settings.db_path)
    try:
        head = await store.log_head()
        assert head.size == registry_leaves + len(sent)
        latest = await store.latest_checkpoint()
        assert latest is not None
        assert latest.size == head.size  # the shutdown checkpoint covers everything
        checkpoint = verify_checkpoint(
            latest.note, verifier_key=verifier_key(key.name, key.public_key)
        )
        final = await store.latest_final_checkpoint()
        assert final is not None
        assert final.size == head.size
        leaves = [await store.leaf(i) for i in range(registry_leaves, head.size)]
        assert sorted(leaf.cose for leaf in leaves) == sorted(sent)
        for index in range(head.size):
            leaf = await store.leaf(index)
            verify_inclusion(
                leaf_hash=hash_leaf(leaf.cose),
                index=index,
                size=checkpoint.size,
                proof=await store.inclusion_proof(index, checkpoint.size),
                root=checkpoint.root,
            )
        reasons = {c.reason: c.total for c in await store.quarantine_counts()}
        assert reasons == {"bad_signature": 1, "malformed": 1, "id_mismatch": 1}
    finally:
        await store.close()


def test_gateway_refuses_unreachable_broker(tmp_path: Path, mosquitto: MosquittoBroker) -> None:
    """A broker that is down at start is reported as an IntakeError naming the url."""
    deployment = write_deployment(tmp_path / "gw", mosquitto, devices=1)
    mosquitto.kill()
    settings = deployment.settings.model_copy(
        update={
            "mqtt": deployment.settings.mqtt.model_copy(
                update={"reconnect_min_s": 0.1, "reconnect_max_s": 0.2}
            )
        }
    )
    from gateway.intake import IntakeError, MqttIntake

    intake = MqttIntake(settings=settings.mqtt, queue_max=10)
    with pytest.raises(IntakeError, match="unreachable"):
        intake.start(timeout_s=1.0)
