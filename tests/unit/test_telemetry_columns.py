"""decode_columns: the gateway's column-wise decoding agrees with the per-sample objects."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given

from ledger.telemetry import (
    FIELDS,
    EventError,
    FieldRangeError,
    TelemetryBatch,
    decode_batch,
    decode_columns,
    encode_batch,
)
from tests.support.gateway_devices import pack_sample
from tests.support.strategies import telemetry_batches

ENVELOPE: dict[str, Any] = {"v": 1, "dev": "pack-0001", "seq": 0, "prev": bytes(32)}


def payload_of(batch: TelemetryBatch) -> dict[str, Any]:
    """The full payload an agent would sign for ``batch``."""
    return {**ENVELOPE, **encode_batch(batch), "t": batch.t_ms}


@given(batch=telemetry_batches())
def test_column_values_are_the_sample_attributes(batch: TelemetryBatch) -> None:
    """values() holds, column by column, exactly the attributes of the encoded samples."""
    columns = decode_columns(payload_of(batch))
    expected = [
        [getattr(sample, spec.attr) for sample in batch.samples] for spec in FIELDS[batch.kind]
    ]
    assert [list(column) for column in columns.values()] == expected
    assert list(columns.times_ms()) == [batch.t_ms + k * batch.dt_ms for k in range(columns.n)]
    assert columns.end_ms == batch.end_ms
    assert columns.events == batch.events


@given(batch=telemetry_batches())
def test_integral_columns_stay_integers(batch: TelemetryBatch) -> None:
    """Counts and bit sets are stored as integers, measurements as floats."""
    columns = decode_columns(payload_of(batch))
    for spec, values in zip(FIELDS[batch.kind], columns.values(), strict=True):
        kinds = {type(value) for value in values}
        assert kinds == ({int} if spec.integral else {float})


def test_to_batch_is_decode_batch() -> None:
    """to_batch() gives the batch decode_batch gives."""
    batch = decode_batch(payload_of(_pack_batch()))
    assert decode_columns(payload_of(batch)).to_batch() == batch


def test_event_beyond_the_samples_is_refused() -> None:
    """An event pointing past the last sample fails as it does in decode_batch."""
    payload = payload_of(_pack_batch())
    payload["ev"] = [{"k": "charge", "at": 3, "mode": 1}]
    with pytest.raises(EventError, match=r"event 'charge' at 3 is outside 0\.\.2"):
        decode_columns(payload)


def test_too_many_events_are_refused() -> None:
    """More than MAX_EVENTS events fail as they do in decode_batch."""
    payload = payload_of(_pack_batch())
    payload["ev"] = [{"k": "charge", "at": 0, "mode": 1}] * 65
    with pytest.raises(EventError, match="at most 64 events, not 65"):
        decode_columns(payload)


def test_out_of_range_column_names_the_element() -> None:
    """A wire value outside its documented range is refused with its index."""
    payload = payload_of(_pack_batch())
    column = next(spec for spec in FIELDS["pack"] if spec.key == "alarm")
    payload["s"] = dict(payload["s"])
    payload["s"]["alarm"] = type(payload["s"]["alarm"]).from_values(
        tag=column.element.tag, values=[0, 9, 0]
    )
    with pytest.raises(FieldRangeError, match=r"alarm\[1\] = 9 is outside 0\.\.4"):
        decode_columns(payload)


def _pack_batch() -> TelemetryBatch:
    return TelemetryBatch(
        kind="pack", t_ms=1_700_000_000_000, dt_ms=1000, samples=(pack_sample(),) * 3
    )
