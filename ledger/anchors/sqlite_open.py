"""The one way voltproof opens a SQLite file from asyncio: an adapter of the anchor tables,
not part of the core (the gateway store, above ``ledger``, opens its file with it too).

A failed ``aiosqlite.connect`` leaves a worker thread that reports to the event loop after it
may have closed, so the file is probed synchronously (in a thread) first. Used by the gateway
store (``gateway/store/connect.py``) and the anchor tables (``ledger/anchors/local.py``,
``ledger/anchors/evm_store.py``); each translates ``sqlite3.Error`` into its own error.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import aiosqlite

from ..private_files import private_file

__all__ = ["open_sqlite"]


def _probe(target: str, uri: bool) -> None:
    sqlite3.connect(target, uri=uri).close()


async def open_sqlite(
    path: str | Path, *, read_only: bool = False, busy_timeout_ms: int = 5_000
) -> aiosqlite.Connection:
    """An autocommit connection to ``path`` with a busy timeout; raises ``sqlite3.Error``.

    ``read_only`` opens with ``mode=ro`` (the file must exist and is never written); a
    writable file is made 0600 in a 0700 directory first (:mod:`ledger.private_files`), so
    SQLite's ``-wal`` and ``-shm`` files get the same mode. ``":memory:"`` is a private
    in-memory database.
    """
    if not read_only and os.fspath(path) != ":memory:":
        try:
            await asyncio.to_thread(private_file, Path(path))
        except OSError as exc:
            raise sqlite3.OperationalError(f"cannot make {path} private (0600): {exc}") from exc
    target = f"file:{os.fspath(path)}?mode=ro" if read_only else os.fspath(path)
    await asyncio.to_thread(_probe, target, read_only)
    db = await aiosqlite.connect(target, uri=read_only, isolation_level=None)
    try:
        await db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    except sqlite3.Error:
        await db.close()
        raise
    return db
