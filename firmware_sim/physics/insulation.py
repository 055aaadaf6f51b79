"""HV-to-chassis insulation resistance as an insulation monitoring device reads it.

A healthy e-bus pack reads tens of MOhm; humidity (a daily cycle plus a slow random walk)
lowers it by up to half, ageing (capacity fade as a proxy for seal and coolant ageing) lowers
it further, and every reading carries a few per cent of measurement noise. An injected
:class:`~firmware_sim.physics.faults.InsulationFault` puts a leak in parallel.
"""

from __future__ import annotations

import math
import random


class Insulation:
    """One pack's insulation resistance model."""

    __slots__ = ("_fault_ohm", "_rng", "_walk", "base_ohm")

    def __init__(self, *, rng: random.Random, base_ohm: float | None = None) -> None:
        self._rng = rng
        self.base_ohm = base_ohm if base_ohm is not None else rng.uniform(15e6, 40e6)
        self._walk = 0.0
        self._fault_ohm: float | None = None

    def inject(self, resistance_ohm: float | None) -> None:
        """Put a leak of ``resistance_ohm`` in parallel (None removes it)."""
        self._fault_ohm = resistance_ohm

    def read(self, *, t_s: float, dt_s: float, fade: float) -> float:
        """One reading (Ohm) at Unix time ``t_s``; ``fade`` is the pack's capacity fade."""
        self._walk = min(0.0, max(-0.7, self._walk + self._rng.gauss(0.0, 0.002) * dt_s**0.5))
        humidity = 0.75 + 0.25 * math.cos(2 * math.pi * ((t_s / 86_400.0) % 1.0))
        value = self.base_ohm * humidity * math.exp(self._walk) * max(0.05, 1 - 3 * fade)
        value *= 1 + self._rng.gauss(0.0, 0.02)
        if self._fault_ohm is not None:
            value = value * self._fault_ohm / (value + self._fault_ohm)
        return max(value, 0.0)
