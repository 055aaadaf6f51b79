"""Evidence extraction: what the store holds for one asset and period, as a ``BundleInput``.

For a bus: its messages in the period. For a pack: its own messages and, by default, those of
every bus that hosted it in the period (the pack names its host bus in each message, so the
pack id is followed across buses). Per device the bundle also gets the boundary messages that
pin both ends of the period (the last message before it, the first after it), every registry
entry of those devices, and inclusion proofs against a signed checkpoint that an anchor covers.

The checkpoint is the smallest stored one that holds every chosen leaf and is no larger than
the newest checkpoint with a final anchor; when the two differ the bundle carries the
consistency proof between them. Leaves appended after the anchored tree are left out (they
cannot be proven against an anchor yet) and counted in :attr:`Extraction.unanchored`.

Reads use the store's proof methods (the inclusion proofs of all chosen leaves in one batched
node read) and a read-only SQLite connection for the few queries the store protocol does not
offer. Imports no MQTT code.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiosqlite

from ledger.anchors.base import AnchorReceipt
from ledger.anchors.errors import AnchorFormatError
from ledger.anchors.local_entry import EXPORT_FORMAT, LocalEntry
from ledger.bundle import AnchorEvidence, BundleInput, LoggedLeaf
from ledger.message import MessageError, decode_message

from .store import SqliteStore, StoreError

MAX_MESSAGES: Final = 5_000_000
_END: Final = 2**63 - 1


class EvidenceError(Exception):
    """Evidence cannot be extracted; the message says exactly why."""


class UnknownAssetError(EvidenceError):
    """The asset is not a registered device."""


class NotAnchoredError(EvidenceError):
    """No checkpoint with a final anchor covers the evidence yet."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Extraction:
    """A bundle input and what was left out of it."""

    bundle_input: BundleInput
    devices: tuple[str, ...]
    unanchored: int
    """Messages of the period newer than the anchored tree (not in the bundle)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Anchored:
    size: int
    root: bytes
    receipt: AnchorReceipt


def _probe(uri: str) -> None:
    sqlite3.connect(uri, uri=True).close()


async def _ro_connect(path: Path) -> aiosqlite.Connection:
    uri = f"file:{os.fspath(path)}?mode=ro"
    try:
        # Probe synchronously first: a failed aiosqlite.connect leaves a worker thread
        # that reports to the event loop after it may have closed.
        await asyncio.to_thread(_probe, uri)
        return await aiosqlite.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise EvidenceError(f"cannot open {path} read-only: {exc}") from exc


async def _fetchall(db: aiosqlite.Connection, sql: str, params: Sequence[object]) -> list[Any]:
    try:
        async with db.execute(sql, params) as cursor:
            return list(await cursor.fetchall())
    except sqlite3.Error as exc:
        raise EvidenceError(f"store query failed: {exc}") from exc


async def _anchored(db: aiosqlite.Connection) -> _Anchored:
    rows = await _fetchall(
        db,
        "SELECT c.size, c.root, r.receipt FROM checkpoints AS c JOIN anchor_receipts AS r "
        "ON r.size = c.size WHERE r.state = 'final' ORDER BY c.size DESC LIMIT 1",
        (),
    )
    if not rows:
        raise NotAnchoredError("no checkpoint has a final anchor yet; retry after the next anchor")
    size, root, receipt_text = rows[0]
    try:
        receipt = AnchorReceipt.from_json(receipt_text)
    except (AnchorFormatError, ValueError) as exc:
        raise EvidenceError(
            f"the stored receipt of checkpoint {size} is unreadable: {exc}"
        ) from exc
    return _Anchored(size=int(size), root=bytes(root), receipt=receipt)


async def _checkpoint(db: aiosqlite.Connection, *, need: int, anchored: int) -> tuple[int, str]:
    rows = await _fetchall(
        db,
        "SELECT size, note FROM checkpoints WHERE size >= ? AND size <= ? ORDER BY size LIMIT 1",
        (max(need, 1), anchored),
    )
    if not rows:
        raise NotAnchoredError(f"no stored checkpoint between size {need} and {anchored}")
    return int(rows[0][0]), str(rows[0][1])


async def _period_leaves(
    db: aiosqlite.Connection, device: str, *, from_ms: int, to_ms: int, size: int
) -> tuple[list[tuple[int, bytes]], int]:
    """(leaf index, COSE) of the device's messages in the period and boundary, by seq."""
    inside = await _fetchall(
        db,
        "SELECT leaf_index, seq, cose FROM leaves WHERE device = ? AND seq IS NOT NULL "
        "AND t_ms >= ? AND t_ms < ? ORDER BY seq LIMIT ?",
        (device, from_ms, to_ms, MAX_MESSAGES + 1),
    )
    if len(inside) > MAX_MESSAGES:
        raise EvidenceError(
            f"{device} has more than {MAX_MESSAGES} messages in the period; ask for a shorter one"
        )
    kept = [(int(i), int(s), bytes(c)) for i, s, c in inside if i < size]
    unanchored = len(inside) - len(kept)
    first = kept[0][1] if kept else None
    last = kept[-1][1] if kept else None
    before = await _fetchall(
        db,
        "SELECT leaf_index, cose FROM leaves WHERE device = ? AND seq IS NOT NULL AND seq < ? "
        "AND t_ms < ? AND leaf_index < ? ORDER BY seq DESC LIMIT 1",
        (device, _END if first is None else first, from_ms, size),
    )
    after = await _fetchall(
        db,
        "SELECT leaf_index, cose FROM leaves WHERE device = ? AND seq IS NOT NULL AND seq > ? "
        "AND t_ms >= ? AND leaf_index < ? ORDER BY seq LIMIT 1",
        (device, -1 if last is None else last, to_ms, size),
    )
    chosen = [(int(i), bytes(c)) for i, c in before]
    chosen += [(i, c) for i, _, c in kept]
    chosen += [(int(i), bytes(c)) for i, c in after]
    return chosen, unanchored


def _hosts(leaves: Sequence[tuple[int, bytes]]) -> set[str]:
    found: set[str] = set()
    for index, data in leaves:
        if b"host" not in data:
            continue  # a payload with a "host" key holds its text; skip decoding the others
        try:
            host = decode_message(data).payload.get("host")
        except MessageError as exc:
            raise EvidenceError(f"stored leaf {index} does not decode: {exc}") from exc
        if isinstance(host, str):
            found.add(host)
    return found


async def _local_export(path: Path) -> dict[str, object]:
    db = await _ro_connect(path)
    try:
        rows = await _fetchall(
            db,
            "SELECT sequence, log_id, tree_size, root, anchored_at_ms, prev_hash, entry_hash, "
            "signature FROM anchors ORDER BY sequence",
            (),
        )
    finally:
        await db.close()
    entries = [
        LocalEntry(
            sequence=r[0], log_id=bytes(r[1]), tree_size=r[2], root=bytes(r[3]),
            anchored_at_ms=r[4], prev_hash=bytes(r[5]), entry_hash=bytes(r[6]),
            signature=bytes(r[7]),
        ).to_dict()
        for r in rows
    ]  # fmt: skip
    return {"format": EXPORT_FORMAT, "entries": entries}


async def extract_evidence(
    store: SqliteStore,
    *,
    asset_id: str,
    from_ms: int,
    to_ms: int,
    operator_key: bytes,
    anchor_db: Path | None = None,
    follow_hosts: bool = True,
) -> Extraction:
    """Everything a bundle of ``asset_id`` over ``[from_ms, to_ms)`` needs, with real proofs.

    ``anchor_db`` is the local anchor table (for a ``local`` receipt its export is embedded so
    the bundle checks offline); ``follow_hosts`` adds the buses that hosted a pack.
    """
    if not from_ms < to_ms:
        raise EvidenceError(f"period start {from_ms} is not before its end {to_ms}")
    device = (await store.devices([asset_id])).get(asset_id)
    if device is None:
        raise UnknownAssetError(f"no device {asset_id!r} is registered")
    db = await _ro_connect(store.path)
    try:
        anchored = await _anchored(db)
        per_device: dict[str, list[tuple[int, bytes]]] = {}
        unanchored = 0
        queue = [asset_id]
        while queue:
            current = queue.pop()
            leaves, left_out = await _period_leaves(
                db, current, from_ms=from_ms, to_ms=to_ms, size=anchored.size
            )
            per_device[current] = leaves
            unanchored += left_out
            if current == asset_id and device.kind == "pack" and follow_hosts:
                known = await store.devices(sorted(_hosts(leaves)))
                queue.extend(sorted(h for h in known if h not in per_device))
        registry = await _fetchall(
            db,
            "SELECT leaf_index, cose FROM leaves WHERE kind = 'registry' AND device IN "  # noqa: S608 -- placeholders only
            f"({', '.join('?' * len(per_device))}) AND leaf_index < ? ORDER BY leaf_index",
            [*sorted(per_device), anchored.size],
        )
    finally:
        await db.close()
    chosen = [leaf for leaves in per_device.values() for leaf in leaves]
    need = 1 + max([i for i, _ in chosen] + [int(r[0]) for r in registry], default=0)
    db = await _ro_connect(store.path)
    try:
        size, note = await _checkpoint(db, need=need, anchored=anchored.size)
    finally:
        await db.close()
    leaves = [*chosen, *((int(i), bytes(c)) for i, c in registry)]
    try:
        proofs = await store.inclusion_proofs([i for i, _ in leaves], size)
        logged = [
            LoggedLeaf(index=i, data=c, proof=tuple(proof))
            for (i, c), proof in zip(leaves, proofs, strict=True)
        ]
        messages, registry_leaves = logged[: len(chosen)], logged[len(chosen) :]
        consistency = (
            await store.consistency_proof(size, anchored.size) if size != anchored.size else []
        )
    except StoreError as exc:
        raise EvidenceError(f"cannot read proofs from the store: {exc}") from exc
    export = None
    if (
        anchored.receipt.backend == "local"
        and anchor_db is not None
        and await asyncio.to_thread(anchor_db.is_file)
    ):
        export = await _local_export(anchor_db)
    evidence = AnchorEvidence(
        size=anchored.size,
        root=anchored.root,
        consistency=tuple(consistency),
        receipt=anchored.receipt,
        local_export=export,
    )
    bundle_input = BundleInput(
        asset_id=asset_id,
        asset_kind=device.kind,
        from_ms=from_ms,
        to_ms=to_ms,
        checkpoint=note,
        operator_key=operator_key,
        registry=registry_leaves,
        messages=messages,
        anchor=evidence,
    )
    return Extraction(
        bundle_input=bundle_input, devices=tuple(sorted(per_device)), unanchored=unanchored
    )
