"""The store's connection handling and its read API (dashboard queries, proofs, registry).

Every query here is served by an index: leaves by ``leaf_index`` or ``(device, seq)``,
sample blocks by ``(device, kind, ...)``, alarms by ``(device, t_ms)``, quarantine by ``id``
or ``(reason, id)``, Merkle nodes by their primary key (O(log n) of them per proof, in one
query).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final, Self

import aiosqlite

from gateway.store.merkle_nodes import SELECT_SIZE_SQL, node_key, node_parameters, select_nodes_sql
from ledger.merkle import (
    LogState,
    NodeId,
    OutOfRangeError,
    ProofPlan,
    consistency_proof_plan,
    inclusion_proof_plan,
    state_nodes,
)
from ledger.merkle.border import fold_border
from ledger.merkle.proof import check_inclusion_request, sibling_path
from ledger.telemetry import FIELDS, Kind

from .errors import LogCorruptError, StoreError, UnstorableValueError
from .records import (
    AlarmRecord,
    DeviceRecord,
    DeviceStatus,
    KeyRange,
    LeafRecord,
    LogHead,
    QuarantineCount,
    QuarantineRecord,
    ReceiptHead,
)

if TYPE_CHECKING:
    from .samples import Samples

_DEVICE_COLUMNS: Final = (
    "id, kind, fleet, public_key, status, enrolled_leaf, rotated_leaf, revoked_leaf, "
    "(SELECT received_at_ms FROM leaves WHERE leaf_index = devices.enrolled_leaf)"
)
_LEAF_COLUMNS: Final = (
    "leaf_index, kind, device, seq, t_ms, received_at_ms, historical, message_hash, cose, prev"
)
_QUARANTINE_COLUMNS: Final = "id, reason, detail, topic, device, raw, raw_size, received_at_ms"
_ALARM_COLUMNS: Final = "device, t_ms, level, flags, source, detail, leaf_index, id"
END_MS: Final = 2**63 - 1
"""The end of time: a period bound past every stored ``t``."""
NODES_PER_QUERY: Final = 30_000
"""Node keys per query of :meth:`StoreReads.inclusion_proofs` (SQLite allows 32,766 variables)."""


def marks(count: int) -> str:
    """``count`` SQL placeholders."""
    return ", ".join(["?"] * count)


def leaf_columns() -> str:
    """The columns :func:`leaf_record` reads, in order."""
    return _LEAF_COLUMNS


class StoreReads:
    """A connection used under one lock, with the read half of the store API."""

    def __init__(self, *, db: aiosqlite.Connection, lock: asyncio.Lock) -> None:
        self._db = db
        self._lock = lock

    async def close(self) -> None:
        """Close the connection."""
        await self._db.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction, committed on success, rolled back otherwise."""
        async with self._lock:
            await self._begin("BEGIN IMMEDIATE", "write")
            try:
                yield self._db
                await self._db.execute("COMMIT")
            except (OverflowError, sqlite3.IntegrityError, sqlite3.DataError) as exc:
                await self._rollback()
                raise UnstorableValueError(f"{type(exc).__name__}: {exc}") from exc
            except sqlite3.Error as exc:
                await self._rollback()
                raise StoreError(f"write transaction failed: {exc}") from exc
            except BaseException:
                await self._rollback()
                raise

    async def _begin(self, statement: str, what: str) -> None:
        try:
            await self._db.execute(statement)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot start a {what} transaction: {exc}") from exc

    async def _rollback(self) -> None:
        if self._db.in_transaction:
            try:
                await self._db.execute("ROLLBACK")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot roll back: {exc}") from exc

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise StoreError(f"store read failed: {exc}") from exc

    async def _rows(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        async with self._read() as db, db.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    # -- Merkle log ---------------------------------------------------------------------------

    async def _size(self) -> int:
        async with self._db.execute(SELECT_SIZE_SQL) as cursor:
            row = await cursor.fetchone()
        if row is None:
            raise LogCorruptError("the log size row is missing")
        return int(row[0])

    async def _fetch(self, nodes: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        if not nodes:
            return {}
        async with self._db.execute(select_nodes_sql(len(nodes)), node_parameters(nodes)) as cursor:
            fetched = {NodeId(level, index): value async for level, index, value in cursor}
        if len(fetched) != len(set(nodes)):
            missing = [node for node in nodes if node not in fetched]
            raise LogCorruptError(f"the log is missing stored nodes {missing}")
        return fetched

    async def _state_at(self, size: int) -> LogState:
        ids = state_nodes(size)
        fetched = await self._fetch(ids)
        return LogState.from_nodes(size, [fetched[node] for node in ids])

    async def _log_state(self) -> LogState:
        """The committed state: size and border nodes (call inside a transaction)."""
        return await self._state_at(await self._size())

    async def log_head(self) -> LogHead:
        """The committed log size and root."""
        async with self._read():
            state = await self._log_state()
        return LogHead(size=state.size, root=state.root())

    async def root_at(self, size: int) -> bytes:
        """The root of the first ``size`` leaves."""
        async with self._read():
            await self._check_size(size)
            return (await self._state_at(size)).root()

    async def inclusion_proof(self, leaf_index: int, size: int) -> list[bytes]:
        """The RFC 9162 inclusion proof of ``leaf_index`` in the tree of ``size`` leaves."""
        return await self._proof(inclusion_proof_plan(index=leaf_index, size=size), size)

    async def inclusion_proofs(self, leaf_indexes: Sequence[int], size: int) -> list[list[bytes]]:
        """The inclusion proofs of many leaves in the tree of ``size``, in the order given.

        Equal to one :meth:`inclusion_proof` per leaf, but the union of the stored nodes the
        proofs need is read with one query per :data:`NODES_PER_QUERY` nodes, and the
        partial right-border subtrees (one per level, shared by every proof) are folded once
        from the state nodes of ``size``.
        """
        paths = []
        wanted: set[NodeId] = set()
        border_needed = False
        for index in leaf_indexes:
            check_inclusion_request(index=index, size=size)
            nodes, ephemeral, level = sibling_path(index, size, 0)
            if ephemeral >= 0:
                border_needed = True
                wanted.update(nodes[:ephemeral])
                wanted.update(nodes[ephemeral + 1 :])
            else:
                wanted.update(nodes)
            paths.append((nodes, ephemeral, level))
        states = state_nodes(size) if border_needed else ()
        wanted.update(states)
        ordered = sorted(wanted, key=node_key)  # completion order: neighbours share pages
        async with self._read():
            await self._check_size(size)
            fetched: dict[NodeId, bytes] = {}
            for start in range(0, len(ordered), NODES_PER_QUERY):
                fetched.update(await self._fetch_all(ordered[start : start + NODES_PER_QUERY]))
        border = fold_border([fetched[node] for node in states]) if states else []
        proofs = []
        for nodes, ephemeral, level in paths:
            proof = [fetched[node] for node in nodes] if ephemeral < 0 else [
                border[(size >> level).bit_count()] if k == ephemeral else fetched[node]
                for k, node in enumerate(nodes)
            ]  # fmt: skip
            proofs.append(proof)
        return proofs

    async def inclusion_proof_and_root(
        self, leaf_index: int, size: int
    ) -> tuple[list[bytes], bytes]:
        """The inclusion proof of ``leaf_index`` in the tree of ``size`` and that tree's root.

        What :meth:`inclusion_proof` and :meth:`root_at` give, read together with one size
        check and one node query.
        """
        plan = inclusion_proof_plan(index=leaf_index, size=size)
        states = state_nodes(size)
        async with self._read():
            await self._check_size(size)
            fetched = await self._fetch_all([*set(plan.nodes).union(states)])
        root = LogState.from_nodes(size, [fetched[node] for node in states]).root()
        return plan.assemble(fetched), root

    async def _fetch_all(self, nodes: Sequence[NodeId]) -> dict[NodeId, bytes]:
        """The hashes of distinct ``nodes`` (at most 32,766), with one thread hop."""
        if not nodes:
            return {}
        rows = await self._db.execute_fetchall(select_nodes_sql(len(nodes)), node_parameters(nodes))
        fetched = {NodeId(level, index): value for level, index, value in rows}
        if len(fetched) != len(nodes):
            missing = [node for node in nodes if node not in fetched]
            raise LogCorruptError(f"the log is missing stored nodes {missing}")
        return fetched

    async def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """The RFC 9162 proof that the tree of ``size2`` leaves extends that of ``size1``."""
        return await self._proof(consistency_proof_plan(size1=size1, size2=size2), size2)

    async def _proof(self, plan: ProofPlan, size: int) -> list[bytes]:
        async with self._read():
            await self._check_size(size)
            return plan.assemble(await self._fetch(plan.nodes))

    async def _check_size(self, size: int) -> None:
        committed = await self._size()
        if size > committed:
            raise OutOfRangeError(f"size {size} is beyond the log size {committed}")

    async def leaf(self, leaf_index: int) -> LeafRecord:
        """The stored leaf at ``leaf_index``."""
        rows = await self._rows(
            f"SELECT {_LEAF_COLUMNS} FROM leaves WHERE leaf_index = ?",  # noqa: S608 -- constant columns
            (leaf_index,),
        )
        if not rows:
            raise OutOfRangeError(f"leaf {leaf_index} is not stored")
        return leaf_record(rows[0])

    async def device_leaves(
        self, device_id: str, *, t_from: int = 0, t_to: int = 2**63 - 1, limit: int = 1000
    ) -> list[LeafRecord]:
        """A device's telemetry leaves with ``t_from <= t < t_to``, by seq."""
        rows = await self._rows(
            f"SELECT {_LEAF_COLUMNS} FROM leaves WHERE device = ? AND seq IS NOT NULL "  # noqa: S608 -- constant columns
            "AND t_ms >= ? AND t_ms < ? ORDER BY seq LIMIT ?",
            (device_id, t_from, t_to, limit),
        )
        return [leaf_record(row) for row in rows]

    # -- registry -----------------------------------------------------------------------------

    async def devices(self, device_ids: Sequence[str]) -> dict[str, DeviceRecord]:
        """The registered devices among ``device_ids``, with their rotated-away keys."""
        ids = sorted(set(device_ids))
        if not ids:
            return {}
        async with self._read() as db:
            async with db.execute(
                f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE id IN ({marks(len(ids))})",  # noqa: S608 -- placeholders only
                ids,
            ) as cursor:
                rows = list(await cursor.fetchall())
            async with db.execute(
                "SELECT device, public_key, from_seq, until_seq FROM device_keys "  # noqa: S608 -- placeholders only
                f"WHERE device IN ({marks(len(ids))}) ORDER BY device, valid_from_leaf",
                ids,
            ) as cursor:
                keys: dict[str, list[KeyRange]] = {}
                async for device, key, from_seq, until_seq in cursor:
                    keys.setdefault(device, []).append(
                        KeyRange(public_key=key, from_seq=from_seq, until_seq=until_seq)
                    )
        return {row[0]: _device(row, keys.get(row[0], ())) for row in rows}

    async def list_devices(self) -> list[DeviceRecord]:
        """Every registered device, by id (``keys`` left empty: see :meth:`devices`)."""
        rows = await self._rows(f"SELECT {_DEVICE_COLUMNS} FROM devices ORDER BY id")  # noqa: S608 -- constant columns
        return [_device(row, ()) for row in rows]

    async def devices_page(
        self,
        *,
        after: str | None = None,
        limit: int = 1000,
        kind: Kind | None = None,
        fleet: str | None = None,
    ) -> list[DeviceRecord]:
        """At most ``limit`` registered devices with id above ``after`` (of one kind, of one
        fleet, or all), by id (``keys`` left empty): a keyset page, served by the primary key."""
        clauses, params = ["id > ?"], [after or ""]
        if kind is not None:
            clauses.append("kind = ?")
            params.append(kind)
        if fleet is not None:
            clauses.append("fleet = ?")
            params.append(fleet)
        rows = await self._rows(
            f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE {' AND '.join(clauses)} "  # noqa: S608 -- constant clauses
            "ORDER BY id LIMIT ?",
            [*params, limit],
        )
        return [_device(row, ()) for row in rows]

    # -- dashboard ----------------------------------------------------------------------------

    async def latest_samples(self, kind: Kind) -> list[dict[str, Any]]:
        """The newest ``kind`` sample of every device that has one (a pack, or a GB/T 32960
        terminal's bus for ``pack``), by device id."""
        from . import samples  # numpy: only processes that read samples load it

        devices = await self._rows(
            "SELECT id FROM devices WHERE EXISTS (SELECT 1 FROM sample_blocks "
            "WHERE device = devices.id AND kind = ?) ORDER BY id",
            (kind,),
        )
        latest = []
        for (device_id,) in devices:
            found = await samples.newest(self._rows, kind, device_id, from_ms=0, to_ms=2**63 - 1)
            latest.extend(_samples(kind, device_id, found))
        return latest

    async def series(
        self, kind: Kind, device_id: str, *, t_from: int, t_to: int, limit: int = 10_000
    ) -> list[dict[str, Any]]:
        """Samples of one device with ``t_from <= t < t_to``, oldest first."""
        from . import samples  # numpy: only processes that read samples load it

        found = await samples.window(
            self._rows, kind, device_id, from_ms=t_from, to_ms=t_to, limit=limit
        )
        return _samples(kind, device_id, found)

    async def alarms(
        self,
        *,
        device_id: str | None = None,
        t_from: int = -END_MS,
        t_to: int = END_MS,
        min_level: int = 0,
        limit: int = 100,
        before: tuple[int, int] | None = None,
        fleet: str | None = None,
    ) -> list[AlarmRecord]:
        """The newest alarms with ``t_from <= t < t_to`` and level >= ``min_level`` (of one
        device, of one fleet's devices, or all), by ``(t_ms, id)`` descending; ``before``: only
        those below that ``(t_ms, id)`` key (the next page: keyset, so rows inserted meanwhile
        neither repeat nor shift a page)."""
        where, params = _alarm_scope(device_id, fleet)
        if before is not None:
            where += "(t_ms < ? OR (t_ms = ? AND id < ?)) AND "
            params += [before[0], before[0], before[1]]
        rows = await self._rows(
            f"SELECT {_ALARM_COLUMNS} FROM alarms "  # noqa: S608 -- constant clause
            f"WHERE {where}t_ms >= ? AND t_ms < ? AND level >= ? "
            "ORDER BY t_ms DESC, id DESC LIMIT ?",
            [*params, t_from, t_to, min_level, limit],
        )
        return [_alarm(r) for r in rows]

    async def alarm(self, alarm_id: int) -> AlarmRecord | None:
        """The alarm of row id ``alarm_id``, or ``None``."""
        rows = await self._rows(
            f"SELECT {_ALARM_COLUMNS} FROM alarms WHERE id = ?",  # noqa: S608 -- constant columns
            (alarm_id,),
        )
        return _alarm(rows[0]) if rows else None

    async def alarm_counts(
        self,
        *,
        device_id: str | None = None,
        t_from: int = -END_MS,
        t_to: int = END_MS,
        min_level: int = 1,
        fleet: str | None = None,
    ) -> dict[int, int]:
        """How many alarms of each level >= ``min_level`` have ``t_from <= t < t_to`` (of one
        device, of one fleet's devices, or all)."""
        where, params = _alarm_scope(device_id, fleet)
        rows = await self._rows(
            "SELECT level, count(*) FROM alarms "  # noqa: S608 -- constant clause
            f"WHERE {where}t_ms >= ? AND t_ms < ? AND level >= ? GROUP BY level ORDER BY level",
            [*params, t_from, t_to, min_level],
        )
        return {int(level): int(count) for level, count in rows}

    async def quarantine(
        self,
        *,
        reason: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
        topic_prefix: str | None = None,
    ) -> list[QuarantineRecord]:
        """The newest quarantine rows (of one reason, of topics starting with ``topic_prefix``,
        or all), by id descending; ``before_id``: only rows below that id (the next page)."""
        clauses: list[str] = []
        params: list[object] = []
        if reason is not None:
            clauses.append("reason = ?")
            params.append(reason)
        if before_id is not None:
            clauses.append("id < ?")
            params.append(before_id)
        if topic_prefix is not None:
            # substr, not LIKE: LIKE would read '%' and '_' in a fleet name as wildcards (and
            # SQLite's LIKE ignores case, PostgreSQL's does not).
            clauses.append("substr(topic, 1, ?) = ?")
            params += [len(topic_prefix), topic_prefix]
        where = f"WHERE {' AND '.join(clauses)} " if clauses else ""
        rows = await self._rows(
            f"SELECT {_QUARANTINE_COLUMNS} FROM quarantine {where}ORDER BY id DESC LIMIT ?",  # noqa: S608 -- constant clause
            [*params, limit],
        )
        return [
            QuarantineRecord(
                row_id=r[0],
                reason=r[1],
                detail=r[2],
                topic=r[3],
                device_id=r[4],
                raw=r[5],
                raw_size=r[6],
                received_at_ms=r[7],
            )
            for r in rows
        ]

    async def quarantine_counts(self) -> list[QuarantineCount]:
        """How many inputs each reason quarantined (including evicted rows)."""
        rows = await self._rows(
            "SELECT reason, total, evicted FROM quarantine_counts ORDER BY reason"
        )
        return [QuarantineCount(reason=r[0], total=r[1], evicted=r[2]) for r in rows]

    async def chain_gaps(self, device_id: str) -> list[tuple[int, int]]:
        """The missing seqs of a device, as half-open ranges ``[start, stop)``."""
        rows = await self._rows(
            "SELECT start, stop FROM chain_gaps WHERE device = ? ORDER BY start", (device_id,)
        )
        return [(int(start), int(stop)) for start, stop in rows]

    async def duplicates(self, device_id: str) -> int:
        """How many idempotent duplicates of a device's messages arrived."""
        rows = await self._rows("SELECT duplicates FROM chain_heads WHERE device = ?", (device_id,))
        return int(rows[0][0]) if rows else 0

    async def receipt_heads(self, device_ids: Sequence[str]) -> dict[str, ReceiptHead]:
        """Per device, the highest seq logged with no gap below it, its leaf index and hash.

        A device with no message, or whose first gap starts at seq 0, has no entry. One
        indexed lookup per device (head, first gap, the leaf of that seq).
        """
        heads: dict[str, ReceiptHead] = {}
        for device_id in dict.fromkeys(device_ids):
            rows = await self._rows(
                "SELECT coalesce((SELECT min(start) FROM chain_gaps WHERE device = h.device) - 1,"
                " h.seq) FROM chain_heads AS h WHERE h.device = ?",
                (device_id,),
            )
            if not rows or rows[0][0] < 0:
                continue
            seq = int(rows[0][0])
            leaf = await self._rows(
                "SELECT leaf_index, message_hash FROM leaves WHERE device = ? AND seq = ?",
                (device_id, seq),
            )
            if leaf:
                heads[device_id] = ReceiptHead(
                    device_id=device_id, seq=seq, leaf_index=int(leaf[0][0]),
                    message_hash=bytes(leaf[0][1]),
                )  # fmt: skip
        return heads


def leaf_record(row: Sequence[Any]) -> LeafRecord:
    """A :class:`LeafRecord` from a row of :func:`leaf_columns`."""
    return LeafRecord(
        leaf_index=row[0],
        kind=row[1],
        device_id=row[2],
        seq=row[3],
        t_ms=row[4],
        received_at_ms=row[5],
        historical=bool(row[6]),
        message_hash=row[7],
        cose=row[8],
        prev=None if row[9] is None else bytes(row[9]),
    )


def _alarm_scope(device_id: str | None, fleet: str | None) -> tuple[str, list[object]]:
    """The ``WHERE`` prefix (and its parameters) of alarms of a device and/or a fleet."""
    where, params = "", list[object]()
    if device_id is not None:
        where, params = "device = ? AND ", [device_id]
    if fleet is not None:
        where += "device IN (SELECT id FROM devices WHERE fleet = ?) AND "
        params.append(fleet)
    return where, params


def _alarm(row: Sequence[Any]) -> AlarmRecord:
    return AlarmRecord(
        device_id=row[0],
        t_ms=row[1],
        level=row[2],
        flags=row[3],
        source=row[4],
        detail=row[5],
        leaf_index=row[6],
        alarm_id=row[7],
    )


def _device(row: Sequence[Any], keys: Sequence[KeyRange]) -> DeviceRecord:
    return DeviceRecord(
        device_id=row[0],
        kind=row[1],
        fleet=row[2],
        public_key=row[3],
        status=DeviceStatus(row[4]),
        enrolled_leaf=row[5],
        rotated_leaf=row[6],
        revoked_leaf=row[7],
        keys=tuple(keys),
        enrolled_at_ms=row[8],
    )


def _samples(kind: Kind, device_id: str, found: Samples) -> list[dict[str, Any]]:
    names = ("device", "t_ms", "leaf_index", *(spec.attr for spec in FIELDS[kind]))
    return [
        dict(zip(names, (device_id, *row), strict=True))
        for row in found.rows([spec.attr for spec in FIELDS[kind]])
    ]
