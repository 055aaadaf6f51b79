"""Schema migrations of the PostgreSQL store: numbered SQL files, tracked in ``schema_version``.

``migrations/NNNN_name.sql`` brings the schema from version ``NNNN - 1`` to ``NNNN``; each
runs in one transaction with the bump of ``schema_version`` (PostgreSQL DDL is
transactional), under the advisory lock :data:`MIGRATE_LOCK`, so gateways starting together
migrate once. A database of a version above the newest known one is refused.
"""

from __future__ import annotations

from typing import Any, Final

from psycopg import AsyncConnection

from ledger.gbt32960 import MAGIC

from ..blocks import summary_of_block
from ..errors import SchemaVersionError, StoreError
from ..migrate import Migration, message_host, numbered_migrations, terminal_pack_facts

MIGRATE_LOCK: Final = 0x766F6C746D696772
"""The advisory lock key held while the schema is checked or migrated ("voltmigr")."""


SUMMARIES_VERSION: Final = 3
"""The version that adds ``sample_summaries``; the blocks already stored get theirs then."""
TERMINAL_PACK_VERSION: Final = 4
"""The version that keys blocks by ``(leaf_index, kind)``; the GB/T 32960 leaves already
stored get their pack blocks then."""
BACK_FILL_PAGE: Final = 2000
"""Blocks (or leaves) read per query while back-filling."""


def migrations() -> tuple[Migration, ...]:
    """Every packaged PostgreSQL migration, by version."""
    return numbered_migrations("gateway.store.postgresql")


LATEST_VERSION: Final = len(migrations())


async def migrate(connection: AsyncConnection[Any]) -> int:
    """Apply every migration the database lacks; return the resulting version.

    ``connection`` is in autocommit mode; psycopg errors are left to the caller.
    """
    async with connection.transaction():
        await connection.execute(f"SELECT pg_advisory_xact_lock({MIGRATE_LOCK})")
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)"
        )
        cursor = await connection.execute("SELECT max(version) FROM schema_version")
        row = await cursor.fetchone()
        current = 0 if row is None or row[0] is None else int(row[0])
        if current > LATEST_VERSION:
            raise SchemaVersionError(
                f"database schema version {current} is newer than this code's {LATEST_VERSION}"
            )
        for migration in migrations()[current:]:
            await connection.execute(migration.sql.encode())
            if migration.version == SUMMARIES_VERSION:
                await _back_fill_summaries(connection)
            if migration.version == TERMINAL_PACK_VERSION:
                await _back_fill_terminal_packs(connection)
            await connection.execute(
                "INSERT INTO schema_version (version) VALUES (%s)", (migration.version,)
            )
    return max(current, LATEST_VERSION)


async def _back_fill_summaries(connection: AsyncConnection[Any]) -> None:
    """A summary for every stored block, computed from the block, with the host its message
    names (in the migration's transaction: a block that does not fit fails the migration,
    which then changes nothing)."""
    after = -1
    while True:
        cursor = await connection.execute(
            "SELECT b.leaf_index, b.kind, b.n, b.columns, l.cose FROM sample_blocks AS b "
            "JOIN leaves AS l ON l.leaf_index = b.leaf_index WHERE b.leaf_index > %s "
            "ORDER BY b.leaf_index LIMIT %s",
            (after, BACK_FILL_PAGE),
        )
        rows = await cursor.fetchall()
        if not rows:
            return
        summaries = []
        for leaf_index, kind, n, columns, cose in rows:
            if kind not in ("bus", "pack"):
                raise StoreError(f"sample block of leaf {leaf_index} has kind {kind!r}")
            try:
                stats = summary_of_block(
                    "pack" if kind == "pack" else "bus", int(n), bytes(columns)
                )
            except ValueError as exc:
                raise StoreError(f"sample block of leaf {leaf_index}: {exc}") from exc
            summaries.append((int(leaf_index), stats, message_host(bytes(cose))))
        async with connection.cursor() as insert:
            await insert.executemany(
                "INSERT INTO sample_summaries (leaf_index, stats, host) VALUES (%s, %s, %s)",
                summaries,
            )
        after = int(rows[-1][0])


async def _back_fill_terminal_packs(connection: AsyncConnection[Any]) -> None:
    """The pack block, its summary and its alarm (level 1 or more) of every stored GB/T 32960
    leaf whose frame gives one, as the gateway writes them at intake (in the migration's
    transaction, from the frames: ``gateway.store.migrate.terminal_pack_facts``)."""
    after = -1
    while True:
        cursor = await connection.execute(
            "SELECT leaf_index, device, cose FROM leaves WHERE kind = 'telemetry' "
            "AND leaf_index > %s AND substring(cose FROM 1 FOR %s) = %s "
            "ORDER BY leaf_index LIMIT %s",
            (after, len(MAGIC), MAGIC, BACK_FILL_PAGE),
        )
        rows = await cursor.fetchall()
        if not rows:
            return
        blocks, summaries, alarms = [], [], []
        for leaf_index, device, cose in rows:
            facts = terminal_pack_facts(bytes(cose))
            if facts is None:
                continue
            blocks.append((int(leaf_index), device, "pack", facts["t_ms"], facts["last_ms"],
                           facts["dt_ms"], facts["n"], facts["columns"]))  # fmt: skip
            summaries.append((int(leaf_index), "pack", facts["stats"], None))
            if isinstance(level := facts["alarm_level"], int) and level >= 1:
                alarms.append((device, facts["alarm_t_ms"], level, facts["alarm_flags"],
                               "telemetry", "", int(leaf_index)))  # fmt: skip
        async with connection.cursor() as insert:
            await insert.executemany(
                "INSERT INTO sample_blocks (leaf_index, device, kind, t_ms, last_ms, dt_ms, n, "
                "columns) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                blocks,
            )
            await insert.executemany(
                "INSERT INTO sample_summaries (leaf_index, kind, stats, host) "
                "VALUES (%s, %s, %s, %s)",
                summaries,
            )
            await insert.executemany(
                "INSERT INTO alarms (device, t_ms, level, flags, source, detail, leaf_index) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                alarms,
            )
        after = int(rows[-1][0])
