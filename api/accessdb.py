"""The API's own SQLite database: API keys (hashed), leases and pack transfers.

Kept apart from the gateway database (the gateway never reads it; the API never writes the
gateway's). Keys are 32 random bytes shown once (``vpk_`` + URL-safe base64); only their
SHA-256 is stored. A high-entropy key needs no slow password hash: an attacker holding the
database still has to invert SHA-256 on a 256-bit secret. The lookup goes by the hash and
the found hash is compared again in constant time.

Migrations: ``MIGRATIONS[i]`` brings the schema from version ``i`` to ``i + 1``, each in one
transaction, recorded in ``PRAGMA user_version``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Self

import aiosqlite

from .access import FOREVER, Grant, Principal, Role, Window

KEY_PREFIX: Final = "vpk_"
MAX_NAME_LEN: Final = 64

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


class AccessError(Exception):
    """An access-control request is invalid (unknown role, duplicate name, bad period)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CreatedKey:
    """A new API key: the secret is shown once and never stored."""

    name: str
    role: Role
    fleet: str | None
    secret: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Lease:
    """An asset leased to a lessor over a period."""

    lease_id: int
    asset: str
    lessor: str
    window: Window


def _probe(path: Path) -> None:
    sqlite3.connect(os.fspath(path)).close()


def hash_key(secret: str) -> bytes:
    """The stored form of an API key."""
    return hashlib.sha256(secret.encode("utf-8")).digest()


def _check_name(what: str, value: str) -> None:
    if not value or len(value) > MAX_NAME_LEN or not value.isprintable() or value != value.strip():
        raise AccessError(f"{what} must be 1-{MAX_NAME_LEN} printable characters, got {value!r}")


class AccessDb:
    """Keys, leases and transfers on one SQLite file; open with :meth:`open`."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    @classmethod
    async def open(cls, path: Path) -> Self:
        """Open (creating and migrating if needed) the database at ``path``."""
        try:
            # Probe synchronously first: a failed aiosqlite.connect leaves a worker thread
            # that reports to the event loop after it may have closed.
            await asyncio.to_thread(_probe, path)
            db = await aiosqlite.connect(os.fspath(path), isolation_level=None)
        except sqlite3.Error as exc:
            raise AccessError(f"cannot open the access database {path}: {exc}") from exc
        try:
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA busy_timeout = 5000")
            await _migrate(db)
        except AccessError:
            await db.close()
            raise
        except sqlite3.Error as exc:
            await db.close()
            raise AccessError(f"cannot prepare the access database {path}: {exc}") from exc
        return cls(db)

    async def close(self) -> None:
        """Close the connection."""
        await self._db.close()

    async def create_key(
        self, *, name: str, role: Role, fleet: str | None, now_ms: int
    ) -> CreatedKey:
        """Create a key; the returned secret is the only copy."""
        _check_name("key name", name)
        if fleet is not None:
            _check_name("fleet", fleet)
        if fleet is not None and role is not Role.OPERATOR:
            raise AccessError(f"--fleet applies to operator keys, not {role.value} keys")
        secret = KEY_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        try:
            await self._db.execute(
                "INSERT INTO api_keys (name, role, fleet, key_hash, created_at_ms) "
                "VALUES (?, ?, ?, ?, ?)",
                (name, role.value, fleet, hash_key(secret), now_ms),
            )
        except sqlite3.IntegrityError as exc:
            raise AccessError(f"a key named {name!r} exists already") from exc
        return CreatedKey(name=name, role=role, fleet=fleet, secret=secret)

    async def add_lease(self, *, asset: str, lessor: str, window: Window) -> Lease:
        """Lease ``asset`` to the lessor key named ``lessor`` over ``window``."""
        _check_name("asset", asset)
        await self._require_lessor(lessor)
        cursor = await self._db.execute(
            "INSERT INTO leases (asset, lessor, from_ms, to_ms) VALUES (?, ?, ?, ?)",
            (asset, lessor, window.from_ms, window.to_ms),
        )
        assert cursor.lastrowid is not None
        return Lease(lease_id=cursor.lastrowid, asset=asset, lessor=lessor, window=window)

    async def transfer(self, *, pack: str, owner: str, now_ms: int) -> None:
        """Give the lessor key ``owner`` the pack's whole history (a second-life sale)."""
        _check_name("pack", pack)
        await self._require_lessor(owner)
        await self._db.execute(
            "INSERT INTO transfers (pack, owner, at_ms) VALUES (?, ?, ?)", (pack, owner, now_ms)
        )

    async def _require_lessor(self, name: str) -> None:
        async with self._db.execute(
            "SELECT role FROM api_keys WHERE name = ? AND revoked = 0", (name,)
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            raise AccessError(f"no API key named {name!r}; create it first (api keys create)")
        if row[0] != Role.LESSOR.value:
            raise AccessError(f"key {name!r} is a {row[0]} key; leases go to lessor keys")

    async def authenticate(self, secret: str) -> Principal | None:
        """The principal holding ``secret``, or ``None`` for an unknown or revoked key."""
        wanted = hash_key(secret)
        async with self._db.execute(
            "SELECT name, role, fleet, key_hash FROM api_keys WHERE key_hash = ? AND revoked = 0",
            (wanted,),
        ) as cursor:
            row = await cursor.fetchone()
        if row is None or not hmac.compare_digest(bytes(row[3]), wanted):
            return None
        name, role = str(row[0]), Role(row[1])
        grants: list[Grant] = []
        if role is Role.LESSOR:
            async with self._db.execute(
                "SELECT asset, from_ms, to_ms FROM leases WHERE lessor = ? "
                "UNION ALL SELECT pack, 0, ? FROM transfers WHERE owner = ?",
                (name, FOREVER, name),
            ) as cursor:
                grants = [
                    Grant(asset=a, window=Window(from_ms=f, to_ms=t)) async for a, f, t in cursor
                ]
        return Principal(name=name, role=role, fleet=row[2], grants=tuple(grants))

    async def leases(self) -> list[Lease]:
        """Every lease, oldest first."""
        async with self._db.execute(
            "SELECT id, asset, lessor, from_ms, to_ms FROM leases ORDER BY id"
        ) as cursor:
            return [
                Lease(lease_id=i, asset=a, lessor=n, window=Window(from_ms=f, to_ms=t))
                async for i, a, n, f, t in cursor
            ]


async def _migrate(db: aiosqlite.Connection) -> None:
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    version = int(row[0]) if row else 0
    if version > len(MIGRATIONS):
        raise AccessError(
            f"the access database has schema version {version}; this voltproof knows "
            f"{len(MIGRATIONS)} (upgrade voltproof)"
        )
    for number in range(version, len(MIGRATIONS)):
        await db.executescript(
            f"BEGIN IMMEDIATE; {MIGRATIONS[number]} PRAGMA user_version = {number + 1}; COMMIT;"
        )
