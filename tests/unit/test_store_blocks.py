"""Sample blocks: one row per message holds exactly its samples, and reads return them in order.

Reads are checked against a brute-force reference (every sample of every block, sorted by
time then leaf, filtered by the window) on a real SQLite file with the gateway schema.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.store import SqliteStore, StoreError
from gateway.store import blocks as blk
from gateway.store import samples as smp
from gateway.store.merkle_nodes import SCHEMA as MERKLE_SCHEMA
from gateway.store.migrate import migrations
from ledger.message import decode_message
from ledger.telemetry import FIELDS, TelemetryBatch, decode_batch, decode_columns, encode_batch
from tests.support.gateway_devices import FakeDevice
from tests.support.strategies import telemetry_batches

DEVICE = "pack-0001"


def _payload(batch: TelemetryBatch) -> dict[str, object]:
    return {"v": 1, "dev": DEVICE, "seq": 0, "prev": bytes(32), "t": batch.t_ms,
            **encode_batch(batch)}  # fmt: skip


@settings(max_examples=80, deadline=None)
@given(batch=telemetry_batches(max_samples=12))
def test_a_block_unpacks_to_the_decoded_samples(batch: TelemetryBatch) -> None:
    """Times and values of an unpacked block equal ``decode_batch`` of the same payload."""
    payload = _payload(batch)
    n = len(batch.samples)
    row = blk.block_row(7, DEVICE, decode_columns(payload))
    last_ms = batch.t_ms + (n - 1) * batch.dt_ms
    assert row[:7] == (7, DEVICE, batch.kind, batch.t_ms, last_ms, batch.dt_ms, n)
    data = row[7]
    assert isinstance(data, bytes)
    found = smp.unpack(batch.kind, [(7, batch.t_ms, batch.dt_ms, n, data)])
    decoded = decode_batch(payload)
    assert found.t_ms.tolist() == [batch.t_ms + k * batch.dt_ms for k in range(n)]
    assert found.leaf_index.tolist() == [7] * n
    for spec in FIELDS[batch.kind]:
        expected = [getattr(sample, spec.attr) for sample in decoded.samples]
        got = found.values[spec.attr].tolist()
        assert got == expected, spec.attr
        assert all(type(v) is type(e) for v, e in zip(got, expected, strict=True)), spec.attr


def test_a_block_of_the_wrong_size_is_refused() -> None:
    """A blob that does not fit its sample count is a BlockError naming leaf and sizes."""
    device = FakeDevice(device_id=DEVICE, kind="pack")
    columns = decode_columns(device.payload(t_ms=0, n=3))
    data = blk.pack(columns)
    with pytest.raises(smp.BlockError, match=rf"leaf 5 holds {len(data) - 1} bytes, 3 pack "):
        smp.unpack("pack", [(5, 0, 1000, 3, data[:-1])])
    with pytest.raises(ValueError, match=r"unknown pack field\(s\) \['speed_mps'\]"):
        smp.unpack("pack", [(5, 0, 1000, 3, data)], fields=["speed_mps"])


def test_aggregate_matches_a_plain_loop() -> None:
    """Buckets hold count, min, max and mean of their samples; empty buckets are left out."""
    device = FakeDevice(device_id=DEVICE, kind="pack")
    rows = []
    for k in range(6):
        columns = decode_columns(device.payload(t_ms=k * 10_000, n=10))
        rows.append((k, k * 10_000, 1000, 10, blk.pack(columns)))
    rows.append((9, 200_000, 1000, 10, rows[0][4]))  # far later: buckets in between stay empty
    found = smp.unpack("pack", rows)
    got = smp.aggregate(found, "voltage_v", from_ms=0, bucket_ms=7_000)
    expected: dict[int, list[float]] = {}
    for t, value in zip(found.t_ms.tolist(), found.values["voltage_v"].tolist(), strict=True):
        expected.setdefault(t // 7_000, []).append(value)
    assert [(a.bucket, a.count, a.min, a.max) for a in got] == [
        (b, len(v), min(v), max(v)) for b, v in sorted(expected.items())
    ]
    for a in got:
        assert a.avg == pytest.approx(sum(expected[a.bucket]) / a.count, rel=1e-12)
    assert smp.aggregate(smp.empty("pack"), "soc", from_ms=0, bucket_ms=1) == []
    with pytest.raises(ValueError, match="bucket_ms must be >= 1, got 0"):
        smp.aggregate(found, "soc", from_ms=0, bucket_ms=0)


def _open_store(path: Path) -> None:
    """Open (creating or migrating) the store at ``path``, then close it."""

    async def open_store() -> None:
        async with await SqliteStore.open(path):
            pass

    asyncio.run(open_store())


# --- reads over a real store ----------------------------------------------------------------

Block = tuple[int, int, int, int]
"""``(leaf_index, t_ms, dt_ms, n)`` of a test block (the values are the leaf's)."""


@st.composite
def block_sets(draw: st.DrawFn) -> list[Block]:
    """Blocks of one device that may overlap, skip, and differ in length and interval."""
    count = draw(st.integers(0, 12))
    return [
        (leaf, draw(st.integers(0, 40)) * 500, draw(st.sampled_from([500, 1000, 7000])),
         draw(st.integers(1, 6)))
        for leaf in range(count)
    ]  # fmt: skip


def _insert(db: sqlite3.Connection, blocks: Sequence[Block]) -> None:
    device = FakeDevice(device_id=DEVICE, kind="pack")
    db.execute("DELETE FROM sample_blocks")
    for leaf, t_ms, dt_ms, n in blocks:
        payload = device.payload(t_ms=t_ms, n=n) | {"dt": dt_ms}
        db.execute(blk.INSERT_BLOCK_SQL, blk.block_row(leaf, DEVICE, decode_columns(payload)))
    db.commit()


def _reference(path: Path, from_ms: int, to_ms: int) -> list[tuple[int, int]]:
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT leaf_index, t_ms, dt_ms, n, columns FROM sample_blocks"
        ).fetchall()
    found = smp.unpack("pack", rows)
    pairs = zip(found.t_ms.tolist(), found.leaf_index.tolist(), strict=True)
    return [(t, leaf) for t, leaf in pairs if from_ms <= t < to_ms]


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty migrated store."""
    path = tmp_path_factory.mktemp("blocks") / "gateway.db"

    _open_store(path)
    return path


async def _read(path: Path, from_ms: int, to_ms: int, limit: int | None) -> tuple[Any, Any]:
    async with await SqliteStore.open(path) as store:
        fetch = store._rows  # the reader the store's own reads use
        window = await smp.window(fetch, "pack", DEVICE, from_ms=from_ms, to_ms=to_ms,
                                  fields=["soc"], limit=limit, page=3)  # fmt: skip
        newest = await smp.newest(fetch, "pack", DEVICE, from_ms=from_ms, to_ms=to_ms)
    return window, newest


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@example(  # a long block read first, a later-starting block with an earlier sample unread
    blocks=[(0, 0, 7000, 6), (1, 1000, 500, 1), (2, 2000, 500, 1), (3, 3000, 500, 1)],
    from_ms=0, width=40_000, limit=4,
)  # fmt: skip
@given(
    blocks=block_sets(),
    from_ms=st.integers(-2000, 25_000),
    width=st.integers(1, 40_000),
    limit=st.none() | st.integers(1, 20),
)
def test_window_and_newest_match_the_reference(
    store_path: Path, blocks: list[Block], from_ms: int, width: int, limit: int | None
) -> None:
    """``window`` returns the first ``limit`` samples in order; ``newest`` the last one."""
    with sqlite3.connect(store_path) as db:
        _insert(db, blocks)
    expected = _reference(store_path, from_ms, from_ms + width)
    window, newest = asyncio.run(_read(store_path, from_ms, from_ms + width, limit))
    got = list(zip(window.t_ms.tolist(), window.leaf_index.tolist(), strict=True))
    assert got == expected[:limit]
    assert len(window.values["soc"]) == len(got)
    if expected:
        assert newest.t_ms.tolist() == [expected[-1][0]]
    else:
        assert len(newest) == 0


def _version_one(path: Path) -> sqlite3.Connection:
    """A database at schema version 1 (per-sample tables), as an earlier gateway left it."""
    db = sqlite3.connect(path)
    db.executescript(
        f"{MERKLE_SCHEMA}\n{migrations()[0].sql}\n"
        "CREATE TABLE schema_version (version INTEGER NOT NULL);\n"
        "INSERT INTO schema_version (version) VALUES (1);"
    )
    return db


def test_migration_rebuilds_blocks_from_the_signed_messages(tmp_path: Path) -> None:
    """Version 2 derives each message's block from its COSE bytes and drops the old tables."""
    path = tmp_path / "gateway.db"
    device = FakeDevice(device_id=DEVICE, kind="pack")
    messages = [device.message(t_ms=10_000 * k) for k in range(3)]
    with _version_one(path) as db:
        for index, cose in enumerate(messages):
            db.execute(
                "INSERT INTO leaves (leaf_index, kind, device, seq, t_ms, received_at_ms, "
                "message_hash, cose) VALUES (?, 'telemetry', ?, ?, ?, 0, zeroblob(32), ?)",
                (index, DEVICE, index, 10_000 * index, cose),
            )
    db.close()

    _open_store(path)
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT leaf_index, device, kind, t_ms, last_ms, dt_ms, n, columns FROM sample_blocks "
            "ORDER BY leaf_index"
        ).fetchall()
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    expected = [
        blk.block_row(i, DEVICE, decode_columns(decode_message(cose).payload))
        for i, cose in enumerate(messages)
    ]
    assert rows == expected
    assert not {"pack_samples", "bus_samples"} & tables


def test_migration_refuses_a_stored_message_that_does_not_decode(tmp_path: Path) -> None:
    """A telemetry leaf whose bytes are no message stops the migration with the reason."""
    path = tmp_path / "gateway.db"
    with _version_one(path) as db:
        db.execute(
            "INSERT INTO leaves (leaf_index, kind, device, seq, t_ms, received_at_ms, "
            "message_hash, cose) VALUES (0, 'telemetry', ?, 0, 0, 0, zeroblob(32), x'00')",
            (DEVICE,),
        )
    db.close()

    with pytest.raises(StoreError, match="cannot migrate the gateway store"):
        _open_store(path)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT max(version) FROM schema_version").fetchone() == (1,)
        assert db.execute("SELECT count(*) FROM pack_samples").fetchone() == (0,)


def test_a_damaged_block_is_an_error_for_every_reader(tmp_path: Path) -> None:
    """A truncated block is a BlockError in the store and a QueryError in the dashboard API."""
    from api.access import ALL_TIME
    from api.queries import DashboardQueries, QueryError
    from gateway.store import SqliteReader

    path = tmp_path / "gateway.db"

    _open_store(path)
    with sqlite3.connect(path) as db:
        _insert(db, [(0, 0, 1000, 4)])
        db.execute("UPDATE sample_blocks SET columns = substr(columns, 1, 10)")

    async def read() -> None:
        async with await SqliteStore.open(path) as store:
            with pytest.raises(smp.BlockError, match="leaf 0 holds 10 bytes, 4 pack samples"):
                await store.series("pack", DEVICE, t_from=0, t_to=10**6)
        reader = await SqliteReader.open(path)
        reads = DashboardQueries(reader)
        try:
            with pytest.raises(QueryError, match="damaged sample block: sample block of leaf 0"):
                await reads.samples("pack", DEVICE, ["soc"], ALL_TIME, limit=10)
            with pytest.raises(QueryError, match="damaged sample block"):
                await reads.latest_sample("pack", DEVICE, ALL_TIME)
        finally:
            await reader.close()

    asyncio.run(read())
