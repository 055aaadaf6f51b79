"""Birth certificates: a manufacturer's signed statement of a device's id, kind and first key.

A certificate is a COSE_Sign1 (:mod:`ledger.message`) with the protected content type
``application/vnd.voltproof.birth+cbor``, ``kid`` = the manufacturer's key name, signed by
the manufacturer's Ed25519 key over a deterministic CBOR map with exactly these keys:

- ``dev`` (text): the device id; ``serial`` (text): the manufacturer's serial number;
- ``kind`` (text): ``"bus"`` or ``"pack"``; ``key`` (32 bytes): the device's Ed25519 public key;
- ``made_at`` (uint, Unix ms): when the key was made and certified.

Manufacturer verifier keys are written like note verifier keys
(``<name>+<hex key id>+<base64(0x01 ‖ public key)>``, :func:`ledger.note.parse_verifier_key`);
a certificate is checked against the keys whose name equals its ``kid``.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from .errors import VerificationError
from .message import (
    BIRTH_CONTENT_TYPE,
    MAX_SEQ,
    MessageError,
    decode_message,
    sign_birth_certificate,
)
from .note import VerifierKey

__all__ = [
    "BIRTH_FIELDS",
    "BirthCertificate",
    "BirthCertificateError",
    "BirthCertificateMismatchError",
    "BirthSignatureError",
    "MalformedBirthCertificateError",
    "MissingBirthCertificateError",
    "UnknownManufacturerError",
    "certify_device",
    "check_birth_certificate",
    "read_birth_certificate",
    "verify_birth_certificate",
]

BIRTH_FIELDS: Final = ("dev", "serial", "kind", "key", "made_at")
_KINDS: Final = ("bus", "pack")
_KEY_SIZE: Final = 32


class BirthCertificateError(VerificationError):
    """A device's birth certificate is missing, malformed, untrusted or for something else."""


class MalformedBirthCertificateError(BirthCertificateError):
    """The bytes are not a birth certificate (COSE, content type or claims)."""


class BirthCertificateMismatchError(BirthCertificateError):
    """The certificate is for another device id, kind or public key than the enrolment."""


class UnknownManufacturerError(BirthCertificateError):
    """The certificate's ``kid`` names no manufacturer key the verifier trusts."""


class BirthSignatureError(BirthCertificateError):
    """The certificate does not verify under the trusted key of the manufacturer it names."""


class MissingBirthCertificateError(BirthCertificateError):
    """An enrolment carries no certificate although the verifier requires one."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BirthCertificate:
    """The claims of a birth certificate and the manufacturer key name that signed them."""

    manufacturer: str
    device: str
    serial: str
    kind: str
    key: bytes
    made_at_ms: int


def certify_device(
    *, seed: bytes, manufacturer: str, device: str, serial: str, kind: str, key: bytes,
    made_at_ms: int,
) -> bytes:  # fmt: skip
    """A birth certificate for ``device`` signed by the manufacturer key ``seed`` (named
    ``manufacturer``). The claims are checked as :func:`read_birth_certificate` would."""
    claims = {"dev": device, "serial": serial, "kind": kind, "key": key, "made_at": made_at_ms}
    _check_claims(claims, "birth certificate")
    return sign_birth_certificate(claims, seed=seed, kid=manufacturer)


def _check_claims(claims: dict[str, object], where: str) -> None:
    missing = [name for name in BIRTH_FIELDS if name not in claims]
    if missing:
        raise MalformedBirthCertificateError(f"{where} has no {', '.join(map(repr, missing))}")
    extra = sorted(set(claims) - set(BIRTH_FIELDS))
    if extra:
        raise MalformedBirthCertificateError(f"{where} has unknown fields {extra}")
    for name in ("dev", "serial"):
        value = claims[name]
        if type(value) is not str or not value:
            raise MalformedBirthCertificateError(f"{where}: {name!r} must be non-empty text")
    if claims["kind"] not in _KINDS:
        raise MalformedBirthCertificateError(
            f"{where}: kind {claims['kind']!r} is not one of {list(_KINDS)}"
        )
    key = claims["key"]
    if type(key) is not bytes or len(key) != _KEY_SIZE:
        raise MalformedBirthCertificateError(f"{where}: 'key' must be 32 bytes")
    made_at = claims["made_at"]
    if type(made_at) is not int or not 0 <= made_at <= MAX_SEQ:
        raise MalformedBirthCertificateError(
            f"{where}: 'made_at' must be Unix ms in 0..2**63-1, got {made_at!r}"
        )


def read_birth_certificate(data: bytes, *, where: str = "birth certificate") -> BirthCertificate:
    """Decode a certificate's claims (signature not checked); raise if it is not one."""
    try:
        message = decode_message(data)
    except MessageError as exc:
        raise MalformedBirthCertificateError(f"{where}: {exc}") from exc
    if message.content_type != BIRTH_CONTENT_TYPE:
        what = message.content_type or "telemetry"
        raise MalformedBirthCertificateError(
            f"{where} has content type {what!r}, not {BIRTH_CONTENT_TYPE!r}"
        )
    claims = message.payload
    _check_claims(claims, where)
    return BirthCertificate(
        manufacturer=message.kid,
        device=claims["dev"],
        serial=claims["serial"],
        kind=claims["kind"],
        key=claims["key"],
        made_at_ms=claims["made_at"],
    )


def check_birth_certificate(
    data: bytes, *, device: str, kind: str, key: bytes, where: str = "birth certificate"
) -> BirthCertificate:
    """Decode a certificate and check it names ``device``, ``kind`` and ``key`` (no signature)."""
    certificate = read_birth_certificate(data, where=where)
    for name, claimed, enrolled in (
        ("device id", certificate.device, device),
        ("kind", certificate.kind, kind),
        ("public key", _b64(certificate.key), _b64(key)),
    ):
        if claimed != enrolled:
            raise BirthCertificateMismatchError(
                f"{where} is for {name} {claimed!r}, the enrolment says {enrolled!r}"
            )
    return certificate


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


def verify_birth_certificate(
    data: bytes,
    *,
    manufacturers: Sequence[VerifierKey],
    device: str,
    kind: str,
    key: bytes,
    where: str = "birth certificate",
) -> BirthCertificate:
    """Check a certificate's claims and its signature by one of ``manufacturers``."""
    certificate = check_birth_certificate(data, device=device, kind=kind, key=key, where=where)
    named = [m for m in manufacturers if m.name == certificate.manufacturer]
    if not named:
        trusted = sorted({m.name for m in manufacturers})
        raise UnknownManufacturerError(
            f"{where} is signed by manufacturer {certificate.manufacturer!r}, "
            f"not by a trusted one {trusted}"
        )
    message = decode_message(data)
    for manufacturer in named:
        try:
            message.verify_signature(manufacturer.public_key)
        except MessageError:
            continue
        return certificate
    raise BirthSignatureError(
        f"{where} does not verify under the key of manufacturer {certificate.manufacturer!r}"
    )
