"""Value types that cross the store boundary (in both directions)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ledger.registry import key_may_sign
from ledger.telemetry import Kind, TelemetryColumns

from ..chain import Duplicate, Fork


class DeviceStatus(StrEnum):
    """Whether a device's messages are accepted."""

    ACTIVE = "active"
    REVOKED = "revoked"


class RegistryAction(StrEnum):
    """The kinds of registry change; each is one log leaf."""

    ENROLL = "enroll"
    ROTATE = "rotate"
    REVOKE = "revoke"
    REPLACE = "replace"


class AnchorStatus(StrEnum):
    """A checkpoint's anchor: none yet, submitted, final, or covered by a later anchor."""

    UNANCHORED = "unanchored"
    PENDING = "pending"
    FINAL = "final"
    SUPERSEDED = "superseded"


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyRange:
    """A device key and the message seqs ``[from_seq, until_seq)`` it may sign."""

    public_key: bytes
    from_seq: int
    until_seq: int | None = None

    def covers(self, seq: int) -> bool:
        """Whether this key may sign message ``seq``."""
        return key_may_sign(seq, from_seq=self.from_seq, until_seq=self.until_seq)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceRecord:
    """A registered device; ``keys`` holds every key it had, oldest first."""

    device_id: str
    kind: Kind
    fleet: str
    public_key: bytes
    status: DeviceStatus
    enrolled_leaf: int
    rotated_leaf: int | None = None
    revoked_leaf: int | None = None
    keys: tuple[KeyRange, ...] = ()
    enrolled_at_ms: int | None = None
    """When the enrolment leaf was recorded: the earliest a message of the device may start."""

    def key_for(self, seq: int) -> KeyRange | None:
        """The key that may sign message ``seq`` (a rotation splits the seqs between keys)."""
        return next((key for key in self.keys if key.covers(seq)), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryChange:
    """One registry leaf and the device state it leads to."""

    action: RegistryAction
    device_id: str
    cose: bytes
    recorded_at_ms: int
    kind: Kind | None = None
    fleet: str | None = None
    public_key: bytes | None = None
    seq: int | None = None
    """For a rotation: the first message seq signed with the new key."""
    new_device: str | None = None
    """For a replace: the successor's id (the entry counts for both devices)."""
    birth: bytes | None = None
    """For an enrolment: the birth certificate it carries."""

    @property
    def devices(self) -> tuple[str, ...]:
        """Every device the entry names: its own, and a replace's successor."""
        if self.new_device is None:
            return (self.device_id,)
        return (self.device_id, self.new_device)


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """A telemetry message that passed every stateless check; the chain decides the rest."""

    position: int
    topic: str
    device_id: str
    seq: int
    prev: bytes
    t_ms: int
    received_at_ms: int
    historical: bool
    cose: bytes
    message_hash: bytes
    batch: TelemetryColumns
    """The message's samples: its sample block, of the device's kind."""
    pack: TelemetryColumns | None = None
    """A second block of the same leaf and device: the pack samples of a GB/T 32960 terminal's
    frame, whose ``batch`` is the bus block (``ledger.gbt32960.pack_telemetry``)."""

    def __post_init__(self) -> None:
        if self.pack is not None and (self.pack.kind, self.batch.kind) != ("pack", "bus"):
            raise ValueError(
                f"a second block is a pack block beside a bus block, not {self.pack.kind} "
                f"beside {self.batch.kind}"
            )

    @property
    def blocks(self) -> tuple[TelemetryColumns, ...]:
        """Every sample block the message gives, one per kind: ``batch``, then ``pack``."""
        return (self.batch,) if self.pack is None else (self.batch, self.pack)


@dataclass(frozen=True, slots=True, kw_only=True)
class QuarantineEntry:
    """A rejected input: why, and (a bounded prefix of) what was received."""

    reason: str
    detail: str
    topic: str
    device_id: str | None
    raw: bytes
    raw_size: int
    received_at_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Appended:
    """The message is now leaf ``leaf_index``."""

    leaf_index: int
    seq_jump: int = 0
    """Seqs skipped past the head when more than the store's ``max_seq_jump`` (else 0)."""


StoredOutcome = Appended | Duplicate | Fork
"""What the store did with one candidate."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LogHead:
    """The committed size of the log and its root."""

    size: int
    root: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckpointRecord:
    """A signed checkpoint and the state of its anchor."""

    size: int
    root: bytes
    note: str
    signed_at_ms: int
    anchor_state: AnchorStatus = AnchorStatus.UNANCHORED
    receipt: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class QuarantineRecord:
    """A stored quarantine row."""

    row_id: int
    reason: str
    detail: str
    topic: str
    device_id: str | None
    raw: bytes
    raw_size: int
    received_at_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class QuarantineCount:
    """How many inputs were quarantined for ``reason``, and how many rows were evicted."""

    reason: str
    total: int
    evicted: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LeafRecord:
    """One stored leaf with its metadata."""

    leaf_index: int
    kind: str
    device_id: str
    seq: int | None
    t_ms: int | None
    received_at_ms: int
    historical: bool
    message_hash: bytes
    cose: bytes
    prev: bytes | None = None
    """A telemetry leaf's ``prev`` column (``None`` for registry leaves)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmRecord:
    """A telemetry alarm (level >= 1) or a gateway finding such as a fork."""

    device_id: str
    t_ms: int
    level: int
    flags: int
    source: str
    detail: str
    leaf_index: int | None
    alarm_id: int
    """The store's row id: stable, the tie-break of the ``(t_ms, id)`` page order, and what an
    acknowledgement names."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageLeaf:
    """A device's telemetry leaf as the store indexes it: leaf index, ``seq``, ``t``, COSE bytes."""

    leaf_index: int
    seq: int
    t_ms: int
    cose: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryEventRecord:
    """A registry leaf (enrol, rotate, revoke) with the fleet its device is in now."""

    leaf_index: int
    action: str
    device_id: str
    recorded_at_ms: int
    message_hash: bytes
    fleet: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AnchoredCheckpoint:
    """The largest checkpoint whose anchor receipt is final, with that receipt."""

    size: int
    root: bytes
    backend: str
    receipt: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainHeadRecord:
    """A device's chain head: its highest stored seq, that message's hash, duplicates seen."""

    device_id: str
    seq: int
    message_hash: bytes
    duplicates: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceiptHead:
    """What an end-to-end receipt states for a device: no gap up to ``seq``, at ``leaf_index``,
    whose message hash is ``message_hash``."""

    device_id: str
    seq: int
    leaf_index: int
    message_hash: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class SampleBlockRecord:
    """One stored sample block, as stored (the audit compares it with the signed message)."""

    leaf_index: int
    device_id: str
    kind: str
    t_ms: int
    last_ms: int
    dt_ms: int
    n: int
    columns: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class CosignatureRecord:
    """A witness's verified cosignature/v1 line over the checkpoint of ``size``."""

    size: int
    witness: str
    """The witness's vkey (``<name>+<hex key id>+<base64(0x04 ‖ key)>``)."""
    timestamp: int
    """The cosignature's timestamp, POSIX seconds (the witness's clock)."""
    line: str
    """The signature line as the witness answered it, newline included."""
    received_at_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CosignedCheckpointRecord:
    """A checkpoint with its stored cosignatures and a consistency proof to a later size."""

    size: int
    root: bytes
    note: str
    """The gateway's signed note with every stored cosignature line appended."""
    cosignatures: tuple[CosignatureRecord, ...]
    proof: tuple[bytes, ...]
