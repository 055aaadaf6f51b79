"""Poison messages through the real pipeline and store: each is data, none stops intake.

Every poison of :mod:`tests.poison` is signed with a real device key; next to it, other
devices' messages are in the same batch. Each poison is quarantined with its reason or
accepted (a seq jump with a gateway alarm), and every other message is logged. ``gateway
check`` over a chain with a gap of 10**12 seqs finds nothing wrong, with no per-seq work.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import closing
from pathlib import Path

import pytest
import pytest_asyncio

from gateway.audit import check_store
from gateway.pipeline import OutcomeKind, Pipeline
from gateway.registry import Registry
from gateway.store import (
    Candidate,
    DeviceRecord,
    QuarantineEntry,
    SqliteStore,
    StoredOutcome,
    UnstorableValueError,
)
from gateway.verification import (
    Incoming,
    Parsed,
    Policy,
    Reason,
    Rejected,
    check_payload,
)
from ledger import chain as ledger_chain
from ledger.keys import SigningKey, generate_seed, public_key_from_seed
from tests.support.gateway_devices import T0_MS, FakeDevice
from tests.support.poison import poisons

pytestmark = pytest.mark.asyncio

NOW_MS = T0_MS + 86_400_000
"""Reception time: a day after the devices were enrolled (at ``T0_MS``)."""


def _key(name: str) -> SigningKey:
    seed = generate_seed()
    return SigningKey(name=name, seed=seed, public_key=public_key_from_seed(seed))


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """A fresh store."""
    opened = await SqliteStore.open(tmp_path / "gateway.db")
    try:
        yield opened
    finally:
        await opened.close()


async def _enrolled(store: SqliteStore, *devices: FakeDevice) -> None:
    registry = Registry(store=store, operator=_key("operator"), clock_ms=lambda: T0_MS)
    await registry.enroll([d.spec() for d in devices])


async def test_each_poison_is_quarantined_or_alarmed_and_others_are_logged(
    store: SqliteStore,
) -> None:
    """Every poison gets its verdict; the honest device's messages around it are all leaves."""
    attacker, honest = FakeDevice(device_id="pack-0"), FakeDevice(device_id="pack-1")
    await _enrolled(store, attacker, honest)
    pipeline = Pipeline(store=store)
    logged = 0
    for poison in poisons(attacker, now_ms=NOW_MS):
        batch = [
            honest.incoming(honest.message(t_ms=NOW_MS - 30_000), received_at_ms=NOW_MS),
            attacker.incoming(poison.data, received_at_ms=NOW_MS, historical=poison.historical),
            honest.incoming(honest.message(t_ms=NOW_MS - 20_000), received_at_ms=NOW_MS),
        ]
        first, outcome, last = await pipeline.process(batch)
        assert first.kind is last.kind is OutcomeKind.ACCEPTED, (poison.name, first, last)
        logged += 2
        if poison.expect in {"accepted", "seq_jump"}:
            assert outcome.kind is OutcomeKind.ACCEPTED, (poison.name, outcome)
            assert bool(outcome.seq_jump) is (poison.expect == "seq_jump"), poison.name
        else:
            assert outcome.kind is OutcomeKind.QUARANTINED, (poison.name, outcome)
            assert outcome.reason is not None
            assert outcome.reason.value == poison.expect, (poison.name, outcome)
    assert pipeline.stats.seq_jumps == 2
    with closing(sqlite3.connect(store.path)) as db:
        (honest_leaves,) = db.execute(
            "SELECT count(*) FROM leaves WHERE device = ?", (honest.device_id,)
        ).fetchone()
        alarms = [
            row[0] for row in db.execute("SELECT detail FROM alarms WHERE source = 'gateway'")
        ]
        gaps = db.execute(
            "SELECT start, stop FROM chain_gaps WHERE device = ? ORDER BY start",
            (attacker.device_id,),
        ).fetchall()
    assert honest_leaves == logged + 1  # and its enrolment leaf
    assert len(alarms) == 2
    assert all(detail.startswith("seq_jump: ") for detail in alarms)
    assert gaps == [(2, 1_000_001), (1_000_002, 2**63 - 1)]


async def test_gateway_check_over_a_gap_of_10_to_the_12(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chain with 10**12 missing seqs checks clean; a deleted gap row is one problem."""
    device = FakeDevice(device_id="pack-0")
    await _enrolled(store, device)
    pipeline = Pipeline(store=store)
    device.message(t_ms=NOW_MS - 60_000)  # seq 0 never arrives
    device.seq = 10**12
    (outcome,) = await pipeline.process(
        [device.incoming(device.message(t_ms=NOW_MS - 1000), received_at_ms=NOW_MS)]
    )
    assert outcome.seq_jump == 10**12
    calls = []
    real = ledger_chain.uncovered

    def counted(start: int, stop: int, gaps: list[tuple[int, int]]) -> list[tuple[int, int]]:
        found = list(real(start, stop, gaps))
        calls.append(found)
        return found

    monkeypatch.setattr("gateway.audit.chains.uncovered", counted)
    gateway_key = _key("voltproof.test/gw-1")

    async def check() -> set[str]:
        report = await asyncio.to_thread(
            check_store,
            store.path,
            origin="voltproof.test/gw-1",
            key_name=gateway_key.name,
            public_key=gateway_key.public_key,
        )
        return report.codes()

    assert "chain_gap_unrecorded" not in await check()
    assert calls == [[]]
    with closing(sqlite3.connect(store.path)) as db, db:
        db.execute("DELETE FROM chain_gaps")
    assert "chain_gap_unrecorded" in await check()
    assert calls[-1] == [(0, 10**12)]


async def test_a_check_that_raises_quarantines_only_its_message(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unforeseen error in one message's checks is `unprocessable`; the batch goes on."""
    odd, honest = FakeDevice(device_id="pack-0"), FakeDevice(device_id="pack-1")
    await _enrolled(store, odd, honest)
    real = check_payload

    def flaky(
        position: int, parsed: Parsed, device: DeviceRecord, policy: Policy
    ) -> Candidate | Rejected:
        if parsed.device_id == odd.device_id:
            raise RecursionError("nobody foresaw this")
        return real(position, parsed, device, policy)

    monkeypatch.setattr("gateway.pipeline.check_payload", flaky)
    outcomes = await Pipeline(store=store).process(
        [
            d.incoming(d.message(t_ms=NOW_MS - 10_000), received_at_ms=NOW_MS)
            for d in (honest, odd, honest)
        ]
    )
    assert [o.kind for o in outcomes] == [
        OutcomeKind.ACCEPTED,
        OutcomeKind.QUARANTINED,
        OutcomeKind.ACCEPTED,
    ]
    assert outcomes[1].reason is Reason.UNPROCESSABLE
    assert outcomes[1].detail == "RecursionError: nobody foresaw this"


async def test_a_value_the_store_refuses_quarantines_only_its_message(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store refusing one value: that message is `unstorable`, the rest is committed."""
    odd, honest = FakeDevice(device_id="pack-0"), FakeDevice(device_id="pack-1")
    await _enrolled(store, odd, honest)
    real = store.commit

    async def refusing(
        candidates: Sequence[Candidate], entries: Sequence[QuarantineEntry]
    ) -> list[StoredOutcome]:
        if any(c.device_id == odd.device_id for c in candidates):
            raise UnstorableValueError("OverflowError: Python int too large")
        return await real(candidates, entries)

    monkeypatch.setattr(store, "commit", refusing)
    outcomes = await Pipeline(store=store).process(
        [
            d.incoming(d.message(t_ms=NOW_MS - 10_000), received_at_ms=NOW_MS)
            for d in (honest, odd, honest)
        ]
    )
    assert [o.kind for o in outcomes] == [
        OutcomeKind.ACCEPTED,
        OutcomeKind.QUARANTINED,
        OutcomeKind.ACCEPTED,
    ]
    assert outcomes[1].reason is Reason.UNSTORABLE
    with closing(sqlite3.connect(store.path)) as db:
        assert db.execute("SELECT reason, device FROM quarantine").fetchall() == [
            ("unstorable", odd.device_id)
        ]


async def test_a_batch_touches_only_the_gaps_it_changes(store: SqliteStore) -> None:
    """A device with 500 gaps: a message at its head writes no gap row, a late one two."""
    device = FakeDevice(device_id="pack-0")
    await _enrolled(store, device)
    pipeline = Pipeline(store=store)
    batch = []
    for seq in range(0, 1000, 2):  # every other seq: 499 gaps of one seq each
        device.seq = seq
        batch.append(device.incoming(device.message(t_ms=NOW_MS - 60_000), received_at_ms=NOW_MS))
    device.seq = 5000  # and one of 4001 seqs
    batch.append(device.incoming(device.message(t_ms=NOW_MS - 60_000), received_at_ms=NOW_MS))
    assert all(o.kind is OutcomeKind.ACCEPTED for o in await pipeline.process(batch))
    with closing(sqlite3.connect(store.path)) as db:
        (gaps,) = db.execute("SELECT count(*) FROM chain_gaps").fetchone()
    assert gaps == 500

    async def changes(incoming: list[Incoming]) -> int:
        before = store._db.total_changes
        assert all(o.kind is OutcomeKind.ACCEPTED for o in await pipeline.process(incoming))
        return store._db.total_changes - before

    at_head = await changes(
        [device.incoming(device.message(t_ms=NOW_MS - 1000), received_at_ms=NOW_MS)]
    )
    late = FakeDevice(device_id="pack-0", seed=device.seed, seq=3000, prev=bytes([1]) * 32)
    # seq 3000 lies inside the gap [999, 5000): no link to check on either side
    in_gap = await changes([late.incoming(late.message(t_ms=NOW_MS - 1000), received_at_ms=NOW_MS)])
    with closing(sqlite3.connect(store.path)) as db:
        rows = db.execute(
            "SELECT start, stop FROM chain_gaps WHERE start >= 999 ORDER BY start"
        ).fetchall()
    assert rows == [(999, 3000), (3001, 5000)]
    # leaf, nodes, sample block, chain head, size: far fewer than the 500 gap rows
    assert at_head < 50, at_head
    assert in_gap < 50, in_gap
