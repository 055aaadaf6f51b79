"""Read-only access to the local anchor table (the ``local`` backend's SQLite file).

The backend (:mod:`ledger.anchors.local`) owns and writes the file; the evidence builder and
the audit only read it, here, without creating or changing anything.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Final

from ledger.anchors.local_entry import LocalEntry

from .connect import connect
from .errors import StoreError

_ENTRIES: Final = (
    "SELECT sequence, log_id, tree_size, root, anchored_at_ms, prev_hash, entry_hash, "
    "signature FROM anchors ORDER BY sequence"
)
_OWNER: Final = "SELECT value FROM anchor_meta WHERE key = 'public_key'"


def _entry(row: tuple[Any, ...]) -> LocalEntry:
    seq, lid, size, root, at_ms, prev, digest, signature = row
    return LocalEntry(
        sequence=seq, log_id=bytes(lid), tree_size=size, root=bytes(root), anchored_at_ms=at_ms,
        prev_hash=bytes(prev), entry_hash=bytes(digest), signature=bytes(signature),
    )  # fmt: skip


async def read_local_anchors(path: Path) -> tuple[bytes | None, list[LocalEntry]]:
    """The table's owner public key (``None`` if unrecorded) and its entries by sequence.

    One read transaction, so both come from the same snapshot; :class:`StoreError` when the
    file cannot be read.
    """
    db = await connect(path, read_only=True, busy_timeout_ms=5_000, what="local anchor table")
    try:
        await db.execute("BEGIN")
        async with db.execute(_OWNER) as cursor:
            owner = await cursor.fetchone()
        async with db.execute(_ENTRIES) as cursor:
            rows = list(await cursor.fetchall())
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the local anchor table {path}: {exc}") from exc
    finally:
        await db.close()
    return (None if owner is None else bytes(owner[0])), [_entry(tuple(row)) for row in rows]
