"""Verification of an ``evm`` anchor receipt against a chain, trusting only the RPC node.

I/O: JSON-RPC reads. Checks that the node is on the receipt's chain, that the registry holds
the receipt's root at its size, that the ``Anchored`` event sits where the receipt says in the
canonical chain, and that it has at least ``confirmations`` confirmations; and finds the first
later anchor of the same log (the stale-checkpoint rule, ``docs/protocol.md`` step 8).
"""

from __future__ import annotations

from typing import Any

from .base import EVM_LATER_ANCHOR_GRACE_MS, AnchorReceipt, AnchorRequest, LaterAnchor
from .errors import (
    AnchorError,
    AnchorNotFinalError,
    AnchorNotFoundError,
    AnchorReceiptMismatchError,
    AnchorRootMismatchError,
    AnchorUnavailable,
    AnchorVerificationError,
)
from .evm import make_web3
from .evm_chain import ZERO_ROOT, Inclusion, RegistryView
from .evm_rpc import RpcRetry


def _detail(receipt: AnchorReceipt, key: str, kind: type[str] | type[int]) -> Any:
    value = receipt.details.get(key)
    if not isinstance(value, kind):
        raise AnchorReceiptMismatchError(f"receipt has no {kind.__name__} detail {key!r}")
    return value


async def verify_evm_anchor(
    receipt: AnchorReceipt,
    *,
    rpc_url: str,
    contract: str | None = None,
    confirmations: int = 1,
    poa: bool = False,
    retry: RpcRetry | None = None,
) -> None:
    """Check ``receipt`` on the chain at ``rpc_url``; raise ``AnchorVerificationError`` if not.

    ``contract`` (default: the receipt's) pins the registry the verifier trusts.
    """
    if receipt.backend != "evm":
        raise AnchorReceiptMismatchError(f"receipt is from backend {receipt.backend!r}, not 'evm'")
    address = _detail(receipt, "contract", str)
    if contract is not None and contract.lower() != address.lower():
        raise AnchorReceiptMismatchError(
            f"receipt names registry {address}, the verifier trusts {contract}"
        )
    w3 = make_web3(rpc_url, poa=poa)
    view = RegistryView(w3=w3, address=address, retry=retry or RpcRetry(attempts=2))
    try:
        await _verify(receipt, view, confirmations=confirmations)
    except AnchorVerificationError:
        raise
    except AnchorError as exc:
        # The node could not answer: nothing is known about the anchor, which is not a
        # verdict on the evidence (a mistyped --rpc must not make a bundle look forged).
        raise AnchorUnavailable(f"cannot check the anchor on {rpc_url}: {exc}") from exc
    finally:
        await w3.provider.disconnect()


async def _verify(receipt: AnchorReceipt, view: RegistryView, *, confirmations: int) -> None:
    chain_id = await view.chain_id()
    if chain_id != _detail(receipt, "chain_id", int):
        raise AnchorReceiptMismatchError(
            f"receipt is for chain {receipt.details['chain_id']}, the node serves chain {chain_id}"
        )
    if not await view.has_code():
        raise AnchorNotFoundError(f"no contract at {view.address} on chain {chain_id}")
    root = await view.root_at(receipt.log_id, receipt.tree_size)
    if root == ZERO_ROOT:
        raise AnchorNotFoundError(
            f"registry holds no root for log {receipt.log_id.hex()} size {receipt.tree_size}"
        )
    if root != receipt.root:
        raise AnchorRootMismatchError(
            f"registry holds root {root.hex()} for size {receipt.tree_size}, "
            f"receipt says {receipt.root.hex()}"
        )
    event = await view.find_event(receipt.log_id, receipt.tree_size)
    if event is None:
        raise AnchorNotFoundError("registry holds the root but no Anchored event was found")
    claimed = {
        "tx_hash": "0x" + event.tx_hash.hex(),
        "block_number": event.block_number,
        "block_hash": "0x" + event.block_hash.hex(),
        "log_index": event.log_index,
    }
    for key, value in claimed.items():
        if receipt.details.get(key) != value:
            raise AnchorReceiptMismatchError(
                f"receipt {key} is {receipt.details.get(key)!r}, the chain says {value!r}"
            )
    depth = await view.head() - event.block_number + 1
    if depth < confirmations:
        raise AnchorNotFinalError(f"anchor has {depth} confirmations, {confirmations} are required")


async def verify_chain_holds(
    request: AnchorRequest,
    *,
    rpc_url: str,
    contract: str,
    confirmations: int = 1,
    poa: bool = False,
    retry: RpcRetry | None = None,
) -> Inclusion:
    """Check that the registry at ``contract`` holds ``request``'s root at its size, with at
    least ``confirmations`` confirmations; return where the ``Anchored`` event sits."""
    w3 = make_web3(rpc_url, poa=poa)
    view = RegistryView(w3=w3, address=contract, retry=retry or RpcRetry(attempts=2))
    try:
        if not await view.has_code():
            raise AnchorNotFoundError(f"no contract at {contract}")
        root = await view.root_at(request.log_id, request.tree_size)
        if root == ZERO_ROOT:
            latest = await view.latest_size(request.log_id)
            raise AnchorNotFoundError(
                f"registry holds no root for size {request.tree_size} "
                f"(largest anchored size: {latest})"
            )
        if root != request.root:
            raise AnchorRootMismatchError(
                f"registry holds root {root.hex()} for size {request.tree_size}, "
                f"the checkpoint says {request.root.hex()}"
            )
        event = await view.find_event(request.log_id, request.tree_size)
        if event is None:
            raise AnchorNotFoundError("registry holds the root but no Anchored event was found")
        depth = await view.head() - event.block_number + 1
        if depth < confirmations:
            raise AnchorNotFinalError(
                f"anchor has {depth} confirmations, {confirmations} are required"
            )
    except AnchorVerificationError:
        raise
    except AnchorError as exc:
        raise AnchorVerificationError(f"cannot check the anchor on {rpc_url}: {exc}") from exc
    finally:
        await w3.provider.disconnect()
    return event


async def anchor_block_time(
    receipt: AnchorReceipt, *, rpc_url: str, poa: bool = False, retry: RpcRetry | None = None
) -> int:
    """The timestamp (Unix ms) of the block holding ``receipt``'s anchor, one that
    :func:`verify_evm_anchor` checked. Raises ``AnchorUnavailable`` when the node cannot be
    read or the block is no longer the receipt's (a chain reorganisation since the check)."""
    number = _detail(receipt, "block_number", int)
    expected = _detail(receipt, "block_hash", str)
    w3 = make_web3(rpc_url, poa=poa)
    view = RegistryView(
        w3=w3, address=_detail(receipt, "contract", str), retry=retry or RpcRetry(attempts=2)
    )
    try:
        block = await view.block_time(number)
    except AnchorError as exc:
        raise AnchorUnavailable(f"cannot read block {number} on {rpc_url}: {exc}") from exc
    finally:
        await w3.provider.disconnect()
    if block is None or "0x" + block[0].hex() != expected.lower():
        raise AnchorUnavailable(
            f"block {number} changed since the anchor was checked (a chain reorganisation): "
            "verify again"
        )
    return block[1] * 1000


BLOCKS_PER_QUERY = 2_000
"""Blocks per ``eth_getLogs`` call of the later-anchor scan (public nodes cap the range)."""


async def first_anchor_after(
    receipt: AnchorReceipt,
    *,
    size: int,
    rpc_url: str,
    confirmations: int = 1,
    poa: bool = False,
    retry: RpcRetry | None = None,
    blocks_per_query: int = BLOCKS_PER_QUERY,
) -> LaterAnchor | None:
    """The first ``Anchored`` event of ``receipt``'s log with a tree larger than ``size``, in
    canonical blocks with at least ``confirmations`` confirmations, dated by its block.

    ``receipt`` is the one :func:`verify_evm_anchor` checked (its registry, block and size are
    trusted from here on). The registry only lets a log's size grow, so its events are in
    size order: with ``size`` equal to the receipt's, the answer is the first event after the
    receipt's block (scanned forward); with a receipt larger than ``size`` it is at or before
    that block (scanned backward until a smaller event). Either way the scan is bounded by
    ``blocks_per_query`` blocks per call and stops at the first answer. Raises
    ``AnchorUnavailable`` when the node cannot be read or the chain reorganises under it.
    """
    if blocks_per_query < 1:
        raise ValueError("blocks_per_query must be >= 1")
    address = _detail(receipt, "contract", str)
    start = _detail(receipt, "block_number", int)
    w3 = make_web3(rpc_url, poa=poa)
    view = RegistryView(w3=w3, address=address, retry=retry or RpcRetry(attempts=2))
    try:
        last = await view.head() - confirmations + 1
        if receipt.tree_size > size:
            event = await _scan_back(view, receipt.log_id, size, start=start, step=blocks_per_query)
        elif await view.latest_size(receipt.log_id) <= size:
            return None  # nothing larger anchored at all, confirmed or not
        else:
            event = await _scan_forward(
                view, receipt.log_id, size, start=start, last=last, step=blocks_per_query
            )
        if event is None or event.block_number > last:
            return None
        block = await view.block_time(event.block_number)
        if block is None or block[0] != event.block_hash:
            raise AnchorUnavailable(
                f"block {event.block_number} changed while later anchors were read (a chain "
                "reorganisation): verify again"
            )
        return LaterAnchor(
            tree_size=event.tree_size,
            anchored_at_ms=block[1] * 1000,
            grace_ms=EVM_LATER_ANCHOR_GRACE_MS,
        )
    finally:
        await w3.provider.disconnect()


async def _scan_forward(
    view: RegistryView, log_id: bytes, size: int, *, start: int, last: int, step: int
) -> Inclusion | None:
    """The first event above ``size`` in blocks ``start..last``."""
    first = start
    while first <= last:
        upto = min(first + step - 1, last)
        for event in await view.events_between(log_id, first=first, last=upto):
            if event.tree_size > size:
                return event
        first = upto + 1
    return None


async def _scan_back(
    view: RegistryView, log_id: bytes, size: int, *, start: int, step: int
) -> Inclusion | None:
    """The earliest event above ``size`` at or before block ``start``."""
    found: Inclusion | None = None
    upto = start
    while upto >= 0:
        first = max(upto - step + 1, 0)
        events = await view.events_between(log_id, first=first, last=upto)
        for event in reversed(events):
            if event.tree_size <= size:
                return found
            found = event
        upto = first - 1
    return found
