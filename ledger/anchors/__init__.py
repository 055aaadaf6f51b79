"""Anchor backends: commit ``(log id, tree size, root)`` to a ledger (DESIGN.md contract 3).

One small async interface (``AnchorBackend``), an in-memory reference backend shipped for
tests (``MemoryAnchorBackend``), the embedded ``local`` backend (a hash-chained, gateway-signed
SQLite table) and the ``evm`` backend (an ``AnchorRegistry`` contract reached with web3.py).
The SQLite and EVM names load aiosqlite and web3 lazily, so importing this package (or the
pure ``base``, ``checkers`` and ``local_verify`` modules) loads no I/O library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..checkpoint import LogId
from .base import (
    AnchorBackend,
    AnchorChecker,
    AnchorReceipt,
    AnchorRequest,
    AnchorState,
    log_id_for,
)
from .checkers import LocalAnchorChecker
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
from .local_verify import verify_local_anchor
from .memory import MemoryAnchorBackend, MemoryLedger

if TYPE_CHECKING:
    from .evm import EvmAnchorBackend
    from .evm_checker import EvmAnchorChecker, anchor_checker
    from .evm_deploy import deploy_registry
    from .evm_key import EvmKey, load_evm_key
    from .evm_store import EvmTxStore
    from .evm_verify import verify_evm_anchor
    from .local import LocalAnchorBackend

_LAZY = {
    "EvmAnchorBackend": ".evm",
    "EvmAnchorChecker": ".evm_checker",
    "anchor_checker": ".evm_checker",
    "EvmKey": ".evm_key",
    "EvmTxStore": ".evm_store",
    "LocalAnchorBackend": ".local",
    "deploy_registry": ".evm_deploy",
    "load_evm_key": ".evm_key",
    "verify_evm_anchor": ".evm_verify",
}

__all__ = [
    "AnchorBackend",
    "AnchorChainError",
    "AnchorChecker",
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
    "EvmAnchorChecker",
    "EvmKey",
    "EvmTxStore",
    "LocalAnchorBackend",
    "LocalAnchorChecker",
    "LogId",
    "MemoryAnchorBackend",
    "MemoryLedger",
    "anchor_checker",
    "deploy_registry",
    "load_evm_key",
    "log_id_for",
    "verify_evm_anchor",
    "verify_local_anchor",
]


def __getattr__(name: str) -> Any:
    """Import the aiosqlite- and web3-based names on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module, __name__), name)
