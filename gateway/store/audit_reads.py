"""Whole-store reads for the audit (``voltproof gateway check``): everything, as stored.

The audit recomputes what the store derives from the leaves and compares, so these reads
return rows as they are (no root computed, no node required) inside one :meth:`snapshot`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ledger.merkle import NodeId

from .errors import LogCorruptError
from .history import HistoryReads
from .merkle_nodes import SELECT_SIZE_SQL
from .reads import leaf_columns, leaf_record
from .records import ChainHeadRecord, KeyRange, LeafRecord, SampleBlockRecord


class AuditReads(HistoryReads):
    """Every leaf, node, key range, chain head, gap and sample block, for the audit."""

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[None]:
        """Reads inside see one consistent state of the store (one read transaction).

        For readers: the store's own writes cannot run while a snapshot is open.
        """
        async with self._lock:
            await self._begin("BEGIN", "read")
        try:
            yield
        finally:
            async with self._lock:
                await self._rollback()

    async def stored_size(self) -> int:
        """The log size as recorded (no node is read or checked)."""
        rows = await self._rows(SELECT_SIZE_SQL)
        if not rows:
            raise LogCorruptError("the log size row is missing")
        return int(rows[0][0])

    async def leaves_page(self, *, after: int, limit: int) -> list[LeafRecord]:
        """At most ``limit`` stored leaves with index above ``after``, by index."""
        rows = await self._rows(
            f"SELECT {leaf_columns()} FROM leaves WHERE leaf_index > ? "  # noqa: S608 -- constant columns
            "ORDER BY leaf_index LIMIT ?",
            (after, limit),
        )
        return [leaf_record(row) for row in rows]

    async def stored_nodes(self) -> dict[NodeId, bytes]:
        """Every stored Merkle node."""
        rows = await self._rows("SELECT level, idx, hash FROM merkle_nodes")
        return {NodeId(level, index): bytes(value) for level, index, value in rows}

    async def key_ranges(self) -> dict[str, list[KeyRange]]:
        """Every device key with the seqs it may sign, by device."""
        keys: dict[str, list[KeyRange]] = defaultdict(list)
        for device, key, from_seq, until_seq in await self._rows(
            "SELECT device, public_key, from_seq, until_seq FROM device_keys"
        ):
            keys[device].append(
                KeyRange(public_key=bytes(key), from_seq=from_seq, until_seq=until_seq)
            )
        return dict(keys)

    async def chain_heads(self) -> list[ChainHeadRecord]:
        """Every device's chain head."""
        rows = await self._rows("SELECT device, seq, message_hash, duplicates FROM chain_heads")
        return [
            ChainHeadRecord(device_id=d, seq=s, message_hash=bytes(h), duplicates=n)
            for d, s, h, n in rows
        ]

    async def all_chain_gaps(self) -> dict[str, list[tuple[int, int]]]:
        """Every recorded gap ``[start, stop)``, by device."""
        gaps: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for device, start, stop in await self._rows("SELECT device, start, stop FROM chain_gaps"):
            gaps[device].append((int(start), int(stop)))
        return dict(gaps)

    async def sample_blocks(self) -> list[SampleBlockRecord]:
        """Every stored sample block."""
        rows = await self._rows(
            "SELECT leaf_index, device, kind, t_ms, last_ms, dt_ms, n, columns FROM sample_blocks"
        )
        return [
            SampleBlockRecord(leaf_index=int(r[0]), device_id=r[1], kind=r[2], t_ms=r[3],
                              last_ms=r[4], dt_ms=r[5], n=r[6], columns=bytes(r[7]))
            for r in rows
        ]  # fmt: skip

    async def sample_summaries(self) -> dict[tuple[int, str], tuple[bytes, str | None]]:
        """Every stored block summary and host, by leaf index and kind."""
        rows = await self._rows("SELECT leaf_index, kind, stats, host FROM sample_summaries")
        return {(int(index), str(kind)): (bytes(stats), host) for index, kind, stats, host in rows}
