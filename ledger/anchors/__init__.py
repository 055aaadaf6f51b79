"""Anchor backends: commit ``(log id, tree size, root)`` to a ledger (DESIGN.md contract 3).

One small async interface (``AnchorBackend``), an in-memory reference backend shipped for
tests (``MemoryAnchorBackend``), the embedded ``local`` backend (a hash-chained, gateway-signed
SQLite table) and the ``evm`` backend (an ``AnchorRegistry`` contract reached with web3.py).
The EVM names load web3 lazily, so importing this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import (
    AnchorBackend,
    AnchorReceipt,
    AnchorRequest,
    AnchorState,
    LogId,
    log_id_for,
)
from .errors import (
    AnchorChainError,
    AnchorConflict,
    AnchorEntryHashError,
    AnchorError,
    AnchorExportError,
    AnchorFormatError,
    AnchorNotFinalError,
    AnchorNotFoundError,
    AnchorReceiptMismatchError,
    AnchorRejected,
    AnchorRootMismatchError,
    AnchorSignatureError,
    AnchorSizeError,
    AnchorUnavailable,
    AnchorVerificationError,
)
from .local import LocalAnchorBackend
from .local_verify import verify_local_anchor
from .memory import MemoryAnchorBackend, MemoryLedger

if TYPE_CHECKING:
    from .evm import EvmAnchorBackend
    from .evm_deploy import deploy_registry
    from .evm_key import EvmKey, load_evm_key
    from .evm_store import EvmTxStore
    from .evm_verify import verify_evm_anchor

_LAZY = {
    "EvmAnchorBackend": ".evm",
    "EvmKey": ".evm_key",
    "EvmTxStore": ".evm_store",
    "deploy_registry": ".evm_deploy",
    "load_evm_key": ".evm_key",
    "verify_evm_anchor": ".evm_verify",
}

__all__ = [
    "AnchorBackend",
    "AnchorChainError",
    "AnchorConflict",
    "AnchorEntryHashError",
    "AnchorError",
    "AnchorExportError",
    "AnchorFormatError",
    "AnchorNotFinalError",
    "AnchorNotFoundError",
    "AnchorReceipt",
    "AnchorReceiptMismatchError",
    "AnchorRejected",
    "AnchorRequest",
    "AnchorRootMismatchError",
    "AnchorSignatureError",
    "AnchorSizeError",
    "AnchorState",
    "AnchorUnavailable",
    "AnchorVerificationError",
    "EvmAnchorBackend",
    "EvmKey",
    "EvmTxStore",
    "LocalAnchorBackend",
    "LogId",
    "MemoryAnchorBackend",
    "MemoryLedger",
    "deploy_registry",
    "load_evm_key",
    "log_id_for",
    "verify_evm_anchor",
    "verify_local_anchor",
]


def __getattr__(name: str) -> Any:
    """Import the web3-based names on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module, __name__), name)
