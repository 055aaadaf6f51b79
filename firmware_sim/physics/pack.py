"""A battery pack of series elements (each ``parallel`` LFP cells), stepped in time.

The pack is simulated as its mean element -- a 2RC Thevenin cell scaled to the pack -- plus
fixed per-element deviations drawn once from a seeded generator: capacity, resistance and
initial balance (top-balanced: weaker elements reach the bottom first), and per-probe
temperature offsets. Because every series element carries the same current, each element's
state follows in closed form from the mean element's, so the per-element voltages and probe
temperatures of many steps are evaluated together with numpy in :meth:`Pack.flush`. That is
what keeps a 192S pack near tens of microseconds per simulated second.

Current is positive when the pack discharges. Use :meth:`Pack.step` for one step, or
:meth:`Pack.advance` (repeatedly) then :meth:`Pack.flush` for a batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .ageing import Ageing
from .cell import CellParams, resistance_factor
from .faults import CoolingFailure, Fault, InsulationFault, InternalShort
from .ocv import LFP_OCV
from .thermal import ThermalParams, thermal_step

HEAT_SPREAD_C_PER_KW = 0.6
SHORT_COUPLING_W_PER_K = 3.0


def ageing_window_s(accel: float) -> float:
    """How often the fade law is applied: every 10 min of real time, or more often when
    ageing is accelerated, so that one window never covers more than about a day of ageing
    (at least every 10 s: at 100,000x a window is 11.6 days)."""
    return min(600.0, max(10.0, 86_400.0 / accel))


@dataclass(frozen=True, slots=True, kw_only=True)
class PackConfig:
    """Topology, cell, spread and starting point of one pack (default: 192S2P of 280 Ah)."""

    series: int = 192
    parallel: int = 2
    probes: int = 32
    cell: CellParams = field(default_factory=CellParams)
    thermal: ThermalParams = field(default_factory=ThermalParams)
    capacity_sigma: float = 0.008
    resistance_sigma: float = 0.05
    balance_sigma: float = 0.003
    probe_offset_sigma_c: float = 0.6
    initial_soc: float = 0.8
    initial_temp_c: float = 25.0
    ageing_accel: float = 1.0

    def __post_init__(self) -> None:
        if self.series < 1 or self.parallel < 1 or not 1 <= self.probes <= self.series:
            raise ValueError(
                f"need series >= 1, parallel >= 1, 1 <= probes <= series; got "
                f"{self.series}S{self.parallel}P with {self.probes} probes"
            )
        if not 0.0 <= self.initial_soc <= 1.0:
            raise ValueError(f"initial_soc must be in [0, 1], not {self.initial_soc}")

    @property
    def capacity_ah(self) -> float:
        """Nominal pack capacity."""
        return self.cell.capacity_ah * self.parallel

    @property
    def energy_wh(self) -> float:
        """Nominal pack energy."""
        return self.capacity_ah * self.cell.nominal_v * self.series


@dataclass(frozen=True, slots=True, kw_only=True)
class PackState:
    """The pack as a perfect observer sees it after one step (true values, SI units)."""

    voltage_v: float
    current_a: float
    soc: float
    temp_c: float
    heat_w: float
    cell_v_max: float
    cell_v_max_pos: int
    cell_v_min: float
    cell_v_min_pos: int
    temp_max_c: float
    temp_max_pos: int
    temp_min_c: float
    temp_min_pos: int
    soh_capacity: float
    resistance_growth: float
    capacity_ah: float
    r0_ohm: float
    energy_in_wh: float
    energy_out_wh: float
    ah_in: float
    ah_out: float
    cell_voltages: tuple[float, ...] | None = None


class Pack:
    """Mutable simulation state of one pack."""

    def __init__(self, *, config: PackConfig, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.config = config
        cell, n = config.cell, config.series
        self._inv_c = 1.0 / np.clip(rng.normal(1.0, config.capacity_sigma, n), 0.8, 1.2)
        self._r = np.clip(rng.normal(1.0, config.resistance_sigma, n), 0.7, 1.5)
        self._off = rng.normal(0.0, config.balance_sigma, n)
        self._drain = np.zeros(n)
        self._probe_of = (np.arange(n) * config.probes) // n
        self._probe_off = rng.normal(0.0, config.probe_offset_sigma_c, config.probes)
        self._probe_gain = rng.uniform(0.2, 1.0, config.probes)
        self._heat_capacity = (
            n * config.parallel * cell.mass_kg * cell.specific_heat_j_per_kg_k
        ) * config.thermal.structure_factor
        self.ageing = Ageing(
            accel=config.ageing_accel, window_s=ageing_window_s(config.ageing_accel)
        )
        self.soc = config.initial_soc
        self.temp_c = config.initial_temp_c
        self.v1 = 0.0
        self.v2 = 0.0
        self.energy_in_wh = self.energy_out_wh = self.ah_in = self.ah_out = 0.0
        self.cooling_ok = True
        self.insulation_fault_ohm: float | None = None
        self._short: InternalShort | None = None
        self._short_temp_c = self.temp_c
        self._pending: list[tuple[float, ...]] = []

    # -- mean-element quantities ---------------------------------------------------------

    @property
    def capacity_ah(self) -> float:
        """True present pack capacity (aged)."""
        return self.config.capacity_ah * self.ageing.capacity_fraction

    def _r0_element(self) -> float:
        c = self.config
        growth = self.ageing.resistance_growth
        factor = resistance_factor(self.temp_c, self.soc, c.cell.activation_j_per_mol)
        return c.cell.r0_ohm / c.parallel * growth * factor

    def open_circuit_v(self) -> float:
        """Pack voltage with no current, including the relaxing RC voltages."""
        return self.config.series * (LFP_OCV(self.soc) - self.v1 - self.v2)

    def internal_resistance_ohm(self) -> float:
        """Present ohmic pack resistance (temperature, SoC and ageing included)."""
        return self.config.series * self._r0_element()

    def current_for_power(self, power_w: float) -> float:
        """Current (A) that delivers ``power_w`` at the terminals (negative power charges)."""
        e, r = self.open_circuit_v(), self.internal_resistance_ohm()
        disc = e * e - 4 * r * power_w
        if disc <= 0:
            return e / (2 * r)
        return (e - math.sqrt(disc)) / (2 * r)

    def charge_current_limit(self, cell_target_v: float) -> float:
        """Largest charging current (A, positive) keeping the fullest element at the target."""
        top = float(np.max(self._off - (1.0 - self.soc) * self._inv_c - self._drain)) + 1.0
        r = float(self._r.max())
        headroom = cell_target_v - (LFP_OCV(min(top, 1.0)) - (self.v1 + self.v2) * r)
        return max(0.0, headroom / (self._r0_element() * r))

    def inject(self, fault: Fault | None) -> None:
        """Start a fault (None clears the internal short and insulation leak)."""
        if fault is None:
            self._short = None
            self.insulation_fault_ohm = None
            self.cooling_ok = True
        elif isinstance(fault, InternalShort):
            if not 1 <= fault.element <= self.config.series:
                raise ValueError(f"element {fault.element} is outside 1..{self.config.series}")
            self._short = fault
            self._short_temp_c = self.temp_c
        elif isinstance(fault, InsulationFault):
            self.insulation_fault_ohm = fault.resistance_ohm
        elif isinstance(fault, CoolingFailure):
            self.cooling_ok = False

    # -- stepping ---------------------------------------------------------------------------

    def advance(self, current_a: float, dt_s: float, ambient_c: float) -> None:
        """Advance one step at constant current; the state is read by :meth:`flush`."""
        c = self.config
        cap = self.capacity_ah
        if (self.soc <= 0.0 and current_a > 0) or (self.soc >= 1.0 and current_a < 0):
            current_a = 0.0  # the BMS opens the contactors rather than over-(dis)charge
        cell = c.cell
        growth = self.ageing.resistance_growth
        factor = resistance_factor(self.temp_c, self.soc, cell.activation_j_per_mol) * growth
        r0 = cell.r0_ohm / c.parallel * factor
        r1 = cell.r1_ohm / c.parallel * factor
        r2 = cell.r2_ohm / c.parallel * factor
        a1 = math.exp(-dt_s / cell.tau1_s)
        a2 = math.exp(-dt_s / cell.tau2_s)
        self.v1 = self.v1 * a1 + r1 * (1 - a1) * current_a
        self.v2 = self.v2 * a2 + r2 * (1 - a2) * current_a
        element_v = LFP_OCV(self.soc) - current_a * r0 - self.v1 - self.v2
        voltage = c.series * element_v
        heat = c.series * (current_a * current_a * r0 + self.v1 * self.v1 / r1
                           + self.v2 * self.v2 / r2)  # fmt: skip
        self.soc = min(1.0, max(0.0, self.soc - current_a * dt_s / 3600.0 / cap))
        self.temp_c, _ = thermal_step(
            temp_c=self.temp_c, heat_w=heat, ambient_c=ambient_c, dt_s=dt_s,
            capacity_j_per_k=self._heat_capacity, params=c.thermal, cooling_ok=self.cooling_ok,
        )  # fmt: skip
        power_wh = voltage * current_a * dt_s / 3600.0
        amp_h = current_a * dt_s / 3600.0
        if current_a >= 0:
            self.energy_out_wh += power_wh
            self.ah_out += amp_h
        else:
            self.energy_in_wh -= power_wh
            self.ah_in -= amp_h
        if self._short is not None:
            self._step_short(element_v, dt_s, cap)
        self.ageing.accumulate(
            dt_s=dt_s, temp_c=self.temp_c, soc=self.soc, current_a=current_a,
            capacity_ah=c.capacity_ah,
        )  # fmt: skip
        self._pending.append(
            (voltage, current_a, self.soc, self.temp_c, heat, r0, self.v1 + self.v2,
             self._short_temp_c if self._short is not None else -273.0,
             self.energy_in_wh, self.energy_out_wh, self.ah_in, self.ah_out)
        )  # fmt: skip

    def _step_short(self, element_v: float, dt_s: float, cap: float) -> None:
        assert self._short is not None
        short = self._short
        index = short.element - 1
        current = max(element_v, 0.0) / short.resistance_ohm
        self._drain[index] += current * dt_s / 3600.0 / cap
        heat = current * current * short.resistance_ohm
        cell = self.config.cell
        capacity = self.config.parallel * cell.mass_kg * cell.specific_heat_j_per_kg_k
        flow = heat - SHORT_COUPLING_W_PER_K * (self._short_temp_c - self.temp_c)
        self._short_temp_c += flow * dt_s / capacity

    def flush(self, *, with_cells: bool = False) -> list[PackState]:
        """The states of every step advanced since the last flush, with element extremes."""
        if not self._pending:
            return []
        c = self.config
        rows = np.array(self._pending)
        self._pending.clear()
        volt, cur, soc, temp, heat, r0, vrc, short_t, e_in, e_out, ah_in, ah_out = rows.T
        elem_soc = 1.0 - (1.0 - soc[:, None]) * self._inv_c + self._off - self._drain
        elem_v = LFP_OCV.evaluate(elem_soc) - (cur * r0 + vrc)[:, None] * self._r
        vmax_i = elem_v.argmax(axis=1)
        vmin_i = elem_v.argmin(axis=1)
        probes = (temp[:, None] + self._probe_off) + (heat / 1000 * HEAT_SPREAD_C_PER_KW)[
            :, None
        ] * self._probe_gain
        if self._short is not None:
            probe = int(self._probe_of[self._short.element - 1])
            probes[:, probe] = np.maximum(probes[:, probe], short_t)
        tmax_i = probes.argmax(axis=1)
        tmin_i = probes.argmin(axis=1)
        k = np.arange(len(rows))
        vmax, vmin = elem_v[k, vmax_i], elem_v[k, vmin_i]
        tmax, tmin = probes[k, tmax_i], probes[k, tmin_i]
        soh = self.ageing.capacity_fraction
        growth = self.ageing.resistance_growth
        cols = [col.tolist() for col in (volt, cur, soc, temp, heat, vmax, vmin, tmax, tmin,
                                         e_in, e_out, ah_in, ah_out)]  # fmt: skip
        positions = [(idx + 1).tolist() for idx in (vmax_i, vmin_i, tmax_i, tmin_i)]
        cap, r0_pack = c.capacity_ah * soh, c.series * c.cell.r0_ohm / c.parallel * growth
        return [
            PackState(
                voltage_v=v, current_a=i, soc=q, temp_c=t, heat_w=h,
                cell_v_max=uh, cell_v_max_pos=uhp, cell_v_min=ul, cell_v_min_pos=ulp,
                temp_max_c=th, temp_max_pos=thp, temp_min_c=tl, temp_min_pos=tlp,
                soh_capacity=soh, resistance_growth=growth, capacity_ah=cap, r0_ohm=r0_pack,
                energy_in_wh=ei, energy_out_wh=eo, ah_in=ai, ah_out=ao,
                cell_voltages=tuple(elem_v[j].tolist()) if with_cells else None,
            )
            for j, (v, i, q, t, h, uh, ul, th, tl, ei, eo, ai, ao, uhp, ulp, thp, tlp)
            in enumerate(zip(*cols, *positions, strict=True))
        ]  # fmt: skip

    def step(self, current_a: float, dt_s: float, ambient_c: float) -> PackState:
        """Advance one step and return the resulting state."""
        self.advance(current_a, dt_s, ambient_c)
        return self.flush()[-1]
