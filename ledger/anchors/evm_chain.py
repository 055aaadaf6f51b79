"""Read-only views of an ``AnchorRegistry`` on a chain: roots, sizes, events, inclusion.

I/O: JSON-RPC calls through web3.py's async API, with back-off and error translation.
Shared by the EVM backend and the offline verifier ``verify_evm_anchor``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal, TypeVar

from eth_abi.abi import decode as abi_decode
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3 import AsyncWeb3
from web3.contract import AsyncContract
from web3.exceptions import BlockNotFound, TransactionNotFound
from web3.types import FilterParams, LogReceipt, TxReceipt

from .evm_rpc import RpcRetry, call_rpc
from .registry import REGISTRY_ABI

T = TypeVar("T")
ANCHORED_TOPIC = keccak(text="Anchored(bytes32,uint64,bytes32)")
ZERO_ROOT = bytes(32)


class TxOutcome(Enum):
    """What became of a transaction that has no ``Anchored`` event in the canonical chain."""

    NOT_MINED = "not mined"  # pending, dropped, or mined in a block that was reorged away
    REVERTED = "reverted"


@dataclass(frozen=True, slots=True, kw_only=True)
class Inclusion:
    """Where an ``Anchored`` event sits in the canonical chain."""

    tx_hash: bytes
    block_number: int
    block_hash: bytes
    log_index: int
    tree_size: int
    root: bytes


def _anchored(log: LogReceipt | dict[str, Any], log_id: bytes) -> tuple[int, bytes] | None:
    topics = [bytes(t) for t in log["topics"]]
    if len(topics) != 2 or topics[0] != ANCHORED_TOPIC or topics[1] != log_id:
        return None
    size, root = abi_decode(["uint64", "bytes32"], bytes(log["data"]))
    return int(size), bytes(root)


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryView:
    """Reads one deployed ``AnchorRegistry``."""

    w3: AsyncWeb3[Any]
    address: str
    retry: RpcRetry
    from_block: int = 0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    @property
    def contract(self) -> AsyncContract:
        """The web3 contract object."""
        return self.w3.eth.contract(
            address=self.w3.to_checksum_address(self.address), abi=REGISTRY_ABI
        )

    async def rpc(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run one RPC call with back-off and error translation."""
        return await call_rpc(what, call, retry=self.retry, sleep=self.sleep)

    async def chain_id(self) -> int:
        """The chain id the node reports."""
        return int(await self.rpc("read chain id", lambda: self.w3.eth.chain_id))

    async def head(self) -> int:
        """The latest block number."""
        return int(await self.rpc("read block number", lambda: self.w3.eth.block_number))

    async def root_at(self, log_id: bytes, tree_size: int) -> bytes:
        """The anchored root at ``tree_size`` (32 zero bytes if none)."""
        fn = self.contract.functions.rootAt(log_id, tree_size)
        return bytes(await self.rpc("read rootAt", fn.call))

    async def latest_size(self, log_id: bytes) -> int:
        """The largest anchored size of ``log_id`` (0 if none)."""
        fn = self.contract.functions.latestSize(log_id)
        return int(await self.rpc("read latestSize", fn.call))

    async def has_code(self) -> bool:
        """Whether a contract is deployed at the address."""
        code = await self.rpc(
            "read contract code", lambda: self.w3.eth.get_code(self.contract.address)
        )
        return len(code) > 0

    async def block_hash(self, number: int) -> bytes | None:
        """The canonical hash of block ``number`` (``None`` past the head)."""

        async def read() -> bytes | None:
            try:
                block = await self.w3.eth.get_block(number)
            except BlockNotFound:
                return None
            return bytes(block["hash"])

        return await self.rpc("read block", read)

    async def block_time(self, number: int) -> tuple[bytes, int] | None:
        """The canonical hash and timestamp (seconds) of block ``number`` (``None`` past the
        head)."""

        async def read() -> tuple[bytes, int] | None:
            try:
                block = await self.w3.eth.get_block(number)
            except BlockNotFound:
                return None
            return bytes(block["hash"]), int(block["timestamp"])

        return await self.rpc("read block", read)

    async def receipt(self, tx_hash: bytes) -> TxReceipt | None:
        """The transaction receipt, or ``None`` if the node has none (pending, dropped, reorged)."""

        async def read() -> TxReceipt | None:
            try:
                return await self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
            except TransactionNotFound:
                return None

        return await self.rpc("read transaction receipt", read)

    async def in_mempool(self, tx_hash: bytes) -> bool:
        """Whether the node knows the transaction but has not mined it."""

        async def read() -> bool:
            try:
                tx = await self.w3.eth.get_transaction(HexBytes(tx_hash))
            except TransactionNotFound:
                return False
            return tx.get("blockNumber") is None

        return await self.rpc("read transaction", read)

    async def inclusion_of(self, tx_hash: bytes, log_id: bytes) -> Inclusion | TxOutcome:
        """The ``Anchored`` event of a mined transaction in the canonical chain, or why not."""
        receipt = await self.receipt(tx_hash)
        if receipt is None:
            return TxOutcome.NOT_MINED
        if receipt["status"] != 1:
            return TxOutcome.REVERTED
        number = int(receipt["blockNumber"])
        if await self.block_hash(number) != bytes(receipt["blockHash"]):
            return TxOutcome.NOT_MINED
        address = self.contract.address.lower()
        for log in receipt["logs"]:
            if str(log["address"]).lower() != address:
                continue
            found = _anchored(log, log_id)
            if found is not None:
                return Inclusion(
                    tx_hash=tx_hash,
                    block_number=number,
                    block_hash=bytes(receipt["blockHash"]),
                    log_index=int(log["logIndex"]),
                    tree_size=found[0],
                    root=found[1],
                )
        return TxOutcome.REVERTED

    async def events(self, log_id: bytes) -> list[Inclusion]:
        """Every ``Anchored`` event of ``log_id`` in the canonical chain, oldest first."""
        return await self.events_between(log_id, first=self.from_block, last="latest")

    async def events_between(
        self, log_id: bytes, *, first: int, last: int | Literal["latest"]
    ) -> list[Inclusion]:
        """The ``Anchored`` events of ``log_id`` in blocks ``first..last`` (inclusive), oldest
        first: one ``eth_getLogs`` call, so callers keep the range bounded."""
        params: FilterParams = {
            "address": self.contract.address,
            "topics": ["0x" + ANCHORED_TOPIC.hex(), "0x" + log_id.hex()],
            "fromBlock": first,
            "toBlock": last,
        }
        logs = await self.rpc("read Anchored events", lambda: self.w3.eth.get_logs(params))
        found = []
        for log in logs:
            anchored = _anchored(log, log_id)
            if anchored is not None and not log.get("removed", False):
                found.append(
                    Inclusion(
                        tx_hash=bytes(log["transactionHash"]),
                        block_number=int(log["blockNumber"]),
                        block_hash=bytes(log["blockHash"]),
                        log_index=int(log["logIndex"]),
                        tree_size=anchored[0],
                        root=anchored[1],
                    )
                )
        return sorted(found, key=lambda event: (event.block_number, event.log_index))

    async def find_event(self, log_id: bytes, tree_size: int) -> Inclusion | None:
        """The ``Anchored`` event of ``(log_id, tree_size)`` in the canonical chain."""
        for event in await self.events(log_id):
            if event.tree_size == tree_size:
                return event
        return None
