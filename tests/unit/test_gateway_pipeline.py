"""Pipeline.process: every reason code, duplicates, forks, gaps, exactly-once leaves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from gateway.pipeline import Outcome, OutcomeKind, Pipeline
from gateway.registry import Registry
from gateway.store import SqliteStore
from gateway.verification import Incoming, Policy, Reason
from ledger.keys import SigningKey, generate_seed, public_key_from_seed
from ledger.merkle import hash_leaf, verify_inclusion
from tests.support.gateway_devices import T0_MS, FakeDevice

pytestmark = pytest.mark.asyncio


def operator_key() -> SigningKey:
    """A fresh operator key."""
    seed = generate_seed()
    return SigningKey(name="operator", seed=seed, public_key=public_key_from_seed(seed))


class Gateway:
    """A store, a registry and a pipeline over one SQLite file."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.registry = Registry(store=store, operator=operator_key(), clock_ms=lambda: T0_MS)
        self.pipeline = Pipeline(store=store, policy=Policy())

    async def enrolled(self, *devices: FakeDevice) -> None:
        """Enrol ``devices``."""
        await self.registry.enroll([d.spec() for d in devices])

    async def one(self, incoming: Incoming) -> Outcome:
        """Process a batch of one message."""
        (outcome,) = await self.pipeline.process([incoming])
        return outcome


@pytest_asyncio.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gateway]:
    """A gateway on a fresh database."""
    store = await SqliteStore.open(tmp_path / "gateway.db", quarantine_max_rows=5)
    try:
        yield Gateway(store)
    finally:
        await store.close()


def assert_quarantined(outcome: Outcome, reason: Reason) -> None:
    """Assert ``outcome`` is a quarantine for ``reason``."""
    assert outcome.kind is OutcomeKind.QUARANTINED, outcome
    assert outcome.reason is reason, outcome


async def test_accepts_messages_in_order_as_leaves(gw: Gateway) -> None:
    """Accepted messages become consecutive leaves with valid inclusion proofs."""
    dev = FakeDevice(device_id="pack-1")
    await gw.enrolled(dev)
    datas = [dev.message() for _ in range(4)]
    outcomes = await gw.pipeline.process([dev.incoming(d) for d in datas])
    assert [o.leaf_index for o in outcomes] == [1, 2, 3, 4]
    head = await gw.store.log_head()
    for index, data in enumerate(datas, start=1):
        proof = await gw.store.inclusion_proof(index, head.size)
        verify_inclusion(
            leaf_hash=hash_leaf(data), index=index, size=head.size, proof=proof, root=head.root
        )
    assert gw.pipeline.stats.accepted == 4
    assert len(await gw.store.series("pack", "pack-1", t_from=0, t_to=2**62)) == 40


async def test_duplicate_is_idempotent(gw: Gateway) -> None:
    """Identical bytes again (in the same or a later batch) add no leaf and are counted."""
    dev = FakeDevice(device_id="pack-1")
    await gw.enrolled(dev)
    data = dev.message()
    first, again = await gw.pipeline.process([dev.incoming(data), dev.incoming(data)])
    later = await gw.one(dev.incoming(data))
    assert first == Outcome(kind=OutcomeKind.ACCEPTED, leaf_index=1)
    assert again == later == Outcome(kind=OutcomeKind.DUPLICATE, leaf_index=1)
    assert (await gw.store.log_head()).size == 2
    assert await gw.store.duplicates("pack-1") == 2
    assert gw.pipeline.stats.duplicates == 2


async def test_equivocation_is_a_fork_with_alarm(gw: Gateway) -> None:
    """Different bytes for a stored seq are quarantined as a fork and raise an alarm."""
    dev = FakeDevice(device_id="pack-1")
    await gw.enrolled(dev)
    await gw.one(dev.incoming(dev.message()))
    dev.seq, dev.prev = 0, bytes(32)
    outcome = await gw.one(dev.incoming(dev.message(t_ms=T0_MS + 5)))
    assert_quarantined(outcome, Reason.FORK)
    assert "equivocation" in outcome.detail
    (alarm,) = await gw.store.alarms(device_id="pack-1")
    assert alarm.source == "gateway"
    assert alarm.level == 3
    (row,) = await gw.store.quarantine(reason="fork")
    assert row.raw_size == len(row.raw)


async def test_wrong_prev_is_a_fork(gw: Gateway) -> None:
    """A message whose prev is not the hash of seq - 1 is a fork; the chain keeps going."""
    dev = FakeDevice(device_id="pack-1")
    await gw.enrolled(dev)
    await gw.one(dev.incoming(dev.message()))
    good_prev = dev.prev
    dev.prev = b"\x01" * 32
    assert_quarantined(await gw.one(dev.incoming(dev.message())), Reason.FORK)
    dev.seq, dev.prev = 1, good_prev
    assert (await gw.one(dev.incoming(dev.message()))).kind is OutcomeKind.ACCEPTED


async def test_gap_recorded_then_filled(gw: Gateway) -> None:
    """A skipped seq is recorded as a gap and accepted later if it links both ways."""
    dev = FakeDevice(device_id="pack-1")
    await gw.enrolled(dev)
    m0, m1, m2, m3 = (dev.message() for _ in range(4))
    outcomes = await gw.pipeline.process([dev.incoming(m) for m in (m0, m3)])
    assert all(o.kind is OutcomeKind.ACCEPTED for o in outcomes)
    assert await gw.store.chain_gaps("pack-1") == [(1, 3)]
    assert (await gw.one(dev.incoming(m2, historical=True))).kind is OutcomeKind.ACCEPTED
    assert await gw.store.chain_gaps("pack-1") == [(1, 2)]
    assert (await gw.one(dev.incoming(m1, historical=True))).kind is OutcomeKind.ACCEPTED
    assert await gw.store.chain_gaps("pack-1") == []


async def test_gap_fill_that_breaks_a_link_is_a_fork(gw: Gateway) -> None:
    """A late message whose hash is not what its successor links to is a fork."""
    dev = FakeDevice(device_id="pack-1")
    await gw.enrolled(dev)
    m0 = dev.message()
    dev.message()
    m2 = dev.message()
    await gw.pipeline.process([dev.incoming(m0), dev.incoming(m2)])
    dev.seq, dev.prev = 1, hash_of(m0)
    forged = dev.message(t_ms=T0_MS + 1)
    outcome = await gw.one(dev.incoming(forged))
    assert_quarantined(outcome, Reason.FORK)
    assert "links to" in outcome.detail


def hash_of(data: bytes) -> bytes:
    """SHA-256 of a message (its successor's prev)."""
    import hashlib

    return hashlib.sha256(data).digest()


async def test_gap_within_one_batch(gw: Gateway) -> None:
    """Messages of one device out of order inside one batch are decided in order."""
    dev = FakeDevice(device_id="pack-1")
    await gw.enrolled(dev)
    m = [dev.message() for _ in range(4)]
    outcomes = await gw.pipeline.process([dev.incoming(x) for x in (m[0], m[2], m[1], m[3])])
    assert [o.kind for o in outcomes] == [OutcomeKind.ACCEPTED] * 4
    assert await gw.store.chain_gaps("pack-1") == []


async def test_forged_signature(gw: Gateway) -> None:
    """A message signed by another key is refused as bad_signature."""
    dev = FakeDevice(device_id="pack-1")
    await gw.enrolled(dev)
    impostor = FakeDevice(device_id="pack-1")
    assert_quarantined(await gw.one(impostor.incoming(impostor.message())), Reason.BAD_SIGNATURE)


async def test_unknown_device(gw: Gateway) -> None:
    """A device never enrolled is refused."""
    dev = FakeDevice(device_id="ghost")
    assert_quarantined(await gw.one(dev.incoming(dev.message())), Reason.UNKNOWN_DEVICE)


async def test_wrong_fleet(gw: Gateway) -> None:
    """A device publishing under another fleet is refused."""
    dev = FakeDevice(device_id="pack-1")
    await gw.enrolled(dev)
    topic = "voltproof/fleet-b/pack-1/telemetry"
    assert_quarantined(await gw.one(dev.incoming(dev.message(), topic=topic)), Reason.WRONG_FLEET)


async def test_fleet_not_served_by_this_gateway(gw: Gateway) -> None:
    """``fleets`` in the configuration is enforced: another fleet's device is refused, named."""
    gw.pipeline = Pipeline(store=gw.store, policy=Policy(fleets=frozenset({"fleet-1"})))
    dev = FakeDevice(device_id="pack-9", fleet="fleet-2")
    await gw.enrolled(dev)
    outcome = await gw.one(dev.incoming(dev.message()))
    assert_quarantined(outcome, Reason.WRONG_FLEET)
    assert "fleet 'fleet-2' is not served by this gateway" in str(outcome)
    ours = FakeDevice(device_id="pack-1", fleet="fleet-1")
    await gw.enrolled(ours)
    assert (await gw.one(ours.incoming(ours.message()))).kind is OutcomeKind.ACCEPTED


async def test_revoked_device(gw: Gateway) -> None:
    """A revoked device's messages are refused."""
    dev = FakeDevice(device_id="pack-1")
    await gw.enrolled(dev)
    await gw.registry.revoke("pack-1", reason="stolen")
    assert_quarantined(await gw.one(dev.incoming(dev.message())), Reason.REVOKED)


async def test_rotated_away_key(gw: Gateway) -> None:
    """After a rotation the old key may sign only seqs before the rotation's seq."""
    dev = FakeDevice(device_id="pack-1")
    await gw.enrolled(dev)
    backlog = dev.message()
    old_seed, new_seed = dev.seed, generate_seed()
    await gw.registry.rotate(
        "pack-1", old_seed=old_seed, new_public_key=public_key_from_seed(new_seed), seq=1
    )
    stale = dev.message()
    assert_quarantined(await gw.one(dev.incoming(stale)), Reason.KEY_ROTATED)
    assert (await gw.one(dev.incoming(backlog, historical=True))).kind is OutcomeKind.ACCEPTED
    dev.seq, dev.prev, dev.seed = 1, hash_of(backlog), new_seed
    assert (await gw.one(dev.incoming(dev.message()))).kind is OutcomeKind.ACCEPTED


async def test_topic_and_kid_mismatch(gw: Gateway) -> None:
    """A device publishing on another device's topic is refused as id_mismatch."""
    dev = FakeDevice(device_id="pack-1")
    other = FakeDevice(device_id="pack-2")
    await gw.enrolled(dev, other)
    outcome = await gw.one(dev.incoming(dev.message(), topic=other.topic))
    assert_quarantined(outcome, Reason.ID_MISMATCH)


async def test_kid_and_payload_dev_mismatch(gw: Gateway) -> None:
    """A kid that is not the payload's dev is refused as id_mismatch."""
    from ledger import cbor

    dev = FakeDevice(device_id="pack-1")
    await gw.enrolled(dev)
    data = dev.message()
    item = cbor.decode(data)
    item.value[1] = {4: b"pack-2"}
    outcome = await gw.one(dev.incoming(cbor.encode(item), topic=dev.topic))
    assert_quarantined(outcome, Reason.ID_MISMATCH)


@pytest.mark.parametrize(
    "topic",
    ["voltproof/fleet-a/pack-1", "other/fleet-a/pack-1/telemetry", "voltproof//pack-1/telemetry",
     "voltproof/fleet-a/pack-1/status"],
)  # fmt: skip
async def test_bad_topic(gw: Gateway, topic: str) -> None:
    """Topics not shaped voltproof/<fleet>/<device>/telemetry are refused."""
    dev = FakeDevice(device_id="pack-1")
    await gw.enrolled(dev)
    assert_quarantined(await gw.one(dev.incoming(dev.message(), topic=topic)), Reason.BAD_TOPIC)


async def test_oversize_is_truncated_in_quarantine(gw: Gateway) -> None:
    """More bytes than the bound are refused before decoding; only a prefix is kept."""
    dev = FakeDevice(device_id="pack-1")
    outcome = await gw.one(dev.incoming(b"\xd2" * 80_000))
    assert_quarantined(outcome, Reason.OVERSIZE)
    (row,) = await gw.store.quarantine()
    assert (row.raw_size, len(row.raw)) == (80_000, 4096)


async def test_garbage(gw: Gateway) -> None:
    """Bytes that are not a COSE_Sign1 are refused as malformed."""
    dev = FakeDevice(device_id="pack-1")
    outcome = await gw.one(dev.incoming(b"not cbor at all"))
    assert_quarantined(outcome, Reason.MALFORMED)
    assert "WrongTagError" in outcome.detail


async def test_registry_entry_on_telemetry_topic(gw: Gateway) -> None:
    """A registry entry sent as telemetry is refused as not_telemetry."""
    dev = FakeDevice(device_id="pack-1")
    await gw.enrolled(dev)
    assert_quarantined(await gw.one(dev.incoming(dev.registry_entry())), Reason.NOT_TELEMETRY)


async def test_payload_schema(gw: Gateway) -> None:
    """A signed payload that breaks the telemetry schema is refused as bad_payload."""
    from ledger.message import sign_message

    dev = FakeDevice(device_id="pack-1")
    await gw.enrolled(dev)
    payload = dev.payload(t_ms=T0_MS)
    payload["dt"] = 5
    outcome = await gw.one(dev.incoming(sign_message(payload, seed=dev.seed)))
    assert_quarantined(outcome, Reason.BAD_PAYLOAD)
    assert "dt = 5" in outcome.detail


async def test_kind_mismatch(gw: Gateway) -> None:
    """A pack enrolled as a bus is refused as kind_mismatch."""
    dev = FakeDevice(device_id="pack-1")
    spec = dev.spec()
    await gw.registry.enroll([type(spec)(device_id="pack-1", kind="bus", fleet=spec.fleet,
                                         public_key=spec.public_key)])  # fmt: skip
    assert_quarantined(await gw.one(dev.incoming(dev.message())), Reason.KIND_MISMATCH)


async def test_future_timestamp(gw: Gateway) -> None:
    """A sample far after the reception time is refused."""
    dev = FakeDevice(device_id="pack-1")
    await gw.enrolled(dev)
    data = dev.message(t_ms=T0_MS + 10**6)
    outcome = await gw.one(dev.incoming(data, received_at_ms=T0_MS))
    assert_quarantined(outcome, Reason.FUTURE_TIMESTAMP)


async def test_stale_timestamp_is_before_enrolment_whatever_the_transport_says(
    gw: Gateway,
) -> None:
    """A message from before its device's enrolment is refused, historical flag or not."""
    dev = FakeDevice(device_id="pack-1")
    await gw.enrolled(dev)
    early = T0_MS - gw.pipeline.policy.max_enrolment_skew_ms - 1
    data = dev.message(t_ms=early)
    outcome = await gw.one(dev.incoming(data, received_at_ms=T0_MS, historical=True))
    assert_quarantined(outcome, Reason.STALE_TIMESTAMP)
    assert "before device 'pack-1' was enrolled" in outcome.detail


async def test_backfill_days_late_is_accepted(gw: Gateway) -> None:
    """A message received a week after it was measured (an outage) is accepted."""
    dev = FakeDevice(device_id="pack-1")
    await gw.enrolled(dev)
    data = dev.message(t_ms=T0_MS)
    week_later = T0_MS + 7 * 86_400_000
    outcome = await gw.one(dev.incoming(data, received_at_ms=week_later))
    assert outcome.kind is OutcomeKind.ACCEPTED


async def test_bad_message_does_not_stop_the_batch(gw: Gateway) -> None:
    """Good messages around bad ones in one batch are all committed."""
    dev = FakeDevice(device_id="pack-1")
    await gw.enrolled(dev)
    batch = [dev.incoming(dev.message()), dev.incoming(b"junk"), dev.incoming(dev.message())]
    kinds = [o.kind for o in await gw.pipeline.process(batch)]
    assert kinds == [OutcomeKind.ACCEPTED, OutcomeKind.QUARANTINED, OutcomeKind.ACCEPTED]
    assert gw.pipeline.stats.rejected == {"malformed": 1}


async def test_quarantine_is_bounded_and_counted(gw: Gateway) -> None:
    """Beyond the row cap the oldest rows are evicted; the counts keep every rejection."""
    dev = FakeDevice(device_id="pack-1")
    await gw.pipeline.process([dev.incoming(bytes([i])) for i in range(8)])
    assert len(await gw.store.quarantine(limit=100)) == 5
    (count,) = await gw.store.quarantine_counts()
    assert (count.reason, count.total, count.evicted) == ("malformed", 8, 3)


async def test_telemetry_alarm_recorded(gw: Gateway) -> None:
    """A sample at alarm level >= 1 is recorded as a telemetry alarm."""
    dev = FakeDevice(device_id="pack-1")
    await gw.enrolled(dev)
    outcome = await gw.one(dev.incoming(dev.message(alarm=2)))
    (alarm,) = await gw.store.alarms()
    assert (alarm.level, alarm.source, alarm.leaf_index) == (2, "telemetry", outcome.leaf_index)


async def test_bus_samples_stored(gw: Gateway) -> None:
    """Bus messages land in the bus table, visible as latest values."""
    bus = FakeDevice(device_id="bus-1", kind="bus")
    await gw.enrolled(bus)
    await gw.one(bus.incoming(bus.message(n=3)))
    (latest,) = await gw.store.latest_samples("bus")
    assert latest["device"] == "bus-1"
    assert latest["t_ms"] == T0_MS + 2000
