"""GB/T 32960 frames of the independent rtm-con encoder, committed to a store as leaves.

What :class:`gateway.gbt32960.GbtListener` commits for each accepted data frame, without the
TCP connection: the ``voltproof-gbt32960/1`` envelope with the gateway's seq/prev, the frame's
bus block and, when the frame carries every pack value, its pack block. For store tests that
need a terminal's leaves beside agents' messages; the listener itself is tested over TCP in
``tests/integration/test_gbt32960_terminals.py``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace

from gateway.registry import DeviceSpec, Registry
from gateway.store import Appended, Candidate, Store
from ledger import gbt32960 as gbt
from ledger.chain import ZERO_PREV
from tests.support import gbt_terminal as terminal

VIN: str = "LZYTBGBW5M1000016"
RECEIVED_MS: int = 1_796_536_800_000 + 3_600_000
"""When the store says the frames were received: an hour after the first reading."""

MIXED_READINGS: list[terminal.Reading] = [
    terminal.Reading(at=terminal.at(10 * k), soc=70 - k, voltage_v=600.0 + k, current_a=-20.0 - k)
    for k in range(5)
]
"""Five readings, 10 s apart: the second with SoC 0xFF (GB/T "invalid", so its frame has no
pack sample), the fourth with a level-3 alarm (bits 0 and 11)."""
MIXED_READINGS[1] = replace(MIXED_READINGS[1], soc=255)
MIXED_READINGS[3] = replace(MIXED_READINGS[3], alarm_level=3, alarm_bits=(0, 11))


async def enroll_terminal(registry: Registry, vin: str = VIN) -> None:
    """Enrol ``vin`` as a GB/T 32960 terminal (a bus of fleet-a, any edition)."""
    key = terminal.Sm2Key.generate()
    await registry.enroll([
        DeviceSpec(
            device_id=vin, kind="bus", fleet="fleet-a", public_key=gbt.placeholder_key(vin),
            terminal=gbt.Terminal(vin=vin, chip=f"chip-{vin[-4:]}", sm2=key.public),
        )
    ])  # fmt: skip


async def commit_frames(
    store: Store, readings: Sequence[terminal.Reading], *, vin: str = VIN
) -> list[int]:
    """Commit one 2016 real-time frame per reading as ``vin``'s next leaves; their indexes."""
    heads = {h.device_id: h for h in await store.chain_heads()}
    head = heads.get(vin)
    seq = 0 if head is None else head.seq + 1
    prev = ZERO_PREV if head is None else head.message_hash
    indexes = []
    for reading in readings:
        frame = terminal.realtime(2016, vin, reading)
        record = gbt.decode_realtime(2016, gbt.parse_frame(frame).data)
        leaf = gbt.encode_envelope(
            received_at_ms=RECEIVED_MS, seq=seq, prev=prev, device_id=vin, frame=frame
        )
        digest = hashlib.sha256(leaf).digest()
        candidate = Candidate(
            position=0, topic=f"gbt32960/{vin}", device_id=vin, seq=seq, prev=prev,
            t_ms=record.at_ms, received_at_ms=RECEIVED_MS, historical=False, cose=leaf,
            message_hash=digest, batch=gbt.bus_telemetry(record),
            pack=gbt.pack_telemetry(record),
        )  # fmt: skip
        (outcome,) = await store.commit([candidate], [])
        assert isinstance(outcome, Appended), outcome
        indexes.append(outcome.leaf_index)
        seq, prev = seq + 1, digest
    return indexes
