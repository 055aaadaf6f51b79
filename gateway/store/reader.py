"""The read interface of the store: what the API, evidence builder, audit and bundle need.

Every implementation (:class:`~gateway.store.sqlite_reader.SqliteReader` on a read-only
file, :class:`~gateway.store.sqlite.SqliteStore` itself, the in-memory fake, later a
PostgreSQL store) passes the one contract suite in ``tests/support/store_contract.py``.
Periods are half-open, ``t_from <= t < t_to``, in Unix milliseconds; every method may raise
:class:`~gateway.store.errors.StoreError` (a damaged sample block:
:class:`~gateway.store.samples.BlockError`).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol

from ledger.device_index import DeviceIndex
from ledger.merkle import NodeId
from ledger.telemetry import Kind

from .records import (
    AlarmRecord,
    AnchoredCheckpoint,
    AnchorStatus,
    ChainHeadRecord,
    CheckpointRecord,
    CosignatureRecord,
    CosignedCheckpointRecord,
    DeviceRecord,
    KeyRange,
    LeafRecord,
    LogHead,
    MessageLeaf,
    QuarantineCount,
    QuarantineRecord,
    ReceiptHead,
    RegistryEventRecord,
    SampleBlockRecord,
)

if TYPE_CHECKING:
    from .samples import BlockGroup, Samples, SummaryRead


class StoreReader(Protocol):
    """Read-only access to the gateway's durable state."""

    # -- registry --------------------------------------------------------------------------

    async def devices(self, device_ids: Sequence[str]) -> dict[str, DeviceRecord]:
        """The registered devices among ``device_ids``, with their rotated-away keys."""
        ...

    async def list_devices(self) -> list[DeviceRecord]:
        """Every registered device, by id (``keys`` left empty)."""
        ...

    async def devices_page(
        self,
        *,
        after: str | None = None,
        limit: int = 1000,
        kind: Kind | None = None,
        fleet: str | None = None,
    ) -> list[DeviceRecord]:
        """At most ``limit`` devices with id above ``after`` (of one kind, one fleet, or all),
        by id (``keys`` left empty)."""
        ...

    async def registry_leaves(
        self, device_ids: Sequence[str], *, leaf_below: int
    ) -> list[LeafRecord]:
        """The registry leaves naming ``device_ids`` below ``leaf_below``, in log order (a
        ``replace`` is a leaf of both devices it names)."""
        ...

    async def registry_events(
        self,
        *,
        device_id: str | None = None,
        limit: int = 1000,
        after: tuple[int, str] | None = None,
    ) -> list[RegistryEventRecord]:
        """Registry leaves (of one device or all) in ``(leaf_index, device)`` order, with each
        device's fleet; ``after``: only those above that key."""
        ...

    # -- chains ----------------------------------------------------------------------------

    async def chain_gaps(self, device_id: str) -> list[tuple[int, int]]:
        """The missing seqs of a device, as half-open ranges ``[start, stop)``."""
        ...

    async def duplicates(self, device_id: str) -> int:
        """How many idempotent duplicates of a device's messages arrived."""
        ...

    async def receipt_heads(self, device_ids: Sequence[str]) -> dict[str, ReceiptHead]:
        """Per device, the highest seq logged with no gap below it (an end-to-end receipt)."""
        ...

    async def device_index_at(self, size: int) -> DeviceIndex:
        """The device index (evidence v2) that a checkpoint of ``size`` leaves commits to."""
        ...

    async def extend_device_index(self, index: DeviceIndex, *, start: int, size: int) -> None:
        """Bring ``index`` (of the first ``start`` leaves) to the first ``size`` leaves."""
        ...

    # -- messages --------------------------------------------------------------------------

    async def leaf(self, leaf_index: int) -> LeafRecord:
        """The stored leaf at ``leaf_index`` (``OutOfRangeError`` if none)."""
        ...

    async def device_leaves(
        self, device_id: str, *, t_from: int = 0, t_to: int = 2**63 - 1, limit: int = 1000
    ) -> list[LeafRecord]:
        """A device's telemetry leaves in the period, by seq."""
        ...

    async def messages_in(
        self,
        device_id: str,
        *,
        t_from: int,
        t_to: int,
        limit: int,
        after: tuple[int, int] | None = None,
    ) -> list[MessageLeaf]:
        """At most ``limit`` telemetry leaves of a device in the period, by ``(t, leaf_index)``;
        ``after``: only those above that key."""
        ...

    async def message_hosts(
        self,
        device_id: str,
        *,
        t_from: int,
        t_to: int,
        limit: int,
        after: tuple[int, int] | None = None,
    ) -> list[tuple[int, int, str | None]]:
        """``(leaf_index, t, host)`` of the leaves :meth:`messages_in` would return, the host
        read from the summary rows."""
        ...

    async def message_before(
        self, device_id: str, *, seq: int, t_ms: int, leaf_below: int
    ) -> MessageLeaf | None:
        """The device's message of highest seq below ``seq``, before ``t_ms`` and ``leaf_below``."""
        ...

    async def message_after(
        self, device_id: str, *, seq: int, t_ms: int, leaf_below: int
    ) -> MessageLeaf | None:
        """The device's message of lowest seq above ``seq``, at or after ``t_ms``, below a leaf."""
        ...

    async def newest_message(
        self, device_id: str, *, t_from: int, t_to: int, leaf_below: int = 2**63 - 1
    ) -> LeafRecord | None:
        """The device's telemetry leaf of newest ``t`` in the period below a leaf index."""
        ...

    async def newest_messages(
        self, device_ids: Sequence[str], *, t_from: int = 0, t_to: int = 2**63 - 1
    ) -> dict[str, LeafRecord]:
        """Per device that has one, its telemetry leaf of newest ``t`` in the period (of equal
        times the higher leaf index), in one query per few hundred devices."""
        ...

    # -- samples ---------------------------------------------------------------------------

    async def sample_window(
        self,
        kind: Kind,
        device_id: str,
        *,
        t_from: int,
        t_to: int,
        fields: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> Samples:
        """The device's ``kind`` samples in the period, oldest first, at most ``limit`` (a
        GB/T 32960 terminal's bus has ``bus`` and ``pack`` samples)."""
        ...

    async def sample_blocks_in(
        self,
        kind: Kind,
        device_id: str,
        *,
        t_from: int,
        t_to: int,
        fields: Sequence[str],
    ) -> list[BlockGroup]:
        """The device's ``kind`` sample blocks holding samples in the period, not flattened, grouped
        by size (samples outside the period included: the caller drops them)."""
        ...

    async def sample_summaries_in(
        self,
        kind: Kind,
        device_id: str,
        *,
        t_from: int,
        t_to: int,
        bucket_ms: int,
        names: Sequence[str],
    ) -> SummaryRead:
        """For a chart in buckets of ``bucket_ms``: the summaries of the blocks inside the
        period and one bucket, the other blocks whole."""
        ...

    async def newest_sample(
        self,
        kind: Kind,
        device_id: str,
        *,
        t_from: int,
        t_to: int,
        fields: Sequence[str] | None = None,
    ) -> Samples:
        """The device's newest ``kind`` sample in the period (none or one)."""
        ...

    async def newest_samples(
        self,
        kind: Kind,
        device_ids: Sequence[str],
        *,
        t_from: int = 0,
        t_to: int = 2**63 - 1,
        fields: Sequence[str] | None = None,
    ) -> dict[str, Samples]:
        """Per device that has one, its newest ``kind`` sample in the period, as
        :meth:`newest_sample` finds it, in a few queries for the lot."""
        ...

    async def latest_samples(self, kind: Kind) -> list[dict[str, Any]]:
        """The newest ``kind`` sample of every device that has one, by device id."""
        ...

    async def series(
        self, kind: Kind, device_id: str, *, t_from: int, t_to: int, limit: int = 10_000
    ) -> list[dict[str, Any]]:
        """``kind`` samples of one device in the period, oldest first."""
        ...

    # -- log and proofs --------------------------------------------------------------------

    async def log_head(self) -> LogHead:
        """The committed log size and root."""
        ...

    async def root_at(self, size: int) -> bytes:
        """The root of the first ``size`` leaves."""
        ...

    async def inclusion_proof(self, leaf_index: int, size: int) -> list[bytes]:
        """RFC 9162 inclusion proof of ``leaf_index`` in the tree of ``size``."""
        ...

    async def inclusion_proofs(self, leaf_indexes: Sequence[int], size: int) -> list[list[bytes]]:
        """The inclusion proofs of many leaves in the tree of ``size``, in the order given."""
        ...

    async def inclusion_proof_and_root(
        self, leaf_index: int, size: int
    ) -> tuple[list[bytes], bytes]:
        """The inclusion proof of ``leaf_index`` in the tree of ``size`` and that tree's root."""
        ...

    async def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """RFC 9162 proof that the tree of ``size2`` extends that of ``size1``."""
        ...

    # -- checkpoints and anchors -----------------------------------------------------------

    async def latest_checkpoint(self) -> CheckpointRecord | None:
        """The largest checkpoint, or ``None``."""
        ...

    async def latest_final_checkpoint(self) -> CheckpointRecord | None:
        """The largest checkpoint whose anchor is final, or ``None``."""
        ...

    async def checkpoint(self, size: int) -> CheckpointRecord:
        """The checkpoint of ``size`` (``UnknownCheckpointError`` if none)."""
        ...

    async def checkpoints(
        self, *, limit: int = 100, final_only: bool = False, below_size: int | None = None
    ) -> list[CheckpointRecord]:
        """The newest checkpoints, largest first; ``below_size``: only smaller ones."""
        ...

    async def checkpoints_in(self, states: Sequence[AnchorStatus]) -> list[CheckpointRecord]:
        """Checkpoints whose anchor is in one of ``states``, smallest first."""
        ...

    async def checkpoint_between(self, low: int, high: int) -> CheckpointRecord | None:
        """The smallest checkpoint with ``low <= size <= high``, or ``None``."""
        ...

    async def latest_anchored(self) -> AnchoredCheckpoint | None:
        """The largest checkpoint whose anchor receipt is final, with that receipt."""
        ...

    # -- witness cosignatures --------------------------------------------------------------

    async def cosignatures(self, size: int) -> list[CosignatureRecord]:
        """The stored cosignatures of the checkpoint of ``size``, by witness key."""
        ...

    async def latest_cosigned(self, witness: str) -> CosignatureRecord | None:
        """The cosignature of the largest checkpoint ``witness`` (a vkey) cosigned, or ``None``."""
        ...

    async def cosigned_covering(
        self, *, leaf_from: int, leaf_to: int, size: int
    ) -> list[CosignedCheckpointRecord]:
        """The cosigned checkpoints that first cover each leaf of ``[leaf_from, leaf_to)``,
        with their cosignature lines and consistency proofs to ``size``, smallest first."""
        ...

    # -- quarantine and alarms -------------------------------------------------------------

    async def alarms(
        self,
        *,
        device_id: str | None = None,
        t_from: int = -(2**63 - 1),
        t_to: int = 2**63 - 1,
        min_level: int = 0,
        limit: int = 100,
        before: tuple[int, int] | None = None,
        fleet: str | None = None,
    ) -> list[AlarmRecord]:
        """The newest alarms in the period of level >= ``min_level``, of one device, one
        fleet or all, by ``(t_ms, alarm_id)`` descending; ``before``: only those below that key."""
        ...

    async def alarm(self, alarm_id: int) -> AlarmRecord | None:
        """One alarm by its id, or ``None``."""
        ...

    async def alarm_counts(
        self,
        *,
        device_id: str | None = None,
        t_from: int = -(2**63 - 1),
        t_to: int = 2**63 - 1,
        min_level: int = 1,
        fleet: str | None = None,
    ) -> dict[int, int]:
        """How many alarms of each level >= ``min_level`` the period holds (one device, one
        fleet or all)."""
        ...

    async def quarantine(
        self,
        *,
        reason: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
        topic_prefix: str | None = None,
    ) -> list[QuarantineRecord]:
        """The newest quarantine rows (of one reason, of topics under a prefix, or all), by id
        descending; ``before_id``: only rows below that id."""
        ...

    async def quarantine_counts(self) -> list[QuarantineCount]:
        """Quarantine totals per reason (including evicted rows)."""
        ...

    # -- the whole store, as stored (for the audit) -----------------------------------------

    def snapshot(self) -> AbstractAsyncContextManager[None]:
        """Reads inside see one consistent state of the store."""
        ...

    async def stored_size(self) -> int:
        """The log size as recorded (no node is read or checked)."""
        ...

    async def leaves_page(self, *, after: int, limit: int) -> list[LeafRecord]:
        """At most ``limit`` stored leaves with index above ``after``, by index."""
        ...

    async def stored_nodes(self) -> dict[NodeId, bytes]:
        """Every stored Merkle node."""
        ...

    async def key_ranges(self) -> dict[str, list[KeyRange]]:
        """Every device key with the seqs it may sign, by device."""
        ...

    async def chain_heads(self) -> list[ChainHeadRecord]:
        """Every device's chain head."""
        ...

    async def all_chain_gaps(self) -> dict[str, list[tuple[int, int]]]:
        """Every recorded gap ``[start, stop)``, by device."""
        ...

    async def sample_blocks(self) -> list[SampleBlockRecord]:
        """Every stored sample block, as stored."""
        ...

    async def sample_summaries(self) -> dict[tuple[int, str], tuple[bytes, str | None]]:
        """Every stored block summary and host, by leaf index and kind, as stored."""
        ...

    async def close(self) -> None:
        """Release the reader."""
        ...
