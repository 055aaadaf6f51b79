"""Audit of the device chains and the decoded samples (see :mod:`gateway.audit`).

For every telemetry leaf: the signed payload's ``dev``/``seq``/``prev`` equal the leaf's
columns, the signature verifies under the device key that may sign that seq, ``prev`` is the
hash of the stored message before it, seqs missing below the head are recorded as gaps, the
chain head names the highest stored message, and the message's sample blocks are exactly
the blocks its bytes give (:mod:`gateway.store.blocks`: an agent's message one, of its kind; a
GB/T 32960 frame a bus block and, when it carries every pack value, a pack block), each with
its summary, and no block or summary lacks its message.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from ledger import gbt32960 as gbt
from ledger.chain import Step, step, uncovered
from ledger.message import BadSignatureError, MessageError, decode_message
from ledger.telemetry import Kind, TelemetryColumns, TelemetryError, decode_columns

from ..store import ChainHeadRecord, KeyRange, LeafRecord, SampleBlockRecord, blocks, samples
from .report import Problem

_BLOCKS = "sample_blocks"
_SUMMARIES = "sample_summaries"
_BlockRow = tuple[str, str, int, int, int, int, bytes]
"""``(device, kind, t_ms, last_ms, dt_ms, n, columns)`` of one stored block."""
_Key = tuple[int, str]
"""``(leaf_index, kind)``: one stored block or summary."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Leaf:
    index: int
    device: str
    seq: int
    prev: bytes
    message_hash: bytes
    cose: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainFacts:
    """What the store holds about the chains, read in one snapshot."""

    telemetry: Sequence[LeafRecord]
    keys: Mapping[str, Sequence[KeyRange]]
    heads: Sequence[ChainHeadRecord]
    gaps: Mapping[str, Sequence[tuple[int, int]]]
    blocks: Sequence[SampleBlockRecord]
    summaries: Mapping[_Key, tuple[bytes, str | None]]


def check_chains(facts: ChainFacts, problems: list[Problem], counts: dict[str, int]) -> None:
    """Check every device's chain, its head and gaps, signatures and sample rows."""
    keys = facts.keys
    heads = {head.device_id: (head.seq, head.message_hash) for head in facts.heads}
    gaps = facts.gaps
    samples = _sample_blocks(facts.blocks)
    summaries = dict(facts.summaries)
    counts["samples"] = sum(int(row[5]) for row in samples.values())
    by_device: dict[str, list[_Leaf]] = defaultdict(list)
    for stored in sorted(facts.telemetry, key=lambda x: (x.device_id, x.seq or 0)):
        by_device[stored.device_id].append(
            _Leaf(
                index=stored.leaf_index,
                device=stored.device_id,
                seq=stored.seq or 0,
                prev=stored.prev or b"",
                message_hash=stored.message_hash,
                cose=stored.cose,
            )
        )
    counts["devices"] = len(by_device)
    counts["telemetry_leaves"] = sum(len(leaves) for leaves in by_device.values())
    for device, leaves in sorted(by_device.items()):
        problems.extend(_chain(device, leaves, keys.get(device, []), sorted(gaps.get(device, []))))
        problems.extend(_head(device, leaves, heads.pop(device, None)))
        for leaf in leaves:
            problems.extend(_samples(leaf, samples, summaries))
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
            table=_BLOCKS,
            code="sample_orphan",
            leaf_index=index,
            detail=f"a {kind} sample block points to leaf {index}, which is no stored telemetry",
        )
        for index, kind in sorted(samples)
    )
    problems.extend(
        Problem(
            table=_SUMMARIES,
            code="summary_orphan",
            leaf_index=index,
            detail=f"a {kind} sample summary points to leaf {index}, which is no stored telemetry",
        )
        for index, kind in sorted(summaries)
    )


def _sample_blocks(found: Sequence[SampleBlockRecord]) -> dict[_Key, _BlockRow]:
    return {
        (b.leaf_index, b.kind): (b.device_id, b.kind, b.t_ms, b.last_ms, b.dt_ms, b.n, b.columns)
        for b in found
    }


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
    device: str, leaves: list[_Leaf], keys: Sequence[KeyRange], gaps: Sequence[tuple[int, int]]
) -> Iterator[Problem]:
    previous: _Leaf | None = None
    for leaf in leaves:
        yield from _signed(leaf, keys)
        expected = 0 if previous is None else previous.seq + 1
        if previous is not None and (
            step(
                previous_seq=previous.seq,
                previous_hash=previous.message_hash,
                seq=leaf.seq,
                prev=leaf.prev,
            )
            is Step.BROKEN
        ):
            yield _problem(
                leaf,
                "chain_link_broken",
                f"prev {leaf.prev.hex()} is not the hash "
                f"of seq {previous.seq} ({previous.message_hash.hex()})",
            )
        for first, stop in uncovered(expected, leaf.seq, gaps):
            yield Problem(
                table="chain_gaps",
                code="chain_gap_unrecorded",
                device=device,
                seq=first,
                detail=f"seqs {first}..{stop - 1} of {device!r} are neither stored nor "
                "recorded as a gap",
            )
        previous = leaf


def _signed(leaf: _Leaf, keys: Sequence[KeyRange]) -> Iterator[Problem]:
    if gbt.is_envelope(leaf.cose):
        yield from _gbt_leaf(leaf)
        return
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
    key = next((k for k in keys if k.covers(leaf.seq)), None)
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


def _gbt_leaf(leaf: _Leaf) -> Iterator[Problem]:
    """A GB/T 32960 leaf: its envelope names the leaf's device, seq and prev. (The 2025 SM2
    signature was checked on intake; re-checking it needs the terminal's registry entry.)"""
    try:
        stated = gbt.read_leaf(leaf.cose).envelope
    except gbt.GbtError as exc:
        yield _problem(leaf, "leaf_undecodable", f"{type(exc).__name__}: {exc}")
        return
    if (stated.device_id, stated.seq, stated.prev) != (leaf.device, leaf.seq, leaf.prev):
        yield _problem(
            leaf,
            "leaf_columns_mismatch",
            f"the GB/T 32960 envelope says dev {stated.device_id!r} seq {stated.seq}, the "
            f"columns say {leaf.device!r} seq {leaf.seq} (or prev differs)",
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
    leaf: _Leaf,
    samples: dict[_Key, _BlockRow],
    summaries: dict[_Key, tuple[bytes, str | None]],
) -> Iterator[Problem]:
    kinds: tuple[Kind, ...] = ("bus", "pack")
    try:
        if gbt.is_envelope(leaf.cose):
            facts = gbt.read_leaf(leaf.cose)
            given = [facts.columns] if facts.pack is None else [facts.columns, facts.pack]
        else:
            given = [decode_columns(decode_message(leaf.cose).payload)]
    except (MessageError, TelemetryError, gbt.GbtError):
        for kind in kinds:
            summaries.pop((leaf.index, kind), None)
        return  # reported as leaf_undecodable, or a payload the gateway never accepts
    for columns in given:
        yield from _block(leaf, columns, samples, summaries)
    expected = {columns.kind for columns in given}
    for kind in kinds:
        if kind in expected:
            continue
        if samples.pop((leaf.index, kind), None) is not None:
            yield _problem(
                leaf, "sample_mismatch",
                f"a {kind} block is stored, the message gives no {kind} samples", table=_BLOCKS,
            )  # fmt: skip
        if summaries.pop((leaf.index, kind), None) is not None:
            yield _problem(
                leaf, "summary_mismatch",
                f"a {kind} summary is stored, the message gives no {kind} samples",
                table=_SUMMARIES,
            )  # fmt: skip


def _said_by(leaf: _Leaf) -> tuple[str, str]:
    """How a problem names what the leaf says, and its samples: a GB/T 32960 frame (signed by
    the terminal or not) or an agent's signed message."""
    if gbt.is_envelope(leaf.cose):
        return "the frame", "the frame's samples"
    return "the signed message", "the signed samples"


def _block(
    leaf: _Leaf,
    columns: TelemetryColumns,
    samples: dict[_Key, _BlockRow],
    summaries: dict[_Key, tuple[bytes, str | None]],
) -> Iterator[Problem]:
    """One block the message gives (and its summary) against the stored one."""
    key = (leaf.index, columns.kind)
    signed = (blocks.summary(columns), columns.host)
    yield from _summary(leaf, columns.kind, signed, summaries.pop(key, None))
    stored = samples.pop(key, None)
    if stored is None:
        yield _problem(
            leaf,
            "sample_count_mismatch",
            f"no {columns.kind} sample block, the message holds {columns.n} {columns.kind} samples",
            table=_BLOCKS,
        )
        return
    expected = blocks.block_row(leaf.index, leaf.device, columns)[1:]
    names = ("device", "kind", "t_ms", "last_ms", "dt_ms", "n")
    # The sample count first: a block that holds another number of samples says so.
    for position in (5, 0, 1, 2, 3, 4):
        name, got, value = names[position], stored[position], expected[position]
        if got != value:
            code = "sample_count_mismatch" if name == "n" else "sample_mismatch"
            yield _problem(
                leaf,
                code,
                f"{name} is {got!r} in {_BLOCKS} ({columns.kind} block), {_said_by(leaf)[0]} "
                f"says {value!r}",
                table=_BLOCKS,
            )
            return
    if stored[-1] != expected[-1]:
        signed_block = expected[-1]
        assert isinstance(signed_block, bytes)
        yield _problem(
            leaf, "sample_mismatch", _first_difference(leaf, stored, signed_block), table=_BLOCKS
        )


def _summary(
    leaf: _Leaf,
    kind: Kind,
    signed: tuple[bytes, str | None],
    stored: tuple[bytes, str | None] | None,
) -> Iterator[Problem]:
    """The stored summary and host against those of the signed message (a chart and a pack's
    history read them)."""
    if stored is None:
        yield _problem(leaf, "summary_missing", f"no {kind} sample summary", table=_SUMMARIES)
    elif stored[1] != signed[1]:
        yield _problem(
            leaf, "summary_mismatch",
            f"host is {stored[1]!r} in {_SUMMARIES}, {_said_by(leaf)[0]} says {signed[1]!r}",
            table=_SUMMARIES,
        )  # fmt: skip
    elif stored[0] != signed[0]:
        difference = _summary_difference(kind, stored[0], signed[0], _said_by(leaf)[1])
        yield _problem(leaf, "summary_mismatch", difference, table=_SUMMARIES)


def _summary_difference(kind: Kind, stored: bytes, signed: bytes, samples_of: str) -> str:
    """Which column's min, max or sum of a stored summary differs from the leaf's samples'
    (``samples_of``: how to name them)."""
    layout = struct.Struct(
        "<" + "".join(c for _, *codes in blocks.SUMMARY_LAYOUT[kind] for c in codes)
    )
    if len(stored) != layout.size:
        return f"the summary holds {len(stored)} bytes, a {kind} summary takes {layout.size}"
    names = [f"{name} {stat}" for name, *_ in blocks.SUMMARY_LAYOUT[kind]
             for stat in ("min", "max", "sum")]  # fmt: skip
    for name, got, value in zip(names, layout.unpack(stored), layout.unpack(signed), strict=True):
        if got != value:
            return f"{name} is {got!r} in {_SUMMARIES}, {samples_of} give {value!r}"
    return f"the summary differs from {samples_of}"  # pragma: no cover - bytes differ


def _first_difference(leaf: _Leaf, stored: _BlockRow, signed_block: bytes) -> str:
    """Where a stored block's columns first differ from those of the signed message."""
    device, stored_kind, t_ms, _last, dt_ms, n, data = stored
    kind: Kind = "pack" if stored_kind == "pack" else "bus"
    row = (leaf.index, t_ms, dt_ms, n, data)
    signed = samples.unpack(kind, [(leaf.index, t_ms, dt_ms, n, signed_block)])
    try:
        found = samples.unpack(kind, [row])
    except samples.BlockError as exc:
        return str(exc)
    for name, want in signed.values.items():
        got = found.values[name]
        for k in range(len(want)):
            if got[k] != want[k]:
                return (
                    f"sample {k}: {name} is {got[k].item()!r} in {_BLOCKS}, {_said_by(leaf)[0]} "
                    f"says {want[k].item()!r}"
                )
    return f"the columns of {device!r} differ from {_said_by(leaf)[0]}"  # pragma: no cover
