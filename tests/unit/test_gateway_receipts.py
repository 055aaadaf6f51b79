"""Receipts after a commit (``gateway.receipts``): published per device, deferred when the
store cannot be read, never an error that stops the gateway."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from gateway.pipeline import Outcome, OutcomeKind
from gateway.receipts import ReceiptPublisher
from gateway.store import StoreError
from gateway.store.memory import open_memory_store
from ledger.keys import SigningKey, generate_seed, public_key_from_seed
from ledger.protocol import telemetry_topic

pytestmark = pytest.mark.asyncio


def _key() -> SigningKey:
    seed = generate_seed()
    return SigningKey(name="gw.test", seed=seed, public_key=public_key_from_seed(seed))


class _Unreadable:
    """A store whose reads fail as a PostgreSQL restart makes them fail."""

    async def receipt_heads(self, devices: Sequence[str]) -> object:
        raise StoreError("store read failed: terminating connection due to administrator command")

    async def latest_checkpoint(self) -> object:
        raise StoreError("store read failed: terminating connection due to administrator command")


async def test_unreadable_store_defers_receipts_without_raising(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The batch is committed and acknowledged: its receipts wait, the gateway goes on."""
    published: list[tuple[str, bytes]] = []
    receipts = ReceiptPublisher(key=_key(), publish=lambda t, p: published.append((t, p)))
    topics = [telemetry_topic("fleet-1", "bus-1")]
    outcomes = [Outcome(kind=OutcomeKind.ACCEPTED, leaf_index=7)]
    sent = await receipts.after_commit(_Unreadable(), topics, outcomes)  # type: ignore[arg-type]
    assert (sent, published, receipts.stats.deferred) == (0, [], 1)
    assert "receipts_deferred" in caplog.text


async def test_nothing_logged_means_no_receipt_and_no_read() -> None:
    """A batch of quarantined messages reads nothing and publishes nothing."""
    receipts = ReceiptPublisher(key=_key(), publish=lambda t, p: None)
    topics = [telemetry_topic("fleet-1", "bus-1")]
    outcomes = [Outcome(kind=OutcomeKind.QUARANTINED)]
    assert await receipts.after_commit(_Unreadable(), topics, outcomes) == 0  # type: ignore[arg-type]
    assert receipts.stats.deferred == 0


async def test_empty_store_publishes_nothing() -> None:
    """A device with nothing logged yet gets no receipt (there is nothing to acknowledge)."""
    published: list[tuple[str, bytes]] = []
    receipts = ReceiptPublisher(key=_key(), publish=lambda t, p: published.append((t, p)))
    store = await open_memory_store()
    try:
        topics = [telemetry_topic("fleet-1", "bus-1")]
        outcomes = [Outcome(kind=OutcomeKind.ACCEPTED, leaf_index=0)]
        assert await receipts.after_commit(store, topics, outcomes) == 0
    finally:
        await store.close()
    assert published == []
