"""Every signed checkpoint carries the device index line of exactly the prefix it signs."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from gateway.audit.export import replay_store
from gateway.checkpointer import Checkpointer
from gateway.registry import Registry
from gateway.store import Candidate, SqliteStore, history
from ledger.checkpoint import verify_checkpoint
from ledger.device_index import index_root_from_extensions, verify_entry, verify_no_entry
from ledger.keys import SigningKey, generate_seed, public_key_from_seed
from ledger.message import decode_message, message_hash
from ledger.telemetry import Kind, decode_columns
from tests.support.gateway_devices import T0_MS, FakeDevice

ORIGIN = "voltproof.example/gw-index"


def _key(name: str) -> SigningKey:
    seed = generate_seed()
    return SigningKey(name=name, seed=seed, public_key=public_key_from_seed(seed))


def _candidate(device: FakeDevice, data: bytes, position: int) -> Candidate:
    payload = decode_message(data).payload
    return Candidate(
        position=position, topic=device.topic, device_id=device.device_id,
        seq=int(payload["seq"]), prev=bytes(payload["prev"]), t_ms=int(payload["t"]),
        received_at_ms=int(payload["t"]) + 500, historical=False, cose=data,
        message_hash=message_hash(data), batch=decode_columns(payload),
    )  # fmt: skip


async def _check_signed(store: SqliteStore, checkpointer: Checkpointer, key: SigningKey) -> int:
    """Sign a checkpoint (if the log grew) and check its index line against a replay."""
    record = await checkpointer.checkpoint()
    if record is None:
        return 0
    checkpoint = verify_checkpoint(record.note, verifier_key=key.verifier_key, origin=ORIGIN)
    root = index_root_from_extensions(checkpoint.extensions)
    replayed = await store.device_index_at(checkpoint.size)
    assert root == replayed.root()
    for entry in replayed.entries():
        verify_entry(root=root, entry=entry, proof=replayed.proof(entry.device))
    verify_no_entry(root=root, device="never-enrolled", proof=replayed.proof("never-enrolled"))
    return 1


@pytest.mark.asyncio
@pytest.mark.parametrize("seed", range(6))
async def test_index_line_equals_replay_over_random_histories(
    tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random registry changes, telemetry (gaps, late seqs), checkpoints and restarts.

    Odd seeds feed the index in a worker thread (as a big fleet's start-up replay does)."""
    if seed % 2:
        monkeypatch.setattr(history, "_FOLD_OFF_LOOP", 0)
    rng = random.Random(seed)
    path = tmp_path / "gateway.db"
    key, operator = _key("gw-index"), _key("operator")
    store = await SqliteStore.open(path)
    checkpointer = Checkpointer(store=store, origin=ORIGIN, key=key, clock_ms=lambda: T0_MS)
    devices: list[FakeDevice] = []
    live: list[FakeDevice] = []
    held: dict[str, list[bytes]] = {}
    signed = 0
    try:
        for _ in range(60):
            registry = Registry(store=store, operator=operator, clock_ms=lambda: T0_MS)
            action = rng.choices(
                ["enroll", "telemetry", "late", "rotate", "revoke", "checkpoint", "restart"],
                weights=[3, 8, 2, 1, 1, 4, 1],
            )[0]
            if action == "enroll" or not live:
                kind: Kind = rng.choice(["bus", "pack"])
                new = [
                    FakeDevice(device_id=f"{kind}-{len(devices) + i}", kind=kind)
                    for i in range(rng.randint(1, 3))
                ]
                await registry.enroll([device.spec() for device in new])
                devices += new
                live += new
            elif action == "telemetry":
                batch: list[Candidate] = []
                for device in rng.sample(live, rng.randint(1, len(live))):
                    for _ in range(rng.randint(1, 3)):
                        data = device.message(n=2)
                        if rng.random() < 0.2:  # held back: arrives later (a gap for now)
                            held.setdefault(device.device_id, []).append(data)
                        else:
                            batch.append(_candidate(device, data, len(batch)))
                await store.commit(batch, [])
            elif action == "late":
                batch = []
                for device in live:
                    for data in held.pop(device.device_id, []):
                        batch.append(_candidate(device, data, len(batch)))
                await store.commit(batch, [])
            elif action == "rotate":
                device = rng.choice(live)
                new_seed = generate_seed()
                await registry.rotate(
                    device.device_id,
                    old_seed=device.seed,
                    new_public_key=public_key_from_seed(new_seed),
                    seq=device.seq,
                )
                device.seed = new_seed
            elif action == "revoke":
                device = rng.choice(live)
                await registry.revoke(device.device_id)
                live.remove(device)
            elif action == "checkpoint":
                signed += await _check_signed(store, checkpointer, key)
            else:
                signed += await _check_signed(store, checkpointer, key)
                await store.close()
                store = await SqliteStore.open(path)
                checkpointer = Checkpointer(
                    store=store, origin=ORIGIN, key=key, clock_ms=lambda: T0_MS
                )
        signed += await _check_signed(store, checkpointer, key)
        # The audit replays the same log from its leaves alone and agrees with every line.
        summary = await replay_store(
            store, gateway_key=key.verifier_key, operator_key=operator.public_key, origin=ORIGIN
        )
    finally:
        await store.close()
    assert signed >= 3
    assert summary.checkpoints == signed
    assert summary.devices == len(devices)
    still_held = sum(len(late) for late in held.values())
    assert summary.messages + still_held == sum(device.seq for device in devices)
    assert summary.missing_seqs <= still_held


@pytest.mark.asyncio
async def test_index_rebuilt_after_a_failed_extension(tmp_path: Path) -> None:
    """A store error while feeding the index leaves no half-fed index behind."""
    store = await SqliteStore.open(tmp_path / "gateway.db")
    key, operator = _key("gw-index"), _key("operator")
    try:
        checkpointer = Checkpointer(store=store, origin=ORIGIN, key=key, clock_ms=lambda: T0_MS)
        registry = Registry(store=store, operator=operator, clock_ms=lambda: T0_MS)
        pack = FakeDevice(device_id="pack-1")
        await registry.enroll([pack.spec()])
        assert await _check_signed(store, checkpointer, key) == 1
        await store.commit([_candidate(pack, pack.message(n=2), 0)], [])
        original = store.extend_device_index

        async def failing(*args: object, **kwargs: object) -> None:
            await original(*args, **kwargs)  # type: ignore[arg-type]
            raise OSError("disk gone")

        store.extend_device_index = failing  # type: ignore[method-assign]
        with pytest.raises(OSError, match="disk gone"):
            await checkpointer.checkpoint()
        store.extend_device_index = original  # type: ignore[method-assign]
        await store.commit([_candidate(pack, pack.message(n=2), 0)], [])
        assert await _check_signed(store, checkpointer, key) == 1
    finally:
        await store.close()
