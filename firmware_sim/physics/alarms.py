"""GB/T 32960 alarm levels and general-alarm flag bits from BMS thresholds.

Levels: 1 no effect on driving, 2 limit driving, 3 stop, 4 thermal event (2025 edition).
Bits are those of ``ledger.telemetry.ALARM_BITS``. The thresholds below are this simulator's
choice for an LFP pack (cell limits 2.5-3.65 V from the cell datasheet, insulation limits from
GB/T 18384 / ISO 6469-3's 100 Ohm/V minimum for DC circuits); docs/simulation.md lists them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.telemetry import THERMAL_EVENT_BIT

TEMP_DIFF, HIGH_TEMP, PACK_OV, PACK_UV, SOC_LOW = 0, 1, 2, 3, 4
CELL_OV, CELL_UV, SOC_JUMP, CONSISTENCY, INSULATION = 5, 6, 8, 10, 11
THERMAL_EVENT = THERMAL_EVENT_BIT  # GB/T 32960.3-2025 table 24 bit 23


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmThresholds:
    """(level 1, level 2, level 3) thresholds; a reading past a threshold raises that level."""

    cell_over_v: tuple[float, float, float] = (3.65, 3.75, 3.85)
    cell_under_v: tuple[float, float, float] = (2.80, 2.50, 2.20)
    temp_high_c: tuple[float, float, float] = (50.0, 55.0, 60.0)
    temp_diff_c: tuple[float, float, float] = (8.0, 12.0, 15.0)
    soc_low: tuple[float, float] = (0.15, 0.05)
    insulation_ohm_per_v: tuple[float, float, float] = (500.0, 250.0, 100.0)
    consistency_v: float = 0.30
    soc_jump: float = 0.05
    thermal_event_c: float = 80.0


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmInputs:
    """What the BMS knows at one sample."""

    cell_v_max: float
    cell_v_min: float
    temp_max_c: float
    temp_min_c: float
    soc: float
    insulation_ohm: float
    pack_v: float
    series: int
    soc_jump: float = 0.0


def _above(value: float, limits: tuple[float, ...]) -> int:
    return sum(1 for limit in limits if value >= limit)


def _below(value: float, limits: tuple[float, ...]) -> int:
    return sum(1 for limit in limits if value <= limit)


def evaluate(inputs: AlarmInputs, limits: AlarmThresholds) -> tuple[int, int]:
    """(highest alarm level 0..4, flag bits) for one sample."""
    ohm_per_v = inputs.insulation_ohm / max(inputs.pack_v, 1.0)
    levels: dict[int, int] = {
        CELL_OV: _above(inputs.cell_v_max, limits.cell_over_v),
        CELL_UV: _below(inputs.cell_v_min, limits.cell_under_v),
        HIGH_TEMP: _above(inputs.temp_max_c, limits.temp_high_c),
        TEMP_DIFF: _above(inputs.temp_max_c - inputs.temp_min_c, limits.temp_diff_c),
        SOC_LOW: _below(inputs.soc, limits.soc_low),
        INSULATION: _below(ohm_per_v, limits.insulation_ohm_per_v),
        CONSISTENCY: int(inputs.cell_v_max - inputs.cell_v_min >= limits.consistency_v),
        SOC_JUMP: int(inputs.soc_jump >= limits.soc_jump),
        PACK_OV: int(inputs.pack_v >= limits.cell_over_v[0] * inputs.series),
        PACK_UV: int(inputs.pack_v <= limits.cell_under_v[0] * inputs.series),
        THERMAL_EVENT: 4 * int(inputs.temp_max_c >= limits.thermal_event_c),
    }
    flags = 0
    level = 0
    for bit, bit_level in levels.items():
        if bit_level:
            flags |= 1 << bit
            level = max(level, bit_level)
    return level, flags
