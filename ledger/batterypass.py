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
the passport setting's static sections (identification, operation, materials, ...), with
the pack's identity from the log, to give the complete 6.1.0 document: every field nobody
declared holds the schema's placeholder and is named as such (the schema has no null).
``docs/condition-report.md``, "Battery passport export", lists every value and its source.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from .batterypass_template import UNDECLARED
from .birth import BirthCertificateError, read_birth_certificate
from .errors import VoltproofError
from .registry import RegistryEntryError, read_registry_entry
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

_LONGLIST_UNITS: Final = {"87": "min", "88": "min", "89": "min", "90": "min", "91": "events",
                           "92": "events"}  # fmt: skip
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


PASSPORT_SETTING_NAME: Final = "passport.json"
"""The passport setting's file name next to the gateway configuration (``docs/operations.md``)."""


class PassportSettingError(VoltproofError, ValueError):
    """The passport setting is not a JSON object of the model's static sections."""


def parse_passport_setting(text: str) -> dict[str, Any]:
    """The passport setting from its JSON text: an object keyed by the model's sections.

    Checked here: JSON, an object, only the model's top-level sections (a typo would
    otherwise leave a section undeclared without a word), each section an object, and no
    ``performance.dynamic`` (the gateway computes it).
    """
    try:
        setting = json.loads(text)
    except ValueError as exc:
        raise PassportSettingError(f"passport setting is not JSON: {exc}") from exc
    if not isinstance(setting, dict):
        raise PassportSettingError("passport setting must be a JSON object")
    unknown = sorted(set(setting) - set(UNDECLARED))
    if unknown:
        raise PassportSettingError(
            f"passport setting has unknown section(s) {unknown}; the model's sections are "
            f"{sorted(UNDECLARED)}"
        )
    for section, value in setting.items():
        if not isinstance(value, dict):
            raise PassportSettingError(f"passport setting: {section} must be an object")
    if "dynamic" in setting.get("performance", {}):
        raise PassportSettingError(
            "passport setting: performance.dynamic is computed from the signed data; leave it out"
        )
    return setting


PLACEHOLDER_NOTE: Final = (
    "0 is a placeholder the 6.1.0 schema requires (it has no null), not a measurement"
)
_PASSPORT_NAMESPACE: Final = uuid.UUID("6f0c6a52-3c1e-4d1f-9a55-8a1f0e2b7c41")
"""uuid5 namespace of passport identifiers: one fixed identifier per pack id."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PackIdentity:
    """What the log says of a pack: its id, and the claims of its birth certificate if any."""

    device: str
    serial: str | None = None
    manufacturer_key: str | None = None
    """The name of the manufacturer key that signed the birth certificate."""
    made_at_ms: int | None = None


def pack_identity(device: str, registry: Sequence[tuple[int, bytes]]) -> PackIdentity:
    """The identity of ``device`` from its registry entries ``(leaf index, bytes)``.

    The enrolment entry's birth certificate (its claims; the signature is the verifier's
    business, ``voltproof verify --manufacturer``) gives the serial and manufacture time.
    An entry that does not decode is skipped: the passport then says less, never more.
    """
    for index, data in registry:
        try:
            fact = read_registry_entry(data, index=index)
            if fact.device != device or fact.birth is None:
                continue
            birth = read_birth_certificate(fact.birth)
        except (RegistryEntryError, BirthCertificateError):
            continue
        return PackIdentity(device=device, serial=birth.serial,
                            manufacturer_key=birth.manufacturer,
                            made_at_ms=birth.made_at_ms)  # fmt: skip
    return PackIdentity(device=device)


def _date(t_ms: int) -> str:
    """``YYYY-MM-DD`` of a Unix ms time; the schema's date has four year digits."""
    text = iso_time(t_ms)[:10]
    return text if len(text) == 10 else "9999-12-31"


def _merge(template: Any, given: Any, path: str, undeclared: list[str]) -> Any:
    """``given`` over ``template``; the template's leaves left in place go to ``undeclared``."""
    if isinstance(template, dict):
        given_map = given if isinstance(given, Mapping) else {}
        merged = {key: copy.deepcopy(value) for key, value in given_map.items()}
        for key, value in template.items():
            where = f"{path}.{key}" if path else key
            merged[key] = _merge(value, given_map.get(key), where, undeclared)
        return merged
    if given is None:
        undeclared.append(path)
        return copy.deepcopy(template)
    return copy.deepcopy(given)


def battery_passport(
    report: ConditionReport,
    *,
    static: Mapping[str, Any] | None = None,
    identity: PackIdentity | None = None,
) -> dict[str, Any]:
    """The complete 6.1.0 passport of a pack: the passport setting, identity, dynamic data.

    ``static`` is the passport setting (``docs/operations.md``): any part of the static
    sections the operator or manufacturer declared, in the model's own layout; its
    ``performance.rated`` is the reference for the dynamic values that need one. Every
    required field it leaves out gets :data:`~ledger.batterypass_template.UNDECLARED`'s
    placeholder; ``identity`` (registry and birth certificate) fills the pack's codes,
    passport identifier and manufacturing date. A dynamic value that neither the data nor
    a rated value gives is 0 with its reason (:data:`PLACEHOLDER_NOTE`). Every placeholder
    is named in ``performance.dynamic.performanceDocument``; the document is always valid
    against the schema.
    """
    setting: Mapping[str, Any] = static or {}
    performance = setting.get("performance")
    rated = performance.get("rated") if isinstance(performance, Mapping) else None
    export = battery_pass_dynamic(report, rated=rated if isinstance(rated, Mapping) else None)
    undeclared: list[str] = []
    passport: dict[str, Any] = _merge(UNDECLARED, setting, "", undeclared)
    who = identity or PackIdentity(device=report.asset_id)
    _identify(passport, who, report, undeclared)
    dynamic: dict[str, Any] = copy.deepcopy(export["performance"]["dynamic"])
    documents: list[dict[str, str]] = dynamic["performanceDocument"]
    time = iso_time(report.to_ms)
    for path, why in export["missing"].items():
        node = dynamic
        *parents, leaf = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = 0 if path == "selfDischargingRate" else {"value": 0, "time": time}
        documents.append({"header": path, "contentType": "text/plain",
                          "content": f"unknown: {why}; {PLACEHOLDER_NOTE}"})  # fmt: skip
    dynamic["negativeEvents"] = [
        {"header": f"BatteryPass longlist {number}: {entry['attribute']}"[:100],
         "contentType": "text/plain",
         "content": f"{entry['value']:g} {_LONGLIST_UNITS[number]} up to {entry['time']} "
         "(from device-signed BMS data; docs/condition-report.md gives the formula)"}
        for number, entry in export["longlist"].items()
    ]  # fmt: skip
    if undeclared:
        documents.append({
            "header": "undeclared values", "contentType": "text/plain",
            "content": "not in the passport setting, so these fields hold the schema's "
            "placeholder (0, 'not declared' or the smallest value their pattern admits), "
            "not a declaration: " + ", ".join(undeclared),
        })  # fmt: skip
    passport["performance"]["dynamic"] = dynamic
    return passport


def _identify(
    passport: dict[str, Any], who: PackIdentity, report: ConditionReport, undeclared: list[str]
) -> None:
    """Put what the log says of the pack into ``passport`` (and out of ``undeclared``)."""
    codes = [{"key": "voltproof device id", "value": who.device}]
    if who.serial is not None:
        codes.append({"key": "serial number (birth certificate)", "value": who.serial})
    ident = passport["identification"]["identification"]
    if "identification.identification.codes" in undeclared:
        undeclared.remove("identification.identification.codes")
        ident["codes"] = codes
    else:
        ident["codes"] = [*ident["codes"], *codes]
    metadata = passport["metadata"]
    metadata["passportIdentifier"] = f"urn:uuid:{uuid.uuid5(_PASSPORT_NAMESPACE, who.device)}"
    metadata["issueDate"] = _date(report.to_ms)
    for path in ("metadata.passportIdentifier", "metadata.issueDate"):
        if path in undeclared:
            undeclared.remove(path)
    if who.made_at_ms is not None:
        passport["operation"]["manufacturer"]["manufacturingDate"] = _date(who.made_at_ms)
