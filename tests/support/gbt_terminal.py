"""A GB/T 32960 terminal built on the independent ``rtm-con`` encoder (and gmssl for SM2).

The project's own decoder is checked against frames this module builds with rtm-con's
``msg_checked`` (which computes the length and check code itself); 2025 data frames are
signed with gmssl's SM2 over the bytes rtm-con's ``data_2025`` marks as signed (collection
time up to the 0xFF signature start). Values are given in physical units, as a vehicle's
controller would hand them to its terminal.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gmssl import sm2
from rtm_con import msg_checked
from rtm_con.data_warnings import (
    general_warnings_2016,
    general_warnings_2025,
)

_N = int(sm2.default_ecc_table["n"], 16)
_SIG_PLACEHOLDER_LEN = 1 + 1 + 2 + 32 + 2 + 32


@dataclass(frozen=True)
class Sm2Key:
    """An SM2 key pair: ``private`` as 64 hex digits, ``public`` as 64 bytes X || Y."""

    private: str
    public: bytes

    @classmethod
    def generate(cls) -> Sm2Key:
        """A fresh key pair."""
        d = secrets.randbelow(_N - 2) + 1
        crypt = sm2.CryptSM2(private_key=f"{d:064x}", public_key="00")
        point = crypt._kg(d, sm2.default_ecc_table["g"])
        return cls(private=f"{d:064x}", public=bytes.fromhex(point))

    def sign(self, data: bytes) -> tuple[str, str]:
        """(r, s) as 64 hex digits each, SM2 with SM3 and the default user id."""
        crypt = sm2.CryptSM2(private_key=self.private, public_key="00")
        crypt.public_key = self.public.hex()
        while True:
            signature = crypt.sign_with_sm3(data, f"{secrets.randbelow(_N - 1) + 1:064x}")
            if signature is not None:
                return signature[:64], signature[64:]


@dataclass(frozen=True)
class Reading:
    """What the vehicle hands its terminal for one real-time frame (physical units)."""

    at: datetime
    speed_kmh: float = 35.2
    odometer_km: float = 12345.6
    voltage_v: float = 612.3
    current_a: float = -45.6
    soc: int = 78
    insulation_kohm: int = 5000
    lat: float = 31.230416
    lon: float = 121.473701
    vehicle_state: str = "on"
    charge_state: str = "uncharged"
    alarm_level: int = 0
    alarm_bits: tuple[int, ...] = ()
    cell_volts: tuple[tuple[float, ...], ...] = ((3.301, 3.322, 3.298, 3.310),)
    probe_temps: tuple[tuple[int, ...], ...] = ((25, 27, 24),)
    extra_units: list[dict[str, Any]] = field(default_factory=list)


def at(seconds: int) -> datetime:
    """A UTC time ``seconds`` after 2026-12-06 06:00:00 UTC (14:00 in Beijing)."""
    return datetime.fromtimestamp(1_796_536_800 + seconds, tz=UTC)


def _frame(edition: int, msg_type: str, vin: str, payload: Any, ack: str = "command") -> bytes:
    starter = "protocol_2016" if edition == 2016 else "protocol_2025"
    built: bytes = msg_checked.build({
        "starter": starter, "msg_type": msg_type, "ack": ack, "vin": vin, "enc": "uncrypted",
        "payload": payload,
    })  # fmt: skip
    return built


def login(edition: int, vin: str, when: datetime, *, serial: int = 1) -> bytes:
    """A vehicle login frame with one energy storage system."""
    payload: dict[str, Any] = {
        "timestamp": when, "session_id": serial, "iccid": "89860012345678901234", "bms_total": 1,
    }  # fmt: skip
    if edition == 2016:
        payload |= {"pack_sn_len": 8, "pack_sn": ["PACK0001"]}
    else:
        payload |= {"pack_per_bms": [1], "pack_sn_list": [["PACK0001".ljust(24, "0")]]}
    return _frame(edition, "login", vin, payload)


def logout(edition: int, vin: str, when: datetime, *, serial: int = 1) -> bytes:
    """A vehicle logout frame."""
    return _frame(edition, "logout", vin, {"timestamp": when, "session_id": serial})


def heartbeat(edition: int, vin: str) -> bytes:
    """A heartbeat (empty data unit)."""
    return _frame(edition, "heartbeat", vin, b"")


def time_sync(edition: int, vin: str) -> bytes:
    """A terminal time calibration request (empty data unit)."""
    return _frame(edition, "time_sync", vin, b"")


def _flags(edition: int, bits: tuple[int, ...]) -> dict[str, bool]:
    names = general_warnings_2016 if edition == 2016 else general_warnings_2025
    return {name: index in bits for index, name in names.items()}


def _units(edition: int, reading: Reading) -> list[dict[str, Any]]:
    vehicle: dict[str, Any] = {
        "vehicle_state": reading.vehicle_state, "charge_state": reading.charge_state,
        "operate_state": "pure_electric", "vehicle_speed": reading.speed_kmh,
        "mileage_total": reading.odometer_km, "voltage_total": reading.voltage_v,
        "current_total": reading.current_a, "soc": reading.soc, "dcdc_state": "on",
        "gear_state": {"driving_force": True, "braking_force": False, "gear": "D"},
        "insulation_resistance": reading.insulation_kohm,
    }  # fmt: skip
    if edition == 2016:
        vehicle |= {"accelerator_padel": 20, "brake_padel": 0}
    else:
        vehicle["gear_state"]["gear_postion_validity"] = "valid"
    gnss: dict[str, Any] = {
        "gnss_state": {
            "gnss_e_w": "w" if reading.lon < 0 else "e",
            "gnss_n_s": "s" if reading.lat < 0 else "n",
            "gnss_valid": True,
        },
        "gnss_lng": abs(reading.lon), "gnss_lat": abs(reading.lat),
    }  # fmt: skip
    if edition == 2025:
        gnss["gnss_gcs"] = "wgs84"
    warnings: dict[str, Any] = {
        "max_warning_level": reading.alarm_level,
        "general_warnings": _flags(edition, reading.alarm_bits),
        "pack_failures": [], "emotor_failures": [], "engine_failures": [], "other_failures": [],
    }  # fmt: skip
    if edition == 2025:
        warnings["general_warning_list"] = [
            {"warning": general_warnings_2025[bit], "level": reading.alarm_level}
            for bit in reading.alarm_bits
        ]
    motor = {
        "index": 1, "state": "consuming_power", "ctrl_temp": 45, "speed": 1500, "torque": 120.0,
        "temp": 60,
    }  # fmt: skip
    if edition == 2016:
        motor |= {"ctrl_volt": 610.0, "ctrl_curr": 40.0}
    cells: list[dict[str, Any]] = []
    for index, volts in enumerate(reading.cell_volts, start=1):
        item: dict[str, Any] = {
            "index": index, "volt": reading.voltage_v, "curr": reading.current_a,
            "cell_volts": list(volts),
        }  # fmt: skip
        if edition == 2016:
            item |= {"cell_total": len(volts), "cell_start_index": 1}
        cells.append(item)
    probes = [
        {"index": index, "probe_temps": list(temps)}
        for index, temps in enumerate(reading.probe_temps, start=1)
    ]
    units: list[dict[str, Any]] = [
        {"data_type": "whole_vehicle", "data_content": vehicle},
        {"data_type": "emotor", "data_content": [motor]},
        {"data_type": "gnss", "data_content": gnss},
        {"data_type": "warnings", "data_content": warnings},
        {"data_type": "cell_volts", "data_content": cells},
        {"data_type": "probe_temps", "data_content": probes},
    ]
    if edition == 2016:
        units.insert(3, {"data_type": "pack_extrema", "data_content": _extrema(reading)})
    return units + reading.extra_units


def _extrema(reading: Reading) -> dict[str, Any]:
    volts = [v for row in reading.cell_volts for v in row]
    temps = [t for row in reading.probe_temps for t in row]
    vmax, vmin = volts.index(max(volts)), volts.index(min(volts))
    tmax, tmin = temps.index(max(temps)), temps.index(min(temps))
    return {
        "max_volt_pack_index": 1, "max_volt_cell_index": vmax + 1, "max_cell_volt": volts[vmax],
        "min_volt_pack_index": 1, "min_volt_cell_index": vmin + 1, "min_cell_volt": volts[vmin],
        "max_temp_pack_index": 1, "max_temp_cell_index": tmax + 1, "max_cell_temp": temps[tmax],
        "min_temp_pack_index": 1, "min_temp_cell_index": tmin + 1, "min_cell_temp": temps[tmin],
    }  # fmt: skip


def realtime(
    edition: int,
    vin: str,
    reading: Reading,
    *,
    key: Sm2Key | None = None,
    reissue: bool = False,
    tamper: bool = False,
) -> bytes:
    """A real-time (or, with ``reissue``, reissued) data frame; 2025 frames signed with ``key``.

    ``tamper`` flips a bit of the signature's ``s`` after signing.
    """
    msg_type = "supplimentary" if reissue else "realtime"
    payload: dict[str, Any] = {"timestamp": reading.at, "data_list": _units(edition, reading)}
    if edition == 2016:
        return _frame(edition, msg_type, vin, payload)
    if key is None:
        raise ValueError("a 2025 data frame needs a signing key")
    placeholder = {"algo": "sm2", "r_value": "00" * 32, "s_value": "00" * 32}
    draft = _frame(edition, msg_type, vin, payload | {"sig_starter": "ff", "sig": placeholder})
    signed = draft[24:-1][:-_SIG_PLACEHOLDER_LEN]
    r, s = key.sign(signed)
    if tamper:
        s = f"{int(s, 16) ^ 1:064x}"
    return _frame(
        edition, msg_type, vin,
        payload | {"sig_starter": "ff", "sig": {"algo": "sm2", "r_value": r, "s_value": s}},
    )  # fmt: skip
