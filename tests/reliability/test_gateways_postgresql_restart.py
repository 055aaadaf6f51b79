"""PostgreSQL restarted under two gateways while agents publish: nothing lost, nothing twice.

The gateways hold each batch unacknowledged while the store fails and retry it; the pool
replaces its broken connections; the signer loses its lock connection and one gateway is
elected again. Afterwards every acknowledged message is logged once and the store audits
clean, with every checkpoint consistent with the next.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from pathlib import Path

import pytest

from gateway.audit import audit_store
from gateway.store.postgresql import PostgresStore
from ledger.keys import load_key_file
from ledger.merkle import verify_consistency
from tests.support.postgres_cluster import start_cluster
from tests.support.processes import Streamer
from tests.support.shared_log import SharedLog, write_shared_log
from voltproof.broker import MosquittoBroker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GATEWAYS = 2


def test_postgresql_restart_loses_nothing(tmp_path: Path, mosquitto: MosquittoBroker) -> None:
    """Lost or duplicated messages, an unclean audit after a server restart: none."""
    cluster = start_cluster()  # its own: the restart must not touch other tests' databases
    try:
        shared = write_shared_log(
            tmp_path / "deployment", mosquitto, cluster.create_database(), count=GATEWAYS
        )
        gateways = [shared.start(n) for n in range(GATEWAYS)]
        shared.wait_for_events("gateway_started", GATEWAYS)
        shared.wait_for_events("signer_elected", 1)
        streamer = Streamer(shared.as_deployment(), mosquitto)
        streamer.start()
        try:
            time.sleep(1.0)
            cluster.stop_server(mode="fast")
            time.sleep(2.0)
            cluster.start_server()
            shared.wait_for_events("signer_elected", 2, timeout_s=60)
            time.sleep(1.0)
            streamer.finish()
            asyncio.run(_wait_for_size(shared, len(shared.devices) + len(streamer.sent)))
        finally:
            streamer.stop.set()
            for gateway in gateways:
                gateway.send_signal(signal.SIGTERM)
            codes = [gateway.wait(60) for gateway in gateways]
        assert codes == [0] * GATEWAYS, shared.logs()
        assert shared.events("store_unavailable_not_acknowledging"), "the restart was not seen"
        asyncio.run(_check(shared, streamer.sent))
    finally:
        cluster.stop()


async def _wait_for_size(shared: SharedLog, size: int, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with await PostgresStore.open(shared.url) as store:
        while (now := (await store.log_head()).size) < size:
            assert time.monotonic() < deadline, f"log stuck at {now} < {size}\n{shared.logs()}"
            await asyncio.sleep(0.1)


async def _check(shared: SharedLog, sent: list[bytes]) -> None:
    key = load_key_file(shared.settings.key_file)
    async with await PostgresStore.open(shared.url) as store:
        head = await store.log_head()
        leaves = await store.leaves_page(after=-1, limit=head.size)
        logged = [leaf.cose for leaf in leaves[len(shared.devices) :]]
        checkpoints = sorted(await store.checkpoints(limit=100_000), key=lambda c: c.size)
        for older, newer in itertools.pairwise(checkpoints):
            verify_consistency(
                size1=older.size, size2=newer.size, root1=older.root, root2=newer.root,
                proof=await store.consistency_proof(older.size, newer.size),
            )  # fmt: skip
        report = await audit_store(
            store, origin=shared.settings.origin, key_name=key.name, public_key=key.public_key
        )
    print(f"postgresql restart: published {len(sent)}, logged {len(logged)}")
    assert sorted(logged) == sorted(set(sent))
    assert len(logged) == len(sent)
    assert report.ok, report.problems
