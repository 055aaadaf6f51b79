"""The per-device hash chain (contract 1: ``seq`` + ``prev``): the one link rule and gap ranges.

A device's messages form a chain: message ``seq`` carries ``prev`` = SHA-256 of the complete
COSE bytes of message ``seq - 1`` (:data:`ZERO_PREV`, 32 zero bytes, for seq 0 and only for
it). :func:`step` says how one message follows another; :func:`genesis_problem` checks the
first link. The offline verifier (``ledger.verify``), the codec (``ledger.message``) and the
gateway's chain book (``gateway.chain``) all decide with these.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

__all__ = ["ZERO_PREV", "SeqRange", "Step", "genesis_problem", "step", "uncovered"]

ZERO_PREV: Final = bytes(32)
"""The ``prev`` of seq 0: no message comes before it."""


class Step(StrEnum):
    """How a message follows an earlier message of the same device."""

    NEXT = "next"
    """The next seq, and ``prev`` is the hash of the earlier message: a sound link."""
    BROKEN = "broken"
    """The next seq, but ``prev`` names another message: the chain forks here."""
    GAP = "gap"
    """A later seq: the seqs between are missing (incompleteness, not forgery)."""
    BACKWARDS = "backwards"
    """The same or an earlier seq: reordered or repeated."""


def step(*, previous_seq: int, previous_hash: bytes, seq: int, prev: bytes) -> Step:
    """How message ``seq`` (carrying ``prev``) follows message ``previous_seq``.

    ``previous_hash`` is the hash of the earlier message's complete COSE bytes.
    """
    if seq <= previous_seq:
        return Step.BACKWARDS
    if seq > previous_seq + 1:
        return Step.GAP
    return Step.NEXT if prev == previous_hash else Step.BROKEN


def genesis_problem(seq: int, prev: bytes) -> str | None:
    """What is wrong with ``prev`` as the zero link (seq 0 only), or ``None``."""
    if seq == 0 and prev != ZERO_PREV:
        return "'prev' must be 32 zero bytes when 'seq' is 0"
    if seq != 0 and prev == ZERO_PREV:
        return f"'prev' is 32 zero bytes but 'seq' is {seq}, not 0"
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class SeqRange:
    """Missing seqs ``first..last`` (inclusive) of one device."""

    first: int
    last: int

    @classmethod
    def between(cls, previous_seq: int, seq: int) -> SeqRange:
        """The seqs strictly between ``previous_seq`` and ``seq`` (a :data:`Step.GAP`)."""
        return cls(first=previous_seq + 1, last=seq - 1)

    @property
    def count(self) -> int:
        """How many seqs the range holds."""
        return self.last - self.first + 1


def uncovered(start: int, stop: int, gaps: Sequence[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """The parts of ``[start, stop)`` that no range of the sorted, disjoint ``gaps`` covers.

    Work is O(log gaps + gaps overlapping the range), whatever the number of seqs: a gap
    of 10**12 missing seqs costs what a gap of one does.
    """
    cursor = start
    # the last gap starting at or before ``start`` may reach into the range
    for first, end in gaps[max(0, bisect_right(gaps, (start, start)) - 1) :]:
        if cursor >= stop or first >= stop:
            break
        if end <= cursor:
            continue
        if first > cursor:
            yield cursor, first
        cursor = end
    if cursor < stop:
        yield cursor, stop
