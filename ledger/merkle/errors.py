"""What can go wrong with Merkle proofs: verification failures and impossible requests.

Verification failures derive from :class:`ledger.errors.VerificationError`; a request for a
proof or root that cannot exist (an index beyond the tree, a size beyond the log) is a
:class:`ValueError`, because it is a caller's mistake rather than bad evidence.
"""

from __future__ import annotations

from ledger.errors import VerificationError, VoltproofError


class MerkleProofError(VerificationError):
    """A Merkle inclusion or consistency proof does not check out."""


class ProofShapeError(MerkleProofError):
    """The proof cannot be right for these sizes and indices (wrong length, index beyond size)."""


class RootMismatchError(MerkleProofError):
    """The root computed from a proof differs from the root it was checked against."""

    def __init__(self, *, expected: bytes, calculated: bytes) -> None:
        super().__init__(f"root mismatch: expected {expected.hex()}, calculated {calculated.hex()}")
        self.expected = expected
        self.calculated = calculated


class OutOfRangeError(VoltproofError, ValueError):
    """A proof or root was requested for an index or size the tree does not have."""


class MissingNodeError(VoltproofError, LookupError):
    """A proof plan was assembled without one of the stored nodes it needs."""
