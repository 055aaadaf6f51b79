"""The registry-entry format, the registry rules (v2) and the key-validity rule.

Decided from logged registry entries alone.

A registry entry is a COSE_Sign1 with the registry content type (``ledger.message``) whose
payload is a map:

- ``type``: ``"enroll"``, ``"rotate"``, ``"revoke"`` or ``"replace"``;
- ``dev``: the device id; ``t``: Unix ms when the operator (or device) made the entry;
- enroll: ``kind`` (``"bus"`` or ``"pack"``), ``fleet`` and ``key`` (32-byte Ed25519 public
  key), optionally ``birth`` (the bytes of a birth certificate, :mod:`ledger.birth`), signed
  by the operator key;
- rotate: ``key`` (the new key) and ``seq`` (the first message seq signed with it), signed
  by the device's current key;
- revoke: signed by the operator key; optional ``reason`` text;
- replace: ``dev`` (the revoked id), ``new`` (its successor's id), ``kind`` (of both),
  signed by the operator key.

The rules every history obeys (:func:`check_registry`, the one function the gateway, the
verifier and the audit call): one enrolment per id, ever; a key changes only by a rotation
signed by the current key; a revocation is final; a ``replace`` links a revoked id to a live
successor of the same kind, each id at most once on each side.

Validity of a key for a message is decided by the message's leaf index and seq, never by a
clock: a key is valid for a message when its enrolment (or rotation) entry is earlier in the
log than the message, the message's seq is inside the key's seq range (a rotation closes the
old key's range at the rotation's ``seq``: backfilled messages signed before a rotation stay
valid), and no revocation of the device precedes the message in the log.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from .birth import (
    MissingBirthCertificateError,
    check_birth_certificate,
    verify_birth_certificate,
)
from .errors import VerificationError, VoltproofError
from .message import REGISTRY_CONTENT_TYPE, MessageError, SignedMessage, decode_message
from .note import VerifierKey

__all__ = [
    "ENTRY_TYPES",
    "DeviceHistory",
    "KeyNotValidError",
    "KeySpan",
    "PinFormatError",
    "PinMismatchError",
    "RegistryEntryError",
    "RegistryFact",
    "RegistryHistory",
    "RegistryRuleError",
    "RegistrySignatureError",
    "build_key_history",
    "check_enrolments",
    "check_registry",
    "key_for_message",
    "key_may_sign",
    "parse_pin",
    "read_registry_entry",
]

ENTRY_TYPES: Final = ("enroll", "rotate", "revoke", "replace")
_KINDS: Final = ("bus", "pack")
_KEY_SIZE: Final = 32


class RegistryEntryError(VerificationError):
    """A registry entry is malformed or does not fit the device's history."""


class RegistrySignatureError(RegistryEntryError):
    """A registry entry is not signed by the key that must sign it."""


class RegistryRuleError(RegistryEntryError):
    """A registry entry breaks a registry rule (v2); the message names the entry and the rule."""


class PinMismatchError(RegistryEntryError):
    """A device was enrolled with another key than the one the verifier pinned."""


class PinFormatError(VoltproofError, ValueError):
    """A ``--pin`` value is not ``ID=BASE64KEY`` (a usage error, not evidence)."""


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
    new: str | None = None
    """For a replace: the successor's id."""
    birth: bytes | None = None
    """For an enrolment: its birth certificate's bytes, if it carries one."""


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


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceHistory:
    """What a device's registry entries establish: its kind, keys, revocation and links."""

    device: str
    kind: str
    enrolled_index: int
    keys: tuple[KeySpan, ...]
    birth: bytes | None = None
    revoked_index: int | None = None
    replaced_by: str | None = None
    replaced_index: int | None = None
    replaces: str | None = None
    replaces_index: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryHistory:
    """Every device's history, by id, after the rules accepted all entries."""

    devices: dict[str, DeviceHistory]


def _field(entry: Mapping[str, Any], name: str, kind: type, where: str) -> Any:
    value = entry.get(name)
    if type(value) is not kind:
        raise RegistryEntryError(f"{where}: field {name!r} must be {kind.__name__}, got {value!r}")
    return value


def read_registry_entry(data: bytes, *, index: int) -> RegistryFact:
    """Decode a registry entry's payload (signature not checked) into a :class:`RegistryFact`."""
    return _read(data, index=index)[0]


def _read(data: bytes, *, index: int) -> tuple[RegistryFact, SignedMessage]:
    where = f"registry entry at leaf {index}"
    try:
        message = decode_message(data)
    except MessageError as exc:
        raise RegistryEntryError(f"{where}: {exc}") from exc
    if message.content_type is None:
        raise RegistryEntryError(f"{where} is telemetry, not a registry entry")
    if message.content_type != REGISTRY_CONTENT_TYPE:
        raise RegistryEntryError(f"{where} has content type {message.content_type!r}")
    entry = message.payload
    kind_of = _field(entry, "type", str, where)
    if kind_of not in ENTRY_TYPES:
        raise RegistryEntryError(f"{where}: type {kind_of!r} is not one of {list(ENTRY_TYPES)}")
    device = _field(entry, "dev", str, where)
    if not device:
        raise RegistryEntryError(f"{where}: field 'dev' is empty")
    t_ms = _field(entry, "t", int, where)
    fact = RegistryFact(
        index=index, type=kind_of, device=device, t_ms=t_ms, **_type_fields(entry, kind_of, where)
    )
    return fact, message


def _type_fields(entry: Mapping[str, Any], kind_of: str, where: str) -> dict[str, Any]:
    kind = key = seq = new = birth = None
    if kind_of in {"enroll", "replace"}:
        kind = _field(entry, "kind", str, where)
        if kind not in _KINDS:
            raise RegistryEntryError(f"{where}: kind {kind!r} is not one of {list(_KINDS)}")
    if kind_of in {"enroll", "rotate"}:
        key = _field(entry, "key", bytes, where)
        if len(key) != _KEY_SIZE:
            raise RegistryEntryError(f"{where}: key must be 32 bytes, got {len(key)}")
    if kind_of == "enroll" and "birth" in entry:
        birth = _field(entry, "birth", bytes, where)
    if kind_of == "rotate":
        seq = _field(entry, "seq", int, where)
    if kind_of == "replace":
        new = _field(entry, "new", str, where)
        if not new:
            raise RegistryEntryError(f"{where}: field 'new' is empty")
    return {"kind": kind, "key": key, "seq": seq, "new": new, "birth": birth}


def _check_signer(
    message: SignedMessage, fact: RegistryFact, public_key: bytes, signer: str
) -> None:
    try:
        message.verify_signature(public_key)
    except MessageError as exc:
        raise RegistrySignatureError(
            f"{fact.type} entry of {fact.device!r} at leaf {fact.index} is not signed by the "
            f"{signer}"
        ) from exc


def build_key_history(
    entries: Iterable[tuple[int, bytes]],
    *,
    operator_key: bytes,
    scope: Collection[str] | None = None,
) -> dict[str, tuple[KeySpan, ...]]:
    """Each device's keys in order, after :func:`check_registry` (same arguments, same errors)."""
    history = check_registry(entries, operator_key=operator_key, scope=scope)
    return {device: state.keys for device, state in history.devices.items()}


def check_registry(
    entries: Iterable[tuple[int, bytes]],
    *,
    operator_key: bytes,
    scope: Collection[str] | None = None,
) -> RegistryHistory:
    """Apply the registry rules (v2) to ``entries`` and return every device's history.

    The one rule function: the gateway runs it over a device's logged entries plus the one it
    is about to append, the verifier over the entries a bundle carries, the audit over a whole
    log. ``entries`` are ``(leaf index, COSE bytes)``, applied in leaf order (an index given
    twice is refused). ``scope`` names the devices whose registry entries are *all* in
    ``entries``; ``None`` means every device named (a whole log). The other side of a
    ``replace`` outside the scope is not checked: nothing is known about it.

    Rules, each broken one a :class:`RegistryRuleError` naming the entry's leaf: an id is
    enrolled once, ever; enrolments, revocations and replacements are signed by
    ``operator_key`` (else :class:`RegistrySignatureError`), a rotation by the device's
    current key; nothing follows a revocation except the ``replace`` naming the revoked id;
    a ``replace`` needs ``dev`` revoked and ``new`` enrolled and live before it, both of the
    entry's ``kind``, and neither side replaced before in that role; a birth certificate in an
    enrolment must name the enrolment's id, kind and key
    (:class:`~ledger.birth.BirthCertificateError`; its signature is checked by
    :func:`check_enrolments`).
    """
    states: dict[str, DeviceHistory] = {}
    seen: set[int] = set()
    for index, data in sorted(entries, key=lambda item: item[0]):
        if index in seen:
            raise RegistryRuleError(f"registry entry at leaf {index} is given twice")
        seen.add(index)
        fact, message = _read(data, index=index)
        if fact.type == "enroll":
            _apply_enroll(states, fact, message, operator_key)
        elif fact.type == "replace":
            _apply_replace(states, fact, message, operator_key, scope)
        else:
            _apply_change(states, fact, message, operator_key)
    return RegistryHistory(devices=dict(states))


def _who(fact: RegistryFact) -> str:
    return f"{fact.type} of {fact.device!r} at leaf {fact.index}"


def _apply_enroll(
    states: dict[str, DeviceHistory],
    fact: RegistryFact,
    message: SignedMessage,
    operator_key: bytes,
) -> None:
    _check_signer(message, fact, operator_key, "operator key")
    current = states.get(fact.device)
    if current is not None:
        raise RegistryRuleError(
            f"second enroll of {fact.device!r} at leaf {fact.index}: an id is enrolled once, "
            f"ever (first enrolled at leaf {current.enrolled_index})"
        )
    assert fact.key is not None
    assert fact.kind is not None
    if fact.birth is not None:
        check_birth_certificate(
            fact.birth, device=fact.device, kind=fact.kind, key=fact.key,
            where=f"birth certificate in the enrolment of {fact.device!r} at leaf {fact.index}",
        )  # fmt: skip
    span = KeySpan(device=fact.device, kind=fact.kind, key=fact.key, since_index=fact.index,
                   from_seq=0)  # fmt: skip
    states[fact.device] = DeviceHistory(
        device=fact.device, kind=fact.kind, enrolled_index=fact.index, keys=(span,),
        birth=fact.birth,
    )  # fmt: skip


def _live(states: dict[str, DeviceHistory], fact: RegistryFact, device: str) -> DeviceHistory:
    current = states.get(device)
    if current is None:
        raise RegistryRuleError(f"{_who(fact)}: {device!r} is not enrolled before it")
    if current.revoked_index is not None:
        raise RegistryRuleError(
            f"{_who(fact)}: {device!r} was revoked at leaf {current.revoked_index}, "
            "and a revocation is final"
        )
    return current


def _apply_change(
    states: dict[str, DeviceHistory],
    fact: RegistryFact,
    message: SignedMessage,
    operator_key: bytes,
) -> None:
    current = _live(states, fact, fact.device)
    span = current.keys[-1]
    if fact.type == "revoke":
        _check_signer(message, fact, operator_key, "operator key")
        states[fact.device] = replace(
            current,
            revoked_index=fact.index,
            keys=(*current.keys[:-1], replace(span, revoked_index=fact.index)),
        )
        return
    _check_signer(message, fact, span.key, "device's current key")
    assert fact.key is not None
    assert fact.seq is not None
    if fact.seq < span.from_seq:
        raise RegistryRuleError(
            f"rotate entry at leaf {fact.index}: seq {fact.seq} is before the current key's "
            f"first seq {span.from_seq}"
        )
    new_span = KeySpan(device=fact.device, kind=current.kind, key=fact.key,
                       since_index=fact.index, from_seq=fact.seq)  # fmt: skip
    states[fact.device] = replace(
        current, keys=(*current.keys[:-1], replace(span, until_seq=fact.seq), new_span)
    )


def _apply_replace(
    states: dict[str, DeviceHistory],
    fact: RegistryFact,
    message: SignedMessage,
    operator_key: bytes,
    scope: Collection[str] | None,
) -> None:
    _check_signer(message, fact, operator_key, "operator key")
    assert fact.new is not None
    if fact.new == fact.device:
        raise RegistryRuleError(f"{_who(fact)}: a device cannot replace itself")
    if scope is None or fact.device in scope:
        old = states.get(fact.device)
        if old is None:
            raise RegistryRuleError(f"{_who(fact)}: {fact.device!r} is not enrolled before it")
        if old.revoked_index is None:
            raise RegistryRuleError(
                f"{_who(fact)}: {fact.device!r} is live; only a revoked device is replaced"
            )
        if old.replaced_by is not None:
            raise RegistryRuleError(
                f"{_who(fact)}: {fact.device!r} was already replaced by {old.replaced_by!r} "
                f"at leaf {old.replaced_index}; an id is replaced once"
            )
        _same_kind(fact, old)
        states[fact.device] = replace(old, replaced_by=fact.new, replaced_index=fact.index)
    if scope is None or fact.new in scope:
        successor = _live(states, fact, fact.new)
        if successor.replaces is not None:
            raise RegistryRuleError(
                f"{_who(fact)}: {fact.new!r} already replaces {successor.replaces!r}; an id "
                "succeeds one device at most"
            )
        _same_kind(fact, successor)
        states[fact.new] = replace(successor, replaces=fact.device, replaces_index=fact.index)


def _same_kind(fact: RegistryFact, state: DeviceHistory) -> None:
    if state.kind != fact.kind:
        raise RegistryRuleError(
            f"{_who(fact)}: the entry is for a {fact.kind}, {state.device!r} is a {state.kind}; "
            "a replacement keeps the kind"
        )


def check_enrolments(
    history: RegistryHistory,
    *,
    manufacturers: Sequence[VerifierKey] = (),
    pins: Mapping[str, bytes] | None = None,
) -> None:
    """Check every enrolment of ``history`` against trusted manufacturers and pinned keys.

    With ``manufacturers``, every enrolled device needs a birth certificate signed by one of
    them that names its id, kind and enrolled key (:class:`MissingBirthCertificateError`,
    :class:`UnknownManufacturerError`, :class:`BirthSignatureError`,
    :class:`BirthCertificateMismatchError`). ``pins`` maps a device id to the first key the
    verifier expects: an enrolled device with another key is a :class:`PinMismatchError`
    (a pinned id the history does not hold is not checked here).
    """
    for device in sorted(history.devices):
        state = history.devices[device]
        first = state.keys[0]
        where = f"birth certificate of {device!r} (enrolled at leaf {state.enrolled_index})"
        if manufacturers:
            if state.birth is None:
                raise MissingBirthCertificateError(
                    f"enrolment of {device!r} at leaf {state.enrolled_index} carries no birth "
                    "certificate, and a manufacturer key is required"
                )
            verify_birth_certificate(
                state.birth, manufacturers=manufacturers, device=device, kind=state.kind,
                key=first.key, where=where,
            )  # fmt: skip
        pinned = (pins or {}).get(device)
        if pinned is not None and pinned != first.key:
            raise PinMismatchError(
                f"{device!r} was enrolled at leaf {state.enrolled_index} with key "
                f"{base64.b64encode(first.key).decode('ascii')}, the pinned key is "
                f"{base64.b64encode(pinned).decode('ascii')}"
            )


def parse_pin(text: str) -> tuple[str, bytes]:
    """``ID=KEY`` (KEY: the base64 32-byte Ed25519 public key) as ``(id, key)``."""
    device, sep, encoded = text.partition("=")
    if not sep or not device:
        raise PinFormatError(f"pin {text!r} is not ID=BASE64KEY")
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PinFormatError(f"pin of {device!r}: the key is not base64") from exc
    if len(key) != _KEY_SIZE:
        raise PinFormatError(f"pin of {device!r}: the key is {len(key)} bytes, want 32")
    return device, key


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
