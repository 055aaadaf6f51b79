"""Why a witness refuses to cosign, each refusal with the HTTP status C2SP tlog-witness names.

``WitnessRefusalError`` (a :class:`ledger.errors.VerificationError`) is the root; the HTTP
layer answers ``status`` with the message as the body, except for the two conflicts, whose
body is the witness's latest cosigned size (``text/x.tlog.size``).
"""

from __future__ import annotations

from typing import ClassVar

from ledger.errors import VerificationError

__all__ = [
    "InvalidProofError",
    "MalformedRequestError",
    "RootConflictError",
    "SizeConflictError",
    "UnknownLogError",
    "UntrustedCheckpointError",
    "WitnessRefusalError",
]


class WitnessRefusalError(VerificationError):
    """The witness does not cosign this checkpoint."""

    status: ClassVar[int] = 400


class MalformedRequestError(WitnessRefusalError):
    """The request breaks the add-checkpoint syntax, or its old size exceeds its size (400)."""

    status = 400


class UnknownLogError(WitnessRefusalError):
    """The checkpoint's origin is not a log this witness is configured for (404)."""

    status = 404


class UntrustedCheckpointError(WitnessRefusalError):
    """No signature on the checkpoint verifies against the log's configured keys (403)."""

    status = 403


class SizeConflictError(WitnessRefusalError):
    """The old size is not the size the witness last cosigned (409, body: that size)."""

    status = 409

    def __init__(self, message: str, *, size: int) -> None:
        super().__init__(message)
        self.size = size


class RootConflictError(SizeConflictError):
    """Same size as the last cosigned checkpoint but another root hash: a fork (409)."""


class InvalidProofError(WitnessRefusalError):
    """The consistency proof does not verify from the cosigned checkpoint (422)."""

    status = 422
