"""Sample sources for edge agents: a bus and its pack stepped together, a pack on a shelf.

The agent of a device calls ``next_batch(t_ms, n)`` (or ``next_samples``) on its
:class:`SampleSource` and gets the n samples taken at ``t, t + dt, ...`` where ``t`` is the
first sample time on the source's 1 s grid at or after ``t_ms``. The model runs lazily: it
advances only as far as some source asks, so a bus and its pack -- two devices, two agents --
share one simulation and whichever agent asks first drives it. Samples before a requested
time that nobody took are dropped (a device that was off does not invent history later).
The model computes whole chunks of ``AHEAD_STEPS`` samples (the per-cell work is vectorised
per chunk), so an injected fault shows from the next chunk, at most 10 s later; samples are
still handed out only when their time is asked for.
Timestamps are honest: ageing may be accelerated (:class:`PackConfig.ageing_accel`), time
is not.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from ledger.telemetry import Event, Kind, Sample, TelemetryBatch

from .bms import Bms
from .bus import Bus, OperatingPlan
from .charging import NOT_CHARGING, charge_current
from .climate import ambient_c
from .faults import Fault, InsulationFault
from .insulation import Insulation
from .pack import Pack, PackConfig
from .route import SHENNAN_LINE, Route

DT_MS = 1000
AHEAD_STEPS = 10


def _ahead(end_ms: int, grid_ms: int) -> int:
    """``end_ms`` rounded up to a whole chunk of AHEAD_STEPS samples on the grid."""
    chunk = AHEAD_STEPS * DT_MS
    return end_ms + (-(end_ms - grid_ms) % chunk)


@runtime_checkable
class SampleSource(Protocol):
    """What an edge agent needs from its device model."""

    @property
    def device_id(self) -> str:
        """The device id (the payload's ``dev``)."""
        ...

    @property
    def kind(self) -> Kind:
        """``"bus"`` or ``"pack"``."""
        ...

    def next_samples(self, t_ms: int, n: int) -> list[Sample]:
        """n consecutive samples from the first grid time at or after ``t_ms``."""
        ...

    def next_batch(self, t_ms: int, n: int) -> TelemetryBatch:
        """The same samples with their events and host/pack ids, ready to encode."""
        ...


class _Stream:
    """Timestamped samples and events of one device, produced ahead of the agent."""

    __slots__ = ("events", "samples", "taken_until")

    def __init__(self) -> None:
        self.taken_until = -1
        self.samples: deque[tuple[int, Sample]] = deque()
        self.events: deque[tuple[int, str, dict[str, int | str]]] = deque()

    def take(
        self, t_ms: int, n: int, produce_until: Callable[[int], None], grid_ms: int
    ) -> tuple[int, list[Sample], list[Event]]:
        if n < 1:
            raise ValueError(f"n must be at least 1, not {n}")
        start = t_ms + (-(t_ms - grid_ms) % DT_MS)
        if start < self.taken_until:
            raise ValueError(f"samples at {start} were already taken")
        while self.samples and self.samples[0][0] < start:
            self.samples.popleft()
        while self.events and self.events[0][0] < start:
            self.events.popleft()
        produce_until(start + n * DT_MS)
        while self.samples and self.samples[0][0] < start:  # produced while catching up
            self.samples.popleft()
        taken = [self.samples.popleft()[1] for _ in range(n)]
        events = []
        end = start + n * DT_MS
        self.taken_until = end
        while self.events and self.events[0][0] < end:
            at, kind, data = self.events.popleft()
            if at >= start:
                events.append(Event(kind=kind, at=(at - start) // DT_MS, data=data))
        return start, taken, events


class PackUnit:
    """A pack with its BMS and insulation monitor; installed in a :class:`Vehicle` or not."""

    def __init__(
        self,
        *,
        device_id: str,
        seed: int,
        start_ms: int,
        config: PackConfig | None = None,
        cells: bool = False,
    ) -> None:
        self.device_id = device_id
        self.config = config or PackConfig()
        rng = random.Random(f"{seed}:bms")  # noqa: S311  (seeded simulation)
        self.pack = Pack(config=self.config, seed=seed)
        self.bms = Bms(config=self.config, rng=rng)
        self.insulation = Insulation(rng=random.Random(f"{seed}:iso"))  # noqa: S311  (same)
        self.cells = cells
        self.t_ms = start_ms
        self.grid_ms = start_ms
        self.vehicle: Vehicle | None = None
        self.stream = _Stream()
        self._meta: list[tuple[int, int, bool]] = []

    @property
    def host(self) -> str | None:
        """Id of the bus the pack is installed in."""
        return self.vehicle.bus.bus_id if self.vehicle else None

    def inject(self, fault: Fault | None) -> None:
        """Start a fault now (None clears faults)."""
        self.pack.inject(fault)
        if fault is None or isinstance(fault, InsulationFault):
            self.insulation.inject(fault.resistance_ohm if fault else None)

    def advance(self, current_a: float, ambient: float, charge_state: int, full: bool) -> None:
        """One step of the pack at the unit's clock."""
        self.pack.advance(current_a, DT_MS / 1000, ambient)
        self._meta.append((self.t_ms, charge_state, full))
        self.t_ms += DT_MS

    def flush(self) -> None:
        """Turn the advanced steps into BMS samples and events."""
        states = self.pack.flush(with_cells=self.cells)
        fade = 1.0 - self.pack.ageing.capacity_fraction
        for state, (t_ms, charge_state, full) in zip(states, self._meta, strict=True):
            riso = self.insulation.read(t_s=t_ms / 1000, dt_s=DT_MS / 1000, fade=fade)
            sample, events = self.bms.observe(
                state, dt_s=DT_MS / 1000, insulation_ohm=riso, charge_state=charge_state, full=full
            )
            self.stream.samples.append((t_ms, sample))
            self.stream.events.extend((t_ms, e.kind, e.data) for e in events)
        self._meta.clear()

    def produce_until(self, end_ms: int) -> None:
        """Run until samples before ``end_ms`` exist (through the vehicle if installed)."""
        if self.vehicle is not None:
            self.vehicle.produce_until(end_ms)
            return
        self.rest_until(_ahead(end_ms, self.grid_ms))

    def rest_until(self, end_ms: int) -> None:
        """Rest on the shelf (no current) until exactly ``end_ms``."""
        while self.t_ms < end_ms:
            self.advance(0.0, ambient_c(self.t_ms / 1000), NOT_CHARGING, False)
        self.flush()


class Vehicle:
    """A bus and its installed pack, stepped together on one clock."""

    def __init__(self, *, bus: Bus, pack: PackUnit) -> None:
        self.bus = bus
        self.pack = pack
        pack.vehicle = self
        self.t_ms = pack.t_ms
        self.grid_ms = pack.grid_ms
        self.stream = _Stream()
        self._charge_state = NOT_CHARGING

    def produce_until(self, end_ms: int) -> None:
        """Step bus and pack until samples before ``end_ms`` exist."""
        self.run_until(_ahead(end_ms, self.grid_ms))

    def run_until(self, end_ms: int) -> None:
        """Step bus and pack until exactly ``end_ms``."""
        pack_unit, pack, bus = self.pack, self.pack.pack, self.bus
        while self.t_ms < end_ms:
            t_s = self.t_ms / 1000
            ambient = ambient_c(t_s)
            step = bus.step(t_s=t_s, dt_s=DT_MS / 1000, soc_est=pack_unit.bms.soc_est,
                            ambient_c=ambient)  # fmt: skip
            full = False
            if step.sample.charge_state != self._charge_state:
                self._charge_state = step.sample.charge_state
                self.stream.events.append((self.t_ms, "charge", {"mode": self._charge_state}))
            if step.charger is not None:
                current, full = charge_current(pack, step.charger)
                if full:
                    bus.charge_complete()
            else:
                current = pack.current_for_power(step.power_w)
            pack_unit.advance(current, ambient, step.sample.charge_state, full)
            self.stream.samples.append((self.t_ms, step.sample))
            self.t_ms += DT_MS
        pack_unit.flush()

    def swap_pack(self, new: PackUnit) -> PackUnit:
        """Install ``new`` (taken off its shelf) now; the old pack goes to the shelf."""
        if new.vehicle is not None:
            raise ValueError(f"pack {new.device_id} is installed in {new.host}")
        if (new.grid_ms - self.grid_ms) % DT_MS:
            raise ValueError(f"pack {new.device_id} samples off the bus's {DT_MS} ms grid")
        target = max(self.t_ms, new.t_ms)
        self.run_until(target)
        new.rest_until(target)
        old = self.pack
        old.vehicle = None
        new.vehicle = self
        self.pack = new
        self.stream.events.append(
            (self.t_ms, "pack_swap", {"out": old.device_id, "in": new.device_id})
        )
        old.stream.events.append((self.t_ms, "host", {"host": ""}))
        new.stream.events.append((self.t_ms, "host", {"host": self.bus.bus_id}))
        return old


class BusSource:
    """The vehicle controller's view of a :class:`Vehicle`."""

    kind: Kind = "bus"

    def __init__(self, vehicle: Vehicle) -> None:
        self._vehicle = vehicle

    @property
    def device_id(self) -> str:
        """The bus id."""
        return self._vehicle.bus.bus_id

    def _take(self, t_ms: int, n: int) -> tuple[int, list[Sample], list[Event]]:
        v = self._vehicle
        return v.stream.take(t_ms, n, v.produce_until, v.grid_ms)

    def next_samples(self, t_ms: int, n: int) -> list[Sample]:
        """n samples from the first grid time at or after ``t_ms``."""
        return self._take(t_ms, n)[1]

    def next_batch(self, t_ms: int, n: int) -> TelemetryBatch:
        """Samples with events and the installed pack id."""
        packs = (self._vehicle.pack.device_id,)
        start, samples, events = self._take(t_ms, n)
        return TelemetryBatch(
            kind="bus", t_ms=start, dt_ms=DT_MS, samples=tuple(samples), events=tuple(events),
            packs=packs,
        )  # fmt: skip


class PackSource:
    """The BMS's view of a :class:`PackUnit`, wherever it is installed."""

    kind: Kind = "pack"

    def __init__(self, unit: PackUnit) -> None:
        self._unit = unit

    @property
    def device_id(self) -> str:
        """The pack id."""
        return self._unit.device_id

    def _take(self, t_ms: int, n: int) -> tuple[int, list[Sample], list[Event]]:
        u = self._unit
        return u.stream.take(t_ms, n, u.produce_until, u.grid_ms)

    def next_samples(self, t_ms: int, n: int) -> list[Sample]:
        """n samples from the first grid time at or after ``t_ms``."""
        return self._take(t_ms, n)[1]

    def next_batch(self, t_ms: int, n: int) -> TelemetryBatch:
        """Samples with events and the host bus id (as of the batch's end)."""
        start, samples, events = self._take(t_ms, n)
        return TelemetryBatch(
            kind="pack", t_ms=start, dt_ms=DT_MS, samples=tuple(samples), events=tuple(events),
            host=self._unit.host,
        )  # fmt: skip


def build_vehicle(
    *,
    bus_id: str,
    pack_id: str,
    seed: int,
    start_ms: int,
    plan: OperatingPlan | None = None,
    pack_config: PackConfig | None = None,
    route: Route = SHENNAN_LINE,
) -> tuple[Vehicle, BusSource, PackSource]:
    """A bus with a fresh pack and the two sources the simulator hands to their agents."""
    unit = PackUnit(device_id=pack_id, seed=seed, start_ms=start_ms, config=pack_config)
    rng = random.Random(f"{seed}:bus")  # noqa: S311  (seeded simulation)
    bus = Bus(bus_id=bus_id, route=route, rng=rng, plan=plan)
    vehicle = Vehicle(bus=bus, pack=unit)
    return vehicle, BusSource(vehicle), PackSource(unit)
