"""Samples of chosen messages as time-ordered numpy columns in memory units.

A :class:`Frame` is what the report's sample loops used to walk one object at a time:
every sample of the chosen messages, stably sorted by time (so ties keep message order),
with the time it stands for (its message's ``dt`` in seconds). Float sums that the report
documents as sums over samples are taken with Python's ``sum`` over ``tolist()`` in that
order, so every figure is the same float as a per-sample loop gives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..telemetry import FIELDS, Kind
from .columns import Decoded, FloatArray, MessageInfo, memory_values

_INT64_SAFE = 2**62
"""Sample times stay int64 below this (``t`` + 600 samples x 60 s cannot overflow)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Frame:
    """Time-ordered samples of one kind: ``t_ms``, ``seconds`` and one array per attribute."""

    t_ms: npt.NDArray[Any]
    seconds: FloatArray
    values: Mapping[str, npt.NDArray[Any]]

    def __len__(self) -> int:
        return len(self.t_ms)

    def __getitem__(self, attr: str) -> npt.NDArray[Any]:
        return self.values[attr]

    def first(self, attr: str) -> Any:
        """The value of ``attr`` in the earliest sample (a Python number)."""
        return self.values[attr][0].item()

    def last(self, attr: str) -> Any:
        """The value of ``attr`` in the latest sample (a Python number)."""
        return self.values[attr][-1].item()


def frame_of(decoded: Decoded, kind: Kind, chosen: Sequence[int]) -> Frame:
    """The samples of messages ``chosen`` (indexes into ``decoded.messages``, all of ``kind``)."""
    infos: list[MessageInfo] = [decoded.messages[i] for i in chosen]
    counts = np.array([m.n for m in infos], dtype=np.int64)
    starts = np.array([m.row for m in infos], dtype=np.int64)
    total = int(counts.sum())
    first = np.repeat(starts, counts)
    within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    rows = first + within
    big = max((m.t_ms for m in infos), default=0) >= _INT64_SAFE
    time_type: Any = object if big else np.int64
    base = np.repeat(np.array([m.t_ms for m in infos], dtype=time_type), counts)
    dts = np.repeat(np.array([m.dt_ms for m in infos], dtype=time_type), counts)
    t_ms = base + within.astype(time_type) * dts
    seconds = np.repeat(np.array([m.dt_ms / 1000 for m in infos], dtype=np.float64), counts)
    order = np.argsort(t_ms, kind="stable")
    if not np.array_equal(order, np.arange(total)):
        rows, t_ms, seconds = rows[order], t_ms[order], seconds[order]
    wire = decoded.wire[kind]
    values = {spec.attr: memory_values(spec, wire[spec.key][rows]) for spec in FIELDS[kind]}
    return Frame(t_ms=t_ms, seconds=seconds, values=values)


def message_means(decoded: Decoded, chosen: Sequence[int], attr: str) -> list[tuple[int, float]]:
    """``(midpoint Unix ms, mean of attr)`` per chosen pack message, sorted."""
    spec = next(s for s in FIELDS["pack"] if s.attr == attr)
    column = decoded.wire["pack"][spec.key]
    infos = [decoded.messages[i] for i in chosen]
    counts = np.array([m.n for m in infos], dtype=np.int64)
    starts = np.repeat(np.array([m.row for m in infos], dtype=np.int64), counts)
    rows = starts + np.arange(len(starts)) - np.repeat(np.cumsum(counts) - counts, counts)
    values: list[float] = memory_values(spec, column[rows]).tolist()
    points = []
    at = 0
    for message in infos:
        part = values[at : at + message.n]
        at += message.n
        mid = message.t_ms + (message.n - 1) * message.dt_ms // 2
        points.append((mid, sum(part) / len(part)))
    points.sort()
    return points


def onset_count(flags: npt.NDArray[np.bool_]) -> int:
    """How many times ``flags`` becomes true (a run of trues counts once)."""
    if not flags.size:
        return 0
    return int(flags[0]) + int(np.count_nonzero(flags[1:] & ~flags[:-1]))


def runs(flags: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """The ``[start, stop)`` index ranges of the runs of trues in ``flags``."""
    padded = np.concatenate(([False], flags, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True))


def fsum_in_order(values: npt.NDArray[Any], start: float | int = 0) -> Any:
    """``sum`` of the values in array order (exactly a Python loop's float result)."""
    return sum(values.tolist(), start)


def median(values: npt.NDArray[Any] | Sequence[float]) -> float:
    """``statistics.median`` of the values (the mean of the two middle ones when even)."""
    ordered = np.sort(np.asarray(values, dtype=np.float64)).tolist()
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[middle])
    return float((ordered[middle - 1] + ordered[middle]) / 2)
