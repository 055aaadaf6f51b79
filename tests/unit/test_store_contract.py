"""The store contract suite (``tests/support/store_contract.py``) over every implementation."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from gateway.store import SqliteReader, SqliteStore
from gateway.store.memory import open_memory_store
from tests.support.store_contract import CASES, StoreWorld

_TRUNCATE = "UPDATE sample_blocks SET columns = substr(columns, 1, 10) WHERE leaf_index = ?"

Implementation = Callable[[Path], Awaitable[None]]


@asynccontextmanager
async def _sqlite_file(tmp_path: Path) -> AsyncIterator[StoreWorld]:
    """The gateway's SQLite file, written by SqliteStore, read by a read-only SqliteReader."""
    path = tmp_path / "gateway.db"
    async with await SqliteStore.open(path) as writer, await SqliteReader.open(path) as reader:

        async def damage(leaf_index: int) -> None:
            with sqlite3.connect(path) as db:
                db.execute(_TRUNCATE, (leaf_index,))

        async def run_sql(sql: str, params: Sequence[object]) -> None:
            with sqlite3.connect(path) as db:
                db.execute(sql, params)

        yield StoreWorld(writer=writer, reader=reader, damage_sample_block=damage, run_sql=run_sql)


@asynccontextmanager
async def _memory(tmp_path: Path) -> AsyncIterator[StoreWorld]:
    """The in-memory fake: one object is writer and reader."""
    store = await open_memory_store()
    try:

        async def damage(leaf_index: int) -> None:
            await store._db.execute(_TRUNCATE, (leaf_index,))

        async def run_sql(sql: str, params: Sequence[object]) -> None:
            await store._db.execute(sql, params)

        yield StoreWorld(writer=store, reader=store, damage_sample_block=damage, run_sql=run_sql)
    finally:
        await store.close()


IMPLEMENTATIONS = {"sqlite-file": _sqlite_file, "memory": _memory}


@pytest.mark.parametrize("implementation", sorted(IMPLEMENTATIONS))
@pytest.mark.parametrize(
    "check_case", CASES, ids=[case.__name__.removeprefix("case_") for case in CASES]
)
def test_store_contract(
    tmp_path: Path, implementation: str, check_case: Callable[[StoreWorld], Awaitable[None]]
) -> None:
    """Each contract case holds for each store implementation."""

    async def run() -> None:
        async with IMPLEMENTATIONS[implementation](tmp_path) as world:
            await check_case(world)

    asyncio.run(run())


def test_reader_never_writes(tmp_path: Path) -> None:
    """Opening a reader on a missing or unmigrated file refuses instead of creating one."""
    from gateway.store import SchemaVersionError, StoreError

    async def run() -> None:
        with pytest.raises(StoreError, match="no gateway store"):
            await SqliteReader.open(tmp_path / "missing.db")
        assert not (tmp_path / "missing.db").exists()
        sqlite3.connect(tmp_path / "old.db").execute(
            "CREATE TABLE schema_version (version INTEGER NOT NULL)"
        ).connection.close()
        with pytest.raises(SchemaVersionError, match="schema version 0"):
            await SqliteReader.open(tmp_path / "old.db")

    asyncio.run(run())
