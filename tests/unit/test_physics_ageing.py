"""Capacity fade follows the published BLAST-Lite large-format LFP law."""

from __future__ import annotations

import pytest

from firmware_sim.physics.ageing import (
    Ageing,
    anode_potential,
    calendar_rate,
    closed_form_fade,
    cycle_rate,
)


def daily_profile() -> list[tuple[float, float]]:
    """(current in C, seconds) of one day: C/4 discharge, rest, C/4 charge, rest."""
    return [(0.25, 4 * 3600), (0.0, 4 * 3600), (-0.25, 4 * 3600), (0.0, 12 * 3600)]


def run_year(ageing: Ageing, *, dt_s: float = 60.0) -> list[float]:
    """Drive one year of the daily profile at 25 degC; returns the SoC of every step."""
    capacity = 280.0
    soc = 1.0
    socs = []
    for _ in range(365):
        for c_rate, seconds in daily_profile():
            for _ in range(int(seconds / dt_s)):
                soc = min(1.0, max(0.0, soc - c_rate * dt_s / 3600))
                socs.append(soc)
                ageing.accumulate(
                    dt_s=dt_s, temp_c=25.0, soc=soc, current_a=c_rate * capacity,
                    capacity_ah=capacity,
                )  # fmt: skip
    ageing.apply()
    return socs


def test_first_year_matches_closed_form() -> None:
    """One EFC a day for a year at 25 degC is within 3 % of the closed form (BLAST averaging)."""
    ageing = Ageing()
    socs = run_year(ageing)
    mean_kcal = sum(calendar_rate(25.0, s) for s in socs) / len(socs)
    expected = mean_kcal * 365**0.526 + cycle_rate(25.0, 1.0, 0.25) * 365**0.828
    assert ageing.efc == pytest.approx(365, rel=0.01)
    assert 1 - ageing.capacity_fraction == pytest.approx(expected, rel=0.03)
    assert 0.02 < expected < 0.05  # a few per cent in year one, as reported for LFP buses


def test_acceleration_scales_time_and_throughput() -> None:
    """accel=365 puts a year of fade into one simulated day, matching the closed form."""
    ageing = Ageing(accel=365.0)
    for _ in range(24 * 60):
        ageing.accumulate(dt_s=60.0, temp_c=25.0, soc=0.5, current_a=0.0, capacity_ah=280.0)
    ageing.apply()
    expected = closed_form_fade(days=365, efc=0, temp_c=25.0, soc=0.5, dod=0.05, c_rate=0.0)
    assert ageing.days == pytest.approx(365)
    assert 1 - ageing.capacity_fraction == pytest.approx(expected, rel=1e-9)


def test_hotter_and_fuller_age_faster() -> None:
    """Calendar fade grows with temperature and with SoC (lower anode potential)."""
    assert calendar_rate(45.0, 0.5) > calendar_rate(25.0, 0.5)
    assert calendar_rate(25.0, 0.95) > calendar_rate(25.0, 0.2)
    assert anode_potential(1.0) < anode_potential(0.0)


def test_fade_never_reverses() -> None:
    """Capacity only falls and resistance only grows, window after window."""
    ageing = Ageing(accel=100.0, window_s=60.0)
    previous = (ageing.capacity_fraction, ageing.resistance_growth)
    for k in range(2000):
        ageing.accumulate(
            dt_s=10.0, temp_c=20 + (k % 30), soc=(k % 100) / 100, current_a=100.0 * (k % 3 - 1),
            capacity_ah=280.0,
        )  # fmt: skip
        current = (ageing.capacity_fraction, ageing.resistance_growth)
        assert current[0] <= previous[0]
        assert current[1] >= previous[1]
        previous = current
    assert previous[0] < 1.0


def test_rejects_non_positive_acceleration() -> None:
    """accel must be positive."""
    with pytest.raises(ValueError, match="accel must be positive"):
        Ageing(accel=0.0)
