"""The one jittered backoff (``ledger.backoff``): exact delays for a given jitter, bounds, errors.

The jitter is passed in, so every value here is known in advance: 0 gives the lower end of the
delay (half the nominal), 1 the upper end (the nominal).
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.backoff import Backoff, BackoffConfigError


def test_nominal_delays_double_from_base_to_cap() -> None:
    """The nominal delay is base * 2**n, held at the cap once it is reached."""
    schedule = Backoff(base_s=0.5, cap_s=6.0)
    assert [schedule.nominal(n) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 6.0, 6.0, 6.0]


def test_jitter_spans_half_to_full_nominal() -> None:
    """Jitter 0 gives half the nominal delay, 1 the nominal, 0.5 three quarters of it."""
    schedule = Backoff(base_s=1.0, cap_s=8.0)
    assert [schedule.delay(n, 0.0) for n in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert [schedule.delay(n, 1.0) for n in range(5)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert [schedule.delay(n, 0.5) for n in range(5)] == [0.75, 1.5, 3.0, 6.0, 6.0]


def test_factor_other_than_two() -> None:
    """The factor replaces the doubling; factor 1 keeps the base delay for ever."""
    assert [Backoff(base_s=1, cap_s=100, factor=3).nominal(n) for n in range(6)] == [
        1, 3, 9, 27, 81, 100,
    ]  # fmt: skip
    assert Backoff(base_s=2, cap_s=2, factor=1).nominal(10_000) == 2


@given(
    base=st.floats(0.001, 10),
    ratio=st.floats(1, 1e6),
    factor=st.floats(1, 100),
    attempt=st.integers(0, 10**6),
    jitter=st.floats(0, 1),
)
def test_delay_stays_within_bounds(
    base: float, ratio: float, factor: float, attempt: int, jitter: float
) -> None:
    """Any delay lies in [d/2, d] for d = min(cap, base * factor**n), and never above the cap."""
    schedule = Backoff(base_s=base, cap_s=base * ratio, factor=factor)
    nominal = schedule.nominal(attempt)
    assert base <= nominal <= schedule.cap_s
    assert nominal / 2 <= schedule.delay(attempt, jitter) <= nominal


def test_slow_growth_is_not_cut_short() -> None:
    """A factor close to 1 keeps growing past 64 retries until it meets the cap."""
    schedule = Backoff(base_s=1, cap_s=10, factor=1.01)
    assert schedule.nominal(100) == pytest.approx(1.01**100)
    assert schedule.nominal(200) == pytest.approx(1.01**200)
    assert schedule.nominal(10**9) == 10


def test_huge_retry_numbers_sit_at_the_cap() -> None:
    """A retry number in the billions neither overflows nor leaves the cap."""
    schedule = Backoff(base_s=0.25, cap_s=5.0)
    assert schedule.nominal(10**9) == 5.0
    assert schedule.delay(10**9, 0.0) == 2.5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_s": 0, "cap_s": 1}, "0 < base_s <= cap_s"),
        ({"base_s": -1, "cap_s": 5}, "0 < base_s <= cap_s"),
        ({"base_s": 2, "cap_s": 1}, "0 < base_s <= cap_s"),
        ({"base_s": 1, "cap_s": math.inf}, r"cap_s \(finite\), got base_s=1 cap_s=inf"),
        ({"base_s": math.nan, "cap_s": 1}, "0 < base_s <= cap_s"),
        ({"factor": 0.5}, "finite factor >= 1, got 0.5"),
        ({"factor": math.inf}, "finite factor >= 1, got inf"),
    ],
)
def test_inconsistent_parameters_are_refused(kwargs: dict[str, float], message: str) -> None:
    """A non-positive or infinite base or cap, a base above the cap, a factor below 1."""
    with pytest.raises(BackoffConfigError, match=message):
        Backoff(**kwargs)


def test_out_of_range_retry_number_or_jitter_is_refused() -> None:
    """A negative retry number or a jitter outside [0, 1] would leave the bounds: refused."""
    schedule = Backoff()
    with pytest.raises(BackoffConfigError, match="a retry number is >= 0, got -1"):
        schedule.nominal(-1)
    with pytest.raises(BackoffConfigError, match=r"jitter is a number in \[0, 1\], got 1.5"):
        schedule.delay(0, 1.5)
    with pytest.raises(BackoffConfigError, match=r"jitter is a number in \[0, 1\], got -0.1"):
        schedule.delay(0, -0.1)
