"""Simulated physics as an agent's sample source (a stand-alone agent, or each agent of a fleet).

The battery and bus models of :mod:`firmware_sim.physics` adapted to the agent's ``read``
interface, like :mod:`firmware_sim.agent.can_source` adapts a vehicle CAN bus.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from firmware_sim.physics import SampleSource as PhysicsSource
from firmware_sim.physics import build_vehicle
from ledger.telemetry import Event, Kind

from .batcher import Reading
from .source import SampleSource


@dataclass(slots=True, kw_only=True)
class PhysicsReading:
    """Adapts a physics source (``next_batch``) to ``read``; the device clock is off by skew."""

    source: PhysicsSource
    skew_ms: int = 0
    names_vehicle: bool = True
    """Whether readings name the bus a pack is in (``host``) and the packs a bus holds. A
    stand-alone agent simulates a vehicle of its own that is no device of the fleet: naming
    it would claim a host no registry holds, so it does not."""

    @property
    def kind(self) -> Kind:
        """The device kind."""
        return self.source.kind

    def read(self, t_ms: int) -> Reading:
        """The one sample of the physics grid at or after ``t_ms``, with its events."""
        batch = self.source.next_batch(t_ms, 1)
        events = tuple(Event(kind=e.kind, at=0, data=e.data) for e in batch.events)
        return Reading(
            t_ms=batch.t_ms + self.skew_ms,
            sample=batch.samples[0],
            events=events,
            host=batch.host if self.names_vehicle else None,
            packs=batch.packs if self.names_vehicle else (),
        )


def simulated_source(kind: Kind, *, device_id: str, seed: int, start_ms: int = 0) -> SampleSource:
    """The physics of one device for a stand-alone agent (a pack gets a bus of its own)."""
    mixed = seed ^ zlib.crc32(device_id.encode())
    bus_id, pack_id = (
        (device_id, f"{device_id}-pack") if kind == "bus" else (f"{device_id}-bus", device_id)
    )
    _, bus, pack = build_vehicle(bus_id=bus_id, pack_id=pack_id, seed=mixed, start_ms=start_ms)
    return PhysicsReading(source=bus if kind == "bus" else pack, names_vehicle=False)
