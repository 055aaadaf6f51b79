"""What a ``voltproof-gbt32960/1`` leaf says: the facts the audit and a verifier re-derive.

The gateway stores, per leaf, the device, the seq/prev link, the collection time, a
one-sample bus block and (when the frame carries every pack value) a one-sample pack block;
:func:`read_leaf` recomputes all of them from the leaf bytes alone, so the audit can compare
the store with the log exactly as it does for COSE telemetry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ledger.telemetry import TelemetryColumns, encode_batch

from .columns import bus_telemetry, pack_telemetry
from .envelope import Envelope, decode_envelope
from .errors import FrameStructureError
from .frame import CMD_REALTIME, CMD_REISSUE
from .signature import verify_sm2
from .terminal import Terminal
from .units import Realtime, decode_realtime


@dataclass(frozen=True, slots=True, kw_only=True)
class GbtLeaf:
    """A decoded GB/T 32960 leaf: envelope, data unit, and the stored blocks it implies."""

    envelope: Envelope
    record: Realtime
    columns: TelemetryColumns
    """The bus block."""
    pack: TelemetryColumns | None = None
    """The pack block (``None``: the frame lacks a pack value, see ``pack_telemetry``)."""

    @property
    def t_ms(self) -> int:
        """The frame's collection time (the leaf's ``t``)."""
        return self.record.at_ms

    @property
    def evidence(self) -> str:
        """What the frame proves: :data:`SIGNED_BY_TERMINAL` (2025) or :data:`RECEIVED_ONLY`
        (2016, unsigned), once its signature (if any) has been checked."""
        return RECEIVED_ONLY if self.envelope.frame.edition == 2016 else SIGNED_BY_TERMINAL

    def payload(self) -> dict[str, object]:
        """The frame's one bus sample as a telemetry payload (``v``, ``dev``, ``seq``,
        ``prev``, ``t`` from the envelope): what the condition report computes from, as for
        an agent's message. Not signed by anyone; the frame in the leaf is the evidence."""
        envelope = self.envelope
        return {"v": 1, "dev": envelope.device_id, "seq": envelope.seq, "prev": envelope.prev,
                "t": self.t_ms, **encode_batch(self.columns.to_batch())}  # fmt: skip


def read_leaf(leaf: bytes) -> GbtLeaf:
    """Decode a GB/T 32960 leaf; raises a :class:`~ledger.gbt32960.errors.GbtError`."""
    envelope = decode_envelope(leaf)
    frame = envelope.frame
    if frame.command not in {CMD_REALTIME, CMD_REISSUE}:
        raise FrameStructureError(f"a leaf holds data frames, not command {frame.command:#04x}")
    record = decode_realtime(frame.edition, frame.data)
    return GbtLeaf(
        envelope=envelope,
        record=record,
        columns=bus_telemetry(record),
        pack=pack_telemetry(record),
    )


RECEIVED_ONLY: Final = "received-only"
"""The evidence label of a 2016 frame: signed by no vehicle key, only logged by the gateway."""
SIGNED_BY_TERMINAL: Final = "signed-by-terminal"
"""The evidence label of a 2025 frame whose SM2 signature verifies under the enrolled key."""
UNSIGNED_2016: Final = "received by the gateway at {received} (unsigned 2016 frame)"
SIGNED_2025: Final = "signed by terminal {vin} (SM2, chip {chip})"


def verify_leaf(leaf: bytes, *, terminal: Terminal) -> tuple[GbtLeaf, str]:
    """Check a GB/T 32960 leaf against its terminal's registry entry, for an offline verifier.

    Raises a :class:`~ledger.gbt32960.errors.GbtError` unless the envelope, the frame's VIN
    and the terminal agree and, for a 2025 frame, the SM2 signature verifies under the
    enrolled key. Returns the decoded leaf and what it proves, in words a report prints:
    a 2025 frame is the terminal's; a 2016 frame is only "received by the gateway at T".
    """
    facts = read_leaf(leaf)
    envelope = facts.envelope
    if not envelope.device_id == envelope.frame.vin == terminal.vin:
        raise FrameStructureError(
            f"leaf of {envelope.device_id!r} holds a frame of VIN {envelope.frame.vin}; the "
            f"terminal is {terminal.vin}"
        )
    if envelope.frame.edition == 2016:
        return facts, UNSIGNED_2016.format(received=envelope.received_at_ms)
    signature = facts.record.signature
    assert signature is not None  # decode_realtime requires it in 2025
    verify_sm2(signature=signature, signed=facts.record.signed, public_key=terminal.sm2)
    return facts, SIGNED_2025.format(vin=terminal.vin, chip=terminal.chip)
