"""The in-memory reference anchor backend meets the shared anchor contract."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import pytest_asyncio

from ledger.anchors import (
    AnchorBackend,
    AnchorState,
    AnchorUnavailable,
    MemoryAnchorBackend,
    MemoryLedger,
)
from tests.support.anchor_contract import LOG_A, AnchorContract, request

pytestmark = pytest.mark.asyncio


@dataclass
class MemoryHarness:
    """Backends on one shared ``MemoryLedger`` that turn final after two refreshes."""

    ledger: MemoryLedger = field(default_factory=lambda: MemoryLedger(writers={"gw"}))
    min_steps: int = 2
    max_steps: int = 2
    opened: list[MemoryAnchorBackend] = field(default_factory=list)

    async def open(self) -> AnchorBackend:
        backend = MemoryAnchorBackend(ledger=self.ledger, writer="gw", final_after_refreshes=2)
        self.opened.append(backend)
        return backend

    async def open_unauthorised(self) -> AnchorBackend:
        return MemoryAnchorBackend(ledger=self.ledger, writer="intruder")

    async def advance(self) -> None:
        return None

    async def anchor_count(self, log_id: bytes) -> int:
        return self.ledger.count(log_id)


@pytest_asyncio.fixture
async def harness() -> AsyncIterator[MemoryHarness]:
    """A fresh shared memory ledger."""
    harness = MemoryHarness()
    yield harness
    for backend in harness.opened:
        await backend.aclose()


class TestMemoryContract(AnchorContract):
    """The shared contract over the memory backend."""


async def test_final_immediately_by_default() -> None:
    """Without ``final_after_refreshes`` an anchor is final at once."""
    async with MemoryAnchorBackend() as backend:
        receipt = await backend.submit(request(1))
    assert receipt.state is AnchorState.FINAL


async def test_anyone_may_write_without_writer_list() -> None:
    """A ledger without a writer list accepts every writer."""
    backend = MemoryAnchorBackend(ledger=MemoryLedger(), writer="anyone")
    assert (await backend.submit(request(1))).details["writer"] == "anyone"


async def test_unavailable_ledger_raises_unavailable() -> None:
    """A ledger marked unavailable raises AnchorUnavailable on every call, then recovers."""
    ledger = MemoryLedger()
    backend = MemoryAnchorBackend(ledger=ledger)
    ledger.available = False
    with pytest.raises(AnchorUnavailable, match="memory ledger is unavailable"):
        await backend.submit(request(1))
    with pytest.raises(AnchorUnavailable, match="memory ledger is unavailable"):
        await backend.latest(LOG_A)
    ledger.available = True
    assert (await backend.submit(request(1))).state is AnchorState.FINAL


async def test_closed_backend_raises_unavailable() -> None:
    """A closed backend refuses further calls."""
    backend = MemoryAnchorBackend()
    await backend.aclose()
    with pytest.raises(AnchorUnavailable, match="closed"):
        await backend.get(LOG_A, 1)


async def test_negative_refresh_count_is_refused() -> None:
    """``final_after_refreshes`` cannot be negative."""
    with pytest.raises(ValueError, match="final_after_refreshes must be >= 0"):
        MemoryAnchorBackend(final_after_refreshes=-1)


async def test_memory_backend_satisfies_protocol() -> None:
    """The memory backend is an AnchorBackend."""
    assert isinstance(MemoryAnchorBackend(), AnchorBackend)
