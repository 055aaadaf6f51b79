"""The condition report: figures checked against values computed by hand on small inputs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.report import ConditionReport, ReportParams, compute_report
from ledger.report.series import onsets, percentile
from ledger.report.text import render_text
from ledger.report.trend import MS_PER_YEAR, Line, NoTrend, fit_line
from ledger.telemetry import Event, TelemetryBatch
from tests.support.bundle_world import T0, bus_batch, bus_sample, pack_batch, pack_sample
from tests.support.report_world import MIN, payloads, report_of, scenario


def value(report: ConditionReport, key: str) -> Any:
    """The value of figure ``key``."""
    return report.figure(key).value


def test_capacity_and_energy_figures() -> None:
    """Rated capacity, usable energy, energy SoH and cycles follow the documented formulas."""
    report = report_of(scenario())
    assert value(report, "rated_capacity") == pytest.approx(266.0 / 0.95)  # 280 Ah
    assert value(report, "usable_energy") == pytest.approx(30.0 / 0.3)  # 30 kWh over 30 % SoC
    assert value(report, "soh_energy") == pytest.approx(100_000 / (280 * 620) * 100)
    assert value(report, "equivalent_full_cycles") == pytest.approx(3 / 280)
    assert value(report, "equivalent_full_cycles_lifetime") == pytest.approx(4803 / 280)
    assert value(report, "energy_discharged") == pytest.approx(30.0)
    assert value(report, "soh_capacity") == pytest.approx(94.9)
    assert value(report, "resistance_growth") == pytest.approx(10.0)
    assert value(report, "r0") == pytest.approx(50.0)


def test_rated_values_from_the_passport_are_used() -> None:
    """Given rated capacity and energy replace the BMS-implied ones."""
    report = report_of(scenario(), rated_capacity_ah=300.0, rated_energy_wh=200_000.0)
    assert value(report, "rated_capacity") == 300.0
    assert value(report, "soh_energy") == pytest.approx(50.0)
    assert "battery passport" in report.figure("soh_energy").method


def test_usage_figures() -> None:
    """Fast-charge share, peak C-rates and active hours."""
    report = report_of(scenario())
    # charge put in: 560 A x 2 min (>= 1 C) and 140 A x 2 min
    assert value(report, "fast_charge_share") == pytest.approx(560 / (560 + 140) * 100)
    assert value(report, "peak_charge_c_rate") == pytest.approx(2.0)
    assert value(report, "peak_discharge_c_rate") == pytest.approx(0.5)
    assert value(report, "pack_active_hours") == pytest.approx(8 / 60)


def test_abuse_figures() -> None:
    """Temperature minutes, cell spread, insulation and limit events."""
    report = report_of(scenario())
    assert value(report, "minutes_above_temp") == pytest.approx(2.0)
    assert value(report, "minutes_charging_above_temp") == pytest.approx(2.0)
    assert value(report, "minutes_below_temp") == pytest.approx(2.0)
    assert value(report, "minutes_charging_below_temp") == pytest.approx(2.0)
    assert value(report, "cell_spread_max") == pytest.approx(900.0)
    assert value(report, "insulation_min") == pytest.approx(100.0)
    assert value(report, "insulation_min_time") == T0 + 7 * MIN
    assert value(report, "deep_discharge_events") == 1
    assert value(report, "overcharge_events") == 1
    assert report.alarms_by_level == ((1, 0), (2, 1), (3, 1), (4, 0))


def test_soc_histogram() -> None:
    """Hours per 10 % SoC bin."""
    report = report_of(scenario())
    hours = {round(b.low): b.hours for b in report.soc_histogram if b.hours}
    assert hours == pytest.approx({50: 2 / 60, 60: 4 / 60, 70: 1 / 60, 80: 1 / 60})


def declining(minutes: int = 10, *, step: float = 0.001) -> list[TelemetryBatch]:
    """One 3-sample message a minute whose capacity SoH falls by ``step`` per message."""
    return [
        pack_batch(T0 + k * MIN, [pack_sample(soh_capacity=0.95 - k * step)] * 3, dt_ms=1000)
        for k in range(minutes)
    ]


def test_capacity_trend_projects_end_of_life() -> None:
    """A falling capacity SoH yields a negative trend with its interval and projected dates."""
    report = report_of(declining(), to_ms=T0 + 10 * MIN)
    trend = report.figure("soh_capacity_trend")
    assert isinstance(trend.value, float)
    assert trend.value < 0
    assert trend.interval is not None
    low, high = trend.interval
    assert isinstance(low, float)
    assert isinstance(high, float)
    assert low < trend.value < high < 0
    # -0.1 point per minute from 95 %: 80 % after 150 minutes, 70 % after 250, same day
    assert value(report, "soh_capacity_80_date") == "2026-01-01"
    assert value(report, "soh_capacity_70_date") == "2026-01-01"
    # the same line, judged after the period it reaches 80 % in, projects nothing
    late = report_of(declining())
    assert value(late, "soh_capacity_80_date") is None
    assert "by the end of the period" in str(late.figure("soh_capacity_80_date").reason)


def test_a_step_within_the_resolution_is_no_trend() -> None:
    """Three messages with one 0.1-point step over 8 minutes are not a significant decline."""
    report = report_of(scenario(), to_ms=T0 + 8 * MIN)
    trend = report.figure("soh_capacity_trend")
    assert trend.interval is not None
    low, high = trend.interval
    assert isinstance(low, float)
    assert isinstance(high, float)
    assert low < 0 < high
    date = report.figure("soh_capacity_80_date")
    assert date.value is None
    assert str(date.reason).startswith("no trend: the slope")


def test_least_squares_on_an_exact_line() -> None:
    """A line losing 10 points a year from 100 % reaches 80 % after two years."""
    year = round(MS_PER_YEAR)
    line = fit_line([(0, 1.0), (year, 0.9), (2 * year, 0.8)], resolution=1e-4)
    assert isinstance(line, Line)
    assert line.slope == pytest.approx(-0.1)
    assert line.significant
    assert line.reaches(0.8, line.slope) == pytest.approx(2 * year, abs=1)
    assert line.reaches(0.8, 0.1) is None


def test_too_few_points_or_too_short_a_window_is_no_trend() -> None:
    """Two points, one time, or a window under the minimum span give a reason, not a line."""
    for points in ([(0, 1.0), (1000, 0.9)], [(5, 1.0), (5, 0.9), (5, 0.8)]):
        line = fit_line(points, resolution=1e-4)
        assert isinstance(line, NoTrend)
        assert line.reason.startswith("not enough data")
    short = fit_line([(0, 1.0), (1, 0.9), (2, 0.8)], resolution=1e-4, min_span_ms=60_000)
    assert isinstance(short, NoTrend)
    assert "span 0.002 s" in short.reason


def test_rising_trend_projects_nothing() -> None:
    """A significantly rising trend never reaches a threshold, and says so."""
    rising = declining(step=-0.001)
    date = report_of(rising, to_ms=T0 + 10 * MIN).figure("soh_capacity_80_date")
    assert date.value is None
    assert date.reason == "the trend is rising, not falling"


def test_round_trip_efficiency_is_bounded_by_the_unknown_delivery_soc() -> None:
    """e_out / e_in is reported only once the delivery SoC cannot move it by 5 points."""
    young = report_of(scenario()).figure("round_trip_efficiency_lifetime")
    assert young.value is None
    assert str(young.reason).startswith("not enough data")
    # 100 full charges of a 280 Ah x 620 V pack at 95 %
    old_batch = pack_batch(T0, [pack_sample(energy_in_wh=17_360_000.0, energy_out_wh=16_492_000.0)])
    old = report_of([old_batch]).figure("round_trip_efficiency_lifetime")
    assert old.value == pytest.approx(95.0)
    assert old.interval is not None
    low, high = old.interval
    assert isinstance(low, float)
    assert isinstance(high, float)
    assert low < 95.0 < high
    assert high - low <= 5.0


def test_onsets_and_percentile() -> None:
    """Runs count once; the nearest-rank percentile picks an observed value."""
    assert onsets([False, True, True, False, True]) == 2
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.95) == 4.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
    assert percentile([], 0.5) is None


def test_bus_distance_and_hours() -> None:
    """Distance from the odometer and hours with the vehicle started."""
    samples = [bus_sample(odometer_m=100_000.0 + 500 * k, vehicle_state=1 if k < 3 else 2)
               for k in range(4)]  # fmt: skip
    report = compute_report(
        payloads([bus_batch(T0, samples[:2]), bus_batch(T0 + 2000, samples[2:])], dev="bus-1"),
        asset_id="bus-1", asset_kind="bus", from_ms=T0, to_ms=T0 + 10_000,
    )  # fmt: skip
    assert value(report, "distance") == pytest.approx(1.5)
    assert value(report, "operating_hours") == pytest.approx(3 / 3600)
    assert report.soc_histogram == ()


def test_completeness_lists_missing_seqs() -> None:
    """Seqs 1, 2 and 5 received: 3..4 are missing out of 5 expected."""
    batches = [pack_batch(T0 + k * 1000, [pack_sample()]) for k in range(3)]
    items = payloads(batches)
    items[2]["seq"] = 5
    report = compute_report(items, asset_id="pack-1", asset_kind="pack", from_ms=T0,
                            to_ms=T0 + 5000)  # fmt: skip
    (device,) = report.completeness
    assert (device.received, device.expected, device.missing) == (3, 5, ((3, 4),))


def test_pack_swaps_and_recalibrations() -> None:
    """Host changes of a pack and SoC recalibrations are listed and counted."""
    events = (Event(kind="host", at=0, data={"host": "bus-2"}),
              Event(kind="recal", at=0, data={"from": 500, "to": 520, "why": "rest"}))  # fmt: skip
    report = report_of([pack_batch(T0, [pack_sample()], events=events)])
    (swap,) = report.pack_swaps
    assert (swap.device, swap.pack_in, swap.t_ms) == ("pack-1", "bus-2", T0)
    assert value(report, "soc_recalibrations") == 1


def test_json_is_deterministic_and_complete() -> None:
    """Equal inputs give byte-equal JSON; every figure has unit, method, and a value or a reason."""
    first = report_of(scenario()).to_json()
    assert first == report_of(list(reversed(scenario()))).to_json()
    doc = json.loads(first)
    assert doc["format"] == "voltproof-condition-report/1"
    for figure in doc["figures"].values():
        assert {"value", "unit", "method"} <= set(figure) <= {
            "value", "unit", "method", "interval", "reason"
        }  # fmt: skip
        assert figure["method"]
        assert (figure["value"] is None) == ("reason" in figure)


def test_text_summary_names_figures() -> None:
    """The readable summary lists figures, histogram, alarms and completeness."""
    text = render_text(report_of(scenario()))
    assert "soh_energy" in text
    assert "SoC residence" in text
    assert "level 3: 1" in text
    assert "pack-1: 3/3 messages" in text


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"rated_capacity_ah": 0.0}, "rated_capacity_ah must be positive"),
        ({"temp_lower_c": 50.0}, "temp_lower_c must be below"),
        ({"min_segment_soc": 0.0}, "min_segment_soc must be in"),
        ({"soc_bins": 0}, "soc_bins must be 1..100"),
    ],
)
def test_bad_params_are_refused(params: dict[str, Any], message: str) -> None:
    """Report parameters are validated."""
    with pytest.raises(ValueError, match=message):
        ReportParams(**params)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(0, 1).map(lambda s: round(s, 3)), min_size=1, max_size=20))
def test_histogram_covers_all_time(socs: list[float]) -> None:
    """The SoC histogram's hours add up to the time the samples stand for."""
    batch = pack_batch(T0, [pack_sample(soc=s) for s in socs])
    report = report_of([batch])
    assert sum(b.hours for b in report.soc_histogram) == pytest.approx(len(socs) / 3600)


def test_bus_report_uses_one_pack() -> None:
    """For a bus, pack figures describe the pack with the most samples, never a mix of packs."""
    big = payloads([pack_batch(T0, [pack_sample(ah_out=100.0)] * 3)], dev="pack-a")
    small = payloads([pack_batch(T0, [pack_sample(ah_out=9000.0)])], dev="pack-b")
    bus = payloads([bus_batch(T0, [bus_sample()])], dev="bus-1")
    report = compute_report([*small, *bus, *big], asset_id="bus-1", asset_kind="bus",
                            from_ms=T0, to_ms=T0 + 5000)  # fmt: skip
    assert value(report, "pack") == "pack-a"
    assert value(report, "capacity_throughput_lifetime") == pytest.approx(100.0)
    assert value(report, "samples") == 4


def test_predecessors_counters_grow_per_device() -> None:
    """A pack with a predecessor: its figures read both devices' samples in time order, and a
    counter's growth is each device's last - first, summed (the successor counts from 0)."""
    old = [pack_sample(energy_out_wh=950_000.0 + k * 10_000, ah_out=4800.0 + k, soc=0.8 - k / 10)
           for k in range(4)]  # fmt: skip
    new = [pack_sample(energy_out_wh=k * 2_500.0, ah_out=k * 2.0, soc=0.9, soh_capacity=0.99)
           for k in range(3)]  # fmt: skip
    given_ = payloads([pack_batch(T0, old, dt_ms=MIN)], dev="pack-1") + payloads(
        [pack_batch(T0 + 10 * MIN, new, dt_ms=MIN)], dev="pack-2"
    )
    both = compute_report(given_, asset_id="pack-2", asset_kind="pack", from_ms=T0,
                          to_ms=T0 + 86_400_000, predecessors=("pack-1",))  # fmt: skip
    alone = compute_report(given_, asset_id="pack-2", asset_kind="pack", from_ms=T0,
                           to_ms=T0 + 86_400_000)  # fmt: skip
    figures = {f.key: f.value for f in both.figures}
    assert figures["samples"] == 7
    assert figures["energy_discharged"] == pytest.approx((30_000 + 5_000) / 1000)
    assert figures["capacity_throughput_lifetime"] == 4.0  # the successor's last sample
    assert figures["soh_capacity"] == pytest.approx(99.0)
    solo = {f.key: f.value for f in alone.figures}
    assert solo["samples"] == 3
    assert solo["energy_discharged"] == pytest.approx(5.0)
