"""What the pack's BMS reports: estimates, alarms and events from the true pack state.

- SoC by coulomb counting the *measured* current: a per-pack offset (hall sensors: ~0.1-0.5 %
  of a 1000 A range) and gain error make it drift by several per cent a day.
- Recalibration: at the end of a full charge (CV phase complete) the estimate is set to 100 %;
  after 30 min at rest it is set from the OCV curve, but only where LFP's curve is steep enough
  to tell (below 15 % or above 97 %). Each jump of 0.5 % or more is a ``recal`` event, and a
  jump of 5 % or more raises the GB/T "SOC jump" flag for that sample.
- Capacity estimates refresh at full-charge recalibrations and, from the BMS's ageing model,
  every ``CAPACITY_MODEL_S`` seconds of operation (model-based estimators track fade between
  full charges); they never increase, as BMS firmware usually reports them. With accelerated
  ageing this is what makes the state-of-health trend visible within minutes.
- Alarm level and flags from :mod:`alarms`; every change is an ``alarm`` event and reaching
  level 3 or 4 adds a ``pre_fault`` event (the agent then sends 1 Hz around it).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ledger.telemetry import PackSample

from .alarms import AlarmInputs, AlarmThresholds, evaluate
from .ocv import LFP_OCV
from .pack import PackConfig, PackState

REST_S = 1800.0
RECAL_EVENT = 0.005
CAPACITY_MODEL_S = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class BmsEvent:
    """An event at the sample it is reported with (kind and keys as in ledger.telemetry)."""

    kind: str
    data: dict[str, int | str] = field(default_factory=dict)


class Bms:
    """State of one BMS."""

    __slots__ = ("_config", "_rng", "bias_a", "cap_bias", "cap_est", "flags", "gain", "level",
                 "model_s", "rest_s", "soc_est", "thresholds")  # fmt: skip

    def __init__(
        self,
        *,
        config: PackConfig,
        rng: random.Random,
        thresholds: AlarmThresholds | None = None,
    ) -> None:
        self._config = config
        self._rng = rng
        self.thresholds = thresholds or AlarmThresholds()
        self.bias_a = rng.gauss(0.0, 1.5)
        self.gain = rng.gauss(0.0, 0.004)
        self.soc_est = config.initial_soc
        self.cap_bias = rng.gauss(0.0, 0.004)
        self.cap_est = config.capacity_ah * (1 + self.cap_bias)
        self.model_s = 0.0
        self.rest_s = 0.0
        self.level = 0
        self.flags = 0

    def _recalibrate(self, target: float, why: str, events: list[BmsEvent]) -> float:
        jump = abs(target - self.soc_est)
        if jump >= RECAL_EVENT:
            events.append(
                BmsEvent(kind="recal", data={"from": round(self.soc_est * 1000),
                                             "to": round(target * 1000), "why": why})
            )  # fmt: skip
        self.soc_est = target
        return jump

    def observe(
        self,
        state: PackState,
        *,
        dt_s: float,
        insulation_ohm: float,
        charge_state: int,
        full: bool = False,
    ) -> tuple[PackSample, list[BmsEvent]]:
        """The sample reported for ``state``, and the events it raises."""
        events: list[BmsEvent] = []
        measured = state.current_a * (1 + self.gain) + self.bias_a
        cap = self.cap_est
        self.soc_est = min(1.0, max(0.0, self.soc_est - measured * dt_s / 3600.0 / cap))
        jump = 0.0
        if full:
            jump = self._recalibrate(1.0, "full", events)
            truth = state.capacity_ah * (1 + self._rng.gauss(0.0, 0.004))
            self.cap_est = min(self.cap_est, truth)
        self.model_s += dt_s
        if self.model_s >= CAPACITY_MODEL_S:
            # The ageing model's estimate: the true capacity seen through this BMS's bias.
            self.model_s = 0.0
            self.cap_est = min(self.cap_est, state.capacity_ah * (1 + self.cap_bias))
        if abs(state.current_a) < 0.01 * self._config.capacity_ah:
            self.rest_s += dt_s
        else:
            self.rest_s = 0.0
        if self.rest_s >= REST_S:
            self.rest_s = -float("inf")  # once per rest period
            from_ocv = LFP_OCV.inverse(state.voltage_v / self._config.series)
            if from_ocv < 0.15 or from_ocv > 0.97:
                jump = self._recalibrate(from_ocv, "rest", events)
        level, flags = evaluate(
            AlarmInputs(
                cell_v_max=state.cell_v_max, cell_v_min=state.cell_v_min,
                temp_max_c=state.temp_max_c, temp_min_c=state.temp_min_c, soc=self.soc_est,
                insulation_ohm=insulation_ohm, pack_v=state.voltage_v,
                series=self._config.series, soc_jump=jump,
            ),
            self.thresholds,
        )  # fmt: skip
        if (level, flags) != (self.level, self.flags):
            events.append(BmsEvent(kind="alarm", data={"lvl": level, "flags": flags}))
            if level >= 3 > self.level:
                events.append(BmsEvent(kind="pre_fault", data={"lvl": level}))
            self.level, self.flags = level, flags
        sample = PackSample(
            voltage_v=state.voltage_v, current_a=state.current_a, soc=self.soc_est,
            cell_v_max=state.cell_v_max, cell_v_max_pos=state.cell_v_max_pos,
            cell_v_min=state.cell_v_min, cell_v_min_pos=state.cell_v_min_pos,
            temp_max_c=state.temp_max_c, temp_max_pos=state.temp_max_pos,
            temp_min_c=state.temp_min_c, temp_min_pos=state.temp_min_pos,
            insulation_ohm=insulation_ohm, alarm_level=level, alarm_flags=flags,
            soh_capacity=self.cap_est / self._config.capacity_ah,
            resistance_growth=state.resistance_growth, r0_ohm=state.r0_ohm,
            capacity_ah=self.cap_est, energy_in_wh=state.energy_in_wh,
            energy_out_wh=state.energy_out_wh, ah_in=state.ah_in, ah_out=state.ah_out,
            charge_state=charge_state, cell_voltages=state.cell_voltages,
        )  # fmt: skip
        return sample, events
