"""The device's Ed25519 key, read from its private key file (C2SP note-signer format)."""

from __future__ import annotations

from pathlib import Path

from ledger.errors import VoltproofError
from ledger.keys import KeyFileError, load_key_file


class IdentityError(VoltproofError, RuntimeError):
    """The key file is missing, unreadable or names another device."""


def load_seed(path: Path, *, device_id: str) -> bytes:
    """The 32-byte Ed25519 seed of ``device_id`` from ``path``."""
    try:
        key = load_key_file(path)
    except KeyFileError as exc:
        raise IdentityError(str(exc)) from exc
    if key.name != device_id:
        raise IdentityError(f"key file {path} holds the key of {key.name!r}, not {device_id!r}")
    seed: bytes = key.seed
    return seed
