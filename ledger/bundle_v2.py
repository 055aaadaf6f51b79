"""Evidence bundles ``voltproof-bundle/2`` (evidence v2): the format, strict both ways.

A v2 bundle speaks of *devices*, each proven by its entry in the device index that the
checkpoint commits to (``voltproof-index/1`` line), with every registry entry of the device;
and of *chains*, one per device and interval (the asset's own chain over the period, a pack's
host buses over the hosting intervals only). ``docs/protocol.md`` ("Bundle
``voltproof-bundle/2``") documents every field. :func:`read_bundle` reads either version.

Nothing here checks a signature or a proof: that is :mod:`ledger.verify_v2`.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any, Final

from .bundle import (
    BUNDLE_FORMAT,
    AnchorEvidence,
    Bundle,
    BundleFieldError,
    BundleFormatError,
    LoggedLeaf,
    UnknownBundleVersionError,
    _anchor,
    _leaf,
    _leaf_dict,
    _Reader,
    _unb64,
    parse_bundle,
)
from .checkpoint import CheckpointError, parse_checkpoint
from .device_index import ChainHead, IndexEntry
from .merkle.index_tree import KEY_BITS, IndexProof, IndexProofError
from .note import NoteError, split_note

__all__ = [
    "BUNDLE_FORMAT_V2",
    "MAX_ABSENT",
    "MAX_TIMELINE_ENTRIES",
    "MAX_TIMELINE_NOTE_CHARS",
    "MAX_TIMELINE_PROOF",
    "ROLES",
    "TIMELINE_VERSION",
    "AbsentDevice",
    "BundleAbsenceError",
    "BundleTimelineError",
    "BundleV2",
    "IndexedDevice",
    "RoleChain",
    "TimelineEntry",
    "parse_bundle_v2",
    "read_bundle",
]

BUNDLE_FORMAT_V2: Final = "voltproof-bundle/2"
ROLES: Final = ("asset", "predecessor", "host", "installed")
_KINDS: Final = ("bus", "pack")
TIMELINE_VERSION: Final = 1
MAX_TIMELINE_ENTRIES: Final = 100_000
"""More entries than any bundle needs: one per checkpoint first covering a message."""
MAX_TIMELINE_NOTE_CHARS: Final = 16_384
"""A checkpoint note with its extension lines and a few dozen cosignature lines fits easily."""
MAX_TIMELINE_PROOF: Final = 64
"""An RFC 9162 consistency proof between sizes below 2^64 has fewer hashes than this."""
MAX_ABSENT: Final = 1_000
"""More absence proofs than any bundle needs: one per partner its asset's messages name
that the index does not hold (each at most 256 sibling hashes, about 11 kB)."""


class BundleTimelineError(BundleFieldError):
    """The bundle's ``timeline`` is malformed: wrong version, bounds, note or order."""


class BundleAbsenceError(BundleFieldError):
    """The bundle's ``absent`` list is malformed: bounds, a repeated id or a bad proof shape."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TimelineEntry:
    """A cosigned checkpoint of the log and its consistency proof to the bundle's checkpoint.

    ``size`` is read from the note's body when the bundle is parsed (nothing is verified
    here: :mod:`ledger.bundle_witness` checks the proof and the cosignatures).
    """

    note: str
    size: int
    consistency: tuple[bytes, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexedDevice:
    """A device the bundle speaks of: its index entry, the entry's proof, its registry."""

    device: str
    entry: IndexEntry
    index_proof: tuple[bytes, ...]
    registry: tuple[LoggedLeaf, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class AbsentDevice:
    """A device the asset's messages name and the index does not hold, with the proof.

    Why it exists: a pack may name a host bus that was never enrolled (a workshop rig, a
    vehicle of another fleet). It has no entry and no chain to give; the proof that its key
    is absent from the checkpoint's index is what shows the operator hides no chain of it.
    """

    device: str
    proof: IndexProof


@dataclass(frozen=True, slots=True, kw_only=True)
class RoleChain:
    """One device's messages with ``t`` in ``[from_ms, to_ms)`` and the boundary messages."""

    device: str
    role: str
    from_ms: int
    to_ms: int
    before: LoggedLeaf | None
    messages: tuple[LoggedLeaf, ...]
    after: LoggedLeaf | None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise BundleFieldError(f"chain role {self.role!r} is not one of {list(ROLES)}")
        if not self.from_ms < self.to_ms:
            raise BundleFieldError(
                f"chain of {self.device!r}: from_ms {self.from_ms} is not before to_ms {self.to_ms}"
            )

    def leaves(self) -> list[LoggedLeaf]:
        """before, messages, after (those present), in chain order."""
        return [leaf for leaf in (self.before, *self.messages, self.after) if leaf is not None]


@dataclass(frozen=True, slots=True, kw_only=True)
class BundleV2:
    """A parsed ``voltproof-bundle/2`` (nothing verified yet)."""

    asset_id: str
    asset_kind: str
    from_ms: int
    to_ms: int
    checkpoint: str
    operator_key: bytes
    devices: tuple[IndexedDevice, ...]
    chains: tuple[RoleChain, ...]
    anchor: AnchorEvidence
    timeline: tuple[TimelineEntry, ...] | None = None
    """Cosigned checkpoints first covering the bundle's messages (``None``: no timeline)."""
    absent: tuple[AbsentDevice, ...] = ()
    """Partners the asset's messages name that the index proves it does not hold."""
    format: str = field(default=BUNDLE_FORMAT_V2)

    def __post_init__(self) -> None:
        if self.asset_kind not in _KINDS:
            raise BundleFieldError(f"asset.kind {self.asset_kind!r} is not one of {list(_KINDS)}")
        if not self.from_ms < self.to_ms:
            raise BundleFieldError(
                f"period from_ms {self.from_ms} is not before to_ms {self.to_ms}"
            )
        if len(self.operator_key) != 32:
            raise BundleFieldError(f"operator_key must be 32 bytes, got {len(self.operator_key)}")

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (bytes in standard base64)."""
        anchor: dict[str, Any] = {
            "size": self.anchor.size,
            "root": _b64(self.anchor.root),
            "consistency": [_b64(h) for h in self.anchor.consistency],
            "receipt": self.anchor.receipt.to_dict(),
        }
        if self.anchor.local_export is not None:
            anchor["local_export"] = dict(self.anchor.local_export)
        document = {
            "format": self.format,
            "asset": {"id": self.asset_id, "kind": self.asset_kind},
            "period": {"from_ms": self.from_ms, "to_ms": self.to_ms},
            "checkpoint": self.checkpoint,
            "operator_key": _b64(self.operator_key),
            "devices": [
                {
                    "id": d.device,
                    "entry": _entry_dict(d.entry),
                    "index_proof": [_b64(h) for h in d.index_proof],
                    "registry": [_leaf_dict(leaf) for leaf in d.registry],
                }
                for d in self.devices
            ],
            "chains": [
                {
                    "device": c.device,
                    "role": c.role,
                    "from_ms": c.from_ms,
                    "to_ms": c.to_ms,
                    "before": None if c.before is None else _leaf_dict(c.before),
                    "messages": [_leaf_dict(leaf) for leaf in c.messages],
                    "after": None if c.after is None else _leaf_dict(c.after),
                }
                for c in self.chains
            ],
            "anchor": anchor,
        }
        if self.absent:
            document["absent"] = [_absent_dict(a) for a in self.absent]
        if self.timeline is not None:
            document["timeline"] = {
                "version": TIMELINE_VERSION,
                "checkpoints": [
                    {"note": e.note, "consistency": [_b64(h) for h in e.consistency]}
                    for e in self.timeline
                ],
            }
        return document

    def to_bytes(self) -> bytes:
        """The bundle file: deterministic JSON (sorted keys, two-space indent, final newline)."""
        return (json.dumps(self.to_dict(), sort_keys=True, indent=2) + "\n").encode("utf-8")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _absent_dict(absent: AbsentDevice) -> dict[str, Any]:
    proof = absent.proof
    other = None
    if proof.other_key is not None and proof.other_value_hash is not None:
        other = {"key": _b64(proof.other_key), "value_hash": _b64(proof.other_value_hash)}
    return {
        "id": absent.device,
        "index_proof": [_b64(h) for h in proof.siblings],
        "other": other,
    }


def _entry_dict(entry: IndexEntry) -> dict[str, Any]:
    head = entry.head
    return {
        "dev": entry.device,
        "kind": entry.kind,
        "reg_n": entry.registry_count,
        "reg_h": _b64(entry.registry_hash),
        "head": None
        if head is None
        else {"seq": head.seq, "leaf": head.leaf, "h": _b64(head.hash), "t": head.t},
    }


def _entry(data: object, path: str) -> IndexEntry:
    reader = _Reader(data, path, {"dev", "kind", "reg_n", "reg_h", "head"})
    head = None
    if reader.data["head"] is not None:
        raw = _Reader(reader.data["head"], f"{path}.head", {"seq", "leaf", "h", "t"})
        try:
            head = ChainHead(
                seq=raw.get("seq", int), leaf=raw.get("leaf", int), hash=raw.raw("h", 32),
                t=raw.get("t", int),
            )  # fmt: skip
        except ValueError as exc:
            raise BundleFieldError(f"{path}.head: {exc}") from exc
    try:
        return IndexEntry(
            device=reader.get("dev", str),
            kind=reader.get("kind", str),
            registry_count=reader.get("reg_n", int),
            registry_hash=reader.raw("reg_h", 32),
            head=head,
        )
    except ValueError as exc:
        raise BundleFieldError(f"{path}: {exc}") from exc


def _device(data: object, path: str) -> IndexedDevice:
    reader = _Reader(data, path, {"id", "entry", "index_proof", "registry"})
    proof = reader.hashes("index_proof")
    try:
        IndexProof(siblings=proof)
    except IndexProofError as exc:
        raise BundleFieldError(f"{path}.index_proof: {exc}") from exc
    return IndexedDevice(
        device=reader.get("id", str),
        entry=_entry(reader.data["entry"], f"{path}.entry"),
        index_proof=proof,
        registry=tuple(
            _leaf(item, f"{path}.registry[{i}]")
            for i, item in enumerate(reader.get("registry", list))
        ),
    )


def _absent(items: object) -> tuple[AbsentDevice, ...]:
    """The ``absent`` list: bounded, each id once, each proof of the absence shape."""
    if not isinstance(items, list):
        raise BundleAbsenceError(f"absent must be a list, got {type(items).__name__}")
    if not 0 < len(items) <= MAX_ABSENT:
        raise BundleAbsenceError(
            f"absent has {len(items)} entries; give 1 to {MAX_ABSENT}, or leave the field out"
        )
    found: list[AbsentDevice] = []
    for i, item in enumerate(items):
        path = f"absent[{i}]"
        reader = _Reader(item, path, {"id", "index_proof", "other"})
        device = reader.get("id", str)
        if any(a.device == device for a in found):
            raise BundleAbsenceError(f"{path}: {device!r} is listed twice")
        if len(reader.get("index_proof", list)) > KEY_BITS:
            raise BundleAbsenceError(f"{path}.index_proof has more than {KEY_BITS} hashes")
        siblings = reader.hashes("index_proof")
        other_key = other_value = None
        if reader.data["other"] is not None:
            other = _Reader(reader.data["other"], f"{path}.other", {"key", "value_hash"})
            other_key, other_value = other.raw("key", 32), other.raw("value_hash", 32)
        # Sizes and count are checked above, so the proof's own checks cannot fail here.
        proof = IndexProof(siblings=siblings, other_key=other_key, other_value_hash=other_value)
        found.append(AbsentDevice(device=device, proof=proof))
    return tuple(found)


def _chain(data: object, path: str) -> RoleChain:
    keys = {"device", "role", "from_ms", "to_ms", "before", "messages", "after"}
    reader = _Reader(data, path, keys)
    before, after = reader.data["before"], reader.data["after"]
    return RoleChain(
        device=reader.get("device", str),
        role=reader.get("role", str),
        from_ms=reader.get("from_ms", int),
        to_ms=reader.get("to_ms", int),
        before=None if before is None else _leaf(before, f"{path}.before"),
        messages=tuple(
            _leaf(item, f"{path}.messages[{i}]")
            for i, item in enumerate(reader.get("messages", list))
        ),
        after=None if after is None else _leaf(after, f"{path}.after"),
    )


_TOP: Final = {
    "format", "asset", "period", "checkpoint", "operator_key", "devices", "chains", "anchor",
}  # fmt: skip


def parse_bundle_v2(data: bytes) -> BundleV2:
    """Read a v2 bundle strictly: every key required, no others, types and sizes checked."""
    document = _document(data)
    if document.get("format") != BUNDLE_FORMAT_V2:
        raise UnknownBundleVersionError(
            f"file format {document.get('format')!r} is not {BUNDLE_FORMAT_V2!r}"
        )
    top = _Reader(document, "", _TOP, frozenset({"timeline", "absent"}))
    asset = _Reader(top.get("asset", dict), "asset", {"id", "kind"})
    period = _Reader(top.get("period", dict), "period", {"from_ms", "to_ms"})
    return BundleV2(
        asset_id=asset.get("id", str),
        asset_kind=asset.get("kind", str),
        from_ms=period.get("from_ms", int),
        to_ms=period.get("to_ms", int),
        checkpoint=top.get("checkpoint", str),
        operator_key=_unb64(top.get("operator_key", str), "operator_key", 32),
        devices=tuple(_device(d, f"devices[{i}]") for i, d in enumerate(top.get("devices", list))),
        chains=tuple(_chain(c, f"chains[{i}]") for i, c in enumerate(top.get("chains", list))),
        anchor=_anchor(top.get("anchor", dict)),
        timeline=_timeline(top.data["timeline"]) if "timeline" in top.data else None,
        absent=_absent(top.data["absent"]) if "absent" in top.data else (),
    )


def _timeline(data: object) -> tuple[TimelineEntry, ...]:
    """The ``timeline`` object: version 1, bounded, entries in strictly increasing size."""
    reader = _Reader(data, "timeline", {"version", "checkpoints"})
    version = reader.get("version", int)
    if version != TIMELINE_VERSION:
        raise BundleTimelineError(
            f"timeline.version {version} is not {TIMELINE_VERSION} (a newer bundle?)"
        )
    items = reader.get("checkpoints", list)
    if len(items) > MAX_TIMELINE_ENTRIES:
        raise BundleTimelineError(
            f"timeline.checkpoints has {len(items)} entries, more than {MAX_TIMELINE_ENTRIES}"
        )
    entries: list[TimelineEntry] = []
    for i, item in enumerate(items):
        entry = _timeline_entry(item, f"timeline.checkpoints[{i}]")
        if entries and entry.size <= entries[-1].size:
            raise BundleTimelineError(
                f"timeline.checkpoints[{i}] has size {entry.size}, not above the previous "
                f"entry's {entries[-1].size} (entries must be in strictly increasing size)"
            )
        entries.append(entry)
    return tuple(entries)


def _timeline_entry(data: object, path: str) -> TimelineEntry:
    reader = _Reader(data, path, {"note", "consistency"})
    note = reader.get("note", str)
    if len(note) > MAX_TIMELINE_NOTE_CHARS:
        raise BundleTimelineError(
            f"{path}.note has {len(note)} characters, more than {MAX_TIMELINE_NOTE_CHARS}"
        )
    if len(reader.get("consistency", list)) > MAX_TIMELINE_PROOF:
        raise BundleTimelineError(f"{path}.consistency has more than {MAX_TIMELINE_PROOF} hashes")
    proof = reader.hashes("consistency")
    try:
        body, _ = split_note(note)
        size = parse_checkpoint(body).size
    except (NoteError, CheckpointError) as exc:
        raise BundleTimelineError(f"{path}.note is not a signed checkpoint: {exc}") from exc
    return TimelineEntry(note=note, size=size, consistency=proof)


def _document(data: bytes) -> dict[str, Any]:
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleFormatError(f"bundle is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise BundleFormatError("bundle must be a JSON object")
    return document


def read_bundle(data: bytes) -> Bundle | BundleV2:
    """Read a bundle of either version (the ``format`` key decides); others are refused."""
    found = _document(data).get("format")
    if found == BUNDLE_FORMAT_V2:
        return parse_bundle_v2(data)
    if found == BUNDLE_FORMAT:
        return parse_bundle(data)
    raise UnknownBundleVersionError(
        f"file format {found!r} is not {BUNDLE_FORMAT!r} or {BUNDLE_FORMAT_V2!r}"
    )
