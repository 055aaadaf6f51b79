"""The data units of vehicle login, logout and real-time / reissued data, both editions.

GB/T 32960.3-2016 clause 7 and GB/T 32960.3-2025 clause 7 (layouts cross-checked against the
independent ``rtm-con`` 1.0.4 implementation; see docs/protocol.md "GB/T 32960 terminals").
Every count is checked against the bytes that remain before anything is allocated, each unit
may appear once per frame, and a unit whose layout voltproof does not decode is refused
(:class:`UnsupportedUnitError`) rather than skipped, since its length cannot be known.
Values the standard marks abnormal (0xFE, 0xFFFE, ...) or invalid (0xFF, 0xFFFF, ...) decode
as ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from .clock import TIME_LEN, decode_time
from .errors import FrameStructureError, GbtSignatureError, UnsupportedUnitError
from .reader import Reader

MAX_PACKS: Final = 250
MAX_CELLS_PER_PACK: Final = 65_531
MAX_MOTORS: Final = 253
SIGNATURE_START: Final = 0xFF
SIGNATURE_ALGORITHMS: Final = {1: "SM2", 2: "RSA", 3: "ECC"}
MAX_SIGNATURE_PART: Final = 512


def _v8(raw: int) -> int | None:
    return None if raw >= 0xFE else raw


def _v16(raw: int) -> int | None:
    return None if raw >= 0xFFFE else raw


def _v32(raw: int) -> int | None:
    return None if raw >= 0xFFFF_FFFE else raw


@dataclass(frozen=True, slots=True, kw_only=True)
class Login:
    """Vehicle login (0x01): collection time, login serial number, ICCID, pack codes."""

    at_ms: int
    serial: int
    iccid: str
    pack_codes: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Logout:
    """Vehicle logout (0x04): collection time and the serial number of the login it closes."""

    at_ms: int
    serial: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Signature:
    """The 2025 signature block (0xFF, table 8): algorithm, r and s as sent."""

    algorithm: int
    r: bytes
    s: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Realtime:
    """A real-time (0x02) or reissued (0x03) data unit, in the standard's own units.

    ``None`` where the frame lacks the unit or marks the value abnormal or invalid.
    """

    at_ms: int
    units: tuple[int, ...]
    vehicle_state: int | None = None
    charge_state: int | None = None
    speed_dkmh: int | None = None
    """0.1 km/h."""
    odometer_hm: int | None = None
    """0.1 km."""
    voltage_dv: int | None = None
    """0.1 V."""
    current_da: int | None = None
    """0.1 A after the edition's offset (2016: -1000 A, 2025: -3000 A)."""
    soc_pct: int | None = None
    insulation_kohm: int | None = None
    position_valid: bool | None = None
    lat_udeg: int | None = None
    """1e-6 degree, north positive."""
    lon_udeg: int | None = None
    """1e-6 degree, east positive."""
    cell_max_mv: int | None = None
    cell_max_no: int | None = None
    cell_min_mv: int | None = None
    cell_min_no: int | None = None
    temp_max_c: int | None = None
    temp_max_no: int | None = None
    temp_min_c: int | None = None
    temp_min_no: int | None = None
    alarm_level: int | None = None
    alarm_flags: int | None = None
    cell_mv: tuple[tuple[int | None, ...], ...] = ()
    """Per pack, the cell (2025: smallest parallel unit) voltages in mV."""
    probe_c: tuple[tuple[int | None, ...], ...] = ()
    """Per pack, the probe temperatures in degC."""
    signature: Signature | None = None
    signed: bytes = field(default=b"", repr=False)
    """The bytes the 2025 signature covers: from the collection time to the 0xFF byte."""


def decode_login(edition: int, data: bytes) -> Login:
    """The vehicle login data unit (2016 table 6; 2025 table 6)."""
    reader = Reader(data)
    at_ms = decode_time(reader.take(TIME_LEN, "login time"))
    serial = reader.u16("login serial number")
    iccid = _ascii(reader.take(20, "ICCID"), "ICCID")
    packs = reader.u8("number of rechargeable energy storage subsystems")
    if packs > MAX_PACKS:
        raise FrameStructureError(f"{packs} energy storage subsystems; at most {MAX_PACKS}")
    codes: list[str] = []
    if edition == 2016:
        code_len = reader.u8("energy storage system code length")
        if packs * code_len > reader.remaining:
            raise FrameStructureError(
                f"{packs} codes of {code_len} bytes need {packs * code_len} bytes; "
                f"{reader.remaining} remain"
            )
        codes = [_ascii(reader.take(code_len, "pack code"), "pack code") for _ in range(packs)]
    else:
        per_system = [reader.u8("packs per subsystem") for _ in range(packs)]
        total = sum(per_system)
        if total * 24 > reader.remaining:
            raise FrameStructureError(
                f"{total} pack codes of 24 bytes need {total * 24} bytes; {reader.remaining} remain"
            )
        codes = [_ascii(reader.take(24, "pack code"), "pack code") for _ in range(total)]
    _end(reader, "vehicle login")
    return Login(at_ms=at_ms, serial=serial, iccid=iccid, pack_codes=tuple(codes))


def decode_logout(data: bytes) -> Logout:
    """The vehicle logout data unit (2016 table 20; 2025 table 28)."""
    reader = Reader(data)
    at_ms = decode_time(reader.take(TIME_LEN, "logout time"))
    serial = reader.u16("logout serial number")
    _end(reader, "vehicle logout")
    return Logout(at_ms=at_ms, serial=serial)


def decode_empty(data: bytes, what: str) -> None:
    """Heartbeat and time calibration carry no data unit."""
    if data:
        raise FrameStructureError(f"a {what} has an empty data unit; got {len(data)} bytes")


def _ascii(raw: bytes, what: str) -> str:
    text = raw.rstrip(b"\x00 ")
    if not all(0x20 <= b < 0x7F for b in text):
        raise FrameStructureError(f"{what} {raw!r} is not printable ASCII")
    return text.decode("ascii")


def _end(reader: Reader, what: str) -> None:
    if reader.remaining:
        raise FrameStructureError(f"{reader.remaining} bytes follow the {what} data unit")


# Unit ids per edition (2016 table 8; 2025 table 9).
UNITS: Final = {
    2016: {
        0x01: "vehicle", 0x02: "drive motors", 0x03: "fuel cell", 0x04: "engine",
        0x05: "position", 0x06: "extreme values", 0x07: "alarms", 0x08: "cell voltages",
        0x09: "probe temperatures",
    },
    2025: {
        0x01: "vehicle", 0x02: "drive motors", 0x03: "fuel cell", 0x04: "engine",
        0x05: "position", 0x06: "alarms", 0x07: "parallel unit voltages",
        0x08: "probe temperatures", 0x30: "fuel cell stacks", 0x31: "super capacitors",
        0x32: "super capacitor extreme values",
    },
}  # fmt: skip
_UNSUPPORTED: Final = frozenset({"fuel cell", "fuel cell stacks", "super capacitors",
                                 "super capacitor extreme values"})  # fmt: skip


def decode_realtime(edition: int, data: bytes) -> Realtime:  # noqa: PLR0912
    """A real-time or reissued data unit: collection time, then information units.

    In 2025 the units end with the signature block (0xFF ...), which must be present and last
    (the caller verifies it: :func:`ledger.gbt32960.verify_sm2`).
    """
    reader = Reader(data)
    at_ms = decode_time(reader.take(TIME_LEN, "collection time"))
    names = UNITS[edition]
    seen: list[int] = []
    values: dict[str, object] = {}
    signature: Signature | None = None
    signed_end = len(data)
    while reader.remaining:
        unit = reader.u8("information type")
        if edition == 2025 and unit == SIGNATURE_START:
            signed_end = reader.pos - 1
            signature = _signature(reader)
            _end(reader, "signature")
            break
        if 0x80 <= unit <= 0xFE:
            length = reader.u16(f"custom unit {unit:#04x} length")
            reader.take(length, f"custom unit {unit:#04x}")
            seen.append(unit)
            continue
        name = names.get(unit)
        if name is None:
            raise UnsupportedUnitError(
                f"information type {unit:#04x} is not defined in the {edition} edition"
            )
        if name in _UNSUPPORTED:
            raise UnsupportedUnitError(f"information type {unit:#04x} ({name}) is not decoded")
        if unit in seen:
            raise FrameStructureError(f"information type {unit:#04x} ({name}) appears twice")
        seen.append(unit)
        if name == "vehicle":
            values |= _vehicle(reader, edition)
        elif name == "drive motors":
            _motors(reader, edition)
        elif name == "engine":
            reader.take(5 if edition == 2016 else 2, "engine data")
        elif name == "position":
            values |= _position(reader, edition)
        elif name == "extreme values":
            values |= _extremes(reader)
        elif name == "alarms":
            values |= _alarms(reader, edition)
        elif name in {"cell voltages", "parallel unit voltages"}:
            values["cell_mv"] = _cell_voltages(reader, edition)
        else:  # probe temperatures
            values["probe_c"] = _probe_temperatures(reader)
    if edition == 2025:
        if signature is None:
            raise GbtSignatureError("a 2025 data unit must end with its signature (0xFF ...)")
        values |= _extremes_from_arrays(values)
    return Realtime(
        at_ms=at_ms,
        units=tuple(seen),
        signature=signature,
        signed=data[:signed_end] if signature is not None else b"",
        **values,  # type: ignore[arg-type]
    )


def _vehicle(reader: Reader, edition: int) -> dict[str, object]:
    state = _v8(reader.u8("vehicle state"))
    charge = _v8(reader.u8("charging state"))
    reader.u8("operating mode")
    speed = _v16(reader.u16("speed"))
    odometer = _v32(reader.u32("accumulated mileage"))
    voltage = _v16(reader.u16("total voltage"))
    current = _v16(reader.u16("total current"))
    soc = _v8(reader.u8("SOC"))
    reader.u8("DC-DC state")
    reader.u8("gear")
    insulation_raw = reader.u16("insulation resistance")
    insulation = _v16(insulation_raw) if edition == 2025 else insulation_raw
    if edition == 2016:
        reader.take(2, "accelerator and brake pedal")
    offset = 10_000 if edition == 2016 else 30_000
    return {
        "vehicle_state": state if state in {1, 2, 3} else None,
        "charge_state": charge if charge in {1, 2, 3, 4} else None,
        "speed_dkmh": speed,
        "odometer_hm": odometer,
        "voltage_dv": voltage,
        "current_da": None if current is None else current - offset,
        "soc_pct": soc if soc is not None and soc <= 100 else None,
        "insulation_kohm": insulation,
    }


def _motors(reader: Reader, edition: int) -> None:
    count = reader.u8("number of drive motors")
    if not 1 <= count <= MAX_MOTORS:
        raise FrameStructureError(f"{count} drive motors; the standard allows 1..{MAX_MOTORS}")
    reader.take(count * (12 if edition == 2016 else 10), f"{count} drive motors")


def _position(reader: Reader, edition: int) -> dict[str, object]:
    status = reader.u8("positioning status")
    if edition == 2025:
        reader.u8("coordinate system")
    lon = _v32(reader.u32("longitude"))
    lat = _v32(reader.u32("latitude"))
    valid = not status & 0x01
    return {
        "position_valid": valid,
        "lat_udeg": None if lat is None or not valid else (-lat if status & 0x02 else lat),
        "lon_udeg": None if lon is None or not valid else (-lon if status & 0x04 else lon),
    }


def _extremes(reader: Reader) -> dict[str, object]:
    result: dict[str, object] = {}
    for prefix, name in (("cell_max", "highest"), ("cell_min", "lowest")):
        reader.u8(f"{name} voltage subsystem no.")
        number = _v8(reader.u8(f"{name} voltage cell no."))
        millivolts = _v16(reader.u16(f"{name} cell voltage"))
        result[f"{prefix}_no"] = number if number else None
        result[f"{prefix}_mv"] = millivolts
    for prefix, name in (("temp_max", "highest"), ("temp_min", "lowest")):
        reader.u8(f"{name} temperature subsystem no.")
        number = _v8(reader.u8(f"{name} temperature probe no."))
        raw = _v8(reader.u8(f"{name} temperature"))
        result[f"{prefix}_no"] = number if number else None
        result[f"{prefix}_c"] = None if raw is None else raw - 40
    return result


def _alarms(reader: Reader, edition: int) -> dict[str, object]:
    level = _v8(reader.u8("highest alarm level"))
    flags = reader.u32("general alarm flags")
    for what in ("energy storage", "drive motor", "engine", "other"):
        count = reader.u8(f"number of {what} faults")
        reader.take(4 * count, f"{count} {what} fault codes")
    if edition == 2025:
        count = reader.u8("number of general alarm levels")
        reader.take(2 * count, f"{count} general alarm levels")
    top = 4 if edition == 2025 else 3
    if level is not None and level > top:
        raise FrameStructureError(f"alarm level {level} is beyond {top} in the {edition} edition")
    return {"alarm_level": level, "alarm_flags": flags}


def _cell_voltages(reader: Reader, edition: int) -> tuple[tuple[int | None, ...], ...]:
    packs = reader.u8("number of energy storage subsystems")
    if packs > MAX_PACKS:
        raise FrameStructureError(f"{packs} energy storage subsystems; at most {MAX_PACKS}")
    rows = []
    for _ in range(packs):
        reader.take(5, "subsystem no., voltage and current")
        if edition == 2016:
            reader.take(4, "cell total and first cell no.")
            count = reader.u8("cells in this frame")
        else:
            count = reader.u16("parallel units in this frame")
        raw = reader.take(2 * count, f"{count} cell voltages")
        rows.append(
            tuple(_v16(int.from_bytes(raw[k : k + 2], "big")) for k in range(0, len(raw), 2))
        )
    return tuple(rows)


def _probe_temperatures(reader: Reader) -> tuple[tuple[int | None, ...], ...]:
    packs = reader.u8("number of energy storage subsystems")
    if packs > MAX_PACKS:
        raise FrameStructureError(f"{packs} energy storage subsystems; at most {MAX_PACKS}")
    rows = []
    for _ in range(packs):
        reader.u8("subsystem no.")
        count = reader.u16("number of probes")
        raw = reader.take(count, f"{count} probe temperatures")
        rows.append(tuple(None if b >= 0xFE else b - 40 for b in raw))
    return tuple(rows)


def _signature(reader: Reader) -> Signature:
    algorithm = reader.u8("signature algorithm")
    if algorithm not in SIGNATURE_ALGORITHMS:
        raise GbtSignatureError(f"signature algorithm {algorithm} is not 1 (SM2), 2 or 3")
    parts = []
    for name in ("r", "s"):
        length = reader.u16(f"signature {name} length")
        if not 1 <= length <= MAX_SIGNATURE_PART:
            raise GbtSignatureError(f"signature {name} length {length} is outside 1..512")
        parts.append(reader.take(length, f"signature {name}"))
    return Signature(algorithm=algorithm, r=parts[0], s=parts[1])


def _extremes_from_arrays(values: dict[str, object]) -> dict[str, object]:
    """2025 has no extreme-values unit: take max/min (1-based no. across packs) from arrays."""
    result: dict[str, object] = {}
    for key, prefix, unit in (("cell_mv", "cell", "mv"), ("probe_c", "temp", "c")):
        rows = values.get(key)
        if not isinstance(rows, tuple):
            continue
        flat = [v for row in rows for v in row]
        known = [(v, n) for n, v in enumerate(flat, start=1) if v is not None]
        if not known:
            continue
        high = max(known, key=lambda item: (item[0], -item[1]))
        low = min(known, key=lambda item: (item[0], item[1]))
        result |= {
            f"{prefix}_max_{unit}": high[0], f"{prefix}_max_no": high[1],
            f"{prefix}_min_{unit}": low[0], f"{prefix}_min_no": low[1],
        }  # fmt: skip
    return result
