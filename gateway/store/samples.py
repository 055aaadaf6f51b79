"""Sample blocks read back as numpy column arrays (see :mod:`gateway.store.blocks`).

Every read names the kind of samples it reads (a GB/T 32960 terminal's bus has blocks of
both kinds, one of each per frame). Reads select the blocks that overlap a window with the
index ``(device, kind, t_ms, leaf_index, last_ms)``: a block's first sample lies at most
:data:`~gateway.store.blocks.MAX_SPAN_MS` before its last, so the range
``t_ms >= from - MAX_SPAN_MS`` holds every block with a sample at or after ``from``. Samples
are ordered by time, then leaf index (a device's messages may overlap in time). A chart over
a long period reads the blocks' summaries instead (:func:`window_summaries`) and only the
blocks a bucket edge cuts. Only processes that read samples import this module (and numpy):
the dashboard API, ``voltproof gateway check``; the gateway itself only writes blocks and
summaries.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from ledger.telemetry import FIELDS, Kind

from .blocks import DERIVED, MAX_SPAN_MS, SUMMARY_LAYOUT
from .errors import StoreError

_BLOCK_COLUMNS: Final = "leaf_index, t_ms, dt_ms, n, columns"
WINDOW_SQL: Final = (
    f"SELECT {_BLOCK_COLUMNS} FROM sample_blocks "  # noqa: S608 -- constant columns
    "WHERE device = ? AND kind = ? AND t_ms >= ? AND t_ms < ? AND last_ms >= ? "
    "AND (t_ms, leaf_index) > (?, ?) ORDER BY t_ms, leaf_index LIMIT ?"
)
_NEWEST_SQL: Final = (
    f"SELECT {_BLOCK_COLUMNS} FROM sample_blocks "  # noqa: S608 -- constant columns
    "WHERE device = ? AND kind = ? AND last_ms >= ? AND t_ms < ? "
    "ORDER BY last_ms DESC, leaf_index DESC LIMIT ? OFFSET ?"
)

BlockRow = tuple[int, int, int, int, bytes]
"""``(leaf_index, t_ms, dt_ms, n, columns)`` as selected from ``sample_blocks``."""
Fetch = Callable[[str, Sequence[object]], Awaitable[list[Any]]]
"""Runs one query and returns its rows (each store reader passes its own)."""


class BlockError(StoreError):
    """A stored block does not hold what its row says (a damaged or edited store)."""


_NUMPY_TYPES: Final = {
    (1, False): "u1",
    (1, True): "i1",
    (2, False): "<u2",
    (2, True): "<i2",
    (4, False): "<u4",
    (4, True): "<i4",
    (8, False): "<u8",
    (8, True): "<i8",
}


@cache
def block_dtype(kind: Kind, n: int) -> np.dtype[np.void]:
    """The layout of a block of ``n`` samples: one field of ``n`` wire integers per column."""
    return np.dtype(
        [
            (spec.attr, _NUMPY_TYPES[spec.element.width, spec.element.signed], (n,))
            for spec in FIELDS[kind]
        ]
    )


@dataclass(frozen=True, slots=True)
class Samples:
    """Samples of one device as arrays, oldest first: times, leaf indexes, named columns.

    Columns are in memory units (``ledger.telemetry``): integral columns as ``int64``, the
    others as ``float64`` equal to ``wire / per_unit`` (the floats of ``decode_batch``).
    """

    t_ms: npt.NDArray[np.int64]
    leaf_index: npt.NDArray[np.int64]
    values: dict[str, npt.NDArray[Any]]

    def __len__(self) -> int:
        return len(self.t_ms)

    def head(self, count: int) -> Samples:
        """The first ``count`` samples."""
        return Samples(
            t_ms=self.t_ms[:count],
            leaf_index=self.leaf_index[:count],
            values={name: column[:count] for name, column in self.values.items()},
        )

    def rows(self, fields: Sequence[str]) -> list[tuple[Any, ...]]:
        """``(t_ms, leaf_index, *fields)`` per sample, as Python numbers."""
        columns = [self.t_ms.tolist(), self.leaf_index.tolist()]
        columns.extend(self.values[name].tolist() for name in fields)
        return list(zip(*columns, strict=True))


def empty(kind: Kind, fields: Sequence[str] | None = None) -> Samples:
    """No samples."""
    names = _names(kind, fields)
    values = {
        name: np.empty(0, np.int64 if integral else np.float64) for name, integral in names.items()
    }
    return Samples(t_ms=np.empty(0, np.int64), leaf_index=np.empty(0, np.int64), values=values)


@cache
def _specs(kind: Kind) -> dict[str, tuple[bool, float]]:
    return {spec.attr: (spec.integral, spec.per_unit) for spec in FIELDS[kind]}


def _names(kind: Kind, fields: Sequence[str] | None) -> dict[str, bool]:
    specs = _specs(kind)
    chosen = list(specs) if fields is None else list(fields)
    unknown = sorted(set(chosen) - set(specs))
    if unknown:
        raise ValueError(f"unknown {kind} field(s) {unknown}; known: {sorted(specs)}")
    return {name: specs[name][0] for name in chosen}


def unpack(
    kind: Kind,
    rows: Iterable[BlockRow],
    *,
    fields: Sequence[str] | None = None,
    from_ms: int | None = None,
    to_ms: int | None = None,
) -> Samples:
    """The samples of ``rows`` (blocks of one device), in ``[from_ms, to_ms)``, oldest first.

    Raises :class:`BlockError` for a block whose blob does not fit its sample count.
    """
    names = _names(kind, fields)
    by_n: dict[int, list[BlockRow]] = {}
    for row in rows:
        by_n.setdefault(int(row[3]), []).append(row)
    if not by_n:
        return empty(kind, fields)
    times, leaves = [], []
    parts: dict[str, list[npt.NDArray[Any]]] = {name: [] for name in names}
    specs = _specs(kind)
    for n, group in by_n.items():
        dtype = block_dtype(kind, n)
        for index, _t, _dt, _n, blob in group:
            if len(blob) != dtype.itemsize:
                raise BlockError(
                    f"sample block of leaf {index} holds {len(blob)} bytes, "
                    f"{n} {kind} samples take {dtype.itemsize}"
                )
        data = np.frombuffer(b"".join(bytes(r[4]) for r in group), dtype=dtype)
        first = np.fromiter((r[1] for r in group), np.int64, len(group))
        step = np.fromiter((r[2] for r in group), np.int64, len(group))
        times.append((first[:, None] + step[:, None] * np.arange(n, dtype=np.int64)).ravel())
        leaves.append(np.repeat(np.fromiter((r[0] for r in group), np.int64, len(group)), n))
        for name, integral in names.items():
            # astype first: it writes a contiguous array, so ravel copies nothing more
            if integral:
                parts[name].append(data[name].astype(np.int64).ravel())
            else:
                column = data[name].astype(np.float64).ravel()
                column /= specs[name][1]
                parts[name].append(column)
    t_ms = np.concatenate(times) if len(times) > 1 else times[0]
    leaf_index = np.concatenate(leaves) if len(leaves) > 1 else leaves[0]
    columns = {name: np.concatenate(c) if len(c) > 1 else c[0] for name, c in parts.items()}
    keep = np.ones(len(t_ms), dtype=bool)
    if from_ms is not None:
        keep &= t_ms >= from_ms
    if to_ms is not None:
        keep &= t_ms < to_ms
    if not keep.all():
        t_ms, leaf_index = t_ms[keep], leaf_index[keep]
        columns = {name: column[keep] for name, column in columns.items()}
    # Blocks are read by (t_ms, leaf index) and a device's blocks rarely overlap: samples
    # that are strictly increasing in time are in order already (one check, no sort).
    if len(t_ms) > 1 and not bool(np.all(t_ms[1:] > t_ms[:-1])):
        order = np.lexsort((leaf_index, t_ms))
        t_ms, leaf_index = t_ms[order], leaf_index[order]
        columns = {name: column[order] for name, column in columns.items()}
    return Samples(t_ms=t_ms, leaf_index=leaf_index, values=columns)


async def window(
    fetch: Fetch,
    kind: Kind,
    device_id: str,
    *,
    from_ms: int,
    to_ms: int,
    fields: Sequence[str] | None = None,
    limit: int | None = None,
    page: int = 2000,
) -> Samples:
    """The device's ``kind`` samples with ``from_ms <= t < to_ms``, oldest first, at most
    ``limit``.

    Blocks are read in pages of ``page`` by first sample time; a sample is final once the
    next unread block starts after it (blocks may overlap), so a limited read stops early.
    """
    after: tuple[int, int] = (-(2**63), -1)
    rows: list[BlockRow] = []
    while True:
        got = await fetch(
            WINDOW_SQL,
            (device_id, kind, from_ms - MAX_SPAN_MS, to_ms, from_ms, *after, page),
        )
        rows.extend(got)
        if len(got) < page:
            return _limited(unpack(kind, rows, fields=fields, from_ms=from_ms, to_ms=to_ms), limit)
        after = (int(got[-1][1]), int(got[-1][0]))
        if limit is not None:
            # Every unread block starts at or after ``after[0]``: samples before it are final.
            settled = unpack(kind, rows, fields=fields, from_ms=from_ms, to_ms=after[0])
            if len(settled) >= limit:
                return settled.head(limit)


@dataclass(frozen=True, slots=True)
class BlockGroup:
    """Sample blocks of one size ``n``, not flattened: per block its first time, step and
    leaf; per column the wire integers (``blocks x n``) and the divisor to memory units.

    What a reduction over whole blocks needs (min, max, sum along a block's row) without
    turning every sample into a float first; :meth:`samples` flattens it when it must.
    """

    n: int
    t_ms: npt.NDArray[np.int64]
    dt_ms: npt.NDArray[np.int64]
    leaf_index: npt.NDArray[np.int64]
    wire: dict[str, npt.NDArray[Any]]
    per_unit: dict[str, float]
    integral: dict[str, bool]

    def times(self) -> npt.NDArray[np.int64]:
        """Each sample's time (``blocks x n``)."""
        return self.t_ms[:, None] + self.dt_ms[:, None] * np.arange(self.n, dtype=np.int64)

    def samples(self, *, from_ms: int, to_ms: int) -> Samples:
        """The group's samples in ``[from_ms, to_ms)`` as :class:`Samples`, oldest first."""
        t_ms = self.times().ravel()
        leaf_index = np.repeat(self.leaf_index, self.n)
        keep = (t_ms >= from_ms) & (t_ms < to_ms)
        values = {
            name: wire.ravel()[keep].astype(np.int64)
            if self.integral[name]
            else wire.ravel()[keep].astype(np.float64) / self.per_unit[name]
            for name, wire in self.wire.items()
        }
        order = np.lexsort((leaf_index[keep], t_ms[keep]))
        return Samples(t_ms=t_ms[keep][order], leaf_index=leaf_index[keep][order],
                       values={name: column[order] for name, column in values.items()})  # fmt: skip


async def window_blocks(
    fetch: Fetch,
    kind: Kind,
    device_id: str,
    *,
    from_ms: int,
    to_ms: int,
    fields: Sequence[str],
    page: int = 2000,
) -> list[BlockGroup]:
    """The ``kind`` blocks holding the device's samples in ``[from_ms, to_ms)`` (whole: samples
    outside the period are the caller's to drop), grouped by size, oldest first."""
    _names(kind, fields)
    after: tuple[int, int] = (-(2**63), -1)
    rows: list[BlockRow] = []
    while True:
        got = await fetch(
            WINDOW_SQL, (device_id, kind, from_ms - MAX_SPAN_MS, to_ms, from_ms, *after, page)
        )
        rows.extend(got)
        if len(got) < page:
            break
        after = (int(got[-1][1]), int(got[-1][0]))
    return _block_groups(kind, rows, fields)


def _block_groups(kind: Kind, rows: Sequence[BlockRow], fields: Sequence[str]) -> list[BlockGroup]:
    """``rows`` (blocks of one device) grouped by size, each group oldest first."""
    names = _names(kind, fields)
    specs = _specs(kind)
    by_n: dict[int, list[BlockRow]] = {}
    for row in rows:
        by_n.setdefault(int(row[3]), []).append(row)
    groups = []
    for n, group in sorted(by_n.items()):
        dtype = block_dtype(kind, n)
        for index, _t, _dt, _n, blob in group:
            if len(blob) != dtype.itemsize:
                raise BlockError(
                    f"sample block of leaf {index} holds {len(blob)} bytes, "
                    f"{n} {kind} samples take {dtype.itemsize}"
                )
        data = np.frombuffer(b"".join(bytes(r[4]) for r in group), dtype=dtype)
        groups.append(
            BlockGroup(
                n=n,
                t_ms=np.fromiter((r[1] for r in group), np.int64, len(group)),
                dt_ms=np.fromiter((r[2] for r in group), np.int64, len(group)),
                leaf_index=np.fromiter((r[0] for r in group), np.int64, len(group)),
                wire={name: data[name] for name in names},
                per_unit={name: float(specs[name][1]) for name in names},
                integral=dict(names),
            )
        )
    return groups


SUMMARY_WINDOW_SQL: Final = (
    "SELECT b.leaf_index, b.t_ms, b.last_ms, b.n, s.stats FROM sample_blocks AS b "
    "LEFT JOIN sample_summaries AS s ON s.leaf_index = b.leaf_index AND s.kind = b.kind "
    "WHERE b.device = ? AND b.kind = ? AND b.t_ms >= ? AND b.t_ms < ? AND b.last_ms >= ? "
    "AND (b.t_ms, b.leaf_index) > (?, ?) ORDER BY b.t_ms, b.leaf_index LIMIT ?"
)
_BLOCKS_BY_LEAF_SQL: Final = (
    f"SELECT {_BLOCK_COLUMNS} FROM sample_blocks WHERE kind = ? AND leaf_index IN ({{marks}}) "  # noqa: S608 -- constant columns
    "ORDER BY t_ms, leaf_index"
)
LEAVES_PER_QUERY: Final = 500
"""Leaf indexes per ``IN (...)`` query of the blocks a summary read takes whole."""

_STRUCT_DTYPES: Final = {"B": "u1", "b": "i1", "H": "<u2", "h": "<i2", "I": "<u4", "i": "<i4",
                         "Q": "<u8", "q": "<i8", "d": "<f8"}  # fmt: skip


@cache
def summary_dtype(kind: Kind) -> np.dtype[np.void]:
    """The layout of a ``sample_summaries`` blob (:data:`gateway.store.blocks.SUMMARY_LAYOUT`)."""
    return np.dtype(
        [
            (f"{name}.{stat}", _STRUCT_DTYPES[code])
            for name, *codes in SUMMARY_LAYOUT[kind]
            for stat, code in zip(("min", "max", "sum"), codes, strict=True)
        ]
    )


@dataclass(frozen=True, slots=True)
class BlockSummaries:
    """Summaries of whole blocks: per block its first time and sample count; per column the
    min, max and sum of its wire integers (as ``float64``) and the divisor to memory units."""

    t_ms: npt.NDArray[np.int64]
    n: npt.NDArray[np.int64]
    min: dict[str, npt.NDArray[np.float64]]
    max: dict[str, npt.NDArray[np.float64]]
    sum: dict[str, npt.NDArray[np.float64]]
    per_unit: dict[str, float]

    def __len__(self) -> int:
        return len(self.t_ms)


@dataclass(frozen=True, slots=True)
class SummaryRead:
    """A period read for a chart: the summaries of the blocks that lie inside the period and
    inside one bucket, and every other block of the period whole (its samples outside the
    period are the caller's to drop), for the caller to take sample by sample."""

    summaries: BlockSummaries
    cut: list[BlockGroup]


async def window_summaries(
    fetch: Fetch,
    kind: Kind,
    device_id: str,
    *,
    from_ms: int,
    to_ms: int,
    bucket_ms: int,
    names: Sequence[str],
    page: int = 5000,
) -> SummaryRead:
    """The device's ``kind`` samples in ``[from_ms, to_ms)`` for buckets of ``bucket_ms`` from
    ``from_ms``: a summary row for each block that lies inside the period and inside one
    bucket, the block itself for the others (and for a block stored without a summary).

    ``names`` may hold derived columns (:data:`gateway.store.blocks.DERIVED`). A year of a
    pack is 8,760 blocks of 60 samples: 344-byte summaries instead of 4.6 KB blocks, and
    only the blocks a bucket edge cuts are read whole. Raises :class:`BlockError` for a
    summary or block that does not hold what its row says.
    """
    if bucket_ms < 1:
        raise ValueError(f"bucket_ms must be >= 1, got {bucket_ms}")
    layout = {name for name, *_ in SUMMARY_LAYOUT[kind]}
    unknown = sorted(set(names) - layout)
    if unknown:
        raise ValueError(f"unknown {kind} column(s) {unknown}; known: {sorted(layout)}")
    dtype = summary_dtype(kind)
    after: tuple[int, int] = (-(2**63), -1)
    whole_rows: list[tuple[int, int, bytes]] = []
    cut: list[int] = []
    while True:
        got = await fetch(
            SUMMARY_WINDOW_SQL,
            (device_id, kind, from_ms - MAX_SPAN_MS, to_ms, from_ms, *after, page),
        )
        for index, t_ms, last_ms, n, stats in got:
            if (
                stats is not None
                and t_ms >= from_ms
                and last_ms < to_ms
                and (t_ms - from_ms) // bucket_ms == (last_ms - from_ms) // bucket_ms
            ):
                if len(stats) != dtype.itemsize:
                    raise BlockError(
                        f"sample summary of leaf {index} holds {len(stats)} bytes, "
                        f"a {kind} summary takes {dtype.itemsize}"
                    )
                whole_rows.append((int(t_ms), int(n), stats))
            else:
                cut.append(int(index))
        if len(got) < page:
            break
        after = (int(got[-1][1]), int(got[-1][0]))
    data = np.frombuffer(b"".join(bytes(r[2]) for r in whole_rows), dtype=dtype)
    per_unit = _summary_units(kind)
    summaries = BlockSummaries(
        t_ms=np.fromiter((r[0] for r in whole_rows), np.int64, len(whole_rows)),
        n=np.fromiter((r[1] for r in whole_rows), np.int64, len(whole_rows)),
        min={name: data[f"{name}.min"].astype(np.float64) for name in names},
        max={name: data[f"{name}.max"].astype(np.float64) for name in names},
        sum={name: data[f"{name}.sum"].astype(np.float64) for name in names},
        per_unit={name: per_unit[name] for name in names},
    )
    rows: list[BlockRow] = []
    for start in range(0, len(cut), LEAVES_PER_QUERY):
        chunk = cut[start : start + LEAVES_PER_QUERY]
        rows += await fetch(
            _BLOCKS_BY_LEAF_SQL.format(marks=", ".join("?" * len(chunk))), (kind, *chunk)
        )
    rows.sort(key=lambda row: (int(row[1]), int(row[0])))
    sources = list(dict.fromkeys(s for name in names for s in DERIVED.get(name, (name,))))
    return SummaryRead(summaries=summaries, cut=_block_groups(kind, rows, sources))


@cache
def _summary_units(kind: Kind) -> dict[str, float]:
    """Per summarised column, the divisor from wire integers to memory units."""
    units = {name: float(per_unit) for name, (_integral, per_unit) in _specs(kind).items()}
    for name, (high, _low) in DERIVED.items():
        if high in units:
            units[name] = units[high]
    return units


def _limited(samples: Samples, limit: int | None) -> Samples:
    return samples if limit is None else samples.head(limit)


async def newest(
    fetch: Fetch,
    kind: Kind,
    device_id: str,
    *,
    from_ms: int,
    to_ms: int,
    fields: Sequence[str] | None = None,
) -> Samples:
    """The device's newest ``kind`` sample with ``from_ms <= t < to_ms`` (none or one).

    Blocks come newest last sample first; once a block's last sample is older than the best
    sample found, no further block can hold a newer one.
    """
    best: Samples | None = None
    offset, page = 0, 8
    while True:
        got: list[BlockRow] = await fetch(
            _NEWEST_SQL, (device_id, kind, from_ms, to_ms, page, offset)
        )
        for row in got:
            last_ms = int(row[1]) + (int(row[3]) - 1) * int(row[2])
            if best is not None and last_ms < int(best.t_ms[0]):
                return best
            found = unpack(kind, [row], fields=fields, from_ms=from_ms, to_ms=to_ms)
            # ``>``: of equal times the block of the higher leaf index (read first) stays, the
            # newest in the (t, leaf index) order every read uses
            if len(found) and (best is None or int(found.t_ms[-1]) > int(best.t_ms[0])):
                best = _last(found)
        if len(got) < page:
            return best if best is not None else empty(kind, fields)
        offset += page


NEWEST_OF_DEVICES_SQL: Final = (
    "SELECT b.device, b.leaf_index, b.t_ms, b.dt_ms, b.n, b.columns FROM sample_blocks AS b "
    "WHERE b.kind = ? AND b.leaf_index IN (SELECT (SELECT s.leaf_index FROM sample_blocks AS s "
    "WHERE s.device = d.id AND s.kind = ? AND s.last_ms >= ? AND s.last_ms < ? "
    "ORDER BY s.last_ms DESC, s.leaf_index DESC LIMIT 1) FROM devices AS d "
    "WHERE d.id IN ({marks}))"
)
"""Per device, its block of one kind whose last sample is the newest in ``[from, to)`` (one
indexed probe of ``(device, kind, last_ms)`` each)."""
STRADDLING_SQL: Final = (
    "SELECT DISTINCT device FROM sample_blocks WHERE device IN ({marks}) "
    "AND last_ms >= ? AND t_ms < ? AND kind = ?"
)
"""Devices with a block that starts before ``to`` and ends at or after it: their newest sample
before ``to`` may lie inside such a block, so they are read one by one."""


async def newest_of_devices(
    fetch: Fetch,
    kind: Kind,
    device_ids: Sequence[str],
    *,
    from_ms: int,
    to_ms: int,
    fields: Sequence[str] | None = None,
) -> dict[str, Samples]:
    """The newest ``kind`` sample in ``[from_ms, to_ms)`` of each of ``device_ids`` that has
    one: two queries for the lot instead of one or more per device (the fleet view)."""
    ids = sorted(set(device_ids))
    if not ids:
        return {}
    marks = ", ".join("?" * len(ids))
    straddling = {
        row[0]
        for row in await fetch(STRADDLING_SQL.format(marks=marks), (*ids, to_ms, to_ms, kind))
    }
    rows = await fetch(
        NEWEST_OF_DEVICES_SQL.format(marks=marks), (kind, kind, from_ms, to_ms, *ids)
    )
    found = _last_of_blocks(
        kind,
        [(str(r[0]), (r[1], r[2], r[3], r[4], r[5])) for r in rows if r[0] not in straddling],
        fields=fields,
    )
    for device in sorted(straddling):
        one = await newest(fetch, kind, device, from_ms=from_ms, to_ms=to_ms, fields=fields)
        if len(one):
            found[device] = one
    return found


def _last_of_blocks(
    kind: Kind, rows: Sequence[tuple[str, BlockRow]], *, fields: Sequence[str] | None
) -> dict[str, Samples]:
    """The last sample of each device's block, decoded a group of equal sizes at a time."""
    names = _names(kind, fields)
    specs = _specs(kind)
    by_n: dict[int, list[tuple[str, BlockRow]]] = {}
    for device, row in rows:
        by_n.setdefault(int(row[3]), []).append((device, row))
    found: dict[str, Samples] = {}
    for n, group in by_n.items():
        dtype = block_dtype(kind, n)
        for _device, (index, _t, _dt, _n, blob) in group:
            if len(blob) != dtype.itemsize:
                raise BlockError(
                    f"sample block of leaf {index} holds {len(blob)} bytes, "
                    f"{n} {kind} samples take {dtype.itemsize}"
                )
        data = np.frombuffer(b"".join(bytes(r[4]) for _, r in group), dtype=dtype)
        columns = {}
        for name, integral in names.items():
            wire = data[name][:, -1]
            columns[name] = (
                wire.astype(np.int64) if integral else wire.astype(np.float64) / specs[name][1]
            )
        for i, (device, (index, t_ms, dt_ms, _n, _blob)) in enumerate(group):
            found[device] = Samples(
                t_ms=np.array([int(t_ms) + (n - 1) * int(dt_ms)], dtype=np.int64),
                leaf_index=np.array([int(index)], dtype=np.int64),
                values={name: column[i : i + 1] for name, column in columns.items()},
            )
    return found


def _last(samples: Samples) -> Samples:
    return Samples(
        t_ms=samples.t_ms[-1:],
        leaf_index=samples.leaf_index[-1:],
        values={name: column[-1:] for name, column in samples.values.items()},
    )


@dataclass(frozen=True, slots=True)
class Aggregate:
    """One bucket of a column: ``[from + b * bucket_ms, ...)`` with count, min, max, mean."""

    bucket: int
    count: int
    min: float
    max: float
    avg: float


def aggregate(samples: Samples, name: str, *, from_ms: int, bucket_ms: int) -> list[Aggregate]:
    """``samples[name]`` in buckets of ``bucket_ms`` from ``from_ms``; empty buckets left out."""
    if bucket_ms < 1:
        raise ValueError(f"bucket_ms must be >= 1, got {bucket_ms}")
    if not len(samples):
        return []
    values = samples.values[name].astype(np.float64)
    bucket = (samples.t_ms - from_ms) // bucket_ms
    order = np.argsort(bucket, kind="stable")
    bucket, values = bucket[order], values[order]
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    counts = np.diff(np.r_[starts, len(bucket)])
    sums = np.add.reduceat(values, starts)
    lows = np.minimum.reduceat(values, starts)
    highs = np.maximum.reduceat(values, starts)
    columns = (bucket[starts], counts, lows, highs, sums)
    return [
        Aggregate(bucket=b, count=c, min=lo, max=hi, avg=total / c)
        for b, c, lo, hi, total in zip(*(column.tolist() for column in columns), strict=True)
    ]
