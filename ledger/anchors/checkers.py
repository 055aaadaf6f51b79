"""Anchor checkers handed to the offline verifier: the ledger it trusts, as a callable.

``ledger.verify`` imports no backend: its caller picks one of these (usually through
:func:`anchor_checker`, which follows the ``voltproof verify`` options) and passes it in.
The local check is pure; the EVM check imports web3 and runs an event loop only when called.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .base import AnchorChecker, AnchorReceipt
from .local_verify import verify_local_anchor


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalAnchorChecker:
    """Check against ``export`` (obtained by the verifier), else against the embedded export.

    With neither, the anchor is reported ``"not checked"``.
    """

    gateway_verifier_key: str | bytes
    export: Mapping[str, object] | str | bytes | None = None

    def __call__(self, receipt: AnchorReceipt, *, embedded: Mapping[str, object] | None) -> str:
        """Verify ``receipt`` in the local anchor table export; return the source used."""
        if self.export is not None:
            export, source = self.export, "ledger export"
        elif embedded is not None:
            export, source = embedded, "embedded export"
        else:
            return "not checked"
        verify_local_anchor(receipt, export=export, gateway_verifier_key=self.gateway_verifier_key)
        return source


@dataclass(frozen=True, slots=True, kw_only=True)
class EvmAnchorChecker:
    """Check the receipt on the EVM node at ``rpc_url`` (the embedded export is not used)."""

    rpc_url: str

    def __call__(self, receipt: AnchorReceipt, *, embedded: Mapping[str, object] | None) -> str:
        """Verify ``receipt`` on chain, to completion; return ``"evm rpc"``."""
        import asyncio  # the verifier loads no event loop unless asked to

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
