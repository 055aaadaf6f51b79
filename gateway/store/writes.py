"""The statements of the store's write transactions; each function runs inside one.

Nothing here commits: :class:`~gateway.store.sqlite.SqliteStore` opens the
``BEGIN IMMEDIATE`` transaction, calls these, and commits once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final

import aiosqlite

from gateway.store.merkle_nodes import UPDATE_SIZE_SQL, node_key
from ledger.merkle import AppendPlan, NodeId
from ledger.telemetry import TelemetryColumns

from ..chain import ChainBook, Head, StoredLink
from .blocks import INSERT_BLOCK_SQL, INSERT_SUMMARY_SQL, block_row, summary_row
from .errors import RegistryConflictError
from .records import Candidate, DeviceStatus, QuarantineEntry, RegistryAction, RegistryChange

FORK_REASON: Final = "fork"
"""The quarantine reason of a message that contradicts its device's stored chain."""

_INSERT_LEAF: Final = (
    "INSERT INTO leaves (leaf_index, kind, device, seq, t_ms, received_at_ms, historical, prev, "
    "message_hash, cose) VALUES (?, 'telemetry', ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_NODE: Final = "INSERT INTO merkle_nodes (node_key, hash) VALUES (?, ?)"
"""One Merkle node by its key, computed here so that both SQL dialects take the statement."""
_INSERT_ALARM: Final = (
    "INSERT INTO alarms (device, t_ms, level, flags, source, detail, leaf_index) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
FORK_ALARM_LEVEL: Final = 3
"""Level of the gateway alarms (a fork, a seq jump; GB/T 32960 level 3: stop and investigate)."""


def _placeholders(count: int) -> str:
    return ", ".join(["?"] * count)


async def append_rows(db: aiosqlite.Connection, plan: AppendPlan) -> None:
    """Write the nodes of ``plan`` and move the committed log size."""
    await db.executemany(
        _INSERT_NODE,
        [(node_key(NodeId(level, index)), digest) for level, index, digest in plan.rows()],
    )
    await db.execute(UPDATE_SIZE_SQL, (plan.state.size,))


async def load_chain(
    db: aiosqlite.Connection,
    candidates: Sequence[Candidate],
    *,
    key_filter: Callable[[Mapping[str, Head], Iterable[tuple[str, int]]], set[tuple[str, int]]],
) -> tuple[dict[str, Head], dict[str, list[tuple[int, int]]], dict[tuple[str, int], StoredLink]]:
    """The heads of the candidates' devices, the gaps and the stored links they need.

    Only the gap holding a candidate's seq is read (one indexed lookup per candidate at or
    below its head): a device with a million gaps costs a batch what one with one does.
    """
    devices = sorted({c.device_id for c in candidates})
    heads: dict[str, Head] = {}
    gaps: dict[str, list[tuple[int, int]]] = {}
    links: dict[tuple[str, int], StoredLink] = {}
    if not devices:
        return heads, gaps, links
    marks = _placeholders(len(devices))
    async with db.execute(
        f"SELECT device, seq, message_hash FROM chain_heads WHERE device IN ({marks})",  # noqa: S608 -- placeholders only
        devices,
    ) as cursor:
        async for device, seq, digest in cursor:
            heads[device] = Head(seq=seq, message_hash=digest)
    for device, seq in sorted({(c.device_id, c.seq) for c in candidates}):
        head = heads.get(device)
        if head is None or seq > head.seq:
            continue
        async with db.execute(
            "SELECT start, stop FROM chain_gaps WHERE device = ? AND start <= ? "
            "ORDER BY start DESC LIMIT 1",
            (device, seq),
        ) as cursor:
            row = await cursor.fetchone()
        if row is not None and row[1] > seq and (row[0], row[1]) not in gaps.get(device, []):
            gaps.setdefault(device, []).append((row[0], row[1]))
    wanted: dict[str, list[int]] = {}
    for device, seq in key_filter(heads, [(c.device_id, c.seq) for c in candidates]):
        wanted.setdefault(device, []).append(seq)
    for device, seqs in wanted.items():
        async with db.execute(
            "SELECT seq, message_hash, prev, leaf_index FROM leaves "  # noqa: S608 -- placeholders only
            f"WHERE device = ? AND seq IN ({_placeholders(len(seqs))})",
            [device, *seqs],
        ) as cursor:
            async for seq, digest, prev, leaf_index in cursor:
                links[(device, seq)] = StoredLink(
                    message_hash=digest, prev=prev, leaf_index=leaf_index
                )
    return heads, gaps, links


async def write_chain(db: aiosqlite.Connection, book: ChainBook, duplicates: Counter[str]) -> None:
    """Store the heads and the changed gaps of the devices ``book`` changed; count duplicates."""
    changed = sorted(book.changed)
    if changed:
        await db.executemany(
            "INSERT INTO chain_heads (device, seq, message_hash) VALUES (?, ?, ?) "
            "ON CONFLICT (device) DO UPDATE SET seq = excluded.seq, "
            "message_hash = excluded.message_hash",
            [
                (device, book.heads[device].seq, book.heads[device].message_hash)
                for device in changed
            ],
        )
        diffs = {device: book.gap_changes(device) for device in changed}
        await db.executemany(
            "DELETE FROM chain_gaps WHERE device = ? AND start = ?",
            [(device, start) for device, (removed, _) in diffs.items() for start, _ in removed],
        )
        await db.executemany(
            "INSERT INTO chain_gaps (device, start, stop) VALUES (?, ?, ?)",
            [
                (device, start, stop)
                for device, (_, added) in diffs.items()
                for start, stop in added
            ],
        )
    if duplicates:
        await db.executemany(
            "UPDATE chain_heads SET duplicates = duplicates + ? WHERE device = ?",
            [(count, device) for device, count in sorted(duplicates.items())],
        )


async def insert_telemetry(
    db: aiosqlite.Connection, accepted: Sequence[tuple[int, Candidate]]
) -> None:
    """Insert the accepted leaves and their decoded samples (per message its block and that
    block's summary; a GB/T 32960 frame's pack block and summary beside them)."""
    await db.executemany(
        _INSERT_LEAF,
        [
            (
                index,
                c.device_id,
                c.seq,
                c.t_ms,
                c.received_at_ms,
                int(c.historical),
                c.prev,
                c.message_hash,
                c.cose,
            )
            for index, c in accepted
        ],
    )
    blocks = [(index, c, block) for index, c in accepted for block in c.blocks]
    await db.executemany(
        INSERT_BLOCK_SQL, [block_row(index, c.device_id, block) for index, c, block in blocks]
    )
    await db.executemany(
        INSERT_SUMMARY_SQL, [summary_row(index, block) for index, _, block in blocks]
    )


def block_alarm(batch: TelemetryColumns) -> tuple[int, int, int]:
    """``(level, t_ms, flags)`` of a sample block: the highest sample alarm level (at its first
    sample) or alarm event level, and every sample's and alarm event's flags OR-ed (level 0:
    none)."""
    level, at, flags = 0, 0, 0
    if batch.kind == "pack":
        levels = batch.columns["alarm"]
        top = max(levels)
        if top > 0:
            level, at = top, levels.index(top)
        for bits in batch.columns["aflags"]:
            flags |= bits
    for event in batch.events:
        if event.kind != "alarm":
            continue
        raised, event_flags = event.data.get("lvl"), event.data.get("flags")
        if isinstance(event_flags, int):
            flags |= event_flags
        if isinstance(raised, int) and raised > level:
            level, at = raised, event.at
    return level, batch.t_ms + at * batch.dt_ms, flags


def _telemetry_alarm(index: int, candidate: Candidate) -> tuple[object, ...] | None:
    """The alarm row of a message whose samples or events reach level 1 or more.

    The level is the highest of its blocks' (:func:`block_alarm`; a GB/T 32960 frame's is in
    its pack block), the flags those of every block OR-ed.
    """
    level, t_ms, flags = 0, 0, 0
    for batch in candidate.blocks:
        raised, at_ms, bits = block_alarm(batch)
        flags |= bits
        if raised > level:
            level, t_ms = raised, at_ms
    if level < 1:
        return None
    return (candidate.device_id, t_ms, level, flags, "telemetry", "", index)


async def telemetry_alarms(
    db: aiosqlite.Connection,
    accepted: Sequence[tuple[int, Candidate]],
    gateway: Sequence[tuple[Candidate, str]],
) -> None:
    """Record alarm levels >= 1 of accepted messages and the gateway's alarms (fork, jump)."""
    rows = [row for index, c in accepted if (row := _telemetry_alarm(index, c)) is not None]
    rows.extend(
        (c.device_id, c.received_at_ms, FORK_ALARM_LEVEL, 0, "gateway", detail, None)
        for c, detail in gateway
    )
    if rows:
        await db.executemany(_INSERT_ALARM, rows)


async def write_quarantine(
    db: aiosqlite.Connection, entries: Sequence[QuarantineEntry], *, max_rows: int
) -> None:
    """Insert quarantine rows, count them per reason, evict the oldest beyond ``max_rows``.

    Row ids only grow and only eviction deletes, so the rows are the ids ``min..max``.
    Evicted rows keep being counted in ``quarantine_counts.evicted``.
    """
    await db.executemany(
        "INSERT INTO quarantine (reason, detail, topic, device, raw, raw_size, received_at_ms) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (e.reason, e.detail, e.topic, e.device_id, e.raw, e.raw_size, e.received_at_ms)
            for e in entries
        ],
    )
    await _count(db, Counter(e.reason for e in entries), column="total")
    async with db.execute("SELECT max(id) FROM quarantine") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    first_kept = int(row[0]) - max_rows + 1
    async with db.execute(
        "SELECT reason, count(*) FROM quarantine WHERE id < ? GROUP BY reason", (first_kept,)
    ) as cursor:
        evicted = Counter({str(reason): int(n) async for reason, n in cursor})
    if evicted:
        await db.execute("DELETE FROM quarantine WHERE id < ?", (first_kept,))
        await _count(db, evicted, column="evicted")


async def _count(db: aiosqlite.Connection, counts: Counter[str], *, column: str) -> None:
    assert column in {"total", "evicted"}
    await db.executemany(
        f"INSERT INTO quarantine_counts (reason, {column}) VALUES (?, ?) "  # noqa: S608 -- column is one of two names
        f"ON CONFLICT (reason) DO UPDATE SET {column} = "
        f"quarantine_counts.{column} + excluded.{column}",
        sorted(counts.items()),
    )


def check_registry_change(change: RegistryChange, status: str | None) -> str:
    """The device status after ``change``; raise if it does not apply to ``status``."""
    who = f"device {change.device_id!r}"
    if change.action is RegistryAction.ENROLL:
        if status is not None:
            raise RegistryConflictError(f"{who} is already enrolled ({status})")
        if change.kind is None or change.fleet is None or change.public_key is None:
            raise RegistryConflictError(f"enrolling {who} needs its kind, fleet and public key")
        return DeviceStatus.ACTIVE.value
    if status is None:
        raise RegistryConflictError(f"{who} is not enrolled")
    if change.action is RegistryAction.REPLACE:
        if change.new_device is None:
            raise RegistryConflictError(f"replacing {who} needs the successor's id")
        return status
    if status == DeviceStatus.REVOKED.value:
        raise RegistryConflictError(f"{who} is revoked")
    if change.action is RegistryAction.ROTATE:
        if change.public_key is None or change.seq is None:
            raise RegistryConflictError(f"rotating {who} needs the new public key and first seq")
        return DeviceStatus.ACTIVE.value
    return DeviceStatus.REVOKED.value


def registry_device_updates(
    change: RegistryChange, leaf_index: int
) -> list[tuple[str, tuple[object, ...]]]:
    """The statements that bring ``devices`` and ``device_keys`` in line with ``change``."""
    device = change.device_id
    if change.action is RegistryAction.ENROLL:
        return [
            (
                "INSERT INTO devices (id, kind, fleet, public_key, status, enrolled_leaf, birth) "
                "VALUES (?, ?, ?, ?, 'active', ?, ?)",
                (device, change.kind, change.fleet, change.public_key, leaf_index, change.birth),
            ),
            (
                "INSERT INTO device_keys (device, public_key, valid_from_leaf, from_seq) "
                "VALUES (?, ?, ?, 0)",
                (device, change.public_key, leaf_index),
            ),
        ]
    if change.action is RegistryAction.ROTATE:
        return [
            (
                "UPDATE device_keys SET until_seq = ? WHERE device = ? AND until_seq IS NULL",
                (change.seq, device),
            ),
            (
                "UPDATE devices SET public_key = ?, rotated_leaf = ? WHERE id = ?",
                (change.public_key, leaf_index, device),
            ),
            (
                "INSERT INTO device_keys (device, public_key, valid_from_leaf, from_seq) "
                "VALUES (?, ?, ?, ?)",
                (device, change.public_key, leaf_index, change.seq),
            ),
        ]
    if change.action is RegistryAction.REPLACE:
        return [
            (
                "UPDATE devices SET replaced_by = ?, replaced_leaf = ? WHERE id = ?",
                (change.new_device, leaf_index, device),
            ),
        ]
    return [
        (
            "UPDATE devices SET status = 'revoked', revoked_leaf = ? WHERE id = ?",
            (leaf_index, device),
        ),
    ]
