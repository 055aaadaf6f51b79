"""Time series arithmetic for the condition report: samples in time order, trends, onsets.

Pure and small on purpose: every function is one formula of ``docs/condition-report.md``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Generic, TypeVar

from ..telemetry import BusSample, Event, PackSample, TelemetryBatch

MS_PER_YEAR: Final = 365.25 * 86_400_000
S = TypeVar("S", PackSample, BusSample)


@dataclass(frozen=True, slots=True, kw_only=True)
class Timed(Generic[S]):
    """A sample with its time (Unix ms) and the time it stands for (its batch's ``dt``, s)."""

    t_ms: int
    seconds: float
    sample: S


@dataclass(frozen=True, slots=True, kw_only=True)
class Trend:
    """A least-squares line ``value = intercept + slope * years since t0_ms``."""

    t0_ms: int
    intercept: float
    slope_per_year: float
    points: int

    def value_at(self, t_ms: int) -> float:
        """The line's value at ``t_ms``."""
        return self.intercept + self.slope_per_year * (t_ms - self.t0_ms) / MS_PER_YEAR

    def reaches(self, target: float, *, after_ms: int) -> int | None:
        """When a falling line reaches ``target`` (Unix ms), if after ``after_ms``; else None."""
        if self.slope_per_year >= 0:
            return None
        years = (target - self.intercept) / self.slope_per_year
        t_ms = self.t0_ms + round(years * MS_PER_YEAR)
        return t_ms if t_ms > after_ms else None


def samples_of(batches: Iterable[TelemetryBatch], kind: type[S]) -> list[Timed[S]]:
    """Every sample of ``kind`` with its time, in time order."""
    timed = [
        Timed(t_ms=batch.t_ms + k * batch.dt_ms, seconds=batch.dt_ms / 1000, sample=sample)
        for batch in batches
        for k, sample in enumerate(batch.samples)
        if isinstance(sample, kind)
    ]
    timed.sort(key=lambda item: item.t_ms)
    return timed


def events_of(batches: Iterable[TelemetryBatch]) -> list[tuple[int, str, Event]]:
    """Every event as ``(Unix ms, device kind, event)`` in time order."""
    found: list[tuple[int, str, Event]] = [
        (batch.t_ms + event.at * batch.dt_ms, batch.kind, event)
        for batch in batches
        for event in batch.events
    ]
    found.sort(key=lambda item: (item[0], item[1], item[2].kind))
    return found


def least_squares(points: Sequence[tuple[int, float]]) -> Trend | None:
    """The least-squares line through ``(Unix ms, value)`` points; None under two distinct times."""
    if len({t for t, _ in points}) < 2:
        return None
    t0 = points[0][0]
    xs = [(t - t0) / MS_PER_YEAR for t, _ in points]
    ys = [value for _, value in points]
    mean_x = sum(xs) / len(xs)
    mean_y = sum(ys) / len(ys)
    sxx = sum((x - mean_x) ** 2 for x in xs)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    return Trend(t0_ms=t0, intercept=mean_y - slope * mean_x, slope_per_year=slope,
                 points=len(points))  # fmt: skip


def onsets(flags: Iterable[bool]) -> int:
    """How many times a condition becomes true (a run of true samples counts once)."""
    count = 0
    before = False
    for flag in flags:
        if flag and not before:
            count += 1
        before = flag
    return count


def iso_date(t_ms: int | None) -> str | None:
    """``YYYY-MM-DD`` (UTC) of a Unix ms time, or None."""
    if t_ms is None:
        return None
    return datetime.fromtimestamp(t_ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def percentile(values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile (``share`` in 0..1) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = min(max(1, math.ceil(share * len(ordered))), len(ordered))
    return ordered[rank - 1]


def per_message_means(batches: Iterable[TelemetryBatch], attr: str) -> list[tuple[int, float]]:
    """``(midpoint Unix ms, mean of attr)`` per pack batch: the trend fits one point per message."""
    points = []
    for batch in batches:
        values: list[Any] = [getattr(s, attr) for s in batch.samples if isinstance(s, PackSample)]
        if values:
            mid = batch.t_ms + (len(values) - 1) * batch.dt_ms // 2
            points.append((mid, sum(values) / len(values)))
    points.sort()
    return points
