"""PostgreSQL restarted under two gateways while agents publish: nothing lost, nothing twice.

The gateways hold each batch unacknowledged while the store fails and retry it; the pool
replaces its broken connections; the signer loses its lock connection and one gateway is
elected again. Afterwards every acknowledged message is logged once, every checkpoint is
consistent with the next and the store audits clean.
"""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from tests.support.postgres_cluster import start_cluster
from tests.support.shared_log import streaming, verdict, write_shared_log
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
        with streaming(shared, gateways, mosquitto) as streamer:
            time.sleep(1.0)
            cluster.stop_server(mode="fast")
            sent_at_stop = len(streamer.sent)
            time.sleep(2.0)
            sent_while_down = len(streamer.sent) - sent_at_stop
            cluster.start_server()
            # The signer's lock connection died with the server: a second election proves
            # the gateways saw the restart (a batch may or may not have been caught mid-way,
            # so a held-batch event is not required).
            shared.wait_for_events("signer_elected", 2, timeout_s=60)
            time.sleep(1.0)
        assert sent_while_down > 0, "nothing was published while the server was down"
        result = verdict(shared, streamer.sent)
        print(f"postgresql restart: {result}")
        assert (result.lost, result.duplicated, result.foreign) == (0, 0, 0)
        assert result.report.ok, result.report.problems
    finally:
        cluster.stop()


def test_connections_terminated_under_load_lose_nothing(
    tmp_path: Path, mosquitto: MosquittoBroker, postgres_url: str
) -> None:
    """Every gateway connection killed by the server, again and again, while agents publish:
    reads and commits that die are retried, nothing is lost or logged twice."""
    shared = write_shared_log(tmp_path / "deployment", mosquitto, postgres_url, count=GATEWAYS)
    gateways = [shared.start(n) for n in range(GATEWAYS)]
    shared.wait_for_events("gateway_started", GATEWAYS)
    shared.wait_for_events("signer_elected", 1)
    with (
        streaming(shared, gateways, mosquitto) as streamer,
        psycopg.connect(postgres_url, autocommit=True) as admin,
    ):
        for _ in range(15):
            time.sleep(0.2)
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
    result = verdict(shared, streamer.sent)
    print(f"connections terminated 15 times: {result}")
    assert (result.lost, result.duplicated, result.foreign) == (0, 0, 0)
    assert result.forked_sizes == ()
    assert result.report.ok, result.report.problems
