"""Response models (the API's trust boundary): ``XPublic`` and ``XsPublic{data, count}``.

Hashes are lower-case hex, message bytes standard base64, times Unix ms.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class ErrorPublic(_Model):
    """Every 4xx/5xx answer."""

    detail: str
    status: int


class MePublic(_Model):
    """The caller's identity."""

    name: str
    role: str
    fleet: str | None
    assets: list[str] = Field(description="assets a lessor holds (leases and transfers)")


class AssetPublic(_Model):
    """A bus or pack with its status and newest values."""

    id: str
    kind: str
    fleet: str
    registry_status: str
    online: bool
    last_seen_ms: int | None
    last_t_ms: int | None
    last_leaf: int | None
    latest: dict[str, Any] = Field(
        description="newest sample (empty for auditors): its time and leaf, and the values of "
        "the columns the asset carries (a GB/T 32960 terminal's bus: its bus values and the pack "
        "values of its newest frame that carried them)"
    )
    columns: dict[str, list[str]] = Field(
        default_factory=dict,
        description="the sample columns the asset carries, per kind of sample (ask for them "
        "with ?kind= and fields=): its own kind's, and for a GB/T 32960 terminal's bus also "
        "`pack`, the pack columns its frames fill",
    )
    alarm_level: int | None
    evidence: str | None = Field(
        default=None,
        description="what the newest message proves: signed-by-device, signed-by-terminal "
        "(GB/T 32960 2025) or received-only (GB/T 32960 2016, signed by no vehicle key)",
    )


class AssetsPublic(_Model):
    """A page of assets."""

    data: list[AssetPublic]
    count: int
    next: str | None = Field(
        default=None, description="cursor of the next page (pass as ?cursor=); none: the last"
    )


class SamplesPublic(_Model):
    """Raw samples, oldest first; ask again with ``from = next_from`` for the next page."""

    asset: str
    fields: list[str]
    t_ms: list[int]
    leaf_index: list[int]
    values: dict[str, list[float]]
    count: int
    next_from: int | None


class BucketPublic(_Model):
    """Min, max and mean of one field over one bucket."""

    t_ms: int
    count: int
    min: float
    max: float
    avg: float


class BucketsPublic(_Model):
    """A field downsampled for a chart."""

    asset: str
    field: str
    bucket_ms: int
    data: list[BucketPublic]
    count: int


class AckPublic(_Model):
    """An operator's acknowledgement of an alarm: who, when, why (audit-visible)."""

    alarm_id: int
    device: str
    t_ms: int = Field(description="the alarm's time")
    level: int
    by: str = Field(description="the name of the operator key that acknowledged it")
    at_ms: int = Field(description="when it was acknowledged")
    note: str


class AcksPublic(_Model):
    """Acknowledgements, newest first."""

    data: list[AckPublic]
    count: int
    next: str | None = Field(
        default=None, description="cursor of the next page (pass as ?cursor=); none: the last"
    )


class AckIn(_Model):
    """An acknowledgement's optional note."""

    note: str = Field(default="", max_length=500)


class OpenAlarmsPublic(_Model):
    """Alarms not acknowledged, by level, over what the caller sees."""

    levels: dict[int, int] = Field(description="level -> alarms of that level not acknowledged")
    open: int
    acknowledged: int


class AlarmPublic(_Model):
    """A telemetry alarm (level >= 1) or a gateway finding."""

    alarm_id: int
    device: str
    t_ms: int
    level: int
    flags: int
    source: str
    detail: str
    leaf_index: int | None
    acknowledged: AckPublic | None = None


class AlarmsPublic(_Model):
    """Newest alarms first."""

    data: list[AlarmPublic]
    count: int
    next: str | None = Field(
        default=None, description="cursor of the next page (pass as ?cursor=); none: the last"
    )


class QuarantinePublic(_Model):
    """A rejected input (its first bytes, base64)."""

    id: int
    reason: str
    detail: str
    topic: str
    device: str | None
    raw_b64: str
    raw_size: int
    received_at_ms: int


class QuarantinesPublic(_Model):
    """Newest quarantine rows first, and totals per reason."""

    data: list[QuarantinePublic]
    count: int
    totals: dict[str, int]
    next: str | None = Field(
        default=None, description="cursor of the next page (pass as ?cursor=); none: the last"
    )


class RegistryEntryPublic(_Model):
    """One registry leaf (enrol, rotate, revoke)."""

    leaf_index: int
    action: str
    device: str
    recorded_at_ms: int
    message_hash: str = Field(description="SHA-256 of the entry's COSE bytes")


class RegistryPublic(_Model):
    """Registry leaves, oldest first."""

    data: list[RegistryEntryPublic]
    count: int
    next: str | None = Field(
        default=None, description="cursor of the next page (pass as ?cursor=); none: the last"
    )


class CheckpointPublic(_Model):
    """A signed checkpoint and its anchor."""

    size: int
    root: str
    signed_at_ms: int
    anchor_state: str
    note: str
    receipt: dict[str, Any] | None


class CheckpointsPublic(_Model):
    """Newest checkpoints first."""

    data: list[CheckpointPublic]
    count: int
    next: str | None = Field(
        default=None, description="cursor of the next page (pass as ?cursor=); none: the last"
    )


class InclusionPublic(_Model):
    """RFC 9162 inclusion proof of one leaf in the tree of ``tree_size`` leaves."""

    leaf_index: int
    tree_size: int
    leaf_hash: str
    root: str
    proof: list[str]
    checkpoint: str | None = Field(description="signed note of that size, when one is stored")
    device: str | None
    seq: int | None
    t_ms: int | None
    message_b64: str | None = Field(description="the leaf's COSE bytes (not for auditors)")


class ConsistencyPublic(_Model):
    """RFC 9162 consistency proof between two tree sizes."""

    size1: int
    size2: int
    root1: str
    root2: str
    proof: list[str]


class ProofStatusPublic(_Model):
    """Where an asset's newest message stands: anchored, and the data to check it."""

    asset: str
    anchored: bool
    anchored_size: int | None
    anchor_backend: str | None
    inclusion: InclusionPublic | None
    server_check: str


class ChainVerdictPublic(_Model):
    """One chain of a v2 bundle as the verifier found it (``ledger.verify_v2.ChainFacts``)."""

    device: str
    role: str = Field(description="asset, host or installed")
    from_ms: int
    to_ms: int
    first_seq: int | None
    last_seq: int | None
    received: int
    expected: int
    missing: list[list[int]] = Field(description="missing seqs as [first, last] ranges")
    start_proven: bool
    end_proven: bool
    complete: bool


class EvidenceVerdictPublic(_Model):
    """The v2 verdict of the bundle ``/bundle`` serves, checked by this server.

    The server checks the anchor only against the operator's own anchor table (or not at all
    for an EVM anchor), so ``independent`` is always false: it tells what the download will
    show, not a verdict a lessor should rely on (``voltproof verify`` with their own anchor
    export, EVM node or witnesses gives that).
    """

    asset: str
    kind: str
    format: str
    from_ms: int
    to_ms: int
    valid: bool
    complete: bool
    verdict: str = Field(description="VALID, COMPLETE | VALID but INCOMPLETE | INVALID: ...")
    error: str | None = Field(description="the verification error's name when INVALID")
    checkpoint_origin: str | None
    checkpoint_size: int | None
    anchored_at_ms: int | None = Field(description="when the checked table recorded the anchor")
    anchor_backend: str
    anchor_source: str | None = Field(description="what this server checked the anchor against")
    independent: bool = Field(description="always false: the server holds the operator's copy")
    chains: list[ChainVerdictPublic]
    absent: list[str] = Field(description="partners the index proves never enrolled")


class StintPublic(_Model):
    """A pack in one bus."""

    bus: str
    from_ms: int
    to_ms: int
    messages: int


class HistoryPublic(_Model):
    """The buses a pack was installed in, from its own signed messages, oldest first; a
    stint may go on at the start of the next page (the same bus)."""

    pack: str
    data: list[StintPublic]
    count: int
    next: str | None = Field(
        default=None, description="cursor of the next page (pass as ?cursor=); none: the last"
    )


class TransferIn(_Model):
    """Whom a pack is sold to (a lessor key name)."""

    to: str = Field(min_length=1, max_length=64)


class TransferPublic(_Model):
    """A recorded transfer."""

    pack: str
    owner: str


class HealthPublic(_Model):
    """Liveness and the log head."""

    status: str
    log_size: int
