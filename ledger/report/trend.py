"""State-of-health trends that say when there is no trend, and bounded projections.

A trend is an ordinary least-squares line ``y = mean_y + slope * (years - mean_x)`` through
``(Unix ms, value)`` points, with the slope's standard error and its 95 % confidence interval
(Student t, ``n - 2`` degrees of freedom). The standard error is never below what the
telemetry's resolution alone allows (quantisation noise ``q / sqrt(12)`` per point), so a
flat series of quantised values (whose least-squares slope is float noise, e.g. 1e-25 %/year)
is "no trend", not a decline that reaches 80 % in a billion years.

A projected date exists only when the trend is a significant decline (the interval excludes
zero) and the date falls within :data:`HORIZON_YEARS` after the period's end; otherwise the
figure's value is ``None`` and its ``reason`` says why. ``docs/condition-report.md``,
"Trends and projections", documents the method.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from ..telemetry import FIELDS
from .model import Figure

MS_PER_YEAR: Final = 365.25 * 86_400_000
HORIZON_YEARS: Final = 30
"""Projections further than this after the period's end are not reported."""
MIN_POINTS: Final = 3
"""A slope's standard error needs at least one residual degree of freedom."""

_T975: Final = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
"""Two-sided 95 % Student t quantiles for 1..30 degrees of freedom."""
_Z975: Final = 1.959964
_MIN_MS: Final = int(datetime(1, 1, 1, tzinfo=UTC).timestamp() * 1000)
_MAX_MS: Final = int(datetime(9999, 12, 31, tzinfo=UTC).timestamp() * 1000)


def pack_resolution(attr: str) -> float:
    """The wire resolution of pack attribute ``attr`` in memory units (e.g. 1e-4 for soh_c)."""
    spec = next(s for s in FIELDS["pack"] if s.attr == attr)
    return 1 / spec.per_unit


def t_quantile_975(dof: int) -> float:
    """The two-sided 95 % quantile of Student's t with ``dof`` degrees of freedom."""
    if dof < 1:
        raise ValueError(f"dof must be at least 1, got {dof}")
    if dof <= len(_T975):
        return _T975[dof - 1]
    z = _Z975  # Cornish-Fisher expansion, better than 1e-3 above 30 dof
    return z + (z**3 + z) / (4 * dof) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * dof**2)


@dataclass(frozen=True, slots=True, kw_only=True)
class Line:
    """A fitted line through its centroid, with the slope's 95 % half-width."""

    t0_ms: int
    mean_x: float
    mean_y: float
    slope: float
    half_width: float
    points: int

    @property
    def significant(self) -> bool:
        """True when the 95 % interval of the slope excludes zero."""
        return abs(self.slope) > self.half_width

    def reaches(self, target: float, slope: float) -> float | None:
        """Unix ms (float) when the line pivoted at its centroid with ``slope`` hits ``target``."""
        if slope >= 0 or not math.isfinite(slope):
            return None
        years = self.mean_x + (target - self.mean_y) / slope
        if not math.isfinite(years):
            return None
        return self.t0_ms + years * MS_PER_YEAR


@dataclass(frozen=True, slots=True, kw_only=True)
class NoTrend:
    """Why the points give no line."""

    reason: str


def fit_line(
    points: Sequence[tuple[int, float]], *, resolution: float, min_span_ms: int = 0
) -> Line | NoTrend:
    """The least-squares line through ``points``, or why there is none.

    ``resolution`` is the smallest step of the values (their quantisation); it floors the
    standard error. ``min_span_ms`` is the shortest time window a trend may come from.
    """
    times = sorted({t for t, _ in points})
    if len(points) < MIN_POINTS or len(times) < 2:
        return NoTrend(reason=f"not enough data: {len(points)} points at {len(times)} distinct "
                       f"times, a trend needs at least {MIN_POINTS} points at 2 times")  # fmt: skip
    span = times[-1] - times[0]
    if span < min_span_ms:
        return NoTrend(reason=f"not enough data: the points span {span / 1000:g} s, a trend "
                       f"needs at least {min_span_ms / 1000:g} s")  # fmt: skip
    t0 = times[0]
    xs = [(t - t0) / MS_PER_YEAR for t, _ in points]
    ys = [value for _, value in points]
    n = len(points)
    mean_x = math.fsum(xs) / n
    mean_y = math.fsum(ys) / n
    sxx = math.fsum((x - mean_x) ** 2 for x in xs)
    if not sxx > 0:
        return NoTrend(reason="not enough data: the times are too close to tell apart")
    slope = math.fsum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx
    rss = math.fsum((y - mean_y - slope * (x - mean_x)) ** 2 for x, y in zip(xs, ys, strict=True))
    se_fit = math.sqrt(rss / (n - 2) / sxx) if n > 2 else math.inf
    se_floor = resolution / math.sqrt(12) / math.sqrt(sxx)
    half_width = t_quantile_975(n - 2) * max(se_fit, se_floor)
    return Line(t0_ms=t0, mean_x=mean_x, mean_y=mean_y, slope=slope, half_width=half_width,
                points=n)  # fmt: skip


def calendar_date(t_ms: float | None) -> str | None:
    """``YYYY-MM-DD`` (UTC) of a Unix ms time; None outside the years 1..9999."""
    if t_ms is None or not math.isfinite(t_ms) or not _MIN_MS <= t_ms <= _MAX_MS:
        return None
    return datetime.fromtimestamp(int(t_ms) // 1000, tz=UTC).strftime("%Y-%m-%d")


def trend_figures(
    key: str,
    label: str,
    points: Sequence[tuple[int, float]],
    *,
    end_ms: int,
    resolution: float,
    min_span_ms: int,
    targets: Sequence[float] = (0.8, 0.7),
) -> list[Figure]:
    """``<key>_trend`` (%/year) and, per target, ``<key>_<target>_date`` figures.

    Values are fractions (1 = 100 %); ``targets`` may be empty (a trend without projections).
    """
    line = fit_line(points, resolution=resolution, min_span_ms=min_span_ms)
    how = (
        f"{label}: ordinary least squares over {len(points)} points (one per message/segment) "
        f"against time; interval: 95 % confidence of the slope (Student t, standard error "
        f"at least the {resolution:g} resolution / sqrt(12))"
    )
    if isinstance(line, NoTrend):
        figures = [Figure(key=f"{key}_trend", value=None, unit="%/year", method=how,
                          reason=line.reason)]  # fmt: skip
    else:
        low, high = (line.slope - line.half_width) * 100, (line.slope + line.half_width) * 100
        verdict = "" if line.significant else "; not distinguishable from zero"
        figures = [Figure(key=f"{key}_trend", value=line.slope * 100, unit="%/year",
                          method=how + verdict, interval=(low, high))]  # fmt: skip
    for target in targets:
        figures.append(_date_figure(key, label, line, target, end_ms))
    return figures


def _date_figure(key: str, label: str, line: Line | NoTrend, target: float, end_ms: int) -> Figure:
    name = f"{key}_{round(target * 100)}_date"
    method = (f"date the {label} trend line reaches {target:.0%}, if it is a significant decline "
              f"and the date is within {HORIZON_YEARS} years after the period; interval: the "
              f"dates for the slope's 95 % bounds")  # fmt: skip
    horizon_ms = end_ms + HORIZON_YEARS * MS_PER_YEAR

    def within(t_ms: float | None) -> str | None:
        return calendar_date(t_ms) if t_ms is not None and end_ms < t_ms <= horizon_ms else None

    if isinstance(line, NoTrend):
        return Figure(key=name, value=None, unit="date", method=method, reason=line.reason)
    if not line.significant:
        reason = (f"no trend: the slope {line.slope * 100:.3g} %/year is within its 95 % "
                  f"uncertainty (+-{line.half_width * 100:.3g} %/year) of zero")  # fmt: skip
        return Figure(key=name, value=None, unit="date", method=method, reason=reason)
    if line.slope > 0:
        return Figure(key=name, value=None, unit="date", method=method,
                      reason="the trend is rising, not falling")  # fmt: skip
    when = line.reaches(target, line.slope)
    early = line.reaches(target, line.slope - line.half_width)
    late = line.reaches(target, line.slope + line.half_width)
    interval = (within(early), within(late))
    if when is None or when <= end_ms:
        reason = f"the trend line is at or below {target:.0%} by the end of the period"
    elif when > horizon_ms:
        reason = f"beyond the {HORIZON_YEARS}-year projection horizon"
    elif calendar_date(when) is None:
        reason = "the date is outside the calendar (years 1..9999)"
    else:
        return Figure(key=name, value=calendar_date(when), unit="date", method=method,
                      interval=interval)  # fmt: skip
    return Figure(key=name, value=None, unit="date", method=method, reason=reason)
