"""Device index entries (evidence v2): what every checkpoint commits to about each device.

One entry per device, a deterministic CBOR map:

- ``dev``: the device id; ``kind``: ``"bus"`` or ``"pack"`` as enrolled;
- ``reg_n``: how many registry entries of the device the log holds up to the checkpoint;
- ``reg_h``: their hash chain, ``h_0`` = 32 zero bytes, ``h_k = SHA-256(h_{k-1} ‖ leaf_k)``
  where ``leaf_k`` is the RFC 9162 leaf hash of the k-th entry in log order;
- ``head`` (absent until the device's first telemetry message is logged): a map ``seq``
  (the highest seq logged), ``leaf`` (its leaf index), ``h`` (SHA-256 of its COSE bytes),
  ``t`` (its ``t``).

The entry's value hash is ``SHA-256(CBOR(entry))``; its key in the index tree
(:mod:`ledger.merkle.index_tree`) is ``SHA-256("voltproof/device-index/v1\\n" ‖ id)``.
The checkpoint carries the tree's root as one extension line
``voltproof-index/1 <base64 root>`` after the root line.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Final

from .errors import VerificationError
from .merkle.hasher import hash_leaf
from .merkle.index_tree import IndexProof, IndexTree, verify_index_absence, verify_index_entry

__all__ = [
    "INDEX_LINE_PREFIX",
    "REGISTRY_CHAIN_START",
    "ChainHead",
    "DeviceIndex",
    "IndexEntry",
    "IndexLineError",
    "extend_registry_chain",
    "index_key",
    "index_line",
    "index_root_from_extensions",
    "verify_entry",
    "verify_no_entry",
]

INDEX_LINE_PREFIX: Final = "voltproof-index/1 "
REGISTRY_CHAIN_START: Final = bytes(32)
_KEY_DOMAIN: Final = b"voltproof/device-index/v1\n"
_KINDS: Final = ("bus", "pack")
_MAX_SEQ: Final = 2**63 - 1


def _head(major: int, argument: int) -> bytes:
    """The shortest CBOR head (RFC 8949 §4.2.1) of major type ``major`` (0x00, 0x40, 0x60)."""
    if argument < 24:
        return bytes((major | argument,))
    for extra, size in ((24, 1), (25, 2), (26, 4)):
        if argument < 1 << (8 * size):
            return bytes((major | extra,)) + argument.to_bytes(size, "big")
    return bytes((major | 27,)) + argument.to_bytes(8, "big")


def _tstr(text: str) -> bytes:
    data = text.encode("utf-8")
    return _head(0x60, len(data)) + data


_HASH_HEAD: Final = _head(0x40, 32)
# Keys in deterministic order (bytewise order of their encodings: shorter keys first).
_DEV, _HEAD, _KIND, _REG_H, _REG_N = (_tstr(k) for k in ("dev", "head", "kind", "reg_h", "reg_n"))
_H, _T, _SEQ, _LEAF = (_tstr(k) for k in ("h", "t", "seq", "leaf"))


class IndexLineError(VerificationError):
    """A checkpoint's device index line is missing, repeated or malformed."""


def index_key(device: str) -> bytes:
    """The device's position in the index tree."""
    return hashlib.sha256(_KEY_DOMAIN + device.encode("utf-8")).digest()


def extend_registry_chain(chain: bytes, entry: bytes) -> bytes:
    """The registry hash chain after one more entry (``entry`` = its COSE bytes)."""
    return hashlib.sha256(chain + hash_leaf(entry)).digest()


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainHead:
    """The newest logged telemetry message of a device."""

    seq: int
    leaf: int
    hash: bytes
    t: int

    def __post_init__(self) -> None:
        if type(self.seq) is not int or not 0 <= self.seq <= _MAX_SEQ:
            raise ValueError(f"head seq {self.seq!r} is not in 0..2**63-1")
        if type(self.leaf) is not int or self.leaf < 0:
            raise ValueError(f"head leaf index {self.leaf!r} is not a non-negative integer")
        if type(self.hash) is not bytes or len(self.hash) != 32:
            raise ValueError("head hash must be 32 bytes")
        if type(self.t) is not int or self.t < 0:
            raise ValueError(f"head t {self.t!r} is not a non-negative integer")


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexEntry:
    """One device's entry in the index at one checkpoint."""

    device: str
    kind: str
    registry_count: int
    registry_hash: bytes
    head: ChainHead | None = None

    def __post_init__(self) -> None:
        if not self.device:
            raise ValueError("device id must not be empty")
        if self.kind not in _KINDS:
            raise ValueError(f"kind {self.kind!r} is not bus or pack")
        if type(self.registry_count) is not int or self.registry_count < 1:
            raise ValueError("an indexed device has at least its enrolment entry")
        if type(self.registry_hash) is not bytes or len(self.registry_hash) != 32:
            raise ValueError("registry hash must be 32 bytes")

    def to_cbor(self) -> dict[str, Any]:
        """The entry as the CBOR map it is hashed as."""
        value: dict[str, Any] = {
            "dev": self.device,
            "kind": self.kind,
            "reg_n": self.registry_count,
            "reg_h": self.registry_hash,
        }
        if self.head is not None:
            value["head"] = {
                "seq": self.head.seq,
                "leaf": self.head.leaf,
                "h": self.head.hash,
                "t": self.head.t,
            }
        return value

    @classmethod
    def from_cbor(cls, value: Any) -> IndexEntry:
        """Read an entry back from its CBOR map (as a bundle carries it)."""
        if not isinstance(value, dict) or not {"dev", "kind", "reg_n", "reg_h"} <= set(value):
            raise IndexLineError(
                f"index entry is not a map with dev, kind, reg_n, reg_h: {value!r}"
            )
        extra = set(value) - {"dev", "kind", "reg_n", "reg_h", "head"}
        if extra:
            raise IndexLineError(f"index entry has unknown keys {sorted(extra)}")
        head = None
        if "head" in value:
            raw = value["head"]
            if not isinstance(raw, dict) or set(raw) != {"seq", "leaf", "h", "t"}:
                raise IndexLineError(f"index entry head is not a map seq, leaf, h, t: {raw!r}")
            try:
                head = ChainHead(seq=raw["seq"], leaf=raw["leaf"], hash=raw["h"], t=raw["t"])
            except ValueError as exc:
                raise IndexLineError(f"index entry head: {exc}") from exc
        try:
            return cls(
                device=value["dev"],
                kind=value["kind"],
                registry_count=value["reg_n"],
                registry_hash=value["reg_h"],
                head=head,
            )
        except (ValueError, TypeError) as exc:
            raise IndexLineError(f"index entry: {exc}") from exc

    def encoding(self) -> bytes:
        """The deterministic CBOR encoding of :meth:`to_cbor`, written directly (the index
        hashes one per changed device per checkpoint; a test checks it equals
        ``ledger.cbor.encode(entry.to_cbor())``)."""
        head = self.head
        parts = [b"\xa5" if head is not None else b"\xa4", _DEV, _tstr(self.device)]
        if head is not None:
            parts += (
                _HEAD, b"\xa4", _H, _HASH_HEAD, head.hash, _T, _head(0, head.t),
                _SEQ, _head(0, head.seq), _LEAF, _head(0, head.leaf),
            )  # fmt: skip
        parts += (
            _KIND, _tstr(self.kind), _REG_H, _HASH_HEAD, self.registry_hash,
            _REG_N, _head(0, self.registry_count),
        )  # fmt: skip
        return b"".join(parts)

    def value_hash(self) -> bytes:
        """SHA-256 of the entry's deterministic CBOR encoding."""
        return hashlib.sha256(self.encoding()).digest()


def index_line(root: bytes) -> str:
    """The checkpoint extension line that commits to the index root."""
    return INDEX_LINE_PREFIX + base64.b64encode(root).decode("ascii")


def index_root_from_extensions(extensions: Iterable[str]) -> bytes | None:
    """The index root a checkpoint's extension lines commit to (``None``: a v1 checkpoint)."""
    found = [line for line in extensions if line.startswith(INDEX_LINE_PREFIX)]
    if not found:
        return None
    if len(found) > 1:
        raise IndexLineError("checkpoint carries more than one device index line")
    text = found[0][len(INDEX_LINE_PREFIX) :]
    try:
        root = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise IndexLineError(f"device index root {text!r} is not base64") from exc
    if len(root) != 32 or base64.b64encode(root).decode("ascii") != text:
        raise IndexLineError(f"device index root {text!r} is not 32 bytes in canonical base64")
    return root


def verify_entry(*, root: bytes, entry: IndexEntry, proof: IndexProof) -> None:
    """Check that the index with ``root`` holds exactly ``entry`` for its device."""
    verify_index_entry(
        root=root, key=index_key(entry.device), value_hash=entry.value_hash(), proof=proof
    )


def verify_no_entry(*, root: bytes, device: str, proof: IndexProof) -> None:
    """Check that the index with ``root`` holds no entry for ``device``."""
    verify_index_absence(root=root, key=index_key(device), proof=proof)


class DeviceIndex:
    """The index as the log grows: fed registry entries and telemetry heads in log order."""

    def __init__(self) -> None:
        self._tree = IndexTree()
        self._entries: dict[str, IndexEntry] = {}
        self._dirty: set[str] = set()
        """Devices whose entry changed since the tree last saw it (hashed once at the flush)."""

    def __len__(self) -> int:
        return len(self._entries)

    def entry(self, device: str) -> IndexEntry | None:
        """The device's current entry, if it is enrolled."""
        return self._entries.get(device)

    def entries(self) -> list[IndexEntry]:
        """Every entry, in device id order."""
        return [self._entries[device] for device in sorted(self._entries)]

    def _put(self, entry: IndexEntry) -> None:
        self._entries[entry.device] = entry
        self._dirty.add(entry.device)

    def _flush(self) -> None:
        """Hash each changed entry once and set it in the tree (a device that moved many
        times since the last root costs one CBOR encoding and one path update)."""
        if self._dirty:
            entries = self._entries
            self._tree.update(
                (index_key(device), entries[device].value_hash()) for device in self._dirty
            )
            self._dirty.clear()

    def add_registry_entry(self, *, device: str, kind: str | None, entry: bytes) -> None:
        """Fold one logged registry entry (COSE bytes) of ``device`` into its entry.

        ``kind`` is required for the device's first entry (its enrolment) and ignored after.
        """
        current = self._entries.get(device)
        if current is None:
            if kind is None:
                raise ValueError(f"first registry entry of {device!r} must give its kind")
            self._put(
                IndexEntry(
                    device=device,
                    kind=kind,
                    registry_count=1,
                    registry_hash=extend_registry_chain(REGISTRY_CHAIN_START, entry),
                )
            )
            return
        self._put(
            replace(
                current,
                registry_count=current.registry_count + 1,
                registry_hash=extend_registry_chain(current.registry_hash, entry),
            )
        )

    def add_message(self, *, device: str, seq: int, leaf: int, message_hash: bytes, t: int) -> None:
        """Record a logged telemetry message; the head moves only to a higher seq."""
        current = self._entries.get(device)
        if current is None:
            raise ValueError(f"telemetry of {device!r} logged before its enrolment")
        if current.head is not None and current.head.seq >= seq:
            return
        self._put(replace(current, head=ChainHead(seq=seq, leaf=leaf, hash=message_hash, t=t)))

    def root(self) -> bytes:
        """The index root to put in the next checkpoint."""
        self._flush()
        return self._tree.root()

    def proof(self, device: str) -> IndexProof:
        """The entry proof of an enrolled device, or the absence proof of another id."""
        self._flush()
        return self._tree.proof(index_key(device))
