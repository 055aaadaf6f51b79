"""The one seq/prev link rule in ledger.chain: each way a message can follow another, and the
gateway and the audit deciding with it."""

from __future__ import annotations

import pytest

from gateway.audit.replay import AuditDisagreementError, AuditSummary, LogReplay
from gateway.chain import Accept, ChainBook, Fork
from ledger.chain import ZERO_PREV, SeqRange, Step, genesis_problem, step
from ledger.keys import public_key_from_seed
from tests.support.bundle_world import T0, DeviceState, World, pack_batch, pack_sample

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


# -- the gateway's chain book and the audit's replay decide with the same rule ---------------


@pytest.mark.parametrize(
    ("seq", "prev", "problem"),
    [
        (0, H, "seq 0: 'prev' must be 32 zero bytes when 'seq' is 0"),
        (3, ZERO_PREV, "seq 3: 'prev' is 32 zero bytes but 'seq' is 3, not 0"),
    ],
    ids=["seq 0 with a hash", "seq 3 with zeros"],
)
def test_chain_book_refuses_a_false_genesis(seq: int, prev: bytes, problem: str) -> None:
    """The gateway forks a first message that breaks the zero link, as the audit would."""
    book = ChainBook(heads={}, gaps={}, links={})
    assert book.decide(device="d", seq=seq, prev=prev, message_hash=H) == Fork(detail=problem)
    assert book.decide(device="d", seq=0, prev=ZERO_PREV, message_hash=H) == Accept()
    assert book.decide(device="d", seq=3, prev=H, message_hash=H) == Accept(skipped=3)


def _replay(world: World) -> AuditSummary:
    replay = LogReplay(
        checkpoints=[world.checkpoint()],
        gateway_key=world.gateway_key,
        operator_key=public_key_from_seed(world.operator_seed),
    )
    for index, data in enumerate(world.leaves):
        replay.feed(index, data)
    return replay.finish()


def _pack_world() -> tuple[World, DeviceState]:
    world = World()
    world.enroll("pack-1", "pack")
    world.send("pack-1", pack_batch(T0, [pack_sample()]))
    return world, world.devices["pack-1"]


def test_replay_refuses_a_link_to_the_wrong_predecessor() -> None:
    """Seq 1 logged after seq 0 but carrying another prev: the audit names both hashes."""
    world, state = _pack_world()
    state.prev = H
    world.send("pack-1", pack_batch(T0 + 10_000, [pack_sample()]))
    with pytest.raises(AuditDisagreementError, match=rf"leaf 2 .*: prev {H.hex()} is not the hash"):
        _replay(world)


def test_replay_refuses_a_late_message_its_successor_does_not_name() -> None:
    """Seq 2 logged before seq 1, then a seq 1 that is not the one seq 2 links to."""
    world, state = _pack_world()
    after_zero = state.prev
    world.send("pack-1", pack_batch(T0 + 10_000, [pack_sample()]), log=False)
    world.append_leaf(world.send("pack-1", pack_batch(T0 + 20_000, [pack_sample()]), log=False))
    state.seq, state.prev = 1, after_zero
    world.send("pack-1", pack_batch(T0 + 10_000, [pack_sample(soc=0.4)]))
    with pytest.raises(AuditDisagreementError, match=r"is not the prev .* of seq 2 at leaf 2"):
        _replay(world)


def test_replay_accepts_a_late_message_that_links_both_ways() -> None:
    """Seq 2 logged before seq 1 is no fault when seq 1 is the message seq 2 links to."""
    world, _ = _pack_world()
    late = world.send("pack-1", pack_batch(T0 + 10_000, [pack_sample()]), log=False)
    world.send("pack-1", pack_batch(T0 + 20_000, [pack_sample()]))
    world.append_leaf(late)
    summary = _replay(world)
    assert (summary.messages, summary.missing_seqs) == (3, 0)
