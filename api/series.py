"""Chart series: several sample columns on one time axis, with gaps left as gaps.

The dashboard draws each chart from one answer: bucket start times and, per column, the
bucket mean, min and max. A bucket without samples is ``None`` in every column, and so is a
bucket that follows a silence much longer than the data's usual spacing, so a line is never
drawn across an outage or a restart. Derived columns are computed per sample before
bucketing: ``cell_spread_v`` is ``cell_v_max - cell_v_min`` of the same sample (never from
the extremes of different samples, so it cannot go negative).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from gateway.store.blocks import DERIVED as STORED_DERIVED
from gateway.store.samples import BlockGroup, SummaryRead

DERIVED: Final[Mapping[str, tuple[str, str]]] = STORED_DERIVED
"""Derived column -> (minuend, subtrahend) of the same sample (the store's summaries hold
them too, so they are defined with the blocks)."""

GAP_FACTOR: Final = 4
"""A silence longer than this many usual spacings (and two buckets) is drawn as a gap."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Column:
    """One column of a series: per bucket mean, min and max (``None`` where there is no data)."""

    avg: list[float | None]
    min: list[float | None]
    max: list[float | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Series:
    """Bucketed columns on one time axis."""

    bucket_ms: int
    t_ms: list[int]
    columns: dict[str, Column]


def bucket_size(span_ms: int, points: int) -> int:
    """The bucket (ms, at least one second) that puts ``span_ms`` into at most ``points``."""
    if points < 1:
        raise ValueError(f"points must be >= 1, got {points}")
    return max(1000, math.ceil(max(span_ms, 1) / points))


def source_columns(names: Sequence[str]) -> list[str]:
    """The stored columns ``names`` (some derived) are computed from."""
    needed: list[str] = []
    for name in names:
        for source in DERIVED.get(name, (name,)):
            if source not in needed:
                needed.append(source)
    return needed


def bucketed(
    t_ms: npt.NDArray[np.int64],
    values: Mapping[str, npt.NDArray[Any]],
    names: Sequence[str],
    *,
    from_ms: int,
    bucket_ms: int,
) -> Series:
    """``names`` (stored or derived columns of ``values``) in buckets of ``bucket_ms``.

    Only buckets holding samples are kept, plus one ``None`` bucket inside each gap.
    """
    if bucket_ms < 1:
        raise ValueError(f"bucket_ms must be >= 1, got {bucket_ms}")
    if not len(t_ms):
        return Series(bucket_ms=bucket_ms, t_ms=[], columns={
            name: Column(avg=[], min=[], max=[]) for name in names})  # fmt: skip
    order = np.argsort(t_ms, kind="stable")
    times = t_ms[order]
    bucket = (times - from_ms) // bucket_ms
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    counts = np.diff(np.r_[starts, len(bucket)])
    keys = bucket[starts]
    gaps = _gap_positions(keys)
    columns: dict[str, Column] = {}
    for name in names:
        column = _column(values, name)[order]
        sums = np.add.reduceat(column, starts)
        columns[name] = Column(
            avg=_with_gaps((sums / counts).tolist(), gaps),
            min=_with_gaps(np.minimum.reduceat(column, starts).tolist(), gaps),
            max=_with_gaps(np.maximum.reduceat(column, starts).tolist(), gaps),
        )
    axis = (from_ms + keys * bucket_ms).tolist()
    for offset, at in enumerate(gaps):
        # the null point sits one bucket after the last bucket before the silence
        axis.insert(at + offset, axis[at + offset - 1] + bucket_ms)
    return Series(bucket_ms=bucket_ms, t_ms=[int(t) for t in axis], columns=columns)


def bucketed_blocks(
    groups: Sequence[BlockGroup],
    names: Sequence[str],
    *,
    from_ms: int,
    to_ms: int,
    bucket_ms: int,
) -> Series:
    """What :func:`bucketed` makes of the samples of ``groups`` in ``[from_ms, to_ms)``, reduced
    a whole block at a time where a block lies inside the period and inside one bucket.

    A year of a pack is 525,600 samples in 8,760 blocks, and 800 buckets of 11 hours: min,
    max and sum along each block's row of wire integers, then over the blocks of a bucket,
    instead of turning every sample into a float and sorting them all. Blocks cut by the
    period or a bucket edge are taken sample by sample. Means may differ from
    :func:`bucketed`'s in the last bits (integers summed before scaling).
    """
    if bucket_ms < 1:
        raise ValueError(f"bucket_ms must be >= 1, got {bucket_ms}")
    parts = _Parts(names)
    for group in groups:
        parts.add_blocks(group, from_ms=from_ms, to_ms=to_ms, bucket_ms=bucket_ms)
    return parts.series(from_ms=from_ms, bucket_ms=bucket_ms)


def bucketed_summaries(
    read: SummaryRead,
    names: Sequence[str],
    *,
    from_ms: int,
    to_ms: int,
    bucket_ms: int,
) -> Series:
    """:func:`bucketed_blocks` from block summaries: each summarised block (inside the period
    and one bucket) adds its stored min, max, sum and count to its bucket; the blocks read
    whole are reduced as :func:`bucketed_blocks` does. The same series, without decoding the
    blocks a year chart is made of (``tests/unit/test_series_summaries.py``)."""
    if bucket_ms < 1:
        raise ValueError(f"bucket_ms must be >= 1, got {bucket_ms}")
    parts = _Parts(names)
    summaries = read.summaries
    parts.keys.append((summaries.t_ms - from_ms) // bucket_ms)
    parts.counts.append(summaries.n)
    for name in names:
        scale, stats = summaries.per_unit[name], parts.stats[name]
        stats["min"].append(summaries.min[name] / scale)
        stats["max"].append(summaries.max[name] / scale)
        stats["sum"].append(summaries.sum[name] / scale)
    for group in read.cut:
        parts.add_blocks(group, from_ms=from_ms, to_ms=to_ms, bucket_ms=bucket_ms)
    return parts.series(from_ms=from_ms, bucket_ms=bucket_ms)


class _Parts:
    """Per bucket key: sample counts and per column min, max and sum, in chunks (a chunk per
    group of whole blocks, per group of samples taken one by one, per set of summaries)."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.keys: list[npt.NDArray[np.int64]] = []
        self.counts: list[npt.NDArray[np.int64]] = []
        self.stats: dict[str, dict[str, list[npt.NDArray[np.float64]]]] = {
            name: {"min": [], "max": [], "sum": []} for name in names
        }

    def add_blocks(self, group: BlockGroup, *, from_ms: int, to_ms: int, bucket_ms: int) -> None:
        """Whole blocks reduced along their rows, the others sample by sample."""
        times = group.times()
        inside = (times >= from_ms) & (times < to_ms)
        bucket = (times - from_ms) // bucket_ms
        whole = inside.all(axis=1) & (bucket[:, 0] == bucket[:, -1])
        cut = ~whole & inside.any(axis=1)
        cut_inside = inside[cut]
        self.keys += [bucket[whole, 0], bucket[cut][cut_inside]]
        self.counts += [np.full(int(whole.sum()), group.n, np.int64),
                        np.ones(int(cut_inside.sum()), np.int64)]  # fmt: skip
        for name in self.names:
            wire, scale = _wire(group, name)
            rows, parts = wire[whole], self.stats[name]
            parts["min"] += [rows.min(axis=1) / scale if len(rows) else _EMPTY]
            parts["max"] += [rows.max(axis=1) / scale if len(rows) else _EMPTY]
            parts["sum"] += [rows.sum(axis=1, dtype=np.float64) / scale if len(rows) else _EMPTY]
            one = wire[cut][cut_inside] / scale
            parts["min"].append(one)
            parts["max"].append(one)
            parts["sum"].append(one)

    def series(self, *, from_ms: int, bucket_ms: int) -> Series:
        """The chunks merged per bucket, with the gaps."""
        key = np.concatenate(self.keys) if self.keys else np.empty(0, np.int64)
        if not len(key):
            return Series(bucket_ms=bucket_ms, t_ms=[], columns={
                name: Column(avg=[], min=[], max=[]) for name in self.names})  # fmt: skip
        order = np.argsort(key, kind="stable")
        key = key[order]
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        count = np.add.reduceat(np.concatenate(self.counts)[order], starts)
        keys_kept = key[starts]
        gaps = _gap_positions(keys_kept)
        columns: dict[str, Column] = {}
        for name in self.names:
            merged = {
                stat: np.concatenate(chunks)[order] for stat, chunks in self.stats[name].items()
            }
            columns[name] = Column(
                avg=_with_gaps((np.add.reduceat(merged["sum"], starts) / count).tolist(), gaps),
                min=_with_gaps(np.minimum.reduceat(merged["min"], starts).tolist(), gaps),
                max=_with_gaps(np.maximum.reduceat(merged["max"], starts).tolist(), gaps),
            )
        axis = (from_ms + keys_kept * bucket_ms).tolist()
        for offset, at in enumerate(gaps):
            axis.insert(at + offset, axis[at + offset - 1] + bucket_ms)
        return Series(bucket_ms=bucket_ms, t_ms=[int(t) for t in axis], columns=columns)


_EMPTY: Final = np.empty(0, np.float64)


def _wire(group: BlockGroup, name: str) -> tuple[npt.NDArray[Any], float]:
    """A column's wire integers (``blocks x n``) and the divisor to its unit; a derived
    column is computed per sample in wire units (both sources share a resolution)."""
    if name not in DERIVED:
        return group.wire[name], group.per_unit[name]
    high, low = DERIVED[name]
    if group.per_unit[high] != group.per_unit[low]:
        raise ValueError(f"{high} and {low} have different resolutions")
    spread = group.wire[high].astype(np.int64) - group.wire[low].astype(np.int64)
    return np.maximum(spread, 0), group.per_unit[high]


def _column(values: Mapping[str, npt.NDArray[Any]], name: str) -> npt.NDArray[np.float64]:
    if name in DERIVED:
        high, low = DERIVED[name]
        spread = values[high].astype(np.float64) - values[low].astype(np.float64)
        return np.maximum(spread, 0.0)
    return values[name].astype(np.float64)


def _gap_positions(keys: npt.NDArray[np.int64]) -> list[int]:
    """Indexes ``i`` of buckets that follow a gap (between ``keys[i-1]`` and ``keys[i]``).

    A gap is a step of more than two buckets and of more than :data:`GAP_FACTOR` times the
    median step, so data sent once an hour is a line and a day's outage is a gap.
    """
    if len(keys) < 3:
        return []
    steps = np.diff(keys)
    usual = float(np.median(steps))
    limit = max(2.0, GAP_FACTOR * usual)
    return [int(i) + 1 for i in np.flatnonzero(steps > limit)]


def _with_gaps(column: list[float], gaps: Sequence[int]) -> list[float | None]:
    out: list[float | None] = list(column)
    for offset, at in enumerate(gaps):
        out.insert(at + offset, None)
    return out
