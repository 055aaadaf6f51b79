"""The gateway process: intake -> pipeline -> acknowledgements, checkpoints and anchors.

``run(settings)`` owns every resource through one ``AsyncExitStack`` and runs its stages as
named tasks of one ``TaskGroup``. SIGTERM or SIGINT stops the intake, lets the pipeline
drain what it already received, signs a final checkpoint, tries one last anchor, and closes
everything in reverse order under ``settings.shutdown_timeout_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import time
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from ledger.anchors import AnchorBackend, AnchorUnavailable
from ledger.backoff import Backoff
from ledger.keys import SigningKey, load_key_file
from ledger.private_files import private_dir

from .anchoring import Anchorer
from .checkpointer import Checkpointer, CheckpointPolicy
from .config import AnchorBackendName, GatewaySettings
from .gbt32960 import GbtListener
from .intake import Delivery, MqttIntake
from .metrics import GatewayMetrics
from .pipeline import Authorized, Outcome, OutcomeKind, Pipeline, Verified
from .receipts import ReceiptPublisher
from .store import AnchorStatus, Store, StoreError
from .store.postgresql.election import SignerLock
from .store_choice import open_store
from .verification import Incoming, Policy
from .witnessing import Witnessing

log = logging.getLogger(__name__)

STORE_RETRY_MAX_S = 30.0


@dataclass
class GatewayRuntime:
    """The live parts of a running gateway (exposed for tests and the demo)."""

    settings: GatewaySettings
    store: Store
    pipeline: Pipeline
    intake: MqttIntake
    checkpointer: Checkpointer | None
    """``None`` when ``checkpoints.enabled`` is off: another process of the deployment signs."""
    anchorer: Anchorer | None
    metrics: GatewayMetrics
    receipts: ReceiptPublisher | None = None
    """``None`` when ``mqtt.receipts`` is off."""
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    drained: asyncio.Event = field(default_factory=asyncio.Event)
    metrics_port: int | None = None
    witnessing: Witnessing | None = None
    """The witness clients, when ``[[witnesses]]`` are configured and this process signs."""
    gbt32960: GbtListener | None = None
    """The GB/T 32960 TCP listener, when ``[gbt32960] enabled``."""
    signer: SignerLock | None = None
    """On PostgreSQL: the lock that makes one gateway of the database its checkpoint signer."""


def _incoming(delivery: Delivery) -> Incoming:
    return Incoming(
        topic=delivery.topic,
        payload=delivery.payload,
        received_at_ms=delivery.received_at_ms,
        historical=delivery.historical,
    )


async def open_anchor_backend(
    settings: GatewaySettings, key: SigningKey, stack: AsyncExitStack
) -> AnchorBackend:
    """Open the configured anchor backend and register its closing on ``stack``."""
    backend: AnchorBackend
    if settings.anchors.backend is AnchorBackendName.MEMORY:
        from ledger.anchors.memory import MemoryAnchorBackend

        backend = MemoryAnchorBackend()
    elif settings.anchors.backend is AnchorBackendName.LOCAL:
        from ledger.anchors.local import LocalAnchorBackend

        backend = await LocalAnchorBackend.open(settings.data_dir / "anchors.db", seed=key.seed)
    else:
        from ledger.anchors.evm import EvmAnchorBackend
        from ledger.anchors.evm_key import load_evm_key
        from ledger.anchors.evm_store import EvmTxStore

        anchors = settings.anchors
        # AnchorSettings refuses backend = "evm" without these three.
        assert anchors.rpc_url is not None
        assert anchors.contract is not None
        assert anchors.key_file is not None
        tx_store = await EvmTxStore.open(settings.data_dir / "evm-anchors.db")
        stack.push_async_callback(tx_store.aclose)
        backend = await EvmAnchorBackend.connect(
            rpc_url=anchors.rpc_url,
            contract=anchors.contract,
            store=tx_store,
            key=load_evm_key(key_file=anchors.key_file),
            confirmations=max(1, anchors.confirmations),
            poa=anchors.poa,
        )
    stack.push_async_callback(backend.aclose)
    return backend


class Gateway:
    """Builds the runtime from settings and runs its tasks until stopped."""

    def __init__(self, settings: GatewaySettings, *, clock_ms: Callable[[], int] | None = None):
        self.settings = settings
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self.runtime: GatewayRuntime | None = None
        self.started = asyncio.Event()

    async def run(self, *, install_signal_handlers: bool = True) -> None:
        """Run until SIGTERM/SIGINT (or ``request_stop``), then shut down gracefully."""
        settings = self.settings
        await asyncio.to_thread(private_dir, settings.data_dir)
        async with AsyncExitStack() as stack:
            runtime = await self._open(stack)
            self.runtime = runtime
            await asyncio.to_thread(runtime.intake.start)
            stack.callback(runtime.intake.stop)
            if settings.gbt32960.enabled:
                runtime.gbt32960 = await stack.enter_async_context(
                    GbtListener(
                        settings=settings.gbt32960,
                        store=runtime.store,
                        clock_ms=self._clock_ms,
                        on_appended=(runtime.checkpointer.notify if runtime.checkpointer else None),
                    )
                )
            if install_signal_handlers:
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(sig, runtime.stop.set)
                    stack.callback(loop.remove_signal_handler, sig)
            log.info(
                "gateway_started",
                extra={
                    "origin": settings.origin,
                    "broker": settings.mqtt.url,
                    "subscription": settings.mqtt.subscription,
                    "anchors": settings.anchors.backend.value,
                    "checkpoints": settings.checkpoints.enabled,
                    "metrics_port": runtime.metrics_port,
                },
            )
            self.started.set()
            await self._run_until_stopped(runtime)
            log.info("gateway_stopped", extra={"log_size": (await runtime.store.log_head()).size})

    async def _run_until_stopped(self, runtime: GatewayRuntime) -> None:
        """The stages until a stop is asked for; then the drain, the last checkpoint, anchor
        and cosignatures, all within ``shutdown_timeout_s``: past it, what is left is cut
        short. Nothing is lost: what was not committed was not acknowledged (the broker
        redelivers it), and what was not signed, anchored or cosigned is at the next start."""
        settings = self.settings
        deadline = asyncio.timeout(None)
        try:
            await self._stages(runtime, deadline)
        except TimeoutError:
            if not deadline.expired():
                raise
            log.warning("shutdown_timed_out", extra={"timeout_s": settings.shutdown_timeout_s})

    async def _stages(self, runtime: GatewayRuntime, deadline: asyncio.Timeout) -> None:
        settings = self.settings
        async with deadline:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._consume(runtime), name="intake-consumer")
                if runtime.signer is not None:
                    tasks.create_task(self._lead(runtime, runtime.signer), name="signer")
                elif runtime.checkpointer is not None:
                    tasks.create_task(self._sign(runtime), name="signing")
                tasks.create_task(self._ledger_metrics(runtime), name="ledger-metrics")
                await runtime.stop.wait()
                deadline.reschedule(asyncio.get_running_loop().time() + settings.shutdown_timeout_s)
                log.info("gateway_stopping", extra={"queued": runtime.intake.depth})
                if runtime.gbt32960 is not None:
                    await runtime.gbt32960.close()  # before the final checkpoint
                await asyncio.to_thread(runtime.intake.stop)
            # The checkpointer signed a last checkpoint after the drain; anchor it once more
            # and give each witness one bounded chance to cosign it.
            signing = runtime.signer is None or runtime.signer.held
            if runtime.anchorer is not None and signing:
                with contextlib.suppress(AnchorUnavailable):
                    await runtime.anchorer.sync()
            if runtime.witnessing is not None and signing:
                await runtime.witnessing.flush(
                    max(endpoint.timeout_s for endpoint in settings.witnesses)
                )

    @staticmethod
    async def _sign(rt: GatewayRuntime) -> None:
        """Checkpoints, anchors and witness submissions until the intake has drained (the
        checkpointer signs a last checkpoint then)."""
        async with asyncio.TaskGroup() as tasks:
            if rt.checkpointer is not None:
                tasks.create_task(rt.checkpointer.run(rt.drained), name="checkpoints")
            if rt.anchorer is not None:
                tasks.create_task(rt.anchorer.run(rt.drained), name="anchors")
            if rt.witnessing is not None:
                tasks.create_task(rt.witnessing.run(rt.drained), name="witnesses")

    async def _lead(self, rt: GatewayRuntime, signer: SignerLock) -> None:
        """Sign while this process holds the signer lock; wait for it while another does.

        Losing the lock (the database unreachable for a poll's deadline) cancels the signing
        at once, without a last checkpoint: another gateway signs from then on.
        """
        poll_s = rt.settings.store.signer_poll_s
        while not rt.drained.is_set():
            if not await signer.try_acquire():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(rt.drained.wait(), timeout=poll_s)
                continue
            log.info("signer_elected", extra={"origin": rt.settings.origin})
            signing = asyncio.create_task(self._sign(rt), name="signing")
            while not signing.done():
                await asyncio.wait({signing}, timeout=poll_s)
                if not signing.done() and not await signer.check():
                    signing.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await signing
                    log.warning("signer_lost", extra={"origin": rt.settings.origin})
                    break
            else:
                await signing  # drained: the last checkpoint is signed; errors propagate
                return

    async def _open(self, stack: AsyncExitStack) -> GatewayRuntime:
        settings = self.settings
        key = load_key_file(settings.key_file)
        store = await open_store(settings, stack)
        signer: SignerLock | None = None
        if settings.store.url is not None and settings.checkpoints.enabled:
            signer = SignerLock(
                settings.store.url.get_secret_value(),
                check_timeout_s=min(settings.store.signer_poll_s * 2, 5.0),
            )
            stack.push_async_callback(signer.release)
        metrics = GatewayMetrics()
        metrics_port: int | None = None
        if settings.metrics.port:
            metrics_port = metrics.serve(host=settings.metrics.host, port=settings.metrics.port)
            stack.callback(metrics.close)
        policy = Policy(
            max_message_bytes=settings.pipeline.max_message_bytes,
            max_future_skew_ms=settings.pipeline.max_future_skew_s * 1000,
            max_enrolment_skew_ms=settings.pipeline.max_enrolment_skew_s * 1000,
            fleets=frozenset(settings.fleets),
        )
        checkpointer: Checkpointer | None = None
        anchorer: Anchorer | None = None
        witnessing: Witnessing | None = None
        if settings.checkpoints.enabled and settings.witnesses:
            witnessing = Witnessing(
                endpoints=settings.witnesses, store=store, metrics=metrics, clock_ms=self._clock_ms
            )
            stack.push_async_callback(witnessing.aclose)
            await witnessing.load()
        if settings.checkpoints.enabled:
            checkpointer = Checkpointer(
                store=store,
                origin=settings.origin,
                key=key,
                policy=CheckpointPolicy(
                    every_leaves=settings.checkpoints.every_leaves,
                    every_s=settings.checkpoints.every_s,
                ),
                clock_ms=self._clock_ms,
                on_signed=witnessing.submit if witnessing is not None else None,
            )
            anchorer = Anchorer(
                store=store,
                backend=await open_anchor_backend(settings, key, stack),
                origin=settings.origin,
                refresh_s=settings.anchors.refresh_s,
                clock_ms=self._clock_ms,
            )
        intake = MqttIntake(
            settings=settings.mqtt, queue_max=settings.pipeline.queue_max, clock_ms=self._clock_ms
        )
        receipts = (
            ReceiptPublisher(key=key, publish=intake.publish_retained)
            if settings.mqtt.receipts
            else None
        )
        return GatewayRuntime(
            settings=settings,
            store=store,
            pipeline=Pipeline(store=store, policy=policy, workers=settings.pipeline.workers),
            intake=intake,
            receipts=receipts,
            checkpointer=checkpointer,
            anchorer=anchorer,
            metrics=metrics,
            metrics_port=metrics_port,
            witnessing=witnessing,
            signer=signer,
        )

    def request_stop(self) -> None:
        """Ask a running gateway to shut down gracefully."""
        if self.runtime is not None:
            self.runtime.stop.set()

    async def _consume(self, rt: GatewayRuntime) -> None:
        """Batches from the intake through the pipeline; ack after commit; drain on stop.

        Two batches are in flight at most: while batch N commits (SQLite in its own thread),
        batch N+1 has its signatures, schema and clock checked in the worker threads. The
        registry lookup of N+1 happens before commit N starts, so it never waits for it.
        """
        pipeline_settings = rt.settings.pipeline
        wait_s = max(pipeline_settings.batch_wait_ms / 1000, 0.05)
        held: tuple[Sequence[Delivery], Verified] | None = None
        try:
            while True:
                stopping = rt.stop.is_set()
                batch = await asyncio.to_thread(
                    rt.intake.get_batch,
                    max_items=pipeline_settings.batch_max,
                    wait_s=0.0 if stopping or held is not None else wait_s,
                )
                rt.metrics.queue_depth.set(rt.intake.depth)
                rt.metrics.broker_connected.set(1 if rt.intake.stats.connected else 0)
                if not batch and held is None:
                    if stopping:
                        return
                    continue
                authorized = await self._authorize(rt, batch) if batch else None
                committing = (
                    asyncio.create_task(self._commit(rt, *held), name="batch-commit")
                    if held is not None
                    else None
                )
                try:
                    verified = (
                        await rt.pipeline.verify(authorized) if authorized is not None else None
                    )
                finally:
                    if committing is not None:
                        await self._finish(rt, held, committing)
                held = (batch, verified) if verified is not None else None
        finally:
            rt.drained.set()

    async def _finish(
        self,
        rt: GatewayRuntime,
        held: tuple[Sequence[Delivery], Verified] | None,
        committing: asyncio.Task[list[Outcome]],
    ) -> None:
        """Wait for the commit of ``held``, then acknowledge it and count its outcomes."""
        assert held is not None
        outcomes = await committing
        rt.intake.ack(held[0])
        self._record(rt, outcomes)
        if rt.receipts is not None:
            await rt.receipts.after_commit(rt.store, [d.topic for d in held[0]], outcomes)
        if rt.checkpointer is not None:
            rt.checkpointer.notify(
                sum(outcome.kind is OutcomeKind.ACCEPTED for outcome in outcomes)
            )

    async def _authorize(self, rt: GatewayRuntime, batch: Sequence[Delivery]) -> Authorized:
        """The registry stage of ``batch``; while the store fails (a PostgreSQL restart),
        hold the batch unacknowledged and retry."""
        backoff, failures = Backoff(base_s=0.5, cap_s=STORE_RETRY_MAX_S), 0
        incoming = [_incoming(d) for d in batch]
        while True:
            try:
                return await rt.pipeline.authorize(incoming)
            except StoreError as exc:
                self._store_unavailable(exc, len(batch), backoff.nominal(failures))
            await asyncio.sleep(backoff.delay(failures, random.random()))  # noqa: S311 - jitter
            failures += 1

    async def _commit(
        self, rt: GatewayRuntime, batch: Sequence[Delivery], verified: Verified
    ) -> list[Outcome]:
        """Commit ``batch``; while the store fails (disk full, locked), hold it and retry.

        A retry runs every check again: the registry may have changed while the store was
        unavailable.
        """
        backoff, failures = Backoff(base_s=0.5, cap_s=STORE_RETRY_MAX_S), 0
        try:
            return await rt.pipeline.commit(verified)
        except StoreError as exc:
            self._store_unavailable(exc, len(batch), backoff.nominal(failures))
        incoming = [_incoming(d) for d in batch]
        while True:
            await asyncio.sleep(backoff.delay(failures, random.random()))  # noqa: S311 - jitter
            failures += 1
            try:
                return await rt.pipeline.process(incoming)
            except StoreError as exc:
                self._store_unavailable(exc, len(batch), backoff.nominal(failures))

    @staticmethod
    def _store_unavailable(exc: StoreError, held: int, delay: float) -> None:
        # Not log.exception: the reason is in "error"; no traceback per retry.
        log.error(
            "store_unavailable_not_acknowledging",
            extra={"error": str(exc), "held": held, "retry_s": round(delay, 2)},
        )

    @staticmethod
    def _record(rt: GatewayRuntime, outcomes: Sequence[Outcome]) -> None:
        m = rt.metrics
        m.received.inc(len(outcomes))
        m.batch_size.observe(len(outcomes))
        m.batch_seconds.observe(rt.pipeline.stats.last_commit_seconds)
        for outcome in outcomes:
            if outcome.kind is OutcomeKind.ACCEPTED:
                m.accepted.inc()
                if outcome.seq_jump:
                    m.seq_jumps.inc()
            elif outcome.kind is OutcomeKind.DUPLICATE:
                m.duplicates.inc()
            elif outcome.reason is not None:
                m.rejected.labels(reason=outcome.reason.value).inc()

    async def _ledger_metrics(self, rt: GatewayRuntime) -> None:
        """Refresh the log, checkpoint and anchor gauges every couple of seconds."""
        m = rt.metrics
        while not rt.drained.is_set():
            try:
                head = await rt.store.log_head()
                latest = await rt.store.latest_checkpoint()
                waiting = await rt.store.checkpoints_in(
                    [AnchorStatus.PENDING, AnchorStatus.UNANCHORED]
                )
                final = await rt.store.latest_final_checkpoint()
            except StoreError as exc:
                # The store is away (a PostgreSQL restart): the gauges wait for it.
                log.warning("ledger_metrics_store_unavailable", extra={"error": str(exc)})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(rt.drained.wait(), timeout=2.0)
                continue
            size = latest.size if latest else 0
            m.log_size.set(head.size)
            m.checkpoint_size.set(size)
            m.checkpoint_lag_leaves.set(head.size - size)
            if latest is not None:
                m.checkpoint_age_seconds.set((self._clock_ms() - latest.signed_at_ms) / 1000)
            m.anchored_size.set(final.size if final else 0)
            m.anchor_lag_leaves.set(size - (final.size if final else 0))
            m.anchor_pending.set(len(waiting))
            if rt.witnessing is not None:
                rt.witnessing.update_metrics()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(rt.drained.wait(), timeout=2.0)


async def run(settings: GatewaySettings) -> None:
    """Run the gateway with ``settings`` until SIGTERM or SIGINT."""
    await Gateway(settings).run()
