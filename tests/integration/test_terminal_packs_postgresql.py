"""PostgreSQL migration 4: a store written before terminals had pack blocks gets them.

The twin of ``tests/unit/test_terminal_pack_migration.py`` on a real PostgreSQL server:
written by today's code, rewound to version 3 as it left the sample tables, reopened; the
terminal's pack blocks, summaries and alarms are then those intake writes, derived from the
frames inside the migration's transaction.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from gateway.store.postgresql import PostgresStore
from gateway.store.postgresql.migrate import LATEST_VERSION
from tests.support.store_contract import fill
from tests.support.store_versions import rewind_postgres_sample_tables
from tests.support.terminal_frames import MIXED_READINGS, VIN, commit_frames, enroll_terminal

pytestmark = pytest.mark.integration

Rows = list[tuple[Any, ...]]


async def _derived(db: psycopg.AsyncConnection[Any]) -> tuple[Rows, Rows, Rows]:
    blocks = await (
        await db.execute(
            "SELECT leaf_index, kind, device, t_ms, last_ms, dt_ms, n, columns FROM sample_blocks "
            "ORDER BY leaf_index, kind"
        )
    ).fetchall()
    summaries = await (
        await db.execute(
            "SELECT leaf_index, kind, stats, host FROM sample_summaries ORDER BY leaf_index, kind"
        )
    ).fetchall()
    alarms = await (
        await db.execute(
            "SELECT device, t_ms, level, flags, source, detail, leaf_index FROM alarms "
            "ORDER BY leaf_index, device"
        )
    ).fetchall()
    return blocks, summaries, alarms


def test_migration_gives_stored_terminal_leaves_their_pack_blocks(postgres_url: str) -> None:
    """Rewound to version 3 and reopened: the terminal's pack blocks, summaries and alarms are
    back, equal to what intake writes; the reads of both kinds see them."""

    async def run() -> None:
        async with await PostgresStore.open(postgres_url) as store:
            filled = await fill(store)
            await enroll_terminal(filled.registry)
            leaves = await commit_frames(store, MIXED_READINGS)
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as db:
            written = await _derived(db)
            packs = [row[0] for row in written[0] if row[1] == "pack" and row[2] == VIN]
            assert packs == [leaves[k] for k in (0, 2, 3, 4)]
            await rewind_postgres_sample_tables(db, 3)
            kinds = await (
                await db.execute(
                    "SELECT kind, count(*) FROM sample_blocks WHERE device = %s GROUP BY kind",
                    (VIN,),
                )
            ).fetchall()
            assert kinds == [("bus", 5)]
            alarms = await (
                await db.execute("SELECT count(*) FROM alarms WHERE device = %s", (VIN,))
            ).fetchone()
            assert alarms == (0,)
        async with await PostgresStore.open(postgres_url) as store:
            pack = await store.sample_window("pack", VIN, t_from=0, t_to=2**62)
            assert pack.leaf_index.tolist() == [leaves[k] for k in (0, 2, 3, 4)]
            assert pack.values["soc"].tolist() == [0.70, 0.68, 0.67, 0.66]
            assert [a.level for a in await store.alarms(device_id=VIN)] == [3]
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as db:
            version = await (await db.execute("SELECT max(version) FROM schema_version")).fetchone()
            assert version == (LATEST_VERSION,)
            assert await _derived(db) == written

    asyncio.run(run())
