"""The reference in-memory anchor backend: the fake every other backend is measured against.

State lives in a ``MemoryLedger`` that several backend instances may share (a restart is a new
backend on the same ledger). Anchors are final at once, or after a configurable number of
``refresh`` calls so that callers can exercise the pending state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .base import (
    AnchorBackendContext,
    AnchorReceipt,
    AnchorRequest,
    AnchorState,
    check_anchor_fields,
    refuse_empty_tree,
)
from .errors import AnchorConflict, AnchorRejected, AnchorUnavailable

NAME = "memory"


@dataclass(slots=True, kw_only=True)
class _Entry:
    receipt: AnchorReceipt
    refreshes_left: int


@dataclass(slots=True, kw_only=True)
class MemoryLedger:
    """The shared state: anchors per log id, authorised writers (``None``: anyone), availability."""

    writers: set[str] | None = None
    available: bool = True
    entries: dict[bytes, dict[int, _Entry]] = field(default_factory=dict)
    sequence: int = 0

    def count(self, log_id: bytes) -> int:
        """How many anchors ``log_id`` has (pending or final)."""
        return len(self.entries.get(log_id, {}))


class MemoryAnchorBackend(AnchorBackendContext):
    """An in-memory ``AnchorBackend`` writing as ``writer`` into ``ledger``."""

    name = NAME

    def __init__(
        self,
        *,
        ledger: MemoryLedger | None = None,
        writer: str = "writer",
        final_after_refreshes: int = 0,
    ) -> None:
        if final_after_refreshes < 0:
            raise ValueError("final_after_refreshes must be >= 0")
        self.ledger = ledger if ledger is not None else MemoryLedger()
        self.writer = writer
        self.final_after_refreshes = final_after_refreshes
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise AnchorUnavailable("memory anchor backend is closed")
        if not self.ledger.available:
            raise AnchorUnavailable("memory ledger is unavailable")

    async def submit(self, request: AnchorRequest) -> AnchorReceipt:
        """Anchor ``request`` idempotently; refuse shrinking sizes and conflicting roots."""
        self._check_open()
        refuse_empty_tree(request)
        if self.ledger.writers is not None and self.writer not in self.ledger.writers:
            raise AnchorRejected(f"writer {self.writer!r} is not authorised to anchor")
        log = self.ledger.entries.setdefault(request.log_id, {})
        existing = log.get(request.tree_size)
        if existing is not None:
            if existing.receipt.root != request.root:
                raise AnchorConflict(
                    log_id=request.log_id,
                    tree_size=request.tree_size,
                    anchored=existing.receipt.root,
                    offered=request.root,
                )
            return existing.receipt
        largest = max(log, default=0)
        if request.tree_size < largest:
            raise AnchorRejected(
                f"tree size {request.tree_size} is below the anchored size {largest}"
            )
        self.ledger.sequence += 1
        state = AnchorState.FINAL if self.final_after_refreshes == 0 else AnchorState.PENDING
        receipt = AnchorReceipt(
            backend=NAME,
            log_id=request.log_id,
            tree_size=request.tree_size,
            root=request.root,
            state=state,
            details={"sequence": self.ledger.sequence, "writer": self.writer},
        )
        log[request.tree_size] = _Entry(receipt=receipt, refreshes_left=self.final_after_refreshes)
        return receipt

    async def refresh(self, log_id: bytes, tree_size: int) -> AnchorReceipt | None:
        """Count one refresh towards finality and return the current receipt."""
        self._check_open()
        check_anchor_fields(log_id, tree_size)
        entry = self.ledger.entries.get(log_id, {}).get(tree_size)
        if entry is None:
            return None
        if entry.refreshes_left > 0:
            entry.refreshes_left -= 1
            if entry.refreshes_left == 0:
                r = entry.receipt
                entry.receipt = AnchorReceipt(
                    backend=r.backend,
                    log_id=r.log_id,
                    tree_size=r.tree_size,
                    root=r.root,
                    state=AnchorState.FINAL,
                    details=r.details,
                )
        return entry.receipt

    async def latest(self, log_id: bytes) -> AnchorReceipt | None:
        """Return the receipt of the largest anchored size of ``log_id``."""
        self._check_open()
        check_anchor_fields(log_id, 0)
        log = self.ledger.entries.get(log_id)
        if not log:
            return None
        return log[max(log)].receipt

    async def get(self, log_id: bytes, tree_size: int) -> AnchorReceipt | None:
        """Return the receipt for ``tree_size`` or ``None``."""
        self._check_open()
        check_anchor_fields(log_id, tree_size)
        entry = self.ledger.entries.get(log_id, {}).get(tree_size)
        return None if entry is None else entry.receipt

    async def aclose(self) -> None:
        """Mark the backend closed (the shared ledger stays)."""
        self._closed = True
