"""Timeliness: proven existence times from real witness cosignatures, delays per chain."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.timeliness import (
    DEFAULT_LATE_MS,
    CosignedCheckpoint,
    MessageTime,
    ProofTime,
    QuorumError,
    Timeline,
    bound_ms,
    chain_delays,
    check_witness_quorum,
    percentile,
    proof_times,
)
from tests.support.timeliness_world import Cosigner, TimedLog

LESSOR = Cosigner.named("lessor.example/witness")
AUDITOR = Cosigner.named("auditor.example/witness")
STRANGER = Cosigner.named("stranger.example/witness")
T0 = 1_780_000_000  # POSIX seconds
MINUTE = 60
HOUR = 3600
DAY = 86_400


def _steady(log: TimedLog, chain: str, start_s: int, minutes: int) -> None:
    for minute in range(minutes):
        log.append(chain, (start_s + minute * MINUTE) * 1000)


class TestQuorum:
    """check_witness_quorum counts only valid, timely cosignatures by the keys given."""

    def test_met_returns_timestamps(self) -> None:
        """Two trusted witnesses cosigned: quorum 2 is met, each timestamp reported."""
        log = TimedLog()
        _steady(log, "bus-1", T0, 3)
        note = AUDITOR.cosign(LESSOR.cosign(log.note(), T0 + 10), T0 + 20)
        result = check_witness_quorum(
            note, keys=[LESSOR.vkey, AUDITOR.vkey], quorum=2, not_after=T0 + 60
        )
        assert dict(result.counted) == {LESSOR.vkey: T0 + 10, AUDITOR.vkey: T0 + 20}
        assert result.time_s(2) == T0 + 20

    def test_not_met_names_the_missing_witness(self) -> None:
        """One of two required: QuorumError says which witness has no cosignature."""
        log = TimedLog()
        _steady(log, "bus-1", T0, 3)
        note = LESSOR.cosign(log.note(), T0 + 10)
        with pytest.raises(QuorumError, match=r"1 of 2 .*auditor.example/witness.*no cosignature"):
            check_witness_quorum(note, keys=[LESSOR.vkey, AUDITOR.vkey], quorum=2, not_after=None)

    def test_unknown_key_does_not_count(self) -> None:
        """A valid cosignature by a key the verifier does not trust is ignored."""
        log = TimedLog()
        _steady(log, "bus-1", T0, 3)
        note = STRANGER.cosign(log.note(), T0 + 10)
        with pytest.raises(QuorumError, match="0 of 1"):
            check_witness_quorum(note, keys=[LESSOR.vkey], quorum=1, not_after=None)

    def test_cosignature_over_another_checkpoint_does_not_count(self) -> None:
        """A lessor line copied from another checkpoint's note does not verify here."""
        log = TimedLog()
        _steady(log, "bus-1", T0, 3)
        other = LESSOR.cosign(log.note(2), T0 + 10)
        stolen = other.splitlines(keepends=True)[-1]
        with pytest.raises(QuorumError, match="does not verify"):
            check_witness_quorum(log.note() + stolen, keys=[LESSOR.vkey], quorum=1, not_after=None)

    def test_future_timestamp_does_not_count(self) -> None:
        """A cosignature dated after not_after does not count."""
        log = TimedLog()
        _steady(log, "bus-1", T0, 3)
        note = LESSOR.cosign(log.note(), T0 + DAY)
        with pytest.raises(QuorumError, match="after"):
            check_witness_quorum(note, keys=[LESSOR.vkey], quorum=1, not_after=T0 + 60)

    def test_one_witness_named_twice_counts_once(self) -> None:
        """Repeating a key does not let one witness meet a quorum of two."""
        log = TimedLog()
        _steady(log, "bus-1", T0, 1)
        note = LESSOR.cosign(log.note(), T0)
        with pytest.raises(ValueError, match="quorum of 2 cannot be met by 1"):
            check_witness_quorum(note, keys=[LESSOR.vkey, LESSOR.vkey], quorum=2, not_after=None)

    @pytest.mark.parametrize("quorum", [0, -1])
    def test_quorum_below_one_is_refused(self, quorum: int) -> None:
        """A quorum of zero would accept anything: refused."""
        with pytest.raises(ValueError, match="at least 1"):
            check_witness_quorum("x", keys=[LESSOR.vkey], quorum=quorum, not_after=None)

    def test_garbage_note_is_a_quorum_error(self) -> None:
        """A text that is not a signed note is a clear QuorumError."""
        with pytest.raises(QuorumError, match="not a signed note"):
            check_witness_quorum("garbage", keys=[LESSOR.vkey], quorum=1, not_after=None)


class TestProofTimes:
    """Which cosigned checkpoints count against the bundle's checkpoint, and why not."""

    def test_refusals_are_listed_not_raised(self) -> None:
        """Wrong origin, too large, inconsistent, garbage, no quorum: each refused with a reason."""
        log = TimedLog()
        _steady(log, "bus-1", T0, 8)
        anchor = log.checkpoint(6)
        good = log.cosigned(4, [(LESSOR, T0 + 300)], to=6)
        other_origin = TimedLog(origin="voltproof.example/other")
        _steady(other_origin, "bus-1", T0, 8)
        items = [
            good,
            other_origin.cosigned(4, [(LESSOR, T0)], to=6),
            log.cosigned(8, [(LESSOR, T0)]),
            CosignedCheckpoint(note=good.note, proof=(bytes(32),) * len(good.proof)),
            CosignedCheckpoint(note="garbage\n"),
            log.cosigned(5, [(STRANGER, T0)], to=6),
        ]
        timeline = proof_times(
            checkpoint=anchor, cosigned=items, keys=[LESSOR.vkey], not_after=None
        )
        assert timeline.points == (ProofTime(size=4, time_ms=bound_ms(T0 + 300)),)
        reasons = {refused.position: refused.reason for refused in timeline.refused}
        assert sorted(reasons) == [1, 2, 3, 4, 5]
        assert "origin" in reasons[1]
        assert "above the bundle's checkpoint" in reasons[2]
        assert "not consistent" in reasons[3]
        assert "not a checkpoint note" in reasons[4]
        assert "0 of 1" in reasons[5]

    def test_quorum_time_is_the_kth_earliest(self) -> None:
        """With quorum 2, one early-dating witness cannot make a checkpoint look earlier."""
        log = TimedLog()
        _steady(log, "bus-1", T0, 4)
        item = log.cosigned(4, [(LESSOR, T0 - DAY), (AUDITOR, T0 + 240)])
        timeline = proof_times(
            checkpoint=log.checkpoint(),
            cosigned=[item],
            keys=[LESSOR.vkey, AUDITOR.vkey],
            quorum=2,
            not_after=None,
        )
        assert timeline.points == (ProofTime(size=4, time_ms=bound_ms(T0 + 240)),)


def test_bound_is_the_end_of_the_stamped_second() -> None:
    """A cosignature stamped second s proves existence before s + 1 s, not before s."""
    assert bound_ms(T0) == T0 * 1000 + 1000


class TestDelays:
    """Delays per chain from real cosignatures: backfill and backdated forgery."""

    def test_backfilled_device_delays_equal_its_outage(self) -> None:
        """A bus offline 2 h sends its buffered data on return: delays up to the outage."""
        log = TimedLog()
        cosigned: list[tuple[int, int]] = []
        outage_start, outage_end = T0 + 10 * MINUTE, T0 + 10 * MINUTE + 2 * HOUR
        # The pack reports live every minute; the bus is live until its outage starts.
        for minute in range(10):
            log.append("pack-1", (T0 + minute * MINUTE) * 1000)
            log.append("bus-1", (T0 + minute * MINUTE) * 1000)
            cosigned.append((log.tree.size, T0 + minute * MINUTE + 30))
        buffered = [(outage_start + minute * MINUTE) * 1000 for minute in range(120)]
        for t_ms in buffered:  # all sent in the minute after reconnecting
            log.append("bus-1", t_ms)
        cosigned.append((log.tree.size, outage_end + 30))
        items = [log.cosigned(size, [(LESSOR, when)]) for size, when in cosigned]
        timeline = proof_times(
            checkpoint=log.checkpoint(), cosigned=items, keys=[LESSOR.vkey], not_after=None
        )
        delays = chain_delays(log.messages, timeline)
        bus, pack = delays["bus-1"], delays["pack-1"]
        assert (pack.count, pack.unproven, pack.max_ms, pack.late) == (10, 0, 31_000, 0)
        assert not pack.flagged
        # The first buffered sample waited the whole outage (plus the 30 s to the cosignature).
        assert bus.max_ms == bound_ms(outage_end + 30) - outage_start * 1000
        assert bus.late == sum(
            1 for t_ms in buffered if bound_ms(outage_end + 30) - t_ms > DEFAULT_LATE_MS
        )
        assert bus.first_late_seq == 10
        assert bus.flagged
        assert bus.impossible == 0

    def test_forged_backdated_history_is_flagged(self) -> None:
        """A month of data dated last month, appended today: every message days late."""
        log = TimedLog()
        _steady(log, "bus-1", T0, 5)
        honest = log.tree.size
        forged_start = T0 - 30 * DAY
        for hour in range(30 * 24):
            log.append("pack-9", (forged_start + hour * HOUR) * 1000)
        items = [
            log.cosigned(honest, [(LESSOR, T0 + 5 * MINUTE)]),
            log.cosigned(log.tree.size, [(LESSOR, T0 + 6 * MINUTE)]),
        ]
        timeline = proof_times(
            checkpoint=log.checkpoint(), cosigned=items, keys=[LESSOR.vkey], not_after=None
        )
        forged = chain_delays(log.messages, timeline)["pack-9"]
        assert forged.flagged
        assert forged.late == forged.count == 30 * 24
        assert forged.max_ms == bound_ms(T0 + 6 * MINUTE) - forged_start * 1000
        assert forged.p50_ms is not None
        assert forged.p50_ms > 14 * DAY * 1000
        assert not chain_delays(log.messages, timeline)["bus-1"].flagged

    def test_uncovered_messages_are_unproven(self) -> None:
        """Messages after the last cosigned checkpoint have no bound: counted as unproven."""
        log = TimedLog()
        _steady(log, "bus-1", T0, 6)
        timeline = proof_times(
            checkpoint=log.checkpoint(),
            cosigned=[log.cosigned(4, [(LESSOR, T0 + 5 * MINUTE)])],
            keys=[LESSOR.vkey],
            not_after=None,
        )
        bus = chain_delays(log.messages, timeline)["bus-1"]
        assert (bus.count, bus.unproven, bus.max_ms) == (
            6,
            2,
            bound_ms(T0 + 5 * MINUTE) - T0 * 1000,
        )

    def test_clock_ahead_is_counted_impossible(self) -> None:
        """A message dated after the cosignature that covers it is counted as impossible."""
        timeline = Timeline((ProofTime(size=1, time_ms=1000),))
        message = MessageTime(chain="bus-1", seq=0, leaf_index=0, t_ms=5000)
        assert chain_delays([message], timeline)["bus-1"].impossible == 1

    def test_negative_threshold_is_refused(self) -> None:
        """A negative late threshold is a usage error."""
        with pytest.raises(ValueError, match="must not be negative"):
            chain_delays([], Timeline(()), late_ms=-1)

    def test_negative_leaf_index_is_refused(self) -> None:
        """A negative leaf index is a clear error."""
        with pytest.raises(ValueError, match="negative"):
            Timeline(()).existence_ms(-1)


points = st.lists(
    st.builds(
        ProofTime,
        size=st.integers(min_value=1, max_value=200),
        time_ms=st.integers(min_value=0, max_value=10**12),
    ),
    max_size=20,
)


@given(points=points, index=st.integers(min_value=0, max_value=250))
def test_existence_is_the_earliest_covering_checkpoint(points: list[ProofTime], index: int) -> None:
    """existence_ms equals the brute-force minimum over checkpoints whose size is above it."""
    covering = [point.time_ms for point in points if point.size > index]
    assert Timeline(tuple(points)).existence_ms(index) == (min(covering) if covering else None)


@given(values=st.lists(st.integers(), min_size=1), fraction=st.floats(0.01, 1.0))
def test_percentile_is_a_value_at_its_rank(values: list[int], fraction: float) -> None:
    """The nearest-rank percentile is one of the values, monotone in the fraction."""
    ordered = sorted(values)
    value = percentile(ordered, fraction)
    assert value in ordered
    assert percentile(ordered, 1.0) == ordered[-1]
    assert value <= percentile(ordered, min(1.0, fraction + 0.1))


@given(
    times=st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=30),
    lag=st.integers(min_value=0, max_value=10**6),
)
def test_honest_live_log_has_no_negative_delay(times: list[int], lag: int) -> None:
    """Cosigned at or after every t it covers: no delay is negative, max is bounded by lag."""
    ordered = sorted(times)
    messages = [MessageTime(chain="c", seq=i, leaf_index=i, t_ms=t) for i, t in enumerate(ordered)]
    timeline = Timeline(
        tuple(ProofTime(size=i + 1, time_ms=t + lag) for i, t in enumerate(ordered))
    )
    delays = chain_delays(messages, timeline)["c"]
    assert delays.impossible == 0
    assert delays.max_ms is not None
    assert 0 <= delays.max_ms <= lag
