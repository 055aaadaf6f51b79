"""The stale-checkpoint rule at its boundaries (``ledger.verify_v2``, docs/protocol.md step 8).

An end proven by the device's index head holds as of the bundle's checkpoint: a later anchor of
a larger tree made before the chain's end (beyond the grace for an anchor's own commit), or a
witness quorum that last saw the checkpoint long before that end, withdraws it. Ends proven by
an ``after`` message, and unproven ends, are never touched.
"""

from __future__ import annotations

import pytest

from ledger.anchors.base import LOCAL_LATER_ANCHOR_GRACE_MS as LATER_ANCHOR_GRACE_MS
from ledger.anchors.base import LaterAnchor
from ledger.verify_v2 import ChainFacts, _stale, stale_after

END = 1_800_000_000_000


def _facts(end_by: str | None) -> ChainFacts:
    return ChainFacts(
        device="bus-0001", role="asset", from_ms=0, to_ms=END, first_seq=0, last_seq=9,
        received=10, gaps=(), start_proven=True, end_proven=end_by is not None, end_by=end_by,
    )  # fmt: skip


def _later(at_ms: int) -> LaterAnchor:
    return LaterAnchor(tree_size=99, anchored_at_ms=at_ms)


def test_later_anchor_beyond_the_grace_withdraws_a_head_proven_end() -> None:
    """Anchored one millisecond more than the grace before the end: stale, with the reason."""
    found = _stale(_facts("head"), _later(END - LATER_ANCHOR_GRACE_MS - 1))
    assert (found.end_proven, found.end_by, found.complete) == (False, None, False)
    assert found.end_note.startswith("stale checkpoint: the ledger anchored a larger tree")


@pytest.mark.parametrize("at_ms", [END - LATER_ANCHOR_GRACE_MS, END, END + 1])
def test_later_anchor_within_the_grace_or_after_the_end_changes_nothing(at_ms: int) -> None:
    """An anchor stamped within the grace, at or after the end: the head still proves it."""
    assert _stale(_facts("head"), _later(at_ms)) == _facts("head")


@pytest.mark.parametrize("end_by", ["after", None])
def test_ends_not_proven_by_the_head_are_untouched(end_by: str | None) -> None:
    """An ``after`` message proves the end whatever came later; an unproven end stays so."""
    assert _stale(_facts(end_by), _later(0)) == _facts(end_by)
    assert stale_after(_facts(end_by), seen_ms=0, tolerance_ms=0, by="w") == _facts(end_by)


def test_witness_tolerance_boundary() -> None:
    """Seen exactly the tolerance before the end: proven; one millisecond earlier: stale."""
    tolerance = 15 * 60_000
    kept = stale_after(_facts("head"), seen_ms=END - tolerance, tolerance_ms=tolerance, by="w")
    assert kept.end_proven
    gone = stale_after(_facts("head"), seen_ms=END - tolerance - 1, tolerance_ms=tolerance, by="w")
    assert not gone.end_proven
    assert gone.end_note.startswith("stale checkpoint: w last saw it as the log's newest at")


def test_an_evm_anchor_has_the_time_to_be_confirmed() -> None:
    """An EVM anchor mined 30 s before the end may not yet have been final for the builder:
    no verdict against the bundle; mined more than a minute before the end, it is stale."""
    recent = LaterAnchor(tree_size=99, anchored_at_ms=END - 30_000, grace_ms=60_000)
    assert _stale(_facts("head"), recent) == _facts("head")
    old = LaterAnchor(tree_size=99, anchored_at_ms=END - 60_001, grace_ms=60_000)
    assert not _stale(_facts("head"), old).end_proven
