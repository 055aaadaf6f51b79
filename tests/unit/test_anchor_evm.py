"""The EVM anchor backend on an in-process EVM (eth-tester / py-evm): shared contract and more."""

from __future__ import annotations

import ast
import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from eth_tester.exceptions import TransactionFailed  # type: ignore[import-untyped]  # no stubs
from eth_typing import HexStr
from eth_utils.crypto import keccak
from web3 import AsyncWeb3
from web3.providers.eth_tester import AsyncEthereumTesterProvider
from web3.types import RPCEndpoint, RPCResponse, Wei

from ledger.anchors import AnchorBackend, AnchorReceipt, AnchorRejected, AnchorState
from ledger.anchors.evm import EvmAnchorBackend
from ledger.anchors.evm_chain import RegistryView
from ledger.anchors.evm_deploy import add_writer, deploy_registry, remove_writer
from ledger.anchors.evm_key import EvmKey
from ledger.anchors.evm_rpc import RpcRetry, describe_revert
from ledger.anchors.evm_store import EvmTxStore, StoredTx
from ledger.anchors.evm_tx import FeePolicy, SignedTx, TxSender
from tests.support.anchor_contract import LOG_A, AnchorContract, request

pytestmark = pytest.mark.asyncio

CONFIRMATIONS = 3
REVERTED = "execution reverted: "


class NodeLikeTesterProvider(AsyncEthereumTesterProvider):
    """eth-tester answering a revert as JSON-RPC nodes do: an error carrying the revert data.

    web3's eth-tester provider raises eth-tester's own exception with the data's Python repr;
    geth, anvil and Besu answer ``{"code": 3, "message": "execution reverted", "data": ...}``.
    """

    async def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        try:
            return await super().make_request(method, params)
        except TransactionFailed as exc:
            payload = str(exc.args[0]).removeprefix(REVERTED)
            data = ast.literal_eval(payload) if payload[:2] in {"b'", 'b"'} else b""
            return {
                "jsonrpc": "2.0",
                "id": 0,
                "error": {"code": 3, "message": "execution reverted", "data": "0x" + data.hex()},
            }


async def funded_key(w3: AsyncWeb3[Any]) -> EvmKey:
    """A fresh random account holding 100 ether from the test chain's first account."""
    key = EvmKey.from_hex(os.urandom(32).hex())
    funder = (await w3.eth.accounts)[0]
    await w3.eth.send_transaction({"from": funder, "to": key.address, "value": Wei(10**20)})
    return key


@dataclass
class ChainHarness:
    """A registry on an eth-tester chain; backends share one SQLite transaction store file."""

    w3: AsyncWeb3[Any]
    provider: NodeLikeTesterProvider
    store_path: Path
    owner: EvmKey
    writer: EvmKey
    intruder: EvmKey
    contract: str
    min_steps: int = CONFIRMATIONS - 1
    max_steps: int = CONFIRMATIONS - 1
    closers: list[EvmAnchorBackend] = field(default_factory=list)

    async def _open(self, key: EvmKey) -> EvmAnchorBackend:
        backend = await EvmAnchorBackend.create(
            w3=self.w3,
            contract=self.contract,
            store=await EvmTxStore.open(self.store_path),
            key=key,
            confirmations=CONFIRMATIONS,
            owns_store=True,
        )
        self.closers.append(backend)
        return backend

    async def open(self) -> AnchorBackend:
        return await self._open(self.writer)

    async def open_unauthorised(self) -> AnchorBackend:
        return await self._open(self.intruder)

    async def advance(self) -> None:
        self.provider.ethereum_tester.mine_blocks(1)

    async def anchor_count(self, log_id: bytes) -> int:
        view = RegistryView(w3=self.w3, address=self.contract, retry=RpcRetry())
        return len(await view.events(log_id))


@dataclass(frozen=True)
class Chain:
    """An in-process chain with a deployed registry, and a snapshot of that state."""

    provider: NodeLikeTesterProvider
    owner: EvmKey
    writer: EvmKey
    intruder: EvmKey
    contract: str
    snapshot: int


async def _build_chain() -> Chain:
    provider = NodeLikeTesterProvider()
    w3: AsyncWeb3[Any] = AsyncWeb3(provider)
    owner, writer, intruder = [await funded_key(w3) for _ in range(3)]
    deployed = await deploy_registry(w3, key=owner, writers=[writer.address])
    return Chain(
        provider=provider,
        owner=owner,
        writer=writer,
        intruder=intruder,
        contract=deployed.address,
        snapshot=provider.ethereum_tester.take_snapshot(),
    )


@pytest.fixture(scope="module")
def chain() -> Chain:
    """One chain per module (py-evm is slow to start); each test starts from its snapshot."""
    return asyncio.run(_build_chain())


@pytest_asyncio.fixture
async def harness(chain: Chain, tmp_path: Path) -> AsyncIterator[ChainHarness]:
    """The chain reverted to just after deployment, and a fresh transaction store."""
    chain.provider.ethereum_tester.revert_to_snapshot(chain.snapshot)
    harness = ChainHarness(
        w3=AsyncWeb3(chain.provider),
        provider=chain.provider,
        store_path=tmp_path / "evm-txs.sqlite3",
        owner=chain.owner,
        writer=chain.writer,
        intruder=chain.intruder,
        contract=chain.contract,
    )
    yield harness
    for backend in harness.closers:
        await backend.aclose()


class TestEvmTesterContract(AnchorContract):
    """The shared contract over the EVM backend on eth-tester."""


async def _final(harness: ChainHarness, backend: EvmAnchorBackend, size: int) -> AnchorReceipt:
    harness.provider.ethereum_tester.mine_blocks(CONFIRMATIONS)
    receipt = await backend.refresh(LOG_A, size)
    assert receipt is not None
    assert receipt.state is AnchorState.FINAL
    return receipt


async def test_reorg_removing_anchor_is_reanchored(harness: ChainHarness) -> None:
    """When the anchor's block leaves the chain, refresh anchors the same root again."""
    tester = harness.provider.ethereum_tester
    backend = await harness._open(harness.writer)
    before = tester.take_snapshot()
    await backend.submit(request(5))
    await _final(harness, backend, 5)
    tester.revert_to_snapshot(before)
    view = RegistryView(w3=harness.w3, address=harness.contract, retry=RpcRetry())
    assert await view.root_at(LOG_A, 5) == bytes(32)
    assert await backend.get(LOG_A, 5) is not None  # still known locally, as pending
    again = await backend.refresh(LOG_A, 5)
    assert again is not None
    assert await view.root_at(LOG_A, 5) == request(5).root
    assert (await _final(harness, backend, 5)).request == request(5)
    assert await harness.anchor_count(LOG_A) == 1


async def test_get_does_not_resend_after_reorg(harness: ChainHarness) -> None:
    """``get`` only reads: after a reorg it reports pending and sends nothing."""
    tester = harness.provider.ethereum_tester
    backend = await harness._open(harness.writer)
    before = tester.take_snapshot()
    await backend.submit(request(5))
    tester.revert_to_snapshot(before)
    receipt = await backend.get(LOG_A, 5)
    assert receipt is not None
    assert receipt.state is AnchorState.PENDING
    assert receipt.details["confirmations"] == 0
    assert await harness.anchor_count(LOG_A) == 0


async def _sign_without_sending(harness: ChainHarness, size: int) -> SignedTx:
    """Sign an anchor transaction and record it, as a backend does right before a crash."""
    w3 = harness.w3
    sender = TxSender(
        w3=w3,
        key=harness.writer,
        chain_id=await w3.eth.chain_id,
        fees=FeePolicy(),
        retry=RpcRetry(),
    )
    view = RegistryView(w3=w3, address=harness.contract, retry=RpcRetry())
    req = request(size)
    data = view.contract.encode_abi("anchor", args=[req.log_id, req.tree_size, req.root])
    signed = await sender.sign(
        {"to": view.contract.address, "data": data}, nonce=await sender.next_nonce()
    )
    store = await EvmTxStore.open(harness.store_path)
    await store.put(
        chain_id=sender.chain_id,
        contract=view.contract.address,
        tx=StoredTx(
            log_id=req.log_id, tree_size=size, root=req.root,
            tx_hash=signed.tx_hash, raw_tx=signed.raw, nonce=signed.nonce,
        ),
    )  # fmt: skip
    await store.aclose()
    return signed


async def test_crash_before_broadcast_sends_recorded_tx(harness: ChainHarness) -> None:
    """A transaction recorded but never sent is broadcast by the restarted backend, unchanged."""
    signed = await _sign_without_sending(harness, 7)
    backend = await harness._open(harness.writer)
    receipt = await backend.submit(request(7))
    assert receipt.details["tx_hash"] == "0x" + signed.tx_hash.hex()
    await _final(harness, backend, 7)
    assert await harness.anchor_count(LOG_A) == 1


async def test_recorded_tx_whose_nonce_was_taken_is_replaced(harness: ChainHarness) -> None:
    """If the recorded transaction's nonce went to another transaction, a new one anchors."""
    signed = await _sign_without_sending(harness, 7)
    transfer: dict[str, Any] = {
        "to": harness.owner.address, "value": 1, "gas": 21_000, "gasPrice": 10**10,
        "nonce": signed.nonce, "chainId": await harness.w3.eth.chain_id,
    }  # fmt: skip
    other = harness.writer.account.sign_transaction(transfer)
    await harness.w3.eth.send_raw_transaction(other.raw_transaction)
    backend = await harness._open(harness.writer)
    receipt = await backend.refresh(LOG_A, 7)
    assert receipt is not None
    assert receipt.details["tx_hash"] != "0x" + signed.tx_hash.hex()
    await _final(harness, backend, 7)
    assert await harness.anchor_count(LOG_A) == 1


async def test_removed_writer_is_rejected(harness: ChainHarness) -> None:
    """Once the owner removes a writer, its anchors are refused with NotWriter."""
    backend = await harness._open(harness.writer)
    await backend.submit(request(1))
    await remove_writer(
        harness.w3, key=harness.owner, registry=harness.contract, writer=harness.writer.address
    )
    with pytest.raises(AnchorRejected, match=r"NotWriter\(0x"):
        await backend.submit(request(2))
    await add_writer(
        harness.w3, key=harness.owner, registry=harness.contract, writer=harness.writer.address
    )
    assert (await backend.submit(request(2))).request == request(2)


async def test_non_owner_cannot_add_writers(harness: ChainHarness) -> None:
    """Only the owner manages writers (NotOwner)."""
    with pytest.raises(AnchorRejected, match=r"NotOwner\(0x"):
        await add_writer(
            harness.w3,
            key=harness.intruder,
            registry=harness.contract,
            writer=harness.intruder.address,
        )


async def test_read_only_backend_cannot_submit(harness: ChainHarness) -> None:
    """A backend without a key reads anchors but refuses to send."""
    writer = await harness._open(harness.writer)
    await writer.submit(request(1))
    reader = await EvmAnchorBackend.create(
        w3=harness.w3, contract=harness.contract, store=await EvmTxStore.open(":memory:"),
        key=None, confirmations=1, owns_store=True,
    )  # fmt: skip
    async with reader:
        assert (await reader.get(LOG_A, 1)) is not None
        assert (await reader.latest(LOG_A)) is not None
        with pytest.raises(AnchorRejected, match="has no key"):
            await reader.submit(request(2))


async def test_legacy_fees_when_forced(harness: ChainHarness) -> None:
    """A legacy fee policy sends a gasPrice transaction that anchors too."""
    backend = await EvmAnchorBackend.create(
        w3=harness.w3, contract=harness.contract, store=await EvmTxStore.open(":memory:"),
        key=harness.writer, confirmations=1, owns_store=True, fees=FeePolicy(legacy=True),
    )  # fmt: skip
    async with backend:
        receipt = await backend.submit(request(3))
    tx = await harness.w3.eth.get_transaction(HexStr(str(receipt.details["tx_hash"])))
    assert tx["type"] == 0
    assert receipt.state is AnchorState.FINAL


async def test_zero_confirmations_is_refused(harness: ChainHarness) -> None:
    """At least one confirmation is required."""
    store = await EvmTxStore.open(":memory:")
    with pytest.raises(ValueError, match="confirmations must be >= 1"):
        await EvmAnchorBackend.create(
            w3=harness.w3, contract=harness.contract, store=store, key=None, confirmations=0
        )
    await store.aclose()


async def test_repr_hides_private_key(harness: ChainHarness) -> None:
    """Neither the backend nor the key shows the private key."""
    backend = await harness._open(harness.writer)
    secret = bytes(harness.writer.account.key).hex()
    assert secret not in repr(backend)
    assert secret not in repr(harness.writer)
    assert harness.writer.address in repr(backend)


async def test_describe_revert_names_custom_errors() -> None:
    """Revert data is decoded into the contract's custom error and arguments."""
    assert describe_revert(None) == "reverted without data"
    assert describe_revert("0xdeadbeef") == "reverted with data 0xdeadbeef"
    assert describe_revert("0x" + keccak(text="ZeroRoot()")[:4].hex()) == "ZeroRoot()"
    truncated = keccak(text="NotWriter(address)")[:4]
    assert describe_revert(truncated) == "NotWriter(undecodable arguments)"
