"""The signer lock (PostgreSQL session advisory lock): one holder, handed over when it goes."""

from __future__ import annotations

import asyncio
import os

import psycopg
import pytest

from gateway.store import StoreError
from gateway.store.postgresql.election import SignerLock, signer_process
from tests.support.postgres_cluster import free_port

pytestmark = pytest.mark.integration


def test_one_holder_and_handover_on_release(postgres_url: str) -> None:
    """Of two gateways one holds the lock; when it lets go the other takes it."""

    async def run() -> None:
        first = SignerLock(postgres_url, check_timeout_s=2)
        second = SignerLock(postgres_url, check_timeout_s=2)
        try:
            assert await first.try_acquire()
            assert not await second.try_acquire()
            assert await first.check()
            await first.release()
            assert not await first.check()
            assert await second.try_acquire()
            assert not await first.try_acquire()
        finally:
            await first.release()
            await second.release()

    asyncio.run(run())


def test_holder_whose_connection_dies_knows_it_lost(postgres_url: str) -> None:
    """The server ends the holder's session (as on a crash of its host): check() is False and
    another gateway takes the lock."""

    async def run() -> None:
        holder = SignerLock(postgres_url, check_timeout_s=2)
        other = SignerLock(postgres_url, check_timeout_s=2)
        try:
            assert await holder.try_acquire()
            async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as db:
                await db.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name LIKE 'voltproof-signer-%' AND pid <> pg_backend_pid()"
                )
            assert not await holder.check()
            # The server releases a terminated session's locks as its backend exits.
            for _ in range(200):
                if await other.try_acquire():
                    break
                await asyncio.sleep(0.05)
            assert other.held
        finally:
            await holder.release()
            await other.release()

    asyncio.run(run())


def test_unreachable_database_is_not_an_election_win() -> None:
    """No server: try_acquire says False (the caller polls again), no exception."""

    async def run() -> None:
        lock = SignerLock(f"postgresql://gw@127.0.0.1:{free_port()}/x", check_timeout_s=1)
        assert not await lock.try_acquire()
        assert not await lock.check()

    asyncio.run(run())


def test_check_deadline_must_stay_below_the_servers() -> None:
    """A check deadline the server's give-up time does not exceed twice is refused."""
    with pytest.raises(ValueError, match="check_timeout_s must be below"):
        SignerLock("postgresql://gw@db/x", check_timeout_s=10)


def test_signer_process_names_the_holder(postgres_url: str) -> None:
    """Which process signs: none, then the one whose lock is held, then none again."""

    async def run() -> None:
        lock = SignerLock(postgres_url, check_timeout_s=2)
        try:
            assert await signer_process(postgres_url) is None
            assert await lock.try_acquire()
            assert await signer_process(postgres_url) == os.getpid()
        finally:
            await lock.release()
        assert await signer_process(postgres_url) is None

    asyncio.run(run())


def test_signer_process_without_a_database_is_a_store_error() -> None:
    """No server: a StoreError naming the database without its password, not a driver error."""
    port = free_port()
    url = f"postgresql://gw:secret-pw@127.0.0.1:{port}/x"
    with pytest.raises(StoreError, match=f"cannot ask postgresql://gw@127.0.0.1:{port}/x ") as got:
        asyncio.run(signer_process(url, timeout_s=1))
    assert "secret-pw" not in str(got.value)
