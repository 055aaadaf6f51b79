"""The store interface: what the pipeline, checkpointer, anchorer, registry and API need.

Kept small on purpose so a PostgreSQL store (several gateways on one database) can implement
it. Every write method is one atomic transaction that returns only after it is durable; a
log append reads the committed size and border nodes inside its own transaction, so
concurrent writers never fork the log.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ledger.telemetry import Kind

from .records import (
    AlarmRecord,
    AnchorStatus,
    Candidate,
    CheckpointRecord,
    DeviceRecord,
    LeafRecord,
    LogHead,
    QuarantineCount,
    QuarantineEntry,
    QuarantineRecord,
    RegistryChange,
    StoredOutcome,
)


class Store(Protocol):
    """Durable gateway state; every method may raise ``StoreError``."""

    async def commit(
        self, candidates: Sequence[Candidate], rejections: Sequence[QuarantineEntry]
    ) -> list[StoredOutcome]:
        """Decide chains, append accepted leaves and quarantine the rest in one transaction."""
        ...

    async def apply_registry(self, changes: Sequence[RegistryChange]) -> list[int]:
        """Append registry leaves and update the devices in one transaction."""
        ...

    async def devices(self, device_ids: Sequence[str]) -> dict[str, DeviceRecord]:
        """The registered devices among ``device_ids``."""
        ...

    async def list_devices(self) -> list[DeviceRecord]:
        """Every registered device."""
        ...

    async def log_head(self) -> LogHead:
        """The committed log size and root."""
        ...

    async def root_at(self, size: int) -> bytes:
        """The root of the first ``size`` leaves."""
        ...

    async def inclusion_proof(self, leaf_index: int, size: int) -> list[bytes]:
        """RFC 9162 inclusion proof."""
        ...

    async def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """RFC 9162 consistency proof."""
        ...

    async def leaf(self, leaf_index: int) -> LeafRecord:
        """One stored leaf."""
        ...

    async def add_checkpoint(self, record: CheckpointRecord) -> None:
        """Store a signed checkpoint."""
        ...

    async def latest_checkpoint(self) -> CheckpointRecord | None:
        """The largest checkpoint."""
        ...

    async def checkpoints_in(self, states: Sequence[AnchorStatus]) -> list[CheckpointRecord]:
        """Checkpoints whose anchor is in one of ``states``."""
        ...

    async def record_anchor(
        self, *, size: int, backend: str, state: AnchorStatus, receipt: str, now_ms: int
    ) -> None:
        """Store an anchor receipt for checkpoint ``size``."""
        ...

    async def latest_samples(self, kind: Kind) -> list[dict[str, Any]]:
        """Newest sample per device of ``kind``."""
        ...

    async def series(
        self, kind: Kind, device_id: str, *, t_from: int, t_to: int, limit: int = 10_000
    ) -> list[dict[str, Any]]:
        """One device's samples over a period."""
        ...

    async def alarms(self, *, device_id: str | None = None, limit: int = 100) -> list[AlarmRecord]:
        """The newest alarms."""
        ...

    async def quarantine(
        self, *, reason: str | None = None, limit: int = 100
    ) -> list[QuarantineRecord]:
        """The newest quarantine rows."""
        ...

    async def quarantine_counts(self) -> list[QuarantineCount]:
        """Quarantine totals per reason."""
        ...

    async def close(self) -> None:
        """Release the store."""
        ...
