"""Schema migrations of the PostgreSQL store: numbered SQL files, tracked in ``schema_version``.

``migrations/NNNN_name.sql`` brings the schema from version ``NNNN - 1`` to ``NNNN``; each
runs in one transaction with the bump of ``schema_version`` (PostgreSQL DDL is
transactional), under the advisory lock :data:`MIGRATE_LOCK`, so gateways starting together
migrate once. A database of a version above the newest known one is refused.
"""

from __future__ import annotations

from typing import Any, Final

from psycopg import AsyncConnection

from ..errors import SchemaVersionError
from ..migrate import Migration, numbered_migrations

MIGRATE_LOCK: Final = 0x766F6C746D696772
"""The advisory lock key held while the schema is checked or migrated ("voltmigr")."""


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
            await connection.execute(
                "INSERT INTO schema_version (version) VALUES (%s)", (migration.version,)
            )
    return max(current, LATEST_VERSION)
