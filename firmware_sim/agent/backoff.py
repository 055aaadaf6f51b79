"""Reconnect delays: the schedule of ``ledger.backoff`` with this device's failure count and rng."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ledger.backoff import Backoff as Schedule
from ledger.backoff import BackoffConfigError

__all__ = ["Backoff", "BackoffConfigError"]


@dataclass(slots=True, kw_only=True)
class Backoff:
    """Delay ``n`` is uniform in ``[d/2, d]`` with ``d = min(cap_s, base_s * 2**n)``.

    "Equal jitter" (``ledger.backoff``); this class only counts the failures and draws the
    jitter from ``rng``, so that thousands of devices spread out.
    """

    base_s: float = 0.5
    cap_s: float = 60.0
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0
    _schedule: Schedule = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._schedule = Schedule(base_s=self.base_s, cap_s=self.cap_s)

    def nominal(self, attempt: int) -> float:
        """The upper bound of the delay before retry number ``attempt`` (0-based)."""
        return self._schedule.nominal(attempt)

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one more failure."""
        delay = self._schedule.delay(self.attempt, self.rng.random())
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """Start again from ``base_s`` (after a successful connection)."""
        self.attempt = 0
