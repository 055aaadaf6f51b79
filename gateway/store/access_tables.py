"""The API's own SQLite database: API keys (hashed), leases and pack transfers.

Kept apart from the gateway database (the gateway never reads it; the API never writes the
gateway's). Only the SQL lives here; :mod:`api.accessdb` decides what a key, lease or
transfer may be and builds the caller's grants.

Migrations: ``MIGRATIONS[i]`` brings the schema from version ``i`` to ``i + 1``, each in one
transaction, recorded in ``PRAGMA user_version``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Self

import aiosqlite

from .connect import connect
from .errors import StoreError

MIGRATIONS: Final = (
    """
    CREATE TABLE api_keys (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL CHECK (role IN ('operator', 'lessor', 'auditor')),
        fleet TEXT,
        key_hash BLOB NOT NULL UNIQUE CHECK (length(key_hash) = 32),
        created_at_ms INTEGER NOT NULL,
        revoked INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1))
    );
    CREATE TABLE leases (
        id INTEGER PRIMARY KEY,
        asset TEXT NOT NULL,
        lessor TEXT NOT NULL,
        from_ms INTEGER NOT NULL,
        to_ms INTEGER NOT NULL CHECK (to_ms > from_ms)
    );
    CREATE INDEX leases_by_lessor ON leases (lessor, asset);
    CREATE TABLE transfers (
        id INTEGER PRIMARY KEY,
        pack TEXT NOT NULL,
        owner TEXT NOT NULL,
        at_ms INTEGER NOT NULL
    );
    CREATE INDEX transfers_by_owner ON transfers (owner, pack);
    """,
)


class AccessTableError(StoreError):
    """The access database cannot be opened, migrated or read."""


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyRow:
    """A live (not revoked) API key as stored."""

    name: str
    role: str
    fleet: str | None
    key_hash: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseRow:
    """A stored lease (or, from :meth:`AccessTables.grants`, a transfer: id 0)."""

    lease_id: int
    asset: str
    lessor: str
    from_ms: int
    to_ms: int


class AccessTables:
    """Keys, leases and transfers on one SQLite file; open with :meth:`open`."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    @classmethod
    async def open(cls, path: Path) -> Self:
        """Open (creating and migrating if needed) the database at ``path``."""
        try:
            db = await connect(path, read_only=False, busy_timeout_ms=5_000, what="access database")
        except StoreError as exc:
            raise AccessTableError(str(exc)) from exc
        try:
            await db.execute("PRAGMA journal_mode = WAL")
            await _migrate(db)
        except AccessTableError:
            await db.close()
            raise
        except sqlite3.Error as exc:
            await db.close()
            raise AccessTableError(f"cannot prepare the access database {path}: {exc}") from exc
        return cls(db)

    async def close(self) -> None:
        """Close the connection."""
        await self._db.close()

    async def insert_key(
        self, *, name: str, role: str, fleet: str | None, key_hash: bytes, now_ms: int
    ) -> bool:
        """Store a key; ``False`` (nothing stored) when a key of that name exists."""
        try:
            await self._db.execute(
                "INSERT INTO api_keys (name, role, fleet, key_hash, created_at_ms) "
                "VALUES (?, ?, ?, ?, ?)",
                (name, role, fleet, key_hash, now_ms),
            )
        except sqlite3.IntegrityError:
            return False
        return True

    async def insert_lease(self, *, asset: str, lessor: str, from_ms: int, to_ms: int) -> int:
        """Store a lease; its id."""
        cursor = await self._db.execute(
            "INSERT INTO leases (asset, lessor, from_ms, to_ms) VALUES (?, ?, ?, ?)",
            (asset, lessor, from_ms, to_ms),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    async def insert_transfer(self, *, pack: str, owner: str, at_ms: int) -> None:
        """Store a pack transfer."""
        await self._db.execute(
            "INSERT INTO transfers (pack, owner, at_ms) VALUES (?, ?, ?)", (pack, owner, at_ms)
        )

    async def key_role(self, name: str) -> str | None:
        """The role of the live key ``name``, or ``None``."""
        async with self._db.execute(
            "SELECT role FROM api_keys WHERE name = ? AND revoked = 0", (name,)
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else str(row[0])

    async def key_by_hash(self, key_hash: bytes) -> KeyRow | None:
        """The live key whose hash is ``key_hash``, or ``None``."""
        async with self._db.execute(
            "SELECT name, role, fleet, key_hash FROM api_keys WHERE key_hash = ? AND revoked = 0",
            (key_hash,),
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return None
        return KeyRow(name=str(row[0]), role=str(row[1]), fleet=row[2], key_hash=bytes(row[3]))

    async def grants(self, lessor: str, *, forever_ms: int) -> list[LeaseRow]:
        """The lessor's leases, then its transferred packs (from 0 to ``forever_ms``)."""
        async with self._db.execute(
            "SELECT asset, from_ms, to_ms FROM leases WHERE lessor = ? "
            "UNION ALL SELECT pack, 0, ? FROM transfers WHERE owner = ?",
            (lessor, forever_ms, lessor),
        ) as cursor:
            return [
                LeaseRow(lease_id=0, asset=a, lessor=lessor, from_ms=f, to_ms=t)
                async for a, f, t in cursor
            ]

    async def leases(self) -> list[LeaseRow]:
        """Every lease, oldest first."""
        async with self._db.execute(
            "SELECT id, asset, lessor, from_ms, to_ms FROM leases ORDER BY id"
        ) as cursor:
            return [
                LeaseRow(lease_id=i, asset=a, lessor=n, from_ms=f, to_ms=t)
                async for i, a, n, f, t in cursor
            ]


async def _migrate(db: aiosqlite.Connection) -> None:
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    version = int(row[0]) if row else 0
    if version > len(MIGRATIONS):
        raise AccessTableError(
            f"the access database has schema version {version}; this voltproof knows "
            f"{len(MIGRATIONS)} (upgrade voltproof)"
        )
    for number in range(version, len(MIGRATIONS)):
        await db.executescript(
            f"BEGIN IMMEDIATE; {MIGRATIONS[number]} PRAGMA user_version = {number + 1}; COMMIT;"
        )
