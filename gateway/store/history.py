"""Reads of a device's history: messages by period, registry leaves and events, sample blocks.

What the dashboard API and the evidence builder read besides proofs and checkpoints. Every
query is served by an index: telemetry leaves by ``(device, t_ms)`` or ``(device, seq)``,
registry events by ``(device, leaf_index)``, sample blocks by ``(device, kind, t_ms, ...)``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from ledger import gbt32960 as gbt
from ledger.device_index import DeviceIndex
from ledger.message import MessageError, decode_message
from ledger.telemetry import Kind

from .checkpoints import CheckpointReads
from .errors import StoreError
from .reads import END_MS, leaf_columns, leaf_record, marks
from .records import LeafRecord, MessageLeaf, RegistryEventRecord

if TYPE_CHECKING:
    from .samples import BlockGroup, Samples, SummaryRead

_MESSAGE: Final = (
    "SELECT leaf_index, seq, t_ms, cose FROM leaves WHERE device = ? AND seq IS NOT NULL "
)


def _host(index: int, cose: bytes) -> str | None:
    """The ``host`` a stored message names."""
    if gbt.is_envelope(cose):
        return None
    try:
        host = decode_message(cose).payload.get("host")
    except MessageError as exc:
        raise StoreError(f"stored leaf {index} does not decode: {exc}") from exc
    return host if isinstance(host, str) else None


def _message(row: Sequence[Any]) -> MessageLeaf:
    return MessageLeaf(leaf_index=row[0], seq=row[1], t_ms=row[2], cose=bytes(row[3]))


def _first(rows: Sequence[Any]) -> MessageLeaf | None:
    return _message(rows[0]) if rows else None


BATCH: Final = 500
"""Devices per query of the batched newest reads (far below SQLite's 32,766 variables)."""
_FOLD_OFF_LOOP: Final = 10_000
"""Rows above which the index is fed in a worker thread (a start-up replay of a big fleet)."""


def _fold(index: DeviceIndex, registry: Sequence[Any], heads: Sequence[Any]) -> None:
    """Registry entries in log order, then each device's highest seq of the range."""
    for device, kind, cose in registry:
        index.add_registry_entry(device=device, kind=kind, entry=bytes(cose))
    for device, seq, leaf_index, message_hash, t_ms in heads:
        if index.entry(device) is not None:
            index.add_message(
                device=device, seq=seq, leaf=leaf_index, message_hash=bytes(message_hash), t=t_ms
            )


class HistoryReads(CheckpointReads):
    """Messages by device and period, the registry's history and sample blocks."""

    async def messages_in(
        self,
        device_id: str,
        *,
        t_from: int,
        t_to: int,
        limit: int,
        after: tuple[int, int] | None = None,
    ) -> list[MessageLeaf]:
        """At most ``limit`` telemetry leaves of a device with ``t_from <= t < t_to``, by
        ``(t, leaf_index)``; ``after``: only those above that key (the next page)."""
        t_after, leaf_after = after if after is not None else (-END_MS, -1)
        rows = await self._rows(
            f"{_MESSAGE}AND t_ms >= ? AND t_ms < ? "
            "AND (t_ms > ? OR (t_ms = ? AND leaf_index > ?)) ORDER BY t_ms, leaf_index LIMIT ?",
            (device_id, t_from, t_to, t_after, t_after, leaf_after, limit),
        )
        return [_message(row) for row in rows]

    async def message_hosts(
        self,
        device_id: str,
        *,
        t_from: int,
        t_to: int,
        limit: int,
        after: tuple[int, int] | None = None,
    ) -> list[tuple[int, int, str | None]]:
        """``(leaf_index, t, host)`` of the leaves :meth:`messages_in` would return: the bus
        each message names, read from the summary row of its own block (of the device's kind;
        a message stored without one is decoded). A pack's installation history without
        decoding a year of messages.

        Raises :class:`~gateway.store.errors.StoreError` for a stored message that does not
        decode.
        """
        t_after, leaf_after = after if after is not None else (-END_MS, -1)
        rows = await self._rows(
            "SELECT l.leaf_index, l.t_ms, s.host, s.leaf_index IS NULL FROM leaves AS l "
            "LEFT JOIN sample_summaries AS s ON s.leaf_index = l.leaf_index "
            "AND s.kind = (SELECT kind FROM devices WHERE id = l.device) "
            "WHERE l.device = ? AND l.seq IS NOT NULL AND l.t_ms >= ? AND l.t_ms < ? "
            "AND (l.t_ms > ? OR (l.t_ms = ? AND l.leaf_index > ?)) "
            "ORDER BY l.t_ms, l.leaf_index LIMIT ?",
            (device_id, t_from, t_to, t_after, t_after, leaf_after, limit),
        )
        missing = [int(row[0]) for row in rows if row[3]]
        decoded: dict[int, str | None] = {}
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            for index, cose in await self._rows(
                f"SELECT leaf_index, cose FROM leaves WHERE leaf_index IN ({marks(len(chunk))})",  # noqa: S608 -- placeholders only
                chunk,
            ):
                decoded[int(index)] = _host(int(index), bytes(cose))
        return [
            (int(index), int(t_ms), decoded[int(index)] if lacking else host)
            for index, t_ms, host, lacking in rows
        ]

    async def message_before(
        self, device_id: str, *, seq: int, t_ms: int, leaf_below: int
    ) -> MessageLeaf | None:
        """The device's message of highest seq below ``seq``, before ``t_ms`` and ``leaf_below``."""
        rows = await self._rows(
            f"{_MESSAGE}AND seq < ? AND t_ms < ? AND leaf_index < ? ORDER BY seq DESC LIMIT 1",
            (device_id, seq, t_ms, leaf_below),
        )
        return _first(rows)

    async def message_after(
        self, device_id: str, *, seq: int, t_ms: int, leaf_below: int
    ) -> MessageLeaf | None:
        """The device's message of lowest seq above ``seq``, at or after ``t_ms``, below a leaf."""
        rows = await self._rows(
            f"{_MESSAGE}AND seq > ? AND t_ms >= ? AND leaf_index < ? ORDER BY seq LIMIT 1",
            (device_id, seq, t_ms, leaf_below),
        )
        return _first(rows)

    async def device_index_at(self, size: int) -> DeviceIndex:
        """The device index (evidence v2) of the log prefix of ``size`` leaves.

        Replays the prefix's registry entries in log order, then sets each device's head to
        its highest seq below ``size``: a deterministic function of the prefix.
        """
        index = DeviceIndex()
        await self.extend_device_index(index, start=0, size=size)
        return index

    async def extend_device_index(self, index: DeviceIndex, *, start: int, size: int) -> None:
        """Feed ``index`` (the index of the first ``start`` leaves) the leaves ``[start, size)``.

        Afterwards it is the index of the first ``size`` leaves: registry entries are folded
        in log order, and a head moves only to a higher seq, so the highest seq of the range
        wins over the heads already held. Costs one query per kind of leaf, O(changed rows).
        """
        registry = await self._rows(
            "SELECT e.device, d.kind, l.cose FROM registry_events AS e "
            "JOIN leaves AS l ON l.leaf_index = e.leaf_index JOIN devices AS d ON d.id = e.device "
            "WHERE e.leaf_index >= ? AND e.leaf_index < ? ORDER BY e.leaf_index, e.device",
            (start, size),
        )
        # The row of each device's highest seq in the range, through the (device, seq) index
        # (standard SQL: PostgreSQL has no bare columns beside MAX()).
        heads = await self._rows(
            "SELECT l.device, l.seq, l.leaf_index, l.message_hash, l.t_ms FROM leaves AS l "
            "JOIN (SELECT device, MAX(seq) AS seq FROM leaves WHERE seq IS NOT NULL "
            "AND leaf_index >= ? AND leaf_index < ? GROUP BY device) AS h "
            "ON l.device = h.device AND l.seq = h.seq ORDER BY l.device",
            (start, size),
        )
        if len(registry) + len(heads) > _FOLD_OFF_LOOP:
            await asyncio.to_thread(_fold, index, registry, heads)
        else:
            _fold(index, registry, heads)

    async def newest_message(
        self, device_id: str, *, t_from: int, t_to: int, leaf_below: int = END_MS
    ) -> LeafRecord | None:
        """The device's telemetry leaf of newest ``t`` in ``[t_from, t_to)`` below a leaf index."""
        rows = await self._rows(
            f"SELECT {leaf_columns()} FROM leaves WHERE device = ? AND seq IS NOT NULL "  # noqa: S608 -- constant columns
            "AND t_ms >= ? AND t_ms < ? AND leaf_index < ? ORDER BY t_ms DESC, leaf_index DESC "
            "LIMIT 1",
            (device_id, t_from, t_to, leaf_below),
        )
        return leaf_record(rows[0]) if rows else None

    async def newest_messages(
        self, device_ids: Sequence[str], *, t_from: int = 0, t_to: int = END_MS
    ) -> dict[str, LeafRecord]:
        """Per device of ``device_ids`` that has one, its telemetry leaf of newest ``t`` in
        ``[t_from, t_to)`` (of equal times, the higher leaf index): one query per
        :data:`BATCH` devices, each device one probe of the ``(device, t_ms)`` index."""
        found: dict[str, LeafRecord] = {}
        ids = sorted(set(device_ids))
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            rows = await self._rows(
                f"SELECT {leaf_columns()} FROM leaves WHERE leaf_index IN "  # noqa: S608 -- placeholders only
                "(SELECT (SELECT l.leaf_index FROM leaves AS l WHERE l.device = d.id "
                "AND l.seq IS NOT NULL AND l.t_ms >= ? AND l.t_ms < ? "
                "ORDER BY l.t_ms DESC, l.leaf_index DESC LIMIT 1) "
                f"FROM devices AS d WHERE d.id IN ({marks(len(chunk))}))",
                [t_from, t_to, *chunk],
            )
            found.update((row[2], leaf_record(row)) for row in rows)
        return found

    async def newest_samples(
        self,
        kind: Kind,
        device_ids: Sequence[str],
        *,
        t_from: int = 0,
        t_to: int = END_MS,
        fields: Sequence[str] | None = None,
    ) -> dict[str, Samples]:
        """Per device of ``device_ids`` that has one, its newest ``kind`` sample in
        ``[t_from, t_to)``, as :meth:`newest_sample` finds it, in two queries per
        :data:`BATCH` devices."""
        from . import samples  # numpy: only processes that read samples load it

        found: dict[str, Samples] = {}
        ids = sorted(set(device_ids))
        for start in range(0, len(ids), BATCH):
            found.update(
                await samples.newest_of_devices(
                    self._rows,
                    kind,
                    ids[start : start + BATCH],
                    from_ms=t_from,
                    to_ms=t_to,
                    fields=fields,
                )
            )
        return found

    async def registry_leaves(
        self, device_ids: Sequence[str], *, leaf_below: int
    ) -> list[LeafRecord]:
        """The registry leaves naming ``device_ids`` below ``leaf_below``, in log order (a
        ``replace`` is a leaf of both devices it names)."""
        ids = sorted(set(device_ids))
        if not ids:
            return []
        rows = await self._rows(
            f"SELECT {leaf_columns()} FROM leaves WHERE leaf_index IN "  # noqa: S608 -- placeholders only
            f"(SELECT leaf_index FROM registry_events WHERE device IN ({marks(len(ids))}) "
            "AND leaf_index < ?) ORDER BY leaf_index",
            [*ids, leaf_below],
        )
        return [leaf_record(row) for row in rows]

    async def registry_events(
        self,
        *,
        device_id: str | None = None,
        limit: int = 1000,
        after: tuple[int, str] | None = None,
    ) -> list[RegistryEventRecord]:
        """Registry leaves (of one device or all) in log order, with each device's fleet;
        ``after``: only those above that ``(leaf_index, device)`` key (the next page; a
        ``replace`` is one leaf of two devices, so the leaf alone would not do)."""
        leaf, device = after if after is not None else (-1, "")
        where = "WHERE (e.leaf_index > ? OR (e.leaf_index = ? AND e.device > ?))"
        params: list[object] = [leaf, leaf, device]
        if device_id is not None:
            where += " AND e.device = ?"
            params.append(device_id)
        rows = await self._rows(
            "SELECT e.leaf_index, e.action, e.device, e.recorded_at_ms, l.message_hash, d.fleet "  # noqa: S608 -- constant clause
            "FROM registry_events AS e JOIN leaves AS l ON l.leaf_index = e.leaf_index "
            f"LEFT JOIN devices AS d ON d.id = e.device {where} "
            "ORDER BY e.leaf_index, e.device LIMIT ?",
            [*params, limit],
        )
        return [
            RegistryEventRecord(leaf_index=r[0], action=r[1], device_id=r[2],
                                recorded_at_ms=r[3], message_hash=bytes(r[4]), fleet=r[5])
            for r in rows
        ]  # fmt: skip

    async def sample_window(
        self,
        kind: Kind,
        device_id: str,
        *,
        t_from: int,
        t_to: int,
        fields: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> Samples:
        """The device's samples with ``t_from <= t < t_to``, oldest first, at most ``limit``.

        Raises :class:`~gateway.store.samples.BlockError` for a damaged sample block.
        """
        from . import samples  # numpy: only processes that read samples load it

        return await samples.window(
            self._rows, kind, device_id, from_ms=t_from, to_ms=t_to, fields=fields, limit=limit
        )

    async def sample_blocks_in(
        self,
        kind: Kind,
        device_id: str,
        *,
        t_from: int,
        t_to: int,
        fields: Sequence[str],
    ) -> list[BlockGroup]:
        """The device's sample blocks holding samples in ``[t_from, t_to)``, not flattened,
        grouped by size (a chart reduces whole blocks without decoding each sample)."""
        from . import samples  # numpy: only processes that read samples load it

        return await samples.window_blocks(
            self._rows, kind, device_id, from_ms=t_from, to_ms=t_to, fields=fields
        )

    async def sample_summaries_in(
        self,
        kind: Kind,
        device_id: str,
        *,
        t_from: int,
        t_to: int,
        bucket_ms: int,
        names: Sequence[str],
    ) -> SummaryRead:
        """For a chart of ``[t_from, t_to)`` in buckets of ``bucket_ms``: the summaries of the
        blocks inside the period and one bucket, the other blocks whole (see
        :func:`gateway.store.samples.window_summaries`)."""
        from . import samples  # numpy: only processes that read samples load it

        return await samples.window_summaries(
            self._rows, kind, device_id, from_ms=t_from, to_ms=t_to, bucket_ms=bucket_ms,
            names=names,
        )  # fmt: skip

    async def newest_sample(
        self,
        kind: Kind,
        device_id: str,
        *,
        t_from: int,
        t_to: int,
        fields: Sequence[str] | None = None,
    ) -> Samples:
        """The device's newest sample with ``t_from <= t < t_to`` (none or one)."""
        from . import samples  # numpy: only processes that read samples load it

        return await samples.newest(
            self._rows, kind, device_id, from_ms=t_from, to_ms=t_to, fields=fields
        )
