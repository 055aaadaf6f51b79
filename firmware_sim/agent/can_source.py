"""A pack's samples from its BMS on the CAN bus, decoded with ``configs/can/voltproof_bms.dbc``.

python-can receives in its own thread (a :class:`can.Notifier`); every frame of the DBC is
decoded with cantools and its signals kept with the receive time. :meth:`CanSource.read`
builds a :class:`~ledger.telemetry.PackSample` from the latest value of every signal and
refuses (``SourceError``) while a message was never seen or is older than ``stale_after_ms``.
Frames the DBC does not define are ignored; frames that fail to decode are counted.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import can
import cantools

from ledger.telemetry import Kind, PackSample

from .batcher import Reading
from .source import SourceError

# PackSample attribute <- DBC signal
SIGNALS: Final = {
    "voltage_v": "PackVoltage", "current_a": "PackCurrent", "soc": "SOC",
    "charge_state": "ChargeState", "alarm_level": "AlarmLevel",
    "cell_v_max": "CellVMax", "cell_v_max_pos": "CellVMaxPos",
    "cell_v_min": "CellVMin", "cell_v_min_pos": "CellVMinPos",
    "temp_max_c": "TempMax", "temp_max_pos": "TempMaxPos",
    "temp_min_c": "TempMin", "temp_min_pos": "TempMinPos",
    "alarm_flags": "AlarmFlags", "insulation_ohm": "InsulationRes",
    "soh_capacity": "SOHCapacity", "resistance_growth": "ResistanceGrowth",
    "r0_ohm": "R0", "capacity_ah": "Capacity",
    "energy_in_wh": "EnergyIn", "ah_in": "AhIn", "energy_out_wh": "EnergyOut", "ah_out": "AhOut",
}  # fmt: skip
INTEGRAL: Final = frozenset(
    {"charge_state", "alarm_level", "cell_v_max_pos", "cell_v_min_pos", "temp_max_pos",
     "temp_min_pos", "alarm_flags"}
)  # fmt: skip


class CanSourceError(SourceError):
    """The CAN bus or the DBC file cannot be opened."""


def load_dbc(path: Path) -> Any:
    """The cantools database of ``path``."""
    try:
        return cantools.database.load_file(str(path))
    except (OSError, cantools.database.errors.UnsupportedDatabaseFormatError) as exc:
        raise CanSourceError(f"cannot load DBC {path}: {exc}") from exc


def frames_for(db: Any, sample: PackSample) -> list[can.Message]:
    """The BMS frames that carry ``sample`` (what a BMS would broadcast)."""
    values = {signal: getattr(sample, attr) for attr, signal in SIGNALS.items()}
    frames = []
    for message in db.messages:
        data = message.encode({s.name: values[s.name] for s in message.signals})
        frames.append(can.Message(arbitration_id=message.frame_id, data=data, is_extended_id=False))
    return frames


@dataclass(slots=True, kw_only=True)
class CanSource:
    """Latest BMS values from a CAN bus (see the module docstring)."""

    bus: can.BusABC
    db: Any
    stale_after_ms: int = 5000
    host: str | None = None
    kind: Kind = "pack"
    decode_errors: int = 0
    _values: dict[str, float] = field(default_factory=dict)
    _seen_ms: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _notifier: can.Notifier | None = None

    @classmethod
    def open(
        cls,
        *,
        interface: str,
        channel: str,
        dbc_file: Path,
        bitrate: int | None = None,
        stale_after_ms: int = 5000,
    ) -> CanSource:
        """Open the bus, load the DBC and start receiving."""
        db = load_dbc(dbc_file)
        options: dict[str, Any] = {} if bitrate is None else {"bitrate": bitrate}
        try:
            bus = can.Bus(interface=interface, channel=channel, **options)
        except (can.CanError, OSError, ValueError) as exc:
            raise CanSourceError(f"cannot open CAN {interface}:{channel}: {exc}") from exc
        source = cls(bus=bus, db=db, stale_after_ms=stale_after_ms)
        source.start()
        return source

    def start(self) -> None:
        """Start the receiving thread."""
        self._notifier = can.Notifier(self.bus, [self.on_frame])

    def close(self) -> None:
        """Stop receiving and close the bus."""
        if self._notifier is not None:
            self._notifier.stop()
        self.bus.shutdown()

    def on_frame(self, frame: can.Message) -> None:
        """Decode one frame into the latest values (called from the receiving thread)."""
        try:
            message = self.db.get_message_by_frame_id(frame.arbitration_id)
        except KeyError:
            return
        try:
            decoded = message.decode(frame.data, decode_choices=False)
        except (cantools.database.DecodeError, ValueError):
            self.decode_errors += 1
            return
        stamp = round((frame.timestamp or time.time()) * 1000)
        with self._lock:
            self._values.update({k: float(v) for k, v in decoded.items()})
            self._seen_ms[message.name] = stamp

    def read(self, t_ms: int) -> Reading:
        """The latest complete sample, stamped ``t_ms``."""
        with self._lock:
            for message in self.db.messages:
                seen = self._seen_ms.get(message.name)
                if seen is None:
                    raise SourceError(f"no {message.name} frame received yet")
                if t_ms - seen > self.stale_after_ms:
                    raise SourceError(f"{message.name} is {t_ms - seen} ms old")
            values = dict(self._values)
        fields: dict[str, Any] = {
            attr: int(values[sig]) if attr in INTEGRAL else values[sig]
            for attr, sig in SIGNALS.items()
        }
        return Reading(t_ms=t_ms, sample=PackSample(**fields), host=self.host)
