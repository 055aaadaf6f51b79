"""The API's own SQLite database: API keys (hashed), leases, pack transfers, alarm
acknowledgements and the key that signs page cursors.

Kept apart from the gateway database (the gateway never reads it; the API never writes the
gateway's). Only the SQL lives here; :mod:`api.accessdb` decides what a key, lease or
transfer may be and builds the caller's grants.

Migrations: ``MIGRATIONS[i]`` brings the schema from version ``i`` to ``i + 1``, each in one
transaction, recorded in ``PRAGMA user_version``.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Self

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
    """
    ALTER TABLE api_keys ADD COLUMN revoked_at_ms INTEGER;
    UPDATE api_keys SET revoked_at_ms = 0 WHERE revoked = 1;
    ALTER TABLE leases ADD COLUMN ended_at_ms INTEGER;
    ALTER TABLE transfers ADD COLUMN by_name TEXT NOT NULL DEFAULT '';
    CREATE INDEX transfers_by_pack ON transfers (pack, at_ms, id);
    """,
    # Alarm acknowledgements are the operator's workflow, not evidence: they live here, not in
    # the gateway's log. Each names the alarm by its store id AND by what it says (device,
    # time, level), so a store rebuilt with other ids never inherits another alarm's
    # acknowledgement. The cursor key signs page cursors (one per database, so cursors
    # survive a restart and every API process over this database accepts them).
    """
    CREATE TABLE alarm_acks (
        id INTEGER PRIMARY KEY,
        alarm_id INTEGER NOT NULL UNIQUE,
        device TEXT NOT NULL,
        t_ms INTEGER NOT NULL,
        level INTEGER NOT NULL,
        by_name TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        note TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX alarm_acks_by_device ON alarm_acks (device, t_ms);
    CREATE TABLE api_secrets (
        name TEXT PRIMARY KEY,
        value BLOB NOT NULL CHECK (length(value) = 32)
    );
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
class KeyInfo:
    """An API key as listed (never its hash)."""

    name: str
    role: str
    fleet: str | None
    created_at_ms: int
    revoked_at_ms: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseRow:
    """A stored lease (or, from :meth:`AccessTables.grants`, a transfer: id 0)."""

    lease_id: int
    asset: str
    lessor: str
    from_ms: int
    to_ms: int
    ended_at_ms: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferRow:
    """A recorded pack transfer: to whom, by whom, when."""

    transfer_id: int
    pack: str
    owner: str
    by: str
    at_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AckRow:
    """A stored alarm acknowledgement: which alarm (id and what it says), who, when, why."""

    ack_id: int
    alarm_id: int
    device: str
    t_ms: int
    level: int
    by: str
    at_ms: int
    note: str


_ACK_COLUMNS: Final = "id, alarm_id, device, t_ms, level, by_name, at_ms, note"


def _ack(row: Sequence[Any]) -> AckRow:
    return AckRow(ack_id=row[0], alarm_id=row[1], device=row[2], t_ms=row[3], level=row[4],
                  by=row[5], at_ms=row[6], note=row[7])  # fmt: skip


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

    async def insert_transfer(self, *, pack: str, owner: str, by: str, at_ms: int) -> None:
        """Store a pack transfer made by ``by``."""
        await self._db.execute(
            "INSERT INTO transfers (pack, owner, by_name, at_ms) VALUES (?, ?, ?, ?)",
            (pack, owner, by, at_ms),
        )

    async def transfers(self, pack: str | None = None) -> list[TransferRow]:
        """The transfers (of ``pack``, or all), oldest first."""
        async with self._db.execute(
            "SELECT id, pack, owner, by_name, at_ms FROM transfers "
            "WHERE ? IS NULL OR pack = ? ORDER BY at_ms, id",
            (pack, pack),
        ) as cursor:
            return [
                TransferRow(transfer_id=i, pack=p, owner=o, by=b, at_ms=t)
                async for i, p, o, b, t in cursor
            ]

    async def replace_key_hash(self, name: str, key_hash: bytes) -> bool:
        """Give the live key ``name`` a new hash; ``False`` when there is no such key."""
        cursor = await self._db.execute(
            "UPDATE api_keys SET key_hash = ? WHERE name = ? AND revoked = 0", (key_hash, name)
        )
        return cursor.rowcount == 1

    async def revoke_key(self, name: str, *, now_ms: int) -> bool:
        """Revoke the live key ``name``; ``False`` when there is none."""
        cursor = await self._db.execute(
            "UPDATE api_keys SET revoked = 1, revoked_at_ms = ? WHERE name = ? AND revoked = 0",
            (now_ms, name),
        )
        return cursor.rowcount == 1

    async def keys(self) -> list[KeyInfo]:
        """Every key (live and revoked), by name; never the hash."""
        async with self._db.execute(
            "SELECT name, role, fleet, created_at_ms, revoked_at_ms FROM api_keys ORDER BY name"
        ) as cursor:
            return [
                KeyInfo(name=n, role=r, fleet=f, created_at_ms=c, revoked_at_ms=v)
                async for n, r, f, c, v in cursor
            ]

    async def end_lease(self, lease_id: int, *, now_ms: int) -> bool:
        """End the running lease ``lease_id`` at ``now_ms``; ``False`` when there is none."""
        cursor = await self._db.execute(
            "UPDATE leases SET ended_at_ms = ? WHERE id = ? AND ended_at_ms IS NULL",
            (now_ms, lease_id),
        )
        return cursor.rowcount == 1

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

    async def leases(self, lessor: str | None = None) -> list[LeaseRow]:
        """The leases (of ``lessor``, or all), oldest first."""
        async with self._db.execute(
            "SELECT id, asset, lessor, from_ms, to_ms, ended_at_ms FROM leases "
            "WHERE ? IS NULL OR lessor = ? ORDER BY id",
            (lessor, lessor),
        ) as cursor:
            return [
                LeaseRow(lease_id=i, asset=a, lessor=n, from_ms=f, to_ms=t, ended_at_ms=e)
                async for i, a, n, f, t, e in cursor
            ]

    async def transfers_touching(self, owner: str) -> list[TransferRow]:
        """Every transfer of every pack ``owner`` was ever given, oldest first."""
        async with self._db.execute(
            "SELECT id, pack, owner, by_name, at_ms FROM transfers WHERE pack IN "
            "(SELECT pack FROM transfers WHERE owner = ?) ORDER BY at_ms, id",
            (owner,),
        ) as cursor:
            return [
                TransferRow(transfer_id=i, pack=p, owner=o, by=b, at_ms=t)
                async for i, p, o, b, t in cursor
            ]

    async def insert_ack(
        self, *, alarm_id: int, device: str, t_ms: int, level: int, by: str, at_ms: int, note: str
    ) -> AckRow:
        """Store the acknowledgement of ``alarm_id`` unless one exists; the stored one (the
        first acknowledgement wins: a second is answered with the first, not recorded)."""
        await self._db.execute(
            "INSERT INTO alarm_acks (alarm_id, device, t_ms, level, by_name, at_ms, note) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (alarm_id) DO NOTHING",
            (alarm_id, device, t_ms, level, by, at_ms, note),
        )
        found = await self.acks_of([alarm_id])
        return found[alarm_id]

    async def acks_of(self, alarm_ids: Sequence[int]) -> dict[int, AckRow]:
        """The acknowledgements of ``alarm_ids`` that exist, by alarm id."""
        ids = sorted(set(alarm_ids))
        found: dict[int, AckRow] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            async with self._db.execute(
                f"SELECT {_ACK_COLUMNS} FROM alarm_acks "  # noqa: S608 -- placeholders only
                f"WHERE alarm_id IN ({', '.join('?' * len(chunk))})",
                chunk,
            ) as cursor:
                for row in await cursor.fetchall():
                    ack = _ack(row)
                    found[ack.alarm_id] = ack
        return found

    async def acks(
        self, *, devices: Sequence[str] | None = None, before_id: int | None = None, limit: int
    ) -> list[AckRow]:
        """Acknowledgements (of ``devices``, or all), newest first; ``before_id``: only older
        ones (the keyset of the next page)."""
        clauses, params = ["id < ?"], [2**63 - 1 if before_id is None else before_id]
        if devices is not None:
            if not devices:
                return []
            clauses.append(f"device IN ({', '.join('?' * len(devices))})")
        async with self._db.execute(
            f"SELECT {_ACK_COLUMNS} FROM alarm_acks WHERE {' AND '.join(clauses)} "  # noqa: S608 -- placeholders only
            "ORDER BY id DESC LIMIT ?",
            [*params, *(devices or ()), limit],
        ) as cursor:
            return [_ack(row) for row in await cursor.fetchall()]

    async def secret(self, name: str) -> bytes:
        """The 32-byte secret ``name``, made (randomly, once) on first use."""
        await self._db.execute(
            "INSERT INTO api_secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
            (name, secrets.token_bytes(32)),
        )
        async with self._db.execute("SELECT value FROM api_secrets WHERE name = ?", (name,)) as c:
            row = await c.fetchone()
        assert row is not None
        return bytes(row[0])


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
