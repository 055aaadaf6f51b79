"""The store contract suite over PostgreSQL: a writer and a reader, two pools on one database.

The integration twin of ``tests/unit/test_store_contract.py`` (which runs the suite over the
SQLite file and the memory fake): the cluster is a real server, started once per session.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import psycopg
import pytest

from gateway.store.postgresql import PostgresStore
from gateway.store.postgresql.session import translate
from tests.support.store_contract import CASES, StoreWorld

pytestmark = pytest.mark.integration

_TRUNCATE = "UPDATE sample_blocks SET columns = substr(columns, 1, 10) WHERE leaf_index = %s"


@pytest.mark.parametrize(
    "check_case", CASES, ids=[case.__name__.removeprefix("case_") for case in CASES]
)
def test_store_contract_postgresql(
    postgres_url: str, check_case: Callable[[StoreWorld], Awaitable[None]]
) -> None:
    """Each contract case holds on PostgreSQL, written by one store object, read by another."""

    async def run() -> None:
        async with (
            await PostgresStore.open(postgres_url) as writer,
            await PostgresStore.open(postgres_url) as reader,
        ):

            async def damage(leaf_index: int) -> None:
                async with await psycopg.AsyncConnection.connect(
                    postgres_url, autocommit=True
                ) as connection:
                    await connection.execute(_TRUNCATE, (leaf_index,))

            async def run_sql(sql: str, params: Sequence[object]) -> None:
                async with await psycopg.AsyncConnection.connect(
                    postgres_url, autocommit=True
                ) as connection:
                    await connection.execute(translate(sql).encode(), params)

            await check_case(StoreWorld(writer=writer, reader=reader, damage_sample_block=damage,
                                        run_sql=run_sql))  # fmt: skip

    asyncio.run(run())
