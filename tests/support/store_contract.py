"""The store contract: every reader method on a store filled through the writer.

Written against :class:`gateway.store.Store` and :class:`gateway.store.StoreReader` only, so
every implementation (the SQLite file store read through a read-only reader, the in-memory
fake, later PostgreSQL) runs the same cases: ``tests/unit/test_store_contract.py`` gives each
case a :class:`StoreWorld` per implementation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pytest

from gateway.registry import Registry
from gateway.store import (
    AnchorStatus,
    Candidate,
    CheckpointRecord,
    CosignatureRecord,
    DeviceStatus,
    QuarantineEntry,
    ReceiptHead,
    RegistryConflictError,
    Store,
    StoreError,
    StoreReader,
    UnknownCheckpointError,
)
from gateway.store.blocks import summary
from ledger import gbt32960 as gbt
from ledger.device_index import REGISTRY_CHAIN_START, extend_registry_chain, verify_entry
from ledger.keys import SigningKey, generate_seed, public_key_from_seed
from ledger.merkle import OutOfRangeError, hash_leaf, verify_consistency, verify_inclusion
from ledger.merkle.index_tree import EMPTY_NODE
from ledger.message import decode_message, message_hash
from ledger.telemetry import decode_columns
from tests.support import gbt_terminal as terminal
from tests.support.gateway_devices import T0_MS, FakeDevice
from tests.support.pack_messages import store_pack_messages
from tests.support.terminal_frames import VIN, commit_frames, enroll_terminal

END = 2**63 - 1
STEP_MS = 4_000
"""Each message holds 4 samples, one a second."""


@dataclass(slots=True, kw_only=True)
class StoreWorld:
    """One implementation under test: its writer, its reader and how to damage it."""

    writer: Store
    reader: StoreReader
    damage_sample_block: Callable[[int], Awaitable[None]]
    """Truncate the sample block of a leaf (every implementation provides a way)."""
    run_sql: Callable[[str, Sequence[object]], Awaitable[None]]
    """Run one statement (``?`` placeholders) on the store behind the store's back: what an
    operator editing the database, or an older store, leaves."""


def candidate(device: FakeDevice, position: int, *, alarm: int = 0) -> Candidate:
    data = device.message(t_ms=T0_MS + device.seq * STEP_MS, n=4, alarm=alarm)
    payload = decode_message(data).payload
    return Candidate(
        position=position, topic=device.topic, device_id=device.device_id,
        seq=int(payload["seq"]), prev=bytes(payload["prev"]), t_ms=int(payload["t"]),
        received_at_ms=int(payload["t"]) + 500, historical=False, cose=data,
        message_hash=message_hash(data), batch=decode_columns(payload),
    )  # fmt: skip


@dataclass(slots=True, kw_only=True)
class Filled:
    """What :func:`fill` wrote."""

    pack: FakeDevice
    bus: FakeDevice
    pack_leaves: list[int]
    bus_leaves: list[int]
    registry: Registry


async def fill(store: Store) -> Filled:
    """Two devices enrolled, 5 pack messages (one with a level-3 alarm, seq 3 missing), 4 bus
    messages (and a duplicate), one quarantined input, two checkpoints (the first anchored)."""
    seed = generate_seed()
    operator = SigningKey(name="operator", seed=seed, public_key=public_key_from_seed(seed))
    registry = Registry(store=store, operator=operator, clock_ms=lambda: T0_MS)
    pack = FakeDevice(device_id="pack-1", kind="pack")
    bus = FakeDevice(device_id="bus-1", kind="bus", fleet="fleet-b")
    await registry.enroll([pack.spec(), bus.spec()])
    pack_batch = [candidate(pack, i, alarm=3 if i == 1 else 0) for i in range(3)]
    pack.message(t_ms=T0_MS + pack.seq * STEP_MS, n=4)  # seq 3 is lost on the way
    pack_batch += [candidate(pack, 3 + i) for i in range(2)]
    bus_batch = [candidate(bus, i) for i in range(3)]
    rejected = QuarantineEntry(
        reason="malformed", detail="not CBOR", topic="voltproof/fleet-a/pack-1/telemetry",
        device_id="pack-1", raw=b"\x00junk", raw_size=5, received_at_ms=T0_MS,
    )  # fmt: skip
    outcomes = await store.commit([*pack_batch, *bus_batch], [rejected])
    indexes = [getattr(o, "leaf_index", -1) for o in outcomes]
    first = await store.log_head()
    await store.add_checkpoint(
        CheckpointRecord(size=first.size, root=first.root, note="note 1", signed_at_ms=T0_MS)
    )
    await store.record_anchor(
        size=first.size, backend="local", state=AnchorStatus.FINAL,
        receipt='{"backend": "local"}', now_ms=T0_MS,
    )  # fmt: skip
    more = await store.commit([bus_batch[0], candidate(bus, 0)], [])  # a duplicate, a new one
    second = await store.log_head()
    await store.add_checkpoint(
        CheckpointRecord(size=second.size, root=second.root, note="note 2", signed_at_ms=T0_MS)
    )
    return Filled(
        pack=pack, bus=bus, pack_leaves=indexes[:5],
        bus_leaves=[*indexes[5:], getattr(more[1], "leaf_index", -1)], registry=registry,
    )  # fmt: skip


# -- the cases ----------------------------------------------------------------------------


async def case_empty_store(world: StoreWorld) -> None:
    """An empty store answers every read with nothing, not an error."""
    r = world.reader
    assert (await r.log_head()).size == 0
    assert await r.list_devices() == []
    assert await r.devices(["pack-1"]) == {}
    assert await r.registry_events() == []
    assert await r.registry_leaves(["pack-1"], leaf_below=END) == []
    assert await r.receipt_heads(["pack-1"]) == {}
    assert await r.chain_gaps("pack-1") == []
    assert await r.duplicates("pack-1") == 0
    assert await r.messages_in("pack-1", t_from=0, t_to=END, limit=10) == []
    assert await r.newest_message("pack-1", t_from=0, t_to=END) is None
    assert await r.message_before("pack-1", seq=END, t_ms=END, leaf_below=END) is None
    assert await r.message_after("pack-1", seq=-1, t_ms=0, leaf_below=END) is None
    assert await r.device_leaves("pack-1") == []
    assert len(await r.sample_window("pack", "pack-1", t_from=0, t_to=END)) == 0
    assert len(await r.newest_sample("pack", "pack-1", t_from=0, t_to=END)) == 0
    assert await r.latest_samples("pack") == []
    assert await r.series("pack", "pack-1", t_from=0, t_to=END) == []
    assert await r.latest_checkpoint() is None
    assert await r.latest_final_checkpoint() is None
    assert await r.latest_anchored() is None
    assert await r.checkpoints() == []
    assert await r.checkpoints_in(list(AnchorStatus)) == []
    assert await r.checkpoint_between(0, END) is None
    assert await r.alarms() == []
    assert await r.quarantine() == []
    assert await r.quarantine_counts() == []
    with pytest.raises(UnknownCheckpointError):
        await r.checkpoint(1)
    with pytest.raises(OutOfRangeError):
        await r.leaf(0)


async def case_registry(world: StoreWorld) -> None:
    """Devices, their keys and the registry leaves and events written by the writer."""
    filled = await fill(world.writer)
    r = world.reader
    listed = await r.list_devices()
    assert [d.device_id for d in listed] == ["bus-1", "pack-1"]
    found = await r.devices(["pack-1", "nobody"])
    assert set(found) == {"pack-1"}
    pack = found["pack-1"]
    assert (pack.kind, pack.fleet, pack.status) == ("pack", "fleet-a", DeviceStatus.ACTIVE)
    assert pack.public_key == filled.pack.public_key
    assert [k.public_key for k in pack.keys] == [filled.pack.public_key]
    events = await r.registry_events()
    assert [(e.leaf_index, e.action, e.device_id) for e in events] == [
        (0, "enroll", "pack-1"), (1, "enroll", "bus-1"),
    ]  # fmt: skip
    assert events[1].fleet == "fleet-b"
    leaf = await r.leaf(0)
    assert events[0].message_hash == leaf.message_hash
    assert [e.leaf_index for e in await r.registry_events(device_id="bus-1")] == [1]
    assert await r.registry_events(limit=1) == events[:1]
    leaves = await r.registry_leaves(["pack-1", "bus-1"], leaf_below=END)
    assert [(x.leaf_index, x.kind, x.seq) for x in leaves] == [
        (0, "registry", None), (1, "registry", None),
    ]  # fmt: skip
    assert await r.registry_leaves(["pack-1", "bus-1"], leaf_below=1) == leaves[:1]


async def case_registry_replace(world: StoreWorld) -> None:
    """A replace is one leaf counted for both devices it names; the rules are the ledger's."""
    seed = generate_seed()
    operator = SigningKey(name="operator", seed=seed, public_key=public_key_from_seed(seed))
    registry = Registry(store=world.writer, operator=operator, clock_ms=lambda: T0_MS)
    old, new = FakeDevice(device_id="pack-1", kind="pack"), FakeDevice(device_id="pack-2")
    with pytest.raises(RegistryConflictError, match="'pack-1' is not enrolled before it"):
        await registry.revoke("pack-1")
    await registry.enroll([old.spec(), new.spec()])
    with pytest.raises(RegistryConflictError, match="'pack-1' is live; only a revoked device"):
        await registry.replace("pack-1", new_device_id="pack-2")
    await registry.revoke("pack-1")
    link = await registry.replace("pack-1", new_device_id="pack-2")
    r = world.reader
    successor = await r.registry_leaves(["pack-2"], leaf_below=END)
    assert [(x.leaf_index, x.kind) for x in successor] == [(1, "registry"), (link, "registry")]
    assert [x.leaf_index for x in await r.registry_leaves(["pack-1"], leaf_below=END)] == [
        0, 2, link,
    ]  # fmt: skip
    events = await r.registry_events()
    assert [(e.leaf_index, e.action, e.device_id) for e in events][-2:] == [
        (link, "replace", "pack-1"), (link, "replace", "pack-2"),
    ]  # fmt: skip
    index = await r.device_index_at(link + 1)
    counts = {e.device: e.registry_count for e in index.entries()}
    assert counts == {"pack-1": 3, "pack-2": 2}
    with pytest.raises(RegistryConflictError, match="already replaced by 'pack-2'"):
        await registry.replace("pack-1", new_device_id="pack-2")
    with pytest.raises(RegistryConflictError, match="second enroll of 'pack-1'"):
        await registry.enroll([old.spec()])
    assert (await r.log_head()).size == link + 1


async def case_registry_keys_unshared(world: StoreWorld) -> None:
    """A public key belongs to one device, ever: enrolling or rotating another device to it is
    refused with both names, and nothing is written."""
    seed = generate_seed()
    operator = SigningKey(name="operator", seed=seed, public_key=public_key_from_seed(seed))
    registry = Registry(store=world.writer, operator=operator, clock_ms=lambda: T0_MS)
    pack = FakeDevice(device_id="pack-1", kind="pack")
    twin = FakeDevice(device_id="pack-2", kind="pack", seed=pack.seed)
    with pytest.raises(RegistryConflictError, match="pack-2 and pack-1 are given the same"):
        await registry.enroll([pack.spec(), twin.spec()])
    assert (await world.reader.log_head()).size == 0
    await registry.enroll([pack.spec()])
    with pytest.raises(RegistryConflictError, match=r"given to pack-2 is \(or was\) the key"):
        await registry.enroll([twin.spec()])
    other = FakeDevice(device_id="pack-3", kind="pack")
    await registry.enroll([other.spec()])
    with pytest.raises(RegistryConflictError, match=r"given to pack-3 is \(or was\) the key"):
        await registry.rotate("pack-3", old_seed=other.seed, new_public_key=pack.public_key, seq=0)
    # a key retired by a rotation stays its device's: nobody else may take it
    fresh = generate_seed()
    await registry.rotate("pack-1", old_seed=pack.seed, new_public_key=public_key_from_seed(fresh),
                          seq=0)  # fmt: skip
    with pytest.raises(RegistryConflictError, match="the key of pack-1"):
        await registry.enroll([twin.spec()])
    assert (await world.reader.log_head()).size == 3


async def case_chains_and_messages(world: StoreWorld) -> None:
    """Chain gaps, messages by device and period, boundaries and the newest message."""
    filled = await fill(world.writer)
    r = world.reader
    assert await r.chain_gaps("pack-1") == [(3, 4)]
    assert await r.chain_gaps("bus-1") == []
    assert await r.duplicates("bus-1") == 1
    heads = await r.receipt_heads(["pack-1", "bus-1", "pack-1", "nobody"])
    pack_2 = (await r.messages_in("pack-1", t_from=0, t_to=END, limit=10))[2]
    bus_3 = (await r.messages_in("bus-1", t_from=0, t_to=END, limit=10))[3]
    assert (pack_2.seq, bus_3.seq) == (2, 3)
    assert heads == {
        "pack-1": ReceiptHead(device_id="pack-1", seq=2, leaf_index=filled.pack_leaves[2],
                              message_hash=message_hash(pack_2.cose)),
        "bus-1": ReceiptHead(device_id="bus-1", seq=3, leaf_index=filled.bus_leaves[3],
                             message_hash=message_hash(bus_3.cose)),
    }  # fmt: skip
    inside = await r.messages_in("pack-1", t_from=0, t_to=END, limit=10)
    assert [m.seq for m in inside] == [0, 1, 2, 4, 5]
    assert [m.leaf_index for m in inside] == filled.pack_leaves
    assert [m.t_ms for m in inside] == [T0_MS + s * STEP_MS for s in (0, 1, 2, 4, 5)]
    assert [m.cose for m in inside] == [(await r.leaf(m.leaf_index)).cose for m in inside]
    period = await r.messages_in(
        "pack-1", t_from=T0_MS + STEP_MS, t_to=T0_MS + 4 * STEP_MS, limit=10
    )
    assert [m.seq for m in period] == [1, 2]
    assert [m.seq for m in await r.messages_in("pack-1", t_from=0, t_to=END, limit=2)] == [0, 1]
    before = await r.message_before("pack-1", seq=4, t_ms=END, leaf_below=END)
    assert before is not None
    assert before.seq == 2
    assert await r.message_before("pack-1", seq=0, t_ms=END, leaf_below=END) is None
    after = await r.message_after("pack-1", seq=2, t_ms=0, leaf_below=END)
    assert after is not None
    assert after.seq == 4
    assert await r.message_after("pack-1", seq=2, t_ms=0, leaf_below=after.leaf_index) is None
    newest = await r.newest_message("pack-1", t_from=0, t_to=END)
    assert newest is not None
    assert newest.seq == 5
    below = await r.newest_message("pack-1", t_from=0, t_to=END, leaf_below=newest.leaf_index)
    assert below is not None
    assert below.seq == 4
    by_seq = await r.device_leaves("pack-1", t_from=T0_MS + STEP_MS, t_to=END, limit=3)
    assert [x.seq for x in by_seq] == [1, 2, 4]
    leaf = await r.leaf(filled.bus_leaves[0])
    assert (leaf.kind, leaf.device_id, leaf.seq, leaf.historical) == (
        "telemetry",
        "bus-1",
        0,
        False,
    )


async def case_device_index(world: StoreWorld) -> None:
    """The device index at a size replays exactly the prefix: registry chain and heads."""
    filled = await fill(world.writer)
    r = world.reader
    head = await r.log_head()
    index = await r.device_index_at(head.size)
    assert [e.device for e in index.entries()] == ["bus-1", "pack-1"]
    pack = index.entry("pack-1")
    assert pack is not None
    assert (pack.kind, pack.registry_count) == ("pack", 1)
    assert pack.registry_hash == extend_registry_chain(REGISTRY_CHAIN_START, (await r.leaf(0)).cose)
    assert pack.head is not None
    newest = await r.leaf(filled.pack_leaves[-1])
    assert (pack.head.seq, pack.head.leaf, pack.head.hash) == (
        5, filled.pack_leaves[-1], newest.message_hash,
    )  # fmt: skip
    assert pack.head.t == T0_MS + 5 * STEP_MS
    for entry in index.entries():
        verify_entry(root=index.root(), entry=entry, proof=index.proof(entry.device))
    # A prefix that ends before the pack's seq 4: its head is seq 2.
    earlier = await r.device_index_at(filled.pack_leaves[3])
    old = earlier.entry("pack-1")
    assert old is not None
    assert old.head is not None
    assert old.head.seq == 2
    assert earlier.root() != index.root()
    only_enrolment = await r.device_index_at(1)
    assert [e.device for e in only_enrolment.entries()] == ["pack-1"]
    assert (await r.device_index_at(0)).root() == EMPTY_NODE


async def case_extend_device_index(world: StoreWorld) -> None:
    """Extending an index from any split point gives the index replayed from zero."""
    await fill(world.writer)
    r = world.reader
    size = (await r.log_head()).size
    for split in range(size + 1):
        index = await r.device_index_at(split)
        await r.extend_device_index(index, start=split, size=size)
        assert index.root() == (await r.device_index_at(size)).root(), split
    stepwise = await r.device_index_at(0)
    for start in range(size):
        await r.extend_device_index(stepwise, start=start, size=start + 1)
        assert stepwise.root() == (await r.device_index_at(start + 1)).root(), start


async def case_samples(world: StoreWorld) -> None:
    """Sample windows (oldest first, limited, by field), the newest sample, series, latest."""
    await fill(world.writer)
    r = world.reader
    window = await r.sample_window("pack", "pack-1", t_from=0, t_to=END)
    assert len(window) == 20
    assert list(window.t_ms[:5]) == [T0_MS + i * 1000 for i in range(5)]
    limited = await r.sample_window("pack", "pack-1", t_from=0, t_to=END, fields=["soc"], limit=3)
    assert len(limited) == 3
    assert set(limited.values) == {"soc"}
    part = await r.sample_window("pack", "pack-1", t_from=T0_MS + 2_000, t_to=T0_MS + 6_000)
    assert list(part.t_ms) == [T0_MS + i * 1000 for i in range(2, 6)]
    newest = await r.newest_sample("pack", "pack-1", t_from=0, t_to=END)
    assert list(newest.t_ms) == [T0_MS + 5 * STEP_MS + 3_000]
    earlier = await r.newest_sample("pack", "pack-1", t_from=0, t_to=T0_MS + 2 * STEP_MS)
    assert list(earlier.t_ms) == [T0_MS + 2 * STEP_MS - 1_000]
    series = await r.series("pack", "pack-1", t_from=T0_MS, t_to=T0_MS + 2_000)
    assert [s["t_ms"] for s in series] == [T0_MS, T0_MS + 1_000]
    assert series[0]["device"] == "pack-1"
    latest = await r.latest_samples("bus")
    assert [s["device"] for s in latest] == ["bus-1"]


async def case_damaged_sample_block(world: StoreWorld) -> None:
    """A damaged sample block is a StoreError for every sample read, never wrong samples."""
    filled = await fill(world.writer)
    await world.damage_sample_block(filled.pack_leaves[0])
    r = world.reader
    with pytest.raises(StoreError, match="sample block of leaf"):
        await r.sample_window("pack", "pack-1", t_from=0, t_to=END)
    with pytest.raises(StoreError, match="sample block of leaf"):
        await r.series("pack", "pack-1", t_from=0, t_to=END)
    assert len(await r.sample_window("bus", "bus-1", t_from=0, t_to=END)) == 16


async def case_log_and_proofs(world: StoreWorld) -> None:
    """The log head, roots and the RFC 9162 proofs verify; a size beyond the log is refused."""
    await fill(world.writer)
    r = world.reader
    head = await r.log_head()
    assert head.size == 11
    assert await r.root_at(head.size) == head.root
    for index in (0, 5, 10):
        leaf = await r.leaf(index)
        proof = await r.inclusion_proof(index, head.size)
        verify_inclusion(leaf_hash=hash_leaf(leaf.cose), index=index, size=head.size,
                         proof=proof, root=head.root)  # fmt: skip
        assert await r.inclusion_proof_and_root(index, head.size) == (proof, head.root)
    assert await r.inclusion_proofs([0, 5, 10], head.size) == [
        await r.inclusion_proof(i, head.size) for i in (0, 5, 10)
    ]
    proof = await r.consistency_proof(4, head.size)
    verify_consistency(size1=4, size2=head.size, proof=proof, root1=await r.root_at(4),
                       root2=head.root)  # fmt: skip
    with pytest.raises(OutOfRangeError):
        await r.root_at(head.size + 1)
    with pytest.raises(OutOfRangeError):
        await r.leaf(head.size)


async def case_checkpoints_and_anchors(world: StoreWorld) -> None:
    """Checkpoints newest first, by size, by anchor state, between sizes; the final anchor."""
    await fill(world.writer)
    r = world.reader
    listed = await r.checkpoints()
    assert [c.size for c in listed] == [11, 10]
    assert [c.size for c in await r.checkpoints(limit=1)] == [11]
    assert [c.size for c in await r.checkpoints(final_only=True)] == [10]
    latest = await r.latest_checkpoint()
    assert latest is not None
    assert (latest.size, latest.note) == (11, "note 2")
    assert latest.anchor_state is AnchorStatus.UNANCHORED
    assert latest.receipt is None
    final = await r.latest_final_checkpoint()
    assert final is not None
    assert final.size == 10
    assert final.receipt == '{"backend": "local"}'
    assert (await r.checkpoint(10)).root == await r.root_at(10)
    assert [c.size for c in await r.checkpoints_in([AnchorStatus.UNANCHORED])] == [11]
    between = await r.checkpoint_between(1, 11)
    assert between is not None
    assert between.size == 10
    assert await r.checkpoint_between(11, 11) == latest
    assert await r.checkpoint_between(1, 9) is None
    anchored = await r.latest_anchored()
    assert anchored is not None
    assert (anchored.size, anchored.backend) == (10, "local")
    assert anchored.root == await r.root_at(10)


async def case_cosignatures(world: StoreWorld) -> None:
    """Cosignatures by checkpoint and witness; the cosigned checkpoints first covering leaves."""
    w, r = world.writer, world.reader
    assert await r.cosignatures(10) == []
    assert await r.latest_cosigned("lessor") is None
    assert await r.cosigned_covering(leaf_from=0, leaf_to=5, size=0) == []
    await fill(w)

    def line(size: int, witness: str, timestamp: int) -> CosignatureRecord:
        return CosignatureRecord(
            size=size, witness=witness, timestamp=timestamp,
            line=f"\u2014 {witness} {size}@{timestamp}\n", received_at_ms=T0_MS,
        )  # fmt: skip

    assert await w.add_cosignature(line(10, "lessor", 100))
    assert await w.add_cosignature(line(11, "lessor", 200))
    assert await w.add_cosignature(line(11, "auditor", 210))
    assert not await w.add_cosignature(line(10, "lessor", 300))  # the earliest is kept
    with pytest.raises(UnknownCheckpointError, match="size 99"):
        await w.add_cosignature(line(99, "lessor", 100))
    assert await r.cosignatures(10) == [line(10, "lessor", 100)]
    assert [c.witness for c in await r.cosignatures(11)] == ["auditor", "lessor"]
    assert await r.latest_cosigned("lessor") == line(11, "lessor", 200)
    assert await r.latest_cosigned("stranger") is None

    both = await r.cosigned_covering(leaf_from=0, leaf_to=11, size=11)
    assert [c.size for c in both] == [10, 11]
    first = both[0]
    assert first.note == "note 1" + line(10, "lessor", 100).line
    assert first.cosignatures == (line(10, "lessor", 100),)
    verify_consistency(
        size1=10, size2=11, proof=list(first.proof), root1=first.root, root2=await r.root_at(11)
    )
    assert both[1].proof == ()
    assert both[1].note == "note 2" + line(11, "auditor", 210).line + line(11, "lessor", 200).line
    assert [c.size for c in await r.cosigned_covering(leaf_from=3, leaf_to=7, size=11)] == [10]
    assert [c.size for c in await r.cosigned_covering(leaf_from=10, leaf_to=11, size=11)] == [11]
    assert [c.size for c in await r.cosigned_covering(leaf_from=0, leaf_to=11, size=10)] == [10]
    assert await r.cosigned_covering(leaf_from=4, leaf_to=4, size=11) == []
    with pytest.raises(ValueError, match="not a range"):
        await r.cosigned_covering(leaf_from=5, leaf_to=4, size=11)


async def case_alarms_and_quarantine(world: StoreWorld) -> None:
    """Alarms by device, period and level (newest first); quarantine rows and totals."""
    await fill(world.writer)
    r = world.reader
    alarms = await r.alarms(device_id="pack-1")
    assert [(a.t_ms, a.level) for a in alarms] == [(T0_MS + STEP_MS, 3)]
    assert await r.alarms(device_id="pack-1", min_level=4) == []
    assert await r.alarms(device_id="pack-1", t_from=T0_MS + 2 * STEP_MS) == []
    assert await r.alarms(device_id="bus-1") == []
    assert await r.alarms() == alarms
    rows = await r.quarantine()
    assert [(q.reason, q.device_id, q.raw, q.raw_size) for q in rows] == [
        ("malformed", "pack-1", b"\x00junk", 5)
    ]
    assert await r.quarantine(reason="fork") == []
    counts = await r.quarantine_counts()
    assert [(c.reason, c.total, c.evicted) for c in counts] == [("malformed", 1, 0)]


def _rejected(number: int, fleet: str = "fleet-a") -> QuarantineEntry:
    return QuarantineEntry(
        reason="malformed", detail=f"junk {number}", topic=f"voltproof/{fleet}/pack-1/telemetry",
        device_id="pack-1", raw=bytes([number]), raw_size=1, received_at_ms=T0_MS + number,
    )  # fmt: skip


async def case_keyset_pages(world: StoreWorld) -> None:
    """Every list reads in keyset pages: walked two rows at a time while rows are written
    between pages, no row present at the start is repeated or skipped, and the order holds."""
    filled = await fill(world.writer)
    w, r = world.writer, world.reader
    pack, bus = filled.pack, filled.bus
    # six more pack alarms (levels 1-4, two sharing each other's neighbours) and five rejects
    await w.commit(
        [candidate(pack, i, alarm=1 + i % 4) for i in range(6)],
        [_rejected(i, "fleet-b" if i % 2 else "fleet-a") for i in range(5)],
    )
    alarms_before = await r.alarms(limit=1000)
    seen = await r.alarms(limit=2)
    while True:
        # a newer alarm lands above the cursor: the walk neither sees it nor shifts
        await w.commit([candidate(pack, 0, alarm=2)], [])
        page = await r.alarms(limit=2, before=(seen[-1].t_ms, seen[-1].alarm_id))
        if not page:
            break
        seen += page
    keys = [(a.t_ms, a.alarm_id) for a in seen]
    assert keys == sorted(keys, reverse=True)
    assert len(set(keys)) == len(keys)
    assert seen == alarms_before
    assert len(seen) == 7
    one = await r.alarm(seen[0].alarm_id)
    assert one == seen[0]
    assert await r.alarm(10**9) is None
    counts = await r.alarm_counts(device_id="pack-1")
    assert sum(counts.values()) == len(await r.alarms(device_id="pack-1", limit=1000))
    assert counts == {level: sum(1 for a in await r.alarms(device_id="pack-1", limit=1000)
                                 if a.level == level) for level in counts}  # fmt: skip
    assert await r.alarm_counts(device_id="pack-1", min_level=5) == {}
    assert await r.alarm_counts(fleet="fleet-a") == counts
    assert await r.alarm_counts(fleet="fleet-b") == {}
    assert await r.alarms(fleet="fleet-a", limit=1000) == await r.alarms(limit=1000)
    assert await r.alarms(fleet="fleet-b") == []

    quarantined = await r.quarantine(limit=1000)
    walked_q = await r.quarantine(limit=2)
    while True:
        await w.commit([], [_rejected(9)])  # newer rows: above the cursor
        more = await r.quarantine(limit=2, before_id=walked_q[-1].row_id)
        if not more:
            break
        walked_q += more
    assert [q.row_id for q in walked_q] == [q.row_id for q in quarantined]
    fleet_b = await r.quarantine(limit=1000, topic_prefix="voltproof/fleet-b/")
    assert [q.detail for q in fleet_b] == ["junk 3", "junk 1"]
    assert await r.quarantine(topic_prefix="voltproof/fleet-%/") == []

    events = await r.registry_events()
    walked = await r.registry_events(limit=1)
    while next_events := await r.registry_events(
        limit=1, after=(walked[-1].leaf_index, walked[-1].device_id)
    ):
        walked += next_events
    assert walked == events
    assert sorted(e.device_id for e in walked) == ["bus-1", "pack-1"]
    assert [e.leaf_index for e in walked] == sorted(e.leaf_index for e in walked)

    messages = await r.messages_in("pack-1", t_from=0, t_to=END, limit=1000)
    read = await r.messages_in("pack-1", t_from=0, t_to=END, limit=2)
    while more_messages := await r.messages_in(
        "pack-1", t_from=0, t_to=END, limit=2, after=(read[-1].t_ms, read[-1].leaf_index)
    ):
        read += more_messages
    assert read == messages
    assert [(m.t_ms, m.leaf_index) for m in read] == sorted((m.t_ms, m.leaf_index) for m in read)

    first, second = await r.checkpoints()
    assert await r.checkpoints(limit=1) == [first]
    assert await r.checkpoints(limit=1, below_size=first.size) == [second]
    assert await r.checkpoints(below_size=second.size) == []
    assert await r.checkpoints(final_only=True, below_size=first.size + 1) == [second]

    devices = await r.devices_page(limit=1)
    assert [d.device_id for d in devices] == ["bus-1"]
    assert [d.device_id for d in await r.devices_page(after="bus-1")] == ["pack-1"]
    assert await r.devices_page(after="pack-1") == []
    assert [d.device_id for d in await r.devices_page(kind="pack")] == ["pack-1"]
    assert [d.device_id for d in await r.devices_page(fleet="fleet-b")] == ["bus-1"]
    assert bus.device_id == "bus-1"


async def case_newest_of_many_devices(world: StoreWorld) -> None:
    """The batched newest message and sample of many devices are, device by device, what the
    one-device reads find, whatever the period (a period ending inside a block included)."""
    await fill(world.writer)
    r = world.reader
    ids = ["pack-1", "bus-1", "nobody"]
    periods = [
        (0, END), (T0_MS, T0_MS + 2 * STEP_MS), (T0_MS + STEP_MS + 1, T0_MS + STEP_MS + 2_500),
        (T0_MS + 2_000, T0_MS + 2_001), (END - 1, END), (0, T0_MS),
    ]  # fmt: skip
    for t_from, t_to in periods:
        messages = await r.newest_messages(ids, t_from=t_from, t_to=t_to)
        for device in ids:
            one = await r.newest_message(device, t_from=t_from, t_to=t_to)
            assert messages.get(device) == one, (device, t_from, t_to)
        for kind, device in (("pack", "pack-1"), ("bus", "bus-1")):
            many = await r.newest_samples(kind, ids, t_from=t_from, t_to=t_to)  # type: ignore[arg-type]
            one_sample = await r.newest_sample(kind, device, t_from=t_from, t_to=t_to)  # type: ignore[arg-type]
            names = list(one_sample.values)
            if not len(one_sample):
                assert device not in many, (device, t_from, t_to)
                continue
            assert many[device].rows(names) == one_sample.rows(names), (device, t_from, t_to)
            assert set(many) <= {device}  # the other kind's device is not of this kind
    assert await r.newest_messages([]) == {}
    assert await r.newest_samples("pack", []) == {}


async def case_sample_blocks_in(world: StoreWorld) -> None:
    """Blocks read whole (for a chart's reduction) flatten to exactly the samples the
    sample window reads, for any period (one cutting blocks included)."""
    await fill(world.writer)
    r = world.reader
    fields = ["soc", "cell_v_max", "alarm_level"]
    for t_from, t_to in ((0, END), (T0_MS + 1_000, T0_MS + 2 * STEP_MS + 2_000), (0, T0_MS)):
        groups = await r.sample_blocks_in("pack", "pack-1", t_from=t_from, t_to=t_to,
                                          fields=fields)  # fmt: skip
        window = await r.sample_window("pack", "pack-1", t_from=t_from, t_to=t_to, fields=fields)
        flat = [row for g in groups for row in g.samples(from_ms=t_from, to_ms=t_to).rows(fields)]
        assert sorted(flat) == window.rows(fields), (t_from, t_to)
        assert all(g.wire["soc"].shape == (len(g.t_ms), g.n) for g in groups)


_CHART = ["soc", "cell_spread_v", "temp_max_c", "alarm_level"]
_CHART_SOURCES = ["soc", "cell_v_max", "cell_v_min", "temp_max_c", "alarm_level"]


async def _check_summary_read(
    r: StoreReader, *, t_from: int, t_to: int, bucket_ms: int, unsummarised: int = -1
) -> tuple[int, int]:
    """One chart read against the blocks: every block with samples in the period comes once,
    as a summary when it lies inside the period and one bucket (with the min, max and sum of
    its wire integers), else whole (so is the block of leaf ``unsummarised``). Returns
    (summarised, whole) block counts."""
    read = await r.sample_summaries_in("pack", "pack-1", t_from=t_from, t_to=t_to,
                                       bucket_ms=bucket_ms, names=_CHART)  # fmt: skip
    groups = await r.sample_blocks_in("pack", "pack-1", t_from=t_from, t_to=t_to,
                                      fields=_CHART_SOURCES)  # fmt: skip
    expected: dict[int, tuple[object, ...]] = {}
    cut: set[int] = set()
    for g in groups:
        times = g.times()
        spread = np.maximum(g.wire["cell_v_max"].astype(np.int64) - g.wire["cell_v_min"], 0)
        for i, leaf in enumerate(g.leaf_index.tolist()):
            row = times[i]
            if not ((row >= t_from) & (row < t_to)).any():
                continue
            if (
                leaf != unsummarised
                and row[0] >= t_from
                and row[-1] < t_to
                and ((row[0] - t_from) // bucket_ms == (row[-1] - t_from) // bucket_ms)
            ):
                wires = [g.wire[n][i] for n in ("soc",)] + [spread[i]] + [
                    g.wire[n][i] for n in ("temp_max_c", "alarm_level")]  # fmt: skip
                expected[int(row[0])] = (
                    g.n,
                    *[(float(w.min()), float(w.max()), float(w.sum())) for w in wires],
                )
            else:
                cut.add(leaf)
    s = read.summaries
    got = {
        t: (n, *[(s.min[c][i], s.max[c][i], s.sum[c][i]) for c in _CHART])
        for i, (t, n) in enumerate(zip(s.t_ms.tolist(), s.n.tolist(), strict=True))
    }
    assert got == expected, (t_from, t_to, bucket_ms)
    assert {leaf for g in read.cut for leaf in g.leaf_index.tolist()} == cut
    assert all(set(g.wire) == set(_CHART_SOURCES) for g in read.cut)
    return len(s), len(cut)


async def case_sample_summaries_in(world: StoreWorld) -> None:
    """A chart's read takes the summaries written with the blocks for the blocks inside the
    period and one bucket, and the others whole, for periods and buckets that cut blocks."""
    await fill(world.writer)
    r = world.reader
    whole = await _check_summary_read(r, t_from=0, t_to=END, bucket_ms=END)
    assert whole == (5, 0)  # one bucket: every pack block summarised
    per_block = await _check_summary_read(r, t_from=T0_MS, t_to=END, bucket_ms=STEP_MS)
    assert per_block == (5, 0)
    cutting = await _check_summary_read(r, t_from=T0_MS + 1_000, t_to=T0_MS + 5 * STEP_MS,
                                        bucket_ms=3_000)  # fmt: skip
    assert cutting[1] > 0
    assert await _check_summary_read(r, t_from=0, t_to=T0_MS, bucket_ms=1000) == (0, 0)
    with pytest.raises(ValueError, match="unknown pack column"):
        await r.sample_summaries_in("pack", "pack-1", t_from=0, t_to=END, bucket_ms=1000,
                                    names=["speed_mps"])  # fmt: skip


async def case_block_without_summary(world: StoreWorld) -> None:
    """A block stored without a summary (deleted, or written by an older version) is read
    whole: the chart still holds its samples."""
    filled = await fill(world.writer)
    await world.run_sql("DELETE FROM sample_summaries WHERE leaf_index = ?",
                        (filled.pack_leaves[0],))  # fmt: skip
    read = await world.reader.sample_summaries_in("pack", "pack-1", t_from=0, t_to=END,
                                                  bucket_ms=END, names=["soc"])  # fmt: skip
    assert len(read.summaries) == 4
    assert [leaf for g in read.cut for leaf in g.leaf_index.tolist()] == [filled.pack_leaves[0]]
    checked = await _check_summary_read(world.reader, t_from=0, t_to=END, bucket_ms=END,
                                        unsummarised=filled.pack_leaves[0])  # fmt: skip
    assert checked == (4, 1)


async def case_damaged_sample_summary(world: StoreWorld) -> None:
    """A summary that does not fit its layout is a StoreError naming the leaf, never a chart
    drawn from garbage."""
    filled = await fill(world.writer)
    await world.run_sql("UPDATE sample_summaries SET stats = ? WHERE leaf_index = ?",
                        (b"\x00" * 10, filled.pack_leaves[1]))  # fmt: skip
    with pytest.raises(StoreError, match=f"sample summary of leaf {filled.pack_leaves[1]}"):
        await world.reader.sample_summaries_in("pack", "pack-1", t_from=0, t_to=END,
                                               bucket_ms=END, names=["soc"])  # fmt: skip


async def case_message_hosts(world: StoreWorld) -> None:
    """A pack's hosts come from the summary rows, page by page as ``messages_in`` pages, the
    same as decoding each message; a message without its summary row is decoded."""
    hosts = ["bus-1", "bus-1", None, "bus-2", "bus-2", "bus-1"]
    await store_pack_messages(world.writer, [([{"soc": 0.5}] * 3, 1000, 0)] * 6, hosts=hosts)
    r = world.reader
    leaves = await r.messages_in("pack-1", t_from=0, t_to=END, limit=100)
    decoded = [
        (leaf.leaf_index, leaf.t_ms, decode_message(leaf.cose).payload.get("host"))
        for leaf in leaves
    ]
    assert [host for *_, host in decoded] == hosts
    assert await r.message_hosts("pack-1", t_from=0, t_to=END, limit=100) == decoded
    first = await r.message_hosts("pack-1", t_from=0, t_to=END, limit=4)
    rest = await r.message_hosts("pack-1", t_from=0, t_to=END, limit=4,
                                 after=(first[-1][1], first[-1][0]))  # fmt: skip
    assert [*first, *rest] == decoded
    inside = await r.message_hosts("pack-1", t_from=decoded[1][1], t_to=decoded[3][1], limit=9)
    assert inside == decoded[1:3]
    await world.run_sql("DELETE FROM sample_summaries WHERE leaf_index = ?", (decoded[3][0],))
    assert await r.message_hosts("pack-1", t_from=0, t_to=END, limit=100) == decoded


def _ms(reading: terminal.Reading) -> int:
    return int(reading.at.timestamp() * 1000)


async def case_terminal_leaf_with_two_blocks(world: StoreWorld) -> None:
    """A GB/T 32960 terminal's frame is one leaf with a bus block and a pack block, each with
    its summary: every sample read takes the kind it names and never the leaf's other block,
    a frame without a valid pack value has its bus block only, the pack's alarm is recorded,
    and a pack host read gives one row per leaf."""
    filled = await fill(world.writer)
    await enroll_terminal(filled.registry)
    readings = [
        terminal.Reading(at=terminal.at(10 * k), soc=78 - k, voltage_v=612.3 - k,
                         current_a=45.6 + k, speed_kmh=30.0 + k)
        for k in range(4)
    ]  # fmt: skip
    readings[2] = replace(readings[2], soc=255)  # GB/T "invalid": no pack sample
    readings[3] = replace(readings[3], alarm_level=2, alarm_bits=(1,))
    leaves = await commit_frames(world.writer, readings)
    with_pack = [leaves[0], leaves[1], leaves[3]]
    r = world.reader

    bus = await r.sample_window("bus", VIN, t_from=0, t_to=END)
    assert bus.t_ms.tolist() == [_ms(x) for x in readings]
    assert bus.leaf_index.tolist() == leaves
    assert [round(v * 3.6, 1) for v in bus.values["speed_mps"].tolist()] == [30.0, 31.0, 32.0, 33.0]
    pack = await r.sample_window("pack", VIN, t_from=0, t_to=END)
    assert pack.leaf_index.tolist() == with_pack
    assert pack.values["soc"].tolist() == [0.78, 0.77, 0.75]
    assert pack.values["voltage_v"].tolist() == [612.3, 611.3, 609.3]
    assert pack.values["current_a"].tolist() == [45.6, 46.6, 48.6]
    assert pack.values["alarm_level"].tolist() == [0, 0, 2]
    assert set(pack.values) >= {"cell_v_max", "temp_max_c", "insulation_ohm", "alarm_flags"}
    assert len(await r.sample_window("pack", "bus-1", t_from=0, t_to=END)) == 0
    assert len(await r.sample_window("bus", "pack-1", t_from=0, t_to=END)) == 0

    newest = await r.newest_sample("pack", VIN, t_from=0, t_to=END)
    assert newest.leaf_index.tolist() == [leaves[3]]
    before = await r.newest_sample("pack", VIN, t_from=0, t_to=_ms(readings[3]))
    assert before.leaf_index.tolist() == [leaves[1]]  # frame 2 has no pack sample
    newest_bus = await r.newest_sample("bus", VIN, t_from=0, t_to=_ms(readings[3]))
    assert newest_bus.leaf_index.tolist() == [leaves[2]]
    ids = [VIN, "pack-1", "bus-1"]
    packs = await r.newest_samples("pack", ids)
    assert sorted(packs) == [VIN, "pack-1"]
    assert packs[VIN].rows(["soc"]) == newest.rows(["soc"])
    assert sorted(await r.newest_samples("bus", ids)) == [VIN, "bus-1"]
    assert [s["device"] for s in await r.latest_samples("pack")] == [VIN, "pack-1"]
    assert [s["device"] for s in await r.latest_samples("bus")] == [VIN, "bus-1"]

    chart = await r.sample_summaries_in("pack", VIN, t_from=0, t_to=END, bucket_ms=END,
                                        names=["soc", "cell_spread_v"])  # fmt: skip
    assert (len(chart.summaries), chart.cut) == (3, [])
    assert chart.summaries.min["soc"].tolist() == [780.0, 770.0, 750.0]
    bus_chart = await r.sample_summaries_in("bus", VIN, t_from=0, t_to=END, bucket_ms=END,
                                            names=["speed_mps"])  # fmt: skip
    assert len(bus_chart.summaries) == 4
    cut = await r.sample_summaries_in("pack", VIN, t_from=_ms(readings[0]) + 1, t_to=END,
                                      bucket_ms=1000, names=["soc"])  # fmt: skip
    assert len(cut.summaries) == 2
    groups = await r.sample_blocks_in("pack", VIN, t_from=0, t_to=END, fields=["soc"])
    assert sorted(i for g in groups for i in g.leaf_index.tolist()) == with_pack

    hosts = await r.message_hosts(VIN, t_from=0, t_to=END, limit=10)
    assert hosts == [(leaf, _ms(x), None) for leaf, x in zip(leaves, readings, strict=True)]
    alarms = await r.alarms(device_id=VIN)
    assert [(a.t_ms, a.level, a.flags, a.leaf_index) for a in alarms] == [
        (_ms(readings[3]), 2, 1 << 1, leaves[3]),
    ]  # fmt: skip

    async with r.snapshot():
        blocks = [b for b in await r.sample_blocks() if b.device_id == VIN]
        summaries = {k: v for k, v in (await r.sample_summaries()).items() if k[0] in leaves}
    expected = {}
    for index in leaves:
        facts = gbt.read_leaf((await r.leaf(index)).cose)
        for columns in (facts.columns, facts.pack):
            if columns is not None:
                expected[index, columns.kind] = (summary(columns), None)
    assert sorted((b.leaf_index, b.kind) for b in blocks) == sorted(expected)
    assert summaries == expected

    await world.run_sql("UPDATE sample_blocks SET columns = substr(columns, 1, 10) "
                        "WHERE leaf_index = ? AND kind = 'pack'", (leaves[0],))  # fmt: skip
    with pytest.raises(StoreError, match=f"sample block of leaf {leaves[0]}"):
        await r.sample_window("pack", VIN, t_from=0, t_to=END)
    assert len(await r.sample_window("bus", VIN, t_from=0, t_to=END)) == 4


async def case_whole_store(world: StoreWorld) -> None:
    """The audit's reads: size, leaves in pages, nodes, keys, heads, gaps, sample blocks."""
    filled = await fill(world.writer)
    r = world.reader
    async with r.snapshot():
        size = await r.stored_size()
        pages = [await r.leaves_page(after=-1, limit=4)]
        while pages[-1]:
            pages.append(await r.leaves_page(after=pages[-1][-1].leaf_index, limit=4))
        nodes = await r.stored_nodes()
        keys = await r.key_ranges()
        heads = await r.chain_heads()
        gaps = await r.all_chain_gaps()
        blocks = await r.sample_blocks()
        summaries = await r.sample_summaries()
    assert size == 11
    assert [len(page) for page in pages] == [4, 4, 3, 0]
    leaves = [leaf for page in pages for leaf in page]
    assert [leaf.leaf_index for leaf in leaves] == list(range(11))
    assert leaves[0].prev is None
    telemetry = [leaf for leaf in leaves if leaf.kind == "telemetry"]
    assert all(leaf.prev is not None and len(leaf.prev) == 32 for leaf in telemetry)
    level0 = {n.index: v for n, v in nodes.items() if n.level == 0}
    assert level0 == {leaf.leaf_index: hash_leaf(leaf.cose) for leaf in leaves}
    assert {d: [k.public_key for k in ks] for d, ks in keys.items()} == {
        "pack-1": [filled.pack.public_key], "bus-1": [filled.bus.public_key],
    }  # fmt: skip
    assert {(h.device_id, h.seq, h.duplicates) for h in heads} == {
        ("pack-1", 5, 0), ("bus-1", 3, 1),
    }  # fmt: skip
    assert gaps == {"pack-1": [(3, 4)]}
    assert sorted(b.leaf_index for b in blocks) == sorted([*filled.pack_leaves, *filled.bus_leaves])
    first = next(b for b in blocks if b.leaf_index == filled.pack_leaves[0])
    assert (first.device_id, first.kind, first.t_ms, first.n, first.dt_ms) == (
        "pack-1", "pack", T0_MS, 4, 1000,
    )  # fmt: skip
    assert first.last_ms == T0_MS + 3_000
    signed = {leaf.leaf_index: decode_columns(decode_message(leaf.cose).payload)
              for leaf in telemetry}  # fmt: skip
    assert {(index, c.kind): (summary(c), c.host) for index, c in signed.items()} == summaries


async def case_whole_store_empty(world: StoreWorld) -> None:
    """The audit's reads on an empty store: nothing, not an error."""
    r = world.reader
    async with r.snapshot():
        assert await r.stored_size() == 0
        assert await r.leaves_page(after=-1, limit=10) == []
        assert await r.stored_nodes() == {}
        assert await r.key_ranges() == {}
        assert await r.chain_heads() == []
        assert await r.all_chain_gaps() == {}
        assert await r.sample_blocks() == []
        assert await r.sample_summaries() == {}


CASES = (
    case_empty_store,
    case_registry,
    case_registry_replace,
    case_registry_keys_unshared,
    case_chains_and_messages,
    case_device_index,
    case_extend_device_index,
    case_samples,
    case_damaged_sample_block,
    case_log_and_proofs,
    case_checkpoints_and_anchors,
    case_cosignatures,
    case_alarms_and_quarantine,
    case_keyset_pages,
    case_newest_of_many_devices,
    case_sample_blocks_in,
    case_sample_summaries_in,
    case_block_without_summary,
    case_damaged_sample_summary,
    case_message_hosts,
    case_terminal_leaf_with_two_blocks,
    case_whole_store,
    case_whole_store_empty,
)
