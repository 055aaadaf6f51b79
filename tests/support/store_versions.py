"""A gateway store put back to the sample tables of an older schema version.

Written by today's code, then rewound as that version would have left it: ``sample_blocks``
and ``sample_summaries`` recreated with the exact DDL of the version (the packaged migrations
up to it, applied to a scratch database), holding what that version wrote: before version 6
no GB/T 32960 terminal had a pack block, a pack summary or an alarm row of its pack; before
version 5 there were no summaries. Then the migrations from that version on are what a test
checks: reopening the store applies them. The PostgreSQL store is rewound the same way by
undoing its later migrations' statements.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection

from gateway.store.merkle_nodes import SCHEMA as MERKLE_SCHEMA
from gateway.store.migrate import migrations

_SAMPLE_TABLES = ("sample_blocks", "sample_summaries")
_TERMINAL_PACK = "kind = 'pack' AND device IN (SELECT id FROM devices WHERE kind = 'bus')"
"""A pack block of a bus: only a GB/T 32960 terminal's frame gives one (from version 6 on)."""


MIGRATION_FUNCTIONS = {"sample_block": 2, "block_summary": 3, "message_host": 1,
                       "terminal_pack": 2}  # fmt: skip
"""The SQL functions the migrations call (``gateway.store.migrate`` registers them)."""


def _never_called(*args: object) -> None:
    raise AssertionError(f"a migration of an empty database called a function with {args}")


def sample_schema(version: int) -> list[tuple[str, str, str]]:
    """``(type, name, sql)`` of the sample tables and their indexes at ``version``."""
    scratch = sqlite3.connect(":memory:")
    try:
        # The scratch database holds no rows: the migrations' functions need only exist.
        for name, arity in MIGRATION_FUNCTIONS.items():
            scratch.create_function(name, arity, _never_called)
        scratch.executescript(MERKLE_SCHEMA + "\n".join(m.sql for m in migrations()[:version]))
        rows = scratch.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE tbl_name IN (?, ?) "
            "AND sql IS NOT NULL ORDER BY type DESC, name",
            _SAMPLE_TABLES,
        ).fetchall()
    finally:
        scratch.close()
    return [(str(kind), str(name), str(sql)) for kind, name, sql in rows]


def rewind_sample_tables(path: Path, version: int) -> None:
    """Put the store at ``path`` (written at the newest version) back to ``version`` (>= 4)."""
    if version < 4:
        raise ValueError("the sample tables are rewound to version 4 or later")
    with sqlite3.connect(path) as db:
        blocks = db.execute(
            "SELECT leaf_index, device, kind, t_ms, last_ms, dt_ms, n, columns FROM sample_blocks "
            f"WHERE NOT ({_TERMINAL_PACK}) ORDER BY leaf_index"
        ).fetchall()
        summaries = db.execute(
            "SELECT s.leaf_index, s.stats, s.host FROM sample_summaries AS s "
            "WHERE NOT (s.kind = 'pack' AND s.leaf_index IN (SELECT leaf_index FROM sample_blocks "
            f"WHERE {_TERMINAL_PACK})) ORDER BY s.leaf_index"
        ).fetchall()
        db.execute(
            "DELETE FROM alarms WHERE source = 'telemetry' AND leaf_index IN "
            f"(SELECT leaf_index FROM sample_blocks WHERE {_TERMINAL_PACK})"
        )
        for table in _SAMPLE_TABLES:
            db.execute(f"DROP TABLE {table}")
        for _type, _name, sql in sample_schema(version):
            db.execute(sql)
        db.executemany(
            "INSERT INTO sample_blocks (leaf_index, device, kind, t_ms, last_ms, dt_ms, n, "
            "columns) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            blocks,
        )
        if version >= 5:
            db.executemany(
                "INSERT INTO sample_summaries (leaf_index, stats, host) VALUES (?, ?, ?)",
                summaries,
            )
        db.execute("DELETE FROM schema_version WHERE version > ?", (version,))


async def rewind_postgres_sample_tables(db: AsyncConnection[Any], version: int) -> None:
    """Put the PostgreSQL store behind ``db`` (autocommit, written at the newest version) back
    to ``version`` (2 or 3): keys, indexes and rows as ``gateway/store/postgresql/migrations``
    0001 (and 0003) made them."""
    if version not in (2, 3):
        raise ValueError("the PostgreSQL sample tables are rewound to version 2 or 3")
    async with db.transaction():
        for statement in (
            "DELETE FROM alarms WHERE source = 'telemetry' AND leaf_index IN "
            f"(SELECT leaf_index FROM sample_blocks WHERE {_TERMINAL_PACK})",
            "DELETE FROM sample_summaries WHERE kind = 'pack' AND leaf_index IN "
            f"(SELECT leaf_index FROM sample_blocks WHERE {_TERMINAL_PACK})",
            f"DELETE FROM sample_blocks WHERE {_TERMINAL_PACK}",
            "ALTER TABLE sample_blocks DROP CONSTRAINT sample_blocks_pkey",
            "ALTER TABLE sample_blocks ADD PRIMARY KEY (leaf_index)",
            "DROP INDEX sample_blocks_by_device_time",
            "DROP INDEX sample_blocks_by_device_last",
            "CREATE INDEX sample_blocks_by_device_time ON sample_blocks (device, t_ms, last_ms)",
            "CREATE INDEX sample_blocks_by_device_last ON sample_blocks (device, last_ms)",
            "ALTER TABLE sample_summaries DROP CONSTRAINT sample_summaries_pkey",
            "ALTER TABLE sample_summaries DROP COLUMN kind",
            "ALTER TABLE sample_summaries ADD PRIMARY KEY (leaf_index)",
            *(["DROP TABLE sample_summaries"] if version == 2 else []),
        ):
            await db.execute(statement.encode())
        await db.execute("DELETE FROM schema_version WHERE version > %s", (version,))
