"""Poison messages through a real broker and gateway process: intake goes on, restarts too.

One device key is the attacker's. While the gateway is down, the broker queues (persistent
session) honest traffic of three devices with every poison of :mod:`tests.poison` in
between, the stale one carrying the MQTT user property ``voltproof-historical=1``. The
gateway starts, logs every honest message, quarantines each poison with its reason or
accepts it with a seq-jump alarm, survives a second restart, and ``gateway check`` over
a chain with a gap of 2**63 seqs finishes clean.
"""

from __future__ import annotations

import signal
import sqlite3
import time
from collections import Counter
from contextlib import closing
from pathlib import Path

import pytest

from firmware_sim.agent.link import historical_properties
from gateway.audit import check_store
from ledger.keys import load_key_file
from tests.support.gateway_world import Deployment, write_deployment
from tests.support.poison import poisons
from tests.support.processes import (
    connect_publisher,
    gateway_log,
    publish_rounds,
    start_gateway,
    wait_for_log_size,
    wait_until_started,
)
from voltproof.broker import MosquittoBroker

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _stop(deployment: Deployment, gateway: object) -> None:
    gateway.send_signal(signal.SIGTERM)  # type: ignore[attr-defined]
    assert gateway.wait(30) == 0, gateway_log(deployment)[-3000:]  # type: ignore[attr-defined]


def _counts(deployment: Deployment, sql: str) -> dict[str, int]:
    with closing(sqlite3.connect(deployment.settings.db_path)) as db:
        return {str(k): int(v) for k, v in db.execute(sql).fetchall()}


def test_poisons_are_data_and_intake_goes_on(tmp_path: Path, mosquitto: MosquittoBroker) -> None:
    """each poison has its verdict; every honest message is logged, across two restarts."""
    deployment = write_deployment(tmp_path / "gw", mosquitto, devices=4)
    attacker, *honest = deployment.devices
    gateway = start_gateway(deployment)
    wait_until_started(deployment)
    _stop(deployment, gateway)  # the broker now keeps the gateway's session
    client = connect_publisher(mosquitto, "poisoner")
    world = Deployment(
        workdir=deployment.workdir, settings=deployment.settings, devices=tuple(honest)
    )
    try:
        sent = publish_rounds(client, world, 2)
        found = poisons(attacker, now_ms=time.time_ns() // 1_000_000)
        for poison in found:
            properties = historical_properties() if poison.historical else None
            client.publish(
                attacker.topic, poison.data, qos=1, properties=properties
            ).wait_for_publish(10)
            sent += publish_rounds(client, world, 1)
        expected = Counter(p.expect for p in found)
        accepted = expected.pop("accepted") + expected.pop("seq_jump")
        registry = len(deployment.devices)
        gateway = start_gateway(deployment)
        wait_for_log_size(deployment.settings.db_path, registry + len(sent) + accepted)
        deadline = time.monotonic() + 30
        while sum(
            _counts(deployment, "SELECT reason, total FROM quarantine_counts").values()
        ) < sum(expected.values()):
            assert gateway.poll() is None, gateway_log(deployment)[-3000:]
            assert time.monotonic() < deadline, gateway_log(deployment)[-3000:]
            time.sleep(0.1)
        assert gateway.poll() is None, gateway_log(deployment)[-3000:]
        _stop(deployment, gateway)
        gateway = start_gateway(deployment)  # anything unacknowledged comes back
        wait_until_started(deployment)
        sent += publish_rounds(client, world, 1)
        wait_for_log_size(deployment.settings.db_path, registry + len(sent) + accepted)
        assert gateway.poll() is None, gateway_log(deployment)[-3000:]
    finally:
        client.loop_stop()
        client.disconnect()
        if gateway.poll() is None:
            _stop(deployment, gateway)
    assert _counts(deployment, "SELECT reason, total FROM quarantine_counts") == dict(expected)
    per_device = _counts(
        deployment, "SELECT device, count(*) FROM leaves WHERE kind = 'telemetry' GROUP BY device"
    )
    assert per_device == {
        **{d.device_id: len(sent) // len(honest) for d in honest},
        attacker.device_id: accepted,
    }
    jumps = _counts(
        deployment,
        "SELECT device, count(*) FROM alarms WHERE detail LIKE 'seq_jump:%' GROUP BY device",
    )
    assert jumps == {attacker.device_id: 2}
    key = load_key_file(deployment.settings.key_file)
    report = check_store(
        deployment.settings.db_path,
        origin=deployment.settings.origin,
        key_name=key.name,
        public_key=key.public_key,
    )
    assert report.ok, report.problems
