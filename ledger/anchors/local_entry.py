"""Entries of the local anchor table and their export format (pure: no I/O, no clock).

Each entry is hash-chained to the one before and signed by the gateway key::

    entry_hash = SHA-256("voltproof-local-anchor/1\\n" || u64 sequence || log_id ||
                         u64 tree_size || root || u64 anchored_at_ms || prev_hash)
    signature  = Ed25519(gateway key, entry_hash)

Integers are big-endian; the first entry has sequence 1 and ``prev_hash`` = 32 zero bytes.
The export is JSON: ``{"format": "voltproof-local-anchors/1", "entries": [...]}`` with
hashes and signatures in lower-case hex.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Self

from nacl.signing import SigningKey

from .base import HASH_SIZE, check_anchor_fields
from .errors import AnchorFormatError

ENTRY_DOMAIN = b"voltproof-local-anchor/1\n"
EXPORT_FORMAT = "voltproof-local-anchors/1"
GENESIS_HASH = bytes(HASH_SIZE)
SIGNATURE_SIZE = 64
ENTRY_FIELDS = (
    "sequence",
    "log_id",
    "tree_size",
    "root",
    "anchored_at_ms",
    "prev_hash",
    "entry_hash",
    "signature",
)


def compute_entry_hash(
    *,
    sequence: int,
    log_id: bytes,
    tree_size: int,
    root: bytes,
    anchored_at_ms: int,
    prev_hash: bytes,
) -> bytes:
    """Return the entry hash defined in the module docstring."""
    return hashlib.sha256(
        ENTRY_DOMAIN
        + struct.pack(">Q", sequence)
        + log_id
        + struct.pack(">Q", tree_size)
        + root
        + struct.pack(">Q", anchored_at_ms)
        + prev_hash
    ).digest()


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalEntry:
    """One row of the local anchor table, exactly as stored and exported."""

    sequence: int
    log_id: bytes
    tree_size: int
    root: bytes
    anchored_at_ms: int
    prev_hash: bytes
    entry_hash: bytes
    signature: bytes

    def __post_init__(self) -> None:
        check_anchor_fields(self.log_id, self.tree_size, self.root)
        if self.sequence < 1:
            raise ValueError(f"sequence must be >= 1, got {self.sequence}")
        if self.anchored_at_ms < 0:
            raise ValueError(f"anchored_at_ms must be >= 0, got {self.anchored_at_ms}")
        for name in ("prev_hash", "entry_hash"):
            if len(getattr(self, name)) != HASH_SIZE:
                raise ValueError(f"{name} must be {HASH_SIZE} bytes")
        if len(self.signature) != SIGNATURE_SIZE:
            raise ValueError(f"signature must be {SIGNATURE_SIZE} bytes")

    @classmethod
    def create(
        cls,
        *,
        sequence: int,
        log_id: bytes,
        tree_size: int,
        root: bytes,
        anchored_at_ms: int,
        prev_hash: bytes,
        signing_key: SigningKey,
    ) -> Self:
        """Build and sign the entry that follows ``prev_hash``."""
        entry_hash = compute_entry_hash(
            sequence=sequence,
            log_id=log_id,
            tree_size=tree_size,
            root=root,
            anchored_at_ms=anchored_at_ms,
            prev_hash=prev_hash,
        )
        return cls(
            sequence=sequence,
            log_id=log_id,
            tree_size=tree_size,
            root=root,
            anchored_at_ms=anchored_at_ms,
            prev_hash=prev_hash,
            entry_hash=entry_hash,
            signature=signing_key.sign(entry_hash).signature,
        )

    def computed_hash(self) -> bytes:
        """The entry hash recomputed from the fields (compare with ``entry_hash``)."""
        return compute_entry_hash(
            sequence=self.sequence,
            log_id=self.log_id,
            tree_size=self.tree_size,
            root=self.root,
            anchored_at_ms=self.anchored_at_ms,
            prev_hash=self.prev_hash,
        )

    def details(self) -> dict[str, str | int]:
        """The receipt details of this entry."""
        return {
            "sequence": self.sequence,
            "anchored_at_ms": self.anchored_at_ms,
            "prev_hash": self.prev_hash.hex(),
            "entry_hash": self.entry_hash.hex(),
            "signature": self.signature.hex(),
        }

    def to_dict(self) -> dict[str, str | int]:
        """The entry as exported (hex for bytes)."""
        out: dict[str, str | int] = {}
        for name in ENTRY_FIELDS:
            value = getattr(self, name)
            out[name] = value.hex() if isinstance(value, bytes) else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Self:
        """Parse one exported entry; raise ``ValueError`` naming the bad field."""
        extra = sorted(set(data) - set(ENTRY_FIELDS))
        if extra:
            raise ValueError(f"unknown fields {extra}")
        return cls(
            sequence=_int(data, "sequence"),
            log_id=_hex(data, "log_id"),
            tree_size=_int(data, "tree_size"),
            root=_hex(data, "root"),
            anchored_at_ms=_int(data, "anchored_at_ms"),
            prev_hash=_hex(data, "prev_hash"),
            entry_hash=_hex(data, "entry_hash"),
            signature=_hex(data, "signature"),
        )


def _int(data: Mapping[str, object], name: str) -> int:
    value = data.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise AnchorFormatError(f"{name} must be an integer")
    return value


def _hex(data: Mapping[str, object], name: str) -> bytes:
    value = data.get(name)
    if not isinstance(value, str):
        raise AnchorFormatError(f"{name} must be hex text")
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise AnchorFormatError(f"{name} is not hex") from exc
