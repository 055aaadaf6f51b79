"""Reconnect backoff: exponential, capped, jittered within documented bounds."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.agent.backoff import Backoff, BackoffConfigError


@given(seed=st.integers(0, 2**32), base=st.floats(0.01, 5), factor=st.floats(1, 100))
def test_delays_stay_within_half_to_full_nominal(seed: int, base: float, factor: float) -> None:
    """Delay n lies in [d/2, d] with d = min(cap, base * 2**n)."""
    backoff = Backoff(base_s=base, cap_s=base * factor, rng=random.Random(seed))
    for attempt in range(20):
        nominal = min(base * factor, base * 2**attempt)
        assert nominal / 2 <= backoff.next_delay() <= nominal


def test_reset_starts_again() -> None:
    """After reset the next delay is bounded by base again."""
    backoff = Backoff(base_s=1, cap_s=100, rng=random.Random(1))
    for _ in range(5):
        backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() <= 1


def test_jitter_spreads_devices() -> None:
    """Different devices (seeds) do not retry at the same instant."""
    delays = {Backoff(rng=random.Random(seed)).next_delay() for seed in range(50)}
    assert len(delays) == 50


def test_huge_attempt_counts_do_not_overflow() -> None:
    """Thousands of failures keep the delay at the cap."""
    backoff = Backoff(base_s=1, cap_s=60, attempt=10_000)
    assert 30 <= backoff.next_delay() <= 60


@pytest.mark.parametrize(("base", "cap"), [(0, 1), (2, 1), (-1, 5)])
def test_inconsistent_parameters_are_refused(base: float, cap: float) -> None:
    """A non-positive base or a base above the cap is refused."""
    with pytest.raises(BackoffConfigError, match="0 < base_s <= cap_s"):
        Backoff(base_s=base, cap_s=cap)
