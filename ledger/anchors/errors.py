"""Errors raised by anchor backends and by the offline anchor verifiers.

Backends raise the ``AnchorError`` family: ``AnchorUnavailable`` is transient (retry with
backoff), ``AnchorRejected`` and ``AnchorConflict`` are final answers. Offline verification
raises ``AnchorVerificationError`` subclasses, which are ``ledger.VerificationError``s.
Third-party errors (sqlite3, web3, aiohttp) never leave a backend untranslated.
"""

from __future__ import annotations

from ledger.errors import VerificationError, VoltproofError


class AnchorError(VoltproofError):
    """Base of every error an anchor backend raises."""


class AnchorUnavailable(AnchorError):  # noqa: N818 - the name states the condition, as specified
    """The ledger cannot be reached or is busy (RPC down, database locked): retry later."""


class AnchorRejected(AnchorError):  # noqa: N818 - the name states the condition, as specified
    """The ledger refused the anchor (a shrinking size, an unauthorised writer, an empty tree)."""


class AnchorConflict(AnchorError):  # noqa: N818 - the name states the condition, as specified
    """A different root is already anchored for this size: evidence of equivocation."""

    def __init__(self, *, log_id: bytes, tree_size: int, anchored: bytes, offered: bytes) -> None:
        super().__init__(
            f"log {log_id.hex()} size {tree_size} is anchored with root {anchored.hex()}, "
            f"not {offered.hex()}"
        )
        self.log_id = log_id
        self.tree_size = tree_size
        self.anchored = anchored
        self.offered = offered


class AnchorFormatError(VoltproofError, ValueError):
    """A receipt or anchor export document is malformed (wrong type, missing field, bad hex)."""


class AnchorVerificationError(VerificationError):
    """An anchor receipt does not check out against the ledger it names."""


class AnchorExportError(AnchorVerificationError):
    """A local anchor export is not a well-formed ``voltproof-local-anchors/1`` document."""


class AnchorChainError(AnchorVerificationError):
    """An entry of the local anchor table does not link to the entry before it."""


class AnchorEntryHashError(AnchorVerificationError):
    """An entry's stated hash differs from the hash of its fields."""


class AnchorSignatureError(AnchorVerificationError):
    """An entry's signature does not verify under the gateway verifier key."""


class AnchorSizeError(AnchorVerificationError):
    """The anchor table holds a tree size that does not grow for its log."""


class AnchorNotFoundError(AnchorVerificationError):
    """The ledger holds no anchor for the receipt's log and tree size."""


class AnchorReceiptMismatchError(AnchorVerificationError):
    """The receipt says something other than what the ledger holds."""


class AnchorRootMismatchError(AnchorVerificationError):
    """The ledger holds a different root for the receipt's tree size."""


class AnchorNotFinalError(AnchorVerificationError):
    """The anchor exists but has fewer confirmations than required."""
