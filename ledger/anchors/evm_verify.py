"""Verification of an ``evm`` anchor receipt against a chain, trusting only the RPC node.

I/O: JSON-RPC reads. Checks that the node is on the receipt's chain, that the registry holds
the receipt's root at its size, that the ``Anchored`` event sits where the receipt says in the
canonical chain, and that it has at least ``confirmations`` confirmations.
"""

from __future__ import annotations

from typing import Any

from .base import AnchorReceipt, AnchorRequest
from .errors import (
    AnchorError,
    AnchorNotFinalError,
    AnchorNotFoundError,
    AnchorReceiptMismatchError,
    AnchorRootMismatchError,
    AnchorVerificationError,
)
from .evm import make_web3
from .evm_chain import ZERO_ROOT, Inclusion, RegistryView
from .evm_rpc import Backoff


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
    backoff: Backoff | None = None,
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
    view = RegistryView(w3=w3, address=address, backoff=backoff or Backoff(attempts=2))
    try:
        await _verify(receipt, view, confirmations=confirmations)
    except AnchorVerificationError:
        raise
    except AnchorError as exc:
        raise AnchorVerificationError(f"cannot check the anchor on {rpc_url}: {exc}") from exc
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
    backoff: Backoff | None = None,
) -> Inclusion:
    """Check that the registry at ``contract`` holds ``request``'s root at its size, with at
    least ``confirmations`` confirmations; return where the ``Anchored`` event sits."""
    w3 = make_web3(rpc_url, poa=poa)
    view = RegistryView(w3=w3, address=contract, backoff=backoff or Backoff(attempts=2))
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
