"""Witness cosignatures of the gateway's checkpoints in the store (reads and the one write).

Each row is a ``cosignature/v1`` line one witness (named by its vkey) answered for one
checkpoint, verified by :mod:`gateway.witnessing` before it is written. The evidence
builder reads, for a leaf range, the cosigned checkpoints that first cover each leaf, with a
consistency proof to the bundle's checkpoint (``ledger.timeliness`` consumes them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from .checkpoints import CheckpointReads
from .errors import UnknownCheckpointError
from .records import CosignatureRecord, CosignedCheckpointRecord

_SELECT: Final = "SELECT size, witness, timestamp, line, received_at_ms FROM cosignatures"


class CosignatureReads(CheckpointReads):
    """Cosignatures by checkpoint and by witness (reads)."""

    async def cosignatures(self, size: int) -> list[CosignatureRecord]:
        """The stored cosignatures of the checkpoint of ``size``, by witness key."""
        rows = await self._rows(_SELECT + " WHERE size = ? ORDER BY witness", (size,))
        return [_record(row) for row in rows]

    async def latest_cosigned(self, witness: str) -> CosignatureRecord | None:
        """The cosignature of the largest checkpoint ``witness`` (a vkey) cosigned, or ``None``."""
        rows = await self._rows(
            _SELECT + " WHERE witness = ? ORDER BY size DESC LIMIT 1",
            (witness,),
        )
        return _record(rows[0]) if rows else None

    async def cosigned_covering(
        self, *, leaf_from: int, leaf_to: int, size: int
    ) -> list[CosignedCheckpointRecord]:
        """The cosigned checkpoints that first cover each leaf of ``[leaf_from, leaf_to)``.

        For each leaf ``i`` that is the smallest cosigned checkpoint of size above ``i`` and
        not above ``size``; each comes with every stored cosignature line appended to the
        gateway's note and the consistency proof from its size to ``size``. Smallest first;
        leaves no cosigned checkpoint up to ``size`` covers have none.
        """
        if not 0 <= leaf_from <= leaf_to:
            raise ValueError(f"leaf range [{leaf_from}, {leaf_to}) is not a range")
        if leaf_from == leaf_to:
            return []
        rows = await self._rows(
            "SELECT DISTINCT size FROM cosignatures WHERE size > ? AND size <= ? AND size <= "
            "coalesce((SELECT min(size) FROM cosignatures WHERE size >= ? AND size <= ?), ?) "
            "ORDER BY size",
            (leaf_from, size, leaf_to, size, size),
        )
        found = []
        for (covering,) in rows:
            checkpoint = await self.checkpoint(int(covering))
            lines = await self.cosignatures(checkpoint.size)
            found.append(
                CosignedCheckpointRecord(
                    size=checkpoint.size,
                    root=checkpoint.root,
                    note=checkpoint.note + "".join(line.line for line in lines),
                    cosignatures=tuple(lines),
                    proof=tuple(await self.consistency_proof(checkpoint.size, size)),
                )
            )
        return found


class CosignatureStore(CosignatureReads):
    """Cosignatures by checkpoint and by witness (the write)."""

    async def add_cosignature(self, record: CosignatureRecord) -> bool:
        """Store a verified cosignature; return False if that witness's one is already stored.

        Raises :class:`UnknownCheckpointError` when no checkpoint of that size is stored.
        """
        async with self._write() as db:
            async with db.execute(
                "SELECT 1 FROM checkpoints WHERE size = ?", (record.size,)
            ) as cursor:
                if await cursor.fetchone() is None:
                    raise UnknownCheckpointError(f"no checkpoint of size {record.size} is stored")
            cursor = await db.execute(
                "INSERT INTO cosignatures (size, witness, timestamp, line, received_at_ms) "
                "VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (size, witness) DO NOTHING",
                (record.size, record.witness, record.timestamp, record.line, record.received_at_ms),
            )
            return cursor.rowcount == 1


def _record(row: Sequence[Any]) -> CosignatureRecord:
    return CosignatureRecord(
        size=int(row[0]),
        witness=str(row[1]),
        timestamp=int(row[2]),
        line=str(row[3]),
        received_at_ms=int(row[4]),
    )
