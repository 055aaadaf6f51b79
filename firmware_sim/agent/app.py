"""``voltproof agent``: one device sampling at 1 Hz, signing, buffering and publishing.

:func:`run` is the whole app: an :class:`~contextlib.AsyncExitStack` owns the state file
and the source, a :class:`~asyncio.TaskGroup` runs the sampler and the MQTT link. SIGTERM
stops intake, commits the pending samples, gives the link ``drain_timeout_s`` to publish
what it can (the rest stays in the outbox for the next start) and closes in reverse.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import time
from collections.abc import Awaitable, Callable

from ledger.errors import VoltproofError

from .backoff import Backoff
from .batcher import Batcher
from .config import AgentSettings
from .device import Device
from .identity import load_seed
from .link import Link, LinkConfig, ReceiptConfig
from .source import SampleSource, SourceError
from .store import ChainStore

log = logging.getLogger("voltproof.agent")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class StoppedError(VoltproofError):
    """Raised inside the task group to end it on request."""


def tls_context(settings: AgentSettings) -> ssl.SSLContext | None:
    """The client TLS context (CA pinning, optional client certificate), or None."""
    mqtt = settings.mqtt
    if not mqtt.tls:
        return None
    context = ssl.create_default_context(
        cafile=str(mqtt.ca_file) if mqtt.ca_file is not None else None
    )
    if mqtt.cert_file is not None and mqtt.key_file is not None:
        context.load_cert_chain(str(mqtt.cert_file), str(mqtt.key_file))
    return context


def link_config(settings: AgentSettings) -> LinkConfig:
    """The link parameters of ``settings``."""
    mqtt = settings.mqtt
    gateway_key = settings.receipts.gateway_public_key
    receipts = (
        ReceiptConfig(
            topic=settings.receipt_topic,
            gateway_key=gateway_key,
            resend_after_s=settings.receipts.resend_after_s,
            resend_cap_s=settings.receipts.resend_cap_s,
        )
        if gateway_key is not None
        else None
    )
    return LinkConfig(
        dev=settings.device_id,
        host=mqtt.host,
        port=mqtt.port,
        topic=settings.topic,
        status_topic=settings.status_topic,
        username=mqtt.username,
        password=mqtt.password.get_secret_value() if mqtt.password is not None else None,
        tls_context=tls_context(settings),
        keepalive_s=mqtt.keepalive_s,
        max_inflight=mqtt.max_inflight,
        historical_after_ms=settings.historical_after_ms,
        receipts=receipts,
    )


def open_source(
    settings: AgentSettings, stack: contextlib.AsyncExitStack, *, now_ms: int
) -> SampleSource:
    """The sample source named in ``settings.source``."""
    if settings.source.type == "can":
        from .can_source import CanSource

        source = CanSource.open(
            interface=settings.source.can_interface,
            channel=settings.source.can_channel,
            bitrate=settings.source.can_bitrate,
            dbc_file=settings.source.dbc_file,
            stale_after_ms=round(settings.source.stale_after_s * 1000),
        )
        stack.callback(source.close)
        return source
    from .physics_source import simulated_source

    return simulated_source(
        settings.kind, device_id=settings.device_id, seed=settings.source.seed, start_ms=now_ms
    )


async def sample_loop(
    *,
    device: Device,
    source: SampleSource,
    link: Link,
    clock: Clock,
    sleep: Sleep,
    period_ms: int = 1000,
    stop: asyncio.Event,
) -> None:
    """Read the source every ``period_ms`` on a fixed grid; commit and hand over due batches."""
    next_ms = (int(clock() * 1000) // period_ms + 1) * period_ms
    while not stop.is_set():
        await sleep(max(0.0, next_ms / 1000 - clock()))
        try:
            reading = source.read(next_ms)
        except SourceError as exc:
            log.warning("sample_missed", extra={"dev": device.dev, "t": next_ms, "error": str(exc)})
        else:
            entries = device.ingest(reading, now_ms=int(clock() * 1000))
            for entry in entries:
                log.info(
                    "message_committed",
                    extra={"dev": device.dev, "seq": entry.seq, "bytes": len(entry.data)},
                )
            if entries:
                link.notify()
        next_ms += period_ms
        now_ms = clock() * 1000
        if now_ms - next_ms > 10 * period_ms:  # suspended or clock jumped: skip ahead
            next_ms = (int(now_ms) // period_ms + 1) * period_ms
    for entry in device.flush(now_ms=int(clock() * 1000)):
        log.info(
            "message_committed",
            extra={"dev": device.dev, "seq": entry.seq, "bytes": len(entry.data), "flush": True},
        )
    link.notify()


async def _stop_after(sampler: asyncio.Task[None], link: Link, drain_timeout_s: float) -> None:
    await sampler  # returns once stop is set and the pending samples are committed
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(drain_timeout_s):
            while link.store.stats(link.config.dev).count:
                link.wakeup.set()
                await asyncio.sleep(0.05)
    raise StoppedError


async def run(
    settings: AgentSettings,
    *,
    source: SampleSource | None = None,
    clock: Clock = time.time,
    sleep: Sleep = asyncio.sleep,
    stop: asyncio.Event | None = None,
    drain_timeout_s: float = 5.0,
) -> None:
    """Run one agent until ``stop`` is set or SIGTERM/SIGINT arrives."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    async with contextlib.AsyncExitStack() as stack:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
                stack.callback(loop.remove_signal_handler, sig)
        seed = load_seed(settings.key_file, device_id=settings.device_id)
        store = stack.enter_context(
            ChainStore(
                path=settings.state_file,
                max_messages=settings.outbox.max_messages,
                max_bytes=settings.outbox.max_bytes,
                synchronous=settings.outbox.synchronous,
            )
        )
        head = store.head(settings.device_id)
        log.info(
            "agent_started",
            extra={
                "dev": settings.device_id,
                "next_seq": head.next_seq,
                "outbox": store.stats(settings.device_id).count,
            },
        )
        source = source or open_source(settings, stack, now_ms=int(clock() * 1000))
        batcher = Batcher(
            kind=settings.kind, period=settings.period_s, pre_fault_samples=settings.pre_fault_s
        )
        device = Device(dev=settings.device_id, seed=seed, store=store, batcher=batcher)
        backoff = Backoff(base_s=settings.backoff.base_s, cap_s=settings.backoff.cap_s)
        link = Link(
            config=link_config(settings), store=store, backoff=backoff, clock=clock, sleep=sleep
        )
        link.notify()
        try:
            async with asyncio.TaskGroup() as tasks:
                sampler = tasks.create_task(
                    sample_loop(
                        device=device, source=source, link=link, clock=clock, sleep=sleep, stop=stop
                    ),
                    name="sampler",
                )
                tasks.create_task(link.run(), name="link")
                tasks.create_task(_stop_after(sampler, link, drain_timeout_s), name="stopper")
        except* StoppedError:
            pass
        stats = store.stats(settings.device_id)
        log.info(
            "agent_stopped",
            extra={
                "dev": settings.device_id,
                "acked": link.stats.acked,
                "outbox": stats.count,
                "dropped_total": stats.dropped_total,
            },
        )
