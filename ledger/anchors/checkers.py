"""Anchor checkers handed to the offline verifier: the ledger it trusts, as a callable.

``ledger.verify`` imports no backend: its caller picks one of these (usually through
:func:`anchor_checker`, which follows the ``voltproof verify`` options) and passes it in.
The local check is pure; the EVM check (an adapter) lives in ``evm_checker``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .base import AnchorReceipt, LaterAnchor
from .local_verify import parse_export, verify_local_anchor


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

    def anchored_at_ms(self, receipt: AnchorReceipt) -> int | None:
        """The ``anchored_at_ms`` of the table entry :meth:`__call__` checked ``receipt``
        against (the receipt's detail equals it once checked)."""
        value = receipt.details.get("anchored_at_ms")
        return value if isinstance(value, int) else None

    def first_anchor_after(self, log_id: bytes, *, size: int) -> LaterAnchor | None:
        """The first entry of the verifier's own export anchoring ``log_id`` above ``size``.

        Only the export the verifier obtained counts (the embedded copy is the operator's,
        who could leave later entries out). Call after :meth:`__call__` has verified it.
        """
        if self.export is None:
            return None
        later = [
            entry
            for entry in parse_export(self.export)
            if entry.log_id == log_id and entry.tree_size > size
        ]
        if not later:
            return None
        first = min(later, key=lambda entry: entry.sequence)
        return LaterAnchor(tree_size=first.tree_size, anchored_at_ms=first.anchored_at_ms)
