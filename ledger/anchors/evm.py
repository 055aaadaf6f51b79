"""The ``evm`` anchor backend: an ``AnchorRegistry`` contract on any EVM chain, via web3.py.

I/O: JSON-RPC (web3.py async API) and the SQLite transaction store. Before sending, the
contract is read, so a size already anchored is never sent twice; every signed transaction is
recorded in the store BEFORE it is broadcast, so a backend restarted after a crash finds it.
``refresh`` recomputes everything from the node: a receipt whose block left the canonical chain
(a reorg) or a transaction the node forgot (dropped) is re-broadcast, or replaced by a new one
when its nonce was taken, unless the chain already holds the root. An anchor is ``final`` once
its block has ``confirmations`` confirmations (the block itself counts as one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Self

from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.middleware import ExtraDataToPOAMiddleware

from .base import (
    AnchorBackendContext,
    AnchorReceipt,
    AnchorRequest,
    AnchorState,
    check_anchor_fields,
    refuse_empty_tree,
)
from .errors import AnchorConflict, AnchorRejected
from .evm_chain import ZERO_ROOT, Inclusion, RegistryView, TxOutcome
from .evm_key import EvmKey
from .evm_rpc import RpcRetry
from .evm_store import EvmTxStore, StoredTx
from .evm_tx import FeePolicy, NonceAlreadyUsed, SignedTx, TxSender

NAME = "evm"


def make_web3(rpc_url: str, *, poa: bool = False, timeout: float = 10.0) -> AsyncWeb3[Any]:
    """An ``AsyncWeb3`` on ``rpc_url`` without web3's own retries (the backend backs off)."""
    provider = AsyncHTTPProvider(
        rpc_url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None
    )
    w3: AsyncWeb3[Any] = AsyncWeb3(provider)
    if poa:
        w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
    return w3


class EvmAnchorBackend(AnchorBackendContext):
    """Anchors through an ``AnchorRegistry``; build it with ``connect`` or ``create``."""

    name = NAME

    def __init__(
        self,
        *,
        view: RegistryView,
        chain_id: int,
        store: EvmTxStore,
        key: EvmKey | None,
        confirmations: int,
        fees: FeePolicy,
        owns_store: bool,
        owns_provider: bool,
    ) -> None:
        if confirmations < 1:
            raise ValueError("confirmations must be >= 1")
        self._view = view
        self._chain_id = chain_id
        self._store = store
        self._key = key
        self._confirmations = confirmations
        self._owns_store = owns_store
        self._owns_provider = owns_provider
        self._contract = view.contract.address
        self._sender = (
            None
            if key is None
            else TxSender(
                w3=view.w3,
                key=key,
                chain_id=chain_id,
                fees=fees,
                retry=view.retry,
                sleep=view.sleep,
            )
        )
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        writer = "read-only" if self._key is None else self._key.address
        return (
            f"EvmAnchorBackend(chain_id={self._chain_id}, contract={self._contract}, "
            f"writer={writer})"
        )

    @classmethod
    async def create(
        cls,
        *,
        w3: AsyncWeb3[Any],
        contract: str,
        store: EvmTxStore,
        key: EvmKey | None,
        confirmations: int,
        fees: FeePolicy | None = None,
        retry: RpcRetry | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        from_block: int = 0,
        owns_store: bool = False,
        owns_provider: bool = False,
    ) -> Self:
        """A backend on an existing ``AsyncWeb3`` (reads the chain id once)."""
        view = RegistryView(
            w3=w3,
            address=contract,
            retry=retry or RpcRetry(),
            from_block=from_block,
            sleep=sleep,
        )
        chain_id = await view.chain_id()
        return cls(
            view=view,
            chain_id=chain_id,
            store=store,
            key=key,
            confirmations=confirmations,
            fees=fees or FeePolicy(),
            owns_store=owns_store,
            owns_provider=owns_provider,
        )

    @classmethod
    async def connect(
        cls,
        *,
        rpc_url: str,
        contract: str,
        store: EvmTxStore,
        key: EvmKey | None,
        confirmations: int,
        poa: bool = False,
        fees: FeePolicy | None = None,
        retry: RpcRetry | None = None,
        from_block: int = 0,
        owns_store: bool = False,
    ) -> Self:
        """A backend on a JSON-RPC URL; ``aclose`` closes the HTTP session (and the store
        if ``owns_store``)."""
        w3 = make_web3(rpc_url, poa=poa)
        try:
            return await cls.create(
                w3=w3,
                contract=contract,
                store=store,
                key=key,
                confirmations=confirmations,
                fees=fees,
                retry=retry,
                from_block=from_block,
                owns_store=owns_store,
                owns_provider=True,
            )
        except BaseException:
            await w3.provider.disconnect()
            raise

    @property
    def chain_id(self) -> int:
        """The chain id of the node."""
        return self._chain_id

    @property
    def contract(self) -> str:
        """The checksummed registry address."""
        return self._contract

    async def submit(self, request: AnchorRequest) -> AnchorReceipt:
        """Anchor ``request`` once; return the existing receipt when it already is."""
        refuse_empty_tree(request)
        if self._sender is None:
            raise AnchorRejected("this EVM backend has no key: it can read but not anchor")
        async with self._lock:
            stored = await self._stored(request.log_id, request.tree_size)
            if stored is not None:
                self._check_same_root(request, stored.root)
                return await self._follow(request, stored, resubmit=True)
            onchain = await self._view.root_at(request.log_id, request.tree_size)
            if onchain != ZERO_ROOT:
                self._check_same_root(request, onchain)
                return await self._receipt_from_chain(request)
            await self._refuse_shrinking(request)
            stored = await self._send_new(request, self._sender)
            return await self._follow(request, stored, resubmit=False)

    async def refresh(self, log_id: bytes, tree_size: int) -> AnchorReceipt | None:
        """Re-check an anchor against the node; re-send it if it was dropped or reorged away."""
        check_anchor_fields(log_id, tree_size)
        async with self._lock:
            return await self._current(log_id, tree_size, resubmit=self._sender is not None)

    async def get(self, log_id: bytes, tree_size: int) -> AnchorReceipt | None:
        """The current receipt for ``tree_size`` (read-only: never sends)."""
        check_anchor_fields(log_id, tree_size)
        return await self._current(log_id, tree_size, resubmit=False)

    async def latest(self, log_id: bytes) -> AnchorReceipt | None:
        """The receipt of the largest size anchored on chain or sent by this backend."""
        check_anchor_fields(log_id, 0)
        onchain = await self._view.latest_size(log_id)
        stored = await self._store.latest(
            chain_id=self._chain_id, contract=self._contract, log_id=log_id
        )
        size = max(onchain, 0 if stored is None else stored.tree_size)
        if size == 0:
            return None
        return await self.get(log_id, size)

    async def aclose(self) -> None:
        """Close the HTTP session and the store when this backend opened them."""
        if self._owns_provider:
            await self._view.w3.provider.disconnect()
        if self._owns_store:
            await self._store.aclose()

    # internals

    async def _stored(self, log_id: bytes, tree_size: int) -> StoredTx | None:
        return await self._store.get(
            chain_id=self._chain_id, contract=self._contract, log_id=log_id, tree_size=tree_size
        )

    @staticmethod
    def _check_same_root(request: AnchorRequest, anchored: bytes) -> None:
        if anchored != request.root:
            raise AnchorConflict(
                log_id=request.log_id,
                tree_size=request.tree_size,
                anchored=anchored,
                offered=request.root,
            )

    async def _refuse_shrinking(self, request: AnchorRequest) -> None:
        latest = await self._view.latest_size(request.log_id)
        if request.tree_size <= latest:
            raise AnchorRejected(
                f"tree size {request.tree_size} is not above the anchored size {latest}"
            )

    async def _current(
        self, log_id: bytes, tree_size: int, *, resubmit: bool
    ) -> AnchorReceipt | None:
        stored = await self._stored(log_id, tree_size)
        if stored is not None:
            request = AnchorRequest(log_id=log_id, tree_size=tree_size, root=stored.root)
            return await self._follow(request, stored, resubmit=resubmit)
        root = await self._view.root_at(log_id, tree_size)
        if root == ZERO_ROOT:
            return None
        return await self._receipt_from_chain(
            AnchorRequest(log_id=log_id, tree_size=tree_size, root=root)
        )

    async def _send_new(self, request: AnchorRequest, sender: TxSender) -> StoredTx:
        data = self._view.contract.encode_abi(
            "anchor", args=[request.log_id, request.tree_size, request.root]
        )
        nonce = await sender.next_nonce()
        signed = await sender.sign({"to": self._contract, "data": data}, nonce=nonce)
        return await self._record_and_send(request, signed, sender)

    async def _record_and_send(
        self, request: AnchorRequest, signed: SignedTx, sender: TxSender
    ) -> StoredTx:
        stored = StoredTx(
            log_id=request.log_id,
            tree_size=request.tree_size,
            root=request.root,
            tx_hash=signed.tx_hash,
            raw_tx=signed.raw,
            nonce=signed.nonce,
        )
        await self._store.put(chain_id=self._chain_id, contract=self._contract, tx=stored)
        await sender.broadcast(signed)
        return stored

    async def _follow(
        self, request: AnchorRequest, stored: StoredTx, *, resubmit: bool
    ) -> AnchorReceipt:
        """Where the stored transaction stands; re-send it if it vanished and ``resubmit``."""
        outcome = await self._view.inclusion_of(stored.tx_hash, request.log_id)
        if isinstance(outcome, Inclusion):
            return await self._receipt(request, outcome)
        onchain = await self._view.root_at(request.log_id, request.tree_size)
        if onchain != ZERO_ROOT:
            self._check_same_root(request, onchain)
            return await self._receipt_from_chain(request)
        if outcome is TxOutcome.NOT_MINED and await self._view.in_mempool(stored.tx_hash):
            return self._pending(request, stored)
        if not resubmit or self._sender is None:
            return self._pending(request, stored)
        if outcome is TxOutcome.REVERTED:
            await self._refuse_shrinking(request)
            stored = await self._send_new(request, self._sender)
        else:
            stored = await self._rebroadcast(request, stored, self._sender)
        outcome = await self._view.inclusion_of(stored.tx_hash, request.log_id)
        if isinstance(outcome, Inclusion):
            return await self._receipt(request, outcome)
        return self._pending(request, stored)

    async def _rebroadcast(
        self, request: AnchorRequest, stored: StoredTx, sender: TxSender
    ) -> StoredTx:
        """Send the same signed bytes again, or a new transaction if the nonce was taken."""
        if await sender.mined_nonce() <= stored.nonce:
            try:
                await sender.broadcast(
                    SignedTx(tx_hash=stored.tx_hash, raw=stored.raw_tx, nonce=stored.nonce)
                )
            except NonceAlreadyUsed:
                pass
            else:
                return stored
        # The nonce is taken: by this very transaction if a block came in since the caller
        # looked (the anchor is then on chain), else by another one.
        onchain = await self._view.root_at(request.log_id, request.tree_size)
        if onchain != ZERO_ROOT:
            self._check_same_root(request, onchain)
            return stored
        await self._refuse_shrinking(request)
        return await self._send_new(request, sender)

    async def _receipt_from_chain(self, request: AnchorRequest) -> AnchorReceipt:
        inclusion = await self._view.find_event(request.log_id, request.tree_size)
        if inclusion is None:
            return AnchorReceipt(
                backend=NAME,
                log_id=request.log_id,
                tree_size=request.tree_size,
                root=request.root,
                state=AnchorState.PENDING,
                details=self._base_details(),
            )
        return await self._receipt(request, inclusion)

    def _base_details(self) -> dict[str, str | int]:
        return {"chain_id": self._chain_id, "contract": self._contract}

    def _pending(self, request: AnchorRequest, stored: StoredTx) -> AnchorReceipt:
        details = self._base_details()
        details.update(tx_hash="0x" + stored.tx_hash.hex(), confirmations=0)
        return AnchorReceipt(
            backend=NAME,
            log_id=request.log_id,
            tree_size=request.tree_size,
            root=request.root,
            state=AnchorState.PENDING,
            details=details,
        )

    async def _receipt(self, request: AnchorRequest, inclusion: Inclusion) -> AnchorReceipt:
        confirmations = max(0, await self._view.head() - inclusion.block_number + 1)
        details = self._base_details()
        details.update(
            tx_hash="0x" + inclusion.tx_hash.hex(),
            block_number=inclusion.block_number,
            block_hash="0x" + inclusion.block_hash.hex(),
            log_index=inclusion.log_index,
            confirmations=confirmations,
        )
        final = confirmations >= self._confirmations
        return AnchorReceipt(
            backend=NAME,
            log_id=request.log_id,
            tree_size=request.tree_size,
            root=request.root,
            state=AnchorState.FINAL if final else AnchorState.PENDING,
            details=details,
        )
