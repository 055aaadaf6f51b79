"""Export a condition report as battery passport data (Tractus-X ``battery_pass`` 6.1.0).

``performance.dynamic`` follows the Eclipse Tractus-X aspect model
``urn:samm:io.catenax.battery.battery_pass:6.1.0``: every value the model requires, each
a ``{"value", "time"}`` record (time in ISO 8601) except ``selfDischargingRate`` (a number).
A value comes from the device-signed figures of the report where the data allows it, else
from the manufacturer's rated values (the passport's own ``performance.rated``, passed in);
how each value was obtained is stated in the model's own provenance field,
``performance.dynamic.performanceDocument`` (one document per value, header = its path).
No value is invented: a required value that neither the data nor the rated values give is
left out and named in ``missing`` with the reason, and then the export is not a valid
6.1.0 block (``complete`` is false).

The dynamic attributes of the Battery Pass longlist (DIN DKE SPEC 99100, CC-BY-4.0) that
the aspect model does not carry as values (time at extreme temperatures, deep-discharge and
overcharge events) go to ``longlist``, keyed by the longlist's attribute number with its
name, in the same ``{value, time}`` form. ``battery_passport`` puts the dynamic block into
a manufacturer's static passport (identification, operation, materials, ...) to give the
complete 6.1.0 document. ``docs/condition-report.md``, "Battery passport export", lists
every value and its source.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from .report.model import ConditionReport, FigureValue

ASPECT_MODEL: Final = "urn:samm:io.catenax.battery.battery_pass:6.1.0"

_LONGLIST: Final = (
    ("87", "Time spent in extreme temperatures above boundary", "minutes_above_temp"),
    ("88", "Time spent in extreme temperatures below boundary", "minutes_below_temp"),
    ("89", "Time spent charging during extreme temperatures above boundary",
     "minutes_charging_above_temp"),
    ("90", "Time spent charging during extreme temperatures below boundary",
     "minutes_charging_below_temp"),
    ("91", "Number of deep discharge events", "deep_discharge_events"),
    ("92", "Number of overcharge events", "overcharge_events"),
)  # fmt: skip

_DAYS_PER_400_YEARS: Final = 146_097
_MS_PER_DAY: Final = 86_400_000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def iso_time(t_ms: int) -> str:
    """ISO 8601 UTC time of Unix ms ``t_ms`` (millisecond precision, any year from 1970).

    Years past 9999 (message times go to 2**63 ms) are written with more digits, as
    XML Schema ``dateTime`` (the model's type) allows: whole 400-year Gregorian cycles are
    split off so ``datetime`` only sees the remainder.
    """
    days, ms = divmod(t_ms, _MS_PER_DAY)
    cycles, days = divmod(days, _DAYS_PER_400_YEARS)
    moment = _EPOCH + timedelta(days=days, milliseconds=ms)
    year = moment.year + 400 * cycles
    return f"{year:04d}" + moment.strftime("-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _number(value: FigureValue) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _rated(rated: Mapping[str, Any] | None, *path: str) -> float | None:
    """A number at ``path`` in a Tractus-X ``performance.rated`` object, if present."""
    node: Any = rated
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return _number(node)


class _Builder:
    """Collects values with their provenance, and what is missing with why."""

    def __init__(self, time: str) -> None:
        self.time = time
        self.dynamic: dict[str, Any] = {}
        self.documents: list[dict[str, str]] = []
        self.missing: dict[str, str] = {}

    def put(self, path: str, value: float | None, how: str, *, record: bool = True) -> None:
        """Set ``path`` (dotted) to ``value`` obtained ``how``, or record it as missing."""
        if value is None:
            self.missing[path] = how
            return
        node = self.dynamic
        *parents, leaf = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        rounded = round(value, 6)
        node[leaf] = {"value": rounded, "time": self.time} if record else rounded
        self.documents.append({"header": path, "contentType": "text/plain", "content": how})


def battery_pass_dynamic(
    report: ConditionReport, *, rated: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The report as Tractus-X 6.1.0 ``performance.dynamic`` data, with provenance.

    ``rated`` is the passport's ``performance.rated`` object (the manufacturer's declared
    values); without it the values that need a rated reference are listed in ``missing``.
    Units: capacity Ah, energy kWh, power W, resistance Ohm, fades / SOCE / SoC /
    efficiency / resistance increase %, self-discharge %/month. Every record's time is the
    end of the report's period.
    """
    figures = {f.key: _number(f.value) for f in report.figures}
    b = _Builder(iso_time(report.to_ms))
    signed = "from device-signed BMS data"

    soc = figures.get("state_of_charge")
    b.put("stateOfCharge", soc, f"{signed}: soc of the last sample of the period, %")
    b.put("fullCycles", figures.get("equivalent_full_cycles_lifetime"),
          f"{signed}: lifetime ah_out / rated capacity (equivalent full cycles)")  # fmt: skip
    self_discharge = _rated(rated, "selfDischargingRate")
    b.put("selfDischargingRate", self_discharge,
          "not measured: the telemetry cannot separate self-discharge from coulomb-counting "
          "drift; the manufacturer's rated value (performance.rated.selfDischargingRate), "
          "%/month" if self_discharge is not None else
          "not measured and no rated value (performance.rated.selfDischargingRate) given",
          record=False)  # fmt: skip

    soh_c, c_rated = figures.get("soh_capacity"), figures.get("rated_capacity")
    b.put("capacity.capacity", None if soh_c is None or c_rated is None else c_rated * soh_c / 100,
          f"{signed}: rated capacity x capacity SoH (soh_c) of the last sample, Ah")  # fmt: skip
    b.put("capacity.fade", None if soh_c is None else 100 - soh_c,
          f"{signed}: 100 % - capacity SoH (soh_c) of the last sample")  # fmt: skip
    b.put("capacity.throughput", figures.get("capacity_throughput_lifetime"),
          f"{signed}: lifetime charge discharged (ah_out of the last sample), Ah")  # fmt: skip

    growth = figures.get("resistance_growth")
    factor = None if growth is None else 1 + growth / 100
    power = _rated(rated, "power", "value")
    b.put("power.remaining", None if factor is None or power is None else power / factor,
          f"rated power (performance.rated.power.value) / resistance growth (soh_r, {signed}): "
          "at fixed voltage limits the deliverable power scales as 1/R, W"
          if power is not None else
          "no rated power (performance.rated.power.value) given")  # fmt: skip
    b.put("power.fade", None if factor is None else (1 - 1 / factor) * 100,
          f"1 - 1 / resistance growth (soh_r, {signed}): power at fixed voltage limits "
          "scales as 1/R, %")  # fmt: skip

    rte = figures.get("round_trip_efficiency_lifetime")
    rte_initial = _rated(rated, "roundTripEfficiency", "initial")
    if rte is not None:
        b.put("roundTripEfficiency.remaining", rte,
              f"{signed}: lifetime energy discharged / charged (e_out / e_in of the last "
              "sample), % (the report's interval bounds the unknown delivery SoC)")  # fmt: skip
        b.put("roundTripEfficiency.fade",
              None if not rte_initial else (rte_initial - rte) / rte_initial * 100,
              f"(rated initial - remaining) / rated initial (performance.rated."
              f"roundTripEfficiency.initial; remaining {signed}), % (negative: no fade seen)"
              if rte_initial else "no rated initial round trip efficiency given")  # fmt: skip
    else:
        why = "not measured yet: too little energy charged to tell the efficiency from the " \
            "state of charge at delivery"  # fmt: skip
        b.put("roundTripEfficiency.remaining", rte_initial,
              f"{why}; the rated initial value (performance.rated.roundTripEfficiency.initial), %"
              if rte_initial else f"{why}, and no rated initial value given")  # fmt: skip
        b.put("roundTripEfficiency.fade", None if not rte_initial else 0.0,
              f"{why}; no fade can be measured yet, 0 against the rated initial value, %"
              if rte_initial else f"{why}, and no rated initial value given")  # fmt: skip

    soh_e, usable = figures.get("soh_energy"), figures.get("usable_energy")
    if soh_e is not None:
        b.put("energy.soce", soh_e, f"{signed}: usable energy of the last discharge of at least "
              "the report's minimum SoC swing / rated energy, %")  # fmt: skip
    else:
        b.put("energy.soce", soh_c, f"{signed}: capacity SoH (soh_c) of the last sample; no "
              "discharge long enough to measure usable energy in the period, so the BMS's "
              "on-board capacity estimate stands in for energy, %")  # fmt: skip
    nominal = _rated(rated, "voltage", "nominal")
    if usable is not None:
        b.put("energy.remaining", usable, f"{signed}: discharged energy / SoC drop over the "
              "last long discharge (usable energy at full charge), kWh")  # fmt: skip
    else:
        remaining = None
        if soh_c is not None and c_rated is not None and nominal is not None:
            remaining = c_rated * soh_c / 100 * nominal / 1000
        b.put("energy.remaining", remaining, f"capacity ({signed}) x rated nominal voltage "
              "(performance.rated.voltage.nominal); no discharge long enough to measure usable "
              "energy in the period, kWh")  # fmt: skip
    b.put("energy.throughput", figures.get("energy_throughput_lifetime"),
          f"{signed}: lifetime energy discharged (e_out of the last sample), kWh")  # fmt: skip

    b.put("resistance.increase.pack", growth,
          f"{signed}: BMS resistance relative to beginning of life (soh_r) - 100 %")  # fmt: skip
    b.put("resistance.increase.cell", growth,
          f"{signed}: the pack's soh_r; the BMS reports resistance growth per pack only, so "
          "cells are taken to age alike (interconnects not separated), %")  # fmt: skip
    r0 = figures.get("r0")
    b.put("resistance.remaining.pack", None if r0 is None else r0 / 1000,
          f"{signed}: ohmic pack resistance at 25 degC (r0) of the last sample, Ohm")  # fmt: skip
    r_cell = _rated(rated, "resistance", "cell")
    b.put("resistance.remaining.cell", None if factor is None or r_cell is None else
          r_cell * factor,
          f"rated cell resistance (performance.rated.resistance.cell) x resistance growth "
          f"(soh_r, {signed}), Ohm" if r_cell is not None else
          "no rated cell resistance (performance.rated.resistance.cell) given")  # fmt: skip

    b.dynamic["performanceDocument"] = b.documents
    longlist = {
        number: {"attribute": name, "value": round(value, 6), "time": b.time}
        for number, name, key in _LONGLIST
        if (value := figures.get(key)) is not None
    }
    return {
        "aspectModel": ASPECT_MODEL,
        "complete": not b.missing,
        "missing": b.missing,
        "performance": {"dynamic": b.dynamic},
        "longlist": longlist,
    }


def battery_passport(report: ConditionReport, *, static: Mapping[str, Any]) -> dict[str, Any]:
    """The complete 6.1.0 passport: ``static`` (the manufacturer's passport) + dynamic data.

    ``static`` carries every section the gateway cannot know (identification, operation,
    materials, conformity, ``performance.rated``, ...); its ``performance.rated`` is the
    reference for the dynamic values that need one. Raises ``ValueError`` naming what is
    missing when the dynamic block cannot be completed.
    """
    rated = static.get("performance", {}).get("rated")
    export = battery_pass_dynamic(report, rated=rated)
    if not export["complete"]:
        missing = "; ".join(f"{path}: {why}" for path, why in export["missing"].items())
        raise ValueError(f"the dynamic block is incomplete: {missing}")
    passport = copy.deepcopy(dict(static))
    passport.setdefault("performance", {})["dynamic"] = export["performance"]["dynamic"]
    return passport
