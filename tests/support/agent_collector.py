"""A plain paho-mqtt subscriber with a persistent session that records what devices publish."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ledger.message import message_hash, verify_message
from voltproof.broker import MosquittoBroker


@dataclass(frozen=True, slots=True, kw_only=True)
class Received:
    """One message as the subscriber saw it."""

    topic: str
    payload: bytes
    properties: tuple[tuple[str, str], ...]
    retain: bool
    arrived_ms: int
    """Wall-clock time the subscriber received it (after the agent published it)."""


@dataclass(kw_only=True)
class Collector:
    """Subscribes to ``topic`` at QoS 1 in a persistent session (survives broker restarts)."""

    broker: MosquittoBroker
    topic: str = "voltproof/#"
    client_id: str = "collector"
    messages: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _client: mqtt.Client | None = None

    def __enter__(self) -> Self:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5
        )
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # untyped
        props.SessionExpiryInterval = 3600
        client.on_message = self._on_message
        client.on_connect = self._on_connect
        client.reconnect_delay_set(1, 1)
        client.connect(self.broker.host, self.broker.port, clean_start=False, properties=props)
        client.loop_start()
        self._client = client
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._client is not None:
            self._client.loop_stop()
            self._client.disconnect()

    def _on_connect(self, client: mqtt.Client, *_: object) -> None:
        client.subscribe(self.topic, qos=1)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        user = getattr(msg.properties, "UserProperty", None) or []
        with self._lock:
            self.messages.append(
                Received(
                    topic=msg.topic,
                    payload=bytes(msg.payload),
                    properties=tuple(user),
                    retain=bool(msg.retain),
                    arrived_ms=int(time.time() * 1000),
                )
            )

    def snapshot(self) -> list[Received]:
        """The messages received so far."""
        with self._lock:
            return list(self.messages)

    def telemetry(self, device: str) -> list[Received]:
        """The telemetry messages of ``device`` received so far."""
        return [m for m in self.snapshot() if m.topic.endswith(f"/{device}/telemetry")]

    def status(self, device: str) -> list[bytes]:
        """The status payloads of ``device`` received so far."""
        return [m.payload for m in self.snapshot() if m.topic.endswith(f"/{device}/status")]

    def wait(self, condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
        """Wait until ``condition()`` holds; fail the test after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout_s} s")
            time.sleep(0.05)


def verify_chain(received: list[Received], public_key: bytes) -> list[int]:
    """Verify every message, de-duplicate by seq and check seq 0..n and the prev chain."""
    by_seq: dict[int, tuple[bytes, dict[str, object]]] = {}
    for message in received:
        payload = verify_message(message.payload, public_key=public_key)
        seq = payload["seq"]
        assert isinstance(seq, int)
        if seq in by_seq:
            assert by_seq[seq][0] == message.payload, f"seq {seq} reused with other bytes"
        by_seq[seq] = (message.payload, payload)
    seqs = sorted(by_seq)
    assert seqs == list(range(len(seqs))), f"gap in seqs: {seqs}"
    prev = bytes(32)
    for seq in seqs:
        data, payload = by_seq[seq]
        assert payload["prev"] == prev, f"seq {seq} does not chain to seq {seq - 1}"
        prev = message_hash(data)
    return seqs
