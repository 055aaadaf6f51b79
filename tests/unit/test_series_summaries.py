"""Block summaries: a chart drawn from them equals the chart drawn from the raw samples.

Random signed pack messages (random values, sizes, intervals, silences) go through a real
store; the dashboard's reduction of the summary read (:func:`api.series.bucketed_summaries`)
is compared with the sample-by-sample one (:func:`api.series.bucketed` over the samples the
store decodes from the blocks) and with the block-wise one, for random periods and bucket
counts: same axis, gaps in the same places, min and max of stored columns equal, means
and spreads equal to the last bits.
A store written before summaries existed gets them from the migration.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.series import DERIVED, Series, bucket_size, bucketed, bucketed_blocks, bucketed_summaries
from gateway.store import SqliteStore
from gateway.store.blocks import block_row, summary, summary_of_block
from gateway.store.memory import open_memory_store
from gateway.store.migrate import LATEST_VERSION
from ledger.message import decode_message
from ledger.telemetry import decode_columns
from tests.support.gateway_devices import FakeDevice
from tests.support.pack_messages import store_pack_messages
from tests.support.store_versions import rewind_sample_tables

NAMES = ["soc", "cell_spread_v", "temp_max_c", "voltage_v", "alarm_level", "energy_in_wh"]
SOURCES = ["soc", "cell_v_max", "cell_v_min", "temp_max_c", "voltage_v", "alarm_level",
           "energy_in_wh"]  # fmt: skip

_sample = st.fixed_dictionaries(
    {
        "soc": st.integers(0, 1000).map(lambda w: w / 1000),
        "cell_v_max": st.integers(0, 15000).map(lambda w: w / 1000),
        "cell_v_min": st.integers(0, 15000).map(lambda w: w / 1000),
        "temp_max_c": st.integers(-400, 2100).map(lambda w: w / 10),
        "voltage_v": st.integers(0, 10000).map(lambda w: w / 10),
        "alarm_level": st.integers(0, 4),
        "energy_in_wh": st.integers(0, 2**62),
    }
)
_message = st.tuples(
    st.lists(_sample, min_size=1, max_size=8),
    st.sampled_from([1000, 5000, 60_000]),
    st.one_of(st.integers(0, 3), st.integers(20, 200)),  # blocks of silence before it
)


def _assert_same(got: Series, expected: Series) -> None:
    assert got.t_ms == expected.t_ms
    assert got.bucket_ms == expected.bucket_ms
    for name in NAMES:
        for stat in ("min", "max", "avg"):
            mine, theirs = getattr(got.columns[name], stat), getattr(expected.columns[name], stat)
            assert [v is None for v in mine] == [v is None for v in theirs], (name, stat)
            kept = [v for v in mine if v is not None], [v for v in theirs if v is not None]
            if stat == "avg" or name in DERIVED:
                # sums, and a spread taken of wire integers (not of scaled floats), may differ
                # in the last bits
                assert np.allclose(*kept, rtol=1e-12, atol=1e-12), (name, stat)
            else:
                assert kept[0] == kept[1], (name, stat)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    messages=st.lists(_message, min_size=1, max_size=25),
    cut=st.tuples(st.floats(0, 0.6), st.floats(0, 0.6)),
    points=st.integers(10, 300),
)
def test_chart_from_summaries_equals_chart_from_raw_blocks(
    messages: list[tuple[list[dict[str, float]], int, int]],
    cut: tuple[float, float],
    points: int,
) -> None:
    """min, max and mean per bucket and the gaps: the same from summaries as from the samples."""

    async def run() -> None:
        store = await open_memory_store()
        try:
            first, last = await store_pack_messages(store, messages)
            span = last + 1 - first
            from_ms = first + int(span * cut[0] * 0.5)
            to_ms = max(from_ms + 1, last + 1 - int(span * cut[1] * 0.5))
            bucket_ms = bucket_size(to_ms - from_ms, points)
            samples = await store.sample_window("pack", "pack-1", t_from=from_ms, t_to=to_ms,
                                                fields=SOURCES)  # fmt: skip
            raw = bucketed(samples.t_ms, samples.values, NAMES, from_ms=from_ms,
                           bucket_ms=bucket_ms)  # fmt: skip
            read = await store.sample_summaries_in("pack", "pack-1", t_from=from_ms, t_to=to_ms,
                                                   bucket_ms=bucket_ms, names=NAMES)  # fmt: skip
            got = bucketed_summaries(read, NAMES, from_ms=from_ms, to_ms=to_ms,
                                     bucket_ms=bucket_ms)  # fmt: skip
            _assert_same(got, raw)
            groups = await store.sample_blocks_in("pack", "pack-1", t_from=from_ms, t_to=to_ms,
                                                  fields=SOURCES)  # fmt: skip
            _assert_same(got, bucketed_blocks(groups, NAMES, from_ms=from_ms, to_ms=to_ms,
                                              bucket_ms=bucket_ms))  # fmt: skip
        finally:
            await store.close()

    asyncio.run(run())


def test_a_year_chart_reads_summaries_not_blocks() -> None:
    """Hourly blocks in buckets of a day: every block inside the period is summarised, and
    only blocks a bucket or period edge cuts are read whole."""

    async def run() -> None:
        store = await open_memory_store()
        try:
            messages = [([{"soc": (i % 10) / 10} for i in range(60)], 60_000, 0)] * 72
            first, last = await store_pack_messages(store, messages)
            read = await store.sample_summaries_in("pack", "pack-1", t_from=first, t_to=last + 1,
                                                   bucket_ms=86_400_000, names=["soc"])  # fmt: skip
            assert (len(read.summaries), len(read.cut)) == (72, 0)
            shifted = await store.sample_summaries_in(
                "pack", "pack-1", t_from=first + 90_000, t_to=last + 1, bucket_ms=86_400_000,
                names=["soc"])  # fmt: skip
            assert len(read.summaries) - len(shifted.summaries) == 3  # 3 blocks cut at midnights
            assert [len(g.t_ms) for g in shifted.cut] == [3]
        finally:
            await store.close()

    asyncio.run(run())


def test_summary_of_a_stored_block_equals_the_one_written_at_intake() -> None:
    """What the migration computes from a stored block is what intake wrote, and a block
    that does not fit its size is refused with the reason."""
    device = FakeDevice(device_id="pack-1", kind="pack")
    columns = decode_columns(decode_message(device.message(n=7)).payload)
    row = block_row(0, "pack-1", columns)
    assert summary_of_block("pack", 7, row[-1]) == summary(columns)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="6 samples takes"):
        summary_of_block("pack", 6, row[-1])  # type: ignore[arg-type]


def test_migration_back_fills_summaries_of_an_older_store(tmp_path: Path) -> None:
    """A store at schema version 4 (blocks, no summaries) migrated to 5 has a summary per
    block, equal to the summary of the signed samples, with the host its message names."""
    path = tmp_path / "gateway.db"

    async def write() -> None:
        async with await SqliteStore.open(path) as store:
            await store_pack_messages(store, [([{"soc": 0.5}] * 5, 1000, 0)] * 4,
                                      hosts=["bus-1", None, "bus-2", "bus-2"])  # fmt: skip

    asyncio.run(write())
    rewind_sample_tables(path, 4)
    with sqlite3.connect(path) as db:
        assert not db.execute(
            "SELECT name FROM sqlite_master WHERE name = 'sample_summaries'"
        ).fetchall()
    assert LATEST_VERSION > 4

    async def reopen() -> dict[tuple[int, str], tuple[bytes, str | None]]:
        async with await SqliteStore.open(path) as store:
            return await store.sample_summaries()

    stored = asyncio.run(reopen())
    with sqlite3.connect(path) as db:
        leaves = db.execute("SELECT leaf_index, cose FROM leaves WHERE kind = 'telemetry'")
        expected = {
            (int(i), columns.kind): (summary(columns), columns.host)
            for i, c in leaves
            for columns in [decode_columns(decode_message(bytes(c)).payload)]
        }
    assert [host for _, host in expected.values()] == ["bus-1", None, "bus-2", "bus-2"]
    assert stored == expected
