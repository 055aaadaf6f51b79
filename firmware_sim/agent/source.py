"""Where an agent's samples come from: one reading per sample period.

A source is anything with a ``kind`` and ``read(t_ms) -> Reading``: the simulated physics
(:mod:`firmware_sim.agent.physics_source`), the vehicle CAN bus
(:mod:`firmware_sim.agent.can_source`) or
:class:`SteadySource`, a deterministic stand-in for tests and benchmarks.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Protocol

from ledger.errors import VoltproofError
from ledger.telemetry import BusSample, Kind, PackSample

from .batcher import Reading


class SourceError(VoltproofError, RuntimeError):
    """The source cannot give a sample now (no data yet, data too old, bus down)."""


class SampleSource(Protocol):
    """Gives the reading of one device at ``t_ms`` (Unix ms)."""

    @property
    def kind(self) -> Kind:
        """``"bus"`` or ``"pack"``."""
        ...

    def read(self, t_ms: int) -> Reading:
        """The reading at ``t_ms``; raises :class:`SourceError` when there is none."""
        ...


@dataclass(slots=True, kw_only=True)
class SteadySource:
    """A parked bus or a resting pack with a little seeded noise and scripted alarm levels.

    ``alarms`` maps a reading index to the alarm level from that reading on (pack only).
    """

    kind: Kind
    seed: int = 0
    host: str | None = None
    packs: tuple[str, ...] = ()
    alarms: dict[int, int] = field(default_factory=dict)
    _rng: random.Random = field(init=False)
    _index: int = field(init=False, default=0)
    _level: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311 - simulated noise, not crypto

    def read(self, t_ms: int) -> Reading:
        """The next reading, stamped ``t_ms``."""
        self._level = self.alarms.get(self._index, self._level)
        self._index += 1
        noise = self._rng.uniform(-0.5, 0.5)
        if self.kind == "bus":
            bus = BusSample(
                speed_mps=0.0,
                odometer_m=125_000.0,
                lat_deg=31.2304,
                lon_deg=121.4737,
                vehicle_state=2,
                charge_state=0,
                traction_power_w=0.0,
                aux_power_w=round(1500 + 100 * noise),
                ambient_c=20.0,
                at_stop=1,
            )
            return Reading(t_ms=t_ms, sample=bus, packs=self.packs)
        pack = PackSample(
            voltage_v=round(620.0 + noise, 1),
            current_a=0.0,
            soc=0.75,
            cell_v_max=3.301,
            cell_v_max_pos=17,
            cell_v_min=3.289,
            cell_v_min_pos=150,
            temp_max_c=26.0,
            temp_max_pos=3,
            temp_min_c=24.5,
            temp_min_pos=11,
            insulation_ohm=5.0e6,
            alarm_level=self._level,
            alarm_flags=(1 << 1) if self._level >= 3 else 0,
            soh_capacity=0.97,
            resistance_growth=1.05,
            r0_ohm=0.12,
            capacity_ah=543.2,
            energy_in_wh=1.2e7,
            energy_out_wh=1.1e7,
            ah_in=21_000.0,
            ah_out=20_500.0,
            charge_state=0,
        )
        return Reading(t_ms=t_ms, sample=pack, host=self.host)
