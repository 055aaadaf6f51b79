"""The C2SP tlog-witness ``add-checkpoint`` wire format, for witnesses and their clients.

Request body (every line ends in ``\\n``)::

    old <size>                  decimal, no leading zeros
    <base64 hash>               0 to 63 consistency proof lines (RFC 9162 §2.1.4)
                                an empty line
    <checkpoint signed note>

A 409 Conflict answer carries the witness's latest cosigned size as ``<decimal>\\n`` with
``Content-Type: text/x.tlog.size``; a 200 answer is one or more note signature lines.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from .errors import VerificationError

__all__ = [
    "MAX_PROOF_LINES",
    "SIZE_CONTENT_TYPE",
    "AddCheckpoint",
    "MalformedWitnessRequestError",
    "format_add_checkpoint",
    "format_size",
    "parse_add_checkpoint",
    "parse_size",
]

MAX_PROOF_LINES: Final = 63
SIZE_CONTENT_TYPE: Final = "text/x.tlog.size"
_MAX_SIZE: Final = 2**64 - 1
_DECIMAL: Final = re.compile(r"0|[1-9][0-9]{0,19}")


class MalformedWitnessRequestError(VerificationError):
    """An add-checkpoint request or a size answer breaks the tlog-witness syntax."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AddCheckpoint:
    """A parsed add-checkpoint request: old size, consistency proof and the signed note."""

    old_size: int
    proof: tuple[bytes, ...]
    checkpoint: str


def _decimal(text: str, what: str) -> int:
    if not _DECIMAL.fullmatch(text) or int(text) > _MAX_SIZE:
        raise MalformedWitnessRequestError(
            f"{what} {text[:40]!r} is not a decimal uint64 without leading zeros"
        )
    return int(text)


def _hash(line: str, number: int) -> bytes:
    try:
        raw = base64.b64decode(line.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise MalformedWitnessRequestError(f"proof line {number} is not valid base64") from exc
    if base64.b64encode(raw).decode("ascii") != line:
        raise MalformedWitnessRequestError(f"proof line {number} is not canonical base64")
    if len(raw) != 32:
        raise MalformedWitnessRequestError(f"proof line {number} is {len(raw)} bytes, want 32")
    return raw


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """Parse a request body; the checkpoint note is returned unverified."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedWitnessRequestError("request body is not UTF-8") from exc
    head, separator, checkpoint = text.partition("\n\n")
    if not separator:
        raise MalformedWitnessRequestError("request has no empty line before the checkpoint")
    if not checkpoint:
        raise MalformedWitnessRequestError("request has no checkpoint after the empty line")
    old_line, *proof_lines = head.split("\n")
    if not old_line.startswith("old "):
        raise MalformedWitnessRequestError("request does not start with 'old <size>'")
    old_size = _decimal(old_line[4:], "old size")
    if len(proof_lines) > MAX_PROOF_LINES:
        raise MalformedWitnessRequestError(
            f"request has {len(proof_lines)} proof lines, at most {MAX_PROOF_LINES}"
        )
    proof = tuple(_hash(line, number) for number, line in enumerate(proof_lines, start=1))
    return AddCheckpoint(old_size=old_size, proof=proof, checkpoint=checkpoint)


def format_add_checkpoint(*, old_size: int, proof: Sequence[bytes], checkpoint: str) -> bytes:
    """The request body submitting ``checkpoint`` with a proof from ``old_size``."""
    if len(proof) > MAX_PROOF_LINES:
        raise ValueError(f"a proof of {len(proof)} hashes is longer than {MAX_PROOF_LINES}")
    if any(len(value) != 32 for value in proof):
        raise ValueError("every proof hash must be 32 bytes")
    lines = [f"old {old_size}", *(base64.b64encode(value).decode("ascii") for value in proof)]
    return ("".join(f"{line}\n" for line in lines) + "\n" + checkpoint).encode("utf-8")


def format_size(size: int) -> bytes:
    """The body of a 409 Conflict answer: the latest cosigned size, newline-terminated."""
    return f"{size}\n".encode("ascii")


def parse_size(body: bytes) -> int:
    """The size in a 409 Conflict answer body."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError as exc:
        raise MalformedWitnessRequestError("size answer is not ASCII") from exc
    if not text.endswith("\n"):
        raise MalformedWitnessRequestError("size answer does not end with a newline")
    return _decimal(text[:-1], "size")
