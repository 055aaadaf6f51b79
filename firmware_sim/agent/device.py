"""One device's production line: readings -> batches -> signed, committed messages."""

from __future__ import annotations

from dataclasses import dataclass

from ledger.telemetry import TelemetryBatch

from .batcher import Batcher, Reading
from .envelope import sign_batch
from .store import ChainHead, ChainStore, DropNotice, OutboxEntry


@dataclass(slots=True, kw_only=True)
class Device:
    """Feeds readings to its batcher and commits each due batch as the next chain message."""

    dev: str
    seed: bytes
    store: ChainStore
    batcher: Batcher

    def ingest(self, reading: Reading, *, now_ms: int) -> list[OutboxEntry]:
        """Take one reading; return the messages it completed (already durable)."""
        return [self.commit(batch, now_ms=now_ms) for batch in self.batcher.feed(reading)]

    def flush(self, *, now_ms: int) -> list[OutboxEntry]:
        """Commit the samples still pending (graceful shutdown)."""
        return [self.commit(batch, now_ms=now_ms) for batch in self.batcher.flush()]

    def commit(self, batch: TelemetryBatch, *, now_ms: int) -> OutboxEntry:
        """Sign ``batch`` as the next message and commit it with the new chain head."""

        def build(head: ChainHead, notice: DropNotice | None) -> bytes:
            return sign_batch(dev=self.dev, seed=self.seed, head=head, batch=batch, notice=notice)

        return self.store.append(self.dev, build, now_ms=now_ms)
