"""The store interface: what the pipeline, checkpointer, anchorer, registry and API need.

Kept small on purpose so a PostgreSQL store (several gateways on one database) can implement
it. Every write method is one atomic transaction that returns only after it is durable; a
log append reads the committed size and border nodes inside its own transaction, so
concurrent writers never fork the log.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .reader import StoreReader
from .records import (
    AnchorStatus,
    Candidate,
    CheckpointRecord,
    CosignatureRecord,
    QuarantineEntry,
    RegistryChange,
    StoredOutcome,
)


class Store(StoreReader, Protocol):
    """Durable gateway state: the reads of :class:`StoreReader` and the writes.

    Every method may raise ``StoreError``.
    """

    async def commit(
        self, candidates: Sequence[Candidate], rejections: Sequence[QuarantineEntry]
    ) -> list[StoredOutcome]:
        """Decide chains, append accepted leaves and quarantine the rest in one transaction."""
        ...

    async def apply_registry(
        self, changes: Sequence[RegistryChange], *, operator_key: bytes
    ) -> list[int]:
        """Append registry leaves and update the devices in one transaction, after the
        registry rules (``ledger.registry.check_registry``, signers checked against
        ``operator_key``) accepted them; else raise ``RegistryConflictError``."""
        ...

    async def add_checkpoint(self, record: CheckpointRecord) -> None:
        """Store a signed checkpoint."""
        ...

    async def record_anchor(
        self, *, size: int, backend: str, state: AnchorStatus, receipt: str, now_ms: int
    ) -> None:
        """Store an anchor receipt for checkpoint ``size``."""
        ...

    async def add_cosignature(self, record: CosignatureRecord) -> bool:
        """Store a verified cosignature; False if that witness's one for the size is stored."""
        ...
