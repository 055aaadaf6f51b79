"""The telemetry schema: round trips, wire shape, and every validation failure."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from ledger import VerificationError, cbor
from ledger.cbor import TypedArray
from ledger.telemetry import (
    ALARM_BITS,
    CELL_VOLTAGE_TAG,
    EVENT_KEYS,
    FIELDS,
    MAX_SAMPLES,
    BusSample,
    Event,
    EventError,
    FieldRangeError,
    FieldTypeError,
    MissingFieldError,
    PackSample,
    RaggedColumnsError,
    SampleCountError,
    TelemetryBatch,
    TelemetryError,
    UnknownFieldError,
    UnknownKindError,
    decode_batch,
    encode_batch,
)
from tests.support.strategies import telemetry_batches

PACK = PackSample(
    voltage_v=620.3, current_a=-151.2, soc=0.734, cell_v_max=3.312, cell_v_max_pos=17,
    cell_v_min=3.298, cell_v_min_pos=150, temp_max_c=31.5, temp_max_pos=4, temp_min_c=27.1,
    temp_min_pos=22, insulation_ohm=4_200_000.0, alarm_level=0, alarm_flags=0,
    soh_capacity=0.9712, resistance_growth=1.043, r0_ohm=0.0251, capacity_ah=543.8,
    energy_in_wh=1_234_567.0, energy_out_wh=1_200_000.0, ah_in=3456.7, ah_out=3400.1,
    charge_state=1,
)  # fmt: skip
BUS = BusSample(
    speed_mps=8.5, odometer_m=123_456.7, lat_deg=22.543096, lon_deg=114.057865,
    vehicle_state=1, charge_state=0, traction_power_w=85_300.0, aux_power_w=6500.0,
    ambient_c=28.4, at_stop=0,
)  # fmt: skip
T0 = 1_700_000_000_000
ENVELOPE: dict[str, Any] = {"v": 1, "dev": "pack-0001", "seq": 7, "prev": bytes(32), "t": T0}


def payload_of(batch: TelemetryBatch) -> dict[str, Any]:
    """The full payload the agent would sign for ``batch``."""
    return {**ENVELOPE, **encode_batch(batch), "t": batch.t_ms}


def column(key: str, values: list[int], kind: str = "pack") -> TypedArray:
    """The wire column ``key`` of ``kind`` holding ``values``, in the column's typed array."""
    spec = next(spec for spec in FIELDS[kind] if spec.key == key)
    return TypedArray.from_values(tag=spec.element.tag, values=values)


def cells_row(millivolts: list[int]) -> TypedArray:
    """One ``cells.u`` row: a uint16 LE typed array of mV."""
    return TypedArray.from_values(tag=CELL_VOLTAGE_TAG, values=millivolts)


def pack_batch(n: int = 3, **changes: Any) -> TelemetryBatch:
    """A valid pack batch of ``n`` copies of PACK."""
    fields: dict[str, Any] = {
        "kind": "pack", "t_ms": ENVELOPE["t"], "dt_ms": 1000, "samples": (PACK,) * n,
        "host": "bus-0042",
    }  # fmt: skip
    fields.update(changes)
    return TelemetryBatch(**fields)


def bus_batch(n: int = 2) -> TelemetryBatch:
    """A valid bus batch of ``n`` copies of BUS."""
    return TelemetryBatch(
        kind="bus", t_ms=ENVELOPE["t"], dt_ms=1000, samples=(BUS,) * n, packs=("pack-0001",)
    )


class TestRoundTrip:
    """What goes on the wire comes back as it went in."""

    @settings(max_examples=150, deadline=None)
    @given(batch=telemetry_batches())
    def test_decode_inverts_encode(self, batch: TelemetryBatch) -> None:
        """decode_batch(encode_batch(b)) == b for any valid batch."""
        assert decode_batch(payload_of(batch)) == batch

    @settings(max_examples=50, deadline=None)
    @given(batch=telemetry_batches())
    def test_survives_deterministic_cbor(self, batch: TelemetryBatch) -> None:
        """The payload survives the strict deterministic codec unchanged."""
        payload = payload_of(batch)
        assert cbor.decode(cbor.encode(payload)) == payload

    def test_pack_values_keep_their_resolution(self) -> None:
        """A realistic pack sample comes back within one resolution step of each column."""
        decoded = decode_batch(payload_of(pack_batch(1))).samples[0]
        assert isinstance(decoded, PackSample)
        for spec in FIELDS["pack"]:
            got, want = getattr(decoded, spec.attr), getattr(PACK, spec.attr)
            assert abs(got - want) <= 0.5 / spec.per_unit + 1e-9, spec.key

    def test_columns_are_typed_arrays_of_equal_length(self) -> None:
        """Every column is a typed array of n integers; the speed column is not called v."""
        for batch in (pack_batch(4), bus_batch(4)):
            columns = encode_batch(batch)["s"]
            assert isinstance(columns, dict)
            assert "v" not in columns
            assert {len(c) for c in columns.values()} == {4}
            assert all(type(c) is TypedArray for c in columns.values())

    @pytest.mark.parametrize("kind", ["pack", "bus"])
    def test_each_column_has_its_narrowest_little_endian_type(self, kind: str) -> None:
        """A column's tag is the narrowest LE integer type holding its documented range."""
        columns = encode_batch(pack_batch(1) if kind == "pack" else bus_batch(1))["s"]
        assert isinstance(columns, dict)
        for spec in FIELDS[kind]:
            element = columns[spec.key].element
            assert element.tag == spec.element.tag
            assert element.lo <= spec.lo
            assert spec.hi <= element.hi
            assert element.width == 1 or element.little_endian
            narrower = [e for e in cbor.TYPED_ARRAY_TAGS.values() if e.width < element.width]
            assert not any(e.lo <= spec.lo and spec.hi <= e.hi for e in narrower), spec.key

    def test_column_bytes_are_little_endian(self) -> None:
        """Pack current -151.2 A travels as sint16 LE (tag 77) bytes 0x18 0xfa."""
        columns = encode_batch(pack_batch(1))["s"]
        assert isinstance(columns, dict)
        assert columns["i"].encoded == bytes.fromhex("d84d4218fa")

    def test_documented_fixed_point(self) -> None:
        """Current is signed 0.1 A (negative = charging) and insulation is in kOhm."""
        columns = encode_batch(pack_batch(1))["s"]
        assert isinstance(columns, dict)
        assert list(columns["i"].values()) == [-1512]
        assert list(columns["riso"].values()) == [4200]
        assert list(columns["soc"].values()) == [734]

    def test_insulation_saturates_at_60_megaohm(self) -> None:
        """GB/T 32960 caps insulation resistance at 60 000 kOhm; larger values saturate."""
        batch = pack_batch(1, samples=(replace(PACK, insulation_ohm=5e9),))
        columns = encode_batch(batch)["s"]
        assert isinstance(columns, dict)
        assert list(columns["riso"].values()) == [60_000]

    def test_cell_voltages_round_trip_in_millivolts(self) -> None:
        """Optional per-cell voltages travel as mV rows, one per sample."""
        cells = (3.301, 3.299, 3.305)
        batch = pack_batch(2, samples=(replace(PACK, cell_voltages=cells),) * 2)
        payload = payload_of(batch)
        assert payload["cells"] == {"u": [cells_row([3301, 3299, 3305])] * 2}
        assert decode_batch(payload).samples[0] == replace(PACK, cell_voltages=cells)

    def test_end_ms_is_the_next_batch_start(self) -> None:
        """end_ms = t + n * dt."""
        assert pack_batch(5).end_ms == ENVELOPE["t"] + 5000


class TestMetadata:
    """FIELDS and the alarm bit table are consistent."""

    @pytest.mark.parametrize("kind", ["pack", "bus"])
    def test_keys_unique_and_ranges_ordered(self, kind: str) -> None:
        """Column keys and attributes are unique; every range is non-empty."""
        specs = FIELDS[kind]
        assert len({s.key for s in specs}) == len(specs)
        assert len({s.attr for s in specs}) == len(specs)
        assert all(s.lo < s.hi for s in specs)

    def test_alarm_bits_fit_the_flag_column(self) -> None:
        """Every documented alarm bit fits in the 32-bit aflags column."""
        assert max(ALARM_BITS) < 32


class TestDecodeRejects:
    """decode_batch names exactly what is wrong."""

    def test_errors_are_verification_errors(self) -> None:
        """Every telemetry failure is a VerificationError."""
        assert issubclass(TelemetryError, VerificationError)

    def test_unknown_kind(self) -> None:
        """A kind other than bus/pack is refused."""
        with pytest.raises(UnknownKindError, match="kind 'tram'"):
            decode_batch({**payload_of(pack_batch()), "kind": "tram"})

    def test_ragged_columns(self) -> None:
        """Columns of different lengths are refused, naming both."""
        payload = payload_of(pack_batch(3))
        payload["s"]["soc"] = column("soc", [734, 734])
        with pytest.raises(RaggedColumnsError, match="soc has 2"):
            decode_batch(payload)

    @pytest.mark.parametrize(
        ("bad", "got"), [([734], "list"), (734, "int"), (b"\xde\x02", "bytes"), (None, "NoneType")]
    )
    def test_column_not_a_typed_array(self, bad: object, got: str) -> None:
        """A plain array, integer, byte string or null column is refused, naming the type."""
        payload = payload_of(pack_batch(1))
        payload["s"]["soc"] = bad
        with pytest.raises(
            FieldTypeError,
            match=rf"soc must be a uint16 LE typed array \(RFC 8746 tag 69\), not {got}",
        ):
            decode_batch(payload)

    @pytest.mark.parametrize("tag", [64, 65, 70, 77, 78])
    def test_column_of_another_typed_array_type(self, tag: int) -> None:
        """Only the column's one canonical typed-array type is accepted (determinism)."""
        payload = payload_of(pack_batch(1))
        payload["s"]["soc"] = TypedArray.from_values(tag=tag, values=[73])
        with pytest.raises(FieldTypeError, match=rf"soc must be a uint16 LE .* not tag {tag}"):
            decode_batch(payload)

    def test_samples_not_a_map(self) -> None:
        """s must be a map."""
        with pytest.raises(FieldTypeError, match="s must be a map"):
            decode_batch({**payload_of(pack_batch(1)), "s": [1, 2]})

    @pytest.mark.parametrize(("key", "value"), [("soc", 1001), ("alarm", 5), ("i", -30_001)])
    def test_out_of_range(self, key: str, value: int) -> None:
        """A value outside its documented range is refused."""
        payload = payload_of(pack_batch(1))
        payload["s"][key] = column(key, [0, value])
        with pytest.raises(FieldRangeError, match=rf"{key}\[1\] = {value} is outside"):
            decode_batch(payload)

    def test_too_many_samples(self) -> None:
        """More than MAX_SAMPLES samples are refused."""
        payload = payload_of(pack_batch(1))
        payload["s"] = {
            k: column(k, list(v.values()) * (MAX_SAMPLES + 1)) for k, v in payload["s"].items()
        }
        with pytest.raises(SampleCountError, match="not 601"):
            decode_batch(payload)

    def test_no_samples(self) -> None:
        """An empty batch is refused."""
        payload = payload_of(pack_batch(1))
        payload["s"] = {k: column(k, []) for k in payload["s"]}
        with pytest.raises(SampleCountError, match="not 0"):
            decode_batch(payload)

    def test_unknown_column(self) -> None:
        """A column the kind does not define is refused."""
        payload = payload_of(bus_batch(1))
        payload["s"]["soc"] = column("soc", [1], kind="pack")
        with pytest.raises(UnknownFieldError, match=r"unknown columns \['soc'\]"):
            decode_batch(payload)

    def test_missing_column(self) -> None:
        """Every column of the kind is required."""
        payload = payload_of(bus_batch(1))
        del payload["s"]["odo"]
        with pytest.raises(MissingFieldError, match=r"lack columns \['odo'\]"):
            decode_batch(payload)

    def test_unknown_top_level_key(self) -> None:
        """A top-level key outside envelope and schema is refused."""
        with pytest.raises(UnknownFieldError, match=r"unknown keys \['extra'\]"):
            decode_batch({**payload_of(pack_batch(1)), "extra": 1})

    def test_host_is_not_a_bus_key(self) -> None:
        """A bus payload cannot carry host."""
        with pytest.raises(UnknownFieldError, match=r"unknown keys \['host'\]"):
            decode_batch({**payload_of(bus_batch(1)), "host": "bus-1"})

    @pytest.mark.parametrize("key", ["t", "dt", "s"])
    def test_missing_required_key(self, key: str) -> None:
        """t, dt and s are required."""
        payload = payload_of(pack_batch(1))
        del payload[key]
        with pytest.raises(MissingFieldError, match=f"lacks {key}"):
            decode_batch(payload)

    @pytest.mark.parametrize("dt", [0, 99, 60_001])
    def test_period_out_of_range(self, dt: int) -> None:
        """dt must be 100..60000 ms."""
        with pytest.raises(FieldRangeError, match=f"dt = {dt}"):
            decode_batch({**payload_of(pack_batch(1)), "dt": dt})

    def test_bus_without_pack_list(self) -> None:
        """A bus payload must name its installed packs (possibly none)."""
        payload = payload_of(bus_batch(1))
        del payload["pack"]
        with pytest.raises(MissingFieldError, match="lacks the array pack"):
            decode_batch(payload)

    @pytest.mark.parametrize(
        ("host", "error", "match"),
        [(42, FieldTypeError, "host must be text"), ("x" * 65, FieldRangeError, "1..64")],
    )
    def test_bad_host(self, host: object, error: type[Exception], match: str) -> None:
        """host is 1..64 characters of text."""
        with pytest.raises(error, match=match):
            decode_batch({**payload_of(pack_batch(1)), "host": host})

    @pytest.mark.parametrize(
        ("cells", "error", "match"),
        [
            ([cells_row([3300])], FieldTypeError, 'exactly the key "u"'),
            ({"u": [cells_row([3300])] * 2}, RaggedColumnsError, r"one array per sample \(1\)"),
            ({"u": [cells_row([])]}, FieldTypeError, "at least one cell voltage"),
            ({"u": [[3300]]}, FieldTypeError, r"cells.u\[0\] must be a uint16 LE typed array"),
            ({"u": [cells_row([3300, 15_001])]}, FieldRangeError, r"cells.u\[0\]\[1\] = 15001"),
        ],
    )
    def test_bad_cells(self, cells: object, error: type[Exception], match: str) -> None:
        """Per-cell voltages must be one non-empty uint16 typed array of mV per sample."""
        with pytest.raises(error, match=match):
            decode_batch({**payload_of(pack_batch(1)), "cells": cells})


class TestEvents:
    """Events are validated both when built and when decoded."""

    @pytest.mark.parametrize(
        ("event", "match"),
        [
            ({"k": "party", "at": 0}, "event kind 'party'"),
            ({"k": "alarm", "at": 0, "lvl": 3}, r"lacks \['flags'\]"),
            ({"k": "alarm", "at": 0, "lvl": 3, "flags": 1, "x": 1}, r"unknown keys \['x'\]"),
            ({"k": "alarm", "at": 0, "lvl": "3", "flags": 1}, "'lvl' must be int, not str"),
            ({"k": "alarm", "at": 0, "lvl": -1, "flags": 1}, "'lvl' = -1 is outside"),
            ({"k": "alarm", "at": 5, "lvl": 3, "flags": 1}, "at 5 is outside 0..0"),
            ({"at": 0}, "lacks a text k"),
            ({"k": "alarm", "lvl": 3, "flags": 1}, "lacks an integer at"),
        ],
    )
    def test_malformed_event(self, event: dict[str, object], match: str) -> None:
        """Unknown kinds, missing, unknown or mistyped keys and bad indexes are refused."""
        with pytest.raises(EventError, match=match):
            decode_batch({**payload_of(pack_batch(1)), "ev": [event]})

    def test_event_not_a_map(self) -> None:
        """Each event is a map."""
        with pytest.raises(EventError, match=r"ev\[0\] must be a map"):
            decode_batch({**payload_of(pack_batch(1)), "ev": [3]})

    def test_events_not_an_array(self) -> None:
        """ev is an array."""
        with pytest.raises(FieldTypeError, match="ev must be an array"):
            decode_batch({**payload_of(pack_batch(1)), "ev": {}})

    def test_too_many_events(self) -> None:
        """A batch holds at most 64 events."""
        event = Event(kind="charge", at=0, data={"mode": 1})
        with pytest.raises(EventError, match="at most 64 events, not 65"):
            pack_batch(1, events=(event,) * 65)

    def test_events_travel_flat(self) -> None:
        """An event goes on the wire as one flat map with k and at."""
        event = Event(kind="pack_swap", at=1, data={"out": "pack-1", "in": "pack-2"})
        batch = TelemetryBatch(
            kind="bus", t_ms=0, dt_ms=1000, samples=(BUS, BUS), events=(event,), packs=("pack-2",)
        )
        assert encode_batch(batch)["ev"] == [{"k": "pack_swap", "at": 1, "out": "pack-1",
                                              "in": "pack-2"}]  # fmt: skip


class TestBatchRejects:
    """A TelemetryBatch cannot be built in a shape the wire would refuse."""

    def test_sample_of_the_other_kind(self) -> None:
        """A pack batch holds only PackSample."""
        with pytest.raises(FieldTypeError, match="sample 0 is a BusSample"):
            pack_batch(1, samples=(BUS,))

    def test_unknown_kind(self) -> None:
        """kind is checked at construction too."""
        with pytest.raises(UnknownKindError, match="kind 'tram'"):
            pack_batch(1, kind="tram")

    def test_empty(self) -> None:
        """No samples, no batch."""
        with pytest.raises(SampleCountError, match="not 0"):
            pack_batch(0)

    def test_bus_with_host(self) -> None:
        """host belongs to packs."""
        with pytest.raises(UnknownFieldError, match="host is a pack key"):
            TelemetryBatch(kind="bus", t_ms=0, dt_ms=1000, samples=(BUS,), host="bus-1")

    def test_pack_with_packs(self) -> None:
        """pack ids belong to buses."""
        with pytest.raises(UnknownFieldError, match="pack is a bus key"):
            pack_batch(1, packs=("pack-1",))

    def test_bad_pack_id(self) -> None:
        """Pack ids are non-empty text."""
        with pytest.raises(FieldRangeError, match=r"pack must be 1\.\.64"):
            TelemetryBatch(kind="bus", t_ms=0, dt_ms=1000, samples=(BUS,), packs=("",))

    def test_negative_time(self) -> None:
        """t is an unsigned Unix time in ms."""
        with pytest.raises(FieldRangeError, match="t = -1"):
            pack_batch(1, t_ms=-1)

    def test_encode_refuses_unrepresentable_value(self) -> None:
        """A value outside a column's range cannot be encoded."""
        batch = pack_batch(1, samples=(replace(PACK, soc=1.2),))
        with pytest.raises(FieldRangeError, match=r"soc = 1\.2 encodes to soc = 1200"):
            encode_batch(batch)

    def test_encode_refuses_out_of_range_cell_voltage(self) -> None:
        """A cell voltage outside 0..15 V cannot be encoded."""
        batch = pack_batch(1, samples=(replace(PACK, cell_voltages=(3.3, 15.5)),))
        with pytest.raises(FieldRangeError, match=r"cell voltage 1 = 15\.5 is outside"):
            encode_batch(batch)

    def test_encode_refuses_partial_cell_voltages(self) -> None:
        """Per-cell voltages are given for every sample or none."""
        batch = pack_batch(2, samples=(PACK, replace(PACK, cell_voltages=(3.3,))))
        with pytest.raises(MissingFieldError, match="every sample or none"):
            encode_batch(batch)


def test_protocol_doc_lists_every_column() -> None:
    """docs/protocol.md documents every column of FIELDS and every event kind."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text("utf-8")
    section = doc.split("## Telemetry payload", 1)[1]
    missing = [
        f"{kind}.{spec.key}"
        for kind, specs in FIELDS.items()
        for spec in specs
        if f"| `{spec.key}` | {spec.description} |" not in section
    ]
    missing += [k for k in EVENT_KEYS if f"| `{k}` |" not in section]
    assert missing == []
