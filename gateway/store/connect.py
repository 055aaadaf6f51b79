"""How the store opens its SQLite file: writable, or read-only without touching it.

The open itself is :func:`ledger.anchors.sqlite_open.open_sqlite`; this adds the store's
checks and turns ``sqlite3.Error`` into :class:`StoreError`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiosqlite

from ledger.anchors.sqlite_open import open_sqlite

from .errors import StoreError

IN_MEMORY = ":memory:"


async def connect(
    path: str | Path, *, read_only: bool, busy_timeout_ms: int, what: str = "gateway store"
) -> aiosqlite.Connection:
    """An autocommit connection to ``path``; a read-only one requires the file to exist.

    A writable file is made 0600 in a 0700 directory before SQLite opens it (created so if
    missing; see :mod:`ledger.private_files`). Raises :class:`StoreError` naming ``what`` when
    the file cannot be opened.
    """
    path = Path(path)
    if read_only and not await asyncio.to_thread(path.is_file):
        raise StoreError(f"no {what} at {path}; start the gateway first")
    try:
        return await open_sqlite(path, read_only=read_only, busy_timeout_ms=busy_timeout_ms)
    except sqlite3.Error as exc:
        mode = "read-only" if read_only else "for writing"
        raise StoreError(f"cannot open the {what} {path} {mode}: {exc}") from exc
