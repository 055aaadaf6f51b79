"""The device's MQTT link: connect, announce, drain the outbox in order, reconnect.

With end-to-end receipts (``LinkConfig.receipts``: the gateway's public key), a message
leaves the outbox only when a receipt signed by the gateway key for this device covers its
seq (``ledger.receipt``): the link subscribes to its retained receipt topic, verifies every
receipt and releases the outbox up to it. A broker's PUBACK proves nothing then: a broker
that restarts without its state, drops a queue or whose gateway session is taken over has
acknowledged messages the gateway never logged. When the outbox holds published messages
and no receipt progressed for ``resend_after_s``, everything not covered is published again
(the delay doubles up to ``resend_cap_s`` while nothing progresses and resets when a receipt
does; each delay is drawn in ``[d/2, d]``, the one jittered backoff of ``ledger.backoff``);
the gateway treats the repeats as idempotent duplicates and answers with a receipt.

Without receipts (no gateway key configured) a message leaves the outbox after the broker's
PUBACK: aiomqtt's ``publish`` at QoS 1 returns when paho's ``on_publish`` fires, which
paho-mqtt 2.x does for QoS 1 only on the PUBACK (``MQTTMessageInfo.is_published``).

At most ``max_inflight`` messages are awaiting their PUBACK at a time. Delivery is
at-least-once: after a reconnect everything still in the outbox is published again, in
``seq`` order; receivers de-duplicate by (device, seq).

Messages that waited in the outbox through an outage or a restart, or are older than
``historical_after_ms``, carry the MQTT 5 user property ``voltproof-historical: 1``; the
signed bytes are never changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import NoReturn

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ledger.backoff import Backoff as Schedule
from ledger.protocol import HISTORICAL_PROPERTY
from ledger.receipt import ReceiptError, verify_receipt

from .backoff import Backoff
from .store import ChainStore, OutboxEntry

log = logging.getLogger("voltproof.agent.link")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceiptConfig:
    """Where the gateway's receipts for this device arrive and the key that must sign them."""

    topic: str
    gateway_key: bytes
    resend_after_s: float = 10.0
    resend_cap_s: float = 300.0


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkConfig:
    """Where and how one device connects."""

    dev: str
    host: str
    port: int
    topic: str
    status_topic: str
    username: str | None = None
    password: str | None = None
    tls_context: ssl.SSLContext | None = None
    keepalive_s: int = 30
    max_inflight: int = 100
    ack_timeout_s: float = 10.0
    historical_after_ms: int = 20_000
    receipts: ReceiptConfig | None = None


@dataclass(slots=True)
class LinkStats:
    """What one link (or, summed, a fleet) did."""

    published: int = 0
    acked: int = 0
    historical: int = 0
    connects: int = 0
    failures: int = 0
    receipts: int = 0
    receipts_refused: int = 0
    released: int = 0
    resends: int = 0

    def add(self, other: LinkStats) -> None:
        """Add ``other``'s counts to these."""
        self.receipts += other.receipts
        self.receipts_refused += other.receipts_refused
        self.released += other.released
        self.resends += other.resends
        self.published += other.published
        self.acked += other.acked
        self.historical += other.historical
        self.connects += other.connects
        self.failures += other.failures


def historical_properties() -> Properties:
    """PUBLISH properties marking a message as historical (published late)."""
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]  # paho is untyped here
    props.UserProperty = [HISTORICAL_PROPERTY]
    return props


@dataclass(slots=True, kw_only=True)
class Link:
    """Publishes one device's outbox; :meth:`run` reconnects forever with jittered backoff."""

    config: LinkConfig
    store: ChainStore
    backoff: Backoff = field(default_factory=Backoff)
    clock: Clock = time.time
    sleep: Sleep = asyncio.sleep
    stats: LinkStats = field(default_factory=LinkStats)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    offline: bool = False

    def notify(self) -> None:
        """Tell the link that new messages are in the outbox."""
        self.wakeup.set()

    async def run(self) -> NoReturn:
        """Connect and drain; on any broker error wait a jittered delay and start again."""
        while True:
            if self.offline:
                await self._wait_online()
            try:
                await self.serve()
            except* aiomqtt.MqttError as group:
                self.connected.clear()
                self.stats.failures += 1
                delay = self.backoff.next_delay()
                log.warning(
                    "mqtt_link_down",
                    extra={
                        "dev": self.config.dev,
                        "error": str(group.exceptions[0]),
                        "retry_in_s": round(delay, 3),
                    },
                )
                await self.sleep(delay)

    async def _wait_online(self) -> None:
        while self.offline:
            self.wakeup.clear()
            await self.wakeup.wait()

    async def serve(self) -> None:
        """One connection: announce ``online``, then publish until the link fails."""
        cfg = self.config
        will = aiomqtt.Will(cfg.status_topic, b"offline", qos=1, retain=True)
        async with aiomqtt.Client(
            cfg.host,
            cfg.port,
            identifier=cfg.dev,
            username=cfg.username,
            password=cfg.password,
            protocol=aiomqtt.ProtocolVersion.V5,
            will=will,
            keepalive=cfg.keepalive_s,
            tls_context=cfg.tls_context,
            max_inflight_messages=cfg.max_inflight,
            timeout=cfg.ack_timeout_s,
        ) as client:
            await client.publish(cfg.status_topic, b"online", qos=1, retain=True)
            if cfg.receipts is not None:
                await client.subscribe(cfg.receipts.topic, qos=1)
            self.stats.connects += 1
            self.backoff.reset()
            self.connected.set()
            backlog = self.store.pending(self.config.dev, limit=1_000_000_000)
            replay_until = backlog[-1].seq if backlog else -1
            log.info("mqtt_connected", extra={"dev": cfg.dev, "backlog": len(backlog)})
            if cfg.receipts is None:
                await self._drain(client, replay_until)
                return
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._receive(client), name=f"receipts-{cfg.dev}")
                tasks.create_task(self._drain(client, replay_until), name=f"drain-{cfg.dev}")

    def accept_receipt(self, data: bytes) -> int:
        """Verify one receipt and release the outbox up to it; how many messages left it.

        A receipt signed by another key, for another device, malformed, claiming a seq this
        device has not produced, or naming another message at that seq than this device's (a
        chain restarted under the same id, whose old receipt is still retained) is refused
        (counted, logged) and releases nothing; one at or below the highest receipt seen
        releases nothing either.
        """
        receipts = self.config.receipts
        assert receipts is not None
        dev = self.config.dev
        try:
            receipt = verify_receipt(data, public_key=receipts.gateway_key, dev=dev)
        except ReceiptError as exc:
            return self._refuse(str(exc))
        produced = self.store.head(dev).next_seq
        if receipt.seq >= produced:
            return self._refuse(
                f"receipt covers seq {receipt.seq}, the device has produced only up to "
                f"{produced - 1}"
            )
        own = self.store.message_hash(dev, receipt.seq)
        if own is not None and own != receipt.hash:
            return self._refuse(
                f"receipt covers seq {receipt.seq} of another chain (its message hash is not "
                "this device's): nothing released"
            )
        self.stats.receipts += 1
        released = self.store.release(dev, receipt.seq)
        if released:
            self.stats.released += released
            self.wakeup.set()
        return released

    def _refuse(self, reason: str) -> int:
        self.stats.receipts_refused += 1
        log.warning("receipt_refused", extra={"dev": self.config.dev, "error": reason})
        return 0

    async def _receive(self, client: aiomqtt.Client) -> None:
        receipts = self.config.receipts
        assert receipts is not None
        async for message in client.messages:
            if message.topic.value == receipts.topic and isinstance(message.payload, bytes):
                self.accept_receipt(message.payload)

    async def _drain(self, client: aiomqtt.Client, replay_until: int) -> None:
        cfg = self.config
        slots = asyncio.Semaphore(cfg.max_inflight)
        last = -1
        resend = (
            _ResendTimer.start(
                cfg.receipts, self.store.receipted(cfg.dev), self.clock(), self.backoff.rng.random
            )
            if cfg.receipts is not None
            else None
        )
        async with asyncio.TaskGroup() as tasks:
            while True:
                if self.offline:
                    raise aiomqtt.MqttError("device switched offline")
                entries = self.store.pending(cfg.dev, after=last, limit=cfg.max_inflight)
                if not entries:
                    self.wakeup.clear()
                    if self.store.pending(cfg.dev, after=last, limit=1):
                        continue
                    if resend is None or not self.store.pending(cfg.dev, limit=1):
                        await self.wakeup.wait()
                        continue
                    wait_s = resend.due_in(self.store.receipted(cfg.dev), self.clock())
                    if wait_s <= 0:
                        last = -1  # publish again whatever no receipt covers
                        self.stats.resends += 1
                        log.info(
                            "resending_unreceipted",
                            extra={"dev": cfg.dev, "outbox": self.store.stats(cfg.dev).count},
                        )
                        continue
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.wakeup.wait(), timeout=wait_s)
                    continue
                for entry in entries:
                    await slots.acquire()
                    last = entry.seq
                    late = entry.seq <= replay_until or (
                        self.clock() * 1000 - entry.created_ms > cfg.historical_after_ms
                    )
                    publish = self._publish(client, entry, late, slots)
                    try:
                        tasks.create_task(publish, name=f"publish-{cfg.dev}-{entry.seq}")
                    except RuntimeError as exc:
                        # A publish failed (the connection is gone) and the group is
                        # shutting down before this loop reached an await: the link is down.
                        publish.close()
                        slots.release()
                        raise aiomqtt.MqttError(f"link lost while publishing: {exc}") from exc

    async def _publish(
        self, client: aiomqtt.Client, entry: OutboxEntry, late: bool, slots: asyncio.Semaphore
    ) -> None:
        try:
            props = historical_properties() if late else None
            self.stats.published += 1
            self.stats.historical += late
            await client.publish(self.config.topic, entry.data, qos=1, properties=props)
            if self.config.receipts is None:
                self.store.ack(entry.dev, entry.seq)
            self.stats.acked += 1
        finally:
            slots.release()


@dataclass(slots=True, kw_only=True)
class _ResendTimer:
    """When to publish again what no receipt covers: the delays of ``ledger.backoff`` from
    ``resend_after_s`` up to ``resend_cap_s``, counted over resends without progress and
    reset by progress. The jitter spreads the devices of a fleet whose receipts all stalled
    at once (a gateway session taken over, a broker that lost its state)."""

    schedule: Schedule
    jitter: Callable[[], float]
    resends: int
    mark: int
    due: float

    @classmethod
    def start(
        cls, receipts: ReceiptConfig, mark: int, now: float, jitter: Callable[[], float]
    ) -> _ResendTimer:
        base = receipts.resend_after_s
        schedule = Schedule(base_s=base, cap_s=max(base, receipts.resend_cap_s))
        return cls(
            schedule=schedule,
            jitter=jitter,
            resends=0,
            mark=mark,
            due=now + schedule.delay(0, jitter()),
        )

    def due_in(self, mark: int, now: float) -> float:
        """Seconds until the next resend (<= 0: now; the timer then restarts, doubled)."""
        if mark > self.mark:  # a receipt progressed: start over from the first delay
            self.mark, self.resends = mark, 0
            self.due = now + self.schedule.delay(0, self.jitter())
        wait = self.due - now
        if wait <= 0:
            self.resends += 1
            self.due = now + self.schedule.delay(self.resends, self.jitter())
        return wait
