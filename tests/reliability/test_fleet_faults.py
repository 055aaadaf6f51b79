"""A real simulated fleet through a real broker into a real gateway, under faults and attacks.

Each test runs ``voltproof sim`` (real agents: signing, durable outboxes, MQTT v5 QoS 1)
against mosquitto and the gateway process, injects one fault, and then audits the gateway
store: every device's chain holds seqs ``0..n-1`` without a gap, each ``prev`` links to the
message before, and the total equals what the simulator committed (its outboxes drained).
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest

from tests.support.fleet_world import (
    audit,
    finish_sim,
    fleet_world,
    start_sim,
    wait_until_every_device_logged,
)
from tests.support.processes import (
    gateway_log,
    start_gateway,
    wait_for_log_size,
    wait_until_started,
)
from tests.support.tcp_proxy import CuttableProxy
from voltproof.broker import MosquittoBroker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FLEET = """name = "rel"
buses = 2
physics = "steady"
period_s = 1
ramp_s = 0.2
"""
DEVICES = 4
ATTACKS = """[attacks]
at_s = 2
forged_signature = 1
replay = 1
reorder = 1
fork = 1
wrong_topic = 1
wrong_kid = 1
garbage = 1
oversized = 1
"""
# The reason code each attack gets from the gateway (sim's EXPECTED_REJECTION, in codes).
REFUSED_AS = {
    "forged_signature": "bad_signature",
    "fork": "fork",
    "wrong_topic": "id_mismatch",
    "wrong_kid": "id_mismatch",
    "garbage": "malformed",
    "oversized": "oversize",
}


def _stop(gateway: object, world_log: str) -> None:
    import subprocess

    assert isinstance(gateway, subprocess.Popen)
    gateway.send_signal(signal.SIGTERM)
    assert gateway.wait(30) == 0, world_log


def _settle(db_path: Path, committed: int, registry: int) -> None:
    wait_for_log_size(db_path, registry + committed, timeout_s=30)


def test_broker_restart_loses_nothing(tmp_path: Path, mosquitto: MosquittoBroker) -> None:
    """The broker restarts while agents publish: every committed message is logged once.

    The gateway subscribes without a shared-subscription group: mosquitto 2.0.11 does not
    restore a shared subscription of a persistent session after a restart, and loses what
    agents publish until the gateway is back (docs/reliability.md has the reproduction).
    """
    world = fleet_world(tmp_path, mosquitto, FLEET, shared=False)
    deployment = world.deployment
    gateway = start_gateway(deployment)
    try:
        wait_until_started(deployment)
        sim = start_sim(world, mosquitto.url, duration_s=7)
        wait_until_every_device_logged(deployment.settings.db_path, DEVICES)
        mosquitto.restart()
        summary = finish_sim(sim, world)
        _settle(deployment.settings.db_path, summary["committed"], summary["devices"])
    finally:
        _stop(gateway, gateway_log(deployment)[-3000:])
    found = audit(deployment.settings.db_path)
    print(
        f"broker restart: committed {summary['committed']}, acked {summary['acked']}, "
        f"logged {found.messages}, reconnects {summary['reconnects']}, broken {found.broken}"
    )
    assert (summary["buffered"], summary["dropped"]) == (0, 0)
    assert found.broken == ()
    assert found.messages == summary["committed"]
    assert found.devices == summary["devices"]
    assert summary["reconnects"] >= 2 * summary["devices"]


def test_network_cut_between_agents_and_broker(tmp_path: Path, mosquitto: MosquittoBroker) -> None:
    """The agents' link is cut for 2.5 s and restored: they backfill and nothing is lost."""
    world = fleet_world(tmp_path, mosquitto, FLEET)
    deployment = world.deployment
    gateway = start_gateway(deployment)
    try:
        wait_until_started(deployment)
        with CuttableProxy(target_host=mosquitto.host, target_port=mosquitto.port) as proxy:
            sim = start_sim(world, proxy.url, duration_s=9)
            wait_until_every_device_logged(deployment.settings.db_path, DEVICES)
            proxy.cut()
            time.sleep(2.5)
            proxy.restore()
            summary = finish_sim(sim, world)
        _settle(deployment.settings.db_path, summary["committed"], summary["devices"])
    finally:
        _stop(gateway, gateway_log(deployment)[-3000:])
    found = audit(deployment.settings.db_path)
    print(
        f"network cut: committed {summary['committed']}, acked {summary['acked']}, "
        f"logged {found.messages}, historical {found.historical}, "
        f"link failures {summary['link_failures']}, broken {found.broken}"
    )
    assert (summary["buffered"], summary["dropped"]) == (0, 0)
    assert found.broken == ()
    assert found.messages == summary["committed"]
    assert summary["link_failures"] >= summary["devices"]
    assert found.historical > 0


def test_sim_attacks_are_refused_with_their_reason(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    """Each attack kind the simulator injects is refused by the gateway with the right code."""
    world = fleet_world(tmp_path, mosquitto, FLEET + ATTACKS)
    deployment = world.deployment
    gateway = start_gateway(deployment)
    try:
        wait_until_started(deployment)
        summary = finish_sim(start_sim(world, mosquitto.url, duration_s=5), world)
        # every committed message, plus the reorder injection, which is validly signed
        _settle(deployment.settings.db_path, summary["committed"] + 1, summary["devices"])
        time.sleep(0.5)
    finally:
        _stop(gateway, gateway_log(deployment)[-3000:])
    assert summary["attacks"] == dict.fromkeys(summary["expected_rejections"], 1)
    with closing(sqlite3.connect(deployment.settings.db_path)) as db:
        reasons = dict(db.execute("SELECT reason, total FROM quarantine_counts").fetchall())
        duplicates = db.execute("SELECT sum(duplicates) FROM chain_heads").fetchone()[0]
        gaps = db.execute("SELECT device, stop - start FROM chain_gaps").fetchall()
    expected: dict[str, int] = {}
    for code in REFUSED_AS.values():
        expected[code] = expected.get(code, 0) + 1
    print(f"attacks: quarantined {reasons}, duplicates {duplicates}, gaps {gaps}")
    assert reasons == expected
    assert duplicates >= 1  # the replay, recognised byte for byte
    # A reorder is signed by the device's own key: it is logged, and the seqs it skips are
    # recorded as a gap (999 wide, less what the device sent since) that bundles report.
    ((_, missing),) = gaps
    assert 900 < missing <= 999


OFFLINE_FLEET = """name = "hour"
buses = 1
physics = "steady"
period_s = 10
ramp_s = 0
[faults.offline]
fraction = 1.0
start_s = 30
duration_s = 3600
"""
SPEEDUP = 400.0
"""Simulated seconds per wall-clock second: the hour offline takes 9 s."""


class AcceleratedTime:
    """A clock that runs ``SPEEDUP`` times faster than the wall clock, ending near now."""

    def __init__(self, *, simulated_s: float) -> None:
        self.wall0 = time.monotonic()
        # start in the past so that the run ends about now: nothing is in the gateway's future
        self.sim0 = time.time() - simulated_s

    def now(self) -> float:
        """Simulated Unix time in seconds."""
        return self.sim0 + (time.monotonic() - self.wall0) * SPEEDUP

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of simulated time."""
        await asyncio.sleep(seconds / SPEEDUP)


def test_device_offline_for_a_simulated_hour(tmp_path: Path, mosquitto: MosquittoBroker) -> None:
    """An hour offline: the agents buffer, then backfill; historical, continuous, complete."""
    from firmware_sim.sim.fleet import load_fleet
    from firmware_sim.sim.runner import SimOptions, run

    duration_s = 11.0
    # enrolled before the simulated run starts (an hour and more in the past)
    enrolled_at_ms = round((time.time() - (duration_s + 3) * SPEEDUP) * 1000)
    world = fleet_world(tmp_path, mosquitto, OFFLINE_FLEET, enrolled_at_ms=enrolled_at_ms)
    deployment = world.deployment
    fleet = load_fleet(world.fleet_file)
    options = SimOptions(broker_url=mosquitto.url, state_dir=world.state_dir, duration_s=duration_s)
    gateway = start_gateway(deployment)
    try:
        wait_until_started(deployment)
        # started now, with 2 s of slack: the last sample lies before the gateway's now
        clock = AcceleratedTime(simulated_s=(duration_s + 2) * SPEEDUP)
        summary = asyncio.run(run(fleet, options, clock=clock.now, sleep=clock.sleep))
        _settle(deployment.settings.db_path, summary.committed, summary.devices)
    finally:
        _stop(gateway, gateway_log(deployment)[-3000:])
    found = audit(deployment.settings.db_path)
    with closing(sqlite3.connect(deployment.settings.db_path)) as db:
        span_s, longest_wait_s = db.execute(
            "SELECT (max(t_ms) - min(t_ms)) / 1000, max(received_at_ms - t_ms) / 1000 "
            "FROM leaves WHERE kind = 'telemetry'"
        ).fetchone()
    print(
        f"offline hour: committed {summary.committed}, logged {found.messages}, historical "
        f"{found.historical}, simulated span {span_s} s, longest buffered {longest_wait_s} s"
    )
    assert summary.faults["offline"] == 2
    assert (summary.buffered, summary.dropped) == (0, 0)
    assert found.broken == ()
    assert found.messages == summary.committed
    assert span_s >= 3600
    assert longest_wait_s >= 3500
    # every message signed while offline (one per 10 s for an hour, per device) is historical
    assert found.historical >= 2 * 3600 // 10
