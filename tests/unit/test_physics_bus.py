"""Bus physics: duty cycle, energy per km, route position and charging."""

from __future__ import annotations

import random

import pytest

from firmware_sim.physics.bus import OperatingPlan, VehicleParams, aux_power_w, traction_power_w
from firmware_sim.physics.charging import Charger
from firmware_sim.physics.cycle import SORT1, SORT2, Driver, mean_speed_mps
from firmware_sim.physics.route import SHENNAN_LINE, Route
from firmware_sim.physics.source import BusSource, PackSource, build_vehicle
from ledger.telemetry import BusSample, PackSample

# 2026-01-01 08:00 local (UTC+8); the service day has started.
MORNING_MS = 1_767_225_600_000
EVENING_MS = MORNING_MS + 14 * 3600 * 1000  # 22:00 local


def bus_samples(source: BusSource, t_ms: int, n: int) -> list[BusSample]:
    """Typed samples of a bus source."""
    samples = source.next_samples(t_ms, n)
    assert all(isinstance(s, BusSample) for s in samples)
    return [s for s in samples if isinstance(s, BusSample)]


def pack_samples(source: PackSource, t_ms: int, n: int) -> list[PackSample]:
    """Typed samples of a pack source."""
    samples = source.next_samples(t_ms, n)
    return [s for s in samples if isinstance(s, PackSample)]


def net_energy_per_km(cycle: str, hours: float) -> float:
    """kWh/km at the pack over ``hours`` of service (no charging) on ``cycle``."""
    plan = OperatingPlan(cycle=cycle, strategy="depot", topup_below_soc=0.0)
    vehicle, _, pack = build_vehicle(
        bus_id="bus-1", pack_id="pack-1", seed=1, start_ms=MORNING_MS, plan=plan
    )
    samples = pack_samples(pack, MORNING_MS, int(hours * 3600))
    first, last = samples[0], samples[-1]
    assert all(s.charge_state == 0 for s in samples)
    energy = (last.energy_out_wh - last.energy_in_wh) - (first.energy_out_wh - first.energy_in_wh)
    return energy / 1000 / (vehicle.bus.odometer_m / 1000)


@pytest.mark.parametrize("cycle", ["sort1", "sort2"])
def test_energy_per_km_in_published_range(cycle: str) -> None:
    """A 12 m bus on a SORT cycle uses 1.0-1.4 kWh/km at the pack."""
    assert 1.0 <= net_energy_per_km(cycle, 2.0) <= 1.4


def test_cycle_mean_speeds_near_sort() -> None:
    """Mean speeds are within 15 % of SORT 1 (12.6 km/h) and SORT 2 (18.6 km/h)."""
    assert mean_speed_mps(SORT1) * 3.6 == pytest.approx(12.6, rel=0.15)
    assert mean_speed_mps(SORT2) * 3.6 == pytest.approx(18.6, rel=0.15)


def test_driver_stops_at_section_ends() -> None:
    """The driver stops after each section's length, never exceeding its target by > 5 %."""
    driver = Driver(cycle=SORT1, rng=random.Random(1))
    travelled = 0.0
    stops = 0
    for _ in range(600):
        distance, _, at_stop = driver.step(1.0)
        travelled += distance
        assert driver.speed_mps <= 40 / 3.6 * 1.05
        stops += at_stop and distance > 0
    assert stops >= 3
    assert travelled > 500


def test_regen_returns_energy_and_aux_follows_climate() -> None:
    """Braking above walking pace is negative power; HVAC load grows away from comfort."""
    params = VehicleParams()
    assert traction_power_w(params, 10.0, -0.8) < 0
    assert traction_power_w(params, 1.0, -0.8) == 0.0
    assert traction_power_w(params, 10.0, 0.5) > 0
    assert aux_power_w(params, 35.0) > aux_power_w(params, 18.0) < aux_power_w(params, 0.0)


def test_position_stays_on_route() -> None:
    """GPS positions stay inside the route's bounding box; odometer never decreases."""
    _, bus, _ = build_vehicle(bus_id="bus-1", pack_id="pack-1", seed=2, start_ms=MORNING_MS)
    samples = bus_samples(bus, MORNING_MS, 3600)
    lats = [p[0] for p in SHENNAN_LINE.points]
    lons = [p[1] for p in SHENNAN_LINE.points]
    odometer = 0.0
    for s in samples:
        assert min(lats) - 1e-9 <= s.lat_deg <= max(lats) + 1e-9
        assert min(lons) - 1e-9 <= s.lon_deg <= max(lons) + 1e-9
        assert s.odometer_m >= odometer
        odometer = s.odometer_m
    assert odometer > 10_000


def test_pantograph_charges_at_terminals() -> None:
    """With the pantograph strategy the bus charges (chg 2) at terminal layovers."""
    plan = OperatingPlan(strategy="pantograph")
    _, bus, pack = build_vehicle(
        bus_id="bus-1", pack_id="pack-1", seed=3, start_ms=MORNING_MS, plan=plan
    )
    on_bus = bus_samples(bus, MORNING_MS, 3 * 3600)
    on_pack = pack_samples(pack, MORNING_MS, 3 * 3600)
    charging = [p for b, p in zip(on_bus, on_pack, strict=True) if b.charge_state == 2]
    assert charging
    assert min(p.current_a for p in charging) < -300


def test_overnight_depot_charge_ends_full_with_recalibration() -> None:
    """After service the bus charges to full at the depot; a drifted BMS SoC jumps to 100 %."""
    vehicle, bus, pack = build_vehicle(
        bus_id="bus-1", pack_id="pack-1", seed=4, start_ms=EVENING_MS
    )
    vehicle.pack.bms.bias_a = 25.0  # a badly offset current sensor: the estimate lags
    events: list[str] = []
    recal: list[int | str] = []
    end = EVENING_MS
    for k in range(24):
        batch = pack.next_batch(EVENING_MS + k * 600_000, 600)
        end = batch.end_ms
        events += [e.kind for e in bus.next_batch(batch.t_ms, 600).events]
        recal += [e.data["to"] for e in batch.events if e.kind == "recal"]
        if recal:
            break
    assert recal[0] == 1000
    after = bus.next_batch(end, 600)
    events += [e.kind for e in after.events]
    assert events.count("charge") >= 2  # depot charging started, then stopped
    last = after.samples[-1]
    assert isinstance(last, BusSample)
    assert (last.vehicle_state, last.charge_state) == (2, 0)
    assert max(s.cell_v_max for s in pack_samples(pack, end, 600)) < 3.65


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: Route(name="x", points=((0.0, 0.0),)), "at least two points"),
        (lambda: OperatingPlan(cycle="nedc"), "cycle 'nedc' is not one of"),
        (lambda: Charger(mode=0, max_power_w=1.0), "charger mode must be"),
        (lambda: Charger(mode=1, max_power_w=0.0), "max_power_w must be positive"),
        (lambda: Driver(cycle=(), rng=random.Random(0)), "at least one section"),
    ],
)
def test_rejects_bad_definitions(build: object, match: str) -> None:
    """Malformed routes, plans, chargers and cycles are refused."""
    assert callable(build)
    with pytest.raises(ValueError, match=match):
        build()
