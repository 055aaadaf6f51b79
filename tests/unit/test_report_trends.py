"""Trends and projections of the condition report: no trend is "not enough data", never a crash.

Strategies live here rather than in ``tests/strategies.py`` because they serve only this
module and that file is being moved in another branch.
"""

from __future__ import annotations

import json
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.batterypass import battery_pass_dynamic
from ledger.report.text import render_text
from ledger.report.trend import HORIZON_YEARS, MS_PER_YEAR, Line, fit_line, trend_figures
from ledger.telemetry import MAX_DT_MS, MIN_DT_MS, U63, TelemetryBatch
from tests.support.bundle_world import T0, pack_batch, pack_sample
from tests.support.report_world import flat_series_that_crashed, report_of

MIN = 60_000
SOH_STEPS = 10_000  # soh_c travels as an integer count of 0.01 %


def test_flat_series_regression() -> None:
    """The pack that crashed `voltproof report` gets "no trend" with a reason, not an error."""
    report = report_of(flat_series_that_crashed(), to_ms=T0 + 300 * MIN)
    trend = report.figure("soh_capacity_trend")
    assert trend.interval is not None
    low, high = trend.interval
    assert isinstance(low, float)
    assert isinstance(high, float)
    assert low < 0 < high
    assert trend.method.endswith("not distinguishable from zero")
    for key in ("soh_capacity_80_date", "soh_capacity_70_date"):
        figure = report.figure(key)
        assert figure.value is None
        assert str(figure.reason).startswith("no trend: the slope")
    json.loads(report.to_json())
    render_text(report)
    battery_pass_dynamic(report)


def test_projection_beyond_the_horizon_is_not_dated() -> None:
    """A significant but slow decline whose 80 % date is past the horizon says so."""
    year = round(MS_PER_YEAR)
    points = [(k * year // 4, 0.95 - k * 1e-3) for k in range(12)]  # -0.4 points a year
    figures = trend_figures("x", "x", points, end_ms=points[-1][0], resolution=1e-4,
                            min_span_ms=0)  # fmt: skip
    trend, d80, _ = figures
    assert isinstance(trend.value, float)
    assert trend.value < 0
    assert d80.value is None
    assert d80.reason == f"beyond the {HORIZON_YEARS}-year projection horizon"


def test_projection_within_the_horizon_has_an_interval() -> None:
    """A steady decline of 2 points a year from 95 % reaches 80 % 7.5 years after its start."""
    year = round(MS_PER_YEAR)
    points = [(k * year // 12, 0.95 - k * 0.02 / 12) for k in range(13)]
    _, d80, _ = trend_figures("x", "x", points, end_ms=points[-1][0], resolution=1e-4,
                              min_span_ms=0)  # fmt: skip
    assert isinstance(d80.value, str)
    expected = date(1970, 1, 1).toordinal() + round(7.5 * 365.25)
    assert abs(date.fromisoformat(d80.value).toordinal() - expected) <= 1
    assert d80.interval is not None
    early, late = d80.interval
    assert isinstance(early, str)
    assert isinstance(late, str)
    assert early <= d80.value <= late


# --- properties: every series gives figures, never an exception ---------------------------

times = st.integers(min_value=0, max_value=U63)
soh_values = st.integers(min_value=0, max_value=12_000).map(lambda raw: raw / SOH_STEPS)


@st.composite
def series(draw: st.DrawFn) -> list[tuple[int, float]]:
    """Random and degenerate (time, SoH) series: flat, single points, steps, noise, huge spans."""
    kind = draw(st.sampled_from(["random", "flat", "step", "line", "clustered"]))
    n = draw(st.integers(min_value=0, max_value=40))
    ts = sorted(draw(st.lists(times, min_size=n, max_size=n)))
    if kind == "clustered":  # all points within a few ms somewhere on the time axis
        base = draw(times)
        ts = sorted(min(U63, base + draw(st.integers(0, 5))) for _ in range(n))
    if kind == "flat":
        value = draw(soh_values)
        return [(t, value) for t in ts]
    if kind == "step":
        low, high = draw(soh_values), draw(soh_values)
        return [(t, high if k < n // 2 else low) for k, t in enumerate(ts)]
    if kind == "line":
        start = draw(soh_values)
        step = draw(st.integers(-50, 50))
        return [(t, min(1.2, max(0.0, round(start * SOH_STEPS + k * step) / SOH_STEPS)))
                for k, t in enumerate(ts)]  # fmt: skip
    return [(t, draw(soh_values)) for t in ts]


@given(points=series(), end_ms=times)
@settings(max_examples=400, deadline=None)
def test_trend_figures_never_raise(points: list[tuple[int, float]], end_ms: int) -> None:
    """Every series gives a trend and two dates, each a value or a reason, dates in range."""
    figures = trend_figures("soh", "SoH", points, end_ms=end_ms, resolution=1e-4,
                            min_span_ms=60_000)  # fmt: skip
    assert [f.key for f in figures] == ["soh_trend", "soh_80_date", "soh_70_date"]
    for figure in figures:
        assert (figure.value is None) == (figure.reason is not None)
    for figure in figures[1:]:
        if figure.value is not None:
            assert isinstance(figure.value, str)
            assert (
                date.fromisoformat(figure.value).year
                <= date.fromtimestamp(0).year + int(end_ms / MS_PER_YEAR) + HORIZON_YEARS + 1
            )


@given(points=series())
@settings(max_examples=200, deadline=None)
def test_a_fitted_slope_carries_its_uncertainty(points: list[tuple[int, float]]) -> None:
    """A line has a positive finite half-width never below the resolution's share."""
    line = fit_line(points, resolution=1e-4)
    if isinstance(line, Line):
        assert line.half_width > 0


@st.composite
def pack_histories(draw: st.DrawFn) -> tuple[list[TelemetryBatch], int]:
    """Pack messages with random times (gaps, huge spans), sample counts and SoH values."""
    n = draw(st.integers(min_value=1, max_value=12))
    starts = sorted(draw(st.lists(st.integers(0, U63 - 600 * MAX_DT_MS), min_size=n,
                                  max_size=n)))  # fmt: skip
    flat = draw(st.booleans())
    batches = []
    for start in starts:
        dt = draw(st.integers(MIN_DT_MS, MAX_DT_MS))
        count = draw(st.integers(1, 8))
        soh = 0.949 if flat else draw(soh_values)
        batches.append(pack_batch(start, [pack_sample(soh_capacity=soh)] * count, dt_ms=dt))
    return batches, draw(times)


@given(history=pack_histories())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_report_never_raises(history: tuple[list[TelemetryBatch], int]) -> None:
    """Report, JSON and text exist for any pack history within the message bounds."""
    batches, to_ms = history
    report = report_of(batches, to_ms=to_ms)
    doc = json.loads(report.to_json())
    for figure in doc["figures"].values():
        assert (figure["value"] is None) == ("reason" in figure)
    render_text(report)
