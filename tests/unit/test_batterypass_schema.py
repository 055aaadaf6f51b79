"""Battery passport export validated against the Tractus-X battery_pass 6.1.0 JSON schema."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from ledger.batterypass import (
    PassportSettingError,
    battery_pass_dynamic,
    battery_passport,
    iso_time,
    parse_passport_setting,
)
from ledger.report import ConditionReport
from tests.support.bundle_world import T0, pack_batch, pack_sample
from tests.support.paths import DATA as TEST_DATA
from tests.support.report_world import flat_series_that_crashed, report_of, scenario
from voltproof.demo_setup import demo_passport_setting

DATA = TEST_DATA / "batterypass"
SCHEMA: dict[str, Any] = json.loads(
    (DATA / "tractusx_battery_pass_6.1.0.schema.json").read_text(encoding="utf-8")
)
STATIC: dict[str, Any] = json.loads(
    (DATA / "batterypass_static_sim_pack.json").read_text(encoding="utf-8")
)
RATED = STATIC["performance"]["rated"]
MIN = 60_000


def dynamic_schema() -> dict[str, Any]:
    """The schema of ``performance.dynamic`` alone (the model's DynamicPerformance)."""
    ref = SCHEMA["components"]["schemas"]["PerformanceCharacteristic"]["properties"]["dynamic"]
    return {"$schema": SCHEMA["$schema"], "components": SCHEMA["components"], **ref}


def errors(instance: Any, schema: dict[str, Any]) -> list[str]:
    """Every validation error as ``path: message``."""
    validator = jsonschema.Draft4Validator(schema)
    return sorted(
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(instance)
    )


def packs() -> dict[str, ConditionReport]:
    """Reports of several packs: abuse scenario, flat trend, one sample, a long discharge."""
    long_discharge = [
        pack_batch(T0 + k * MIN, [pack_sample(current_a=140.0, soc=0.9 - 0.05 * k,
                                              energy_out_wh=950_000.0 + 14_000 * k)])
        for k in range(10)
    ]  # fmt: skip
    return {
        "scenario": report_of(scenario(), to_ms=T0 + 8 * MIN),
        "flat-trend": report_of(flat_series_that_crashed(), to_ms=T0 + 300 * MIN),
        "one-sample": report_of([pack_batch(T0, [pack_sample()])], to_ms=T0 + 1000),
        "long-discharge": report_of(long_discharge, to_ms=T0 + 10 * MIN),
    }


def test_the_schema_is_the_tractus_x_model() -> None:
    """The vendored schema is the generated schema of battery_pass 6.1.0."""
    assert SCHEMA["x-samm-aspect-model-urn"].startswith(
        "urn:samm:io.catenax.battery.battery_pass:6.1.0"
    )
    jsonschema.Draft4Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("name", sorted(packs()))
def test_dynamic_block_is_valid_with_rated_values(name: str) -> None:
    """With the manufacturer's rated values every pack's dynamic block validates."""
    export = battery_pass_dynamic(packs()[name], rated=RATED)
    assert export["complete"], export["missing"]
    assert errors(export["performance"]["dynamic"], dynamic_schema()) == []


SETTINGS: dict[str, dict[str, Any] | None] = {
    "manufacturer's full static passport": STATIC,
    "the demo's setting (what the simulator models)": demo_passport_setting(),
    "chemistry only": {"identification": {"chemistry": "LFP"}},
    "no setting": None,
}


@pytest.mark.parametrize("setting", sorted(SETTINGS))
@pytest.mark.parametrize("name", sorted(packs()))
def test_complete_passport_is_valid(name: str, setting: str) -> None:
    """Any passport setting, down to none at all, plus the data: a valid 6.1.0 document."""
    assert errors(battery_passport(packs()[name], static=SETTINGS[setting]), SCHEMA) == []


def test_undeclared_values_are_named_not_passed_off() -> None:
    """Without a setting every placeholder is listed; the setting's values are used as given."""
    bare = battery_passport(packs()["scenario"])
    documents = {d["header"]: d["content"] for d in
                 bare["performance"]["dynamic"]["performanceDocument"]}  # fmt: skip
    undeclared = documents["undeclared values"]
    for path in ("identification.chemistry", "performance.rated.capacity.value",
                 "metadata.economicOperatorId", "materials.active.lithium.recycled"):  # fmt: skip
        assert path in undeclared
    assert "metadata.passportIdentifier" not in undeclared  # one per pack, from its id
    assert bare["identification"]["identification"]["codes"] == [
        {"key": "voltproof device id", "value": "pack-1"}
    ]
    demo = battery_passport(packs()["scenario"], static=demo_passport_setting())
    demo_docs = {d["header"]: d["content"] for d in
                 demo["performance"]["dynamic"]["performanceDocument"]}  # fmt: skip
    assert demo["identification"]["chemistry"] == "LFP"
    assert demo["performance"]["rated"]["capacity"]["value"] == 560.0
    assert "performance.rated.capacity.value" not in demo_docs["undeclared values"]
    assert "performance.rated.power.value" in demo_docs["undeclared values"]


def test_negative_events_carry_the_longlist_attributes() -> None:
    """Time at extreme temperatures and deep-discharge events go to negativeEvents, signed."""
    events = battery_passport(packs()["scenario"])["performance"]["dynamic"]["negativeEvents"]
    headers = [e["header"] for e in events]
    assert headers[0] == (
        "BatteryPass longlist 87: Time spent in extreme temperatures above boundary"
    )
    assert len(headers) == 6
    deep = next(e for e in events if e["header"].startswith("BatteryPass longlist 91"))
    assert deep["content"].startswith("1 events up to 2026-01-01T00:08:00.000Z")


def test_unknown_dynamic_values_are_declared_placeholders() -> None:
    """A value neither the data nor a rating gives is 0 with its reason, never a number made up."""
    dynamic = battery_passport(packs()["scenario"])["performance"]["dynamic"]
    documents = {d["header"]: d["content"] for d in dynamic["performanceDocument"]}
    assert dynamic["selfDischargingRate"] == 0
    assert dynamic["power"]["remaining"]["value"] == 0
    assert documents["selfDischargingRate"].startswith("unknown: not measured and no rated value")
    assert documents["power.remaining"].endswith("not a measurement")
    # Values the signed data gives are still there, with their source.
    assert dynamic["stateOfCharge"]["value"] == pytest.approx(60.0)
    assert "device-signed" in documents["stateOfCharge"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]", "must be a JSON object"),
        ("{", "is not JSON"),
        ('{"identfication": {}}', "unknown section(s) ['identfication']"),
        ('{"metadata": 3}', "metadata must be an object"),
        ('{"performance": {"dynamic": {}}}', "performance.dynamic is computed"),
    ],
)
def test_bad_passport_setting_is_refused(text: str, message: str) -> None:
    """A setting the passport cannot use is refused with what is wrong."""
    with pytest.raises(PassportSettingError) as raised:
        parse_passport_setting(text)
    assert message in str(raised.value)


def test_every_value_states_its_source() -> None:
    """Each exported value has a provenance document; rated-only values say they are rated."""
    dynamic = battery_pass_dynamic(packs()["scenario"], rated=RATED)["performance"]["dynamic"]
    documents = {d["header"]: d["content"] for d in dynamic["performanceDocument"]}
    assert set(documents) >= {
        "stateOfCharge", "selfDischargingRate", "power.remaining", "power.fade",
        "roundTripEfficiency.remaining", "roundTripEfficiency.fade", "energy.soce",
        "energy.remaining", "resistance.increase.cell", "resistance.remaining.cell",
    }  # fmt: skip
    assert documents["selfDischargingRate"].startswith("not measured")
    assert "device-signed" in documents["stateOfCharge"]
    assert dynamic["selfDischargingRate"] == RATED["selfDischargingRate"]


def test_without_rated_values_nothing_is_invented() -> None:
    """Values that need a rated reference are named in ``missing``, not filled in."""
    export = battery_pass_dynamic(packs()["scenario"])
    assert not export["complete"]
    assert set(export["missing"]) == {
        "selfDischargingRate", "power.remaining", "roundTripEfficiency.remaining",
        "roundTripEfficiency.fade", "resistance.remaining.cell",
    }  # fmt: skip
    assert "selfDischargingRate" not in export["performance"]["dynamic"]


def test_time_past_year_9999_is_still_iso_8601() -> None:
    """Message times go to 2**63 ms; their record times keep the model's dateTime pattern."""
    assert iso_time(0) == "1970-01-01T00:00:00.000Z"
    assert iso_time(T0 + 8 * MIN) == "2026-01-01T00:08:00.000Z"
    assert iso_time(253_402_300_800_000) == "10000-01-01T00:00:00.000Z"
    assert iso_time(2**63 - 1).startswith("292278994-08-17T07:12:55.807")


def test_round_trip_efficiency_needs_enough_charged_energy() -> None:
    """Young packs get the rated value, declared; a pack with 100 full charges gets e_out/e_in."""
    young = battery_pass_dynamic(packs()["scenario"], rated=RATED)["performance"]["dynamic"]
    documents = {d["header"]: d["content"] for d in young["performanceDocument"]}
    assert (
        young["roundTripEfficiency"]["remaining"]["value"]
        == RATED["roundTripEfficiency"]["initial"]
    )
    assert documents["roundTripEfficiency.remaining"].startswith("not measured yet")
    old = [pack_batch(T0, [pack_sample(energy_in_wh=17_360_000.0, energy_out_wh=16_492_000.0)])]
    dynamic = battery_pass_dynamic(report_of(old, to_ms=T0 + 1000), rated=RATED)
    remaining = dynamic["performance"]["dynamic"]["roundTripEfficiency"]["remaining"]
    assert remaining["value"] == pytest.approx(95.0)
