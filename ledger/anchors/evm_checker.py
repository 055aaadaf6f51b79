"""The EVM anchor checker and the choice of checker that ``voltproof verify``'s options make.

An adapter: checking a receipt on chain imports web3 and runs an event loop, so the offline
verifier never imports this module; the command line builds the checker and hands it in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from .base import AnchorChecker, AnchorReceipt
from .checkers import LocalAnchorChecker


@dataclass(frozen=True, slots=True, kw_only=True)
class EvmAnchorChecker:
    """Check the receipt on the EVM node at ``rpc_url`` (the embedded export is not used)."""

    rpc_url: str

    def __call__(self, receipt: AnchorReceipt, *, embedded: Mapping[str, object] | None) -> str:
        """Verify ``receipt`` on chain, to completion; return ``"evm rpc"``."""
        from .evm_verify import verify_evm_anchor  # web3 only when used

        asyncio.run(verify_evm_anchor(receipt, rpc_url=self.rpc_url))
        return "evm rpc"


def anchor_checker(
    *,
    gateway_verifier_key: str | bytes,
    anchor_export: Mapping[str, object] | str | bytes | None = None,
    rpc_url: str | None = None,
) -> AnchorChecker:
    """The checker ``voltproof verify`` uses: the EVM node if given, else the local export."""
    if rpc_url is not None:
        return EvmAnchorChecker(rpc_url=rpc_url)
    return LocalAnchorChecker(gateway_verifier_key=gateway_verifier_key, export=anchor_export)
