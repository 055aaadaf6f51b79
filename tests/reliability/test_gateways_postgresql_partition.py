"""The signing gateway cut off from PostgreSQL (a TCP proxy) and back, while agents publish.

Gateway 0 reaches the database through a proxy whose link is cut for a few seconds. It must
hold what it received unacknowledged and retry; it loses the signer lock and another gateway
is elected; once the link is back it resumes. Afterwards every acknowledged message is logged
once, no size has two roots, and the store audits clean.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from gateway.audit import audit_store
from gateway.store.postgresql import PostgresStore
from ledger.keys import load_key_file
from tests.support.processes import Streamer
from tests.support.shared_log import SharedLog, write_shared_log
from tests.support.tcp_proxy import CuttableProxy
from voltproof.broker import MosquittoBroker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GATEWAYS = 3


def test_signer_cut_off_from_postgresql_and_back(
    tmp_path: Path, mosquitto: MosquittoBroker, postgres_url: str
) -> None:
    """A partitioned signer: lost or duplicated messages, forked sizes: none."""
    shared = write_shared_log(tmp_path / "deployment", mosquitto, postgres_url, count=GATEWAYS)
    parts = urlsplit(postgres_url)
    assert parts.hostname is not None
    assert parts.port is not None
    with CuttableProxy(target_host=parts.hostname, target_port=parts.port) as proxy:
        proxied = parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}").geturl()
        gateways = [shared.start(0, store_url=proxied)]
        shared.wait_for_events("signer_elected", 1)
        gateways += [shared.start(n) for n in range(1, GATEWAYS)]
        shared.wait_for_events("gateway_started", GATEWAYS)
        streamer = Streamer(shared.as_deployment(), mosquitto)
        streamer.start()
        try:
            time.sleep(1.0)
            proxy.cut()
            shared.wait_for_events("signer_lost", 1)
            shared.wait_for_events("signer_elected", 2)
            time.sleep(1.0)
            proxy.restore()
            time.sleep(1.0)
            streamer.finish()
            asyncio.run(_wait_for_size(shared, len(shared.devices) + len(streamer.sent)))
        finally:
            streamer.stop.set()
            for gateway in gateways:
                gateway.send_signal(signal.SIGTERM)
            codes = [gateway.wait(60) for gateway in gateways]
    assert codes == [0] * GATEWAYS, shared.logs()
    asyncio.run(_check(shared, streamer.sent))


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
        report = await audit_store(
            store, origin=shared.settings.origin, key_name=key.name, public_key=key.public_key
        )
    roots: dict[object, set[object]] = {}
    for event in shared.events("checkpoint_signed"):
        roots.setdefault(event["size"], set()).add(event["root"])
    print(f"signer partition: published {len(sent)}, logged {len(logged)}")
    assert len(logged) == len(set(logged)) == len(sent)
    assert set(logged) == set(sent)
    assert all(len(seen) == 1 for seen in roots.values())
    assert report.ok, report.problems
