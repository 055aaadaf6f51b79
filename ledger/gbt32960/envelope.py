"""The log leaf that keeps one GB/T 32960 frame byte-exact: ``voltproof-gbt32960/1``.

A GB/T 32960 frame carries no hash chain and (2016) no signature, so the gateway wraps each
accepted data frame in a small binary envelope that is not CBOR and not COSE::

    b"voltproof-gbt32960/1\\n"     21 bytes, the content type (a COSE decoder refuses the
                                   first byte: 0x76 is a CBOR text string, not tag 18)
    received_at_ms                 8 bytes big endian: when the gateway accepted the frame
    seq                            8 bytes big endian: the gateway's per-device counter
    prev                           32 bytes: SHA-256 of the device's previous envelope
                                   (32 zero bytes for seq 0)
    device id length, device id    1 byte + UTF-8 (the registry id the VIN is enrolled under)
    frame                          the frame exactly as received, start bytes to check code

``seq`` and ``prev`` are made by the gateway, not the vehicle: they give the same chain
shape (gaps, order) as a device chain, but prove only what the gateway logged. The frame's
own content (and, 2025, its SM2 signature) is what the vehicle vouches for.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

from .errors import FrameStructureError
from .frame import Frame, parse_frame

MAGIC: Final = b"voltproof-gbt32960/1\n"
_FIXED: Final = len(MAGIC) + 8 + 8 + 32 + 1
MAX_DEVICE_ID: Final = 64


class EnvelopeError(FrameStructureError):
    """Bytes that claim to be a GB/T 32960 leaf but are not one."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """A decoded ``voltproof-gbt32960/1`` leaf."""

    received_at_ms: int
    seq: int
    prev: bytes
    device_id: str
    frame: Frame

    def encode(self) -> bytes:
        """The leaf bytes."""
        return encode_envelope(
            received_at_ms=self.received_at_ms, seq=self.seq, prev=self.prev,
            device_id=self.device_id, frame=self.frame.raw,
        )  # fmt: skip


def is_envelope(leaf: bytes) -> bool:
    """Whether ``leaf`` claims the GB/T 32960 content type (decode it to check the rest)."""
    return leaf.startswith(MAGIC)


def encode_envelope(
    *, received_at_ms: int, seq: int, prev: bytes, device_id: str, frame: bytes
) -> bytes:
    """The leaf bytes for ``frame`` (checked with :func:`parse_frame` first)."""
    parse_frame(frame)
    device = device_id.encode("utf-8")
    if not 1 <= len(device) <= MAX_DEVICE_ID:
        raise ValueError(f"device id is {len(device)} bytes; 1..{MAX_DEVICE_ID}")
    if len(prev) != 32:
        raise ValueError(f"prev is {len(prev)} bytes, not 32")
    return (
        MAGIC + received_at_ms.to_bytes(8, "big") + seq.to_bytes(8, "big") + prev
        + bytes((len(device),)) + device + frame
    )  # fmt: skip


def decode_envelope(leaf: bytes) -> Envelope:
    """Check and decode a leaf; raises :class:`EnvelopeError` (or the frame's GbtError)."""
    if not leaf.startswith(MAGIC):
        raise EnvelopeError("the leaf does not start with voltproof-gbt32960/1")
    if len(leaf) < _FIXED:
        raise EnvelopeError(f"a GB/T 32960 leaf has at least {_FIXED} bytes; got {len(leaf)}")
    at = len(MAGIC)
    received_at_ms = int.from_bytes(leaf[at : at + 8], "big")
    seq = int.from_bytes(leaf[at + 8 : at + 16], "big")
    prev = leaf[at + 16 : at + 48]
    length = leaf[at + 48]
    start = at + 49
    if not 1 <= length <= MAX_DEVICE_ID or len(leaf) < start + length:
        raise EnvelopeError(f"device id length {length} does not fit the leaf")
    try:
        device_id = leaf[start : start + length].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EnvelopeError(f"device id is not UTF-8: {exc}") from exc
    frame = parse_frame(leaf[start + length :])
    return Envelope(
        received_at_ms=received_at_ms, seq=seq, prev=prev, device_id=device_id, frame=frame
    )


def envelope_hash(leaf: bytes) -> bytes:
    """SHA-256 of a leaf: the next envelope's ``prev``."""
    return hashlib.sha256(leaf).digest()
