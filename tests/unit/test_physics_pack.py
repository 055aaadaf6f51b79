"""Pack physics: energy bookkeeping, limits, spread, faults and determinism."""

from __future__ import annotations

import itertools
import math

import pytest

from firmware_sim.physics.faults import CoolingFailure, InternalShort
from firmware_sim.physics.pack import Pack, PackConfig, PackState


def drive(pack: Pack, currents: list[float], ambient_c: float = 25.0) -> list[PackState]:
    """Advance ``pack`` one second per current, flushing every 10 steps."""
    states: list[PackState] = []
    for k, current in enumerate(currents):
        pack.advance(current, 1.0, ambient_c)
        if k % 10 == 9:
            states.extend(pack.flush())
    states.extend(pack.flush())
    return states


def city_profile(seconds: int) -> list[float]:
    """A stop-and-go current profile with regeneration (A)."""
    return [250 * math.sin(k / 9) + 60 for k in range(seconds)]


def test_energy_counters_integrate_v_times_i() -> None:
    """e_out - e_in equals the integral of V*I over the run (within 0.1 %)."""
    pack = Pack(config=PackConfig(), seed=1)
    states = drive(pack, city_profile(3600))
    integral = sum(s.voltage_v * s.current_a for s in states) / 3600
    counted = states[-1].energy_out_wh - states[-1].energy_in_wh
    assert counted == pytest.approx(integral, rel=1e-3)
    assert states[-1].ah_out - states[-1].ah_in == pytest.approx(
        sum(s.current_a for s in states) / 3600, rel=1e-6
    )


def test_soc_stays_in_range_under_abuse() -> None:
    """Discharging past empty or charging past full leaves SoC in [0, 1]."""
    pack = Pack(config=PackConfig(initial_soc=0.05), seed=2)
    states = drive(pack, [600.0] * 600 + [-600.0] * 4000)
    assert all(0.0 <= s.soc <= 1.0 for s in states)
    assert min(s.soc for s in states) == 0.0
    assert max(s.soc for s in states) == 1.0


def test_cell_voltages_within_limits_in_normal_use() -> None:
    """Driving between 20 % and 90 % keeps every cell inside 2.5-3.65 V."""
    pack = Pack(config=PackConfig(initial_soc=0.9), seed=3)
    states = drive(pack, city_profile(3 * 3600))
    assert states[-1].soc > 0.2
    assert all(2.5 < s.cell_v_min <= s.cell_v_max < 3.65 for s in states)


def test_spread_gives_distinct_extremes() -> None:
    """Max and min cells and probes differ and their positions are in range."""
    pack = Pack(config=PackConfig(), seed=4)
    state = pack.step(200.0, 1.0, 25.0)
    assert state.cell_v_max > state.cell_v_min
    assert state.cell_v_max_pos != state.cell_v_min_pos
    assert 1 <= state.cell_v_min_pos <= 192
    assert 1 <= state.temp_max_pos <= 32
    assert state.temp_max_c > state.temp_min_c


def test_cell_voltages_optional() -> None:
    """with_cells returns one voltage per series element whose extremes match."""
    pack = Pack(config=PackConfig(), seed=5)
    pack.advance(100.0, 1.0, 25.0)
    (state,) = pack.flush(with_cells=True)
    assert state.cell_voltages is not None
    assert len(state.cell_voltages) == 192
    assert max(state.cell_voltages) == state.cell_v_max
    assert state.cell_voltages.index(state.cell_v_min) + 1 == state.cell_v_min_pos


def test_current_for_power_delivers_the_power() -> None:
    """The solved current gives the asked power at the terminals, both directions."""
    for power in (150e3, -120e3):
        pack = Pack(config=PackConfig(initial_soc=0.5), seed=6)
        current = pack.current_for_power(power)
        state = pack.step(current, 1.0, 25.0)
        assert state.voltage_v * state.current_a == pytest.approx(power, rel=0.01)


def test_heat_warms_and_cooling_failure_overheats() -> None:
    """Hard use warms the pack; without its chiller it ends up hotter."""
    results = []
    for fault in (None, CoolingFailure()):
        pack = Pack(config=PackConfig(initial_soc=0.95, initial_temp_c=33.0), seed=7)
        pack.inject(fault)
        results.append(drive(pack, [500.0] * 3000, ambient_c=35.0)[-1].temp_c)
    assert results[1] > results[0] > 33.0


def test_internal_short_heats_one_probe() -> None:
    """An internal short drains its element and drives one probe past 80 degC."""
    pack = Pack(config=PackConfig(), seed=8)
    pack.inject(InternalShort(element=100))
    states = drive(pack, [0.0] * 1800)
    last = states[-1]
    assert last.temp_max_c > 80.0
    assert last.temp_max_pos == (99 * 32) // 192 + 1
    assert last.cell_v_min_pos == 100
    pack.inject(None)
    assert pack.step(0.0, 1.0, 25.0).temp_max_c < last.temp_max_c


def test_soh_never_increases_with_accelerated_ageing() -> None:
    """Capacity SoH falls and resistance grows monotonically under accelerated ageing."""
    pack = Pack(config=PackConfig(ageing_accel=2000.0, initial_soc=0.6), seed=9)
    states = drive(pack, city_profile(2 * 3600))
    soh = [s.soh_capacity for s in states]
    assert all(b <= a for a, b in itertools.pairwise(soh))
    assert soh[-1] < 0.99
    assert states[-1].capacity_ah < 560.0
    assert states[-1].resistance_growth > 1.0


def test_deterministic_with_seed() -> None:
    """Same seed, same states; another seed, another spread."""
    runs = [drive(Pack(config=PackConfig(), seed=s), city_profile(300)) for s in (11, 11, 12)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"series": 0}, "need series >= 1"),
        ({"probes": 500}, "1 <= probes <= series"),
        ({"initial_soc": 1.5}, r"initial_soc must be in \[0, 1\]"),
    ],
)
def test_config_rejects_nonsense(changes: dict[str, float], match: str) -> None:
    """Impossible topologies and starting points are refused."""
    with pytest.raises(ValueError, match=match):
        PackConfig(**changes)  # type: ignore[arg-type]


def test_short_outside_pack_rejected() -> None:
    """An internal short needs an existing element."""
    with pytest.raises(ValueError, match=r"element 193 is outside 1\.\.192"):
        Pack(config=PackConfig(), seed=1).inject(InternalShort(element=193))


def test_flush_without_steps_is_empty() -> None:
    """Flushing twice yields nothing the second time."""
    pack = Pack(config=PackConfig(), seed=1)
    pack.step(0.0, 1.0, 25.0)
    assert pack.flush() == []
