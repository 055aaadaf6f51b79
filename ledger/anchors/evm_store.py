"""A small SQLite table of the anchor transactions an EVM backend has signed.

I/O: aiosqlite. A row is written BEFORE its transaction is broadcast, so a backend restarted
after a crash between signing, sending and reading the receipt finds the transaction and
re-checks (or re-broadcasts) it instead of anchoring the same size twice.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import aiosqlite

from .errors import AnchorUnavailable
from .sqlite_open import open_sqlite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS evm_anchor_txs (
    chain_id INTEGER NOT NULL,
    contract TEXT NOT NULL,
    log_id BLOB NOT NULL,
    tree_size INTEGER NOT NULL,
    root BLOB NOT NULL,
    tx_hash BLOB NOT NULL,
    raw_tx BLOB NOT NULL,
    nonce INTEGER NOT NULL,
    PRIMARY KEY (chain_id, contract, log_id, tree_size)
);
"""
_SELECT_ONE = (
    "SELECT log_id, tree_size, root, tx_hash, raw_tx, nonce FROM evm_anchor_txs "
    "WHERE chain_id = ? AND contract = ? AND log_id = ? AND tree_size = ?"
)
_SELECT_LATEST = (
    "SELECT log_id, tree_size, root, tx_hash, raw_tx, nonce FROM evm_anchor_txs "
    "WHERE chain_id = ? AND contract = ? AND log_id = ? ORDER BY tree_size DESC LIMIT 1"
)
_UPSERT = (
    "INSERT OR REPLACE INTO evm_anchor_txs (chain_id, contract, log_id, tree_size, root, "
    "tx_hash, raw_tx, nonce) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredTx:
    """The transaction signed to anchor ``(log_id, tree_size, root)``."""

    log_id: bytes
    tree_size: int
    root: bytes
    tx_hash: bytes
    raw_tx: bytes
    nonce: int


def _row(row: sqlite3.Row | tuple[object, ...] | None) -> StoredTx | None:
    if row is None:
        return None
    log_id, size, root, tx_hash, raw, nonce = tuple(row)
    assert isinstance(log_id, bytes)
    assert isinstance(root, bytes)
    assert isinstance(tx_hash, bytes)
    assert isinstance(raw, bytes)
    assert isinstance(size, int)
    assert isinstance(nonce, int)
    return StoredTx(
        log_id=log_id, tree_size=size, root=root, tx_hash=tx_hash, raw_tx=raw, nonce=nonce
    )


class EvmTxStore:
    """Signed anchor transactions per (chain id, contract, log id, tree size)."""

    def __init__(self, *, db: aiosqlite.Connection) -> None:
        self._db = db

    @classmethod
    async def open(cls, path: Path | str) -> Self:
        """Open (creating if needed) the table in the SQLite database at ``path``."""
        try:
            db = await open_sqlite(path, busy_timeout_ms=5_000)
            await db.execute("PRAGMA synchronous = FULL")
            await db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise AnchorUnavailable(f"cannot open EVM transaction store {path}: {exc}") from exc
        return cls(db=db)

    async def get(
        self, *, chain_id: int, contract: str, log_id: bytes, tree_size: int
    ) -> StoredTx | None:
        """The transaction recorded for that size, if any."""
        return await self._one(_SELECT_ONE, (chain_id, contract, log_id, tree_size))

    async def latest(self, *, chain_id: int, contract: str, log_id: bytes) -> StoredTx | None:
        """The transaction recorded for the largest size of ``log_id``, if any."""
        return await self._one(_SELECT_LATEST, (chain_id, contract, log_id))

    async def _one(self, sql: str, params: tuple[object, ...]) -> StoredTx | None:
        try:
            async with self._db.execute(sql, params) as cursor:
                return _row(await cursor.fetchone())
        except sqlite3.Error as exc:
            raise AnchorUnavailable(f"EVM transaction store read failed: {exc}") from exc

    async def put(self, *, chain_id: int, contract: str, tx: StoredTx) -> None:
        """Record (or replace) the transaction for ``tx``'s size; durable on return."""
        try:
            await self._db.execute(
                _UPSERT,
                (
                    chain_id,
                    contract,
                    tx.log_id,
                    tx.tree_size,
                    tx.root,
                    tx.tx_hash,
                    tx.raw_tx,
                    tx.nonce,
                ),
            )
        except sqlite3.Error as exc:
            raise AnchorUnavailable(f"EVM transaction store write failed: {exc}") from exc

    async def aclose(self) -> None:
        """Close the database."""
        await self._db.close()
