"""Signed pack messages with chosen sample values, committed to a store (enrolled first)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from gateway.registry import Registry
from gateway.store import Candidate, Store
from ledger.keys import SigningKey, generate_seed, public_key_from_seed
from ledger.message import decode_message, message_hash, sign_message
from ledger.telemetry import TelemetryBatch, decode_columns, encode_batch
from tests.support.gateway_devices import T0_MS, FakeDevice, pack_sample

Message = tuple[Sequence[dict[str, float]], int, int]
"""A message: its samples (pack fields to set), its interval in ms, and how many of its own
spans of silence come before it."""


async def _enrolled(store: Store, device: FakeDevice) -> None:
    seed = generate_seed()
    operator = SigningKey(name="operator", seed=seed, public_key=public_key_from_seed(seed))
    await Registry(store=store, operator=operator, clock_ms=lambda: T0_MS).enroll([device.spec()])


def _candidate(device: FakeDevice, batch: TelemetryBatch, position: int) -> Candidate:
    payload = {"v": 1, "dev": device.device_id, "seq": device.seq, "prev": device.prev,
               "t": batch.t_ms, **encode_batch(batch)}  # fmt: skip
    data = sign_message(payload, seed=device.seed)
    device.seq += 1
    device.prev = message_hash(data)
    decoded = decode_message(data).payload
    return Candidate(
        position=position, topic=device.topic, device_id=device.device_id, seq=device.seq - 1,
        prev=bytes(decoded["prev"]), t_ms=batch.t_ms, received_at_ms=batch.t_ms,
        historical=False, cose=data, message_hash=message_hash(data),
        batch=decode_columns(decoded),
    )  # fmt: skip


async def store_pack_messages(
    store: Store, messages: Sequence[Message], *, hosts: Sequence[str | None] | None = None
) -> tuple[int, int]:
    """Sign and commit ``messages`` (each naming its bus of ``hosts``, if given); the first
    and last sample times (inclusive)."""
    device = FakeDevice(device_id="pack-1", kind="pack")
    await _enrolled(store, device)
    t, candidates = T0_MS, []
    for position, (samples, dt_ms, silence) in enumerate(messages):
        t += silence * dt_ms * len(samples)
        host = None if hosts is None else hosts[position]
        batch = TelemetryBatch(kind="pack", t_ms=t, dt_ms=dt_ms, packs=(), host=host,
                               samples=tuple(replace(pack_sample(), **s) for s in samples))  # type: ignore[arg-type]  # fmt: skip
        candidates.append(_candidate(device, batch, position))
        t += dt_ms * len(samples)
    await store.commit(candidates, [])
    last = candidates[-1].batch
    return T0_MS, last.t_ms + (last.n - 1) * last.dt_ms
