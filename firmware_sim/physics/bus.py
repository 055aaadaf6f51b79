"""A 12 m battery-electric city bus: longitudinal dynamics, auxiliaries and its daily plan.

Longitudinal model: ``F = k m a + m g Crr + rho/2 CdA v^2`` on a flat road, electrical power
``F v / eta`` when driving and ``F v * eta_regen`` (capped, faded out below walking pace) when
braking. Values are typical of a loaded 12 m bus: 18 t, Crr 0.0065 (city-bus tyres), CdA
0.65 x 8.3 m^2, rotating-mass factor 1.05, motor + inverter + gear 0.88, regenerative chain
0.75, regen at most 150 kW. Auxiliaries: 4 kW base (air compressor, steering pump, 24 V)
plus HVAC proportional to the distance of ambient from comfort (cooling above 22 degC, heating
below 14 degC), capped at 20 kW. On a SORT 2 cycle at 25 degC this gives about 1.1-1.3 kWh/km
at the pack, the range measured on Chinese 12 m e-buses.

The plan: in service 05:30-22:30 local time, shuttling the route; a layover of 4-10 min at
each terminal (under a pantograph with the ``pantograph`` strategy); with the ``depot``
strategy a midday top-up at the terminal depot when the BMS SoC falls below 30 %; overnight
charging to full at the depot, then parked (plugged in again if the SoC falls below 95 %).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

from ledger.telemetry import BusSample

from .charging import DEPOT_CHARGER, NOT_CHARGING, PANTOGRAPH_CHARGER, Charger
from .climate import local_seconds_of_day
from .cycle import CYCLES, Driver
from .route import Route

GRAVITY = 9.81
Strategy = Literal["depot", "pantograph"]
Mode = Literal["service", "layover", "charging", "parked"]
STARTED, SHUT_DOWN = 1, 2
PARKED_RECHARGE_BELOW = 0.95


@dataclass(frozen=True, slots=True, kw_only=True)
class VehicleParams:
    """Mechanical and auxiliary parameters of one bus."""

    mass_kg: float = 18_000.0
    crr: float = 0.0065
    drag_area_m2: float = 0.65 * 8.3
    air_density: float = 1.2
    rotating_mass_factor: float = 1.05
    drive_efficiency: float = 0.88
    regen_efficiency: float = 0.75
    regen_max_w: float = 150e3
    regen_min_mps: float = 1.5
    aux_base_w: float = 4000.0
    hvac_cool_w_per_k: float = 900.0
    hvac_heat_w_per_k: float = 1000.0
    hvac_max_w: float = 20_000.0


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatingPlan:
    """How and when a bus runs and charges."""

    strategy: Strategy = "depot"
    cycle: str = "sort2"
    service_start_s: float = 5.5 * 3600
    service_end_s: float = 22.5 * 3600
    layover_s: tuple[float, float] = (240.0, 600.0)
    topup_below_soc: float = 0.30
    topup_to_soc: float = 0.90
    depot_charger: Charger = field(default_factory=lambda: DEPOT_CHARGER)
    pantograph_charger: Charger = field(default_factory=lambda: PANTOGRAPH_CHARGER)

    def __post_init__(self) -> None:
        if self.cycle not in CYCLES:
            raise ValueError(f"cycle {self.cycle!r} is not one of {sorted(CYCLES)}")


def traction_power_w(params: VehicleParams, speed_mps: float, accel_mps2: float) -> float:
    """Electrical traction power at the pack (negative while regenerating)."""
    m = params.mass_kg
    force = (
        params.rotating_mass_factor * m * accel_mps2
        + (m * GRAVITY * params.crr if speed_mps > 0 else 0.0)
        + 0.5 * params.air_density * params.drag_area_m2 * speed_mps * speed_mps
    )
    wheel = force * speed_mps
    if wheel >= 0:
        return wheel / params.drive_efficiency
    if speed_mps < params.regen_min_mps:
        return 0.0
    return max(wheel * params.regen_efficiency, -params.regen_max_w)


def aux_power_w(params: VehicleParams, ambient_c: float) -> float:
    """Auxiliary and HVAC load of a bus in service."""
    hvac = max(0.0, ambient_c - 22.0) * params.hvac_cool_w_per_k
    hvac += max(0.0, 14.0 - ambient_c) * params.hvac_heat_w_per_k
    return params.aux_base_w + min(hvac, params.hvac_max_w)


@dataclass(frozen=True, slots=True, kw_only=True)
class BusStep:
    """What the bus asks of its pack for one step, and its sample."""

    sample: BusSample
    power_w: float
    charger: Charger | None


class Bus:
    """Mutable simulation state of one bus."""

    def __init__(
        self,
        *,
        bus_id: str,
        route: Route,
        rng: random.Random,
        plan: OperatingPlan | None = None,
        params: VehicleParams | None = None,
        odometer_m: float = 0.0,
    ) -> None:
        self.bus_id = bus_id
        self.route = route
        self.plan = plan or OperatingPlan()
        self.params = params or VehicleParams()
        self._rng = rng
        self.driver = Driver(cycle=CYCLES[self.plan.cycle], rng=rng)
        self.along_m = rng.uniform(0.0, route.length_m)
        self.outbound = rng.random() < 0.5
        self.odometer_m = odometer_m
        self.mode: Mode = "parked"
        self._layover_left = 0.0
        self.charger: Charger | None = None

    def charge_complete(self) -> None:
        """The pack reports a full charge: leave the charger."""
        self.charger = None
        self.mode = "parked" if self.mode == "charging" else self.mode

    def _in_service(self, t_s: float) -> bool:
        local = local_seconds_of_day(t_s)
        return self.plan.service_start_s <= local < self.plan.service_end_s

    def _arrive_at_terminal(self, in_service: bool, soc_est: float) -> None:
        self.along_m = 0.0
        self.outbound = not self.outbound
        plan = self.plan
        if not in_service or (plan.strategy == "depot" and soc_est < plan.topup_below_soc):
            self.mode, self.charger = "charging", plan.depot_charger
        else:
            self.mode = "layover"
            self._layover_left = self._rng.uniform(*plan.layover_s)
            self.charger = plan.pantograph_charger if plan.strategy == "pantograph" else None

    def step(self, *, t_s: float, dt_s: float, soc_est: float, ambient_c: float) -> BusStep:
        """Advance one step at Unix time ``t_s``; ``soc_est`` is the BMS's SoC."""
        in_service = self._in_service(t_s)
        if self.mode == "parked" and in_service:
            self.mode = "service"
            self.driver.depart()
        elif self.mode == "parked" and soc_est < PARKED_RECHARGE_BELOW:
            self.mode, self.charger = "charging", self.plan.depot_charger
        elif self.mode == "charging" and in_service and soc_est >= self.plan.topup_to_soc:
            self.mode, self.charger = "service", None
        elif self.mode == "layover":
            self._layover_left -= dt_s
            if self._layover_left <= 0:
                self.mode, self.charger = "service", None
        speed = accel = 0.0
        at_stop = self.mode != "service"
        if self.mode == "service":
            before = self.driver.speed_mps
            distance, accel, at_stop = self.driver.step(dt_s)
            speed = self.driver.speed_mps
            self.along_m += distance
            self.odometer_m += distance
            traction = traction_power_w(self.params, (before + speed) / 2, accel)
            if self.along_m >= self.route.length_m:
                self._arrive_at_terminal(in_service, soc_est)
        else:
            traction = 0.0
        on = self.mode in {"service", "layover"}
        aux = aux_power_w(self.params, ambient_c) if on else 800.0
        along = self.along_m if self.outbound else self.route.length_m - self.along_m
        lat, lon = self.route.position(along)
        sample = BusSample(
            speed_mps=speed, odometer_m=self.odometer_m, lat_deg=lat, lon_deg=lon,
            vehicle_state=STARTED if on else SHUT_DOWN,
            charge_state=self.charger.mode if self.charger else NOT_CHARGING,
            traction_power_w=traction, aux_power_w=aux, ambient_c=ambient_c,
            at_stop=int(at_stop),
        )  # fmt: skip
        return BusStep(sample=sample, power_w=traction + aux, charger=self.charger)
