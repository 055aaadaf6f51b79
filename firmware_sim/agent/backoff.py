"""Reconnect delays: exponential growth with jitter, so a fleet does not reconnect in step."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


class BackoffConfigError(ValueError):
    """The backoff parameters are inconsistent."""


@dataclass(slots=True, kw_only=True)
class Backoff:
    """Delay ``n`` is uniform in ``[d/2, d]`` with ``d = min(cap_s, base_s * 2**n)``.

    "Equal jitter": never shorter than half the nominal delay (no hammering right after an
    outage), spread over the other half so that thousands of devices spread out.
    """

    base_s: float = 0.5
    cap_s: float = 60.0
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.base_s <= self.cap_s:
            raise BackoffConfigError(
                f"backoff needs 0 < base_s <= cap_s, got base_s={self.base_s} cap_s={self.cap_s}"
            )

    def nominal(self, attempt: int) -> float:
        """The upper bound of the delay before retry number ``attempt`` (0-based)."""
        return min(self.cap_s, self.base_s * 2.0 ** min(attempt, 64))

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one more failure."""
        nominal = self.nominal(self.attempt)
        self.attempt += 1
        return self.rng.uniform(nominal / 2, nominal)

    def reset(self) -> None:
        """Start again from ``base_s`` (after a successful connection)."""
        self.attempt = 0
