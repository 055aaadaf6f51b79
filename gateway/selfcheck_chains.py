"""Self-check of the device chains and the decoded samples (see :mod:`gateway.selfcheck`).

For every telemetry leaf: the signed payload's ``dev``/``seq``/``prev`` equal the leaf's
columns, the signature verifies under the device key that may sign that seq, ``prev`` is the
hash of the stored message before it, seqs missing below the head are recorded as gaps, the
chain head names the highest stored message, and the sample rows are exactly the samples the
signed message decodes to.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ledger.message import BadSignatureError, MessageError, decode_message
from ledger.telemetry import FIELDS, TelemetryBatch, TelemetryError, decode_batch

from .selfcheck_report import Problem

_SAMPLE_COLUMNS = {kind: tuple(spec.attr for spec in specs) for kind, specs in FIELDS.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class _Leaf:
    index: int
    device: str
    seq: int
    prev: bytes
    message_hash: bytes
    cose: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class _Key:
    public_key: bytes
    from_seq: int
    until_seq: int | None


def check_chains(db: sqlite3.Connection, problems: list[Problem], counts: dict[str, int]) -> None:
    """Check every device's chain, its head and gaps, signatures and sample rows."""
    keys: dict[str, list[_Key]] = defaultdict(list)
    for device, public_key, from_seq, until_seq in db.execute(
        "SELECT device, public_key, from_seq, until_seq FROM device_keys"
    ):
        keys[device].append(
            _Key(public_key=bytes(public_key), from_seq=from_seq, until_seq=until_seq)
        )
    heads = {
        device: (seq, bytes(digest))
        for device, seq, digest in db.execute("SELECT device, seq, message_hash FROM chain_heads")
    }
    gaps: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for device, start, stop in db.execute("SELECT device, start, stop FROM chain_gaps"):
        gaps[device].append((start, stop))
    samples = _sample_rows(db)
    counts["samples"] = sum(len(rows) for rows in samples.values())
    by_device: dict[str, list[_Leaf]] = defaultdict(list)
    for index, device, seq, prev, digest, cose in db.execute(
        "SELECT leaf_index, device, seq, prev, message_hash, cose FROM leaves "
        "WHERE kind = 'telemetry' ORDER BY device, seq"
    ):
        by_device[device].append(
            _Leaf(
                index=index,
                device=device,
                seq=seq,
                prev=bytes(prev or b""),
                message_hash=bytes(digest),
                cose=bytes(cose),
            )
        )
    counts["devices"] = len(by_device)
    counts["telemetry_leaves"] = sum(len(leaves) for leaves in by_device.values())
    for device, leaves in sorted(by_device.items()):
        problems.extend(_chain(device, leaves, keys.get(device, []), gaps.get(device, [])))
        problems.extend(_head(device, leaves, heads.pop(device, None)))
        for leaf in leaves:
            problems.extend(_samples(leaf, samples))
    problems.extend(
        Problem(
            table="chain_heads",
            code="chain_head_orphan",
            device=device,
            detail=f"device {device!r} has a chain head but no stored message",
        )
        for device in sorted(heads)
    )
    problems.extend(
        Problem(
            table=table,
            code="sample_orphan",
            leaf_index=index,
            detail=f"sample rows point to leaf {index}, which is no stored telemetry",
        )
        for table, index in sorted(samples)
    )


def _sample_rows(db: sqlite3.Connection) -> dict[tuple[str, int], list[tuple[Any, ...]]]:
    rows: dict[tuple[str, int], list[tuple[Any, ...]]] = defaultdict(list)
    for kind, columns in _SAMPLE_COLUMNS.items():
        table = f"{kind}_samples"
        for row in db.execute(
            f"SELECT device, t_ms, leaf_index, {', '.join(columns)} FROM {table} ORDER BY rowid"  # noqa: S608 -- names from FIELDS
        ):
            rows[(table, row[2])].append(tuple(row))
    return rows


def _problem(leaf: _Leaf, code: str, detail: str, table: str = "leaves") -> Problem:
    return Problem(
        table=table,
        code=code,
        leaf_index=leaf.index,
        device=leaf.device,
        seq=leaf.seq,
        detail=detail,
    )


def _chain(
    device: str, leaves: list[_Leaf], keys: list[_Key], gaps: list[tuple[int, int]]
) -> Iterator[Problem]:
    previous: _Leaf | None = None
    for leaf in leaves:
        yield from _signed(leaf, keys)
        expected = 0 if previous is None else previous.seq + 1
        if previous is not None and leaf.seq == expected and leaf.prev != previous.message_hash:
            yield _problem(
                leaf,
                "chain_link_broken",
                f"prev {leaf.prev.hex()} is not the hash "
                f"of seq {previous.seq} ({previous.message_hash.hex()})",
            )
        for seq in range(expected, leaf.seq):
            if not any(start <= seq < stop for start, stop in gaps):
                yield Problem(
                    table="chain_gaps",
                    code="chain_gap_unrecorded",
                    device=device,
                    seq=seq,
                    detail=f"seq {seq} of {device!r} is neither stored nor recorded as a gap",
                )
        previous = leaf


def _signed(leaf: _Leaf, keys: list[_Key]) -> Iterator[Problem]:
    try:
        message = decode_message(leaf.cose)
    except MessageError as exc:
        yield _problem(leaf, "leaf_undecodable", f"{type(exc).__name__}: {exc}")
        return
    payload = message.payload
    stated = (payload.get("dev"), payload.get("seq"), payload.get("prev"))
    if stated != (leaf.device, leaf.seq, leaf.prev):
        yield _problem(
            leaf,
            "leaf_columns_mismatch",
            f"the signed payload says dev "
            f"{stated[0]!r} seq {stated[1]!r}, the columns say {leaf.device!r} "
            f"seq {leaf.seq} (or prev differs)",
        )
    key = next(
        (
            k
            for k in keys
            if k.from_seq <= leaf.seq and (k.until_seq is None or leaf.seq < k.until_seq)
        ),
        None,
    )
    if key is None:
        yield _problem(leaf, "leaf_no_key", f"no key of {leaf.device!r} may sign seq {leaf.seq}")
        return
    try:
        message.verify_signature(key.public_key)
    except BadSignatureError:
        yield _problem(
            leaf,
            "leaf_signature",
            "the signature does not verify under the device key registered for this seq",
        )


def _head(device: str, leaves: list[_Leaf], head: tuple[int, bytes] | None) -> Iterator[Problem]:
    last = leaves[-1]
    if head is None:
        yield _problem(
            last, "chain_head_missing", f"device {device!r} has no chain head", table="chain_heads"
        )
    elif head != (last.seq, last.message_hash):
        yield _problem(
            last,
            "chain_head_mismatch",
            f"the head says seq {head[0]}, the highest stored message is seq {last.seq}",
            table="chain_heads",
        )


def _samples(
    leaf: _Leaf, samples: dict[tuple[str, int], list[tuple[Any, ...]]]
) -> Iterator[Problem]:
    try:
        batch = decode_batch(decode_message(leaf.cose).payload)
    except (MessageError, TelemetryError):
        return  # reported as leaf_undecodable, or a payload the gateway never accepts
    table = f"{batch.kind}_samples"
    stored = samples.pop((table, leaf.index), [])
    expected = _expected_rows(leaf, batch)
    if len(stored) != len(expected):
        yield _problem(
            leaf,
            "sample_count_mismatch",
            f"{len(stored)} sample rows, the signed message holds {len(expected)} samples",
            table=table,
        )
        return
    names = ("device", "t_ms", "leaf_index", *_SAMPLE_COLUMNS[batch.kind])
    for k, (row, want) in enumerate(zip(stored, expected, strict=True)):
        for name, got, value in zip(names, row, want, strict=True):
            if got != value:
                yield _problem(
                    leaf,
                    "sample_mismatch",
                    f"sample {k}: {name} is {got!r} in {table}, the signed message says {value!r}",
                    table=table,
                )


def _expected_rows(leaf: _Leaf, batch: TelemetryBatch) -> list[tuple[Any, ...]]:
    columns = _SAMPLE_COLUMNS[batch.kind]
    return [
        (
            leaf.device,
            batch.t_ms + k * batch.dt_ms,
            leaf.index,
            *[getattr(sample, name) for name in columns],
        )
        for k, sample in enumerate(batch.samples)
    ]
