"""The gateway store in one SQLite file (aiosqlite): messages, samples, Merkle nodes, registry.

Durability: WAL with ``synchronous=FULL``. The gateway acknowledges a QoS 1 message after
:meth:`SqliteStore.commit` returns and the broker then forgets it, so a commit must survive a
power loss, not only a killed process (``NORMAL`` in WAL mode may lose the last transactions
on power loss: SQLite documentation, "WAL mode", section on ``synchronous``). Group commit (one
transaction per batch) pays the one fsync per batch, not per message.

Concurrency: every write is one ``BEGIN IMMEDIATE`` transaction that reads the committed log
size and its O(log n) border nodes *inside* the transaction, so a second process (the
``voltproof devices`` command) can append registry leaves while the gateway runs and the two
never fork the log. ``busy_timeout`` makes a writer wait for the other instead of failing.
One connection per store object, used under an ``asyncio.Lock``: a read never sees another
coroutine's uncommitted transaction.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Self

import aiosqlite

from .connect import connect
from .errors import StoreError
from .log_writes import LogWrites
from .migrate import migrate

DEFAULT_BUSY_TIMEOUT_MS = 10_000
DEFAULT_QUARANTINE_MAX_ROWS = 100_000
DEFAULT_MAX_SEQ_JUMP = 10_000
"""Seqs a message may skip past its device's head before the store raises a gateway alarm."""


class SqliteStore(LogWrites):
    """The :class:`~gateway.store.base.Store` on SQLite; open with :meth:`open`."""

    def __init__(
        self,
        *,
        db: aiosqlite.Connection,
        path: Path,
        quarantine_max_rows: int,
        max_seq_jump: int = DEFAULT_MAX_SEQ_JUMP,
    ) -> None:
        super().__init__(db=db, lock=asyncio.Lock())
        self.path = path
        self.quarantine_max_rows = quarantine_max_rows
        self.max_seq_jump = max_seq_jump

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        quarantine_max_rows: int = DEFAULT_QUARANTINE_MAX_ROWS,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        max_seq_jump: int = DEFAULT_MAX_SEQ_JUMP,
    ) -> Self:
        """Open (creating and migrating if needed) the store at ``path``."""
        if quarantine_max_rows < 1:
            raise ValueError(f"quarantine_max_rows must be >= 1, got {quarantine_max_rows}")
        if max_seq_jump < 0:
            raise ValueError(f"max_seq_jump must be >= 0, got {max_seq_jump}")
        db = await connect(path, read_only=False, busy_timeout_ms=busy_timeout_ms)
        try:
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = FULL")
            await migrate(db)
        except (sqlite3.Error, StoreError) as exc:
            await db.close()
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"cannot prepare the gateway store {path}: {exc}") from exc
        return cls(
            db=db,
            path=Path(path),
            quarantine_max_rows=quarantine_max_rows,
            max_seq_jump=max_seq_jump,
        )
