"""GB/T 32960 alarm levels and flags fire exactly at the documented thresholds."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from firmware_sim.physics.alarms import (
    CELL_OV,
    CELL_UV,
    CONSISTENCY,
    HIGH_TEMP,
    INSULATION,
    PACK_OV,
    PACK_UV,
    SOC_JUMP,
    SOC_LOW,
    TEMP_DIFF,
    THERMAL_EVENT,
    AlarmInputs,
    AlarmThresholds,
    evaluate,
)
from ledger.telemetry import ALARM_BITS

NORMAL = AlarmInputs(
    cell_v_max=3.30, cell_v_min=3.28, temp_max_c=30.0, temp_min_c=27.0, soc=0.6,
    insulation_ohm=20e6, pack_v=630.0, series=192,
)  # fmt: skip
LIMITS = AlarmThresholds()


def test_normal_operation_raises_nothing() -> None:
    """A healthy reading has level 0 and no flags."""
    assert evaluate(NORMAL, LIMITS) == (0, 0)


@pytest.mark.parametrize(
    ("changes", "bit", "level"),
    [
        ({"cell_v_max": 3.65, "cell_v_min": 3.6}, CELL_OV, 1),
        ({"cell_v_max": 3.75, "cell_v_min": 3.6}, CELL_OV, 2),
        ({"cell_v_max": 3.85, "cell_v_min": 3.6}, CELL_OV, 3),
        ({"cell_v_min": 2.80, "cell_v_max": 2.9}, CELL_UV, 1),
        ({"cell_v_min": 2.50, "cell_v_max": 2.6}, CELL_UV, 2),
        ({"cell_v_min": 2.20, "cell_v_max": 2.3}, CELL_UV, 3),
        ({"temp_max_c": 50.0, "temp_min_c": 45.0}, HIGH_TEMP, 1),
        ({"temp_max_c": 55.0, "temp_min_c": 50.0}, HIGH_TEMP, 2),
        ({"temp_max_c": 60.0, "temp_min_c": 55.0}, HIGH_TEMP, 3),
        ({"temp_max_c": 35.0, "temp_min_c": 27.0}, TEMP_DIFF, 1),
        ({"temp_max_c": 39.0, "temp_min_c": 27.0}, TEMP_DIFF, 2),
        ({"temp_max_c": 42.0, "temp_min_c": 27.0}, TEMP_DIFF, 3),
        ({"soc": 0.15}, SOC_LOW, 1),
        ({"soc": 0.05}, SOC_LOW, 2),
        ({"insulation_ohm": 500.0 * 630}, INSULATION, 1),
        ({"insulation_ohm": 250.0 * 630}, INSULATION, 2),
        ({"insulation_ohm": 100.0 * 630}, INSULATION, 3),
        ({"cell_v_max": 3.45, "cell_v_min": 3.125}, CONSISTENCY, 1),
        ({"soc_jump": 0.05}, SOC_JUMP, 1),
        ({"pack_v": 3.65 * 192}, PACK_OV, 1),
        ({"pack_v": 2.80 * 192}, PACK_UV, 1),
    ],
)
def test_threshold_reached(changes: dict[str, Any], bit: int, level: int) -> None:
    """At its threshold a condition sets its bit and raises the documented level."""
    got_level, flags = evaluate(replace(NORMAL, **changes), LIMITS)
    assert got_level == level
    assert flags & (1 << bit)
    assert bit in ALARM_BITS


@pytest.mark.parametrize(
    "changes",
    [
        {"cell_v_max": 3.649, "cell_v_min": 3.45},
        {"cell_v_min": 2.801, "cell_v_max": 3.0},
        {"cell_v_max": 3.40, "cell_v_min": 3.11},
        {"temp_max_c": 49.9, "temp_min_c": 45.0},
        {"temp_max_c": 34.9, "temp_min_c": 27.0},
        {"soc": 0.151},
        {"insulation_ohm": 501.0 * 630},
        {"soc_jump": 0.049},
    ],
)
def test_just_inside_threshold(changes: dict[str, Any]) -> None:
    """Just short of every level-1 threshold nothing fires."""
    assert evaluate(replace(NORMAL, **changes), LIMITS) == (0, 0)


def test_thermal_event_is_level_four() -> None:
    """A probe at 80 degC is a level-4 thermal event with bit 23 (GB/T 32960.3-2025 table 24)."""
    level, flags = evaluate(replace(NORMAL, temp_max_c=80.0), LIMITS)
    assert level == 4
    assert flags & (1 << THERMAL_EVENT)
    assert THERMAL_EVENT == 23
    assert not flags & (1 << 19)  # 2025: drive motor over-speed


def test_level_is_the_worst_condition() -> None:
    """Several conditions: all bits set, the level is the highest."""
    level, flags = evaluate(replace(NORMAL, soc=0.1, cell_v_min=2.5, cell_v_max=2.7), LIMITS)
    assert level == 2
    assert flags == (1 << SOC_LOW) | (1 << CELL_UV)
