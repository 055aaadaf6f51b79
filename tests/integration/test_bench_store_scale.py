"""bench/bench_store_scale.py measures real reads: the log it builds is one chain per pack, the
PostgreSQL copy holds the same log, and every measured read answers something checkable."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench.bench_store_scale import DAY_MS, T0_MS, Plan, build_sqlite, inputs, measure
from gateway.store import open_reader
from gateway.store.postgresql import PostgresStore
from gateway.store.postgresql.copy import copy_sqlite_to_postgres, open_source
from ledger.merkle import hash_leaf, verify_consistency, verify_inclusion

pytestmark = pytest.mark.integration


def test_the_scale_bench_builds_one_log_on_both_backends(tmp_path: Path, postgres_url: str) -> None:
    """Every message is appended (the build refuses otherwise), both backends give the same
    root and verifiable proofs, and a day's series holds that day's samples."""
    plan = Plan(messages=3_000, devices=3)
    db = tmp_path / "scale.db"

    async def run() -> None:
        await build_sqlite(db, plan, batch=700)
        source = open_source(db)
        try:
            await copy_sqlite_to_postgres(source, postgres_url)
        finally:
            source.close()
        async with await open_reader(db) as lite, await PostgresStore.open(postgres_url) as pg:
            head = await lite.log_head()
            assert head.size == plan.messages + plan.devices
            assert (await pg.log_head()) == head
            given = inputs(plan, head.size, repeat=5, series=3, years=1, seed=2)
            for reader in (lite, pg):
                figures = await measure(reader, given)
                assert all(len(f.times_us) > 0 for f in figures.values())
                for index in given.leaves:
                    leaf = await reader.leaf(index)
                    proof = await reader.inclusion_proof(index, head.size)
                    verify_inclusion(
                        leaf_hash=hash_leaf(leaf.cose), index=index, size=head.size,
                        proof=proof, root=head.root,
                    )  # fmt: skip
                for size in given.sizes:
                    old = await reader.root_at(size)
                    proof = await reader.consistency_proof(size, head.size)
                    verify_consistency(
                        size1=size, size2=head.size, proof=proof, root1=old, root2=head.root
                    )
            # One message a pack every year / 1,000: about 2.7 messages (10 samples each) a day.
            day = await lite.sample_window(
                "pack", plan.device(0), t_from=T0_MS, t_to=T0_MS + DAY_MS
            )
            assert len(day) == 10 * len(range(T0_MS, T0_MS + DAY_MS, plan.period_ms))
            assert len(day) == len(
                await pg.sample_window("pack", plan.device(0), t_from=T0_MS, t_to=T0_MS + DAY_MS)
            )

    asyncio.run(run())
