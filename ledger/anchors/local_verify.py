"""Offline verification of a ``local`` anchor receipt against the exported anchor table.

Pure: the caller reads the export file. Every entry's chain link, hash and signature is
checked (not only the receipt's), tree sizes must grow per log, and the receipt must match
its entry field for field. Failures raise ``AnchorVerificationError`` subclasses.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from .base import AnchorReceipt, AnchorState
from .errors import (
    AnchorChainError,
    AnchorEntryHashError,
    AnchorExportError,
    AnchorNotFinalError,
    AnchorNotFoundError,
    AnchorReceiptMismatchError,
    AnchorRootMismatchError,
    AnchorSignatureError,
    AnchorSizeError,
    AnchorVerificationError,
)
from .local_entry import EXPORT_FORMAT, GENESIS_HASH, LocalEntry

PUBLIC_KEY_SIZE = 32
_ALG_ED25519 = b"\x01"


def public_key_from_verifier_key(verifier_key: str) -> bytes:
    """Return the Ed25519 public key of a C2SP verifier key ``<name>+<hex id>+<base64>``."""
    parts = verifier_key.split("+", 2)
    if len(parts) != 3 or not parts[0]:
        raise AnchorVerificationError(f"gateway verifier key {verifier_key!r} is malformed")
    name, key_id_hex, key_b64 = parts
    try:
        key = base64.b64decode(key_b64, validate=True)
        key_id = bytes.fromhex(key_id_hex)
    except (binascii.Error, ValueError) as exc:
        raise AnchorVerificationError("gateway verifier key is not valid hex/base64") from exc
    if len(key) != 1 + PUBLIC_KEY_SIZE or key[:1] != _ALG_ED25519:
        raise AnchorVerificationError("gateway verifier key is not an Ed25519 key")
    expected_id = hashlib.sha256(name.encode() + b"\n" + key).digest()[:4]
    if key_id != expected_id:
        raise AnchorVerificationError(
            f"gateway verifier key id {key_id.hex()} does not match its key ({expected_id.hex()})"
        )
    return key[1:]


def parse_export(export: Mapping[str, object] | str | bytes) -> list[LocalEntry]:
    """Parse a local anchor export into entries (not yet verified)."""
    if isinstance(export, str | bytes):
        try:
            export = json.loads(export)
        except ValueError as exc:
            raise AnchorExportError(f"anchor export is not JSON: {exc}") from exc
    if not isinstance(export, Mapping):
        raise AnchorExportError("anchor export must be a JSON object")
    if export.get("format") != EXPORT_FORMAT:
        raise AnchorExportError(
            f"anchor export format must be {EXPORT_FORMAT!r}, got {export.get('format')!r}"
        )
    raw_entries = export.get("entries")
    if not isinstance(raw_entries, list):
        raise AnchorExportError("anchor export has no list of entries")
    entries = []
    for index, raw in enumerate(raw_entries):
        if not isinstance(raw, Mapping):
            raise AnchorExportError(f"anchor export entry {index} is not an object")
        try:
            entries.append(LocalEntry.from_dict(raw))
        except ValueError as exc:
            raise AnchorExportError(f"anchor export entry {index}: {exc}") from exc
    return entries


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalTableFault:
    """One failed check of one entry: ``check`` names it, ``error`` says what failed."""

    entry: LocalEntry
    check: str
    """``sequence``, ``chain``, ``entry_hash``, ``signature`` or ``size``."""
    error: AnchorVerificationError


def local_table_faults(
    entries: list[LocalEntry], *, public_key: bytes
) -> Iterator[LocalTableFault]:
    """Every failed check of every entry, in order (what :func:`verify_local_table` checks)."""
    verify_key = VerifyKey(public_key)
    prev_hash = GENESIS_HASH
    largest: dict[bytes, int] = {}
    for index, entry in enumerate(entries):
        seq = entry.sequence

        def fault(
            check: str, error: AnchorVerificationError, entry: LocalEntry = entry
        ) -> LocalTableFault:
            return LocalTableFault(entry=entry, check=check, error=error)

        if seq != index + 1:
            yield fault(
                "sequence",
                AnchorChainError(f"entry {index} has sequence {seq}, expected {index + 1}"),
            )
        if entry.prev_hash != prev_hash:
            yield fault(
                "chain",
                AnchorChainError(
                    f"entry {seq} links to {entry.prev_hash.hex()}, "
                    f"but the entry before it hashes to {prev_hash.hex()}"
                ),
            )
        computed = entry.computed_hash()
        if computed != entry.entry_hash:
            yield fault(
                "entry_hash",
                AnchorEntryHashError(
                    f"entry {seq} states hash {entry.entry_hash.hex()}, "
                    f"its fields hash to {computed.hex()}"
                ),
            )
        try:
            verify_key.verify(entry.entry_hash, entry.signature)
        except BadSignatureError:
            yield fault(
                "signature",
                AnchorSignatureError(
                    f"entry {seq} signature does not verify under the gateway key"
                ),
            )
        before = largest.get(entry.log_id, 0)
        if entry.tree_size <= before:
            yield fault(
                "size",
                AnchorSizeError(
                    f"entry {seq} anchors size {entry.tree_size} of log {entry.log_id.hex()} "
                    f"after size {before}"
                ),
            )
        largest[entry.log_id] = max(before, entry.tree_size)
        prev_hash = entry.entry_hash


def verify_local_table(entries: list[LocalEntry], *, public_key: bytes) -> None:
    """Check every entry: sequence, chain link, hash, signature, growing sizes per log."""
    for found in local_table_faults(entries, public_key=public_key):
        raise found.error


def verify_local_anchor(
    receipt: AnchorReceipt,
    *,
    export: Mapping[str, object] | str | bytes,
    gateway_verifier_key: str | bytes,
) -> None:
    """Check ``receipt`` against a local anchor export signed by the gateway key.

    ``gateway_verifier_key`` is a C2SP verifier key or the raw 32-byte public key.
    Returns nothing; raises an ``AnchorVerificationError`` subclass naming what failed.
    """
    if receipt.backend != "local":
        raise AnchorReceiptMismatchError(
            f"receipt is from backend {receipt.backend!r}, not 'local'"
        )
    if receipt.state is not AnchorState.FINAL:
        raise AnchorNotFinalError("local receipt is not final")
    if isinstance(gateway_verifier_key, str):
        public_key = public_key_from_verifier_key(gateway_verifier_key)
    elif len(gateway_verifier_key) == PUBLIC_KEY_SIZE:
        public_key = gateway_verifier_key
    else:
        raise AnchorVerificationError("gateway public key must be 32 bytes")
    entries = parse_export(export)
    verify_local_table(entries, public_key=public_key)
    for entry in entries:
        if entry.log_id == receipt.log_id and entry.tree_size == receipt.tree_size:
            break
    else:
        raise AnchorNotFoundError(
            f"anchor export holds no entry for log {receipt.log_id.hex()} size {receipt.tree_size}"
        )
    if entry.root != receipt.root:
        raise AnchorRootMismatchError(
            f"anchor table holds root {entry.root.hex()} for size {receipt.tree_size}, "
            f"receipt says {receipt.root.hex()}"
        )
    expected = entry.details()
    for key, value in expected.items():
        if receipt.details.get(key) != value:
            raise AnchorReceiptMismatchError(
                f"receipt {key} is {receipt.details.get(key)!r}, anchor table says {value!r}"
            )
