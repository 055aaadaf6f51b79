"""The contract every anchor backend must meet, run over every backend (DESIGN.md contract 3).

A test module subclasses ``AnchorContract`` and provides a ``harness`` fixture: an
``AnchorHarness`` that opens backends on one shared ledger (a new backend on the same state is
what a restart looks like), advances the ledger one step towards finality (mines a block) and
counts the anchors a log really has on the ledger.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

import pytest

from ledger.anchors import (
    AnchorBackend,
    AnchorConflict,
    AnchorReceipt,
    AnchorRejected,
    AnchorRequest,
    AnchorState,
)

LOG_A = hashlib.sha256(b"voltproof.example/gw-1").digest()
LOG_B = hashlib.sha256(b"voltproof.example/gw-2").digest()


def root(n: int, salt: bytes = b"") -> bytes:
    """A distinct 32-byte root per ``n`` (and ``salt``)."""
    return hashlib.sha256(salt + n.to_bytes(8, "big")).digest()


def request(size: int, *, log_id: bytes = LOG_A, salt: bytes = b"") -> AnchorRequest:
    """An anchor request for ``size`` with that size's root."""
    return AnchorRequest(log_id=log_id, tree_size=size, root=root(size, salt))


def stable(receipt: AnchorReceipt) -> dict[str, str | int]:
    """A receipt's details without the ones that change as the ledger grows."""
    return {k: v for k, v in receipt.details.items() if k != "confirmations"}


class AnchorHarness(Protocol):
    """What the shared suite needs from one kind of ledger."""

    min_steps: int  # advance() calls at least needed after submit before FINAL
    max_steps: int  # ... and at most

    async def open(self) -> AnchorBackend:
        """A new backend instance on the shared ledger (closed by the harness)."""
        ...

    async def open_unauthorised(self) -> AnchorBackend:
        """A backend whose writer the ledger does not authorise."""
        ...

    async def advance(self) -> None:
        """One step towards finality (mine or wait for a block; nothing for instant ledgers)."""
        ...

    async def anchor_count(self, log_id: bytes) -> int:
        """How many anchors ``log_id`` really has on the ledger."""
        ...


async def settle(
    harness: AnchorHarness, backend: AnchorBackend, req: AnchorRequest
) -> AnchorReceipt:
    """Advance the ledger until ``req`` is final; return the final receipt."""
    receipt = await backend.refresh(req.log_id, req.tree_size)
    for _ in range(harness.max_steps + 1):
        assert receipt is not None
        if receipt.state is AnchorState.FINAL:
            return receipt
        await harness.advance()
        receipt = await backend.refresh(req.log_id, req.tree_size)
    raise AssertionError(f"anchor not final after {harness.max_steps} steps: {receipt}")


class AnchorContract:
    """Behaviour shared by every backend; subclasses provide the ``harness`` fixture."""

    async def test_submit_returns_receipt_for_request(self, harness: AnchorHarness) -> None:
        """A receipt names the backend and echoes the log id, size and root."""
        backend = await harness.open()
        receipt = await backend.submit(request(3))
        assert receipt.backend == backend.name
        assert receipt.request == request(3)

    async def test_get_and_latest_return_anchor(self, harness: AnchorHarness) -> None:
        """``get`` finds an anchored size and ``latest`` the largest one."""
        backend = await harness.open()
        await backend.submit(request(3))
        final = await settle(harness, backend, request(3))
        await backend.submit(request(7))
        await settle(harness, backend, request(7))
        got = await backend.get(LOG_A, 3)
        assert got is not None
        assert stable(got) == stable(final)
        latest = await backend.latest(LOG_A)
        assert latest is not None
        assert latest.request == request(7)

    async def test_unknown_anchor_is_none(self, harness: AnchorHarness) -> None:
        """``get``, ``refresh`` and ``latest`` return None for what was never anchored."""
        backend = await harness.open()
        await backend.submit(request(3))
        assert await backend.get(LOG_A, 4) is None
        assert await backend.refresh(LOG_A, 4) is None
        assert await backend.latest(LOG_B) is None

    async def test_pending_until_final(self, harness: AnchorHarness) -> None:
        """An anchor turns final only after the ledger's required steps, never before."""
        backend = await harness.open()
        receipt = await backend.submit(request(5))
        states = [receipt.state]
        while receipt.state is AnchorState.PENDING and len(states) <= harness.max_steps:
            await harness.advance()
            refreshed = await backend.refresh(LOG_A, 5)
            assert refreshed is not None
            receipt = refreshed
            states.append(receipt.state)
        steps = len(states) - 1
        assert states == [AnchorState.PENDING] * steps + [AnchorState.FINAL]
        assert harness.min_steps <= steps <= harness.max_steps

    async def test_submit_is_idempotent(self, harness: AnchorHarness) -> None:
        """Submitting the same anchor again returns the same receipt and anchors once."""
        backend = await harness.open()
        await backend.submit(request(4))
        first = await settle(harness, backend, request(4))
        again = await backend.submit(request(4))
        assert again.request == first.request
        assert stable(again) == stable(first)
        assert await harness.anchor_count(LOG_A) == 1

    async def test_resubmitting_older_size_is_idempotent(self, harness: AnchorHarness) -> None:
        """An older anchored size, same root, is answered with its receipt, not refused."""
        backend = await harness.open()
        await backend.submit(request(2))
        first = await settle(harness, backend, request(2))
        await backend.submit(request(9))
        again = await backend.submit(request(2))
        assert stable(again) == stable(first)
        await settle(harness, backend, request(9))
        assert await harness.anchor_count(LOG_A) == 2

    async def test_shrinking_size_is_rejected(self, harness: AnchorHarness) -> None:
        """A size below the largest anchored size is refused."""
        backend = await harness.open()
        await backend.submit(request(10))
        await settle(harness, backend, request(10))
        with pytest.raises(AnchorRejected, match=r"tree size 6 is (below|not above) the anchored"):
            await backend.submit(request(6))
        assert await harness.anchor_count(LOG_A) == 1

    async def test_empty_tree_is_rejected(self, harness: AnchorHarness) -> None:
        """Size 0 is never anchored."""
        backend = await harness.open()
        with pytest.raises(AnchorRejected, match="empty tree"):
            await backend.submit(request(0))

    async def test_conflicting_root_is_a_conflict(self, harness: AnchorHarness) -> None:
        """A different root for the latest anchored size raises AnchorConflict."""
        backend = await harness.open()
        await backend.submit(request(8))
        await settle(harness, backend, request(8))
        with pytest.raises(AnchorConflict, match="size 8 is anchored with root") as info:
            await backend.submit(request(8, salt=b"fork"))
        assert info.value.anchored == root(8)
        assert info.value.offered == root(8, b"fork")

    async def test_conflicting_older_root_is_a_conflict(self, harness: AnchorHarness) -> None:
        """A different root for an older anchored size is a conflict, not a mere rejection."""
        backend = await harness.open()
        await backend.submit(request(3))
        await settle(harness, backend, request(3))
        await backend.submit(request(5))
        with pytest.raises(AnchorConflict, match="size 3 is anchored with root"):
            await backend.submit(request(3, salt=b"fork"))

    async def test_logs_are_independent(self, harness: AnchorHarness) -> None:
        """Sizes grow per log id: a large size in one log does not constrain another."""
        backend = await harness.open()
        await backend.submit(request(100, log_id=LOG_A))
        await settle(harness, backend, request(100, log_id=LOG_A))
        receipt = await backend.submit(request(1, log_id=LOG_B))
        assert receipt.request == request(1, log_id=LOG_B)

    async def test_unauthorised_writer_is_rejected(self, harness: AnchorHarness) -> None:
        """A writer the ledger does not authorise cannot anchor."""
        backend = await harness.open_unauthorised()
        with pytest.raises(AnchorRejected, match=r"not authorised|NotWriter"):
            await backend.submit(request(1))
        assert await harness.anchor_count(LOG_A) == 0

    async def test_restarted_backend_does_not_anchor_twice(self, harness: AnchorHarness) -> None:
        """A new backend on the same state finds the anchor made before the restart."""
        before = await harness.open()
        await before.submit(request(6))
        after = await harness.open()
        again = await after.submit(request(6))
        final = await settle(harness, after, request(6))
        assert again.request == request(6)
        assert await harness.anchor_count(LOG_A) == 1
        assert final.request == request(6)

    async def test_receipt_json_round_trips(self, harness: AnchorHarness) -> None:
        """A receipt survives ``to_json``/``from_json`` unchanged."""
        backend = await harness.open()
        await backend.submit(request(2))
        receipt = await settle(harness, backend, request(2))
        assert AnchorReceipt.from_json(receipt.to_json()) == receipt
