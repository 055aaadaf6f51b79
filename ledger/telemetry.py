"""The telemetry part of a signed payload: columnar fixed-point samples and events.

A payload (contract 1) carries ``v``, ``dev``, ``seq``, ``prev`` and ``t`` (Unix ms of the
first sample); this module defines everything else in it:

- ``kind``: ``"bus"`` (the vehicle controller) or ``"pack"`` (the pack's BMS);
- ``dt``: the sample period in ms; sample ``k`` was taken at ``t + k * dt``;
- ``s``: the samples, COLUMNAR: ``{column key: typed array}``, every column of the kind
  present and of the same length n (1..600), integers in the fixed-point resolutions of
  :data:`FIELDS` (GB/T 32960 resolutions where the standard has the item). Each column is an
  RFC 8746 typed array (:class:`ledger.cbor.TypedArray`), little endian, of the narrowest
  integer type that holds the column's documented range (:attr:`FieldSpec.element`): one
  type per column, so the encoding stays deterministic;
- ``ev``: optional list of events ``{"k": kind, "at": sample index, ...}``;
- ``host`` (pack, optional): the id of the bus the pack is installed in;
  ``pack`` (bus): the ids of the packs installed in the bus;
- ``cells`` (pack, optional): ``{"u": [mV per cell, one uint16 LE typed array per sample]}``.

In memory a sample is a :class:`PackSample` or :class:`BusSample` holding SI floats (or the
conventional unit named by the attribute's suffix). Current is positive when the pack
DISCHARGES. :func:`encode_batch` and :func:`decode_batch` convert, and decoding validates
every key, type, length and range: a payload that does not fit raises a
:class:`TelemetryError` naming the offending key.
"""

from __future__ import annotations

import array
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import truediv
from typing import Final, Literal

from .cbor import TYPED_ARRAY_TAGS, ElementType, TypedArray
from .errors import VerificationError

Kind = Literal["bus", "pack"]
KINDS: Final = ("bus", "pack")
MAX_SAMPLES: Final = 600
MIN_DT_MS: Final = 100
MAX_DT_MS: Final = 60_000
ENVELOPE_KEYS: Final = frozenset({"v", "dev", "seq", "prev", "t"})
U32: Final = 2**32 - 1
U63: Final = 2**63 - 1
MAX_ID_LEN: Final = 64
MAX_EVENTS: Final = 64
MAX_EVENT_TEXT: Final = MAX_ID_LEN
"""Longest text value of an event (a device id, ``""`` for none, or a short word)."""


class TelemetryError(VerificationError):
    """The telemetry part of a payload does not follow the schema."""


class UnknownKindError(TelemetryError):
    """``kind`` is not one of the device kinds."""


class MissingFieldError(TelemetryError):
    """A required key or column is absent."""


class UnknownFieldError(TelemetryError):
    """A key or column that the schema does not define is present."""


class FieldTypeError(TelemetryError):
    """A value has the wrong CBOR type."""


class FieldRangeError(TelemetryError):
    """A value is outside its documented range."""


class RaggedColumnsError(TelemetryError):
    """Columns of one batch have different lengths."""


class SampleCountError(TelemetryError):
    """A batch holds no sample or more than :data:`MAX_SAMPLES`."""


class EventError(TelemetryError):
    """An event is malformed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldSpec:
    """One sample column: wire key, in-memory attribute, fixed-point scaling and meaning.

    ``wire = round(value * per_unit)``; ``value = wire / per_unit``. ``resolution`` is the
    value of one wire step in ``unit``; ``lo``/``hi`` bound the wire integer.
    """

    key: str
    attr: str
    unit: str
    resolution: str
    per_unit: float
    senml: str
    gbt: str
    description: str
    lo: int
    hi: int
    integral: bool = False

    @property
    def element(self) -> ElementType:
        """The column's typed-array element: the narrowest little-endian integer for lo..hi."""
        return _narrowest_element(self.lo, self.hi)


def _narrowest_element(lo: int, hi: int) -> ElementType:
    signed = lo < 0
    for exponent in range(4):
        tag = 64 | signed << 3 | (exponent > 0) << 2 | exponent
        element = TYPED_ARRAY_TAGS[tag]
        if element.lo <= lo and hi <= element.hi:
            return element
    raise ValueError(f"no 64-bit integer type holds {lo}..{hi}")  # pragma: no cover


def _f(  # noqa: PLR0917  (one positional row per column reads as a table)
    key: str,
    attr: str,
    unit: str,
    resolution: str,
    per_unit: float,
    senml: str,
    gbt: str,
    description: str,
    lo: int,
    hi: int,
) -> FieldSpec:
    return FieldSpec(
        key=key,
        attr=attr,
        unit=unit,
        resolution=resolution,
        per_unit=per_unit,
        senml=senml,
        gbt=gbt,
        description=description,
        lo=lo,
        hi=hi,
        integral=per_unit == 1 and unit in {"1", "bits"},
    )


_PACK_FIELDS: Final = (
    _f("u", "voltage_v", "V", "0.1 V", 10, "V", "total voltage", "pack terminal voltage", 0,
       10_000),
    _f("i", "current_a", "A", "0.1 A", 10, "A", "total current",
       "pack current, positive = discharge, negative = charge", -30_000, 30_000),
    _f("soc", "soc", "/", "0.1 %", 1000, "/", "SOC (1 % in GB/T)",
       "state of charge estimated by the BMS (coulomb counting)", 0, 1000),
    _f("ucmax", "cell_v_max", "V", "1 mV", 1000, "V", "max cell voltage",
       "highest cell (series element) voltage", 0, 15_000),
    _f("ucmax_pos", "cell_v_max_pos", "1", "1", 1, "count", "max cell voltage cell no.",
       "number (1-based) of the highest cell", 1, 65_535),
    _f("ucmin", "cell_v_min", "V", "1 mV", 1000, "V", "min cell voltage",
       "lowest cell (series element) voltage", 0, 15_000),
    _f("ucmin_pos", "cell_v_min_pos", "1", "1", 1, "count", "min cell voltage cell no.",
       "number (1-based) of the lowest cell", 1, 65_535),
    _f("tmax", "temp_max_c", "Cel", "0.1 degC", 10, "Cel", "max temperature",
       "highest probe temperature", -400, 2100),
    _f("tmax_pos", "temp_max_pos", "1", "1", 1, "count", "max temperature probe no.",
       "number (1-based) of the hottest probe", 1, 65_535),
    _f("tmin", "temp_min_c", "Cel", "0.1 degC", 10, "Cel", "min temperature",
       "lowest probe temperature", -400, 2100),
    _f("tmin_pos", "temp_min_pos", "1", "1", 1, "count", "min temperature probe no.",
       "number (1-based) of the coldest probe", 1, 65_535),
    _f("riso", "insulation_ohm", "Ohm", "1 kOhm", 0.001, "Ohm", "insulation resistance",
       "HV-to-chassis insulation resistance, saturates at 60 000 kOhm", 0, 60_000),
    _f("alarm", "alarm_level", "1", "1", 1, "count", "highest alarm level",
       "0 none, 1 no effect, 2 limit driving, 3 stop, 4 thermal event", 0, 4),
    _f("aflags", "alarm_flags", "bits", "1", 1, "count", "general alarm flags",
       "bit set of ALARM_BITS", 0, U32),
    _f("soh_c", "soh_capacity", "/", "0.01 %", 10_000, "/", "-",
       "capacity state of health estimated by the BMS", 0, 12_000),
    _f("soh_r", "resistance_growth", "/", "0.1 %", 1000, "/", "-",
       "internal resistance relative to beginning of life (1000 = new)", 0, 10_000),
    _f("r0", "r0_ohm", "Ohm", "0.1 mOhm", 10_000, "Ohm", "-",
       "estimated ohmic (DC 1 s) pack resistance at 25 degC", 0, 100_000),
    _f("cap", "capacity_ah", "A.h", "0.1 Ah", 10, "A.h", "-",
       "estimated usable pack capacity", 0, 100_000),
    _f("e_in", "energy_in_wh", "W.h", "1 Wh", 1, "W.h", "-",
       "cumulative energy charged into the pack since manufacture", 0, U63),
    _f("e_out", "energy_out_wh", "W.h", "1 Wh", 1, "W.h", "-",
       "cumulative energy discharged from the pack since manufacture", 0, U63),
    _f("ah_in", "ah_in", "A.h", "0.1 Ah", 10, "A.h", "-",
       "cumulative charge throughput into the pack", 0, U63),
    _f("ah_out", "ah_out", "A.h", "0.1 Ah", 10, "A.h", "-",
       "cumulative charge throughput out of the pack", 0, U63),
    _f("chg", "charge_state", "1", "1", 1, "count", "charging status",
       "0 not charging, 1 depot plug-in, 2 pantograph", 0, 2),
)  # fmt: skip

_BUS_FIELDS: Final = (
    _f("spd", "speed_mps", "m/s", "0.1 km/h", 36, "m/s", "vehicle speed",
       "vehicle speed (column named spd so it never reads as the payload's v)", 0, 2200),
    _f("odo", "odometer_m", "m", "0.1 km", 0.01, "m", "accumulated mileage",
       "odometer", 0, 99_999_999),
    _f("lat", "lat_deg", "lat", "1e-6 deg", 1_000_000, "lat", "latitude",
       "WGS-84 latitude, north positive", -90_000_000, 90_000_000),
    _f("lon", "lon_deg", "lon", "1e-6 deg", 1_000_000, "lon", "longitude",
       "WGS-84 longitude, east positive", -180_000_000, 180_000_000),
    _f("state", "vehicle_state", "1", "1", 1, "count", "vehicle status",
       "1 started, 2 shut down, 3 other", 1, 3),
    _f("chg", "charge_state", "1", "1", 1, "count", "charging status",
       "0 not charging, 1 depot plug-in, 2 pantograph", 0, 2),
    _f("ptr", "traction_power_w", "W", "100 W", 0.01, "W", "-",
       "traction power at the pack, negative while regenerating", -10_000, 10_000),
    _f("aux", "aux_power_w", "W", "1 W", 1, "W", "-",
       "auxiliary load (HVAC, air compressor, 24 V DC-DC)", 0, 200_000),
    _f("tamb", "ambient_c", "Cel", "0.1 degC", 10, "Cel", "-",
       "ambient air temperature", -600, 700),
    _f("stop", "at_stop", "1", "1", 1, "count", "-",
       "1 while standing at a stop or terminal, else 0", 0, 1),
)  # fmt: skip

FIELDS: Final[Mapping[str, tuple[FieldSpec, ...]]] = {"pack": _PACK_FIELDS, "bus": _BUS_FIELDS}
"""Column metadata per device kind, in wire order; docs/protocol.md's tables come from it."""

CELL_VOLTAGE_TAG: Final = 69
"""``cells.u`` rows are uint16 little-endian typed arrays (RFC 8746 tag 69) of mV."""
_COLUMN_TAGS: Final = {
    kind: {s.key: s.element.tag for s in specs} for kind, specs in FIELDS.items()
}

ALARM_BITS: Final[Mapping[int, str]] = {
    0: "temperature difference",
    1: "battery high temperature",
    2: "energy storage over-voltage",
    3: "energy storage under-voltage",
    4: "SOC low",
    5: "cell (2025: smallest parallel unit) over-voltage",
    6: "cell (2025: smallest parallel unit) under-voltage",
    7: "SOC high",
    8: "SOC jump",
    9: "rechargeable energy storage system mismatch",
    10: "cell (2025: smallest parallel unit) consistency poor",
    11: "insulation (2025: insulation resistance failure)",
    12: "DC-DC temperature",
    13: "brake system",
    14: "DC-DC status",
    15: "drive motor controller temperature",
    16: "high-voltage interlock",
    17: "drive motor temperature",
    18: "energy storage overcharge",
    19: "drive motor over-speed (2025)",
    20: "drive motor over-current (2025)",
    21: "super capacitor over-temperature (2025)",
    22: "super capacitor over-voltage (2025)",
    23: "rechargeable energy storage thermal event (2025)",
    24: "hydrogen leak (2025)",
    25: "on-board hydrogen system pressure abnormal (2025)",
    26: "on-board hydrogen system temperature abnormal (2025)",
    27: "fuel cell stack over-temperature (2025)",
}
"""General alarm flag bits: GB/T 32960.3-2016 table 18 (bits 0-18) and GB/T 32960.3-2025
clause 7.2.4.9 table 24 (bits 0-27; 28-31 reserved). docs/protocol.md gives the sources."""
THERMAL_EVENT_BIT: Final = 23
"""The 2025 edition's pack thermal event flag (level 4)."""

EVENT_KEYS: Final[Mapping[str, Mapping[str, type]]] = {
    "alarm": {"lvl": int, "flags": int},
    "pre_fault": {"lvl": int},
    "recal": {"from": int, "to": int, "why": str},
    "pack_swap": {"out": str, "in": str},
    "host": {"host": str},
    "charge": {"mode": int},
    "drop": {"first": int, "last": int, "n": int, "total": int},
}
"""Event kinds and their keys besides ``k`` and ``at`` (all required)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PackSample:
    """One BMS sample in memory (SI / suffixed units; current positive = discharge)."""

    voltage_v: float
    current_a: float
    soc: float
    cell_v_max: float
    cell_v_max_pos: int
    cell_v_min: float
    cell_v_min_pos: int
    temp_max_c: float
    temp_max_pos: int
    temp_min_c: float
    temp_min_pos: int
    insulation_ohm: float
    alarm_level: int
    alarm_flags: int
    soh_capacity: float
    resistance_growth: float
    r0_ohm: float
    capacity_ah: float
    energy_in_wh: float
    energy_out_wh: float
    ah_in: float
    ah_out: float
    charge_state: int
    cell_voltages: tuple[float, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BusSample:
    """One vehicle-controller sample in memory (SI / suffixed units)."""

    speed_mps: float
    odometer_m: float
    lat_deg: float
    lon_deg: float
    vehicle_state: int
    charge_state: int
    traction_power_w: float
    aux_power_w: float
    ambient_c: float
    at_stop: int


Sample = PackSample | BusSample
EventValue = int | str


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Something that happened at sample index ``at`` of its batch."""

    kind: str
    at: int
    data: Mapping[str, EventValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_event_body(self.kind, self.data)


@dataclass(frozen=True, slots=True, kw_only=True)
class TelemetryBatch:
    """The samples and events of one message, validated on construction."""

    kind: Kind
    t_ms: int
    dt_ms: int
    samples: tuple[Sample, ...]
    events: tuple[Event, ...] = ()
    host: str | None = None
    packs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise UnknownKindError(f"kind {self.kind!r} is not one of {list(KINDS)}")
        _check_int("t", self.t_ms, 0, U63)
        _check_int("dt", self.dt_ms, MIN_DT_MS, MAX_DT_MS)
        n = len(self.samples)
        if not 1 <= n <= MAX_SAMPLES:
            raise SampleCountError(f"a batch holds 1..{MAX_SAMPLES} samples, not {n}")
        expected = PackSample if self.kind == "pack" else BusSample
        for index, sample in enumerate(self.samples):
            if not isinstance(sample, expected):
                raise FieldTypeError(
                    f"sample {index} is a {type(sample).__name__}, a {self.kind} batch "
                    f"holds {expected.__name__}"
                )
        if len(self.events) > MAX_EVENTS:
            raise EventError(f"a batch holds at most {MAX_EVENTS} events, not {len(self.events)}")
        for event in self.events:
            if not 0 <= event.at < n:
                raise EventError(f"event {event.kind!r} at {event.at} is outside 0..{n - 1}")
        if self.kind == "bus" and self.host is not None:
            raise UnknownFieldError("host is a pack key; a bus batch names packs instead")
        if self.kind == "pack" and self.packs:
            raise UnknownFieldError("pack is a bus key; a pack batch names its host instead")
        if self.host is not None:
            _check_id("host", self.host)
        for pack_id in self.packs:
            _check_id("pack", pack_id)

    @property
    def end_ms(self) -> int:
        """Unix ms of the sample after the last one (the next batch's ``t``)."""
        return self.t_ms + len(self.samples) * self.dt_ms


def _check_int(key: str, value: object, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise FieldTypeError(f"{key} must be an integer, not {type(value).__name__}")
    if not lo <= value <= hi:
        raise FieldRangeError(f"{key} = {value} is outside {lo}..{hi}")
    return value


def _check_id(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise FieldTypeError(f"{key} must be text, not {type(value).__name__}")
    if not 1 <= len(value) <= MAX_ID_LEN:
        raise FieldRangeError(f"{key} must be 1..{MAX_ID_LEN} characters, not {len(value)}")
    return value


def _check_event_body(kind: str, data: Mapping[str, object]) -> None:
    spec = EVENT_KEYS.get(kind)
    if spec is None:
        raise EventError(f"event kind {kind!r} is not one of {sorted(EVENT_KEYS)}")
    missing = sorted(set(spec) - set(data))
    if missing:
        raise EventError(f"{kind} event lacks {missing}")
    unknown = sorted(set(data) - set(spec))
    if unknown:
        raise EventError(f"{kind} event has unknown keys {unknown}")
    for key, expected in spec.items():
        value = data[key]
        if not isinstance(value, expected) or isinstance(value, bool):
            raise EventError(
                f"{kind} event key {key!r} must be {expected.__name__}, not {type(value).__name__}"
            )
        if isinstance(value, int) and not 0 <= value <= U32:
            raise EventError(f"{kind} event key {key!r} = {value} is outside 0..{U32}")
        if isinstance(value, str) and len(value) > MAX_EVENT_TEXT:
            raise EventError(
                f"{kind} event key {key!r} is {len(value)} characters, at most {MAX_EVENT_TEXT}"
            )


def _to_wire(spec: FieldSpec, value: float) -> int:
    raw = round(value * spec.per_unit)
    if spec.key == "riso":
        raw = min(raw, spec.hi)  # GB/T 32960 saturates insulation resistance at 60 MOhm
    if not spec.lo <= raw <= spec.hi:
        raise FieldRangeError(
            f"{spec.attr} = {value!r} encodes to {spec.key} = {raw}, outside {spec.lo}..{spec.hi}"
        )
    return raw


def encode_batch(batch: TelemetryBatch) -> dict[str, object]:
    """The payload keys of ``batch`` other than v/dev/seq/prev/t (the agent adds those)."""
    columns: dict[str, TypedArray] = {}
    tags = _COLUMN_TAGS[batch.kind]
    for spec in FIELDS[batch.kind]:
        values = [_to_wire(spec, getattr(s, spec.attr)) for s in batch.samples]
        columns[spec.key] = TypedArray.from_values(tag=tags[spec.key], values=values)
    payload: dict[str, object] = {"kind": batch.kind, "dt": batch.dt_ms, "s": columns}
    if batch.events:
        payload["ev"] = [{"k": e.kind, "at": e.at, **e.data} for e in batch.events]
    if batch.kind == "pack":
        if batch.host is not None:
            payload["host"] = batch.host
        cells = [s.cell_voltages for s in batch.samples if isinstance(s, PackSample)]
        present = [c is not None for c in cells]
        if any(present):
            if not all(present):
                raise MissingFieldError("cell_voltages must be given for every sample or none")
            payload["cells"] = {"u": [_cell_row(c or ()) for c in cells]}
    else:
        payload["pack"] = list(batch.packs)
    return payload


def _cell_row(voltages: Sequence[float]) -> TypedArray:
    millivolts = [round(v * 1000) for v in voltages]
    for index, mv in enumerate(millivolts):
        if not 0 <= mv <= 15_000:
            raise FieldRangeError(f"cell voltage {index} = {voltages[index]!r} is outside 0..15 V")
    return TypedArray.from_values(tag=CELL_VOLTAGE_TAG, values=millivolts)


_TYPECODES: Final = {tag: element.typecode for tag, element in TYPED_ARRAY_TAGS.items()}
_SWAP: Final = frozenset(
    tag
    for tag, element in TYPED_ARRAY_TAGS.items()
    if element.width > 1 and element.little_endian != (sys.byteorder == "little")
)
# Where the elements start in a TypedArray's encoding (tag head 2 bytes + byte-string head),
# by the byte-string head's first byte. A TypedArray always holds a valid deterministic
# encoding (it is checked when made), so the head byte alone says where the data starts.
_DATA_START: Final = {**dict.fromkeys(range(0x40, 0x58), 3), 0x58: 4, 0x59: 5, 0x5A: 7, 0x5B: 11}


def _typed_values(key: str, raw: object, tag: int, lo: int, hi: int) -> Sequence[int]:
    """The integers of the typed array ``raw`` of ``tag``, each checked against lo..hi."""
    if type(raw) is not TypedArray or raw.encoded[1] != tag:
        element = TYPED_ARRAY_TAGS[tag]
        got = f"tag {raw.tag}" if isinstance(raw, TypedArray) else type(raw).__name__
        raise FieldTypeError(
            f"{key} must be a {element.name} typed array (RFC 8746 tag {tag}), not {got}"
        )
    encoded = raw.encoded
    values = array.array(_TYPECODES[tag])
    values.frombytes(encoded[_DATA_START[encoded[2]] :])
    if tag in _SWAP:
        values.byteswap()
    if values and (min(values) < lo or max(values) > hi):
        index, value = next((i, v) for i, v in enumerate(values) if not lo <= v <= hi)
        raise FieldRangeError(f"{key}[{index}] = {value} is outside {lo}..{hi}")
    return values


_PACK_KEYS: Final = frozenset({"kind", "dt", "s", "ev", "host", "cells"})
_BUS_KEYS: Final = frozenset({"kind", "dt", "s", "ev", "pack"})


@dataclass(frozen=True, slots=True)
class _ColumnPlan:
    """How :func:`_columns` reads one column: tag, array type, and which bounds can fail."""

    key: str
    tag: int
    typecode: str
    swap: bool
    lo: int
    hi: int
    check_lo: bool
    """``lo`` is above the element's smallest value, so ``min`` must be checked."""
    check_hi: bool
    """``hi`` is below the element's largest value, so ``max`` must be checked."""


def _plan(specs: Sequence[FieldSpec]) -> tuple[_ColumnPlan, ...]:
    plans = []
    for spec in specs:
        element = spec.element
        plans.append(
            _ColumnPlan(
                key=spec.key,
                tag=element.tag,
                typecode=element.typecode,
                swap=element.tag in _SWAP,
                lo=spec.lo,
                hi=spec.hi,
                check_lo=spec.lo > element.lo,
                check_hi=spec.hi < element.hi,
            )
        )
    return tuple(plans)


_PLANS: Final = {kind: _plan(specs) for kind, specs in FIELDS.items()}
_KNOWN: Final = {kind: frozenset(spec.key for spec in specs) for kind, specs in FIELDS.items()}


def _columns(kind: Kind, raw: object) -> tuple[int, dict[str, Sequence[int]]]:
    if not isinstance(raw, Mapping):
        raise FieldTypeError(f"s must be a map of columns, not {type(raw).__name__}")
    known = _KNOWN[kind]
    if len(raw) != len(known) or not known.issuperset(raw):
        unknown = sorted(str(k) for k in raw if k not in known)
        if unknown:
            raise UnknownFieldError(f"{kind} samples have unknown columns {unknown}")
        missing = sorted(known - set(raw))
        raise MissingFieldError(f"{kind} samples lack columns {missing}")
    columns: dict[str, Sequence[int]] = {}
    n = -1
    for plan in _PLANS[kind]:
        item = raw[plan.key]
        # The usual case inline; anything else goes through _typed_values for its error.
        if type(item) is not TypedArray or item.encoded[1] != plan.tag:
            column = _typed_values(plan.key, item, plan.tag, plan.lo, plan.hi)
        else:
            encoded = item.encoded
            column = array.array(plan.typecode)
            column.frombytes(encoded[_DATA_START[encoded[2]] :])
            if plan.swap:
                column.byteswap()
            if column and (
                (plan.check_lo and min(column) < plan.lo)
                or (plan.check_hi and max(column) > plan.hi)
            ):
                _typed_values(plan.key, item, plan.tag, plan.lo, plan.hi)  # raises the error
        if len(column) != n:
            if n >= 0:
                _ragged(kind, raw)
            n = len(column)
        columns[plan.key] = column
    if not 1 <= n <= MAX_SAMPLES:
        raise SampleCountError(f"a batch holds 1..{MAX_SAMPLES} samples, not {n}")
    return n, columns


def _ragged(kind: Kind, raw: Mapping[object, object]) -> None:
    """Raise the error that names every column length (after all columns were checked)."""
    lengths: dict[int, str] = {}
    tags = _COLUMN_TAGS[kind]
    for spec in FIELDS[kind]:
        column = _typed_values(spec.key, raw[spec.key], tags[spec.key], spec.lo, spec.hi)
        lengths.setdefault(len(column), spec.key)
    described = ", ".join(f"{key} has {n}" for n, key in sorted(lengths.items()))
    raise RaggedColumnsError(f"columns differ in length: {described}")


def _events(raw: object) -> tuple[Event, ...]:
    if not isinstance(raw, list | tuple):
        raise FieldTypeError(f"ev must be an array, not {type(raw).__name__}")
    events = []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise EventError(f"ev[{index}] must be a map, not {type(item).__name__}")
        kind = item.get("k")
        if not isinstance(kind, str):
            raise EventError(f"ev[{index}] lacks a text k")
        at = item.get("at")
        if not isinstance(at, int) or isinstance(at, bool):
            raise EventError(f"ev[{index}] lacks an integer at")
        data = {str(k): v for k, v in item.items() if k not in {"k", "at"}}
        events.append(Event(kind=kind, at=at, data=data))
    return tuple(events)


def _cells(raw: object, n: int) -> tuple[Sequence[int], ...]:
    """The validated ``cells.u`` rows (mV) of ``n`` samples."""
    if not isinstance(raw, Mapping) or set(raw) != {"u"}:
        raise FieldTypeError('cells must be a map with exactly the key "u"')
    rows = raw["u"]
    if not isinstance(rows, list | tuple) or len(rows) != n:
        raise RaggedColumnsError(f"cells.u must hold one array per sample ({n})")
    result = []
    for k, row in enumerate(rows):
        millivolts = _typed_values(f"cells.u[{k}]", row, CELL_VOLTAGE_TAG, 0, 15_000)
        if not millivolts:
            raise FieldTypeError(f"cells.u[{k}] must hold at least one cell voltage")
        result.append(millivolts)
    return tuple(result)


@dataclass(frozen=True, slots=True, kw_only=True)
class TelemetryColumns:
    """The telemetry of one payload, validated, kept as wire columns (no object per sample).

    What :func:`decode_columns` returns: the same checks as :func:`decode_batch`, but the
    samples stay in their fixed-point columns (``columns[key]`` holds the wire integers of
    column ``key``, in :data:`FIELDS` order) so a consumer that stores or aggregates them
    pays per column, not per sample. :meth:`to_batch` gives the in-memory batch.
    """

    kind: Kind
    t_ms: int
    dt_ms: int
    n: int
    columns: Mapping[str, Sequence[int]]
    events: tuple[Event, ...] = ()
    host: str | None = None
    packs: tuple[str, ...] = ()
    cells: tuple[Sequence[int], ...] | None = None
    """``cells.u`` rows in mV, one per sample, when the payload has them."""

    @property
    def end_ms(self) -> int:
        """Unix ms of the sample after the last one (the next batch's ``t``)."""
        return self.t_ms + self.n * self.dt_ms

    def times_ms(self) -> range:
        """The Unix ms of each sample."""
        return range(self.t_ms, self.end_ms, self.dt_ms)

    def values(self) -> list[Sequence[float] | Sequence[int]]:
        """One sequence per column of :data:`FIELDS` in memory units (the attributes' values).

        Integral columns stay integers; the others are ``wire / per_unit``, exactly the
        floats :func:`decode_batch` puts in the samples.
        """
        result: list[Sequence[float] | Sequence[int]] = []
        for spec in FIELDS[self.kind]:
            column = self.columns[spec.key]
            if spec.integral:
                result.append(column)
            else:
                result.append(list(map(truediv, column, repeat(spec.per_unit, self.n))))
        return result

    def to_batch(self) -> TelemetryBatch:
        """The in-memory :class:`TelemetryBatch` (one sample object per sample)."""
        specs = FIELDS[self.kind]
        attrs = [spec.attr for spec in specs]
        rows = [dict(zip(attrs, row, strict=True)) for row in zip(*self.values(), strict=True)]
        samples: list[Sample]
        if self.kind == "pack":
            cells: list[tuple[float, ...] | None] = [None] * self.n
            if self.cells is not None:
                cells = [tuple(mv / 1000 for mv in row) for row in self.cells]
            samples = [PackSample(**row, cell_voltages=cells[k]) for k, row in enumerate(rows)]
        else:
            samples = [BusSample(**row) for row in rows]
        return TelemetryBatch(
            kind=self.kind,
            t_ms=self.t_ms,
            dt_ms=self.dt_ms,
            samples=tuple(samples),
            events=self.events,
            host=self.host,
            packs=self.packs,
        )


def decode_columns(payload: Mapping[str, object]) -> TelemetryColumns:
    """Validate the telemetry keys of a decoded payload; keep the samples as wire columns.

    Raises exactly the :class:`TelemetryError` that :func:`decode_batch` raises for the same
    payload (it is built on this function); ranges are checked per column with ``min`` and
    ``max``.
    """
    kind = payload.get("kind")
    if kind not in KINDS:
        raise UnknownKindError(f"kind {kind!r} is not one of {list(KINDS)}")
    allowed = ENVELOPE_KEYS | (_PACK_KEYS if kind == "pack" else _BUS_KEYS)
    unknown = sorted(str(k) for k in payload if k not in allowed)
    if unknown:
        raise UnknownFieldError(f"{kind} payload has unknown keys {unknown}")
    for required in ("t", "dt", "s"):
        if required not in payload:
            raise MissingFieldError(f"{kind} payload lacks {required}")
    t_ms = _check_int("t", payload["t"], 0, U63)
    dt_ms = _check_int("dt", payload["dt"], MIN_DT_MS, MAX_DT_MS)
    n, columns = _columns(kind, payload["s"])
    cells = _cells(payload["cells"], n) if kind == "pack" and "cells" in payload else None
    events = _events(payload.get("ev", []))
    host = payload.get("host")
    if host is not None:
        host = _check_id("host", host)
    packs: tuple[str, ...] = ()
    if kind == "bus":
        raw_packs = payload.get("pack")
        if not isinstance(raw_packs, list | tuple):
            raise MissingFieldError("bus payload lacks the array pack (installed pack ids)")
        packs = tuple(_check_id("pack", p) for p in raw_packs)
    # The checks TelemetryBatch makes on construction that the steps above did not.
    if len(events) > MAX_EVENTS:
        raise EventError(f"a batch holds at most {MAX_EVENTS} events, not {len(events)}")
    for event in events:
        if not 0 <= event.at < n:
            raise EventError(f"event {event.kind!r} at {event.at} is outside 0..{n - 1}")
    return TelemetryColumns(
        kind=kind,
        t_ms=t_ms,
        dt_ms=dt_ms,
        n=n,
        columns=columns,
        events=events,
        host=host,
        packs=packs,
        cells=cells,
    )


def decode_batch(payload: Mapping[str, object]) -> TelemetryBatch:
    """Validate the telemetry keys of a decoded payload and return them in memory units."""
    return decode_columns(payload).to_batch()
