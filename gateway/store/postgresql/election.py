"""One checkpoint signer at a time among the gateways on one database: a session advisory lock.

The signer holds ``pg_advisory_lock(SIGNER_LOCK)`` on a connection of its own. PostgreSQL
releases a session lock when its connection ends, so when the signer's process dies (even
``kill -9``: the kernel closes its socket) the lock is free at once and the next gateway that
polls (:meth:`SignerLock.try_acquire`, every ``signer_poll_s``) becomes the signer.

A signer cut off from the database must stop signing before anybody else may start. The lock
connection asks the server to drop it when the client stops answering
(``tcp_user_timeout`` / keepalives: :data:`SERVER_GIVE_UP_S`), and the signer checks its
connection every poll with a deadline far shorter than that (:meth:`SignerLock.check`): it
gives up first. Even if both ever signed at once, no harm is done to the evidence: a
checkpoint's root is read from the one log inside the store, and ``add_checkpoint`` refuses a
second root for a size (one log, one root per size).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any, Final

import psycopg
from psycopg import AsyncConnection

from ..errors import StoreError
from .store import describe

SIGNER_LOCK: Final = 0x766F6C747369676E
"""The advisory lock key of the checkpoint signer ("voltsign" in ASCII)."""
SIGNER_APPLICATION: Final = "voltproof-signer-"
"""The ``application_name`` prefix of the lock connections (then the process id): which
process signs is ``SELECT application_name FROM pg_stat_activity JOIN pg_locks ...``."""
SERVER_GIVE_UP_S: Final = 12
"""Seconds after which the server drops a lock connection whose client stopped answering."""


class SignerLock:
    """The signer lock of one gateway process; not thread-safe, one task uses it."""

    def __init__(self, url: str, *, check_timeout_s: float) -> None:
        if check_timeout_s * 2 >= SERVER_GIVE_UP_S:
            raise ValueError(
                f"check_timeout_s must be below {SERVER_GIVE_UP_S / 2} s, got {check_timeout_s}"
            )
        self._url = url
        self._check_timeout_s = check_timeout_s
        self._connection: AsyncConnection[Any] | None = None
        self.held = False

    async def try_acquire(self) -> bool:
        """Take the lock if it is free; False if another gateway holds it or the database
        cannot be reached (the caller polls again)."""
        if self.held:
            return True
        try:
            connection = await self._connect()
            cursor = await asyncio.wait_for(
                connection.execute("SELECT pg_try_advisory_lock(%s)", (SIGNER_LOCK,)),
                self._check_timeout_s,
            )
            row = await cursor.fetchone()
        except (psycopg.Error, TimeoutError):
            await self.release()
            return False
        self.held = bool(row is not None and row[0])
        return self.held

    async def check(self) -> bool:
        """Whether the lock is still held: the connection answers within the deadline."""
        if not self.held or self._connection is None:
            return False
        try:
            await asyncio.wait_for(self._connection.execute("SELECT 1"), self._check_timeout_s)
        except (psycopg.Error, TimeoutError):
            await self.release()
            return False
        return True

    async def release(self) -> None:
        """Give the lock up (by closing its connection: the server releases it)."""
        held, self.held = self.held, False
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if held and not connection.closed:
            # Unlock first, so the next signer need not wait for the server to notice the
            # closed connection; if the connection is broken, closing it is enough.
            with contextlib.suppress(psycopg.Error, TimeoutError):
                await asyncio.wait_for(
                    connection.execute("SELECT pg_advisory_unlock(%s)", (SIGNER_LOCK,)),
                    self._check_timeout_s,
                )
        await connection.close()

    async def _connect(self) -> AsyncConnection[Any]:
        if self._connection is not None and not self._connection.closed:
            return self._connection
        connection = await asyncio.wait_for(
            AsyncConnection.connect(
                self._url,
                autocommit=True,
                connect_timeout=max(1, int(self._check_timeout_s)),
                application_name=f"{SIGNER_APPLICATION}{os.getpid()}",
            ),
            self._check_timeout_s * 2,
        )
        for setting, value in (
            ("tcp_user_timeout", SERVER_GIVE_UP_S * 1000),
            ("tcp_keepalives_idle", SERVER_GIVE_UP_S // 3),
            ("tcp_keepalives_interval", SERVER_GIVE_UP_S // 6),
            ("tcp_keepalives_count", 2),
        ):
            await connection.execute("SELECT set_config(%s, %s, false)", (setting, str(value)))
        self._connection = connection
        return connection


_SIGNER_PID_SQL: Final = (
    "SELECT a.application_name FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
    "AND ((l.classid::bigint << 32) | l.objid::bigint) = %s AND a.application_name LIKE %s"
)


async def signer_process(url: str, *, timeout_s: float = 5.0) -> int | None:
    """The process id of the gateway that holds the signer lock on ``url``'s database, or
    ``None`` if none does (read from ``pg_locks``, which shows any session's advisory locks).

    For operators and the demo, who ask which process signs; raises :class:`StoreError`
    when the database cannot be asked within ``timeout_s`` (the driver's error stays here).
    """
    try:
        async with await asyncio.wait_for(
            AsyncConnection.connect(url, autocommit=True, connect_timeout=max(1, int(timeout_s))),
            timeout_s,
        ) as connection:
            cursor = await asyncio.wait_for(
                connection.execute(_SIGNER_PID_SQL, (SIGNER_LOCK, f"{SIGNER_APPLICATION}%")),
                timeout_s,
            )
            row = await cursor.fetchone()
    except TimeoutError as exc:
        raise StoreError(
            f"cannot ask {describe(url)} which gateway signs: no answer within {timeout_s} s"
        ) from exc
    except (psycopg.Error, OSError) as exc:
        raise StoreError(f"cannot ask {describe(url)} which gateway signs: {exc}") from exc
    if row is None:
        return None
    name = str(row[0]).removeprefix(SIGNER_APPLICATION)
    return int(name) if name.isdigit() else None
