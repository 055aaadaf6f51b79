"""MQTT intake: a paho-mqtt 2.x client that hands messages over and acknowledges them later.

The client runs paho's network loop in its own thread. Every QoS 1 message goes into a
bounded queue (a full queue blocks paho's thread, so back-pressure reaches the broker through
TCP and the MQTT 5 Receive Maximum) and is acknowledged with ``ack()`` only after the gateway
has committed it (``manual_ack``). Message ids are only meaningful on the connection that
delivered them: a message from an earlier connection is never acknowledged on a later one
(the broker redelivers it from the persistent session, and the pipeline treats the repeat as
an idempotent duplicate).

A delivery with the MQTT retain flag set is not telemetry for the pipeline: the broker sends a
retained message to every new subscription, so one retained message would be processed (and,
if garbage, quarantined) once per reconnect. mosquitto's ACL cannot forbid a device to publish
retained, so the intake acknowledges such deliveries and counts them (``retained_ignored``);
the device's live publication reached the gateway already without the flag (MQTT 5 delivers
with retain 0 unless Retain As Published), and end-to-end receipts make the device re-send
anything the gateway did not log.

Reconnecting follows the one jittered backoff (``ledger.backoff``, ``reconnect_min_s`` doubling
up to ``reconnect_max_s``, each delay drawn in ``[d/2, d]``), counted over consecutive lost or
failed connections and reset once a connection is subscribed again. paho's network thread
still does the waiting and reconnecting: the client is used from other threads (``ack``,
``publish_retained``), and paho serialises their writes only while its own thread runs. So
before each wait (in ``on_disconnect`` and ``on_connect_fail``, which paho calls right before
it waits) the intake hands paho the next delay of the schedule as both its minimum and its
maximum, and paho waits exactly that long (its doubling is capped by the maximum).
"""

from __future__ import annotations

import logging
import queue
import random
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ledger.backoff import Backoff
from ledger.errors import VoltproofError
from ledger.protocol import is_historical

from .config import MqttSettings

log = logging.getLogger(__name__)


class IntakeError(VoltproofError, RuntimeError):
    """The broker refused the gateway (bad credentials, not authorised) or is unreachable."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message as the broker delivered it, with what is needed to acknowledge it."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    historical: bool
    received_at_ms: int
    connection: int


@dataclass(slots=True)
class IntakeStats:
    """Counters read by the metrics endpoint."""

    received: int = 0
    acknowledged: int = 0
    stale_acks_skipped: int = 0
    retained_ignored: int = 0
    receipts_published: int = 0
    connects: int = 0
    disconnects: int = 0
    connected: bool = False
    reconnect_failures: int = 0
    """Connections lost or failed since the last subscribed one: the retry number."""


def _is_historical(properties: Properties | None) -> bool:
    if properties is None:
        return False
    pairs: Sequence[tuple[str, str]] = getattr(properties, "UserProperty", ())
    return is_historical(pairs)


@dataclass(kw_only=True)
class MqttIntake:
    """A persistent-session MQTT 5 subscriber with manual acknowledgements.

    ``deliveries`` is filled by paho's thread; ``get_batch`` drains it; ``ack`` confirms.
    ``jitter`` draws the jitter of each reconnect delay and ``sleep`` waits between the
    connection attempts of :meth:`start` (both replaced in tests).
    """

    settings: MqttSettings
    queue_max: int
    clock_ms: Callable[[], int] = field(default=lambda: time.time_ns() // 1_000_000)
    jitter: Callable[[], float] = random.random
    sleep: Callable[[float], None] = time.sleep
    stats: IntakeStats = field(default_factory=IntakeStats)
    _deliveries: queue.Queue[Delivery] = field(init=False, repr=False)
    _client: mqtt.Client = field(init=False, repr=False)
    _connection: int = field(default=0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _refused: str | None = field(default=None, init=False)
    _subscribed: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _stopping: bool = field(default=False, init=False)
    _reconnect: Backoff = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._reconnect = self.settings.reconnect
        self._deliveries = queue.Queue(maxsize=self.queue_max)
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.settings.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if self.settings.username is not None:
            password = self.settings.password
            client.username_pw_set(
                self.settings.username, password.get_secret_value() if password else None
            )
        if self.settings.uses_tls:
            client.tls_set(
                ca_certs=str(self.settings.tls_ca) if self.settings.tls_ca else None,
                certfile=str(self.settings.tls_cert) if self.settings.tls_cert else None,
                keyfile=str(self.settings.tls_key) if self.settings.tls_key else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        # Every wait is handed to paho before it starts (``_next_wait``); these bounds hold
        # should paho ever wait without calling back first.
        _paho_wait(client, self._reconnect.base_s, self._reconnect.cap_s)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self._client = client

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, *, timeout_s: float = 30.0) -> None:
        """Connect (retrying with the reconnect backoff until ``timeout_s``) and subscribe."""
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self.settings.session_expiry_s
        properties.ReceiveMaximum = self.settings.receive_maximum
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._client.connect(
                    self.settings.host,
                    self.settings.port,
                    keepalive=self.settings.keepalive_s,
                    clean_start=False,
                    properties=properties,
                )
                break
            except OSError as exc:
                delay = self._next_delay()
                if time.monotonic() + delay > deadline:
                    raise IntakeError(f"broker {self.settings.url} unreachable: {exc}") from exc
                log.warning(
                    "broker_unreachable",
                    extra={
                        "url": self.settings.url,
                        "error": str(exc),
                        "retry_in_s": round(delay, 3),
                    },
                )
                self.sleep(delay)
        self._client.loop_start()
        if not self._subscribed.wait(timeout=max(0.1, deadline - time.monotonic())):
            self.stop()
            reason = self._refused or "no subscription acknowledgement"
            raise IntakeError(f"broker {self.settings.url} refused the gateway: {reason}")

    def stop(self) -> None:
        """Disconnect; unacknowledged messages stay queued in the broker's session."""
        self._stopping = True
        self._client.disconnect()
        self._client.loop_stop()

    # -- reconnect delays -----------------------------------------------------------------

    def _next_delay(self) -> float:
        """The delay before the next connection attempt; counts one more failure."""
        delay = self._reconnect.delay(self.stats.reconnect_failures, self.jitter())
        self.stats.reconnect_failures += 1
        return delay

    def _next_wait(self, client: mqtt.Client) -> float:
        """Hand paho the next delay: it waits that long before it reconnects."""
        delay = self._next_delay()
        _paho_wait(client, delay, delay)
        return delay

    # -- paho callbacks (paho's thread) ----------------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self._refused = str(reason)
            log.error("broker_refused", extra={"reason": str(reason)})
            return
        with self._lock:
            self._connection += 1
        self.stats.connects += 1
        self.stats.connected = True
        client.subscribe(self.settings.subscription, qos=1)
        log.info(
            "broker_connected", extra={"url": self.settings.url, "connection": self._connection}
        )

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _mid: int,
        reasons: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        failed = [str(r) for r in reasons if r.is_failure]
        if failed:
            self._refused = f"subscription to {self.settings.subscription} refused: {failed}"
            log.error("subscription_refused", extra={"reasons": failed})
            return
        self.stats.reconnect_failures = 0  # a healthy connection: the next delay is the first
        self._subscribed.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        self.stats.disconnects += 1
        self.stats.connected = False
        if self._stopping:
            log.info("broker_disconnected", extra={"reason": str(reason)})
            return
        delay = self._next_wait(client)
        log.warning(
            "broker_disconnected", extra={"reason": str(reason), "retry_in_s": round(delay, 3)}
        )

    def _on_connect_fail(self, client: mqtt.Client, _userdata: Any) -> None:
        delay = self._next_wait(client)
        log.warning(
            "broker_unreachable", extra={"url": self.settings.url, "retry_in_s": round(delay, 3)}
        )

    def _on_message(self, client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.retain:
            self.stats.retained_ignored += 1
            if message.qos:
                client.ack(message.mid, message.qos)
            log.warning("retained_telemetry_ignored", extra={"topic": message.topic})
            return
        delivery = Delivery(
            topic=message.topic,
            payload=bytes(message.payload),
            mid=message.mid,
            qos=message.qos,
            historical=_is_historical(getattr(message, "properties", None)),
            received_at_ms=self.clock_ms(),
            connection=self._connection,
        )
        self.stats.received += 1
        # Blocks paho's thread when the queue is full: back-pressure, never a silent drop.
        self._deliveries.put(delivery)

    # -- consumer side (any thread) --------------------------------------------------------

    def publish_retained(self, topic: str, payload: bytes) -> None:
        """Queue ``payload`` on ``topic`` retained at QoS 1 (paho resends it after a reconnect)."""
        info = self._client.publish(topic, payload, qos=1, retain=True)
        if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            self.stats.receipts_published += 1
        else:
            log.warning("receipt_not_queued", extra={"topic": topic, "rc": int(info.rc)})

    def get_batch(self, *, max_items: int, wait_s: float) -> list[Delivery]:
        """Block up to ``wait_s`` for a first message, then take what is queued (up to max)."""
        try:
            first = self._deliveries.get(timeout=wait_s)
        except queue.Empty:
            return []
        batch = [first]
        while len(batch) < max_items:
            try:
                batch.append(self._deliveries.get_nowait())
            except queue.Empty:
                break
        return batch

    @property
    def depth(self) -> int:
        """Messages received and not yet taken by the pipeline."""
        return self._deliveries.qsize()

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge committed messages that arrived on the current connection."""
        current = self._connection
        for delivery in deliveries:
            if delivery.qos == 0:
                continue
            if delivery.connection != current:
                self.stats.stale_acks_skipped += 1
                continue
            rc = self._client.ack(delivery.mid, delivery.qos)
            if rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                self.stats.acknowledged += 1


def _paho_wait(client: mqtt.Client, min_s: float, max_s: float) -> None:
    """Set paho's next reconnect wait: ``min_s``, doubled on each wait it makes without a
    new call, never above ``max_s``."""
    # paho annotates int seconds, yet only adds the delay to its monotonic clock and sleeps
    # it (paho/mqtt/client.py, _reconnect_wait): a fraction of a second is waited as such.
    client.reconnect_delay_set(min_delay=min_s, max_delay=max_s)  # type: ignore[arg-type]
