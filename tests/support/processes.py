"""Gateway processes and MQTT publishers for the reliability tests."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.store import SqliteStore
from tests.support.gateway_world import Deployment
from voltproof.broker import MosquittoBroker


def start_gateway(deployment: Deployment) -> subprocess.Popen[bytes]:
    """The gateway as its own process, exactly as an operator starts it."""
    with (deployment.workdir / "gateway.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "voltproof", "gateway", "--config", str(deployment.config)],
            stdout=log,
            stderr=log,
        )


def gateway_log(deployment: Deployment) -> str:
    """Everything the deployment's gateway processes wrote."""
    return (deployment.workdir / "gateway.log").read_text(encoding="utf-8")


def wait_for_line(
    deployment: Deployment, needle: str, *, count: int = 1, timeout_s: float = 20.0
) -> None:
    """Wait until the gateway log holds ``needle`` at least ``count`` times."""
    deadline = time.monotonic() + timeout_s
    while gateway_log(deployment).count(needle) < count:
        assert time.monotonic() < deadline, gateway_log(deployment)[-2000:]
        time.sleep(0.05)


def wait_until_started(deployment: Deployment, timeout_s: float = 20.0) -> None:
    """Wait for the gateway's ``gateway_started`` log line (it has subscribed)."""
    wait_for_line(deployment, '"gateway_started"', timeout_s=timeout_s)


def connect_publisher(broker: MosquittoBroker, client_id: str) -> mqtt.Client:
    """A QoS 1 MQTT 5 publisher with its network loop running."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def publish_rounds(client: mqtt.Client, deployment: Deployment, rounds: int) -> list[bytes]:
    """Publish ``rounds`` messages per device at QoS 1, waiting for each PUBACK."""
    sent = []
    for _ in range(rounds):
        for device in deployment.devices:
            data = device.message(t_ms=time.time_ns() // 1_000_000)
            client.publish(device.topic, data, qos=1).wait_for_publish(10)
            sent.append(data)
    return sent


class Streamer(threading.Thread):
    """Publishes each device's chain at QoS 1 until stopped; remembers what was acked."""

    def __init__(self, deployment: Deployment, broker: MosquittoBroker) -> None:
        super().__init__(name="streamer", daemon=True)
        self.deployment = deployment
        self.client = connect_publisher(broker, "streamer")
        self.stop = threading.Event()
        self.sent: list[bytes] = []

    def run(self) -> None:
        while not self.stop.is_set():
            self.sent.extend(publish_rounds(self.client, self.deployment, 1))
            time.sleep(0.005)

    def finish(self) -> None:
        self.stop.set()
        self.join(20)
        self.client.loop_stop()
        self.client.disconnect()


async def wait_for_log(db_path: Path, size: int, timeout_s: float = 60.0) -> None:
    """Wait until the store's log holds ``size`` leaves."""
    deadline = time.monotonic() + timeout_s
    store = await SqliteStore.open(db_path)
    try:
        while (await store.log_head()).size < size:
            assert time.monotonic() < deadline, f"log stuck at {(await store.log_head()).size}"
            await asyncio.sleep(0.1)
    finally:
        await store.close()


def wait_for_log_size(db_path: Path, size: int, timeout_s: float = 60.0) -> None:
    """Blocking :func:`wait_for_log`."""
    asyncio.run(wait_for_log(db_path, size, timeout_s))
