"""Anchoring signed checkpoints on a ledger (contract 3), idempotent across crashes.

Coalescing: only the newest checkpoint not yet anchored is submitted; the older unanchored
ones become ``superseded`` (a consistency proof links them to the anchored one). A receipt is
stored as soon as the backend returns it, ``pending`` until the backend calls it final;
:meth:`Anchorer.sync` refreshes pending receipts. After a crash the same ``sync`` resubmits
(backends return the existing receipt for an identical request) and refreshes, so nothing is
anchored twice or forgotten. ``AnchorUnavailable`` backs off exponentially with jitter.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any

from ledger.anchors.base import AnchorBackend, AnchorReceipt, AnchorRequest, AnchorState
from ledger.anchors.errors import AnchorUnavailable
from ledger.backoff import Backoff
from ledger.checkpoint import log_id

from .store import AnchorStatus, CheckpointRecord, Store, StoreError

log = logging.getLogger(__name__)


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def _status(receipt: AnchorReceipt) -> AnchorStatus:
    return AnchorStatus.FINAL if receipt.state is AnchorState.FINAL else AnchorStatus.PENDING


class Anchorer:
    """Moves checkpoints from ``unanchored`` through ``pending`` to ``final``."""

    def __init__(
        self,
        *,
        store: Store,
        backend: AnchorBackend,
        origin: str,
        refresh_s: float = 2.0,
        max_backoff_s: float = 60.0,
        clock_ms: Callable[[], int] = _wall_clock_ms,
        sleep: Callable[[float], Coroutine[Any, Any, None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if refresh_s <= 0 or max_backoff_s < refresh_s:
            raise ValueError("need 0 < refresh_s <= max_backoff_s")
        self.store = store
        self.backend = backend
        self.log_id = log_id(origin)
        self.refresh_s = refresh_s
        self.max_backoff_s = max_backoff_s
        self._backoff = Backoff(base_s=refresh_s, cap_s=max_backoff_s)
        self._clock_ms = clock_ms
        self._sleep = sleep
        self._jitter = jitter
        self.failures = 0

    async def sync(self) -> None:
        """Submit the newest unanchored checkpoint and refresh every pending one."""
        waiting = await self.store.checkpoints_in([AnchorStatus.UNANCHORED])
        if waiting:
            await self._submit(waiting[-1])
        for record in await self.store.checkpoints_in([AnchorStatus.PENDING]):
            await self._refresh(record)

    async def _submit(self, record: CheckpointRecord) -> None:
        request = AnchorRequest(log_id=self.log_id, tree_size=record.size, root=record.root)
        receipt = await self.backend.submit(request)
        await self._store(record.size, receipt)
        log.info(
            "checkpoint_anchored",
            extra={"size": record.size, "backend": receipt.backend, "state": receipt.state.value},
        )

    async def _refresh(self, record: CheckpointRecord) -> None:
        receipt = await self.backend.refresh(self.log_id, record.size)
        if receipt is None:
            # The ledger lost the anchor (dropped transaction, reorg): submit it again.
            await self._submit(record)
            return
        if receipt.state is AnchorState.FINAL:
            await self._store(record.size, receipt)

    async def _store(self, size: int, receipt: AnchorReceipt) -> None:
        await self.store.record_anchor(
            size=size,
            backend=receipt.backend,
            state=_status(receipt),
            receipt=receipt.to_json(),
            now_ms=self._clock_ms(),
        )

    def backoff_s(self) -> float:
        """The delay before the next attempt after ``failures`` consecutive failures."""
        return self._backoff.delay(self.failures, self._jitter())

    async def run(self, stop: asyncio.Event) -> None:
        """Call :meth:`sync` every ``refresh_s`` (backing off while the ledger is down)."""
        while not stop.is_set():
            try:
                await self.sync()
            except (AnchorUnavailable, StoreError) as exc:
                # The ledger, or the store (a PostgreSQL restart), is away: back off and retry.
                self.failures += 1
                log.warning(
                    "anchor_unavailable", extra={"error": str(exc), "failures": self.failures}
                )
            else:
                self.failures = 0
            delay = self.backoff_s() if self.failures else self.refresh_s
            sleeper = asyncio.create_task(self._sleep(delay), name="anchor-sleep")
            stopped = asyncio.create_task(stop.wait(), name="anchor-stop")
            try:
                await asyncio.wait({sleeper, stopped}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                stopped.cancel()
