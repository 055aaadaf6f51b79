"""End-to-end receipts: the gateway's signed word that a device's chain is durably logged.

A broker's PUBACK says only that the broker holds a message. A receipt says the gateway has
committed it: a COSE_Sign1 (RFC 9052) by the gateway key, published retained on
``voltproof/<fleet>/<device id>/receipt`` (``ledger.protocol.receipt_topic``)::

    18([ h'<protected {1: -8, 3: "application/vnd.voltproof.receipt+cbor"}>',
         {4: h'<gateway key name, UTF-8>'},
         h'<payload: {"v": 2, "dev": text, "seq": uint, "hash": bstr .size 32,
                      "leaf": uint, "size": uint}>',
         h'<64-byte Ed25519 signature over Sig_structure>' ])

``seq`` is the highest seq up to which the device's chain is durably logged with no gap
(every seq from the chain's start to ``seq`` is a leaf), ``hash`` the SHA-256 of that
message (``ledger.message.message_hash``: the one the device's next message names as
``prev``), so a receipt covers one chain and not every chain that reaches that seq (a device
whose chain restarted under the same id must not take the old chain's receipt as its own),
``leaf`` the leaf index of that message, ``size`` the tree size of the gateway's latest
signed checkpoint when it signed the receipt. The protected content type is unlike
telemetry (none) and registry entries (``application/vnd.voltproof.registry+cbor``):
``ledger.message`` refuses a receipt as either, and :func:`verify_receipt` refuses both of
them as a receipt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import nacl.bindings
import nacl.exceptions

from . import cbor
from .errors import VerificationError
from .message import MAX_SEQ

__all__ = [
    "MAX_RECEIPT_SIZE",
    "RECEIPT_CONTENT_TYPE",
    "RECEIPT_VERSION",
    "Receipt",
    "ReceiptError",
    "ReceiptSignatureError",
    "decode_receipt",
    "sign_receipt",
    "verify_receipt",
]

RECEIPT_CONTENT_TYPE: Final = "application/vnd.voltproof.receipt+cbor"
RECEIPT_VERSION: Final = 2
MAX_RECEIPT_SIZE: Final = 1024
"""A receipt is under 300 bytes for a 64-character device id; anything larger is refused."""

_PROTECTED: Final = cbor.encode({1: -8, 3: RECEIPT_CONTENT_TYPE})
_FIELDS: Final = frozenset({"v", "dev", "seq", "hash", "leaf", "size"})


class ReceiptError(VerificationError):
    """Bytes are not a valid voltproof receipt; the message says why."""


class ReceiptSignatureError(ReceiptError):
    """The receipt's signature does not verify under the given gateway key."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Receipt:
    """What a receipt states: ``dev``'s chain is logged with no gap up to ``seq``, whose
    message has SHA-256 ``hash``."""

    dev: str
    seq: int
    hash: bytes
    leaf: int
    size: int

    def __post_init__(self) -> None:
        if type(self.dev) is not str or not self.dev:
            raise ReceiptError(f"receipt 'dev' must be a non-empty text string, got {self.dev!r}")
        for name in ("seq", "leaf", "size"):
            value = getattr(self, name)
            if type(value) is not int or not 0 <= value <= MAX_SEQ:
                raise ReceiptError(
                    f"receipt {name!r} must be an integer in [0, 2**63), got {value!r}"
                )
        if type(self.hash) is not bytes or len(self.hash) != 32:
            raise ReceiptError("receipt 'hash' must be a 32-byte byte string (SHA-256)")

    def payload(self) -> dict[str, Any]:
        """The CBOR payload map."""
        return {
            "v": RECEIPT_VERSION,
            "dev": self.dev,
            "seq": self.seq,
            "hash": self.hash,
            "leaf": self.leaf,
            "size": self.size,
        }


def _sig_structure(payload_bytes: bytes) -> bytes:
    return cbor.encode(["Signature1", _PROTECTED, b"", payload_bytes])


def sign_receipt(receipt: Receipt, *, seed: bytes, key_name: str) -> bytes:
    """The COSE_Sign1 bytes of ``receipt`` signed with the gateway's 32-byte Ed25519 ``seed``."""
    if type(seed) is not bytes or len(seed) != 32:
        raise ValueError("an Ed25519 seed must be 32 bytes")
    if not key_name:
        raise ValueError("a receipt needs the gateway key name as its kid")
    payload_bytes = cbor.encode(receipt.payload())
    _, secret = nacl.bindings.crypto_sign_seed_keypair(seed)
    signature = nacl.bindings.crypto_sign(_sig_structure(payload_bytes), secret)[:64]
    return cbor.encode(
        cbor.Tag(
            number=cbor.COSE_SIGN1_TAG,
            value=[_PROTECTED, {4: key_name.encode("utf-8")}, payload_bytes, signature],
        )
    )


def _field(payload: dict[Any, Any], name: str) -> Any:
    if name not in payload:
        raise ReceiptError(f"receipt payload has no {name!r} field")
    return payload[name]


def _fields(data: bytes) -> tuple[bytes, bytes]:
    """The payload bytes and signature of a receipt's COSE_Sign1, headers checked."""
    if type(data) is not bytes or not data:
        raise ReceiptError("receipt is empty")
    if len(data) > MAX_RECEIPT_SIZE:
        raise ReceiptError(f"receipt is {len(data)} bytes, the limit is {MAX_RECEIPT_SIZE}")
    try:
        outer = cbor.decode(data)
    except cbor.DecodeError as exc:
        raise ReceiptError(f"receipt is not deterministic CBOR: {exc}") from exc
    if type(outer) is not cbor.Tag or outer.number != cbor.COSE_SIGN1_TAG:
        raise ReceiptError("receipt is not a COSE_Sign1 (CBOR tag 18)")
    fields = outer.value
    if type(fields) is not list or len(fields) != 4:
        raise ReceiptError("COSE_Sign1 must be an array of 4 items")
    protected, unprotected, payload_bytes, signature = fields
    if protected != _PROTECTED:
        raise ReceiptError(
            f"protected header is not EdDSA with content type {RECEIPT_CONTENT_TYPE!r}: "
            "telemetry and registry entries are not receipts"
        )
    if (
        type(unprotected) is not dict
        or set(unprotected) != {4}
        or type(unprotected[4]) is not bytes
    ):
        raise ReceiptError("unprotected header must be exactly {4: kid}")
    if type(payload_bytes) is not bytes:
        raise ReceiptError("payload must be an attached byte string")
    if type(signature) is not bytes or len(signature) != 64:
        raise ReceiptError("signature must be a 64-byte byte string")
    return payload_bytes, signature


def decode_receipt(data: bytes) -> tuple[Receipt, bytes, bytes]:
    """The receipt, its payload bytes and signature, structure checked, signature not."""
    payload_bytes, signature = _fields(data)
    try:
        payload = cbor.decode(payload_bytes)
    except cbor.DecodeError as exc:
        raise ReceiptError(f"receipt payload is not deterministic CBOR: {exc}") from exc
    if type(payload) is not dict:
        raise ReceiptError(f"receipt payload must be a map, got {type(payload).__name__}")
    unknown = sorted(map(repr, set(payload) - _FIELDS))
    if unknown:
        raise ReceiptError(f"receipt payload has unknown fields {', '.join(unknown)}")
    version = _field(payload, "v")
    if type(version) is not int or version != RECEIPT_VERSION:
        raise ReceiptError(f"receipt version is {version!r}, only {RECEIPT_VERSION} is supported")
    receipt = Receipt(
        dev=_field(payload, "dev"),
        seq=_field(payload, "seq"),
        hash=_field(payload, "hash"),
        leaf=_field(payload, "leaf"),
        size=_field(payload, "size"),
    )
    return receipt, payload_bytes, signature


def verify_receipt(data: bytes, *, public_key: bytes, dev: str) -> Receipt:
    """Verify a receipt for device ``dev`` under the gateway's ``public_key``; return it."""
    if type(public_key) is not bytes or len(public_key) != 32:
        raise ValueError(f"an Ed25519 public key must be 32 bytes, got {len(public_key)}")
    receipt, payload_bytes, signature = decode_receipt(data)
    try:
        nacl.bindings.crypto_sign_open(signature + _sig_structure(payload_bytes), public_key)
    except nacl.exceptions.BadSignatureError as exc:
        raise ReceiptSignatureError(
            "receipt signature does not verify under the configured gateway key"
        ) from exc
    if receipt.dev != dev:
        raise ReceiptError(f"receipt is for device {receipt.dev!r}, not {dev!r}")
    return receipt
