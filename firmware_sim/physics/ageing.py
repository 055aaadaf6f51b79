"""Calendar and cycle ageing of large-format LFP/graphite cells.

The capacity-fade law is the one NREL fitted for a >250 Ah prismatic LFP/graphite cell
(BLAST-Lite model ``Lfp_Gr_250AhPrismatic``; test data: Gasper et al., J. Energy Storage 73
(2023) 109042, https://doi.org/10.1016/j.est.2023.109042):

    q = 1 - kcal * t_days ** 0.526 - kcyc * EFC ** 0.828
    kcal = 8.37e4 * exp(-5.21e3 / T) * exp(-3.56e3 * Ua(soc) / T)
    kcyc = (4.38e-8 + 1.55e-8 * DoD + 1.68e-7 * Crate) * (exp(2.19e3 / T) + exp(-1.55e5 / T))

with T in kelvin and Ua the graphite anode potential at the cell's SoC (Safari & Delacourt,
J. Electrochem. Soc. 158 (2011) A562, lithiation x = 0.0085 + soc * (0.78 - 0.0085)).
Varying stressors are integrated with the time-equivalence rule: the loss so far is converted
to the equivalent age under the present rate and advanced from there (exact for constant
stressors). The rate used is the mean over the last day of 10-minute windows (throughput-
weighted for the cycle term), as BLAST-Lite averages rates over each cycle: without it the
power law would turn a daily SoC swing into extra fade.

The model has no resistance term. Resistance growth is taken proportional to capacity fade,
``R / R_new = 1 + 1.5 * fade`` -- an assumption of the order reported for LFP/graphite
(resistance rises faster than capacity falls; Naumann et al., J. Power Sources 451 (2020)
227666), not a fit.
"""

from __future__ import annotations

import math
from collections import deque

KELVIN = 273.15
P1, P2, P3, PCAL = 8.37e4, -5.21e3, -3.56e3, 0.526
P4, P5, P6, P7, P8, PCYC = 4.38e-8, 1.55e-8, 1.68e-7, 2.19e3, 1.55e5, 0.828
RESISTANCE_PER_FADE = 1.5
SECONDS_PER_DAY = 86_400.0


def anode_potential(soc: float) -> float:
    """Graphite potential vs Li/Li+ (V) at cell SoC ``soc`` (Safari & Delacourt 2011)."""
    x = 8.5e-3 + min(max(soc, 0.0), 1.0) * (7.8e-1 - 8.5e-3)
    return (
        0.6379
        + 0.5416 * math.exp(-305.5309 * x)
        + 0.044 * math.tanh(-(x - 0.1958) / 0.1088)
        - 0.1978 * math.tanh((x - 1.0571) / 0.0854)
        - 0.6875 * math.tanh((x + 0.0117) / 0.0529)
        - 0.0175 * math.tanh((x - 0.5692) / 0.0875)
    )


def calendar_rate(temp_c: float, soc: float) -> float:
    """kcal (fraction per day**0.526) at a cell temperature and SoC."""
    t = temp_c + KELVIN
    return abs(P1) * math.exp(P2 / t) * math.exp(P3 * anode_potential(soc) / t)


def cycle_rate(temp_c: float, dod: float, c_rate: float) -> float:
    """kcyc (fraction per EFC**0.828) at a cell temperature, depth of discharge and C-rate."""
    t = temp_c + KELVIN
    return (P4 + P5 * dod + P6 * c_rate) * (math.exp(P7 / t) + math.exp(-P8 / t))


def closed_form_fade(
    *, days: float, efc: float, temp_c: float, soc: float, dod: float, c_rate: float
) -> float:
    """Capacity fade (fraction) under constant stressors: the published closed form."""
    calendar = calendar_rate(temp_c, soc) * float(days**PCAL)
    return calendar + cycle_rate(temp_c, dod, c_rate) * float(efc**PCYC)


def _advance(loss: float, rate: float, exponent: float, dx: float) -> float:
    if rate <= 0 or dx <= 0:
        return loss
    equivalent = float((loss / rate) ** (1 / exponent))
    return rate * float((equivalent + dx) ** exponent)


class Ageing:
    """Accumulates stressors each step and applies the fade law once per window.

    Depth of discharge is the SoC range of the current and the previous (real) day; C-rate
    the mean |I|/Q while the current exceeds C/50; temperature and SoC window means.

    ``accel`` multiplies elapsed time and throughput as seen by the ageing law only, so a
    simulator can show years of decline in minutes while sample timestamps stay real.
    """

    __slots__ = (
        "_ah",
        "_crate_s",
        "_dt",
        "_history",
        "_moving_s",
        "_soc_s",
        "_temp_s",
        "accel",
        "cal_loss",
        "cyc_loss",
        "day_s",
        "days",
        "efc",
        "prev_range",
        "soc_hi",
        "soc_lo",
        "window_s",
    )  # fmt: skip

    def __init__(self, *, accel: float = 1.0, window_s: float = 600.0) -> None:
        if accel <= 0:
            raise ValueError(f"accel must be positive, not {accel}")
        self.accel = accel
        self.window_s = window_s
        self.cal_loss = 0.0
        self.cyc_loss = 0.0
        self.days = 0.0
        self.efc = 0.0
        self.soc_hi = -1.0
        self.soc_lo = 2.0
        self.prev_range = (2.0, -1.0)
        self.day_s = 0.0
        self._history: deque[tuple[float, float, float, float]] = deque()
        self._dt = self._temp_s = self._soc_s = self._ah = self._crate_s = self._moving_s = 0.0

    @property
    def capacity_fraction(self) -> float:
        """Remaining capacity relative to new (state of health, capacity-based)."""
        return max(0.0, 1.0 - self.cal_loss - self.cyc_loss)

    @property
    def resistance_growth(self) -> float:
        """Resistance relative to new."""
        return 1.0 + RESISTANCE_PER_FADE * (self.cal_loss + self.cyc_loss)

    def accumulate(
        self, *, dt_s: float, temp_c: float, soc: float, current_a: float, capacity_ah: float
    ) -> None:
        """Record one step's stressors; applies the law when a window is complete."""
        self._dt += dt_s
        self._temp_s += temp_c * dt_s
        self._soc_s += soc * dt_s
        c_rate = abs(current_a) / capacity_ah
        self._ah += c_rate * dt_s / 3600.0
        if c_rate > 0.02:
            self._crate_s += c_rate * dt_s
            self._moving_s += dt_s
        self.soc_hi = max(self.soc_hi, soc)
        self.soc_lo = min(self.soc_lo, soc)
        self.day_s += dt_s
        if self.day_s >= SECONDS_PER_DAY:
            self.prev_range = (self.soc_lo, self.soc_hi)
            self.soc_hi, self.soc_lo, self.day_s = soc, soc, 0.0
        if self._dt >= self.window_s:
            self.apply()

    def _daily_mean_rates(
        self, dt_s: float, kcal: float, kcyc: float, efc: float
    ) -> tuple[float, float]:
        """Rates averaged over the last day of windows (BLAST averages rates per cycle)."""
        self._history.append((dt_s, kcal, kcyc, efc))
        total = sum(h[0] for h in self._history)
        while total - self._history[0][0] >= SECONDS_PER_DAY:
            total -= self._history.popleft()[0]
        mean_kcal = sum(h[0] * h[1] for h in self._history) / total
        throughput = sum(h[3] for h in self._history)
        mean_kcyc = sum(h[2] * h[3] for h in self._history) / throughput if throughput else kcyc
        return mean_kcal, mean_kcyc

    def apply(self) -> None:
        """Apply the accumulated window to the fade states."""
        if self._dt <= 0:
            return
        temp = self._temp_s / self._dt
        soc = self._soc_s / self._dt
        c_rate = self._crate_s / self._moving_s if self._moving_s > 0 else 0.0
        dod = max(max(self.soc_hi, self.prev_range[1]) - min(self.soc_lo, self.prev_range[0]), 0.05)
        days = self._dt / SECONDS_PER_DAY * self.accel
        efc = self._ah / 2.0 * self.accel  # one EFC = one full discharge + one full charge
        kcal, kcyc = self._daily_mean_rates(
            self._dt, calendar_rate(temp, soc), cycle_rate(temp, dod, c_rate), efc
        )
        self.cal_loss = _advance(self.cal_loss, kcal, PCAL, days)
        self.cyc_loss = _advance(self.cyc_loss, kcyc, PCYC, efc)
        self.days += days
        self.efc += efc
        self._dt = self._temp_s = self._soc_s = self._ah = self._crate_s = self._moving_s = 0.0
