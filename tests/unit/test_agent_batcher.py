"""Batching of 1 Hz samples: periodic messages and GB/T 32960 alarm mode."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.agent.batcher import Batcher, BatcherConfigError, Reading, ReadingKindError
from firmware_sim.agent.source import SteadySource
from ledger.telemetry import TelemetryBatch, decode_batch, encode_batch

T0 = 1_767_225_600_000


def _feed(batcher: Batcher, source: SteadySource, n: int, start: int = 0) -> list[TelemetryBatch]:
    out: list[TelemetryBatch] = []
    for k in range(start, start + n):
        out.extend(batcher.feed(source.read(T0 + 1000 * k)))
    return out


def test_periodic_batches_every_period() -> None:
    """With no alarm one batch of `period` samples leaves every `period` readings."""
    batches = _feed(Batcher(kind="pack", period=10), SteadySource(kind="pack"), 35)
    assert [len(b.samples) for b in batches] == [10, 10, 10]
    assert [b.t_ms for b in batches] == [T0, T0 + 10_000, T0 + 20_000]
    assert all(b.dt_ms == 1000 for b in batches)


def test_alarm_onset_sends_pre_fault_context_then_1hz() -> None:
    """A level-3 alarm sends 30 s of context, marks the first new sample, then goes 1 Hz."""
    batcher = Batcher(kind="pack", period=10, pre_fault_samples=30)
    source = SteadySource(kind="pack", alarms={45: 3, 48: 0})
    batches = _feed(batcher, source, 60)
    onset = batches[4]
    assert onset.t_ms == T0 + 15_000
    assert len(onset.samples) == 31
    kinds = {e.kind: e for e in onset.events}
    assert kinds["pre_fault"].at == 25
    assert kinds["pre_fault"].data == {"lvl": 3}
    assert kinds["alarm"].at == 30
    assert [len(b.samples) for b in batches[5:7]] == [1, 1]
    cleared = batches[7]
    assert (cleared.t_ms, len(cleared.samples)) == (T0 + 48_000, 10)
    assert cleared.events[0].data == {"lvl": 0, "flags": 0}


def test_alarm_batches_decode() -> None:
    """Every batch of an alarm episode survives encode/decode with its events."""
    batches = _feed(Batcher(kind="pack"), SteadySource(kind="pack", alarms={3: 4, 5: 1}), 20)
    for batch in batches:
        assert decode_batch(encode_batch(batch) | {"t": batch.t_ms}) == batch


def test_bus_batches_carry_packs() -> None:
    """A bus batch names the installed packs and never enters alarm mode."""
    batches = _feed(Batcher(kind="bus", period=5), SteadySource(kind="bus", packs=("p1",)), 10)
    assert [b.packs for b in batches] == [("p1",), ("p1",)]


def test_hole_in_time_splits_batch() -> None:
    """Readings with a gap are split into batches that each have one sample period."""
    batcher = Batcher(kind="pack", period=4)
    source = SteadySource(kind="pack")
    _feed(batcher, source, 2)
    batches = _feed(batcher, source, 2, start=5)
    assert [(b.t_ms, len(b.samples)) for b in batches] == [(T0, 2), (T0 + 5000, 2)]


def test_flush_returns_pending() -> None:
    """flush() hands over what is pending and then nothing."""
    batcher = Batcher(kind="pack", period=10)
    _feed(batcher, SteadySource(kind="pack"), 3)
    assert batcher.pending == 3
    assert len(batcher.flush()[0].samples) == 3
    assert batcher.flush() == []


def test_wrong_kind_is_refused() -> None:
    """A bus reading fed to a pack batcher is an error."""
    with pytest.raises(ReadingKindError, match="a pack batcher got a BusSample"):
        Batcher(kind="pack").feed(SteadySource(kind="bus").read(T0))


def test_time_must_advance() -> None:
    """A reading not after the previous one is an error."""
    batcher = Batcher(kind="pack")
    source = SteadySource(kind="pack")
    batcher.feed(source.read(T0))
    with pytest.raises(ReadingKindError, match="is not after the previous one"):
        batcher.feed(Reading(t_ms=T0, sample=source.read(T0).sample))


@pytest.mark.parametrize(
    ("period", "pre", "match"),
    [(0, 30, "period must be"), (601, 30, "period must be"), (10, 600, "pre_fault_samples")],
)
def test_config_bounds(period: int, pre: int, match: str) -> None:
    """Out-of-range periods and pre-fault windows are refused."""
    with pytest.raises(BatcherConfigError, match=match):
        Batcher(kind="pack", period=period, pre_fault_samples=pre)


@given(levels=st.lists(st.sampled_from([0, 1, 2, 3, 4]), min_size=1, max_size=80))
def test_every_sample_is_sent_once_as_new(levels: list[int]) -> None:
    """Whatever the alarm script, each sample appears exactly once outside pre-fault context."""
    alarms = dict(enumerate(levels))
    batcher = Batcher(kind="pack", period=7, pre_fault_samples=5)
    batches = _feed(batcher, SteadySource(kind="pack", alarms=alarms), len(levels))
    batches += batcher.flush()
    new_times: list[int] = []
    for batch in batches:
        skip = next((e.at for e in batch.events if e.kind == "pre_fault"), 0)
        new_times += [batch.t_ms + 1000 * k for k in range(skip, len(batch.samples))]
    assert new_times == [T0 + 1000 * k for k in range(len(levels))]
