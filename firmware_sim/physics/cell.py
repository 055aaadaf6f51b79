"""LFP cell parameters for a second-order (2RC) Thevenin model.

Terminal voltage of one cell: ``v = OCV(soc) - i * R0 - v1 - v2`` with
``dv_k/dt = -v_k / (R_k C_k) + i / C_k`` (current positive = discharge). The RC states are
advanced exactly for a current held over the step: ``v_k <- a v_k + R_k (1 - a) i`` with
``a = exp(-dt / tau_k)``.

Values are those of a 280 Ah prismatic LFP cell such as the EVE LF280K (datasheet: 280 Ah,
3.2 V nominal, 2.5-3.65 V, AC impedance <= 0.25 mOhm at 1 kHz, ~5.4 kg). The RC split is an
assumption of the order identified for large LFP cells (fast polarisation tau ~10-20 s, slow
diffusion tau ~ 300-600 s; e.g. the 2RC fits collected by Hu, Li & Peng, J. Power Sources 198
(2012) 359). Resistances rise at low temperature following an Arrhenius law (activation
energy ~30 kJ/mol, typical for LFP charge-transfer resistance) and at the ends of the SoC range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GAS_CONSTANT = 8.314462618
KELVIN = 273.15
T_REF_K = KELVIN + 25.0


@dataclass(frozen=True, slots=True, kw_only=True)
class CellParams:
    """One cell at 25 degC, 50 % SoC, beginning of life."""

    capacity_ah: float = 280.0
    nominal_v: float = 3.2
    max_v: float = 3.65
    min_v: float = 2.5
    r0_ohm: float = 0.22e-3
    r1_ohm: float = 0.10e-3
    tau1_s: float = 15.0
    r2_ohm: float = 0.12e-3
    tau2_s: float = 400.0
    activation_j_per_mol: float = 30_000.0
    mass_kg: float = 5.4
    specific_heat_j_per_kg_k: float = 1050.0

    def __post_init__(self) -> None:
        for name in ("capacity_ah", "r0_ohm", "r1_ohm", "tau1_s", "r2_ohm", "tau2_s", "mass_kg"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)}")


def resistance_factor(temp_c: float, soc: float, activation_j_per_mol: float) -> float:
    """Multiplier on every resistance at ``temp_c`` and ``soc`` relative to 25 degC, 50 %."""
    temp_k = max(temp_c, -30.0) + KELVIN
    arrhenius = math.exp(activation_j_per_mol / GAS_CONSTANT * (1 / temp_k - 1 / T_REF_K))
    soc_term = 1.0 + 0.6 * math.exp(-max(soc, 0.0) / 0.08) + 0.2 * math.exp(-max(1 - soc, 0) / 0.05)
    return arrhenius * soc_term
