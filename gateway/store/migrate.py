"""Schema migrations: numbered SQL files applied in order, tracked in ``schema_version``.

A migration ``NNNN_name.sql`` in ``gateway/store/migrations`` brings the schema from version
``NNNN - 1`` to ``NNNN``. Each runs in its own ``BEGIN IMMEDIATE`` transaction together with
the bump of ``schema_version``, so a crash leaves the database at one version or the next.
Version 1 also creates the Merkle node tables of :data:`gateway.store.merkle_nodes.SCHEMA`.
Scripts may call ``sample_block(cose, part)``, one part of the ``sample_blocks`` row of a
stored telemetry message (``kind``, ``t_ms``, ``last_ms``, ``dt_ms``, ``n`` or ``columns``),
derived from the signed bytes; version 2 rebuilds the decoded samples with it. Version 5
back-fills block summaries with ``block_summary(kind, n, columns)``
(:func:`gateway.store.blocks.summary_of_block`) and ``message_host(cose)``. Version 6 keys
blocks and summaries by ``(leaf_index, kind)`` and gives every stored GB/T 32960 leaf its
pack block, summary and alarm with ``terminal_pack(cose, part)`` (:func:`terminal_pack`).
A database whose version is above the newest known migration is refused: this code would
not know what the newer schema means.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import aiosqlite

from gateway.store.merkle_nodes import SCHEMA as MERKLE_SCHEMA
from ledger import gbt32960 as gbt
from ledger.message import MessageError, decode_message
from ledger.telemetry import TelemetryError, decode_columns

from .blocks import block_row, summary, summary_of_block
from .errors import SchemaVersionError, StoreError
from .writes import block_alarm

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Migration:
    """One numbered SQL script."""

    version: int
    name: str
    sql: str


def migrations() -> tuple[Migration, ...]:
    """Every packaged SQLite migration, by version."""
    return numbered_migrations("gateway.store")


def numbered_migrations(package: str) -> tuple[Migration, ...]:
    """The scripts in ``package``'s ``migrations`` folder, by version; versions must be 1, 2,
    3, ... without holes."""
    folder = resources.files(package) / "migrations"
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match is None:
            continue
        found.append(
            Migration(
                version=int(match.group(1)),
                name=entry.name,
                sql=entry.read_text(encoding="utf-8"),
            )
        )
    found.sort(key=lambda migration: migration.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise StoreError(f"migration {migration.name} found where version {expected} belongs")
    return tuple(found)


LATEST_VERSION = len(migrations())

_BLOCK_PARTS = ("kind", "t_ms", "last_ms", "dt_ms", "n", "columns")


@lru_cache(maxsize=1)
def _block(cose: bytes) -> tuple[object, ...]:
    try:
        columns = decode_columns(decode_message(cose).payload)
    except (MessageError, TelemetryError) as exc:
        raise ValueError(f"a stored telemetry message does not decode: {exc}") from exc
    return block_row(0, "", columns)[2:]


def sample_block(cose: bytes, part: str) -> object:
    """One part of the ``sample_blocks`` row of the stored message ``cose`` (SQL function)."""
    return _block(bytes(cose))[_BLOCK_PARTS.index(part)]


def block_summary(kind: str, n: int, columns: bytes) -> bytes:
    """The summary of a stored block (SQL function; a block that does not fit fails the
    migration, which then changes nothing)."""
    if kind not in ("bus", "pack"):
        raise ValueError(f"a stored sample block has kind {kind!r}")
    return summary_of_block("pack" if kind == "pack" else "bus", int(n), bytes(columns))


def message_host(cose: bytes) -> str | None:
    """The ``host`` a stored message names (SQL function); none for a GB/T 32960 leaf and for a
    message that does not decode (``voltproof gateway check`` reports that message)."""
    data = bytes(cose)
    if gbt.is_envelope(data):
        return None
    try:
        host = decode_message(data).payload.get("host")
    except MessageError:
        return None
    return host if isinstance(host, str) else None


TERMINAL_PARTS = (
    "t_ms", "last_ms", "dt_ms", "n", "columns", "stats", "alarm_level", "alarm_t_ms", "alarm_flags",
)  # fmt: skip
"""What :func:`terminal_pack` gives: the pack block's ``sample_blocks`` columns, its summary,
and the level, time and flags of its alarm (level 0: none)."""


@lru_cache(maxsize=1)
def terminal_pack_facts(cose: bytes) -> dict[str, object] | None:
    """The pack block a stored GB/T 32960 leaf gives (:data:`TERMINAL_PARTS`), or ``None``: for
    any other leaf, for a frame without a pack sample (``ledger.gbt32960.pack_telemetry``),
    and for a leaf that does not decode (``voltproof gateway check`` reports that leaf)."""
    if not gbt.is_envelope(cose):
        return None
    try:
        pack = gbt.read_leaf(cose).pack
    except gbt.GbtError:
        return None
    if pack is None:
        return None
    _kind, t_ms, last_ms, dt_ms, n, columns = block_row(0, "", pack)[2:]
    level, at_ms, flags = block_alarm(pack)
    facts = (t_ms, last_ms, dt_ms, n, columns, summary(pack), level, at_ms, flags)
    return dict(zip(TERMINAL_PARTS, facts, strict=True))


def terminal_pack(cose: bytes, part: str) -> object:
    """One of :data:`TERMINAL_PARTS` of the pack block a stored leaf gives (SQL function;
    ``NULL`` when it gives none)."""
    if part not in TERMINAL_PARTS:
        raise ValueError(f"terminal_pack has no part {part!r}")
    facts = terminal_pack_facts(bytes(cose))
    return None if facts is None else facts[part]


async def schema_version(db: aiosqlite.Connection) -> int:
    """The version recorded in ``db`` (0 for an empty database)."""
    await db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    async with db.execute("SELECT max(version) FROM schema_version") as cursor:
        row = await cursor.fetchone()
    return 0 if row is None or row[0] is None else int(row[0])


async def migrate(
    db: aiosqlite.Connection, *, on_migration: Callable[[Migration], None] | None = None
) -> int:
    """Apply every migration ``db`` lacks; return the resulting version. ``on_migration`` is
    told of each one before it runs (a progress bar: a migration may rewrite every row).

    Raises :class:`SchemaVersionError` for a database written by a newer version.
    """
    try:
        current = await schema_version(db)
        await db.create_function("sample_block", 2, sample_block, deterministic=True)
        await db.create_function("block_summary", 3, block_summary, deterministic=True)
        await db.create_function("message_host", 1, message_host, deterministic=True)
        await db.create_function("terminal_pack", 2, terminal_pack, deterministic=True)
        if current > LATEST_VERSION:
            raise SchemaVersionError(
                f"database schema version {current} is newer than this code's {LATEST_VERSION}"
            )
        for migration in migrations()[current:]:
            if on_migration is not None:
                on_migration(migration)
            prefix = MERKLE_SCHEMA if migration.version == 1 else ""
            script = (
                f"BEGIN IMMEDIATE;\n{prefix}\n{migration.sql}\n"
                f"INSERT INTO schema_version (version) VALUES ({migration.version});\nCOMMIT;\n"
            )
            try:
                await db.executescript(script)
            except sqlite3.Error:
                if db.in_transaction:
                    await db.rollback()
                raise
    except sqlite3.Error as exc:
        raise StoreError(f"cannot migrate the gateway store: {exc}") from exc
    return max(current, LATEST_VERSION)
