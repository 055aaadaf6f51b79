"""Through the real MQTT intake, every kind of bad message is refused with its reason code.

A gateway process subscribed on a real mosquitto receives, next to valid traffic: a forged
signature, a replay, a message of a device that was never enrolled, one of a revoked
device, an oversized one, and impersonations (a device's message on another device's topic;
a message naming another device as dev and kid). Each is quarantined (or, for the replay,
counted as a duplicate) with the expected code; the valid messages are logged.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest

from gateway.registry import Registry
from gateway.store import SqliteStore
from ledger.keys import load_key_file
from ledger.message import decode_message, sign_message
from ledger.protocol import MAX_MESSAGE_SIZE
from tests.support.gateway_devices import FakeDevice
from tests.support.gateway_world import Deployment, write_deployment
from tests.support.processes import (
    connect_publisher,
    gateway_log,
    start_gateway,
    wait_for_log_size,
    wait_until_started,
)
from voltproof.broker import MosquittoBroker

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def _revoke(deployment: Deployment, device_id: str) -> None:
    store = await SqliteStore.open(deployment.settings.db_path)
    try:
        operator = load_key_file(deployment.settings.operator_key_file)
        await Registry(store=store, operator=operator).revoke(device_id, reason="stolen")
    finally:
        await store.close()


def _now() -> int:
    return time.time_ns() // 1_000_000


def test_bad_messages_are_refused_with_their_reason(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    """forged, replayed, unknown, revoked, oversized and impersonating messages are refused."""
    deployment = write_deployment(tmp_path / "gw", mosquitto, devices=3)
    honest, victim, revoked = deployment.devices
    asyncio.run(_revoke(deployment, revoked.device_id))
    stranger = FakeDevice(device_id="pack-9999", fleet=honest.fleet)
    gateway = start_gateway(deployment)
    client = connect_publisher(mosquitto, "refusals")
    try:
        wait_until_started(deployment)
        first = honest.message(t_ms=_now())
        second = honest.message(t_ms=_now())
        forged = bytearray(honest.message(t_ms=_now()))
        forged[-1] ^= 0x01
        payload = dict(decode_message(honest.message(t_ms=_now())).payload)
        payload["dev"] = victim.device_id
        cases = [
            (honest.topic, first),
            (honest.topic, second),
            (honest.topic, bytes(forged)),  # bad_signature
            (honest.topic, first),  # replay: duplicate
            (stranger.topic, stranger.message(t_ms=_now())),  # unknown_device
            (revoked.topic, revoked.message(t_ms=_now())),  # revoked
            # over the gateway's bound, under the broker's max_packet_size: the gateway refuses
            (honest.topic, b"\xd2" + bytes(MAX_MESSAGE_SIZE)),  # oversize
            (victim.topic, honest.message(t_ms=_now())),  # another's topic
            (honest.topic, sign_message(payload, seed=honest.seed)),  # another's dev and kid
            (victim.topic, sign_message(payload, seed=honest.seed)),  # both: bad signature
        ]
        for topic, data in cases:
            client.publish(topic, data, qos=1).wait_for_publish(10)
        registry = len(deployment.devices) + 1  # the revocation is a leaf too
        wait_for_log_size(deployment.settings.db_path, registry + 2)
        deadline = time.monotonic() + 20
        while _quarantined(deployment) < 7:
            assert time.monotonic() < deadline, _reasons(deployment)
            time.sleep(0.1)
    finally:
        client.loop_stop()
        client.disconnect()
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(30) == 0, gateway_log(deployment)[-3000:]
    assert _reasons(deployment) == {
        "bad_signature": 2,
        "unknown_device": 1,
        "revoked": 1,
        "oversize": 1,
        "id_mismatch": 2,
    }
    with closing(sqlite3.connect(deployment.settings.db_path)) as db:
        (duplicates,) = db.execute(
            "SELECT duplicates FROM chain_heads WHERE device = ?", (honest.device_id,)
        ).fetchone()
    assert duplicates == 1


def _reasons(deployment: Deployment) -> dict[str, int]:
    with closing(sqlite3.connect(deployment.settings.db_path)) as db:
        return dict(db.execute("SELECT reason, total FROM quarantine_counts").fetchall())


def _quarantined(deployment: Deployment) -> int:
    return sum(_reasons(deployment).values())
