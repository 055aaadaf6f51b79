"""The one jittered exponential backoff, as a pure schedule: callers count failures and sleep.

Delay ``n`` (0-based) has the nominal value ``d = min(cap_s, base_s * factor**n)``; with
jitter it is uniform in ``[d/2, d]`` ("equal jitter"): never shorter than half the nominal
delay (no hammering right after an outage), spread over the other half so that many clients
do not retry in step. The jitter is a number in ``[0, 1]`` the caller draws (a seeded
``random.Random`` in simulations), so this module holds no randomness, clock or sleep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .errors import VoltproofError

__all__ = ["Backoff", "BackoffConfigError", "nominal_delay"]

_MAX_EXPONENT: Final = 64
"""Attempts beyond this many are at the cap anyway; the power is not computed further."""


class BackoffConfigError(VoltproofError, ValueError):
    """The backoff parameters are inconsistent."""


def nominal_delay(attempt: int, *, base_s: float, cap_s: float, factor: float = 2.0) -> float:
    """The un-jittered delay before retry ``attempt`` (0-based): ``min(cap, base * factor**n)``."""
    return min(cap_s, base_s * factor ** min(attempt, _MAX_EXPONENT))


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """A validated schedule: :meth:`nominal` and :meth:`delay` for each retry number."""

    base_s: float = 0.5
    cap_s: float = 60.0
    factor: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.base_s <= self.cap_s:
            raise BackoffConfigError(
                f"backoff needs 0 < base_s <= cap_s, got base_s={self.base_s} cap_s={self.cap_s}"
            )
        if self.factor < 1:
            raise BackoffConfigError(f"backoff needs factor >= 1, got {self.factor}")

    def nominal(self, attempt: int) -> float:
        """The upper bound of the delay before retry number ``attempt`` (0-based)."""
        return nominal_delay(attempt, base_s=self.base_s, cap_s=self.cap_s, factor=self.factor)

    def delay(self, attempt: int, jitter: float) -> float:
        """The delay before retry ``attempt`` for ``jitter`` in ``[0, 1]``: in ``[d/2, d]``."""
        nominal = self.nominal(attempt)
        low = nominal / 2
        return low + (nominal - low) * jitter
