"""Checkpoints and anchor receipts in the store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from .errors import StoreError, UnknownCheckpointError
from .reads import StoreReads
from .records import AnchoredCheckpoint, AnchorStatus, CheckpointRecord

_COLUMNS: Final = (
    "c.size, c.root, c.note, c.signed_at_ms, c.anchor_state, r.receipt "
    "FROM checkpoints AS c LEFT JOIN anchor_receipts AS r ON r.size = c.size"
)


class CheckpointReads(StoreReads):
    """Signed checkpoints and the state of their anchors (reads)."""

    async def latest_checkpoint(self) -> CheckpointRecord | None:
        """The checkpoint of the largest size, or ``None``."""
        rows = await self._rows(f"SELECT {_COLUMNS} ORDER BY c.size DESC LIMIT 1")
        return _record(rows[0]) if rows else None

    async def latest_final_checkpoint(self) -> CheckpointRecord | None:
        """The largest checkpoint whose anchor is final, or ``None``."""
        rows = await self._rows(
            f"SELECT {_COLUMNS} WHERE c.anchor_state = ? ORDER BY c.size DESC LIMIT 1",
            (AnchorStatus.FINAL.value,),
        )
        return _record(rows[0]) if rows else None

    async def checkpoint(self, size: int) -> CheckpointRecord:
        """The checkpoint of ``size``."""
        rows = await self._rows(f"SELECT {_COLUMNS} WHERE c.size = ?", (size,))
        if not rows:
            raise UnknownCheckpointError(f"no checkpoint of size {size} is stored")
        return _record(rows[0])

    async def checkpoints(
        self, *, limit: int = 100, final_only: bool = False, below_size: int | None = None
    ) -> list[CheckpointRecord]:
        """The newest checkpoints, largest first (``final_only``: those with a final anchor;
        ``below_size``: only those smaller, the keyset of the next page)."""
        clauses = ["c.size < ?"]
        if final_only:
            clauses.append("c.anchor_state = 'final'")
        rows = await self._rows(
            f"SELECT {_COLUMNS} WHERE {' AND '.join(clauses)} ORDER BY c.size DESC LIMIT ?",
            (2**63 - 1 if below_size is None else below_size, limit),
        )
        return [_record(row) for row in rows]

    async def checkpoints_in(self, states: Sequence[AnchorStatus]) -> list[CheckpointRecord]:
        """Checkpoints whose anchor is in one of ``states``, smallest first."""
        marks = ", ".join(["?"] * len(states))
        rows = await self._rows(
            f"SELECT {_COLUMNS} WHERE c.anchor_state IN ({marks}) ORDER BY c.size",
            [state.value for state in states],
        )
        return [_record(row) for row in rows]

    async def checkpoint_between(self, low: int, high: int) -> CheckpointRecord | None:
        """The smallest checkpoint with ``low <= size <= high``, or ``None``."""
        rows = await self._rows(
            f"SELECT {_COLUMNS} WHERE c.size >= ? AND c.size <= ? ORDER BY c.size LIMIT 1",
            (low, high),
        )
        return _record(rows[0]) if rows else None

    async def latest_anchored(self) -> AnchoredCheckpoint | None:
        """The largest checkpoint whose anchor receipt is final, with that receipt."""
        rows = await self._rows(
            "SELECT c.size, c.root, r.backend, r.receipt FROM checkpoints AS c "
            "JOIN anchor_receipts AS r ON r.size = c.size WHERE r.state = 'final' "
            "ORDER BY c.size DESC LIMIT 1"
        )
        if not rows:
            return None
        size, root, backend, receipt = rows[0]
        return AnchoredCheckpoint(
            size=int(size), root=bytes(root), backend=str(backend), receipt=str(receipt)
        )


class CheckpointStore(StoreReads):
    """Signed checkpoints and the state of their anchors (writes)."""

    async def add_checkpoint(self, record: CheckpointRecord) -> None:
        """Store a signed checkpoint; storing the same one twice is a no-op.

        Raises :class:`StoreError` if a different root is stored for that size.
        """
        async with self._write() as db:
            async with db.execute(
                "SELECT root FROM checkpoints WHERE size = ?", (record.size,)
            ) as cursor:
                row = await cursor.fetchone()
            if row is not None:
                if bytes(row[0]) != record.root:
                    raise StoreError(
                        f"checkpoint {record.size} is stored with root {bytes(row[0]).hex()}, "
                        f"not {record.root.hex()}"
                    )
                return
            await db.execute(
                "INSERT INTO checkpoints (size, root, note, signed_at_ms, anchor_state) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    record.size,
                    record.root,
                    record.note,
                    record.signed_at_ms,
                    record.anchor_state.value,
                ),
            )

    async def record_anchor(
        self, *, size: int, backend: str, state: AnchorStatus, receipt: str, now_ms: int
    ) -> None:
        """Store the receipt of checkpoint ``size``; unanchored smaller ones become superseded."""
        if state not in {AnchorStatus.PENDING, AnchorStatus.FINAL}:
            raise ValueError(f"an anchor receipt is pending or final, not {state.value}")
        async with self._write() as db:
            cursor = await db.execute(
                "UPDATE checkpoints SET anchor_state = ? WHERE size = ?", (state.value, size)
            )
            if cursor.rowcount != 1:
                raise UnknownCheckpointError(f"no checkpoint of size {size} is stored")
            await db.execute(
                "INSERT INTO anchor_receipts (size, backend, state, receipt, updated_at_ms) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (size) DO UPDATE SET "
                "backend = excluded.backend, state = excluded.state, "
                "receipt = excluded.receipt, updated_at_ms = excluded.updated_at_ms",
                (size, backend, state.value, receipt, now_ms),
            )
            await db.execute(
                "UPDATE checkpoints SET anchor_state = 'superseded' "
                "WHERE size < ? AND anchor_state = 'unanchored'",
                (size,),
            )


def _record(row: Sequence[Any]) -> CheckpointRecord:
    return CheckpointRecord(
        size=row[0],
        root=row[1],
        note=row[2],
        signed_at_ms=row[3],
        anchor_state=AnchorStatus(row[4]),
        receipt=row[5],
    )
