"""Chargers and the CC-CV charge current a BMS accepts from them.

Depot chargers for 12 m e-buses deliver 60-150 kW through a plug overnight or at midday;
pantographs (SAE J3105 / OppCharge) 150-450 kW for a few minutes at terminals. The BMS asks
for the smallest of: the charger's power at the present voltage, a C-rate limit, and the
current that holds the fullest cell at ``CV_CELL_V`` (the constant-voltage phase). A charge is
complete when the CV-limited current falls below C/20 near the top: the BMS then resets its
SoC to 100 % (a ``recal`` event with ``why = "full"``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .pack import Pack

NOT_CHARGING, DEPOT, PANTOGRAPH = 0, 1, 2
CV_CELL_V = 3.60
TERMINATION_C = 0.05


@dataclass(frozen=True, slots=True, kw_only=True)
class Charger:
    """A charging point: ``mode`` is DEPOT or PANTOGRAPH (the telemetry ``chg`` code)."""

    mode: int
    max_power_w: float
    max_c_rate: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in {DEPOT, PANTOGRAPH}:
            raise ValueError(f"charger mode must be {DEPOT} or {PANTOGRAPH}, not {self.mode}")
        if self.max_power_w <= 0:
            raise ValueError(f"max_power_w must be positive, not {self.max_power_w}")


DEPOT_CHARGER = Charger(mode=DEPOT, max_power_w=120e3, max_c_rate=0.5)
PANTOGRAPH_CHARGER = Charger(mode=PANTOGRAPH, max_power_w=300e3, max_c_rate=1.0)


def charge_current(pack: Pack, charger: Charger) -> tuple[float, bool]:
    """(pack current, negative = charging; True when the charge is complete)."""
    capacity = pack.config.capacity_ah
    by_power = charger.max_power_w / max(pack.open_circuit_v(), 1.0)
    by_voltage = pack.charge_current_limit(CV_CELL_V)
    amps = min(by_power, charger.max_c_rate * capacity, by_voltage)
    complete = by_voltage < TERMINATION_C * capacity and pack.soc > 0.9
    return (0.0 if complete else -amps), complete
