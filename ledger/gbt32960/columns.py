"""A decoded GB/T 32960 real-time unit as voltproof sample columns (ledger.telemetry wire units).

A GB/T 32960 vehicle is one bus and one pack at once: the vehicle unit, position and alarms
fill the ``bus`` columns and the pack columns that the standard has. Columns the standard does
not carry (state of health, resistance, capacity, energy and charge throughput, traction and
auxiliary power, ambient temperature, at-stop) stay ``None``; so do values the frame marks
abnormal or invalid. Each frame is stored as two one-sample blocks of the same leaf: a ``bus``
block (:func:`bus_telemetry`, always) and a ``pack`` block (:func:`pack_telemetry`, when the
frame carries every pack value). :data:`TERMINAL_COLUMNS` names the columns of each that hold
a reading; the others are filled so the blocks fit the schema. docs/protocol.md lists the
mapping.
"""

from __future__ import annotations

from typing import Final

from ledger.telemetry import FIELDS, Event, TelemetryColumns

from .errors import FrameStructureError
from .units import Realtime

CHARGE_STATE: Final = {1: 1, 2: 0, 3: 0, 4: 0}
"""GB/T charging state (1 parked charging, 2 charging while driving, 3 not charging, 4 charge
complete) to voltproof's ``chg`` (0 not charging, 1 depot plug-in, 2 pantograph): parked
charging counts as a plug-in; the rest as not charging."""


def _scale(value: int | None, factor: int) -> int | None:
    return None if value is None else value * factor


def pack_columns(record: Realtime) -> dict[str, int | None]:
    """The ``pack`` columns (wire integers) this record fills; the others are ``None``."""
    charge = None if record.charge_state is None else CHARGE_STATE[record.charge_state]
    riso = record.insulation_kohm
    return {
        "u": record.voltage_dv,
        "i": record.current_da,
        "soc": _scale(record.soc_pct, 10),
        "ucmax": record.cell_max_mv,
        "ucmax_pos": record.cell_max_no,
        "ucmin": record.cell_min_mv,
        "ucmin_pos": record.cell_min_no,
        "tmax": _scale(record.temp_max_c, 10),
        "tmax_pos": record.temp_max_no,
        "tmin": _scale(record.temp_min_c, 10),
        "tmin_pos": record.temp_min_no,
        "riso": None if riso is None else min(riso, 60_000),
        "alarm": record.alarm_level,
        "aflags": record.alarm_flags,
        "chg": charge,
    }


def bus_columns(record: Realtime) -> dict[str, int | None]:
    """The ``bus`` columns (wire integers) this record fills; the others are ``None``."""
    charge = None if record.charge_state is None else CHARGE_STATE[record.charge_state]
    return {
        "spd": record.speed_dkmh,
        "odo": record.odometer_hm,
        "lat": record.lat_udeg,
        "lon": record.lon_udeg,
        "state": record.vehicle_state,
        "chg": charge,
    }


TERMINAL_COLUMNS: Final = {
    "bus": ("spd", "odo", "lat", "lon", "state", "chg", "ptr"),
    "pack": ("u", "i", "soc", "ucmax", "ucmax_pos", "ucmin", "ucmin_pos", "tmax", "tmax_pos",
             "tmin", "tmin_pos", "riso", "alarm", "aflags", "chg"),
}  # fmt: skip
"""Per kind, the wire keys of the columns a terminal's blocks fill from the frame (``ptr`` is
computed from the frame's voltage and current). The others hold fills, not readings: a bus's
``aux``, ``tamb`` and ``stop`` are 0, a pack's state of health, resistance, capacity and
throughput columns are 0; a reader shows a terminal's assets only these columns."""

FRAME_DT_MS: Final = 1000
"""A frame is one sample; its block says 1 s (the sample tables need a period)."""


def bus_telemetry(record: Realtime) -> TelemetryColumns:
    """The one-sample ``bus`` block stored for a real-time frame (the sample tables' row).

    Columns the frame lacks are filled so the row fits the bus schema, and docs/protocol.md
    says so: ``ptr`` is the pack power u x i (GB/T 32960 has no traction / auxiliary split),
    ``aux``, ``tamb`` and ``stop`` are 0, a missing speed, odometer or position is 0 and a
    missing vehicle state is 3 ("other"). The frame itself (in the log) keeps what was sent.

    A frame that gives no pack block (:func:`pack_gap`: a pack value missing, abnormal or out
    of range, as often in a fault) still reports its alarm: its level and general alarm flags
    ride on this block as an ``alarm`` event, so the alarms table never loses a frame's alarm
    for want of a whole pack reading. (With a pack block, the alarm is in its columns.)
    """
    bus = bus_columns(record)
    power = 0
    if record.voltage_dv is not None and record.current_da is not None:
        power = max(-10_000, min(10_000, round(record.voltage_dv * record.current_da / 10_000)))
    values = {
        "spd": bus["spd"] or 0,
        "odo": min(bus["odo"] or 0, 99_999_999),
        "lat": bus["lat"] or 0,
        "lon": bus["lon"] or 0,
        "state": bus["state"] or 3,
        "chg": bus["chg"] or 0,
        "ptr": power,
        "aux": 0,
        "tamb": 0,
        "stop": 0,
    }
    for spec in FIELDS["bus"]:
        if not spec.lo <= values[spec.key] <= spec.hi:
            raise FrameStructureError(
                f"{spec.description} = {values[spec.key]} ({spec.resolution}) is outside "
                f"{spec.lo}..{spec.hi}"
            )
    events: tuple[Event, ...] = ()
    level, flags = record.alarm_level or 0, record.alarm_flags or 0
    if (level or flags) and isinstance(_pack_values(record), str):
        events = (Event(kind="alarm", at=0, data={"lvl": level, "flags": flags}),)
    return TelemetryColumns(
        kind="bus",
        t_ms=record.at_ms,
        dt_ms=FRAME_DT_MS,
        n=1,
        columns={key: [values[key]] for key in _BUS_KEYS},
        events=events,
    )


_BUS_KEYS: Final = tuple(spec.key for spec in FIELDS["bus"])


def pack_telemetry(record: Realtime) -> TelemetryColumns | None:
    """The one-sample ``pack`` block stored beside the bus block of a frame, or ``None``.

    The columns of :data:`TERMINAL_COLUMNS` ``["pack"]`` hold the frame's values; the pack
    columns GB/T 32960 does not carry (``soh_c``, ``soh_r``, ``r0``, ``cap``, ``e_in``,
    ``e_out``, ``ah_in``, ``ah_out``) are 0. A frame that lacks one of those values (its unit
    absent, or the value marked abnormal or invalid) or holds one outside voltproof's column
    range has no pack block: a sample is one whole pack reading, never a made-up value. The
    frame is still logged and its bus block stored (:func:`pack_gap` says why).
    """
    values = _pack_values(record)
    if isinstance(values, str):
        return None
    return TelemetryColumns(
        kind="pack",
        t_ms=record.at_ms,
        dt_ms=FRAME_DT_MS,
        n=1,
        columns={key: [values[key]] for key in _PACK_KEYS},
    )


def pack_gap(record: Realtime) -> str | None:
    """Why :func:`pack_telemetry` gives no block for ``record`` (``None``: it gives one)."""
    values = _pack_values(record)
    return values if isinstance(values, str) else None


def _pack_values(record: Realtime) -> dict[str, int] | str:
    """Every pack column's wire integer, or the reason the frame gives no pack sample."""
    carried = pack_columns(record)
    values = dict.fromkeys(_PACK_KEYS, 0)
    for spec in FIELDS["pack"]:
        if spec.key not in carried:
            continue
        value = carried[spec.key]
        if value is None:
            return f"the frame carries no valid {spec.description}"
        if not spec.lo <= value <= spec.hi:
            return (
                f"{spec.description} = {value} ({spec.resolution}) is outside {spec.lo}..{spec.hi}"
            )
        values[spec.key] = value
    return values


_PACK_KEYS: Final = tuple(spec.key for spec in FIELDS["pack"])
