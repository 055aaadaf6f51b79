"""The load side of ``bench.bench_gateway``: signed messages, publishers and the baselines.

Everything here runs in its own process (``multiprocessing``, spawn) so that the publishers,
the subscribers and the gateway compete for the cores as separate programs would.

- :func:`sign_messages`: realistic 10-sample telemetry (a random walk per device, packs and
  buses), every device a proper hash chain, signed before the measured run;
- :func:`publish`: a paho QoS 1 publisher that keeps at most ``max_outstanding`` messages
  unacknowledged (paho-mqtt 2.2 stalls past 65,535) and optionally paces itself. The window
  is the publisher's own semaphore with paho's in-flight limit off: paho re-scans its whole
  queue of waiting messages on every PUBACK, so letting paho queue thousands costs more per
  message the longer the queue (measured here: 2,600 msgs/s with 3,000 queued behind
  paho's limit of 1,000, 9,500 msgs/s with the semaphore);
- :func:`raw_subscriber`: a paho QoS 1 subscriber that does nothing but count (auto ack);
- :func:`naive_subscriber`: verify each signature with PyNaCl, insert the batch into SQLite
  (WAL, ``synchronous=FULL``), commit, then acknowledge (manual ack), on a shared
  subscription so that several of them split the load.
"""

from __future__ import annotations

import hashlib
import queue
import random
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from multiprocessing.sharedctypes import Synchronized
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ledger.keys import public_key_from_seed
from ledger.message import sign_message, verify_message
from ledger.telemetry import Kind, TelemetryBatch, encode_batch
from tests.support.gateway_devices import bus_sample, pack_sample

FLEET = "fleet-bench"
SAMPLES = 10
DT_MS = 1000
OUTSTANDING = 500
"""Unacknowledged messages a publisher allows itself (below the broker's receive maximum)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchDevice:
    """A device of the benchmark fleet (deterministic key, so every process agrees)."""

    device_id: str
    kind: Kind
    seed: bytes

    @property
    def public_key(self) -> bytes:
        """The device's Ed25519 public key."""
        return public_key_from_seed(self.seed)

    @property
    def topic(self) -> str:
        """The device's telemetry topic."""
        return f"voltproof/{FLEET}/{self.device_id}/telemetry"


def bench_fleet(count: int) -> list[BenchDevice]:
    """``count`` devices, one bus per four (the rest packs)."""
    return [
        BenchDevice(
            device_id=f"{'bus' if i % 4 == 3 else 'pack'}-{i:05d}",
            kind="bus" if i % 4 == 3 else "pack",
            seed=hashlib.sha256(f"voltproof-bench-{i}".encode()).digest(),
        )
        for i in range(count)
    ]


def _batch(device: BenchDevice, t_ms: int, rng: random.Random) -> TelemetryBatch:
    samples: list[Any] = []
    if device.kind == "pack":
        base = pack_sample()
        for _ in range(SAMPLES):
            current = rng.uniform(-300, 400)
            samples.append(
                replace(
                    base,
                    voltage_v=round(620 - current * 0.05 + rng.uniform(-2, 2), 1),
                    current_a=round(current, 1),
                    soc=round(rng.uniform(0.2, 0.95), 3),
                    cell_v_max=round(3.30 + rng.uniform(0, 0.05), 3),
                    cell_v_min=round(3.25 + rng.uniform(0, 0.04), 3),
                    temp_max_c=round(rng.uniform(25, 40), 1),
                    temp_min_c=round(rng.uniform(18, 25), 1),
                )
            )
    else:
        base_bus = bus_sample()
        samples = [
            replace(
                base_bus,
                speed_mps=round(rng.uniform(0, 15), 1),
                lat_deg=round(22.5 + rng.uniform(0, 0.1), 6),
                lon_deg=round(114.0 + rng.uniform(0, 0.1), 6),
                traction_power_w=round(rng.uniform(-50_000, 150_000), -2),
            )
            for _ in range(SAMPLES)
        ]
    return TelemetryBatch(
        kind=device.kind, t_ms=t_ms, dt_ms=DT_MS, samples=tuple(samples), packs=()
    )


def sign_messages(
    devices: Sequence[BenchDevice], per_device: int, t0_ms: int
) -> list[tuple[str, bytes]]:
    """``per_device`` signed messages per device, round-robin, as ``(topic, COSE bytes)``."""
    rng = random.Random(1)
    prev = {d.device_id: bytes(32) for d in devices}
    out: list[tuple[str, bytes]] = []
    for seq in range(per_device):
        t_ms = t0_ms + seq * SAMPLES * DT_MS
        for device in devices:
            body = encode_batch(_batch(device, t_ms, rng))
            payload = {"v": 1, "dev": device.device_id, "seq": seq,
                       "prev": prev[device.device_id], "t": t_ms, **body}  # fmt: skip
            data = sign_message(payload, seed=device.seed)
            prev[device.device_id] = hashlib.sha256(data).digest()
            out.append((device.topic, data))
    return out


def _client(client_id: str, *, manual_ack: bool = False) -> mqtt.Client:
    return mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishJob:
    """What one publisher process sends, and how fast."""

    host: str
    port: int
    client_id: str
    messages: Sequence[tuple[str, bytes]]
    rate: float | None = None
    max_outstanding: int = OUTSTANDING


def publish(job: PublishJob, ready: Any, go: Any, results: Any) -> None:
    """Connect, wait for ``go``, publish every message at QoS 1; report publish times (ms)."""
    client = _client(job.client_id)
    client.max_inflight_messages_set(0)  # no paho queue: see module docstring
    window = threading.Semaphore(job.max_outstanding)
    acked = threading.Event()
    pending = [len(job.messages)]

    def on_publish(*_args: object) -> None:
        window.release()
        pending[0] -= 1
        if pending[0] == 0:
            acked.set()

    client.on_publish = on_publish
    client.connect(job.host, job.port, keepalive=60)
    client.loop_start()
    ready.set()
    go.wait()
    times: list[int] = []
    started = time.monotonic()
    for k, (topic, data) in enumerate(job.messages):
        if job.rate is not None:
            due = started + k / job.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        window.acquire()
        times.append(time.time_ns() // 1_000_000)
        client.publish(topic, data, qos=1)
    acked.wait()
    client.disconnect()
    client.loop_stop()
    results.put((job.client_id, times))


def raw_subscriber(host: str, port: int, count: Synchronized[int], last: Any, ready: Any) -> None:
    """Count QoS 1 messages (paho acknowledges them itself) until terminated."""
    client = _client("bench-raw-subscriber")

    def on_message(*_args: object) -> None:
        count.value += 1
        last.value = time.time()

    client.on_message = on_message
    client.on_subscribe = lambda *_args: ready.set()
    client.connect(host, port, keepalive=60)
    client.subscribe("voltproof/+/+/telemetry", qos=1)
    client.loop_forever()


def naive_subscriber(  # noqa: PLR0917 - one process entry point, called by Process
    host: str,
    port: int,
    name: str,
    db_path: str,
    keys: dict[str, bytes],
    count: Synchronized[int],
    last: Any,
    ready: Any,
) -> None:
    """Verify (PyNaCl), insert the batch into SQLite, commit, then acknowledge; forever."""
    inbox: queue.Queue[mqtt.MQTTMessage] = queue.Queue(maxsize=4000)
    client = _client(name, manual_ack=True)
    client.on_message = lambda _c, _u, message: inbox.put(message)
    client.on_subscribe = lambda *_args: ready.set()
    client.connect(host, port, keepalive=60)
    client.subscribe("$share/naive/voltproof/+/+/telemetry", qos=1)
    client.loop_start()
    db = sqlite3.connect(db_path, isolation_level=None, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS messages "
        "(id INTEGER PRIMARY KEY, device TEXT, seq INTEGER, cose BLOB)"
    )
    while True:
        batch = [inbox.get()]
        deadline = time.monotonic() + 0.02
        while len(batch) < 500:
            try:
                batch.append(inbox.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        rows = []
        for message in batch:
            device = message.topic.split("/")[2]
            payload = verify_message(bytes(message.payload), public_key=keys[device])
            rows.append((device, payload["seq"], message.payload))
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO messages (device, seq, cose) VALUES (?, ?, ?)", rows)
        db.execute("COMMIT")
        for message in batch:
            client.ack(message.mid, message.qos)
        with count.get_lock():
            count.value += len(batch)
        last.value = time.time()


def publish_stream(  # noqa: PLR0917 - one process entry point, called by Process
    host: str,
    port: int,
    devices: Sequence[BenchDevice],
    rate: float,
    duration_s: float,
    results: Any,
) -> None:
    """Sign and publish at ``rate`` msgs/s for ``duration_s`` (the soak); report the count.

    Each device's body is encoded once; a message is its next seq, ``prev`` and a fresh ``t``
    signed on the spot (~50 us), so the stream can run for hours without a pre-signed pile.
    """
    rng = random.Random(2)
    bodies = {d.device_id: encode_batch(_batch(d, 0, rng)) for d in devices}
    prev = {d.device_id: bytes(32) for d in devices}
    client = _client("bench-soak-publisher")
    client.max_inflight_messages_set(0)  # no paho queue: see module docstring
    window = threading.Semaphore(OUTSTANDING)
    client.on_publish = lambda *_args: window.release()
    client.connect(host, port, keepalive=60)
    client.loop_start()
    started = time.monotonic()
    sent = 0
    while (now := time.monotonic()) < started + duration_s:
        due = started + sent / rate
        if due > now:
            time.sleep(due - now)
        device = devices[sent % len(devices)]
        seq = sent // len(devices)
        t_ms = time.time_ns() // 1_000_000 - SAMPLES * DT_MS
        payload = {"v": 1, "dev": device.device_id, "seq": seq, "prev": prev[device.device_id],
                   "t": t_ms, **bodies[device.device_id]}  # fmt: skip
        data = sign_message(payload, seed=device.seed)
        prev[device.device_id] = hashlib.sha256(data).digest()
        window.acquire()
        client.publish(device.topic, data, qos=1)
        sent += 1
    for _ in range(OUTSTANDING):
        window.acquire()
    client.disconnect()
    client.loop_stop()
    results.put(("soak", sent))
