"""Encoding GB/T 32960 frames the way a vehicle terminal does (2016 and 2025 editions).

Only what the demo and the benchmark send: vehicle login and logout, heartbeat, and real-time
or reissued data with the vehicle, position, alarm, (2016) extreme-values, cell voltage and
probe temperature units; 2025 data frames end with an SM2 signature block. The gateway's
decoder is tested against an independent encoder (rtm-con), not against this one.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Final

from gmssl import sm2

from ledger.gbt32960 import encode_frame, encode_time
from ledger.gbt32960.errors import ANSWER_COMMAND
from ledger.gbt32960.frame import CMD_HEARTBEAT, CMD_LOGIN, CMD_LOGOUT, CMD_REALTIME, CMD_REISSUE

_N: Final = int(sm2.default_ecc_table["n"], 16)


@dataclass(frozen=True, slots=True)
class TerminalKey:
    """A terminal's SM2 key pair (private scalar as 64 hex digits, public 64 bytes X || Y)."""

    private: str
    public: bytes

    @classmethod
    def generate(cls) -> TerminalKey:
        """A fresh key pair (the scalar from ``secrets``)."""
        d = secrets.randbelow(_N - 2) + 1
        point = sm2.CryptSM2(private_key=f"{d:064x}", public_key="00")._kg(
            d, sm2.default_ecc_table["g"]
        )
        return cls(private=f"{d:064x}", public=bytes.fromhex(point))

    def sign(self, data: bytes) -> tuple[bytes, bytes]:
        """An SM2/SM3 signature (r, s) over ``data``, 32 bytes each."""
        crypt = sm2.CryptSM2(private_key=self.private, public_key="00")
        crypt.public_key = self.public.hex()
        while True:
            signature = crypt.sign_with_sm3(data, f"{secrets.randbelow(_N - 1) + 1:064x}")
            if signature is not None:
                return bytes.fromhex(signature[:64]), bytes.fromhex(signature[64:])


@dataclass(frozen=True, slots=True, kw_only=True)
class Values:
    """One real-time sample in GB/T 32960 units."""

    at_ms: int
    speed_dkmh: int
    odometer_hm: int
    voltage_dv: int
    current_da: int
    soc_pct: int
    insulation_kohm: int
    lat_udeg: int
    lon_udeg: int
    cell_mv: tuple[int, ...]
    probe_c: tuple[int, ...]
    charging: bool = False
    alarm_level: int = 0
    alarm_flags: int = 0


def _u16(value: int) -> bytes:
    return value.to_bytes(2, "big")


def _u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


def login(edition: int, vin: str, at_ms: int, serial: int) -> bytes:
    """A vehicle login with one pack."""
    body = encode_time(at_ms) + _u16(serial) + b"89860000000000000000" + b"\x01"
    body += b"\x08PACK0001" if edition == 2016 else b"\x01" + b"PACK0001".ljust(24, b"0")
    return _command(edition, CMD_LOGIN, vin, body)


def logout(edition: int, vin: str, at_ms: int, serial: int) -> bytes:
    """A vehicle logout."""
    return _command(edition, CMD_LOGOUT, vin, encode_time(at_ms) + _u16(serial))


def heartbeat(edition: int, vin: str) -> bytes:
    """A heartbeat."""
    return _command(edition, CMD_HEARTBEAT, vin, b"")


def realtime(
    edition: int, vin: str, values: Values, *, key: TerminalKey | None, reissue: bool = False
) -> bytes:
    """A real-time (or reissued) data frame; 2025 frames are signed with ``key``."""
    v = values
    offset = 10_000 if edition == 2016 else 30_000
    vehicle = (
        bytes((0x01, 0x01 if v.charging else 0x03, 0x01))
        + _u16(v.speed_dkmh) + _u32(v.odometer_hm) + _u16(v.voltage_dv)
        + _u16(v.current_da + offset) + bytes((v.soc_pct, 0x01, 0x2E)) + _u16(v.insulation_kohm)
    )  # fmt: skip
    if edition == 2016:
        vehicle += b"\x00\x00"
    status = (0x02 if v.lat_udeg < 0 else 0) | (0x04 if v.lon_udeg < 0 else 0)
    position = bytes((0x05, status)) + (b"\x01" if edition == 2025 else b"")
    position += _u32(abs(v.lon_udeg)) + _u32(abs(v.lat_udeg))
    alarms = bytes((v.alarm_level,)) + _u32(v.alarm_flags) + bytes(4)
    alarms += b"\x00" if edition == 2025 else b""
    cells = b"".join(_u16(mv) for mv in v.cell_mv)
    pack_head = b"\x01" + _u16(v.voltage_dv) + _u16(v.current_da + 30_000)
    if edition == 2016:
        pack_head += _u16(len(v.cell_mv)) + _u16(1) + bytes((len(v.cell_mv),))
    else:
        pack_head += _u16(len(v.cell_mv))
    probes = b"\x01" + _u16(len(v.probe_c)) + bytes(t + 40 for t in v.probe_c)
    ids = {2016: (0x07, 0x08, 0x09), 2025: (0x06, 0x07, 0x08)}[edition]
    data = (
        encode_time(v.at_ms) + b"\x01" + vehicle + position
        + bytes((ids[0],)) + alarms + bytes((ids[1], 1)) + pack_head + cells
        + bytes((ids[2], 1)) + probes
    )  # fmt: skip
    if edition == 2016:
        data += b"\x06" + _extremes(v)
    elif key is None:
        raise ValueError("a 2025 data frame needs the terminal's key")
    else:
        r, s = key.sign(data)
        data += b"\xff\x01" + _u16(len(r)) + r + _u16(len(s)) + s
    return _command(edition, CMD_REISSUE if reissue else CMD_REALTIME, vin, data)


def _extremes(v: Values) -> bytes:
    high_v, low_v = max(v.cell_mv), min(v.cell_mv)
    high_t, low_t = max(v.probe_c), min(v.probe_c)
    return (
        bytes((1, v.cell_mv.index(high_v) + 1)) + _u16(high_v)
        + bytes((1, v.cell_mv.index(low_v) + 1)) + _u16(low_v)
        + bytes((1, v.probe_c.index(high_t) + 1, high_t + 40))
        + bytes((1, v.probe_c.index(low_t) + 1, low_t + 40))
    )  # fmt: skip


def _command(edition: int, command: int, vin: str, data: bytes) -> bytes:
    return encode_frame(edition=edition, command=command, answer=ANSWER_COMMAND, vin=vin, data=data)
