"""The one seq/prev link rule in ledger.chain: each way a message can follow another."""

from __future__ import annotations

import pytest

from ledger.chain import ZERO_PREV, SeqRange, Step, genesis_problem, step

H = bytes([7]) * 32


@pytest.mark.parametrize(
    ("seq", "prev", "expected"),
    [
        (5, H, Step.NEXT),
        (5, bytes(32), Step.BROKEN),
        (7, bytes(32), Step.GAP),
        (4, H, Step.BACKWARDS),
        (3, H, Step.BACKWARDS),
    ],
)
def test_step_names_how_a_message_follows(seq: int, prev: bytes, expected: Step) -> None:
    """Next with the right hash, next with another, a jump ahead, the same or an earlier seq."""
    assert step(previous_seq=4, previous_hash=H, seq=seq, prev=prev) is expected


def test_gap_range_between_two_seqs() -> None:
    """The seqs strictly between two received ones are missing."""
    gap = SeqRange.between(4, 7)
    assert (gap.first, gap.last, gap.count) == (5, 6, 2)


def test_genesis_link() -> None:
    """Seq 0 and only seq 0 carries the zero prev."""
    assert genesis_problem(0, ZERO_PREV) is None
    assert genesis_problem(1, H) is None
    assert genesis_problem(0, H) == "'prev' must be 32 zero bytes when 'seq' is 0"
    assert genesis_problem(3, ZERO_PREV) == "'prev' is 32 zero bytes but 'seq' is 3, not 0"
