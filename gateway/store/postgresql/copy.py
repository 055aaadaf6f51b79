"""Copy a gateway's SQLite store into an empty PostgreSQL store (``voltproof migrate``).

Every table of the SQLite schema (at its latest version) is copied row for row with
PostgreSQL's ``COPY``, in one transaction that holds the log's advisory lock, so no gateway
appends to the target meanwhile and a failure leaves it empty. The target must hold no leaf,
no device and no checkpoint. The SQLite file is opened read-only and never changed.

The tables and columns are listed here once (:data:`TABLES`); the generated columns of
``merkle_nodes`` are computed again by PostgreSQL, the identity sequences of ``alarms`` and
``quarantine`` continue after the copied ids.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg import AsyncConnection, sql

from ..errors import SchemaVersionError, StoreError
from ..migrate import LATEST_VERSION as SQLITE_VERSION
from .migrate import migrate
from .store import LOG_LOCK, describe, reason

TABLES: Final = (
    ("merkle_nodes", ("node_key", "hash")),
    ("merkle_size", ("id", "size")),
    ("devices", ("id", "kind", "fleet", "public_key", "status", "enrolled_leaf", "rotated_leaf",
                 "revoked_leaf", "birth", "replaced_by", "replaced_leaf")),
    ("device_keys", ("device", "public_key", "valid_from_leaf", "from_seq", "until_seq")),
    ("registry_events", ("leaf_index", "action", "device", "recorded_at_ms")),
    ("leaves", ("leaf_index", "kind", "device", "seq", "t_ms", "received_at_ms", "historical",
                "prev", "message_hash", "cose")),
    ("chain_heads", ("device", "seq", "message_hash", "duplicates")),
    ("chain_gaps", ("device", "start", "stop")),
    ("sample_blocks", ("leaf_index", "device", "kind", "t_ms", "last_ms", "dt_ms", "n",
                       "columns")),
    ("sample_summaries", ("leaf_index", "kind", "stats", "host")),
    ("alarms", ("id", "device", "t_ms", "level", "flags", "source", "detail", "leaf_index")),
    ("quarantine", ("id", "reason", "detail", "topic", "device", "raw", "raw_size",
                    "received_at_ms")),
    ("quarantine_counts", ("reason", "total", "evicted")),
    ("checkpoints", ("size", "root", "note", "signed_at_ms", "anchor_state")),
    ("anchor_receipts", ("size", "backend", "state", "receipt", "updated_at_ms")),
    ("cosignatures", ("size", "witness", "timestamp", "line", "received_at_ms")),
)  # fmt: skip
"""Every table of the store and the columns copied, in an order the foreign keys accept."""
_IDENTITY_TABLES: Final = ("alarms", "quarantine")
_PAGE: Final = 5_000

Progress = Callable[[str, int], None]
"""Told each table's name and the rows copied so far."""


def open_source(path: Path) -> sqlite3.Connection:
    """The SQLite store at ``path``, read-only, at this code's schema version."""
    if not path.is_file():
        raise StoreError(f"no gateway store at {path}")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        row = db.execute("SELECT max(version) FROM schema_version").fetchone()
    except sqlite3.Error as exc:
        raise StoreError(f"{path} is not a gateway store: {exc}") from exc
    version = 0 if row is None or row[0] is None else int(row[0])
    if version != SQLITE_VERSION:
        db.close()
        raise SchemaVersionError(
            f"the gateway store {path} has schema version {version}, this code copies "
            f"{SQLITE_VERSION} (run `voltproof gateway migrate` on it first)"
        )
    return db


def source_rows(source: sqlite3.Connection) -> int:
    """How many rows :func:`copy_sqlite_to_postgres` will copy from ``source`` (for progress)."""
    try:
        return sum(
            int(source.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608 -- names from TABLES
            for table, _ in TABLES
        )
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the SQLite store: {exc}") from exc


def _rows(source: sqlite3.Connection, table: str, columns: tuple[str, ...]) -> Iterator[Any]:
    cursor = source.execute(f"SELECT {', '.join(columns)} FROM {table}")  # noqa: S608 -- names from TABLES
    while page := cursor.fetchmany(_PAGE):
        yield from page


async def copy_sqlite_to_postgres(
    source: sqlite3.Connection, url: str, *, progress: Progress | None = None
) -> dict[str, int]:
    """Copy every table of ``source`` into the empty store at ``url``; rows per table.

    Raises :class:`StoreError` when the target is not empty or cannot be written (nothing
    is then left in it).
    """
    where = describe(url)
    try:
        async with await AsyncConnection.connect(
            url, autocommit=True, connect_timeout=10
        ) as target:
            await migrate(target)
            async with target.transaction():
                await target.execute("SELECT pg_advisory_xact_lock(%s)", (LOG_LOCK,))
                await _require_empty(target, where)
                await target.execute("DELETE FROM merkle_size")
                return await _copy_tables(source, target, progress)
    except psycopg.Error as exc:
        raise StoreError(f"cannot copy into {where}: {reason(exc)}") from exc
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the SQLite store: {exc}") from exc


async def _require_empty(target: AsyncConnection[Any], where: str) -> None:
    cursor = await target.execute(
        "SELECT (SELECT size FROM merkle_size WHERE id = 0), (SELECT count(*) FROM devices), "
        "(SELECT count(*) FROM checkpoints), (SELECT count(*) FROM quarantine)"
    )
    row = await cursor.fetchone()
    if row is None or tuple(row) != (0, 0, 0, 0):
        raise StoreError(
            f"{where} already holds a gateway store (log size, devices, checkpoints, "
            f"quarantine rows: {row}); migrate into an empty database"
        )


async def _copy_tables(
    source: sqlite3.Connection, target: AsyncConnection[Any], progress: Progress | None
) -> dict[str, int]:
    counts: dict[str, int] = {}
    for table, columns in TABLES:
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        copied = 0
        async with target.cursor() as cursor, cursor.copy(statement) as copy:
            for row in _rows(source, table, columns):
                await copy.write_row(row)
                copied += 1
                if progress is not None and copied % _PAGE == 0:
                    progress(table, copied)
        counts[table] = copied
        if progress is not None:
            progress(table, copied)
    for table in _IDENTITY_TABLES:
        await target.execute(
            sql.SQL(
                "SELECT setval(pg_get_serial_sequence({name}, 'id'), "
                "coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
            ).format(name=sql.Literal(table), table=sql.Identifier(table))
        )
    return counts
