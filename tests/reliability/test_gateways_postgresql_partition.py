"""The signing gateway cut off from PostgreSQL (a TCP proxy) and back, while agents publish.

Gateway 0 reaches the database through a proxy whose link is cut for a few seconds. It must
hold what it received unacknowledged and retry; it loses the signer lock and another gateway
is elected; once the link is back it resumes. Afterwards every acknowledged message is logged
once, no size has two roots, and the store audits clean.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.shared_log import streaming, verdict, write_shared_log
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
        with streaming(shared, gateways, mosquitto) as streamer:
            time.sleep(1.0)
            proxy.cut()
            shared.wait_for_events("signer_lost", 1)
            shared.wait_for_events("signer_elected", 2)
            time.sleep(1.0)
            proxy.restore()
            time.sleep(1.0)
    result = verdict(shared, streamer.sent)
    print(f"signer partition: {result}")
    assert (result.lost, result.duplicated, result.foreign) == (0, 0, 0)
    assert result.forked_sizes == ()
    assert result.report.ok, result.report.problems
