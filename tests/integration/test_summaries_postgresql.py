"""Block summaries on PostgreSQL: a database written before summaries existed gets them from
the migration (computed from the stored blocks), and a chart read over it equals the chart
from the raw samples."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from api.series import bucket_size, bucketed, bucketed_summaries
from gateway.store.blocks import summary
from gateway.store.postgresql import PostgresStore
from ledger.message import decode_message
from ledger.telemetry import decode_columns
from tests.support.pack_messages import store_pack_messages
from tests.support.store_versions import rewind_postgres_sample_tables

pytestmark = pytest.mark.integration


def test_migration_back_fills_summaries(postgres_url: str) -> None:
    """Version 2 (blocks, no summaries) migrated to 3: a summary per block, equal to the
    summary of the signed samples and the host its message names, and the chart from them
    equals the sample-by-sample one."""

    async def run() -> None:
        async with await PostgresStore.open(postgres_url) as store:
            first, last = await store_pack_messages(
                store, [([{"soc": i / 10, "cell_v_max": 3.4}] * 6, 1000, i % 2) for i in range(9)],
                hosts=[f"bus-{i // 4}" for i in range(9)],
            )  # fmt: skip
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as db:
            await rewind_postgres_sample_tables(db, 2)
        async with await PostgresStore.open(postgres_url) as store:
            stored = await store.sample_summaries()
            leaves = [leaf for leaf in await store.leaves_page(after=-1, limit=100)
                      if leaf.kind == "telemetry"]  # fmt: skip
            signed = {leaf.leaf_index: decode_columns(decode_message(leaf.cose).payload)
                      for leaf in leaves}  # fmt: skip
            expected = {(index, c.kind): (summary(c), c.host) for index, c in signed.items()}
            assert {host for _, host in expected.values()} == {"bus-0", "bus-1", "bus-2"}
            assert len(expected) == 9
            assert stored == expected
            bucket_ms = bucket_size(last + 1 - first, 10)
            read = await store.sample_summaries_in("pack", "pack-1", t_from=first, t_to=last + 1,
                                                   bucket_ms=bucket_ms, names=["soc"])  # fmt: skip
            assert len(read.summaries) > 0
            got = bucketed_summaries(read, ["soc"], from_ms=first, to_ms=last + 1,
                                     bucket_ms=bucket_ms)  # fmt: skip
            samples = await store.sample_window("pack", "pack-1", t_from=first, t_to=last + 1)
            raw = bucketed(samples.t_ms, samples.values, ["soc"], from_ms=first,
                           bucket_ms=bucket_ms)  # fmt: skip
            assert got.t_ms == raw.t_ms
            assert got.columns["soc"].min == raw.columns["soc"].min
            assert got.columns["soc"].max == raw.columns["soc"].max
            assert got.columns["soc"].avg == pytest.approx(raw.columns["soc"].avg, rel=1e-12)

    asyncio.run(run())
