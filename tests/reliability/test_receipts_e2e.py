"""A hijacked or amnesiac broker loses nothing: end-to-end receipts (issue 15, finding 2).

Real mosquitto (per-device passwords, the shipped ACL, client ids bound to usernames), a real
gateway process, and one real agent link per device that keeps every message until the
gateway's signed receipt covers it. Two attacks while the agents publish:

- a client holding one device's password connects again and again with the gateway's client
  id (in the issue, 7 such takeovers lost 36 acknowledged messages for good);
- the broker is restarted with persistence off, so it forgets sessions, queues and retained
  receipts each time.

Afterwards every message every agent produced is a leaf exactly once and ``voltproof gateway
check`` finds the store consistent. ``VOLTPROOF_RECEIPT_TRIALS`` sets the number of takeovers
and of restarts (docs/reliability.md records a run).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.binaries import require_binary
from tests.support.processes import (
    gateway_log,
    start_gateway,
    wait_for_line,
    wait_until_started,
)
from tests.support.receipt_world import (
    GATEWAY_PASSWORD,
    GATEWAY_USER,
    AgentFleet,
    device_password,
    logged_seqs,
    secured_deployment,
    wait_until,
)
from voltproof.broker import INSTALL_HINT, find_mosquitto
from voltproof.cli import main

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TRIALS = int(os.environ.get("VOLTPROOF_RECEIPT_TRIALS", "6"))
DEVICES = 4


def _assert_nothing_lost(fleet: AgentFleet, db_path: Path) -> None:
    logged = logged_seqs(db_path)
    for dev, produced in fleet.produced.items():
        seqs = logged.get(dev, [])
        assert len(seqs) == len(set(seqs)), f"{dev}: duplicated leaves"
        assert seqs == list(range(produced)), f"{dev}: logged {len(seqs)} of {produced}"


def _finish(fleet: AgentFleet, deployment_config: Path, db_path: Path) -> None:
    fleet.stop_producing()
    wait_until(
        lambda: fleet.outbox() == 0,
        timeout_s=120,
        what="receipts for every message",
        detail=fleet.describe,
    )
    fleet.close()
    assert fleet.error is None, fleet.error
    _assert_nothing_lost(fleet, db_path)
    assert main(["gateway", "check", "--config", str(deployment_config)]) == 0


def test_session_takeover_with_device_credentials_loses_nothing(tmp_path: Path) -> None:
    """A device's password used with the gateway's client id: refused as the gateway, 0 lost."""
    binary = require_binary(find_mosquitto(), "mosquitto", INSTALL_HINT)
    broker, deployment = secured_deployment(tmp_path, binary=binary, devices=DEVICES)
    fleet = AgentFleet(deployment=deployment, broker=broker, state=tmp_path / "agents")
    broker.start()
    gateway = start_gateway(deployment)
    try:
        wait_until_started(deployment)
        fleet.start()
        thief_id = deployment.devices[0].device_id
        delivered: list[bytes] = []
        for _ in range(TRIALS):
            thief = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=deployment.settings.mqtt.client_id,
                protocol=mqtt.MQTTv5,
            )
            thief.username_pw_set(thief_id, device_password(thief_id))
            thief.on_message = lambda _c, _u, message: delivered.append(bytes(message.payload))
            thief.connect(broker.host, broker.port, clean_start=False)
            thief.loop_start()
            thief.subscribe("voltproof/+/+/telemetry", qos=1)
            time.sleep(0.5)
            thief.disconnect()
            thief.loop_stop()
        _finish(fleet, deployment.config, deployment.settings.db_path)
        # The gateway's session was never taken over: it never lost its connection.
        assert '"broker_disconnected"' not in gateway_log(deployment)
        assert delivered == []  # the ACL gives a device nobody else's telemetry
    finally:
        fleet.close()
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(30)
        broker.kill()


def test_session_takeover_with_gateway_credentials_loses_nothing(tmp_path: Path) -> None:
    """The gateway's own account (a leaked password, a second process on one account) takes
    over its session, consumes and acknowledges telemetry: the agents re-send what no receipt
    covers, so nothing is lost and nothing is logged twice."""
    binary = require_binary(find_mosquitto(), "mosquitto", INSTALL_HINT)
    broker, deployment = secured_deployment(tmp_path, binary=binary, devices=DEVICES)
    fleet = AgentFleet(deployment=deployment, broker=broker, state=tmp_path / "agents")
    broker.start()
    gateway = start_gateway(deployment)
    try:
        wait_until_started(deployment)
        fleet.start()
        stolen: list[bytes] = []
        for _ in range(TRIALS):
            thief = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=deployment.settings.mqtt.client_id,
                protocol=mqtt.MQTTv5,
            )
            thief.username_pw_set(GATEWAY_USER, GATEWAY_PASSWORD)
            thief.on_message = lambda _c, _u, message: stolen.append(bytes(message.payload))
            thief.connect(broker.host, broker.port, clean_start=False)
            thief.loop_start()  # paho acknowledges every delivery: the broker forgets it
            thief.subscribe("voltproof/+/+/telemetry", qos=1)
            time.sleep(0.5)
            thief.disconnect()
            thief.loop_stop()
            time.sleep(0.5)
        _finish(fleet, deployment.config, deployment.settings.db_path)
        # The session really was taken: the gateway was disconnected, the thief got data.
        assert gateway_log(deployment).count('"broker_disconnected"') >= 1
        assert stolen, "the thief received no telemetry: nothing was taken over"
        resends = sum(link.stats.resends for link in fleet.links)
        assert resends > 0
        print(
            f"takeovers={TRIALS} stolen={len(stolen)} "
            f"produced={sum(fleet.produced.values())} resends={resends}"
        )
    finally:
        fleet.close()
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(30)
        broker.kill()


def test_amnesiac_broker_restarts_lose_nothing(tmp_path: Path) -> None:
    """The broker forgets everything (persistence off) at each restart: 0 lost, 0 duplicated."""
    binary = require_binary(find_mosquitto(), "mosquitto", INSTALL_HINT)
    broker, deployment = secured_deployment(
        tmp_path, binary=binary, devices=DEVICES, persistence=False
    )
    fleet = AgentFleet(deployment=deployment, broker=broker, state=tmp_path / "agents")
    broker.start()
    gateway = start_gateway(deployment)
    try:
        wait_until_started(deployment)
        fleet.start()
        for restart in range(TRIALS):
            time.sleep(1.0)
            broker.kill()  # nothing is saved: sessions, queues, retained receipts are gone
            broker.start()
            # the gateway is back (a fresh session) before the next restart
            wait_for_line(deployment, '"broker_connected"', count=restart + 2, timeout_s=30)
        time.sleep(1.0)
        _finish(fleet, deployment.config, deployment.settings.db_path)
        assert gateway_log(deployment).count('"broker_disconnected"') >= TRIALS
        resends = sum(link.stats.resends for link in fleet.links)
        print(f"restarts={TRIALS} produced={sum(fleet.produced.values())} resends={resends}")
    finally:
        fleet.close()
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(30)
        broker.kill()


def _quarantined(db_path: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as db:
        return int(db.execute("SELECT count(*) FROM quarantine").fetchone()[0])


def test_retained_telemetry_is_ignored_not_quarantined_per_reconnect(tmp_path: Path) -> None:
    """A device's retained garbage is quarantined once live, then ignored at every resubscribe."""
    binary = require_binary(find_mosquitto(), "mosquitto", INSTALL_HINT)
    broker, deployment = secured_deployment(tmp_path, binary=binary, devices=1)
    broker.start()
    gateway = start_gateway(deployment)
    try:
        wait_until_started(deployment)
        device = deployment.devices[0]
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=device.device_id, protocol=mqtt.MQTTv5
        )
        client.username_pw_set(device.device_id, device_password(device.device_id))
        client.connect(broker.host, broker.port)
        client.loop_start()
        client.publish(device.topic, b"\xd2retained garbage", qos=1, retain=True).wait_for_publish(
            10
        )
        client.disconnect()
        client.loop_stop()
        db_path = deployment.settings.db_path
        wait_until(lambda: _quarantined(db_path) == 1, timeout_s=30, what="the live quarantine")
        for restart in range(3):
            gateway.send_signal(signal.SIGTERM)
            assert gateway.wait(30) == 0
            gateway = start_gateway(deployment)
            wait_for_line(deployment, "retained_telemetry_ignored", count=restart + 1)
        assert _quarantined(db_path) == 1
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(30)
        broker.kill()
