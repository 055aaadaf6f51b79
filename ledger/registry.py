"""The registry-entry format and the key-validity rule: which device key was valid when.

Decided from logged registry entries alone.

A registry entry is a COSE_Sign1 with the registry content type (``ledger.message``) whose
payload is a map:

- ``type``: ``"enroll"``, ``"rotate"`` or ``"revoke"``;
- ``dev``: the device id; ``t``: Unix ms when the operator (or device) made the entry;
- enroll: ``kind`` (``"bus"`` or ``"pack"``) and ``key`` (32-byte Ed25519 public key),
  signed by the operator key;
- rotate: ``key`` (the new key) and ``seq`` (the first message seq signed with it), signed
  by the device's current key;
- revoke: signed by the operator key; optional ``reason`` text.

Validity of a key for a message is decided by the message's leaf index and seq, never by a
clock: a key is valid for a message when its enrolment (or rotation) entry is earlier in the
log than the message, the message's seq is inside the key's seq range (a rotation closes the
old key's range at the rotation's ``seq``: backfilled messages signed before a rotation stay
valid), and no revocation of the device precedes the message in the log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from .errors import VerificationError
from .message import MessageError, decode_message

__all__ = [
    "ENTRY_TYPES",
    "KeyNotValidError",
    "KeySpan",
    "RegistryEntryError",
    "RegistryFact",
    "RegistrySignatureError",
    "build_key_history",
    "key_for_message",
    "key_may_sign",
    "read_registry_entry",
]

ENTRY_TYPES: Final = ("enroll", "rotate", "revoke")
_KEY_SIZE: Final = 32


class RegistryEntryError(VerificationError):
    """A registry entry is malformed or does not fit the device's history."""


class RegistrySignatureError(RegistryEntryError):
    """A registry entry is not signed by the key that must sign it."""


class KeyNotValidError(VerificationError):
    """No key of the device was valid for a message at its leaf index and seq."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryFact:
    """One decoded registry entry and where the log holds it."""

    index: int
    type: str
    device: str
    kind: str | None
    key: bytes | None
    seq: int | None
    t_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class KeySpan:
    """One key of a device: from which log index and seq it is valid, and until when."""

    device: str
    kind: str
    key: bytes
    since_index: int
    from_seq: int
    until_seq: int | None = None
    revoked_index: int | None = None


def _field(entry: Mapping[str, Any], name: str, kind: type, where: str) -> Any:
    value = entry.get(name)
    if type(value) is not kind:
        raise RegistryEntryError(f"{where}: field {name!r} must be {kind.__name__}, got {value!r}")
    return value


def read_registry_entry(data: bytes, *, index: int) -> RegistryFact:
    """Decode a registry entry's payload (signature not checked) into a :class:`RegistryFact`."""
    where = f"registry entry at leaf {index}"
    try:
        message = decode_message(data)
    except MessageError as exc:
        raise RegistryEntryError(f"{where}: {exc}") from exc
    if message.content_type is None:
        raise RegistryEntryError(f"{where} is telemetry, not a registry entry")
    entry = message.payload
    kind_of = _field(entry, "type", str, where)
    if kind_of not in ENTRY_TYPES:
        raise RegistryEntryError(f"{where}: type {kind_of!r} is not one of {list(ENTRY_TYPES)}")
    device = _field(entry, "dev", str, where)
    t_ms = _field(entry, "t", int, where)
    kind = key = seq = None
    if kind_of == "enroll":
        kind = _field(entry, "kind", str, where)
    if kind_of in {"enroll", "rotate"}:
        key = _field(entry, "key", bytes, where)
        if len(key) != _KEY_SIZE:
            raise RegistryEntryError(f"{where}: key must be 32 bytes, got {len(key)}")
    if kind_of == "rotate":
        seq = _field(entry, "seq", int, where)
    return RegistryFact(
        index=index, type=kind_of, device=device, kind=kind, key=key, seq=seq, t_ms=t_ms
    )


def _check_signer(data: bytes, fact: RegistryFact, public_key: bytes, signer: str) -> None:
    try:
        decode_message(data).verify_signature(public_key)
    except MessageError as exc:
        raise RegistrySignatureError(
            f"{fact.type} entry of {fact.device!r} at leaf {fact.index} is not signed by the "
            f"{signer}"
        ) from exc


def build_key_history(
    entries: Iterable[tuple[int, bytes]], *, operator_key: bytes
) -> dict[str, tuple[KeySpan, ...]]:
    """Check every entry's signer and return each device's keys in order.

    ``entries`` are ``(leaf index, COSE bytes)``; they are applied in leaf order. Enrolments
    and revocations must verify under ``operator_key``, a rotation under the device's key
    valid at that point.
    """
    spans: dict[str, list[KeySpan]] = {}
    for index, data in sorted(entries, key=lambda item: item[0]):
        fact = read_registry_entry(data, index=index)
        history = spans.setdefault(fact.device, [])
        current = history[-1] if history else None
        if fact.type == "enroll":
            _check_signer(data, fact, operator_key, "operator key")
            if current is not None and current.revoked_index is None:
                raise RegistryEntryError(
                    f"enroll entry at leaf {index}: {fact.device!r} is enrolled already"
                )
            assert fact.key is not None
            assert fact.kind is not None
            start = 0 if current is None else (current.until_seq or 0)
            history.append(
                KeySpan(device=fact.device, kind=fact.kind, key=fact.key, since_index=index,
                        from_seq=start)
            )  # fmt: skip
            continue
        if current is None or current.revoked_index is not None:
            raise RegistryEntryError(
                f"{fact.type} entry at leaf {index}: {fact.device!r} has no enrolled key"
            )
        if fact.type == "revoke":
            _check_signer(data, fact, operator_key, "operator key")
            history[-1] = _replace(current, revoked_index=index)
            continue
        _check_signer(data, fact, current.key, "device's current key")
        assert fact.key is not None
        assert fact.seq is not None
        if fact.seq < current.from_seq:
            raise RegistryEntryError(
                f"rotate entry at leaf {index}: seq {fact.seq} is before the current key's "
                f"first seq {current.from_seq}"
            )
        history[-1] = _replace(current, until_seq=fact.seq)
        history.append(
            KeySpan(device=fact.device, kind=current.kind, key=fact.key, since_index=index,
                    from_seq=fact.seq)
        )  # fmt: skip
    return {device: tuple(history) for device, history in spans.items()}


def _replace(span: KeySpan, **changes: int) -> KeySpan:
    values: dict[str, Any] = {name: getattr(span, name) for name in KeySpan.__slots__}
    values.update(changes)
    return KeySpan(**values)


def key_may_sign(seq: int, *, from_seq: int, until_seq: int | None) -> bool:
    """The key-validity rule: may a key for seqs ``[from_seq, until_seq)`` sign ``seq``?

    ``until_seq`` is ``None`` while no rotation has closed the key's range. The one
    definition: the offline verifier, the gateway's intake and its store all ask it.
    """
    return from_seq <= seq and (until_seq is None or seq < until_seq)


def key_for_message(spans: Iterable[KeySpan], *, device: str, index: int, seq: int) -> bytes:
    """The key valid for ``device``'s message ``seq`` at leaf ``index``; raise if none is."""
    reasons = []
    for span in spans:
        if not key_may_sign(seq, from_seq=span.from_seq, until_seq=span.until_seq):
            continue
        if span.since_index >= index:
            reasons.append(f"its key was enrolled at leaf {span.since_index}, after the message")
        elif span.revoked_index is not None and span.revoked_index < index:
            reasons.append(f"its key was revoked at leaf {span.revoked_index}, before the message")
        else:
            return span.key
    why = "; ".join(reasons) or "no registry entry gives it a key for this seq"
    raise KeyNotValidError(f"message at leaf {index} ({device} seq {seq}): {why}")
