"""The one way the store opens a SQLite file: writable, or read-only without touching it.

A failed ``aiosqlite.connect`` leaves a worker thread that reports to the event loop after it
may have closed, so the file is probed synchronously (in a thread) first.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import aiosqlite

from ledger.private_files import private_file

from .errors import StoreError

IN_MEMORY = ":memory:"


def _probe(target: str, uri: bool) -> None:
    sqlite3.connect(target, uri=uri).close()


async def connect(
    path: str | Path, *, read_only: bool, busy_timeout_ms: int, what: str = "gateway store"
) -> aiosqlite.Connection:
    """An autocommit connection to ``path``; a read-only one requires the file to exist.

    A writable file is made 0600 in a 0700 directory before SQLite opens it (created so if
    missing; see :mod:`ledger.private_files`). Raises :class:`StoreError` naming ``what`` when
    the file cannot be opened.
    """
    in_memory = os.fspath(path) == IN_MEMORY
    path = Path(path)
    if read_only and not await asyncio.to_thread(path.is_file):
        raise StoreError(f"no {what} at {path}; start the gateway first")
    if not read_only and not in_memory:
        try:
            await asyncio.to_thread(private_file, path)
        except OSError as exc:
            raise StoreError(f"cannot open the {what} {path} for writing: {exc}") from exc
    target = f"file:{os.fspath(path)}?mode=ro" if read_only else os.fspath(path)
    if in_memory:
        target = IN_MEMORY
    try:
        await asyncio.to_thread(_probe, target, read_only)
        db = await aiosqlite.connect(target, uri=read_only, isolation_level=None)
    except sqlite3.Error as exc:
        mode = "read-only" if read_only else "for writing"
        raise StoreError(f"cannot open the {what} {path} {mode}: {exc}") from exc
    try:
        await db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    except sqlite3.Error as exc:
        await db.close()
        raise StoreError(f"cannot prepare the {what} {path}: {exc}") from exc
    return db
