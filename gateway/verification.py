"""The checks a received telemetry message passes before the log decides on it (pure).

Checks run in this order; the first that fails names the :class:`Reason` it is quarantined
with (docs/protocol.md, section "Gateway", lists them):

1. ``oversize``: more bytes than the configured bound (checked before decoding anything);
2. ``malformed``: not a strictly valid voltproof COSE_Sign1 (``ledger.message.decode_message``);
   ``out_of_range`` when the only fault is a ``seq`` or ``t`` beyond the protocol bound 2**63 - 1;
3. ``not_telemetry``: a registry entry (registry content type) sent on a telemetry topic;
4. ``bad_topic``: the topic is not ``voltproof/<fleet>/<device>/telemetry``;
5. ``id_mismatch``: topic device, ``kid`` and payload ``dev`` are not all equal;
6. ``unknown_device`` / ``wrong_fleet``: no such enrolled device, or not in that fleet, or
   the topic's fleet is not one this gateway serves (``fleets`` in its configuration);
7. ``revoked``: the device was revoked;
8. ``bad_signature`` / ``key_rotated``: the signature does not verify under the current key
   (``key_rotated`` when it verifies under a key the device rotated away from);
9. ``bad_payload`` / ``kind_mismatch``: the telemetry does not follow the schema
   (``ledger.telemetry.decode_columns``), or its kind is not the registered one;
10. ``future_timestamp`` / ``stale_timestamp``: a sample lies more than ``max_future_skew_ms``
    after the reception time, or the first sample lies more than ``max_enrolment_skew_ms``
    before the device's enrolment. The window holds whatever the transport says: the
    MQTT user property ``voltproof-historical`` is unsigned, so it is only a label and
    relaxes no check (a backfill after days offline is inside the window anyway).

Any other failure while checking one message (a fault of this code on input nobody
foresaw) quarantines that message as ``unprocessable`` (:func:`guarded`); none of these
checks touches the store, so no store failure is swallowed.

The chain checks (duplicate, ``fork``, gaps) need the stored chain and run inside the store's
transaction (:mod:`gateway.chain`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from ledger.message import (
    REGISTRY_CONTENT_TYPE,
    BadSignatureError,
    KidMismatchError,
    MessageError,
    ProtocolBoundError,
    SignedMessage,
    decode_message,
    message_hash,
)
from ledger.protocol import MAX_MESSAGE_SIZE, TELEMETRY_TOPIC_FORM, parse_telemetry_topic
from ledger.telemetry import TelemetryError, decode_columns

from .store import Candidate, DeviceRecord, DeviceStatus
from .store.writes import FORK_REASON

log = logging.getLogger(__name__)
_T = TypeVar("_T")


class Reason(StrEnum):
    """Why a message was quarantined (stable codes: they are stored and exported)."""

    OVERSIZE = "oversize"
    MALFORMED = "malformed"
    OUT_OF_RANGE = "out_of_range"
    NOT_TELEMETRY = "not_telemetry"
    BAD_TOPIC = "bad_topic"
    ID_MISMATCH = "id_mismatch"
    UNKNOWN_DEVICE = "unknown_device"
    WRONG_FLEET = "wrong_fleet"
    REVOKED = "revoked"
    KEY_ROTATED = "key_rotated"
    BAD_SIGNATURE = "bad_signature"
    BAD_PAYLOAD = "bad_payload"
    KIND_MISMATCH = "kind_mismatch"
    FUTURE_TIMESTAMP = "future_timestamp"
    STALE_TIMESTAMP = "stale_timestamp"
    FORK = FORK_REASON
    UNPROCESSABLE = "unprocessable"
    """Checking the message raised an unforeseen error (logged with its traceback)."""
    UNSTORABLE = "unstorable"
    """The store refused one of the message's values (the batch was committed without it)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Incoming:
    """One message as the broker delivered it."""

    topic: str
    payload: bytes
    received_at_ms: int
    historical: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejected:
    """A failed check: the reason code and a precise detail."""

    reason: Reason
    detail: str
    device_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Parsed:
    """A message that passed the checks needing no registry (1-5)."""

    incoming: Incoming
    message: SignedMessage
    fleet: str
    device_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """Bounds of the stateless checks."""

    max_message_bytes: int = MAX_MESSAGE_SIZE
    max_future_skew_ms: int = 120_000
    max_enrolment_skew_ms: int = 600_000
    """How long before its device's enrolment a message may start (device clock skew)."""
    fleets: frozenset[str] = frozenset()
    """The fleets this gateway serves; empty: any fleet."""

    def __post_init__(self) -> None:
        if self.max_message_bytes < 1:
            raise ValueError(f"max_message_bytes must be >= 1, got {self.max_message_bytes}")
        if self.max_future_skew_ms < 0:
            raise ValueError(f"max_future_skew_ms must be >= 0, got {self.max_future_skew_ms}")
        if self.max_enrolment_skew_ms < 0:
            raise ValueError(
                f"max_enrolment_skew_ms must be >= 0, got {self.max_enrolment_skew_ms}"
            )


def parse(incoming: Incoming, policy: Policy) -> Parsed | Rejected:
    """Checks 1-5: size, strict decoding, content type, topic shape and ids."""
    size = len(incoming.payload)
    if size > policy.max_message_bytes:
        return Rejected(
            reason=Reason.OVERSIZE,
            detail=f"message is {size} bytes, the bound is {policy.max_message_bytes}",
        )
    try:
        message = decode_message(incoming.payload)
    except KidMismatchError as exc:
        return Rejected(reason=Reason.ID_MISMATCH, detail=str(exc))
    except MessageError as exc:
        out_of_range = isinstance(exc, ProtocolBoundError)
        return Rejected(
            reason=Reason.OUT_OF_RANGE if out_of_range else Reason.MALFORMED,
            detail=str(exc) if out_of_range else f"{type(exc).__name__}: {exc}",
        )
    if message.content_type is not None:
        what = (
            "a registry entry"
            if message.content_type == REGISTRY_CONTENT_TYPE
            else (f"content type {message.content_type!r}")
        )
        return Rejected(
            reason=Reason.NOT_TELEMETRY,
            detail=f"{what} (kid {message.kid!r}) on telemetry topic {incoming.topic!r}",
            device_id=message.kid,
        )
    where = parse_telemetry_topic(incoming.topic)
    if where is None:
        return Rejected(
            reason=Reason.BAD_TOPIC,
            detail=f"topic {incoming.topic!r} is not {TELEMETRY_TOPIC_FORM}",
            device_id=message.kid,
        )
    return _match_ids(incoming, message, where, policy)


def _match_ids(
    incoming: Incoming, message: SignedMessage, where: tuple[str, str], policy: Policy
) -> Parsed | Rejected:
    """Check 5: the topic names the device that signed (kid = payload dev already checked),
    in a fleet this gateway serves."""
    fleet, device_id = where
    if device_id != message.kid:
        return Rejected(
            reason=Reason.ID_MISMATCH,
            detail=f"topic device {device_id!r} is not the kid {message.kid!r}",
            device_id=message.kid,
        )
    if policy.fleets and fleet not in policy.fleets:
        return Rejected(
            reason=Reason.WRONG_FLEET,
            detail=f"fleet {fleet!r} is not served by this gateway (fleets "
            f"{sorted(policy.fleets)})",
            device_id=device_id,
        )
    return Parsed(incoming=incoming, message=message, fleet=fleet, device_id=device_id)


def authorize(parsed: Parsed, device: DeviceRecord | None) -> Rejected | None:
    """Checks 6-7: the device is enrolled, in the topic's fleet, and not revoked."""
    who = parsed.device_id
    if device is None:
        return Rejected(
            reason=Reason.UNKNOWN_DEVICE, detail=f"device {who!r} is not enrolled", device_id=who
        )
    if device.fleet != parsed.fleet:
        return Rejected(
            reason=Reason.WRONG_FLEET,
            detail=f"device {who!r} is enrolled in fleet {device.fleet!r}, not {parsed.fleet!r}",
            device_id=who,
        )
    if device.status is DeviceStatus.REVOKED:
        return Rejected(
            reason=Reason.REVOKED,
            detail=f"device {who!r} was revoked at leaf {device.revoked_leaf}",
            device_id=who,
        )
    return None


def check_signature(parsed: Parsed, device: DeviceRecord) -> Rejected | None:
    """Check 8: the signature verifies under the key that may sign this message's seq.

    A rotation splits the seqs between the old and the new key (``ledger.registry``): a
    backfilled message signed before the rotation stays valid, a new message signed with
    the old key is refused as ``key_rotated``. CPU-bound and thread-safe (PyNaCl releases
    the GIL): the pipeline runs it in a pool.
    """
    seq = parsed.message.payload["seq"]
    key = device.key_for(seq)
    if key is not None:
        try:
            parsed.message.verify_signature(key.public_key)
        except BadSignatureError:
            pass
        else:
            return None
    for other in device.keys:
        if other is key:
            continue
        try:
            parsed.message.verify_signature(other.public_key)
        except BadSignatureError:
            continue
        return Rejected(
            reason=Reason.KEY_ROTATED,
            detail=f"seq {seq} is signed with a key of device {parsed.device_id!r} that may "
            f"only sign seqs from {other.from_seq} until {other.until_seq}",
            device_id=parsed.device_id,
        )
    return Rejected(
        reason=Reason.BAD_SIGNATURE,
        detail=f"signature of seq {seq} does not verify under the key of device "
        f"{parsed.device_id!r}",
        device_id=parsed.device_id,
    )


def check_payload(
    position: int, parsed: Parsed, device: DeviceRecord, policy: Policy
) -> Candidate | Rejected:
    """Checks 9-10: the telemetry schema, the kind and the clock; returns the candidate."""
    who = parsed.device_id
    payload = parsed.message.payload
    try:
        batch = decode_columns(payload)
    except TelemetryError as exc:
        return Rejected(
            reason=Reason.BAD_PAYLOAD, detail=f"{type(exc).__name__}: {exc}", device_id=who
        )
    if batch.kind != device.kind:
        return Rejected(
            reason=Reason.KIND_MISMATCH,
            detail=f"device {who!r} is enrolled as {device.kind}, the payload is {batch.kind}",
            device_id=who,
        )
    incoming = parsed.incoming
    last_ms = batch.end_ms - batch.dt_ms
    if last_ms > incoming.received_at_ms + policy.max_future_skew_ms:
        return Rejected(
            reason=Reason.FUTURE_TIMESTAMP,
            detail=f"last sample at {last_ms} ms is {last_ms - incoming.received_at_ms} ms after "
            f"reception, the bound is {policy.max_future_skew_ms} ms",
            device_id=who,
        )
    floor = device.enrolled_at_ms
    if floor is not None and batch.t_ms < floor - policy.max_enrolment_skew_ms:
        return Rejected(
            reason=Reason.STALE_TIMESTAMP,
            detail=f"first sample at {batch.t_ms} ms is {floor - batch.t_ms} ms before device "
            f"{who!r} was enrolled (at {floor} ms), the bound is "
            f"{policy.max_enrolment_skew_ms} ms",
            device_id=who,
        )
    return Candidate(
        position=position,
        topic=incoming.topic,
        device_id=who,
        seq=payload["seq"],
        prev=payload["prev"],
        t_ms=batch.t_ms,
        received_at_ms=incoming.received_at_ms,
        historical=incoming.historical,
        cose=incoming.payload,
        message_hash=message_hash(incoming.payload),
        batch=batch,
    )


def guarded(check: Callable[[], _T], incoming: Incoming) -> _T | Rejected:
    """``check()``, or an ``unprocessable`` refusal when it raises.

    The checks above turn every foreseen fault into a :class:`Rejected`; this is the net
    under them, so one message nobody foresaw cannot stop intake for every device. The
    checks are pure (no store, no I/O), so what this catches is a fault of the code on one
    message's input, never a broken dependency.
    """
    try:
        return check()
    except Exception as exc:  # per message, pure code: see the docstring
        log.exception(
            "message_unprocessable",
            extra={"topic": incoming.topic, "bytes": len(incoming.payload)},
        )
        return Rejected(reason=Reason.UNPROCESSABLE, detail=f"{type(exc).__name__}: {exc}")
