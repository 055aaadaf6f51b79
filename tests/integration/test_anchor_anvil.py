"""The EVM anchor backend against a real JSON-RPC node: anvil, instant mining and 1 s blocks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from web3 import AsyncWeb3

from ledger.anchors import (
    AnchorBackend,
    AnchorNotFinalError,
    AnchorNotFoundError,
    AnchorReceipt,
    AnchorReceiptMismatchError,
    AnchorRootMismatchError,
    AnchorState,
    AnchorUnavailable,
    AnchorVerificationError,
)
from ledger.anchors.evm import EvmAnchorBackend, make_web3
from ledger.anchors.evm_chain import RegistryView
from ledger.anchors.evm_deploy import deploy_registry
from ledger.anchors.evm_key import EvmKey
from ledger.anchors.evm_rpc import RpcRetry
from ledger.anchors.evm_store import EvmTxStore
from ledger.anchors.evm_verify import verify_evm_anchor
from ledger.backoff import Backoff
from tests.support.anchor_contract import LOG_A, AnchorContract, request
from tests.support.anvil_keys import funded_keys
from tests.support.binaries import require_binary
from voltproof.anvil import INSTALL_HINT, AnvilNode, find_anvil

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

FAST = RpcRetry(attempts=2, schedule=Backoff(base_s=0.01, cap_s=0.01))


@dataclass
class AnvilHarness:
    """A registry on a running anvil; backends share one SQLite transaction store file."""

    node: AnvilNode
    w3: AsyncWeb3[Any]
    store_path: Path
    owner: EvmKey
    writer: EvmKey
    intruder: EvmKey
    contract: str
    confirmations: int
    min_steps: int
    max_steps: int
    backends: list[EvmAnchorBackend] = field(default_factory=list)

    async def open_with(self, key: EvmKey | None, *, retry: RpcRetry = FAST) -> EvmAnchorBackend:
        backend = await EvmAnchorBackend.connect(
            rpc_url=self.node.url,
            contract=self.contract,
            store=await EvmTxStore.open(self.store_path),
            key=key,
            confirmations=self.confirmations,
            retry=retry,
            owns_store=True,
        )
        self.backends.append(backend)
        return backend

    async def open(self) -> AnchorBackend:
        return await self.open_with(self.writer)

    async def open_unauthorised(self) -> AnchorBackend:
        return await self.open_with(self.intruder)

    async def advance(self) -> None:
        if self.node.block_time is None:
            await self.node.arpc("evm_mine")
            return
        start = await self.w3.eth.block_number
        async with asyncio.timeout(10):
            while await self.w3.eth.block_number == start:  # noqa: ASYNC110 - a remote node
                await asyncio.sleep(0.05)

    async def anchor_count(self, log_id: bytes) -> int:
        view = RegistryView(w3=self.w3, address=self.contract, retry=FAST)
        return len(await view.events(log_id))


async def start_harness(tmp_path: Path, *, block_time: float | None) -> AnvilHarness:
    """Start anvil, deploy a registry and authorise one writer."""
    binary = require_binary(
        None if (found := find_anvil()) is None else str(found), "anvil", INSTALL_HINT
    )
    node = AnvilNode(binary=Path(binary), block_time=block_time, state=tmp_path / "anvil.json")
    await node.start()
    w3 = make_web3(node.url)
    owner, writer, intruder = await funded_keys(w3, 3)
    deployed = await deploy_registry(w3, key=owner, writers=[writer.address])
    instant = block_time is None
    return AnvilHarness(
        node=node,
        w3=w3,
        store_path=tmp_path / "evm-txs.sqlite3",
        owner=owner,
        writer=writer,
        intruder=intruder,
        contract=deployed.address,
        confirmations=3 if instant else 2,
        min_steps=2 if instant else 1,
        max_steps=2 if instant else 3,
    )


async def stop_harness(harness: AnvilHarness) -> None:
    """Close every backend, the web3 session and anvil."""
    for backend in harness.backends:
        await backend.aclose()
    await harness.w3.provider.disconnect()
    await harness.node.stop()


@pytest_asyncio.fixture
async def instant(tmp_path: Path) -> AsyncIterator[AnvilHarness]:
    """anvil mining one block per transaction."""
    harness = await start_harness(tmp_path, block_time=None)
    yield harness
    await stop_harness(harness)


class TestAnvilInstantContract(AnchorContract):
    """The shared contract on anvil with instant mining."""

    @pytest_asyncio.fixture
    async def harness(self, instant: AnvilHarness) -> AnvilHarness:
        """The instant-mining harness."""
        return instant


class TestAnvilBlockTimeContract(AnchorContract):
    """The shared contract on anvil mining a block every second."""

    @pytest_asyncio.fixture
    async def harness(self, tmp_path: Path) -> AsyncIterator[AnvilHarness]:
        """anvil with ``--block-time 1``."""
        harness = await start_harness(tmp_path, block_time=1)
        yield harness
        await stop_harness(harness)


async def settle(harness: AnvilHarness, backend: EvmAnchorBackend, size: int) -> AnchorReceipt:
    """Mine until ``size`` is final."""
    for _ in range(harness.confirmations + 1):
        receipt = await backend.refresh(LOG_A, size)
        assert receipt is not None
        if receipt.state is AnchorState.FINAL:
            return receipt
        await harness.advance()
    raise AssertionError("not final")


async def test_crash_between_send_and_receipt(instant: AnvilHarness) -> None:
    """A backend restarted while its transaction waits in the pool does not send another."""
    await instant.node.arpc("evm_setAutomine", False)
    before = await instant.open_with(instant.writer)
    sent = await before.submit(request(4))
    assert sent.state is AnchorState.PENDING
    pool_nonce = await instant.w3.eth.get_transaction_count(
        instant.writer.account.address, "pending"
    )
    after = await instant.open_with(instant.writer)
    again = await after.submit(request(4))
    assert again.details["tx_hash"] == sent.details["tx_hash"]
    assert (
        await instant.w3.eth.get_transaction_count(instant.writer.account.address, "pending")
        == pool_nonce
    )
    await instant.node.arpc("evm_mine")
    final = await settle(instant, after, 4)
    assert final.details["tx_hash"] == sent.details["tx_hash"]
    assert await instant.anchor_count(LOG_A) == 1


async def test_dropped_transaction_is_resent(instant: AnvilHarness) -> None:
    """A transaction the node dropped from its pool is broadcast again on refresh."""
    await instant.node.arpc("evm_setAutomine", False)
    backend = await instant.open_with(instant.writer)
    sent = await backend.submit(request(4))
    await instant.node.arpc("anvil_dropTransaction", sent.details["tx_hash"])
    assert await instant.w3.eth.get_transaction_count(
        instant.writer.account.address, "pending"
    ) == (await instant.w3.eth.get_transaction_count(instant.writer.account.address, "latest"))
    resent = await backend.refresh(LOG_A, 4)
    assert resent is not None
    assert resent.state is AnchorState.PENDING
    await instant.node.arpc("evm_mine")
    assert (await settle(instant, backend, 4)).request == request(4)
    assert await instant.anchor_count(LOG_A) == 1


async def test_rebroadcast_of_a_transaction_mined_meanwhile_is_no_refusal(
    instant: AnvilHarness,
) -> None:
    """The race seen with a block every second: the backend looked, found the transaction not
    mined, and by the time it re-sends, a block holds it (its nonce is taken). It must take
    the anchor on chain as its own, not refuse it as "not above the anchored size"."""
    backend = await instant.open_with(instant.writer)
    sent = await backend.submit(request(4))
    # The race is forced at the step it happens in: private methods, on a real node.
    stored = await backend._stored(LOG_A, 4)
    assert stored is not None
    assert backend._sender is not None
    again = await backend._rebroadcast(request(4), stored, backend._sender)
    assert again.tx_hash.hex() in str(sent.details["tx_hash"])
    assert (await settle(instant, backend, 4)).request == request(4)
    assert await instant.anchor_count(LOG_A) == 1


async def test_reorg_is_detected_and_reanchored(instant: AnvilHarness) -> None:
    """After evm_revert removes the anchor's block, refresh anchors the root again."""
    backend = await instant.open_with(instant.writer)
    snapshot = await instant.node.arpc("evm_snapshot")
    await backend.submit(request(6))
    first = await settle(instant, backend, 6)
    assert await instant.node.arpc("evm_revert", snapshot) is True
    await instant.node.arpc("evm_mine")  # the replacement chain moves on without the anchor
    view = RegistryView(w3=instant.w3, address=instant.contract, retry=FAST)
    assert await view.root_at(LOG_A, 6) == bytes(32)
    again = await settle(instant, backend, 6)
    assert again.details["block_hash"] != first.details["block_hash"]
    assert await view.root_at(LOG_A, 6) == request(6).root
    assert await instant.anchor_count(LOG_A) == 1


async def test_rpc_down_then_up(instant: AnvilHarness) -> None:
    """With the node down calls raise AnchorUnavailable; once it is back, anchoring succeeds."""
    backend = await instant.open_with(instant.writer)
    await backend.submit(request(1))
    await instant.node.stop()
    with pytest.raises(AnchorUnavailable, match="EVM node unreachable after 2 attempts"):
        await backend.submit(request(2))
    with pytest.raises(AnchorUnavailable, match="EVM node unreachable"):
        await backend.latest(LOG_A)
    await instant.node.start()
    receipt = await backend.submit(request(2))
    assert receipt.request == request(2)
    assert (await settle(instant, backend, 2)).state is AnchorState.FINAL


async def test_connect_to_dead_node_is_unavailable() -> None:
    """Connecting to a node that is not there raises AnchorUnavailable."""
    store = await EvmTxStore.open(":memory:")
    with pytest.raises(AnchorUnavailable, match="read chain id: EVM node unreachable"):
        await EvmAnchorBackend.connect(
            rpc_url="http://127.0.0.1:9", contract="0x" + "11" * 20, store=store,
            key=None, confirmations=1, retry=FAST,
        )  # fmt: skip
    await store.aclose()


async def test_poa_middleware_reads_chain(instant: AnvilHarness) -> None:
    """A backend with the proof-of-authority middleware reads and writes normally."""
    backend = await EvmAnchorBackend.connect(
        rpc_url=instant.node.url, contract=instant.contract,
        store=await EvmTxStore.open(":memory:"), key=instant.writer,
        confirmations=1, poa=True, retry=FAST, owns_store=True,
    )  # fmt: skip
    instant.backends.append(backend)
    assert (await backend.submit(request(2))).state is AnchorState.FINAL


# --- verify_evm_anchor -----------------------------------------------------------------------


@pytest_asyncio.fixture
async def anchored(instant: AnvilHarness) -> AnchorReceipt:
    """A final anchor of size 5 with three confirmations."""
    backend = await instant.open_with(instant.writer)
    await backend.submit(request(5))
    return await settle(instant, backend, 5)


async def test_verify_evm_anchor_accepts_final_anchor(
    instant: AnvilHarness, anchored: AnchorReceipt
) -> None:
    """A final receipt checks out against the node and the pinned contract."""
    await verify_evm_anchor(
        anchored, rpc_url=instant.node.url, contract=instant.contract, confirmations=3
    )


def forged(receipt: AnchorReceipt, **changes: Any) -> AnchorReceipt:
    """``receipt`` with some fields or details replaced."""
    details = dict(receipt.details)
    details.update(changes.pop("details", {}))
    fields: dict[str, Any] = {
        "backend": receipt.backend, "log_id": receipt.log_id, "tree_size": receipt.tree_size,
        "root": receipt.root, "state": receipt.state, "details": details,
    }  # fmt: skip
    fields.update(changes)
    return AnchorReceipt(**fields)


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"root": b"\x01" * 32}, AnchorRootMismatchError, "receipt says 0101"),
        ({"tree_size": 4}, AnchorNotFoundError, "registry holds no root for log .* size 4"),
        ({"details": {"chain_id": 1}}, AnchorReceiptMismatchError, "chain 1, the node serves"),
        ({"details": {"block_number": 1}}, AnchorReceiptMismatchError, "receipt block_number is 1"),
        ({"details": {"log_index": 3}}, AnchorReceiptMismatchError, "receipt log_index is 3"),
        ({"details": {"tx_hash": "0x" + "00" * 32}}, AnchorReceiptMismatchError, "receipt tx_hash"),
        (
            {"details": {"contract": "0x" + "22" * 20}},
            AnchorReceiptMismatchError,
            "the verifier trusts",
        ),
        ({"backend": "local"}, AnchorReceiptMismatchError, "backend 'local', not 'evm'"),
    ],
)
async def test_verify_evm_anchor_catches_forgery(
    instant: AnvilHarness,
    anchored: AnchorReceipt,
    changes: dict[str, Any],
    error: type[AnchorVerificationError],
    message: str,
) -> None:
    """Each forged field is caught with the right error."""
    with pytest.raises(error, match=message):
        await verify_evm_anchor(
            forged(anchored, **changes), rpc_url=instant.node.url, contract=instant.contract
        )


async def test_verify_evm_anchor_requires_confirmations(
    instant: AnvilHarness, anchored: AnchorReceipt
) -> None:
    """Too few confirmations is its own failure."""
    with pytest.raises(AnchorNotFinalError, match="anchor has 3 confirmations, 10 are required"):
        await verify_evm_anchor(anchored, rpc_url=instant.node.url, confirmations=10)


async def test_verify_evm_anchor_without_contract_code(
    instant: AnvilHarness, anchored: AnchorReceipt
) -> None:
    """A receipt naming an address without code is not found."""
    receipt = forged(anchored, details={"contract": instant.writer.address})
    with pytest.raises(AnchorNotFoundError, match="no contract at"):
        await verify_evm_anchor(receipt, rpc_url=instant.node.url)


async def test_verify_evm_anchor_with_node_down(
    instant: AnvilHarness, anchored: AnchorReceipt
) -> None:
    """An unreachable node says so, and is no verdict on the anchor (not a verification
    failure: a mistyped --rpc must not make honest evidence look forged)."""
    await instant.node.stop()
    with pytest.raises(AnchorUnavailable, match="cannot check the anchor on http"):
        await verify_evm_anchor(anchored, rpc_url=instant.node.url, retry=FAST)
