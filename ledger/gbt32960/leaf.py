"""What a ``voltproof-gbt32960/1`` leaf says: the facts the audit and a verifier re-derive.

The gateway stores, per leaf, the device, the seq/prev link, the collection time and a
one-sample bus block; :func:`read_leaf` recomputes all of them from the leaf bytes alone, so
the audit can compare the store with the log exactly as it does for COSE telemetry.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.telemetry import TelemetryColumns

from .columns import bus_telemetry
from .envelope import Envelope, decode_envelope
from .errors import FrameStructureError
from .frame import CMD_REALTIME, CMD_REISSUE
from .units import Realtime, decode_realtime


@dataclass(frozen=True, slots=True, kw_only=True)
class GbtLeaf:
    """A decoded GB/T 32960 leaf: envelope, data unit, and the stored block it implies."""

    envelope: Envelope
    record: Realtime
    columns: TelemetryColumns

    @property
    def t_ms(self) -> int:
        """The frame's collection time (the leaf's ``t``)."""
        return self.record.at_ms


def read_leaf(leaf: bytes) -> GbtLeaf:
    """Decode a GB/T 32960 leaf; raises a :class:`~ledger.gbt32960.errors.GbtError`."""
    envelope = decode_envelope(leaf)
    frame = envelope.frame
    if frame.command not in {CMD_REALTIME, CMD_REISSUE}:
        raise FrameStructureError(f"a leaf holds data frames, not command {frame.command:#04x}")
    record = decode_realtime(frame.edition, frame.data)
    return GbtLeaf(envelope=envelope, record=record, columns=bus_telemetry(record))
