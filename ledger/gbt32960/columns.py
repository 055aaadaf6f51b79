"""A decoded GB/T 32960 real-time unit as voltproof sample columns (ledger.telemetry wire units).

A GB/T 32960 vehicle is one bus and one pack at once: the vehicle unit, position and alarms
fill the ``bus`` columns and the pack columns that the standard has. Columns the standard does
not carry (state of health, resistance, capacity, energy and charge throughput, traction and
auxiliary power, ambient temperature, at-stop) stay ``None``; so do values the frame marks
abnormal or invalid. docs/protocol.md lists the mapping.
"""

from __future__ import annotations

from typing import Final

from ledger.telemetry import FIELDS, TelemetryColumns

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


FRAME_DT_MS: Final = 1000
"""A frame is one sample; its block says 1 s (the sample tables need a period)."""


def bus_telemetry(record: Realtime) -> TelemetryColumns:
    """The one-sample ``bus`` block stored for a real-time frame (the sample tables' row).

    Columns the frame lacks are filled so the row fits the bus schema, and docs/protocol.md
    says so: ``ptr`` is the pack power u x i (GB/T 32960 has no traction / auxiliary split),
    ``aux``, ``tamb`` and ``stop`` are 0, a missing speed, odometer or position is 0 and a
    missing vehicle state is 3 ("other"). The frame itself (in the log) keeps what was sent.
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
    return TelemetryColumns(
        kind="bus",
        t_ms=record.at_ms,
        dt_ms=FRAME_DT_MS,
        n=1,
        columns={key: [values[key]] for key in _BUS_KEYS},
    )


_BUS_KEYS: Final = tuple(spec.key for spec in FIELDS["bus"])
