"""The one jittered exponential backoff, as a pure schedule: callers count failures and sleep.

Delay ``n`` (0-based) has the nominal value ``d = min(cap_s, base_s * factor**n)``; with
jitter it is uniform in ``[d/2, d]`` ("equal jitter"): never shorter than half the nominal
delay (no hammering right after an outage), spread over the other half so that many clients
do not retry in step. The jitter is a number in ``[0, 1]`` the caller draws (a seeded
``random.Random`` in simulations), so this module holds no randomness, clock or sleep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .errors import VoltproofError

__all__ = ["Backoff", "BackoffConfigError"]


class BackoffConfigError(VoltproofError, ValueError):
    """The backoff parameters are inconsistent, or a retry number or jitter is out of range."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """A validated schedule: :meth:`nominal` and :meth:`delay` for each retry number."""

    base_s: float = 0.5
    cap_s: float = 60.0
    factor: float = 2.0
    _capped_from: int = field(init=False, repr=False, compare=False)
    """A retry number whose nominal delay is at the cap: the power is not computed beyond it
    (so that a retry count in the thousands neither overflows nor costs anything)."""

    def __post_init__(self) -> None:
        if not 0 < self.base_s <= self.cap_s < math.inf:
            raise BackoffConfigError(
                f"backoff needs 0 < base_s <= cap_s (finite), got base_s={self.base_s} "
                f"cap_s={self.cap_s}"
            )
        if not 1 <= self.factor < math.inf:
            raise BackoffConfigError(f"backoff needs a finite factor >= 1, got {self.factor}")
        steps = 0 if self.factor == 1 else math.log(self.cap_s / self.base_s, self.factor)
        object.__setattr__(self, "_capped_from", math.ceil(steps) + 1)

    def nominal(self, attempt: int) -> float:
        """The upper bound of the delay before retry ``attempt`` (0-based): the un-jittered
        ``min(cap_s, base_s * factor**attempt)``."""
        if attempt < 0:
            raise BackoffConfigError(f"a retry number is >= 0, got {attempt}")
        return min(self.cap_s, self.base_s * self.factor ** min(attempt, self._capped_from))

    def delay(self, attempt: int, jitter: float) -> float:
        """The delay before retry ``attempt`` for ``jitter`` in ``[0, 1]``: in ``[d/2, d]``."""
        if not 0 <= jitter <= 1:
            raise BackoffConfigError(f"jitter is a number in [0, 1], got {jitter}")
        nominal = self.nominal(attempt)
        low = nominal / 2
        return low + (nominal - low) * jitter
