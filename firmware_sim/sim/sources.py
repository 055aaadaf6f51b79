"""Sample sources only the fleet simulator uses (a device clock off by a skew).

The physics source a stand-alone agent also uses lives in ``firmware_sim.agent.physics_source``.
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware_sim.agent.batcher import Reading
from firmware_sim.agent.physics_source import PhysicsReading, simulated_source
from firmware_sim.agent.source import SteadySource
from ledger.telemetry import Kind

__all__ = ["PhysicsReading", "SkewedSteady", "simulated_source"]


@dataclass(slots=True, kw_only=True)
class SkewedSteady:
    """A :class:`SteadySource` whose clock is off by ``skew_ms``."""

    source: SteadySource
    skew_ms: int = 0

    @property
    def kind(self) -> Kind:
        """The device kind."""
        return self.source.kind

    def read(self, t_ms: int) -> Reading:
        """The steady reading stamped with the skewed time."""
        reading = self.source.read(t_ms)
        return Reading(
            t_ms=t_ms + self.skew_ms,
            sample=reading.sample,
            events=reading.events,
            host=reading.host,
            packs=reading.packs,
        )
