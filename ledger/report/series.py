"""Time series arithmetic for the condition report: samples in time order, trends, onsets.

Pure and small on purpose: every function is one formula of ``docs/condition-report.md``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..telemetry import BusSample, Event, PackSample, TelemetryBatch
from .trend import calendar_date

S = TypeVar("S", PackSample, BusSample)


@dataclass(frozen=True, slots=True, kw_only=True)
class Timed(Generic[S]):
    """A sample with its time (Unix ms) and the time it stands for (its batch's ``dt``, s)."""

    t_ms: int
    seconds: float
    sample: S


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
    """``YYYY-MM-DD`` (UTC) of a Unix ms time; None for None or outside the years 1..9999."""
    return calendar_date(t_ms)


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
