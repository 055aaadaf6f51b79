"""Opening the PostgreSQL store: what is refused, and how it says so."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from gateway.store import SchemaVersionError, StoreError
from gateway.store.postgresql import PostgresStore, describe
from gateway.store.postgresql.migrate import LATEST_VERSION as PG_LATEST_VERSION
from tests.support.postgres_cluster import free_port

pytestmark = pytest.mark.integration


def test_unreachable_server_is_a_store_error_without_the_password() -> None:
    """Nothing listens: a StoreError naming the place, never the password."""
    url = f"postgresql://gw:s3cret-pw@127.0.0.1:{free_port()}/voltproof"

    async def run() -> None:
        with pytest.raises(StoreError, match="cannot open the gateway store") as caught:
            await PostgresStore.open(url, connect_timeout_s=2)
        assert "s3cret-pw" not in str(caught.value)
        assert "127.0.0.1" in str(caught.value)

    asyncio.run(run())


def test_not_a_postgresql_url_is_refused() -> None:
    """A file path or another scheme is a StoreError, before any connection."""

    async def run() -> None:
        with pytest.raises(StoreError, match="not a PostgreSQL URL"):
            await PostgresStore.open("sqlite:/tmp/gateway.db")

    asyncio.run(run())


def test_describe_drops_the_password() -> None:
    """The printable form of a URL keeps user, host, port and database only."""
    assert describe("postgresql://gw:pw@db.example:5433/ledger") == (
        "postgresql://gw@db.example:5433/ledger"
    )


def test_missing_database_is_a_store_error(postgres_url: str) -> None:
    """A database that does not exist on a running server: a StoreError, no traceback."""
    missing = postgres_url.rsplit("/", 1)[0] + "/no_such_database"

    async def run() -> None:
        with pytest.raises(StoreError, match=r"no_such_database.*does not exist"):
            await PostgresStore.open(missing, connect_timeout_s=2)

    asyncio.run(run())


def test_newer_schema_is_refused_and_reopening_is_idempotent(postgres_url: str) -> None:
    """Two opens migrate once; a schema version above this code's is refused."""

    async def run() -> None:
        async with await PostgresStore.open(postgres_url), await PostgresStore.open(postgres_url):
            pass
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as db:
            cursor = await db.execute("SELECT count(*) FROM schema_version")
            assert await cursor.fetchone() == (PG_LATEST_VERSION,)  # one row per migration
            await db.execute("INSERT INTO schema_version (version) VALUES (99)")
        with pytest.raises(SchemaVersionError, match="99 is newer"):
            await PostgresStore.open(postgres_url)

    asyncio.run(run())
