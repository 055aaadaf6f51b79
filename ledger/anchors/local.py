"""The ``local`` anchor backend: an append-only, hash-chained, gateway-signed table in SQLite.

I/O: this module opens an SQLite database (aiosqlite) and reads the wall clock (injectable).
Every ``submit`` runs in one ``BEGIN IMMEDIATE`` transaction, so a crash at any point either
leaves the anchor fully committed or not at all; a retried ``submit`` then returns the
committed receipt instead of anchoring twice. Anchors are final once committed.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self

import aiosqlite
from nacl.signing import SigningKey

from .base import (
    AnchorBackendContext,
    AnchorReceipt,
    AnchorRequest,
    AnchorState,
    check_anchor_fields,
    refuse_empty_tree,
)
from .errors import AnchorConflict, AnchorError, AnchorRejected, AnchorUnavailable
from .local_entry import EXPORT_FORMAT, GENESIS_HASH, LocalEntry
from .sqlite_open import open_sqlite

NAME = "local"
SEED_SIZE = 32

_SCHEMA = """
CREATE TABLE IF NOT EXISTS anchor_meta (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS anchors (
    sequence INTEGER PRIMARY KEY,
    log_id BLOB NOT NULL,
    tree_size INTEGER NOT NULL,
    root BLOB NOT NULL,
    anchored_at_ms INTEGER NOT NULL,
    prev_hash BLOB NOT NULL,
    entry_hash BLOB NOT NULL UNIQUE,
    signature BLOB NOT NULL,
    UNIQUE (log_id, tree_size)
);
"""
_SELECT_SIZE = (
    "SELECT sequence, log_id, tree_size, root, anchored_at_ms, prev_hash, entry_hash, signature "
    "FROM anchors WHERE log_id = ? AND tree_size = ?"
)
_SELECT_LAST = (
    "SELECT sequence, log_id, tree_size, root, anchored_at_ms, prev_hash, entry_hash, signature "
    "FROM anchors ORDER BY sequence DESC LIMIT 1"
)
_SELECT_LATEST = (
    "SELECT sequence, log_id, tree_size, root, anchored_at_ms, prev_hash, entry_hash, signature "
    "FROM anchors WHERE log_id = ? ORDER BY tree_size DESC LIMIT 1"
)
_SELECT_ALL = (
    "SELECT sequence, log_id, tree_size, root, anchored_at_ms, prev_hash, entry_hash, signature "
    "FROM anchors ORDER BY sequence"
)
_INSERT = (
    "INSERT INTO anchors (sequence, log_id, tree_size, root, anchored_at_ms, prev_hash, "
    "entry_hash, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def _entry(row: sqlite3.Row | tuple[object, ...]) -> LocalEntry:
    seq, log_id, size, root, at_ms, prev, entry_hash, sig = tuple(row)
    assert isinstance(seq, int)
    assert isinstance(size, int)
    assert isinstance(at_ms, int)
    assert isinstance(log_id, bytes)
    assert isinstance(root, bytes)
    assert isinstance(prev, bytes)
    assert isinstance(entry_hash, bytes)
    assert isinstance(sig, bytes)
    return LocalEntry(
        sequence=seq,
        log_id=log_id,
        tree_size=size,
        root=root,
        anchored_at_ms=at_ms,
        prev_hash=prev,
        entry_hash=entry_hash,
        signature=sig,
    )


def _receipt(entry: LocalEntry) -> AnchorReceipt:
    return AnchorReceipt(
        backend=NAME,
        log_id=entry.log_id,
        tree_size=entry.tree_size,
        root=entry.root,
        state=AnchorState.FINAL,
        details=entry.details(),
    )


class LocalAnchorBackend(AnchorBackendContext):
    """Anchors into a SQLite table signed by the gateway key; open with ``LocalAnchorBackend.open``.

    The table records the public key of the first key that wrote to it; a backend opened
    with another key may read but its ``submit`` raises ``AnchorRejected``.
    """

    name = NAME

    def __init__(
        self,
        *,
        db: aiosqlite.Connection,
        signing_key: SigningKey,
        owner_key: bytes,
        clock_ms: Callable[[], int],
    ) -> None:
        self._db = db
        self._signing_key = signing_key
        self._owner_key = owner_key
        self._clock_ms = clock_ms
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"LocalAnchorBackend(public_key={bytes(self._signing_key.verify_key).hex()})"

    @classmethod
    async def open(
        cls,
        path: Path | str,
        *,
        seed: bytes,
        clock_ms: Callable[[], int] = _wall_clock_ms,
        busy_timeout_ms: int = 5_000,
    ) -> Self:
        """Open (creating if needed) the anchor table at ``path``, signing with ``seed``."""
        if len(seed) != SEED_SIZE:
            raise ValueError(f"seed must be {SEED_SIZE} bytes, got {len(seed)}")
        signing_key = SigningKey(seed)
        public_key = bytes(signing_key.verify_key)
        try:
            db = await open_sqlite(path, busy_timeout_ms=busy_timeout_ms)
        except sqlite3.Error as exc:
            raise AnchorUnavailable(f"cannot open anchor table {path}: {exc}") from exc
        try:
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = FULL")
            await db.executescript(_SCHEMA)
            await db.execute(
                "INSERT OR IGNORE INTO anchor_meta (key, value) VALUES ('public_key', ?)",
                (public_key,),
            )
            async with db.execute(
                "SELECT value FROM anchor_meta WHERE key = 'public_key'"
            ) as cursor:
                row = await cursor.fetchone()
        except sqlite3.Error as exc:
            await db.close()
            raise AnchorUnavailable(f"cannot prepare anchor table {path}: {exc}") from exc
        assert row is not None
        owner_key = bytes(row[0])
        return cls(db=db, signing_key=signing_key, owner_key=owner_key, clock_ms=clock_ms)

    @property
    def public_key(self) -> bytes:
        """The public key this table's entries are signed with."""
        return self._owner_key

    async def _fetch(self, sql: str, params: tuple[object, ...]) -> LocalEntry | None:
        async with self._db.execute(sql, params) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _entry(row)

    async def submit(self, request: AnchorRequest) -> AnchorReceipt:
        """Append a signed entry for ``request`` in one transaction (idempotent)."""
        refuse_empty_tree(request)
        if bytes(self._signing_key.verify_key) != self._owner_key:
            raise AnchorRejected(
                f"this anchor table is written by key {self._owner_key.hex()}; "
                f"key {bytes(self._signing_key.verify_key).hex()} is not authorised"
            )
        async with self._lock:
            try:
                return await self._append(request)
            except sqlite3.Error as exc:
                raise AnchorUnavailable(f"anchor table write failed: {exc}") from exc

    async def _append(self, request: AnchorRequest) -> AnchorReceipt:
        await self._db.execute("BEGIN IMMEDIATE")
        try:
            receipt = await self._append_in_transaction(request)
        except (AnchorError, sqlite3.Error):
            await self._db.execute("ROLLBACK")
            raise
        await self._db.execute("COMMIT")
        return receipt

    async def _append_in_transaction(self, request: AnchorRequest) -> AnchorReceipt:
        existing = await self._fetch(
            _SELECT_SIZE,
            (request.log_id, request.tree_size),
        )
        if existing is not None:
            if existing.root != request.root:
                raise AnchorConflict(
                    log_id=request.log_id,
                    tree_size=request.tree_size,
                    anchored=existing.root,
                    offered=request.root,
                )
            return _receipt(existing)
        async with self._db.execute(
            "SELECT MAX(tree_size) FROM anchors WHERE log_id = ?", (request.log_id,)
        ) as cursor:
            row = await cursor.fetchone()
        largest = row[0] if row is not None and row[0] is not None else 0
        if request.tree_size < largest:
            raise AnchorRejected(
                f"tree size {request.tree_size} is below the anchored size {largest}"
            )
        last = await self._fetch(_SELECT_LAST, ())
        entry = LocalEntry.create(
            sequence=1 if last is None else last.sequence + 1,
            log_id=request.log_id,
            tree_size=request.tree_size,
            root=request.root,
            anchored_at_ms=self._clock_ms(),
            prev_hash=GENESIS_HASH if last is None else last.entry_hash,
            signing_key=self._signing_key,
        )
        await self._db.execute(
            _INSERT,
            (
                entry.sequence,
                entry.log_id,
                entry.tree_size,
                entry.root,
                entry.anchored_at_ms,
                entry.prev_hash,
                entry.entry_hash,
                entry.signature,
            ),
        )
        return _receipt(entry)

    async def get(self, log_id: bytes, tree_size: int) -> AnchorReceipt | None:
        """Return the committed receipt for ``tree_size`` or ``None``."""
        check_anchor_fields(log_id, tree_size)
        try:
            entry = await self._fetch(
                _SELECT_SIZE,
                (log_id, tree_size),
            )
        except sqlite3.Error as exc:
            raise AnchorUnavailable(f"anchor table read failed: {exc}") from exc
        return None if entry is None else _receipt(entry)

    async def refresh(self, log_id: bytes, tree_size: int) -> AnchorReceipt | None:
        """Local anchors are final once committed: the same as ``get``."""
        return await self.get(log_id, tree_size)

    async def latest(self, log_id: bytes) -> AnchorReceipt | None:
        """Return the receipt of the largest anchored size of ``log_id``."""
        check_anchor_fields(log_id, 0)
        try:
            entry = await self._fetch(
                _SELECT_LATEST,
                (log_id,),
            )
        except sqlite3.Error as exc:
            raise AnchorUnavailable(f"anchor table read failed: {exc}") from exc
        return None if entry is None else _receipt(entry)

    async def entries(self) -> list[LocalEntry]:
        """Every entry in sequence order."""
        try:
            async with self._db.execute(_SELECT_ALL) as cursor:
                rows = await cursor.fetchall()
        except sqlite3.Error as exc:
            raise AnchorUnavailable(f"anchor table read failed: {exc}") from exc
        return [_entry(row) for row in rows]

    async def export(self, path: Path | None = None) -> dict[str, object]:
        """Return the JSON export for offline verification; also write it to ``path``.

        The file is written to a temporary name and renamed, so a reader never sees half.
        """
        document: dict[str, object] = {
            "format": EXPORT_FORMAT,
            "entries": [entry.to_dict() for entry in await self.entries()],
        }
        if path is not None:
            text = json.dumps(document, indent=1, sort_keys=True) + "\n"
            tmp = path.with_name(path.name + ".tmp")
            await asyncio.to_thread(tmp.write_text, text, encoding="utf-8")
            await asyncio.to_thread(tmp.replace, path)
        return document

    async def aclose(self) -> None:
        """Close the database connection."""
        await self._db.close()
