"""The gateway store on PostgreSQL (psycopg 3 with a connection pool): one log, many gateways.

Every gateway process that opens the same database appends to the same log. A write
(:meth:`PostgresStore._write`) is one transaction on a pooled connection whose first statement
takes the transaction-scoped advisory lock :data:`LOG_LOCK` (``pg_advisory_xact_lock``), as
Tessera's SQL drivers sequence entries: writers of every process queue on it, and the one
holding it reads the committed size, border nodes, chain heads and gaps (READ COMMITTED: each
statement after the lock sees every earlier writer's commit), decides and assigns leaf indexes
with the same code as the SQLite store (:class:`~gateway.store.log_writes.LogWrites`), and
commits, which releases the lock. So two gateways never fork the log, a message that reached
two gateways is logged once (the second sees the first's chain head: a duplicate), and a
device whose consecutive messages land on different gateways keeps one correct chain.

Reads run on a pooled autocommit connection, one statement at a time: the log is append-only,
so every node and leaf of a committed size stays as it is. :meth:`snapshot` gives a
``REPEATABLE READ`` transaction for the audit. psycopg and pool errors become
:class:`~gateway.store.errors.StoreError` here; the password of a URL never appears in one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, Final, Self, cast

import aiosqlite
import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ..errors import StoreError, UnstorableValueError
from ..log_writes import LogWrites
from .migrate import migrate
from .session import Session

LOG_LOCK: Final = 0x766F6C7470726F66
"""The advisory lock key that sequences log appends ("voltprof" in ASCII)."""
DEFAULT_POOL_SIZE: Final = 4
DEFAULT_CONNECT_TIMEOUT_S: Final = 10.0
DEFAULT_QUARANTINE_MAX_ROWS: Final = 100_000
DEFAULT_MAX_SEQ_JUMP: Final = 10_000
SCHEMES: Final = ("postgresql://", "postgres://")


def is_postgres_url(location: str) -> bool:
    """Whether ``location`` names a PostgreSQL database rather than a SQLite file."""
    return location.startswith(SCHEMES)


def describe(url: str) -> str:
    """``url`` without its password: ``postgresql://user@host:port/dbname``."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(unparsable URL)"
    user = f"{parts['user']}@" if parts.get("user") else ""
    host = parts.get("host") or "localhost"
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{host}{port}/{parts.get('dbname') or ''}"


def reason(error: BaseException) -> str:
    """``error``'s message on one line: libpq adds hints on lines of their own (``\n\tIs the
    server running...``), and a store error is one line of a log or of the command's output."""
    return " ".join(str(error).split())


class PostgresStore(LogWrites):
    """The :class:`~gateway.store.base.Store` on PostgreSQL; open with :meth:`open`."""

    def __init__(
        self,
        *,
        pool: AsyncConnectionPool[Any],
        url: str,
        quarantine_max_rows: int = DEFAULT_QUARANTINE_MAX_ROWS,
        max_seq_jump: int = DEFAULT_MAX_SEQ_JUMP,
    ) -> None:
        # No connection of its own (StoreReads.__init__ is not called): each transaction
        # takes one from the pool and binds it to the running task in ``_session``.
        self._pool = pool
        self._lock = asyncio.Lock()
        self._session: ContextVar[Session | None] = ContextVar("pg_session", default=None)
        self.url = url
        self.quarantine_max_rows = quarantine_max_rows
        self.max_seq_jump = max_seq_jump

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        quarantine_max_rows: int = DEFAULT_QUARANTINE_MAX_ROWS,
        max_seq_jump: int = DEFAULT_MAX_SEQ_JUMP,
    ) -> Self:
        """Connect to ``url``, create or migrate the schema; :class:`StoreError` if it fails."""
        if not is_postgres_url(url):
            raise StoreError(f"not a PostgreSQL URL (postgresql://...): {url!r}")
        if pool_size < 1:
            raise ValueError(f"pool_size must be >= 1, got {pool_size}")
        if quarantine_max_rows < 1:
            raise ValueError(f"quarantine_max_rows must be >= 1, got {quarantine_max_rows}")
        if max_seq_jump < 0:
            raise ValueError(f"max_seq_jump must be >= 0, got {max_seq_jump}")
        where = describe(url)
        try:
            pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
                url,
                min_size=1,
                max_size=pool_size,
                kwargs={"autocommit": True, "connect_timeout": max(1, int(connect_timeout_s))},
                check=AsyncConnectionPool.check_connection,
                open=False,
                name="voltproof-store",
            )
        except psycopg.ProgrammingError as exc:
            raise StoreError(f"cannot use the PostgreSQL URL {where}: {reason(exc)}") from exc
        try:
            # One plain connection first: its error says why (refused, no such database,
            # authentication), where a pool would only time out.
            async with await psycopg.AsyncConnection.connect(
                url, autocommit=True, connect_timeout=max(1, int(connect_timeout_s))
            ) as connection:
                await migrate(connection)
            await pool.open(wait=True, timeout=connect_timeout_s)
        except (PoolTimeout, psycopg.Error, StoreError) as exc:
            await pool.close()
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"cannot open the gateway store {where}: {reason(exc)}") from exc
        return cls(
            pool=pool, url=url, quarantine_max_rows=quarantine_max_rows, max_seq_jump=max_seq_jump
        )

    @property
    def _db(self) -> aiosqlite.Connection:
        """The connection of the transaction or read the running task is in."""
        session = self._session.get()
        if session is None:
            raise StoreError("no PostgreSQL transaction is open in this task")
        # The statements are shared with the SQLite store; Session offers the part of
        # aiosqlite.Connection they use.
        return cast(aiosqlite.Connection, session)

    @_db.setter
    def _db(self, value: aiosqlite.Connection) -> None:
        raise AttributeError("a PostgreSQL store has no single connection")

    async def close(self) -> None:
        """Close every pooled connection."""
        await self._pool.close()

    @asynccontextmanager
    async def _bound(self, *, transaction: str | None) -> AsyncIterator[aiosqlite.Connection]:
        """A pooled connection bound to this task; inside ``transaction`` if one is named."""
        bound = self._session.get()
        if bound is not None:
            yield cast(aiosqlite.Connection, bound)
            return
        async with self._pool.connection() as connection:
            session = Session(connection)
            token = self._session.set(session)
            try:
                if transaction is None:
                    yield cast(aiosqlite.Connection, session)
                else:
                    async with connection.transaction():
                        await connection.execute(transaction)
                        yield cast(aiosqlite.Connection, session)
            finally:
                self._session.reset(token)

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One transaction holding the log's advisory lock; committed on success."""
        try:
            async with self._bound(transaction=f"SELECT pg_advisory_xact_lock({LOG_LOCK})") as db:
                yield db
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
            raise UnstorableValueError(f"{type(exc).__name__}: {exc}") from exc
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreError(f"write transaction failed: {reason(exc)}") from exc

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[aiosqlite.Connection]:
        try:
            async with self._bound(transaction=None) as db:
                yield db
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreError(f"store read failed: {reason(exc)}") from exc

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[None]:
        """Reads inside see one consistent state (a ``REPEATABLE READ`` transaction)."""
        try:
            async with self._bound(
                transaction="SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
            ):
                yield
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreError(f"store snapshot failed: {reason(exc)}") from exc
