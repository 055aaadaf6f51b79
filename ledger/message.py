"""The signed message (contract 1): a COSE_Sign1 (RFC 9052) with Ed25519 over deterministic CBOR.

Wire form, written and accepted only in deterministic CBOR (RFC 8949 §4.2.1)::

    18([ h'a10127',            / protected {1: -8} (alg EdDSA)          /
         {4: h'<device id>'},  / unprotected kid = device id, UTF-8     /
         h'<payload>',         / deterministic CBOR map                  /
         h'<64-byte Ed25519 signature over Sig_structure>' ])

The signature covers ``["Signature1", protected, h'', payload]``. Telemetry carries no
content type; registry entries (enrolment, rotation, revocation) carry the protected content
type :data:`REGISTRY_CONTENT_TYPE` and birth certificates (``ledger.birth``) the content type
:data:`BIRTH_CONTENT_TYPE`, so none verifies as another.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import nacl.bindings
import nacl.exceptions

from . import cbor
from .chain import genesis_problem
from .errors import VerificationError
from .protocol import MAX_MESSAGE_SIZE, MAX_PAYLOAD_SIZE

__all__ = [
    "BIRTH_CONTENT_TYPE",
    "FORMAT_VERSION",
    "MAX_MESSAGE_SIZE",
    "MAX_PAYLOAD_SIZE",
    "MAX_SEQ",
    "REGISTRY_CONTENT_TYPE",
    "BadSignatureError",
    "InvalidFieldError",
    "KidMismatchError",
    "MalformedMessageError",
    "MessageDuplicateKeyError",
    "MessageError",
    "MessageIndefiniteLengthError",
    "MessageTrailingBytesError",
    "MissingKidError",
    "MissingMessageFieldError",
    "NonDeterministicEncodingError",
    "PayloadTooLargeError",
    "ProtocolBoundError",
    "SignedMessage",
    "WrongAlgorithmError",
    "WrongContentTypeError",
    "WrongTagError",
    "decode_message",
    "message_hash",
    "sign_birth_certificate",
    "sign_message",
    "sign_registry_entry",
    "verify_message",
    "verify_registry_entry",
]

FORMAT_VERSION: Final = 1
REGISTRY_CONTENT_TYPE: Final = "application/vnd.voltproof.registry+cbor"
BIRTH_CONTENT_TYPE: Final = "application/vnd.voltproof.birth+cbor"
MAX_SEQ: Final = 2**63 - 1
"""Largest ``seq`` (and ``t``) a message may carry: every store keeps them as signed 64-bit."""

_ALG_LABEL: Final = 1
_CONTENT_TYPE_LABEL: Final = 3
_KID_LABEL: Final = 4
_EDDSA: Final = -8
_TELEMETRY_PROTECTED: Final = cbor.encode({_ALG_LABEL: _EDDSA})
_REGISTRY_PROTECTED: Final = cbor.encode(
    {_ALG_LABEL: _EDDSA, _CONTENT_TYPE_LABEL: REGISTRY_CONTENT_TYPE}
)
_BIRTH_PROTECTED: Final = cbor.encode({_ALG_LABEL: _EDDSA, _CONTENT_TYPE_LABEL: BIRTH_CONTENT_TYPE})
_CONTENT_TYPES: Final = {
    _REGISTRY_PROTECTED: REGISTRY_CONTENT_TYPE,
    _BIRTH_PROTECTED: BIRTH_CONTENT_TYPE,
}
_WHAT: Final = {
    REGISTRY_CONTENT_TYPE: "a registry entry",
    BIRTH_CONTENT_TYPE: "a birth certificate",
}
_SIG_CONTEXT: Final = cbor.encode("Signature1")
# the fixed bytes before the payload in Sig_structure / before the kid in the message
_SIG_PREFIXES: Final = {
    protected: b"\x84" + _SIG_CONTEXT + cbor.byte_string_head(len(protected)) + protected + b"\x40"
    for protected in (_TELEMETRY_PROTECTED, _REGISTRY_PROTECTED, _BIRTH_PROTECTED)
}
_COSE_PREFIXES: Final = {
    protected: b"\xd2\x84" + cbor.byte_string_head(len(protected)) + protected + b"\xa1\x04"
    for protected in (_TELEMETRY_PROTECTED, _REGISTRY_PROTECTED, _BIRTH_PROTECTED)
}
_SIGNATURE_HEAD: Final = b"\x58\x40"
_SIGNATURE_SIZE: Final = 64
_KEY_SIZE: Final = 32


class MessageError(VerificationError):
    """A message is not a valid voltproof COSE_Sign1; the message says exactly why."""


class WrongTagError(MessageError):
    """The message is not CBOR tag 18 (COSE_Sign1)."""


class WrongAlgorithmError(MessageError):
    """The protected header does not name EdDSA (-8)."""


class MissingKidError(MessageError):
    """The unprotected header has no kid (label 4)."""


class KidMismatchError(MessageError):
    """The kid is not the payload's device id."""


class MissingMessageFieldError(MessageError):
    """A required payload field is absent."""


class InvalidFieldError(MessageError):
    """A payload field has the wrong type or value."""


class NonDeterministicEncodingError(MessageError):
    """Some CBOR in the message is not in deterministic encoding."""


class MessageIndefiniteLengthError(MessageError):
    """Some CBOR in the message uses an indefinite length."""


class MessageDuplicateKeyError(MessageError):
    """A CBOR map in the message repeats a key."""


class MessageTrailingBytesError(MessageError):
    """Bytes follow the COSE_Sign1 item or a header or payload item."""


class PayloadTooLargeError(MessageError):
    """The payload or the whole message exceeds its size bound."""


class ProtocolBoundError(InvalidFieldError):
    """``seq`` or ``t`` is beyond :data:`MAX_SEQ` (the protocol bound, docs/protocol.md)."""


class BadSignatureError(MessageError):
    """The Ed25519 signature does not verify under the given public key."""


class WrongContentTypeError(MessageError):
    """A registry entry, birth certificate or telemetry message offered as another."""


class MalformedMessageError(MessageError):
    """Any other structural problem."""


_CBOR_ERRORS: Final[dict[type[cbor.DecodeError], type[MessageError]]] = {
    cbor.NonDeterministicError: NonDeterministicEncodingError,
    cbor.IndefiniteLengthError: MessageIndefiniteLengthError,
    cbor.DuplicateKeyError: MessageDuplicateKeyError,
    cbor.TrailingBytesError: MessageTrailingBytesError,
}


def _decode(data: bytes, what: str) -> Any:
    """Strictly decode ``data``, translating codec errors into message errors."""
    try:
        return cbor.decode(data)
    except cbor.DecodeError as exc:
        error = _CBOR_ERRORS.get(type(exc), MalformedMessageError)
        raise error(f"{what}: {exc}") from exc


def _bstr(data: bytes) -> bytes:
    """The deterministic CBOR byte-string encoding of ``data``."""
    size = len(data)
    if size < 24:
        return bytes((0x40 | size,)) + data
    if size < 0x100:
        return bytes((0x58, size)) + data
    if size < 0x1_0000:
        return b"\x59" + size.to_bytes(2, "big") + data
    return b"\x5a" + size.to_bytes(4, "big") + data


def _sig_structure(protected: bytes, payload: bytes) -> bytes:
    """RFC 9052 §4.4 ``["Signature1", protected, h'', payload]`` in deterministic CBOR."""
    prefix = _SIG_PREFIXES.get(protected)
    if prefix is None:
        prefix = b"\x84" + _SIG_CONTEXT + _bstr(protected) + b"\x40"
    return prefix + cbor.byte_string_head(len(payload)) + payload


@lru_cache(maxsize=16)
def _secret_key(seed: bytes) -> bytes:
    """libsodium's 64-byte secret key for ``seed`` (cached: deriving it is a scalar multiply)."""
    if type(seed) is not bytes or len(seed) != 32:
        raise ValueError("an Ed25519 seed must be 32 bytes")
    _, secret = nacl.bindings.crypto_sign_seed_keypair(seed)
    return bytes(secret)


def _sign(*, protected: bytes, payload_bytes: bytes, kid: bytes, seed: bytes) -> bytes:
    if len(payload_bytes) > MAX_PAYLOAD_SIZE:
        raise PayloadTooLargeError(
            f"payload is {len(payload_bytes)} bytes, the limit is {MAX_PAYLOAD_SIZE}"
        )
    payload_head = cbor.byte_string_head(len(payload_bytes))
    signed = nacl.bindings.crypto_sign(
        _SIG_PREFIXES[protected] + payload_head + payload_bytes, _secret_key(seed)
    )
    return b"".join(
        (
            _COSE_PREFIXES[protected],
            _bstr(kid),
            payload_head,
            payload_bytes,
            _SIGNATURE_HEAD,
            signed[:_SIGNATURE_SIZE],
        )
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedMessage:
    """A structurally valid message whose signature has not been checked yet."""

    kid: str
    payload: dict[str, Any]
    protected: bytes
    payload_bytes: bytes
    signature: bytes
    content_type: str | None

    def verify_signature(self, public_key: bytes) -> None:
        """Raise :class:`BadSignatureError` unless the signature verifies under ``public_key``."""
        _verify_signature(
            kid=self.kid,
            protected=self.protected,
            payload_bytes=self.payload_bytes,
            signature=self.signature,
            public_key=public_key,
        )


def _verify_signature(
    *, kid: str, protected: bytes, payload_bytes: bytes, signature: bytes, public_key: bytes
) -> None:
    if len(public_key) != _KEY_SIZE:
        raise ValueError(f"an Ed25519 public key must be 32 bytes, got {len(public_key)}")
    signed = signature + _sig_structure(protected, payload_bytes)
    try:
        nacl.bindings.crypto_sign_open(signed, public_key)
    except nacl.exceptions.BadSignatureError as exc:
        raise BadSignatureError(
            f"signature of the message from {kid!r} does not verify under the given key"
        ) from exc


def _check_telemetry(payload: Mapping[str, Any]) -> None:
    """Raise unless ``payload`` carries valid ``v``, ``dev``, ``seq``, ``prev`` and ``t``."""
    for field in ("v", "dev", "seq", "prev", "t"):
        if field not in payload:
            raise MissingMessageFieldError(f"payload has no {field!r} field")
    if type(payload["v"]) is not int or payload["v"] != FORMAT_VERSION:
        raise InvalidFieldError(
            f"'v' is {payload['v']!r}, the only supported format version is {FORMAT_VERSION}"
        )
    dev = payload["dev"]
    if type(dev) is not str or not dev:
        raise InvalidFieldError(f"'dev' must be a non-empty text string, got {dev!r}")
    for field in ("seq", "t"):
        value = payload[field]
        if type(value) is not int or value < 0:
            raise InvalidFieldError(f"{field!r} must be an unsigned integer, got {value!r}")
        if value > MAX_SEQ:
            raise ProtocolBoundError(f"{field!r} is {value}, the protocol bound is 2**63 - 1")
    prev = payload["prev"]
    if type(prev) is not bytes or len(prev) != 32:
        raise InvalidFieldError(f"'prev' must be 32 bytes, got {prev!r}")
    problem = genesis_problem(payload["seq"], prev)
    if problem is not None:
        raise InvalidFieldError(problem)


def sign_message(payload: Mapping[str, Any], *, seed: bytes) -> bytes:
    """Sign a telemetry payload; the kid is ``payload["dev"]``. Returns the COSE bytes."""
    _check_telemetry(payload)
    payload_bytes = cbor.encode(payload if type(payload) is dict else dict(payload))
    kid = payload["dev"].encode("utf-8")
    return _sign(protected=_TELEMETRY_PROTECTED, payload_bytes=payload_bytes, kid=kid, seed=seed)


def sign_registry_entry(entry: Mapping[str, Any], *, seed: bytes, kid: str) -> bytes:
    """Sign a registry entry with the registry content type. Returns the COSE bytes."""
    if not kid:
        raise MissingKidError("a registry entry needs a non-empty kid")
    payload_bytes = cbor.encode(dict(entry))
    return _sign(
        protected=_REGISTRY_PROTECTED,
        payload_bytes=payload_bytes,
        kid=kid.encode("utf-8"),
        seed=seed,
    )


def sign_birth_certificate(claims: Mapping[str, Any], *, seed: bytes, kid: str) -> bytes:
    """Sign a birth certificate's claims with the birth content type (``ledger.birth``)."""
    if not kid:
        raise MissingKidError("a birth certificate needs a non-empty kid")
    return _sign(
        protected=_BIRTH_PROTECTED,
        payload_bytes=cbor.encode(dict(claims)),
        kid=kid.encode("utf-8"),
        seed=seed,
    )


def _content_type(protected: bytes) -> str | None:
    if protected == _TELEMETRY_PROTECTED:
        return None
    known = _CONTENT_TYPES.get(protected)
    if known is not None:
        return known
    header = _decode(protected, "protected header") if protected else {}
    if type(header) is not dict:
        raise MalformedMessageError(f"protected header must be a map, got {type(header).__name__}")
    if _ALG_LABEL not in header:
        raise WrongAlgorithmError("protected header has no algorithm (label 1), expected EdDSA")
    if header[_ALG_LABEL] != _EDDSA or type(header[_ALG_LABEL]) is not int:
        raise WrongAlgorithmError(
            f"algorithm is {header[_ALG_LABEL]!r}, only EdDSA (-8) is accepted"
        )
    unknown = sorted(map(repr, set(header) - {_ALG_LABEL, _CONTENT_TYPE_LABEL}))
    if unknown:
        raise MalformedMessageError(f"protected header has unsupported labels {', '.join(unknown)}")
    if _CONTENT_TYPE_LABEL not in header:
        return None
    content_type = header[_CONTENT_TYPE_LABEL]
    if content_type not in _CONTENT_TYPES.values():
        raise WrongContentTypeError(
            f"content type {content_type!r} is not {REGISTRY_CONTENT_TYPE!r} or "
            f"{BIRTH_CONTENT_TYPE!r} (or absent)"
        )
    return str(content_type)


def _kid(unprotected: Any) -> str:
    if type(unprotected) is not dict:
        raise MalformedMessageError(
            f"unprotected header must be a map, got {type(unprotected).__name__}"
        )
    if _ALG_LABEL in unprotected:
        raise WrongAlgorithmError("the algorithm must be in the protected header, not unprotected")
    if _KID_LABEL not in unprotected:
        raise MissingKidError("unprotected header has no kid (label 4)")
    unknown = sorted(map(repr, set(unprotected) - {_KID_LABEL}))
    if unknown:
        raise MalformedMessageError(
            f"unprotected header has unsupported labels {', '.join(unknown)}"
        )
    kid = unprotected[_KID_LABEL]
    if type(kid) is not bytes or not kid:
        raise MissingKidError(f"kid must be a non-empty byte string, got {kid!r}")
    try:
        return kid.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedMessageError(f"kid {kid!r} is not UTF-8") from exc


def _read_bstr(data: bytes, pos: int) -> tuple[bytes, int] | None:
    """A deterministic byte string at ``pos`` and the offset after it, or ``None``."""
    if pos >= len(data) or data[pos] >> 5 != 2:
        return None
    info = data[pos] & 0x1F
    if info < 24:
        size, start = info, pos + 1
    elif 24 <= info <= 26:
        width = 1 << (info - 24)
        start = pos + 1 + width
        size = int.from_bytes(data[pos + 1 : start], "big")
        if start > len(data) or size < (24, 0x100, 0x1_0000)[info - 24]:
            return None
    else:
        return None
    end = start + size
    if end > len(data):
        return None
    return data[start:end], end


def _envelope(data: bytes) -> list[Any] | None:
    """The four fields of the usual ``18([bstr, {4: bstr}, bstr, bstr])`` shape, or ``None``.

    A fast path only: anything else (including every malformed input) goes through the
    strict codec, which names the problem.
    """
    if data[:2] != b"\xd2\x84":
        return None
    protected = _read_bstr(data, 2)
    if protected is None or data[protected[1] : protected[1] + 2] != b"\xa1\x04":
        return None
    kid = _read_bstr(data, protected[1] + 2)
    payload = None if kid is None else _read_bstr(data, kid[1])
    signature = None if payload is None else _read_bstr(data, payload[1])
    if kid is None or payload is None or signature is None or signature[1] != len(data):
        return None
    return [protected[0], {_KID_LABEL: kid[0]}, payload[0], signature[0]]


def _structure(data: bytes) -> list[Any]:
    """The four COSE_Sign1 fields of ``data`` (checks size and tag first)."""
    if len(data) > MAX_MESSAGE_SIZE:
        raise PayloadTooLargeError(f"message is {len(data)} bytes, the limit is {MAX_MESSAGE_SIZE}")
    if not data:
        raise MalformedMessageError("message is empty")
    if data[0] != 0xD2:
        if data[0] >> 5 == 6:
            raise WrongTagError(f"message starts with a tag other than 18 (byte {data[0]:#04x})")
        raise WrongTagError(f"message is not CBOR tag 18 (COSE_Sign1): first byte {data[0]:#04x}")
    fields = _envelope(data)
    if fields is not None:
        return fields
    outer = _decode(data, "message")
    fields = outer.value
    if type(fields) is not list or len(fields) != 4:
        raise MalformedMessageError("COSE_Sign1 must be an array of 4 items")
    return fields


_Parts = tuple[str, dict[str, Any], bytes, bytes, bytes, str | None]


def _parts(data: bytes) -> _Parts:
    """kid, payload, protected, payload bytes, signature and content type, all checked."""
    protected, unprotected, payload_bytes, signature = _structure(data)
    if type(protected) is not bytes:
        raise MalformedMessageError("protected header must be a byte string")
    content_type = _content_type(protected)
    kid = _kid(unprotected)
    if type(payload_bytes) is not bytes:
        raise MalformedMessageError("payload must be an attached byte string")
    if len(payload_bytes) > MAX_PAYLOAD_SIZE:
        raise PayloadTooLargeError(
            f"payload is {len(payload_bytes)} bytes, the limit is {MAX_PAYLOAD_SIZE}"
        )
    if type(signature) is not bytes or len(signature) != _SIGNATURE_SIZE:
        raise MalformedMessageError("signature must be a 64-byte byte string")
    payload = _decode(payload_bytes, "payload")
    if type(payload) is not dict:
        raise MalformedMessageError(f"payload must be a map, got {type(payload).__name__}")
    if any(type(key) is not str for key in payload):
        raise InvalidFieldError("payload keys must all be text strings")
    if content_type is None:
        _check_telemetry(payload)
        if payload["dev"] != kid:
            raise KidMismatchError(f"kid {kid!r} is not the payload's device id {payload['dev']!r}")
    return kid, payload, protected, payload_bytes, signature, content_type


def decode_message(data: bytes) -> SignedMessage:
    """Decode and check a message's structure and payload, without checking the signature."""
    kid, payload, protected, payload_bytes, signature, content_type = _parts(data)
    return SignedMessage(
        kid=kid,
        payload=payload,
        protected=protected,
        payload_bytes=payload_bytes,
        signature=signature,
        content_type=content_type,
    )


def verify_message(data: bytes, *, public_key: bytes) -> dict[str, Any]:
    """Verify a telemetry message under ``public_key`` and return its payload."""
    kid, payload, protected, payload_bytes, signature, content_type = _parts(data)
    if content_type is not None:
        raise WrongContentTypeError(f"message from {kid!r} is {_WHAT[content_type]}, not telemetry")
    _verify_signature(
        kid=kid,
        protected=protected,
        payload_bytes=payload_bytes,
        signature=signature,
        public_key=public_key,
    )
    return payload


def verify_registry_entry(data: bytes, *, public_key: bytes) -> dict[str, Any]:
    """Verify a registry entry under ``public_key`` and return the entry."""
    message = decode_message(data)
    if message.content_type != REGISTRY_CONTENT_TYPE:
        what = _WHAT[message.content_type] if message.content_type else "telemetry"
        raise WrongContentTypeError(f"message from {message.kid!r} is {what}, not a registry entry")
    message.verify_signature(public_key)
    return message.payload


def message_hash(data: bytes) -> bytes:
    """SHA-256 of the complete COSE bytes: what the next message's ``prev`` holds."""
    return hashlib.sha256(data).digest()
