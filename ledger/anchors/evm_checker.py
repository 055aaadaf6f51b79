"""The EVM anchor checker and the choice of checker that ``voltproof verify``'s options make.

An adapter: checking a receipt on chain imports web3 and runs an event loop, so the offline
verifier never imports this module; the command line builds the checker and hands it in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from .base import AnchorChecker, AnchorReceipt, LaterAnchor
from .checkers import LocalAnchorChecker
from .errors import AnchorNotFinalError, AnchorNotFoundError


@dataclass(frozen=True, slots=True, kw_only=True)
class EvmAnchorChecker:
    """Check the receipt on the EVM node at ``rpc_url`` (the embedded export is not used).

    Also a ``LaterAnchorSource``: after a receipt checked out, the chain says when the log
    first grew past the bundle's checkpoint (the stale-checkpoint rule).
    """

    rpc_url: str
    confirmations: int = 1
    _checked: dict[bytes, AnchorReceipt] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __call__(self, receipt: AnchorReceipt, *, embedded: Mapping[str, object] | None) -> str:
        """Verify ``receipt`` on chain, to completion; return ``"evm rpc"``.

        An anchor the chain holds as the receipt says, but with fewer than ``confirmations``
        confirmations, is ``"evm rpc, not final"``: not forged, not yet independent either
        (a reorganisation could still drop it), so the verdict asks to verify again later.
        """
        from .evm_verify import verify_evm_anchor  # web3 only when used

        source = "evm rpc"
        try:
            asyncio.run(
                verify_evm_anchor(receipt, rpc_url=self.rpc_url, confirmations=self.confirmations)
            )
        except AnchorNotFinalError:
            source = "evm rpc, not final"
        self._checked[receipt.log_id] = receipt
        return source

    def anchored_at_ms(self, receipt: AnchorReceipt) -> int | None:
        """The timestamp (Unix ms) of the block holding the anchor :meth:`__call__` checked.

        Raises ``AnchorUnavailable`` when the node cannot answer.
        """
        from .evm_verify import anchor_block_time  # web3 only when used

        if self._checked.get(receipt.log_id) != receipt:
            raise AnchorNotFoundError(
                f"the receipt of log {receipt.log_id.hex()} size {receipt.tree_size} was not "
                f"checked on {self.rpc_url}"
            )
        return asyncio.run(anchor_block_time(receipt, rpc_url=self.rpc_url))

    def first_anchor_after(self, log_id: bytes, *, size: int) -> LaterAnchor | None:
        """The first anchor of ``log_id`` on chain with a tree larger than ``size``, dated by
        its block's timestamp; only canonical blocks with ``confirmations`` confirmations count.

        Starts from the receipt :meth:`__call__` verified for that log (its registry and block):
        a receipt never checked here is refused rather than answered with ``None``, which would
        let a stale checkpoint pass. Raises ``AnchorUnavailable`` when the node cannot answer.
        """
        from .evm_verify import first_anchor_after  # web3 only when used

        receipt = self._checked.get(log_id)
        if receipt is None:
            raise AnchorNotFoundError(
                f"no receipt of log {log_id.hex()} was checked on {self.rpc_url}: later anchors "
                "are read from the registry and block of a verified receipt"
            )
        return asyncio.run(
            first_anchor_after(
                receipt, size=size, rpc_url=self.rpc_url, confirmations=self.confirmations
            )
        )


def anchor_checker(
    *,
    gateway_verifier_key: str | bytes,
    anchor_export: Mapping[str, object] | str | bytes | None = None,
    rpc_url: str | None = None,
    confirmations: int = 1,
) -> AnchorChecker:
    """The checker ``voltproof verify`` uses: the EVM node if given (an anchor counts once it
    has ``confirmations`` confirmations), else the local export."""
    if rpc_url is not None:
        return EvmAnchorChecker(rpc_url=rpc_url, confirmations=confirmations)
    return LocalAnchorChecker(gateway_verifier_key=gateway_verifier_key, export=anchor_export)
