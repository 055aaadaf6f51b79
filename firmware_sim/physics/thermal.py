"""Lumped pack thermal model with a simple liquid thermal-management system.

``C dT/dt = Q_joule - UA (T - T_amb) - Q_cool + Q_heat``: one thermal mass (the cells'
mass times an LFP specific heat of ~1.05 kJ/(kg K), plus 15 % for busbars and cold plates),
passive loss to ambient through the enclosure, a chiller that starts above ``cool_on_c``
with a proportional band and a heater below ``heat_on_c`` (typical e-bus pack TMS set points).
Explicit Euler is exact enough: the time constant C/UA is hours, the step one second.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class ThermalParams:
    """Enclosure and TMS of one pack."""

    ua_w_per_k: float = 60.0
    cool_on_c: float = 32.0
    cool_gain_w_per_k: float = 2500.0
    cool_max_w: float = 8000.0
    heat_on_c: float = 8.0
    heat_gain_w_per_k: float = 1500.0
    heat_max_w: float = 6000.0
    structure_factor: float = 1.15


def thermal_step(
    *,
    temp_c: float,
    heat_w: float,
    ambient_c: float,
    dt_s: float,
    capacity_j_per_k: float,
    params: ThermalParams,
    cooling_ok: bool = True,
) -> tuple[float, float]:
    """Advance the mean pack temperature; returns (new temperature, TMS power drawn, W)."""
    tms = 0.0
    if cooling_ok and temp_c > params.cool_on_c:
        tms = -min(params.cool_max_w, params.cool_gain_w_per_k * (temp_c - params.cool_on_c))
    elif temp_c < params.heat_on_c:
        tms = min(params.heat_max_w, params.heat_gain_w_per_k * (params.heat_on_c - temp_c))
    flow = heat_w - params.ua_w_per_k * (temp_c - ambient_c) + tms
    return temp_c + flow * dt_s / capacity_j_per_k, abs(tms)
