"""The joined column decode equals the one-payload-at-a-time decode, or hands over to it.

``ledger.report.columns.decode_all`` first joins every column's typed arrays and checks tags
and sample counts in numpy (``_decode_joined``); when a payload is not of the plain form it
hands the whole list to ``_decode_each``, the definition of the result and of the errors.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings

from gateway.collector import gc_paused
from ledger.cbor import TypedArray
from ledger.report.columns import Decoded, _decode_each, _decode_joined, decode_all
from ledger.telemetry import FIELDS, TelemetryError, decode_columns, encode_batch
from tests.support.bundle_world import T0, bus_batch, bus_sample, pack_batch, pack_sample
from tests.support.strategies import report_payload_lists

Payload = dict[str, Any]
U32_LE_TAG = 70
"""RFC 8746: uint32, little endian (the soc column is uint16)."""


def _pack(seq: int, samples: int = 2) -> Payload:
    socs = [round(0.9 - 0.001 * k, 3) for k in range(samples)]
    batch = pack_batch(T0 + seq * 600_000, [pack_sample(soc=soc) for soc in socs], dt_ms=60_000)
    return {"v": 1, "dev": "pack-1", "seq": seq, "prev": bytes(32), "t": batch.t_ms,
            **encode_batch(batch)}  # fmt: skip


def _bus(seq: int) -> Payload:
    batch = bus_batch(T0 + seq * 1000, [bus_sample(odometer_m=1000.0 + seq)], dt_ms=1000)
    return {"v": 1, "dev": "bus-1", "seq": seq, "prev": bytes(32), "t": batch.t_ms,
            **encode_batch(batch)}  # fmt: skip


def assert_same_decoding(joined: Decoded | None, each: Decoded) -> None:
    assert joined is not None
    assert joined.messages == each.messages
    for kind in FIELDS:
        for key, column in each.wire[kind].items():
            assert joined.wire[kind][key].dtype == column.dtype
            assert np.array_equal(joined.wire[kind][key], column)


@settings(max_examples=80, deadline=None)
@given(payloads=report_payload_lists())
def test_joined_equals_each(payloads: list[Payload]) -> None:
    """Random plain payloads, events and tied times: the same messages, rows and columns."""
    assert_same_decoding(_decode_joined(payloads), _decode_each(payloads))


def test_long_messages_and_mixed_forms() -> None:
    """Columns of 1 to 600 samples (every byte-string head size) mixed with decoded payloads."""
    event = {**_pack(3), "ev": [{"k": "recal", "at": 0, "from": 1, "to": 2, "why": "full"}]}
    payloads = [_pack(0, 1), _bus(0), _pack(1, 30), event, _pack(2, 600), _bus(1), _pack(4, 12)]
    assert_same_decoding(_decode_joined(payloads), _decode_each(payloads))


def _column(payload: Payload, key: str, values: list[int], tag: int | None = None) -> Payload:
    spec = next(s for s in FIELDS[payload["kind"]] if s.key == key)
    column = TypedArray.from_values(tag=tag or spec.element.tag, values=values)
    return {**payload, "s": {**payload["s"], key: column}}


HANDED_OVER: dict[str, Callable[[Payload], Payload]] = {
    "wrong tag": lambda p: _column(p, "soc", [1, 2], tag=U32_LE_TAG),
    "ragged": lambda p: _column(p, "soc", [1, 2, 3]),
    "ragged first column": lambda p: _column(p, "u", [6000]),
    "no samples": lambda p: {
        **p,
        "s": {k: TypedArray.from_values(tag=v.encoded[1], values=[]) for k, v in p["s"].items()},
    },
}


@pytest.mark.parametrize("name", sorted(HANDED_OVER))
def test_typed_arrays_of_another_shape_are_handed_over(name: str) -> None:
    """A tag or sample count the plain form does not allow: None, and decode_all still names it."""
    bad = HANDED_OVER[name](_pack(1))
    payloads = [_pack(0), _bus(0), bad]
    assert _decode_joined(payloads) is None
    try:
        decode_columns(bad)
    except TelemetryError as exc:
        expected = exc
    else:
        raise AssertionError("the change left a valid payload")
    with pytest.raises(type(expected), match=f"^{re.escape(str(expected))}$"):
        decode_all(payloads)


def test_gc_paused_restores_the_collector() -> None:
    """The collector is off inside, back on after (also after an error), left off if it was."""
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError, match="inside"), gc_paused():
        raise RuntimeError("inside")
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
