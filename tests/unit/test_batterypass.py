"""Battery passport export: Tractus-X performance.dynamic records and longlist attributes."""

from __future__ import annotations

import json

import pytest

from ledger.batterypass import ASPECT_MODEL, battery_pass_dynamic
from ledger.report import ConditionReport, compute_report
from tests.support.bundle_world import T0, pack_batch, pack_sample
from tests.support.paths import DATA
from tests.support.report_world import payloads, report_of, scenario

LONGLIST = DATA / "batterypass"


def test_dynamic_values_are_time_stamped_records() -> None:
    """Each exported value is a {value, time} record stamped with the period's end."""
    report = report_of(scenario(), to_ms=T0 + 8 * 60_000)
    export = battery_pass_dynamic(report)
    assert export["aspectModel"] == ASPECT_MODEL
    dynamic = export["performance"]["dynamic"]
    assert dynamic["capacity"]["fade"] == {"value": pytest.approx(5.1), "time":
                                           "2026-01-01T00:08:00.000Z"}  # fmt: skip
    assert dynamic["capacity"]["capacity"]["value"] == pytest.approx(280 * 0.949)
    assert dynamic["energy"]["soce"]["value"] == pytest.approx(100_000 / (280 * 620) * 100)
    assert dynamic["resistance"]["increase"]["pack"]["value"] == pytest.approx(10.0)
    assert dynamic["resistance"]["remaining"]["pack"]["value"] == pytest.approx(0.05)
    assert dynamic["fullCycles"]["value"] == pytest.approx(4803 / 280)


def test_longlist_attributes_use_longlist_names() -> None:
    """Attributes outside the aspect model carry the longlist's number and exact name."""
    export = battery_pass_dynamic(report_of(scenario()))
    longlist = json.loads((LONGLIST / "batterypass_longlist.json").read_text(encoding="utf-8"))
    names = {a["number"]: a["attribute"].strip() for a in longlist["attributes"]}
    assert set(export["longlist"]) == {"87", "88", "89", "90", "91", "92"}
    for number, item in export["longlist"].items():
        assert item["attribute"] == names[number]
    assert export["longlist"]["91"]["value"] == 1


def test_without_a_long_discharge_soce_falls_back_to_capacity_soh() -> None:
    """No energy segment: SOCE is the BMS capacity SoH, said so; energy.remaining is missing."""
    items = payloads([pack_batch(T0, [pack_sample()])])
    report: ConditionReport = compute_report(
        items, asset_id="pack-1", asset_kind="pack", from_ms=T0, to_ms=T0 + 1000
    )
    export = battery_pass_dynamic(report)
    dynamic = export["performance"]["dynamic"]
    assert dynamic["energy"]["soce"]["value"] == pytest.approx(95.0)
    documents = {d["header"]: d["content"] for d in dynamic["performanceDocument"]}
    assert "stands in for energy" in documents["energy.soce"]
    assert "remaining" not in dynamic["energy"]
    assert "energy.remaining" in export["missing"]
