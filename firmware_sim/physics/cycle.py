"""Stop-to-stop driving cycles after UITP's SORT (Standardised On-Road Test cycles).

SORT (UITP, 2004; revised 2014) describes a city-bus duty cycle as sections that each start
and end at a stop: accelerate to a target speed, cruise, brake to the stop, dwell. The target
speeds, section lengths and dwell used here are the published SORT 1 "heavy urban" (20/30/40
km/h over 100/200/220 m, mean speed about 12.6 km/h) and SORT 2 "easy urban" (20/40/50 km/h
over 100/220/600 m, about 18.6 km/h) definitions, with 20 s dwells. The speed-dependent
acceleration ``a(v) = 1.1 (1 - v / 25 m/s)`` m/s^2 and the 0.8 m/s^2 braking are this
simulator's assumption, close to SORT's prescribed acceleration bands for a loaded 12 m bus.
Each section's target speed (x 0.9..1.05) and dwell (x 0.5..2) vary per pass, from a seeded
generator, so that no two laps are identical.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

BRAKE_MPS2 = 0.8
KMH = 1 / 3.6


@dataclass(frozen=True, slots=True, kw_only=True)
class Section:
    """One stop-to-stop section of a cycle."""

    target_mps: float
    length_m: float
    dwell_s: float


SORT1 = (
    Section(target_mps=20 * KMH, length_m=100.0, dwell_s=20.0),
    Section(target_mps=30 * KMH, length_m=200.0, dwell_s=20.0),
    Section(target_mps=40 * KMH, length_m=220.0, dwell_s=20.0),
)
SORT2 = (
    Section(target_mps=20 * KMH, length_m=100.0, dwell_s=20.0),
    Section(target_mps=40 * KMH, length_m=220.0, dwell_s=20.0),
    Section(target_mps=50 * KMH, length_m=600.0, dwell_s=20.0),
)
CYCLES = {"sort1": SORT1, "sort2": SORT2}


def acceleration_mps2(speed_mps: float) -> float:
    """Full-throttle acceleration at ``speed_mps``."""
    return max(0.1, 1.1 * (1 - speed_mps / 25.0))


class Driver:
    """Follows a cycle's sections in turn; one :meth:`step` per time step."""

    __slots__ = ("_cycle", "_index", "_rng", "_target", "dwell_left", "position_m", "speed_mps")

    def __init__(self, *, cycle: tuple[Section, ...], rng: random.Random) -> None:
        if not cycle:
            raise ValueError("a cycle needs at least one section")
        self._cycle = cycle
        self._rng = rng
        self._index = 0
        self._target = self._jitter_target()
        self.position_m = 0.0
        self.speed_mps = 0.0
        self.dwell_left = 0.0

    @property
    def section(self) -> Section:
        """The section being driven."""
        return self._cycle[self._index]

    def _jitter_target(self) -> float:
        return self._cycle[self._index].target_mps * self._rng.uniform(0.9, 1.05)

    def depart(self) -> None:
        """End any dwell now and start the next section."""
        self.dwell_left = 0.0

    def step(self, dt_s: float) -> tuple[float, float, bool]:
        """Advance; returns (distance travelled m, mean acceleration m/s^2, at a stop)."""
        if self.dwell_left > 0:
            self.dwell_left -= dt_s
            if self.dwell_left <= 0:
                self._index = (self._index + 1) % len(self._cycle)
                self._target = self._jitter_target()
                self.position_m = 0.0
            return 0.0, 0.0, True
        v = self.speed_mps
        remaining = self.section.length_m - self.position_m
        if v * v / (2 * BRAKE_MPS2) >= remaining - v * dt_s:
            needed = v * v / (2 * max(remaining, 0.1))
            v_new = max(0.0, v - max(needed, BRAKE_MPS2 * 0.5) * dt_s)
        elif v < self._target:
            v_new = min(self._target, v + acceleration_mps2(v) * dt_s)
        else:
            v_new = self._target
        distance = min(remaining, (v + v_new) / 2 * dt_s)
        self.position_m += distance
        self.speed_mps = v_new
        if self.section.length_m - self.position_m < 1.0 or (v_new < 0.3 and distance < 0.5):
            self.speed_mps = 0.0
            self.dwell_left = self.section.dwell_s * self._rng.uniform(0.5, 2.0)
            return distance, -v / dt_s, True
        return distance, (v_new - v) / dt_s, False


def mean_speed_mps(cycle: tuple[Section, ...], dt_s: float = 1.0) -> float:
    """Mean speed (dwell included) of one undisturbed pass, for documentation and tests."""
    driver = Driver(cycle=cycle, rng=random.Random(0))  # noqa: S311  (seeded simulation)
    distance = seconds = 0.0
    total = math.fsum(s.length_m for s in cycle)
    while distance < total - 1e-6 or driver.dwell_left > 0:
        d, _, _ = driver.step(dt_s)
        distance += d
        seconds += dt_s
    return distance / seconds
