"""Ed25519 private key files for devices and the gateway.

A key file holds one line in the C2SP/sumdb note signer-key format::

    PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 ‖ 32-byte seed)>

It is created atomically with mode 0600 and never overwritten; loading refuses a file that
group or others can read. Seeds never appear in a ``repr``, an error message or a log line.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import nacl.bindings

from .errors import VoltproofError
from .note import ED25519_TYPE, InvalidKeyNameError, check_key_name, key_id, verifier_key

__all__ = [
    "KeyFileError",
    "KeyInfo",
    "SigningKey",
    "create_key_file",
    "generate_seed",
    "load_key_file",
    "parse_key_text",
    "public_key_from_seed",
]

_PREFIX: Final = "PRIVATE+KEY+"
_SEED_SIZE: Final = 32


class KeyFileError(VoltproofError):
    """A key file cannot be created or loaded; the message says why (never the seed)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyInfo:
    """The public facts of a key file just written."""

    name: str
    public_key: bytes
    key_id: bytes
    verifier_key: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SigningKey:
    """A loaded private key. ``seed`` is kept out of ``repr``."""

    name: str
    seed: bytes = field(repr=False)
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        """The 4-byte C2SP key id of this key."""
        return key_id(self.name, self.public_key)

    @property
    def verifier_key(self) -> str:
        """The C2SP verifier key string to give to whoever checks this key's signatures."""
        return verifier_key(self.name, self.public_key)


def generate_seed() -> bytes:
    """A fresh random 32-byte Ed25519 seed from the operating system."""
    return os.urandom(_SEED_SIZE)


def public_key_from_seed(seed: bytes) -> bytes:
    """The 32-byte Ed25519 public key of ``seed``."""
    if type(seed) is not bytes or len(seed) != _SEED_SIZE:
        raise ValueError("an Ed25519 seed must be 32 bytes")
    public_key, _ = nacl.bindings.crypto_sign_seed_keypair(seed)
    return bytes(public_key)


def _key_text(name: str, seed: bytes) -> str:
    public_key = public_key_from_seed(seed)
    encoded = base64.b64encode(bytes((ED25519_TYPE,)) + seed).decode("ascii")
    return f"{_PREFIX}{name}+{key_id(name, public_key).hex()}+{encoded}\n"


def create_key_file(path: Path | str, *, name: str) -> KeyInfo:
    """Write a new key file at ``path`` (mode 0600, never overwriting) and describe it."""
    path = Path(path)
    try:
        check_key_name(name)
    except InvalidKeyNameError as exc:
        raise KeyFileError(str(exc)) from exc
    seed = generate_seed()
    data = _key_text(name, seed).encode("utf-8")
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise KeyFileError(f"cannot create a key file in {path.parent}: {exc.strerror}") from exc
    try:
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temporary, path)  # fails if path exists: never overwrite
    except FileExistsError as exc:
        raise KeyFileError(f"{path} already exists; refusing to overwrite a key") from exc
    except OSError as exc:
        raise KeyFileError(f"cannot write key file {path}: {exc.strerror}") from exc
    finally:
        temporary.unlink(missing_ok=True)
    public_key = public_key_from_seed(seed)
    return KeyInfo(
        name=name,
        public_key=public_key,
        key_id=key_id(name, public_key),
        verifier_key=verifier_key(name, public_key),
    )


def parse_key_text(text: str, *, source: str = "key") -> SigningKey:
    """Parse the one-line private key format (errors name ``source``, never the seed)."""
    line = text.removesuffix("\n")
    if not line.startswith(_PREFIX):
        raise KeyFileError(f"{source} does not start with {_PREFIX!r}")
    parts = line[len(_PREFIX) :].split("+", 2)  # the base64 field may itself contain '+'
    if len(parts) != 3:
        raise KeyFileError(f"{source} must be PRIVATE+KEY+<name>+<hex key id>+<base64 key>")
    name, hex_id, encoded = parts
    try:
        check_key_name(name)
    except InvalidKeyNameError as exc:
        raise KeyFileError(f"{source}: {exc}") from exc
    try:
        raw = base64.b64decode(encoded.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise KeyFileError(f"{source}: the key field is not valid base64") from exc
    if len(raw) != _SEED_SIZE + 1 or raw[0] != ED25519_TYPE:
        raise KeyFileError(f"{source}: the key field is not 0x01 followed by a 32-byte seed")
    seed = raw[1:]
    public_key = public_key_from_seed(seed)
    expected = key_id(name, public_key).hex()
    if hex_id != expected:
        raise KeyFileError(
            f"{source}: key id {hex_id!r} does not match the key (expected {expected})"
        )
    return SigningKey(name=name, seed=seed, public_key=public_key)


def load_key_file(path: Path | str) -> SigningKey:
    """Load a key file, refusing one that group or others may read."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as exc:
        raise KeyFileError(f"no key file at {path}") from exc
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(mode):
        raise KeyFileError(f"{path} is not a regular file")
    if mode & 0o077:
        raise KeyFileError(
            f"{path} is accessible by group or others (mode {stat.S_IMODE(mode):04o}); "
            "run chmod 600 on it"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise KeyFileError(f"key file {path} is not UTF-8 text") from exc
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from exc
    return parse_key_text(text, source=f"key file {path}")
