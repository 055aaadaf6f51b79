"""Ageing you can see: five wall-minutes of the demo's accelerated ageing in the telemetry."""

from __future__ import annotations

import itertools

import pytest

from firmware_sim.physics import PackUnit, build_vehicle
from firmware_sim.physics.ageing import calendar_rate, cycle_rate
from firmware_sim.physics.pack import PackConfig
from firmware_sim.physics.source import PackSource
from firmware_sim.sim.fleet import Fleet
from firmware_sim.sim.runner import _sources
from ledger.telemetry import FIELDS, PackSample

T0 = 1_767_225_600_000
DEMO_ACCEL = 100_000.0  # voltproof.demo.DEFAULT_AGEING_ACCEL
FIVE_MINUTES = 300  # samples at 1 Hz
SOH_STEP = 1 / next(s for s in FIELDS["pack"] if s.attr == "soh_capacity").per_unit


def on_the_wire(soh: float) -> int:
    """The capacity SoH as the telemetry carries it (integer steps of 0.01 %)."""
    return round(soh / SOH_STEP)


def five_minutes(source: PackSource) -> list[PackSample]:
    """Five minutes of 1 Hz BMS samples, read ten at a time as an agent batches them."""
    return [
        sample
        for k in range(FIVE_MINUTES // 10)
        for sample in source.next_samples(T0 + k * 10_000, 10)
        if isinstance(sample, PackSample)
    ]


def test_the_fleet_ages_its_packs_at_its_own_rate() -> None:
    """The simulator hands the fleet's ageing_accel to every pack (it used to drop it)."""
    fleet = Fleet(buses=2, spare_packs=1, ageing_accel=DEMO_ACCEL)
    _, vehicles, spares = _sources(fleet, T0)
    units = [vehicle.pack for vehicle in vehicles] + spares
    assert len(units) == 3
    assert all(unit.pack.ageing.accel == DEMO_ACCEL for unit in units)


def test_decline_is_visible_within_five_minutes_and_differs_with_duty() -> None:
    """At the demo's 100,000x a bus pack and a spare both lose SoH steps; the bus pack more."""
    config = PackConfig(ageing_accel=DEMO_ACCEL)
    _, _, in_bus = build_vehicle(bus_id="b", pack_id="p", seed=3, start_ms=T0,
                                 pack_config=config)  # fmt: skip
    spare = PackSource(PackUnit(device_id="s", seed=5, start_ms=T0, config=config))
    declines = {}
    for name, source in (("bus", in_bus), ("spare", spare)):
        soh = [on_the_wire(s.soh_capacity) for s in five_minutes(source)]
        assert len(soh) == FIVE_MINUTES
        assert all(b <= a for a, b in itertools.pairwise(soh)), name
        declines[name] = soh[0] - soh[-1]
    # a year of calendar fade (~1.5 %) at least; cycling adds about as much again
    assert declines["spare"] > 100
    assert declines["bus"] > declines["spare"] + 100


def test_an_accelerated_year_follows_the_published_law() -> None:
    """Five minutes at 100,000x (347 days) stay within a few per cent of the closed form."""
    config = PackConfig(ageing_accel=DEMO_ACCEL)
    vehicle, _, source = build_vehicle(bus_id="b", pack_id="p", seed=3, start_ms=T0,
                                       pack_config=config)  # fmt: skip
    samples = five_minutes(source)
    ageing = vehicle.pack.pack.ageing
    assert ageing.days == pytest.approx(FIVE_MINUTES * DEMO_ACCEL / 86_400, rel=0.01)
    temp = sum((s.temp_max_c + s.temp_min_c) / 2 for s in samples) / len(samples)
    soc = sum(s.soc for s in samples) / len(samples)
    assert ageing.cal_loss == pytest.approx(calendar_rate(temp, soc) * ageing.days**0.526,
                                            rel=0.03)  # fmt: skip
    # the law's cycle rate, averaged as the model does: per 10 s window (the ageing window at
    # 100,000x), weighted by each window's throughput
    capacity = config.capacity_ah
    weighted = throughput = 0.0
    for start in range(0, len(samples), 10):
        window = [abs(s.current_a) / capacity for s in samples[start : start + 10]]
        moving = [c for c in window if c > 0.02]
        efc = sum(window) / 3600 / 2
        if moving:
            weighted += cycle_rate(temp, dod_of(samples), sum(moving) / len(moving)) * efc
            throughput += efc
    expected = weighted / throughput * ageing.efc**0.828
    assert ageing.cyc_loss == pytest.approx(expected, rel=0.03)


def dod_of(samples: list[PackSample]) -> float:
    """The SoC range the model sees as depth of discharge (at least 5 %)."""
    socs = [s.soc for s in samples]
    return max(max(socs) - min(socs), 0.05)
