"""Signed checkpoints: every N new leaves or T seconds (whichever first), and on shutdown.

Before signing, the checkpointer proves from the store that the new tree extends the last
signed one (an RFC 9162 consistency proof, verified like any outside verifier would): the
gateway never signs two checkpoints that are inconsistent with each other. If the store
ever disagrees with itself, :class:`InconsistentLogError` stops the gateway instead.

Every checkpoint carries the evidence v2 device index line (``voltproof-index/1 <root>``,
``docs/protocol.md``) of exactly the prefix it signs. The index is kept in memory: built once
from the store (:meth:`StoreReader.device_index_at`) at the first checkpoint after start-up,
then fed only the leaves appended since the previous checkpoint
(:meth:`StoreReader.extend_device_index`), so a checkpoint costs O(changed devices x log
devices) hashes, not a replay.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.device_index import DeviceIndex, index_line
from ledger.errors import VoltproofError
from ledger.keys import SigningKey
from ledger.merkle import MerkleProofError, verify_consistency

from .store import CheckpointRecord, Store, StoreError

log = logging.getLogger(__name__)


class InconsistentLogError(VoltproofError):
    """The log no longer extends the last signed checkpoint: refuse to sign anything."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckpointPolicy:
    """When to sign: after ``every_leaves`` new leaves or ``every_s`` seconds."""

    every_leaves: int = 1000
    every_s: float = 5.0

    def __post_init__(self) -> None:
        if self.every_leaves < 1:
            raise ValueError(f"every_leaves must be >= 1, got {self.every_leaves}")
        if self.every_s <= 0:
            raise ValueError(f"every_s must be > 0, got {self.every_s}")


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class Checkpointer:
    """Signs checkpoints of one log with the gateway key and stores them."""

    def __init__(
        self,
        *,
        store: Store,
        origin: str,
        key: SigningKey,
        policy: CheckpointPolicy | None = None,
        clock_ms: Callable[[], int] = _wall_clock_ms,
        sleep: Callable[[float], Coroutine[Any, Any, None]] = asyncio.sleep,
        on_signed: Callable[[CheckpointRecord], None] | None = None,
    ) -> None:
        self.store = store
        self._on_signed = on_signed
        self.origin = origin
        self.key = key
        self.policy = policy or CheckpointPolicy()
        self._clock_ms = clock_ms
        self._sleep = sleep
        self._wake = asyncio.Event()
        self._pending = 0
        self.signed = 0
        self._index: DeviceIndex | None = None
        self._index_size = 0

    def notify(self, appended: int) -> None:
        """Count ``appended`` new leaves; wakes :meth:`run` once N have accumulated."""
        self._pending += appended
        if self._pending >= self.policy.every_leaves:
            self._wake.set()

    async def checkpoint(self) -> CheckpointRecord | None:
        """Sign and store a checkpoint of the current log if it grew; return it.

        ``on_signed`` (e.g. waking the anchorer) is called with every new checkpoint.
        """
        head = await self.store.log_head()
        last = await self.store.latest_checkpoint()
        self._pending = 0
        if head.size == 0 or (last is not None and last.size == head.size):
            if last is not None and last.root != head.root:
                raise InconsistentLogError(
                    f"log of size {head.size} has root {head.root.hex()}, the signed "
                    f"checkpoint says {last.root.hex()}"
                )
            return None
        if last is not None:
            await self._check_extends(last, head.size, head.root)
        index_root = await self._index_root(head.size)
        note = sign_checkpoint(
            Checkpoint(
                origin=self.origin,
                size=head.size,
                root=head.root,
                extensions=(index_line(index_root),),
            ),
            name=self.key.name,
            seed=self.key.seed,
        )
        record = CheckpointRecord(
            size=head.size, root=head.root, note=note, signed_at_ms=self._clock_ms()
        )
        await self.store.add_checkpoint(record)
        self.signed += 1
        if self._on_signed is not None:
            self._on_signed(record)
        log.info(
            "checkpoint_signed",
            extra={
                "origin": self.origin,
                "size": head.size,
                "root": head.root.hex(),
                "index_root": index_root.hex(),
                "devices": len(self._index or ()),
            },
        )
        return record

    async def _index_root(self, size: int) -> bytes:
        """The device index root of the first ``size`` leaves (the log only grows)."""
        if self._index is None or size < self._index_size:
            self._index = await self.store.device_index_at(size)
        elif size > self._index_size:
            try:
                await self.store.extend_device_index(self._index, start=self._index_size, size=size)
            except BaseException:
                self._index = None  # half fed: rebuild from the store next time
                raise
        self._index_size = size
        # Hashing the changed entries is CPU work (seconds for a first root of 100,000
        # devices): off the event loop, so intake keeps running meanwhile.
        return await asyncio.to_thread(self._index.root)

    async def _check_extends(self, last: CheckpointRecord, size: int, root: bytes) -> None:
        if size < last.size:
            raise InconsistentLogError(
                f"log size {size} is below the signed checkpoint size {last.size}"
            )
        proof = await self.store.consistency_proof(last.size, size)
        try:
            verify_consistency(
                size1=last.size, size2=size, proof=proof, root1=last.root, root2=root
            )
        except MerkleProofError as exc:
            raise InconsistentLogError(
                f"log of size {size} does not extend the signed checkpoint {last.size}: {exc}"
            ) from exc

    async def run(self, stop: asyncio.Event) -> None:
        """Sign every N leaves or T seconds until ``stop`` is set, then sign a last one."""
        while not stop.is_set():
            timer = asyncio.create_task(self._sleep(self.policy.every_s), name="checkpoint-timer")
            woken = asyncio.create_task(self._wake.wait(), name="checkpoint-wake")
            stopped = asyncio.create_task(stop.wait(), name="checkpoint-stop")
            try:
                await asyncio.wait({timer, woken, stopped}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (timer, woken, stopped):
                    task.cancel()
            self._wake.clear()
            if not stop.is_set():
                try:
                    await self.checkpoint()
                except StoreError as exc:
                    # Disk full or locked: the next tick retries (the log only grows).
                    log.error(  # noqa: TRY400 - the reason is in "error"; no traceback per retry
                        "checkpoint_store_unavailable", extra={"error": str(exc)}
                    )
        await self.checkpoint()
