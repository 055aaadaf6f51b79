"""C2SP tlog-checkpoints (c2sp.org/tlog-checkpoint) carried in signed notes.

The body is ``<origin>\\n<tree size>\\n<base64 root hash>\\n`` followed by optional
non-empty extension lines; :mod:`ledger.note` signs and verifies it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Final, NewType

from .errors import VerificationError
from .note import VerifierKey, sign_note, verify_note

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "LogId",
    "MalformedCheckpointError",
    "WrongOriginError",
    "log_id",
    "parse_checkpoint",
    "sign_checkpoint",
    "verify_checkpoint",
]

_MAX_SIZE: Final = 2**64 - 1
_DECIMAL: Final = re.compile(r"0|[1-9][0-9]*")
_CONTROL: Final = re.compile(r"[\x00-\x1f]")


class CheckpointError(VerificationError):
    """A checkpoint is not valid."""


class MalformedCheckpointError(CheckpointError):
    """A checkpoint body or value breaks the tlog-checkpoint format."""


class WrongOriginError(CheckpointError):
    """A checkpoint names another log than the one expected."""


def _check_line(line: str, what: str) -> None:
    if not line:
        raise MalformedCheckpointError(f"{what} is empty")
    control = _CONTROL.search(line)
    if control:
        raise MalformedCheckpointError(f"{what} contains control character {control.group()!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    """One log's state: its origin, tree size and RFC 9162 root hash."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "origin")
        if type(self.size) is not int or not 0 <= self.size <= _MAX_SIZE:
            raise MalformedCheckpointError(f"tree size {self.size!r} is not a uint64")
        if type(self.root) is not bytes or len(self.root) != 32:
            raise MalformedCheckpointError(f"root hash must be 32 bytes, got {self.root!r}")
        for number, line in enumerate(self.extensions, start=1):
            _check_line(line, f"extension line {number}")

    def body(self) -> str:
        """The note text: origin, size, base64 root and extension lines, each ending in \\n."""
        lines = (self.origin, str(self.size), base64.b64encode(self.root).decode("ascii"))
        return "".join(f"{line}\n" for line in (*lines, *self.extensions))


def parse_checkpoint(body: str) -> Checkpoint:
    """Parse a checkpoint note text (as returned by :func:`ledger.note.verify_note`)."""
    if not body.endswith("\n"):
        raise MalformedCheckpointError("checkpoint body does not end with a newline")
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise MalformedCheckpointError(
            f"checkpoint body has {len(lines)} lines, needs origin, size and root"
        )
    origin, size, root, *extensions = lines
    if not _DECIMAL.fullmatch(size):
        raise MalformedCheckpointError(
            f"tree size {size!r} is not a decimal number without leading zeros"
        )
    try:
        raw = base64.b64decode(root.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise MalformedCheckpointError(f"root hash {root!r} is not valid base64") from exc
    if base64.b64encode(raw).decode("ascii") != root:
        raise MalformedCheckpointError(f"root hash {root!r} is not canonical base64")
    return Checkpoint(origin=origin, size=int(size), root=raw, extensions=tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, *, name: str, seed: bytes) -> str:
    """Sign ``checkpoint`` and return the signed note."""
    return sign_note(checkpoint.body(), name=name, seed=seed)


def verify_checkpoint(
    note: str, *, verifier_key: str | VerifierKey, origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint by ``verifier_key`` (and its origin, if given)."""
    checkpoint = parse_checkpoint(verify_note(note, verifier_key=verifier_key))
    if origin is not None and checkpoint.origin != origin:
        raise WrongOriginError(
            f"checkpoint is for origin {checkpoint.origin!r}, expected {origin!r}"
        )
    return checkpoint


LogId = NewType("LogId", bytes)
"""SHA-256 of a log's origin: the name under which anchors commit its tree sizes."""


def log_id(origin: str) -> LogId:
    """The log id anchored on a ledger: SHA-256 of the origin (UTF-8). The one definition."""
    return LogId(hashlib.sha256(origin.encode("utf-8")).digest())
