"""Decoded samples kept as one block per message: the message's wire columns side by side.

Each accepted telemetry message has ONE row in ``sample_blocks``: its leaf index, device,
kind, first and last sample times, interval, sample count, and ``columns``, a blob that holds
every column of :data:`ledger.telemetry.FIELDS` for that kind, in that order, each as the
message's ``n`` wire integers in the column's typed-array element (little-endian,
``FieldSpec.element``). The blob is the message's sample data exactly as it was signed (less
the CBOR framing), so a block costs one row to write however many samples the message
carries. This module writes blocks (the gateway process, no numpy);
:mod:`gateway.store.samples` reads them back as arrays.
"""

from __future__ import annotations

import array
import sys
from typing import Final

from ledger.telemetry import FIELDS, MAX_DT_MS, MAX_SAMPLES, TelemetryColumns

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
