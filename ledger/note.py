"""C2SP signed notes (c2sp.org/signed-note) with Ed25519 signatures (type 0x01).

A signed note is a UTF-8 text ending in a newline, a blank line, then one or more lines
``— <key name> <base64(4-byte key id ‖ 64-byte signature)>`` (U+2014 em dash, space).
The signature covers the text exactly, final newline included. Verifier keys are written
``<name>+<hex key id>+<base64(0x01 ‖ 32-byte public key)>`` with
key id = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4].
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Final

import nacl.bindings
import nacl.exceptions

from .errors import VerificationError

__all__ = [
    "ED25519_TYPE",
    "MAX_SIGNATURES",
    "InvalidKeyNameError",
    "MalformedNoteError",
    "MalformedVerifierKeyError",
    "NoteError",
    "NoteSignatureError",
    "UnverifiedNoteError",
    "VerifierKey",
    "add_signature",
    "check_key_name",
    "key_id",
    "parse_verifier_key",
    "sign_note",
    "split_note",
    "verifier_key",
    "verify_note",
]

ED25519_TYPE: Final = 0x01
MAX_SIGNATURES: Final = 100
"""Most signature lines accepted in one note (the spec requires at least 16)."""

_DASH: Final = "\u2014 "
_CONTROL: Final = re.compile(r"[\x00-\x09\x0b-\x1f]")
_SPACE: Final = re.compile(r"\s")
"""Whitespace as ``str.isspace`` defines it (``re``'s ``\\s`` on str patterns: the same set)."""
_HEX_KEY_ID: Final = re.compile(r"[0-9a-f]{8}")


class NoteError(VerificationError):
    """A signed note, verifier key or key name is not valid."""


class MalformedNoteError(NoteError):
    """The note is not in signed-note syntax; the message names the first problem."""


class MalformedVerifierKeyError(NoteError):
    """A verifier key string is not ``<name>+<hex key id>+<base64(0x01 ‖ key)>``."""


class InvalidKeyNameError(NoteError):
    """A key name is empty or holds a space or a plus sign."""


class NoteSignatureError(NoteError):
    """A signature line made by the trusted key (name and key id match) does not verify."""


class UnverifiedNoteError(NoteError):
    """No signature line of the note was made by the trusted key."""


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifierKey:
    """A parsed Ed25519 verifier key."""

    name: str
    key_id: bytes
    public_key: bytes

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if len(self.public_key) != 32:
            raise MalformedVerifierKeyError(
                f"Ed25519 public key must be 32 bytes, got {len(self.public_key)}"
            )
        if self.key_id != key_id(self.name, self.public_key):
            raise MalformedVerifierKeyError(
                f"key id {self.key_id.hex()} does not match name {self.name!r} and its key"
            )

    def __str__(self) -> str:
        return verifier_key(self.name, self.public_key)


def check_key_name(name: str) -> None:
    """Raise :class:`InvalidKeyNameError` unless ``name`` is a valid signed-note key name."""
    if not name:
        raise InvalidKeyNameError("key name is empty")
    if "+" in name:
        raise InvalidKeyNameError(f"key name {name!r} contains '+'")
    if _SPACE.search(name):
        raise InvalidKeyNameError(f"key name {name!r} contains a space")
    if _CONTROL.search(name) or not name.isprintable():
        raise InvalidKeyNameError(f"key name {name!r} contains a control character")


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key id: SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]."""
    data = name.encode("utf-8") + b"\n" + bytes((ED25519_TYPE,)) + public_key
    return hashlib.sha256(data).digest()[:4]


def verifier_key(name: str, public_key: bytes) -> str:
    """The verifier key string ``<name>+<hex key id>+<base64(0x01 ‖ public key)>``."""
    check_key_name(name)
    if len(public_key) != 32:
        raise MalformedVerifierKeyError(
            f"Ed25519 public key must be 32 bytes, got {len(public_key)}"
        )
    encoded = base64.b64encode(bytes((ED25519_TYPE,)) + public_key).decode("ascii")
    return f"{name}+{key_id(name, public_key).hex()}+{encoded}"


def _b64decode(text: str, what: str, error: type[NoteError]) -> bytes:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise error(f"{what} is not valid base64") from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise error(f"{what} is not canonical base64")
    return raw


def parse_verifier_key(text: str) -> VerifierKey:
    """Parse a verifier key string, checking its key id against its name and key."""
    parts = text.split("+", 2)  # the base64 field may itself contain '+'
    if len(parts) != 3:
        raise MalformedVerifierKeyError(
            f"verifier key must have 3 '+'-separated fields, got {len(parts)}"
        )
    name, hex_id, encoded = parts
    if not _HEX_KEY_ID.fullmatch(hex_id):
        raise MalformedVerifierKeyError("its key id (second field) is not 8 lowercase hex digits")
    raw = _b64decode(encoded, "verifier key", MalformedVerifierKeyError)
    if not raw or raw[0] != ED25519_TYPE:
        raise MalformedVerifierKeyError("verifier key is not an Ed25519 key (type byte 0x01)")
    try:
        return VerifierKey(name=name, key_id=bytes.fromhex(hex_id), public_key=raw[1:])
    except InvalidKeyNameError as exc:
        raise MalformedVerifierKeyError(f"verifier key name: {exc}") from exc


def _check_text(text: str) -> None:
    if not text:
        raise MalformedNoteError("note text is empty")
    if not text.endswith("\n"):
        raise MalformedNoteError("note text does not end with a newline")
    control = _CONTROL.search(text)
    if control:
        raise MalformedNoteError(
            f"note contains control character {control.group()!r} at index {control.start()}"
        )


@dataclass(frozen=True, slots=True)
class _Signature:
    name: str
    key_id: bytes
    signature: bytes
    line: str


def _parse(note: str) -> tuple[str, list[_Signature]]:
    """Split ``note`` into its text and signature lines, checking the syntax."""
    _check_text(note)
    split = note.rfind("\n\n")
    if split < 0:
        raise MalformedNoteError("no blank line separates the text from the signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block:
        raise MalformedNoteError("note has no signature lines")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNoteError(f"note has {len(lines)} signatures, at most {MAX_SIGNATURES}")
    signatures = []
    for number, line in enumerate(lines, start=1):
        if not line.startswith(_DASH):
            raise MalformedNoteError(f"signature line {number} does not start with '\u2014 '")
        fields = line[len(_DASH) :].split(" ")
        if len(fields) != 2:
            raise MalformedNoteError(f"signature line {number} is not '\u2014 <name> <base64>'")
        name, encoded = fields
        try:
            check_key_name(name)
        except InvalidKeyNameError as exc:
            raise MalformedNoteError(f"signature line {number}: {exc}") from exc
        raw = _b64decode(encoded, f"signature line {number}", MalformedNoteError)
        if len(raw) < 5:
            raise MalformedNoteError(f"signature line {number} is too short ({len(raw)} bytes)")
        signatures.append(_Signature(name, raw[:4], raw[4:], line + "\n"))
    return text, signatures


def _signature_line(text: str, *, name: str, seed: bytes) -> str:
    check_key_name(name)
    if type(seed) is not bytes or len(seed) != 32:
        raise ValueError("an Ed25519 seed must be 32 bytes")
    public_key, secret = nacl.bindings.crypto_sign_seed_keypair(seed)
    signature = nacl.bindings.crypto_sign(text.encode("utf-8"), secret)[:64]
    encoded = base64.b64encode(key_id(name, public_key) + signature).decode("ascii")
    return f"{_DASH}{name} {encoded}\n"


def sign_note(text: str, *, name: str, seed: bytes) -> str:
    """Sign ``text`` (which must end with a newline) and return the signed note."""
    _check_text(text)
    return f"{text}\n{_signature_line(text, name=name, seed=seed)}"


def add_signature(note: str, *, name: str, seed: bytes) -> str:
    """Add a cosignature line to a signed note (unchanged if this key already signed)."""
    text, signatures = _parse(note)
    line = _signature_line(text, name=name, seed=seed)
    if any(existing.line == line for existing in signatures):
        return note
    if len(signatures) >= MAX_SIGNATURES:
        raise MalformedNoteError(f"note already has {MAX_SIGNATURES} signatures")
    return note + line


def verify_note(note: str, *, verifier_key: str | VerifierKey) -> str:
    """Verify ``note`` by the given key and return its text (final newline included)."""
    key = (
        verifier_key if isinstance(verifier_key, VerifierKey) else parse_verifier_key(verifier_key)
    )
    text, signatures = _parse(note)
    verified = False
    for signature in signatures:
        if signature.name != key.name or signature.key_id != key.key_id:
            continue  # signatures by other keys are ignored (c2sp.org/signed-note)
        try:
            nacl.bindings.crypto_sign_open(
                signature.signature + text.encode("utf-8"), key.public_key
            )
        except (nacl.exceptions.BadSignatureError, ValueError) as exc:
            raise NoteSignatureError(
                f"signature by {key.name}+{key.key_id.hex()} does not verify"
            ) from exc
        verified = True
    if not verified:
        raise UnverifiedNoteError(f"note has no signature by {key.name}+{key.key_id.hex()}")
    return text


def split_note(note: str) -> tuple[str, list[tuple[str, bytes, bytes]]]:
    """Check the syntax of ``note``; return its text and (key name, key id, signature) per line.

    Nothing is verified: signature types other than 0x01 (such as cosignatures,
    :mod:`ledger.cosignature`) read their lines from here.
    """
    text, signatures = _parse(note)
    return text, [(line.name, line.key_id, line.signature) for line in signatures]
