"""Deploying an ``AnchorRegistry`` and managing its writers.

I/O: JSON-RPC. The deploying account becomes the owner; ``writers`` are authorised in the same
call (the owner itself only if listed). Transactions are signed locally like anchors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hexbytes import HexBytes
from web3 import AsyncWeb3

from .errors import AnchorRejected, AnchorUnavailable
from .evm_key import EvmKey
from .evm_rpc import RpcRetry, call_rpc
from .evm_tx import FeePolicy, TxSender
from .registry import REGISTRY_ABI, REGISTRY_BYTECODE


@dataclass(frozen=True, slots=True, kw_only=True)
class DeployedRegistry:
    """Where a registry was deployed."""

    address: str
    tx_hash: bytes
    block_number: int
    chain_id: int


async def _sender(
    w3: AsyncWeb3[Any],
    key: EvmKey,
    fees: FeePolicy | None,
    retry: RpcRetry | None,
    sleep: Callable[[float], Awaitable[None]],
) -> TxSender:
    retry = retry or RpcRetry()
    chain_id = await call_rpc("read chain id", lambda: w3.eth.chain_id, retry=retry, sleep=sleep)
    return TxSender(
        w3=w3, key=key, chain_id=chain_id, fees=fees or FeePolicy(), retry=retry, sleep=sleep
    )


async def _transact(
    sender: TxSender, tx: dict[str, Any], *, what: str, receipt_timeout: float
) -> dict[str, Any]:
    signed = await sender.sign(tx, nonce=await sender.next_nonce())  # type: ignore[arg-type]
    await sender.broadcast(signed)
    receipt = await sender.rpc(
        what,
        lambda: sender.w3.eth.wait_for_transaction_receipt(
            HexBytes(signed.tx_hash), timeout=receipt_timeout, poll_latency=0.1
        ),
    )
    if receipt["status"] != 1:
        raise AnchorRejected(f"{what}: transaction 0x{signed.tx_hash.hex()} reverted")
    return dict(receipt)


async def wait_for_confirmations(
    w3: AsyncWeb3[Any],
    *,
    block_number: int,
    confirmations: int,
    poll: float = 0.2,
) -> None:
    """Wait until ``block_number`` has ``confirmations`` confirmations (itself counting one).

    Callers bound the wait with ``asyncio.timeout``.
    """
    # ASYNC110: the block number lives on a remote node; polling it is the only way to learn it.
    while await w3.eth.block_number - block_number + 1 < confirmations:  # noqa: ASYNC110
        await asyncio.sleep(poll)


async def deploy_registry(
    w3: AsyncWeb3[Any],
    *,
    key: EvmKey,
    writers: Sequence[str] = (),
    confirmations: int = 1,
    receipt_timeout: float = 120.0,
    fees: FeePolicy | None = None,
    retry: RpcRetry | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> DeployedRegistry:
    """Deploy a new ``AnchorRegistry`` owned by ``key`` and authorise ``writers``."""
    sender = await _sender(w3, key, fees, retry, sleep)
    receipt = await _transact(
        sender,
        {"data": REGISTRY_BYTECODE},
        what="deploy AnchorRegistry",
        receipt_timeout=receipt_timeout,
    )
    address = receipt.get("contractAddress")
    if not address:
        raise AnchorUnavailable("deploy AnchorRegistry: the receipt names no contract address")
    for writer in writers:
        await add_writer(
            w3,
            key=key,
            registry=str(address),
            writer=writer,
            sender=sender,
            receipt_timeout=receipt_timeout,
        )
    deployed = DeployedRegistry(
        address=str(address),
        tx_hash=bytes(receipt["transactionHash"]),
        block_number=int(receipt["blockNumber"]),
        chain_id=sender.chain_id,
    )
    try:
        async with asyncio.timeout(receipt_timeout):
            await wait_for_confirmations(
                w3, block_number=deployed.block_number, confirmations=confirmations
            )
    except TimeoutError as exc:
        raise AnchorUnavailable(
            f"registry {deployed.address} deployed but not {confirmations} times confirmed "
            f"within {receipt_timeout} s"
        ) from exc
    return deployed


async def _registry_call(
    w3: AsyncWeb3[Any],
    *,
    key: EvmKey,
    registry: str,
    function: str,
    args: list[Any],
    sender: TxSender | None,
    receipt_timeout: float,
) -> None:
    sender = sender or await _sender(w3, key, None, None, asyncio.sleep)
    contract = w3.eth.contract(address=w3.to_checksum_address(registry), abi=REGISTRY_ABI)
    data = contract.encode_abi(function, args=args)
    await _transact(
        sender,
        {"to": contract.address, "data": data},
        what=function,
        receipt_timeout=receipt_timeout,
    )


async def add_writer(
    w3: AsyncWeb3[Any],
    *,
    key: EvmKey,
    registry: str,
    writer: str,
    sender: TxSender | None = None,
    receipt_timeout: float = 120.0,
) -> None:
    """Authorise ``writer`` (the owner's ``key`` signs)."""
    await _registry_call(
        w3,
        key=key,
        registry=registry,
        function="addWriter",
        args=[w3.to_checksum_address(writer)],
        sender=sender,
        receipt_timeout=receipt_timeout,
    )


async def remove_writer(
    w3: AsyncWeb3[Any],
    *,
    key: EvmKey,
    registry: str,
    writer: str,
    receipt_timeout: float = 120.0,
) -> None:
    """Withdraw ``writer``'s authorisation (the owner's ``key`` signs)."""
    await _registry_call(
        w3,
        key=key,
        registry=registry,
        function="removeWriter",
        args=[w3.to_checksum_address(writer)],
        sender=None,
        receipt_timeout=receipt_timeout,
    )
