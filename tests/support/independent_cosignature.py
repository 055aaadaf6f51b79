"""An independent reader of C2SP signed notes and cosignature/v1, written from the spec text.

Kept apart from the project: it imports nothing from ``ledger`` or ``voltproof`` and uses the
``cryptography`` package's Ed25519 (OpenSSL), not PyNaCl. It follows c2sp.org/signed-note,
c2sp.org/tlog-checkpoint and c2sp.org/tlog-cosignature, section by section:

- a note is text ending in a newline, a blank line, then lines ``— <name> <base64>``;
  the text is separated from the signatures by the *last* blank line;
- a vkey is ``<name>+<8 hex key id>+<base64(type byte ‖ public key)>``;
- key id = SHA-256(name ‖ "\\n" ‖ type byte ‖ public key)[:4];
- type 0x01 (Ed25519) signs the note text; type 0x04 (cosignature/v1) signs
  ``"cosignature/v1\\n" ‖ "time " ‖ decimal(t) ‖ "\\n" ‖ note text`` and its signature field is
  key id ‖ uint64 big-endian t ‖ 64-byte Ed25519 signature.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class IndependentCheckError(Exception):
    """The note does not check out under the independent reading of the spec."""


@dataclass(frozen=True)
class Vkey:
    """A verifier key as the spec writes it."""

    name: str
    key_hash: bytes
    kind: int
    public: bytes


def read_vkey(text: str) -> Vkey:
    """Split a vkey and check its key hash."""
    name, key_hash_hex, material = text.split("+", 2)
    raw = base64.standard_b64decode(material)
    kind, public = raw[0], raw[1:]
    key_hash = bytes.fromhex(key_hash_hex)
    if hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4] != key_hash:
        raise IndependentCheckError("vkey hash does not match")
    return Vkey(name, key_hash, kind, public)


def split(note: str) -> tuple[str, list[tuple[str, bytes]]]:
    """The note text and its (name, decoded signature field) lines."""
    cut = note.rindex("\n\n")
    text = note[: cut + 1]
    lines = []
    for line in note[cut + 2 :].splitlines():
        if not line.startswith("\u2014 "):
            raise IndependentCheckError(f"not a signature line: {line!r}")
        name, field = line[2:].split(" ")
        lines.append((name, base64.standard_b64decode(field)))
    return text, lines


def _verify(public: bytes, signature: bytes, message: bytes) -> None:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except InvalidSignature as exc:
        raise IndependentCheckError("Ed25519 signature does not verify") from exc


def check_log_signature(note: str, vkey_text: str) -> tuple[str, int, bytes]:
    """Verify the log's type-0x01 signature; return (origin, size, root)."""
    key = read_vkey(vkey_text)
    if key.kind != 0x01:
        raise IndependentCheckError("not an Ed25519 note key")
    text, lines = split(note)
    signed = [field for name, field in lines if name == key.name and field[:4] == key.key_hash]
    if not signed:
        raise IndependentCheckError("no signature by the log key")
    for field in signed:
        _verify(key.public, field[4:], text.encode())
    origin, size, root = text.split("\n")[:3]
    return origin, int(size), base64.standard_b64decode(root)


def check_cosignature(note: str, vkey_text: str) -> int:
    """Verify the witness's cosignature/v1 line; return its timestamp."""
    key = read_vkey(vkey_text)
    if key.kind != 0x04:
        raise IndependentCheckError("not a cosignature/v1 key")
    text, lines = split(note)
    found = [field for name, field in lines if name == key.name and field[:4] == key.key_hash]
    if len(found) != 1 or len(found[0]) != 4 + 8 + 64:
        raise IndependentCheckError("expected exactly one 76-byte cosignature by the witness")
    field = found[0]
    timestamp = int.from_bytes(field[4:12], "big")
    message = b"cosignature/v1\ntime " + str(timestamp).encode() + b"\n" + text.encode()
    _verify(key.public, field[12:], message)
    return timestamp
