"""C2SP tlog-cosignature ``cosignature/v1``: timestamped Ed25519 witness cosignatures.

A cosignature is a signed-note signature line ``— <name> <base64(key id ‖ timestamp ‖ sig)>``
added to a checkpoint note, where

- key id = SHA-256(name ‖ 0x0A ‖ 0x04 ‖ 32-byte Ed25519 public key)[:4] (signature type 0x04),
- timestamp = the POSIX time of signing, a big-endian uint64 not above 2^63 - 1,
- sig = Ed25519 over ``cosignature/v1\\ntime <timestamp>\\n`` followed by the whole note
  body (final newline included, signature lines excluded).

Witness verifier keys are ``<name>+<hex key id>+<base64(0x04 ‖ public key)>``. There is no
clock here: the caller passes the timestamp to sign and, to refuse cosignatures from the
future, the latest acceptable one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

import nacl.bindings
import nacl.exceptions

from .errors import VerificationError
from .note import InvalidKeyNameError, MalformedNoteError, check_key_name, split_note

__all__ = [
    "COSIGNATURE_TYPE",
    "MAX_TIMESTAMP",
    "Cosignature",
    "CosignatureError",
    "CosignatureSignatureError",
    "Cosigner",
    "FutureCosignatureError",
    "MalformedCosignatureError",
    "MalformedWitnessKeyError",
    "MissingCosignatureError",
    "WitnessKey",
    "add_cosignature",
    "cosignature_line",
    "cosigned_message",
    "parse_witness_key",
    "verify_cosignature",
    "verify_cosignatures",
    "witness_key_id",
    "witness_verifier_key",
]

COSIGNATURE_TYPE: Final = 0x04
MAX_TIMESTAMP: Final = 2**63 - 1
_HEADER: Final = "cosignature/v1\n"
_DASH: Final = "\u2014 "
_SIGNATURE_SIZE: Final = 4 + 8 + 64
_HEX_KEY_ID: Final = re.compile(r"[0-9a-f]{8}")


class CosignatureError(VerificationError):
    """A cosignature or witness key is not valid."""


class MalformedWitnessKeyError(CosignatureError):
    """A witness key string is not ``<name>+<hex key id>+<base64(0x04 ‖ key)>``."""


class MalformedCosignatureError(CosignatureError):
    """A line carrying a witness's name and key id is not a cosignature/v1 signature."""


class CosignatureSignatureError(CosignatureError):
    """A cosignature by the witness key (name and key id match) does not verify."""


class MissingCosignatureError(CosignatureError):
    """The note carries no cosignature by the witness key."""


class FutureCosignatureError(CosignatureError):
    """A cosignature's timestamp is later than the latest time the caller accepts."""

    def __init__(self, *, timestamp: int, not_after: int, key: str) -> None:
        super().__init__(f"cosignature by {key} has timestamp {timestamp}, later than {not_after}")
        self.timestamp = timestamp
        self.not_after = not_after


def witness_key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key id of a cosigner: SHA-256(name ‖ 0x0A ‖ 0x04 ‖ public key)[:4]."""
    data = name.encode("utf-8") + b"\n" + bytes((COSIGNATURE_TYPE,)) + public_key
    return hashlib.sha256(data).digest()[:4]


@dataclass(frozen=True, slots=True, kw_only=True)
class WitnessKey:
    """A parsed cosignature/v1 (Ed25519) witness verifier key."""

    name: str
    key_id: bytes
    public_key: bytes

    def __post_init__(self) -> None:
        try:
            check_key_name(self.name)
        except InvalidKeyNameError as exc:
            raise MalformedWitnessKeyError(f"witness key name: {exc}") from exc
        if type(self.public_key) is not bytes or len(self.public_key) != 32:
            raise MalformedWitnessKeyError(
                f"Ed25519 public key must be 32 bytes, got {len(self.public_key)}"
            )
        if self.key_id != witness_key_id(self.name, self.public_key):
            raise MalformedWitnessKeyError(
                f"key id {self.key_id.hex()} does not match name {self.name!r} and its key"
            )

    @classmethod
    def from_public_key(cls, name: str, public_key: bytes) -> WitnessKey:
        """The witness key of ``name`` and ``public_key`` (its key id computed)."""
        try:
            check_key_name(name)
        except InvalidKeyNameError as exc:
            raise MalformedWitnessKeyError(f"witness key name: {exc}") from exc
        return cls(name=name, key_id=witness_key_id(name, public_key), public_key=public_key)

    def __str__(self) -> str:
        encoded = base64.b64encode(bytes((COSIGNATURE_TYPE,)) + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id.hex()}+{encoded}"


def witness_verifier_key(name: str, public_key: bytes) -> str:
    """The vkey ``<name>+<hex key id>+<base64(0x04 ‖ public key)>`` of a witness."""
    return str(WitnessKey.from_public_key(name, public_key))


def parse_witness_key(text: str) -> WitnessKey:
    """Parse a witness vkey with signature type 0x04, checking its key id."""
    parts = text.split("+", 2)  # the base64 field may itself contain '+'
    if len(parts) != 3:
        raise MalformedWitnessKeyError(
            f"witness key must have 3 '+'-separated fields, got {len(parts)}"
        )
    name, hex_id, encoded = parts
    if not _HEX_KEY_ID.fullmatch(hex_id):
        raise MalformedWitnessKeyError("its key id (second field) is not 8 lowercase hex digits")
    try:
        raw = base64.b64decode(encoded.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise MalformedWitnessKeyError("witness key is not valid base64") from exc
    if base64.b64encode(raw).decode("ascii") != encoded:
        raise MalformedWitnessKeyError("witness key is not canonical base64")
    if not raw or raw[0] != COSIGNATURE_TYPE:
        raise MalformedWitnessKeyError(
            "witness key is not a cosignature/v1 key (signature type byte 0x04)"
        )
    return WitnessKey(name=name, key_id=bytes.fromhex(hex_id), public_key=raw[1:])


def _check_timestamp(timestamp: int) -> None:
    if type(timestamp) is not int or not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ValueError(f"timestamp {timestamp!r} is not between 0 and 2^63 - 1")


def cosigned_message(body: str, *, timestamp: int) -> bytes:
    """The exact bytes a cosignature/v1 signs: header, time line, then the checkpoint body."""
    _check_timestamp(timestamp)
    if not body.endswith("\n"):
        raise MalformedNoteError("checkpoint body does not end with a newline")
    return f"{_HEADER}time {timestamp}\n{body}".encode()


@dataclass(frozen=True, slots=True)
class Cosigner:
    """A witness signing key expanded once, for a witness that cosigns many checkpoints.

    Deriving the Ed25519 secret key and the key id from the seed costs about as much as the
    signature itself; a long-running witness does it once here instead of per cosignature.
    """

    name: str
    key_id: bytes = field(repr=False)
    _secret: bytes = field(repr=False)

    @classmethod
    def from_seed(cls, *, name: str, seed: bytes) -> Cosigner:
        """The cosigner of key ``name`` with the 32-byte Ed25519 ``seed``."""
        check_key_name(name)
        if type(seed) is not bytes or len(seed) != 32:
            raise ValueError("an Ed25519 seed must be 32 bytes")
        public_key, secret = nacl.bindings.crypto_sign_seed_keypair(seed)
        return cls(name, witness_key_id(name, public_key), secret)

    def line(self, body: str, *, timestamp: int) -> str:
        """The signature line ``— <name> <base64>\\n`` cosigning ``body`` at ``timestamp``."""
        message = cosigned_message(body, timestamp=timestamp)
        signature = nacl.bindings.crypto_sign(message, self._secret)[:64]
        raw = self.key_id + struct.pack(">Q", timestamp) + signature
        return f"{_DASH}{self.name} {base64.b64encode(raw).decode('ascii')}\n"


def cosignature_line(body: str, *, name: str, seed: bytes, timestamp: int) -> str:
    """The signature line ``— <name> <base64>\\n`` cosigning ``body`` at ``timestamp``."""
    return Cosigner.from_seed(name=name, seed=seed).line(body, timestamp=timestamp)


def add_cosignature(note: str, *, name: str, seed: bytes, timestamp: int) -> str:
    """``note`` (a signed checkpoint) with this witness's cosignature line appended."""
    body, _ = split_note(note)
    return note + cosignature_line(body, name=name, seed=seed, timestamp=timestamp)


@dataclass(frozen=True, slots=True, kw_only=True)
class Cosignature:
    """One cosignature line by a known witness, parsed but not yet verified."""

    name: str
    key_id: bytes
    timestamp: int
    signature: bytes = field(repr=False)


def _lines_by(note: str, key: WitnessKey) -> tuple[str, list[Cosignature]]:
    body, lines = split_note(note)
    found = []
    for name, key_id, raw in lines:
        if name != key.name or key_id != key.key_id:
            continue  # lines by other keys are ignored (c2sp.org/signed-note)
        if len(raw) != _SIGNATURE_SIZE - 4:
            raise MalformedCosignatureError(
                f"cosignature by {key.name}+{key.key_id.hex()} is {len(raw) + 4} bytes, "
                f"want {_SIGNATURE_SIZE}"
            )
        (timestamp,) = struct.unpack(">Q", raw[:8])
        if timestamp > MAX_TIMESTAMP:
            raise MalformedCosignatureError(
                f"cosignature by {key.name}+{key.key_id.hex()} has timestamp {timestamp}, "
                "above 2^63 - 1"
            )
        found.append(Cosignature(name=name, key_id=key_id, timestamp=timestamp, signature=raw[8:]))
    return body, found


def verify_cosignature(
    note: str, *, witness_key: str | WitnessKey, not_after: int | None = None
) -> int:
    """Verify the cosignature(s) of ``witness_key`` on ``note``; return the earliest timestamp.

    Every line by the key must verify. ``not_after`` (a POSIX time the caller chooses, e.g.
    now plus a clock skew) refuses timestamps after it.
    """
    key = witness_key if isinstance(witness_key, WitnessKey) else parse_witness_key(witness_key)
    body, found = _lines_by(note, key)
    if not found:
        raise MissingCosignatureError(f"note has no cosignature by {key.name}+{key.key_id.hex()}")
    for cosignature in found:
        message = cosigned_message(body, timestamp=cosignature.timestamp)
        try:
            nacl.bindings.crypto_sign_open(cosignature.signature + message, key.public_key)
        except (nacl.exceptions.BadSignatureError, ValueError) as exc:
            raise CosignatureSignatureError(
                f"cosignature by {key.name}+{key.key_id.hex()} at time "
                f"{cosignature.timestamp} does not verify"
            ) from exc
        if not_after is not None and cosignature.timestamp > not_after:
            raise FutureCosignatureError(
                timestamp=cosignature.timestamp, not_after=not_after, key=str(key)
            )
    return min(cosignature.timestamp for cosignature in found)


def verify_cosignatures(
    note: str, *, witness_keys: Iterable[str | WitnessKey], not_after: int | None = None
) -> dict[str, int]:
    """The earliest verified timestamp per witness vkey that cosigned ``note``.

    Witnesses without a line are left out (a quorum is the caller's policy); a line by a
    listed witness that does not verify raises.
    """
    timestamps = {}
    for given in witness_keys:
        key = given if isinstance(given, WitnessKey) else parse_witness_key(given)
        try:
            timestamps[str(key)] = verify_cosignature(note, witness_key=key, not_after=not_after)
        except MissingCosignatureError:
            continue
    return timestamps
