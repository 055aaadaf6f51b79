"""Decoded samples kept as one block per message and kind: the wire columns side by side.

Each accepted telemetry message has one row in ``sample_blocks`` per kind of sample it
gives, keyed by ``(leaf_index, kind)``: its device, first and last sample times, interval,
sample count, and ``columns``, a blob that holds every column of
:data:`ledger.telemetry.FIELDS` for that kind, in that order, each as the message's ``n``
wire integers in the column's typed-array element (little-endian, ``FieldSpec.element``). An
agent's message gives one block, of its device's kind: the blob is its sample data exactly as
it was signed (less the CBOR framing), so a block costs one row to write however many samples
the message carries. A GB/T 32960 frame gives a ``bus`` block and, when it carries every pack
value, a ``pack`` block of the same leaf and device (``ledger.gbt32960.columns``). Beside
each block, in the same transaction, ``sample_summaries`` gets the block's summary, under the
same ``(leaf_index, kind)`` (:func:`summary`: per column the min, max and sum of the wire
integers) and the message's ``host``, derived data that a chart over months and a pack's
history read instead of the block and the message. Every read of samples names the kind it
reads. This module writes blocks (the gateway process, no numpy); :mod:`gateway.store.samples`
reads them back as arrays.
"""

from __future__ import annotations

import array
import struct
import sys
from collections.abc import Sequence
from typing import Final

from ledger.telemetry import FIELDS, MAX_DT_MS, MAX_SAMPLES, Kind, TelemetryColumns

MAX_SPAN_MS: Final = (MAX_SAMPLES - 1) * MAX_DT_MS
"""The most a block's last sample can lie after its first (600 samples, 60 s apart)."""

_LITTLE: Final = sys.byteorder == "little"

INSERT_BLOCK_SQL: Final = (
    "INSERT INTO sample_blocks (leaf_index, device, kind, t_ms, last_ms, dt_ms, n, columns) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


_LAYOUT: Final = {
    kind: tuple((spec.key, spec.element.typecode, spec.element.width) for spec in specs)
    for kind, specs in FIELDS.items()
}
"""Per kind, in column order: wire key, :mod:`array` type code and width of the element."""


def pack(columns: TelemetryColumns) -> bytes:
    """The ``columns`` blob of a validated message (its wire integers, little-endian)."""
    parts = []
    wire = columns.columns
    for key, typecode, width in _LAYOUT[columns.kind]:
        values = wire[key]
        swap = not _LITTLE and width > 1
        if swap or not isinstance(values, array.array) or values.typecode != typecode:
            values = array.array(typecode, values)  # a copy: the caller's column stays as is
        if swap:  # pragma: no cover - big-endian hosts only
            values.byteswap()
        parts.append(values.tobytes())
    return b"".join(parts)


def block_row(leaf_index: int, device_id: str, columns: TelemetryColumns) -> tuple[object, ...]:
    """The ``sample_blocks`` row of an accepted message (see :data:`INSERT_BLOCK_SQL`)."""
    last_ms = columns.t_ms + (columns.n - 1) * columns.dt_ms
    return (
        leaf_index,
        device_id,
        columns.kind,
        columns.t_ms,
        last_ms,
        columns.dt_ms,
        columns.n,
        pack(columns),
    )


DERIVED: Final = {"cell_spread_v": ("cell_v_max", "cell_v_min")}
"""Derived column -> (minuend, subtrahend) of the same sample, per sample in wire units and
never below zero (``cell_spread_v``: the cell voltage spread, so never from the extremes of
different samples). Summaries hold them as if they were columns."""

INSERT_SUMMARY_SQL: Final = (
    "INSERT INTO sample_summaries (leaf_index, kind, stats, host) VALUES (?, ?, ?, ?)"
)

_STRUCT_CODES: Final = {
    (1, False): "B", (1, True): "b", (2, False): "H", (2, True): "h",
    (4, False): "I", (4, True): "i", (8, False): "Q", (8, True): "q",
}  # fmt: skip


def _summary_layout(kind: Kind) -> tuple[tuple[str, str, str, str], ...]:
    """Per summarised column: name, then the :mod:`struct` codes of its min, max and sum."""
    specs = {spec.attr: spec for spec in FIELDS[kind]}
    out = []
    for spec in FIELDS[kind]:
        code = _STRUCT_CODES[spec.element.width, spec.element.signed]
        out.append((spec.attr, code, code, "q" if spec.element.width <= 4 else "d"))
    for name, (high, low) in DERIVED.items():
        if high in specs and low in specs:
            code = _STRUCT_CODES[specs[high].element.width, False]
            out.append((name, code, code, "q" if specs[high].element.width <= 4 else "d"))
    return tuple(out)


SUMMARY_LAYOUT: Final[dict[Kind, tuple[tuple[str, str, str, str], ...]]] = {
    kind: _summary_layout(kind) for kind in ("bus", "pack")
}
"""Per kind, the columns a summary holds (every column of :data:`FIELDS`, then the derived
ones the kind has) with the :mod:`struct` codes of their min, max and sum (little-endian,
packed): min and max in the column's own element, the sum as a 64-bit integer for elements
of up to 4 bytes (600 samples cannot overflow it) and as a double for 8-byte elements."""

_SUMMARY_STRUCT: Final = {
    kind: struct.Struct("<" + "".join(codes for _, *c in layout for codes in c))
    for kind, layout in SUMMARY_LAYOUT.items()
}


def summary(columns: TelemetryColumns) -> bytes:
    """The ``stats`` blob of a message's block: per column of :data:`SUMMARY_LAYOUT` the min,
    max and sum of its wire integers.

    Derived data, written with the block in the same transaction, so a chart over a year reads
    one small row per block instead of the block (``voltproof audit`` recomputes it)."""
    wire = columns.columns
    return _summarise(columns.kind, {spec.attr: wire[spec.key] for spec in FIELDS[columns.kind]})


def summary_of_block(kind: Kind, n: int, blob: bytes) -> bytes:
    """:func:`summary` of a stored block (``kind``, ``n`` samples, the ``columns`` blob): how
    migrations back-fill summaries of blocks written before there were any."""
    by_attr: dict[str, Sequence[int]] = {}
    offset = 0
    for spec, (_key, typecode, width) in zip(FIELDS[kind], _LAYOUT[kind], strict=True):
        values = array.array(typecode, blob[offset : offset + n * width])
        if not _LITTLE and width > 1:  # pragma: no cover - big-endian hosts only
            values.byteswap()
        by_attr[spec.attr] = values
        offset += n * width
    if offset != len(blob) or n < 1:
        raise ValueError(f"a {kind} block of {n} samples takes {offset} bytes, not {len(blob)}")
    return _summarise(kind, by_attr)


def _summarise(kind: Kind, by_attr: dict[str, Sequence[int]]) -> bytes:
    values: list[int | float] = []
    for name, _lo, _hi, sum_code in SUMMARY_LAYOUT[kind]:
        if name in DERIVED:
            high, low = DERIVED[name]
            column: Sequence[int] = [
                max(a - b, 0) for a, b in zip(by_attr[high], by_attr[low], strict=True)
            ]
        else:
            column = by_attr[name]
        total = sum(column)
        values += [min(column), max(column), total if sum_code == "q" else float(total)]
    return _SUMMARY_STRUCT[kind].pack(*values)


def summary_row(leaf_index: int, columns: TelemetryColumns) -> tuple[object, ...]:
    """The ``sample_summaries`` row of a block of an accepted message (see
    :data:`INSERT_SUMMARY_SQL`): its kind, its summary and the ``host`` the block's message
    names (the bus a pack is installed in; a pack's history reads it here instead of decoding
    every message again)."""
    return (leaf_index, columns.kind, summary(columns), columns.host)
