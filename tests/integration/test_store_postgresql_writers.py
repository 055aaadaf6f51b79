"""Several store objects (as several gateways would hold) appending to one PostgreSQL log.

Each writer has its own connection pool; their transactions overlap in the server and are
sequenced by the log's advisory lock. Messages reach more than one writer (a broker's
redelivery after a gateway died) and out of order (a device's consecutive messages on
different gateways): every message must be logged exactly once, the chains must close, and the
store must audit clean.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from gateway.audit import audit_store
from gateway.registry import Registry
from gateway.store import Appended, Candidate
from gateway.store.postgresql import PostgresStore
from ledger.keys import SigningKey, generate_seed, public_key_from_seed
from ledger.merkle.memory_log import MemoryLog
from tests.support.gateway_devices import T0_MS, FakeDevice
from tests.support.store_contract import candidate

pytestmark = pytest.mark.integration

WRITERS = 3
DEVICES = 6
MESSAGES = 30


def _deliveries(rng: random.Random, messages: list[Candidate]) -> list[list[Candidate]]:
    """Each message to one or two writers, each writer's share shuffled a little."""
    shares: list[list[Candidate]] = [[] for _ in range(WRITERS)]
    for message in messages:
        for writer in rng.sample(range(WRITERS), k=rng.choice((1, 1, 2))):
            shares[writer].append(message)
    for share in shares:
        for position in range(len(share) - 1):
            if rng.random() < 0.2:
                share[position], share[position + 1] = share[position + 1], share[position]
    return shares


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_concurrent_writers_log_each_message_once(postgres_url: str, seed: int) -> None:
    """Overlapping, reordered deliveries to 3 writers: one log, no fork, no double, no gap."""
    rng = random.Random(seed)

    async def run() -> None:
        stores = [await PostgresStore.open(postgres_url) for _ in range(WRITERS)]
        try:
            operator_seed = generate_seed()
            operator = SigningKey(
                name="operator", seed=operator_seed, public_key=public_key_from_seed(operator_seed)
            )
            devices = [FakeDevice(device_id=f"pack-{n}", kind="pack") for n in range(DEVICES)]
            registry = Registry(store=stores[0], operator=operator, clock_ms=lambda: T0_MS)
            await registry.enroll([device.spec() for device in devices])
            messages = [
                candidate(device, position) for position in range(MESSAGES) for device in devices
            ]
            shares = _deliveries(rng, messages)

            async def deliver(store: PostgresStore, share: list[Candidate]) -> list[int]:
                logged = []
                for start in range(0, len(share), 7):
                    outcomes = await store.commit(share[start : start + 7], [])
                    logged += [o.leaf_index for o in outcomes if isinstance(o, Appended)]
                return logged

            logged = await asyncio.gather(
                *(deliver(store, share) for store, share in zip(stores, shares, strict=True))
            )
            indexes = sorted(index for share in logged for index in share)
            head = await stores[1].log_head()
            assert len(indexes) == len(set(indexes)) == DEVICES * MESSAGES
            assert head.size == DEVICES + DEVICES * MESSAGES
            assert indexes == list(range(DEVICES, head.size))
            leaves = await stores[2].leaves_page(after=-1, limit=head.size)
            replayed = MemoryLog()
            replayed.append(leaf.cose for leaf in leaves)
            assert head.root == replayed.root()
            seqs = sorted((leaf.device_id, leaf.seq) for leaf in leaves if leaf.seq is not None)
            assert seqs == sorted((d.device_id, s) for d in devices for s in range(MESSAGES))
            assert await stores[2].all_chain_gaps() == {}
            report = await audit_store(
                stores[2], origin="test", key_name="test", public_key=operator.public_key
            )
            assert report.ok, report.problems
            index = await stores[0].device_index_at(head.size)
            assert len(index) == DEVICES
        finally:
            for store in stores:
                await store.close()

    asyncio.run(run())
