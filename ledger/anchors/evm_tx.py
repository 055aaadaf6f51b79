"""Building, signing and broadcasting EVM transactions: fees, gas, nonces.

I/O: JSON-RPC calls. Fees are EIP-1559 (``maxFeePerGas`` = base fee x multiplier + tip) when
the latest block has a base fee, else a legacy ``gasPrice``. Transactions are signed locally;
the raw bytes and hash are known before broadcast, so a caller can record them first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from web3 import AsyncWeb3
from web3.exceptions import Web3RPCError
from web3.types import TxParams, Wei

from .errors import AnchorUnavailable
from .evm_key import EvmKey
from .evm_rpc import RpcRetry, call_rpc

GWEI = 10**9
GAS_HEADROOM_PERCENT = 125
T = TypeVar("T")
_ALREADY_KNOWN = ("already known", "already imported", "known transaction")
_NONCE_USED = ("nonce too low", "nonce is too low", "oldnonce")


class NonceAlreadyUsed(AnchorUnavailable):
    """The transaction's nonce was taken by another transaction of the same account."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FeePolicy:
    """How to price transactions."""

    priority_fee_wei: int | None = None
    min_priority_fee_wei: int = GWEI
    base_fee_multiplier: int = 2
    legacy: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedTx:
    """A signed transaction, ready to broadcast (or to broadcast again)."""

    tx_hash: bytes
    raw: bytes
    nonce: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TxSender:
    """Signs with ``key`` and talks to ``w3`` with back-off."""

    w3: AsyncWeb3[Any]
    key: EvmKey
    chain_id: int
    fees: FeePolicy
    retry: RpcRetry
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    async def rpc(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run one RPC call with back-off and error translation."""
        return await call_rpc(what, call, retry=self.retry, sleep=self.sleep)

    async def fee_fields(self) -> TxParams:
        """EIP-1559 fee fields, or a legacy gas price when the chain has no base fee."""
        block = await self.rpc("read latest block", lambda: self.w3.eth.get_block("latest"))
        base_fee = block.get("baseFeePerGas")
        if base_fee is None or self.fees.legacy:
            gas_price = await self.rpc("read gas price", lambda: self.w3.eth.gas_price)
            return {"gasPrice": gas_price}
        tip = self.fees.priority_fee_wei
        if tip is None:
            tip = max(await self._suggested_tip(), self.fees.min_priority_fee_wei)
        return {
            "maxFeePerGas": Wei(base_fee * self.fees.base_fee_multiplier + tip),
            "maxPriorityFeePerGas": Wei(tip),
        }

    async def _suggested_tip(self) -> int:
        try:
            history = await self.rpc(
                "read fee history", lambda: self.w3.eth.fee_history(5, "latest", [50.0])
            )
        except AnchorUnavailable:
            return 0
        rewards = [row[0] for row in history.get("reward", []) if row]
        return sorted(rewards)[len(rewards) // 2] if rewards else 0

    async def next_nonce(self) -> int:
        """The account's next nonce, counting transactions still in the node's pool."""
        return await self.rpc(
            "read account nonce",
            lambda: self.w3.eth.get_transaction_count(self.key.account.address, "pending"),
        )

    async def mined_nonce(self) -> int:
        """The account's nonce in the latest block (transactions already mined)."""
        return await self.rpc(
            "read account nonce",
            lambda: self.w3.eth.get_transaction_count(self.key.account.address, "latest"),
        )

    async def sign(self, tx: TxParams, *, nonce: int) -> SignedTx:
        """Fill gas, fees, nonce and chain id; sign locally."""
        params: dict[str, Any] = {
            **tx,
            "from": self.key.account.address,
            "chainId": self.chain_id,
            "nonce": nonce,
        }
        params.update(await self.fee_fields())
        if "gas" not in params:
            estimate = await self.rpc(
                "estimate gas", lambda: self.w3.eth.estimate_gas(cast("TxParams", params))
            )
            params["gas"] = estimate * GAS_HEADROOM_PERCENT // 100
        signed = self.key.account.sign_transaction(params)
        return SignedTx(tx_hash=bytes(signed.hash), raw=bytes(signed.raw_transaction), nonce=nonce)

    async def broadcast(self, signed: SignedTx) -> None:
        """Send the raw transaction; a node that already has it is fine.

        Raises ``NonceAlreadyUsed`` when the nonce was taken by another transaction.
        """

        async def send() -> None:
            try:
                await self.w3.eth.send_raw_transaction(signed.raw)
            except Web3RPCError as exc:
                text = str(exc).lower()
                if any(marker in text for marker in _ALREADY_KNOWN):
                    return
                if any(marker in text for marker in _NONCE_USED):
                    raise NonceAlreadyUsed(
                        f"nonce {signed.nonce} of tx 0x{signed.tx_hash.hex()} is already used"
                    ) from exc
                raise

        await self.rpc("send transaction", send)
