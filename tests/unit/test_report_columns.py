"""The columnar condition report equals the per-sample reference and validates like the codec."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings

from ledger.cbor import TypedArray
from ledger.report import ConditionReport, ReportParams, compute_report
from ledger.report.columns import decode_all, memory_values
from ledger.telemetry import FIELDS, TelemetryError, decode_columns, encode_batch
from tests.support.bundle_world import T0, bus_batch, bus_sample, pack_batch, pack_sample
from tests.support.report_reference import compute_report as reference_report
from tests.support.strategies import report_payload_lists

Payload = dict[str, Any]
U32_LE_TAG = 70
"""RFC 8746: uint32, little endian (the soc column is uint16)."""
BUS_FIGURES = frozenset({
    "distance", "energy_per_km", "auxiliary_share", "km_per_day", "charging_sessions",
    "charging_hours", "charging_energy",
})  # fmt: skip
"""Figures of ``ledger.report.bus`` (and stints), which came after the per-sample reference:
``tests/unit/test_report_bus.py`` checks them against known answers instead."""


def _without_bus_figures(report: ConditionReport) -> dict[str, Any]:
    found = report.to_dict()
    found["figures"] = {k: v for k, v in found["figures"].items() if k not in BUS_FIGURES}
    found.pop("stints")
    return found


@settings(max_examples=80, deadline=None)
@given(payloads=report_payload_lists())
def test_columnar_report_is_byte_identical(payloads: list[Payload]) -> None:
    """For random devices, kinds, tied times and events, to_dict() equals the reference's
    (figures of the bus module aside)."""
    for asset_id, kind in (("pack-a", "pack"), ("bus-a", "bus")):
        for params in (ReportParams(), ReportParams(rated_capacity_ah=50.0, soc_bins=7)):
            args: dict[str, Any] = {"asset_id": asset_id, "asset_kind": kind, "from_ms": 0,
                                    "to_ms": 10**9, "params": params}  # fmt: skip
            got = _without_bus_figures(compute_report(payloads, **args))
            assert got == _without_bus_figures(reference_report(payloads, **args))


def _pack(seq: int, t_ms: int = T0) -> Payload:
    batch = pack_batch(t_ms, [pack_sample(soc=0.5), pack_sample(soc=0.4)], dt_ms=60_000)
    return {"v": 1, "dev": "pack-1", "seq": seq, "prev": bytes(32), "t": t_ms,
            **encode_batch(batch)}  # fmt: skip


def _bus(seq: int) -> Payload:
    batch = bus_batch(T0, [bus_sample()], dt_ms=1000)
    return {"v": 1, "dev": "bus-1", "seq": seq, "prev": bytes(32), "t": T0,
            **encode_batch(batch)}  # fmt: skip


def _column(payload: Payload, key: str, values: list[int], tag: int | None = None) -> Payload:
    kind = payload["kind"]
    spec = next(s for s in FIELDS[kind] if s.key == key)
    column = TypedArray.from_values(tag=tag or spec.element.tag, values=values)
    return {**payload, "s": {**payload["s"], key: column}}


MUTATIONS: dict[str, Callable[[Payload], Payload]] = {
    "soc out of range": lambda p: _column(p, "soc", [1001, 5]),
    "current below range": lambda p: _column(p, "i", [-30_001, 0]),
    "wrong tag": lambda p: _column(p, "soc", [1, 2], tag=U32_LE_TAG),
    "ragged": lambda p: _column(p, "soc", [1, 2, 3]),
    "no samples": lambda p: {
        **p,
        "s": {k: TypedArray.from_values(tag=v.encoded[1], values=[]) for k, v in p["s"].items()},
    },
    "unknown key": lambda p: {**p, "extra": 1},
    "missing column": lambda p: {**p, "s": {k: v for k, v in p["s"].items() if k != "soc"}},
    "column not typed": lambda p: {**p, "s": {**p["s"], "soc": [1, 2]}},
    "bool t": lambda p: {**p, "t": True},
    "negative dt": lambda p: {**p, "dt": -1},
    "no kind": lambda p: {k: v for k, v in p.items() if k != "kind"},
    "bad host": lambda p: {**p, "host": ""},
    "bad event": lambda p: {**p, "ev": [{"k": "nope", "at": 0}]},
    "event beyond samples": lambda p: {
        **p,
        "ev": [{"k": "recal", "at": 9, "from": 1, "to": 2, "why": "full"}],
    },
}


def _error_of(payload: Payload) -> TelemetryError:
    try:
        decode_columns(payload)
    except TelemetryError as exc:
        return exc
    raise AssertionError("the mutation left a valid payload")


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_errors_are_decode_columns_errors(name: str) -> None:
    """A bad payload among good ones raises exactly decode_columns's error for it."""
    bad = MUTATIONS[name](_pack(1))
    expected = _error_of(bad)
    with pytest.raises(type(expected), match=f"^{_escape(str(expected))}$"):
        decode_all([_pack(0), _bus(0), bad, _pack(2)])


def test_first_bad_payload_wins() -> None:
    """With a range error before a structural error, the range error is raised (order kept)."""
    first = MUTATIONS["soc out of range"](_pack(1))
    second = MUTATIONS["unknown key"](_pack(2))
    with pytest.raises(type(_error_of(first)), match=_escape(str(_error_of(first)))):
        decode_all([_pack(0), first, second])
    with pytest.raises(type(_error_of(second)), match=_escape(str(_error_of(second)))):
        decode_all([_pack(0), second, first])


def test_bad_payload_fails_the_report() -> None:
    """compute_report refuses a payload that the codec refuses."""
    bad = MUTATIONS["soc out of range"](_pack(1))
    with pytest.raises(TelemetryError, match=r"soc\[0\] = 1001 is outside 0\.\.1000"):
        compute_report([_pack(0), bad], asset_id="pack-1", asset_kind="pack", from_ms=0, to_ms=1)


def test_huge_wire_values_divide_exactly() -> None:
    """Counters beyond 2**53 convert like Python's int / int (correctly rounded)."""
    spec = next(s for s in FIELDS["pack"] if s.key == "ah_in")
    import numpy as np

    wire = np.array([2**62 + 7, 2**53 + 1, 3], dtype=np.uint64)
    assert memory_values(spec, wire).tolist() == [v / spec.per_unit for v in wire.tolist()]


def test_decoded_rows_point_at_each_message() -> None:
    """Each message's samples sit at its row in its kind's columns, in the order given."""
    decoded = decode_all([_pack(0), _bus(0), _pack(1, T0 + 120_000)])
    assert [(m.kind, m.row, m.n) for m in decoded.messages] == [
        ("pack", 0, 2), ("bus", 0, 1), ("pack", 2, 2)
    ]  # fmt: skip
    assert decoded.wire["pack"]["soc"].tolist() == [500, 400, 500, 400]


def _escape(text: str) -> str:
    import re

    return re.escape(text)
