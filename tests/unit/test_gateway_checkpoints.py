"""Checkpointer and Anchorer over a real store, with the memory and local anchor backends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
import pytest_asyncio

from gateway.anchoring import Anchorer
from gateway.checkpointer import Checkpointer, CheckpointPolicy, InconsistentLogError
from gateway.store import AnchorStatus, CheckpointRecord, SqliteStore, StoreError
from gateway.store.merkle_nodes import INSERT_NODES_SQL, UPDATE_SIZE_SQL
from ledger.anchors.base import AnchorState
from ledger.anchors.errors import AnchorUnavailable
from ledger.anchors.local import LocalAnchorBackend
from ledger.anchors.memory import MemoryAnchorBackend, MemoryLedger
from ledger.checkpoint import verify_checkpoint
from ledger.keys import SigningKey, generate_seed, public_key_from_seed
from ledger.merkle import hash_leaf, plan_append

ORIGIN = "voltproof.example/gw-test"


def gateway_key() -> SigningKey:
    """A fresh gateway key."""
    seed = generate_seed()
    return SigningKey(name="gw-test", seed=seed, public_key=public_key_from_seed(seed))


async def grow(store: SqliteStore, count: int) -> None:
    """Append ``count`` raw leaves to the store's log (nodes only)."""
    async with store._write() as db:
        state = await store._log_state()
        plan = plan_append(state, [hash_leaf(bytes([state.size + i])) for i in range(count)])
        await db.executemany(INSERT_NODES_SQL, plan.rows())
        await db.execute(UPDATE_SIZE_SQL, (plan.state.size,))


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """A fresh store."""
    opened = await SqliteStore.open(tmp_path / "gateway.db")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.mark.asyncio
async def test_checkpoint_signed_and_verifiable(store: SqliteStore) -> None:
    """A checkpoint of the grown log verifies under the gateway's verifier key."""
    key = gateway_key()
    checkpointer = Checkpointer(store=store, origin=ORIGIN, key=key, clock_ms=lambda: 7)
    assert await checkpointer.checkpoint() is None
    await grow(store, 5)
    record = await checkpointer.checkpoint()
    assert record is not None
    parsed = verify_checkpoint(record.note, verifier_key=key.verifier_key, origin=ORIGIN)
    assert (parsed.size, parsed.root) == (5, (await store.log_head()).root)
    assert await checkpointer.checkpoint() is None
    assert (await store.latest_checkpoint()) == record


@pytest.mark.asyncio
async def test_refuses_to_sign_an_inconsistent_log(store: SqliteStore) -> None:
    """A stored checkpoint the log does not extend stops the checkpointer."""
    await grow(store, 3)
    await store.add_checkpoint(
        CheckpointRecord(size=2, root=b"\x07" * 32, note="x", signed_at_ms=1)
    )
    checkpointer = Checkpointer(store=store, origin=ORIGIN, key=gateway_key())
    with pytest.raises(InconsistentLogError, match="does not extend the signed checkpoint 2"):
        await checkpointer.checkpoint()


@pytest.mark.asyncio
async def test_refuses_same_size_other_root(store: SqliteStore) -> None:
    """A signed checkpoint at the current size with another root is an inconsistency."""
    await grow(store, 3)
    await store.add_checkpoint(
        CheckpointRecord(size=3, root=b"\x07" * 32, note="x", signed_at_ms=1)
    )
    checkpointer = Checkpointer(store=store, origin=ORIGIN, key=gateway_key())
    with pytest.raises(InconsistentLogError, match="the signed checkpoint says"):
        await checkpointer.checkpoint()


@pytest.mark.asyncio
async def test_store_refuses_two_roots_for_one_size(store: SqliteStore) -> None:
    """The store never holds two checkpoints of one size with different roots."""
    await store.add_checkpoint(
        CheckpointRecord(size=1, root=b"\x01" * 32, note="a", signed_at_ms=1)
    )
    with pytest.raises(StoreError, match="checkpoint 1 is stored with root"):
        await store.add_checkpoint(
            CheckpointRecord(size=1, root=b"\x02" * 32, note="b", signed_at_ms=1)
        )


@pytest.mark.asyncio
async def test_run_signs_on_leaf_count_and_on_stop(store: SqliteStore) -> None:
    """run() signs when N leaves were notified and once more when stopped."""
    never = asyncio.Event()

    async def sleep(_: float) -> None:
        await never.wait()

    first_signed = asyncio.Event()
    checkpointer = Checkpointer(
        store=store, origin=ORIGIN, key=gateway_key(),
        policy=CheckpointPolicy(every_leaves=4, every_s=3600), sleep=sleep,
        on_signed=lambda _: first_signed.set(),
    )  # fmt: skip
    stop = asyncio.Event()
    task = asyncio.create_task(checkpointer.run(stop))
    await grow(store, 4)
    checkpointer.notify(4)
    await first_signed.wait()
    await grow(store, 1)
    stop.set()
    await task
    assert [c.size for c in await store.checkpoints()] == [5, 4]


def test_policy_bounds() -> None:
    """A checkpoint policy needs positive bounds."""
    with pytest.raises(ValueError, match="every_leaves must be >= 1"):
        CheckpointPolicy(every_leaves=0)
    with pytest.raises(ValueError, match="every_s must be > 0"):
        CheckpointPolicy(every_s=0)


async def signed(store: SqliteStore, checkpointer: Checkpointer, count: int) -> int:
    """Grow the log and sign a checkpoint; return its size."""
    await grow(store, count)
    record = await checkpointer.checkpoint()
    assert record is not None
    return record.size


@pytest.mark.asyncio
async def test_memory_anchor_pending_then_final_across_restart(store: SqliteStore) -> None:
    """A pending anchor survives a restart and becomes final; older ones are superseded."""
    ledger = MemoryLedger()
    checkpointer = Checkpointer(store=store, origin=ORIGIN, key=gateway_key())
    await signed(store, checkpointer, 2)
    size = await signed(store, checkpointer, 3)
    first = Anchorer(
        store=store,
        origin=ORIGIN,
        backend=MemoryAnchorBackend(ledger=ledger, final_after_refreshes=2),
    )
    await first.sync()
    states = {c.size: c.anchor_state for c in await store.checkpoints()}
    assert states == {2: AnchorStatus.SUPERSEDED, 5: AnchorStatus.PENDING}
    restarted = Anchorer(
        store=store,
        origin=ORIGIN,
        backend=MemoryAnchorBackend(ledger=ledger, final_after_refreshes=2),
    )
    await restarted.sync()
    assert (await store.checkpoint(size)).anchor_state is AnchorStatus.FINAL
    assert ledger.count(first.log_id) == 1
    receipt = (await store.checkpoint(size)).receipt
    assert receipt is not None
    assert '"state":"final"' in receipt


@pytest.mark.asyncio
async def test_resubmits_after_crash_before_receipt(store: SqliteStore) -> None:
    """An anchor made but not recorded (crash) is recorded by the next sync, once."""
    ledger = MemoryLedger()
    checkpointer = Checkpointer(store=store, origin=ORIGIN, key=gateway_key())
    size = await signed(store, checkpointer, 4)
    anchorer = Anchorer(store=store, origin=ORIGIN, backend=MemoryAnchorBackend(ledger=ledger))
    record = await store.checkpoint(size)
    from ledger.anchors.base import AnchorRequest

    await anchorer.backend.submit(
        AnchorRequest(log_id=anchorer.log_id, tree_size=size, root=record.root)
    )
    await anchorer.sync()
    assert (await store.checkpoint(size)).anchor_state is AnchorStatus.FINAL
    assert ledger.count(anchorer.log_id) == 1


@pytest.mark.asyncio
async def test_unavailable_backs_off(store: SqliteStore) -> None:
    """While the ledger is down run() backs off exponentially and anchors once it is back."""
    ledger = MemoryLedger(available=False)
    checkpointer = Checkpointer(store=store, origin=ORIGIN, key=gateway_key())
    size = await signed(store, checkpointer, 1)
    delays: list[float] = []
    stop = asyncio.Event()

    async def sleep(delay: float) -> None:
        delays.append(delay)
        if len(delays) == 3:
            ledger.available = True
        if len(delays) == 5:
            stop.set()

    anchorer = Anchorer(
        store=store, origin=ORIGIN, backend=MemoryAnchorBackend(ledger=ledger),
        refresh_s=1.0, sleep=sleep, jitter=lambda: 1.0,
    )  # fmt: skip
    with pytest.raises(AnchorUnavailable, match="unavailable"):
        await anchorer.sync()
    await anchorer.run(stop)
    assert delays[:4] == [2.0, 4.0, 8.0, 1.0]
    assert (await store.checkpoint(size)).anchor_state is AnchorStatus.FINAL


@pytest.mark.asyncio
async def test_store_unavailable_backs_off_like_the_ledger(store: SqliteStore) -> None:
    """A store read that fails (PostgreSQL restarting) is retried with backoff, not fatal."""
    checkpointer = Checkpointer(store=store, origin=ORIGIN, key=gateway_key())
    size = await signed(store, checkpointer, 1)
    delays: list[float] = []
    stop = asyncio.Event()
    real = store.checkpoints_in

    async def failing(states: Sequence[AnchorStatus]) -> list[CheckpointRecord]:
        if len(delays) < 2:
            raise StoreError("store read failed: terminating connection")
        return await real(states)

    async def sleep(delay: float) -> None:
        delays.append(delay)
        if len(delays) == 4:
            stop.set()

    anchorer = Anchorer(
        store=store, origin=ORIGIN, backend=MemoryAnchorBackend(),
        refresh_s=1.0, sleep=sleep, jitter=lambda: 1.0,
    )  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "checkpoints_in", failing)
        await anchorer.run(stop)
    assert delays[:3] == [2.0, 4.0, 1.0]
    assert (await store.checkpoint(size)).anchor_state is AnchorStatus.FINAL


@pytest.mark.asyncio
async def test_local_backend_final_and_idempotent(store: SqliteStore, tmp_path: Path) -> None:
    """The local backend anchors final at once; a second gateway run anchors nothing twice."""
    key = gateway_key()
    checkpointer = Checkpointer(store=store, origin=ORIGIN, key=key)
    size = await signed(store, checkpointer, 3)
    async with await LocalAnchorBackend.open(tmp_path / "anchors.db", seed=key.seed) as backend:
        await Anchorer(store=store, origin=ORIGIN, backend=backend).sync()
        await Anchorer(store=store, origin=ORIGIN, backend=backend).sync()
        assert len(await backend.entries()) == 1
        receipt = await backend.get(
            Anchorer(store=store, origin=ORIGIN, backend=backend).log_id, size
        )
    assert receipt is not None
    assert receipt.state is AnchorState.FINAL
    assert (await store.checkpoint(size)).anchor_state is AnchorStatus.FINAL


def test_anchorer_bounds() -> None:
    """Refresh and back-off bounds are checked."""
    with pytest.raises(ValueError, match="refresh_s"):
        Anchorer(store=None, backend=MemoryAnchorBackend(), origin=ORIGIN, refresh_s=0)  # type: ignore[arg-type]
