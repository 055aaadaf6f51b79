"""Soak: the gateway and a simulated fleet for a long time, with periodic kills and restarts.

A real mosquitto, the gateway as its own process, and ``voltproof sim`` (real agents with
durable outboxes) run for ``--minutes``. Every ``--kill-every`` seconds the gateway gets
SIGKILL and is started again; every ``--broker-every`` seconds the broker restarts. The
gateway's resident memory is sampled every ``--sample-every`` seconds. At the end the fleet
stops, the gateway drains and stops, and the store is audited:

- lost: messages the simulator committed that are not in the log;
- duplicated: messages logged more than once;
- unprovable / inconsistent: every problem ``voltproof gateway check`` finds (leaf and node
  hashes, checkpoint signatures, roots and consistency, chains, samples, anchors);
- broken chains: a device whose seqs are not ``0..n-1`` or whose links do not verify;
- memory: RSS per sample, and whether the process that ran longest stayed flat.

    .venv/bin/python -m bench.soak.soak --minutes 10 [--buses 10] [--kill-every 60]
        [--broker-every 150] [--workdir DIR]

Not run by the tests (it takes minutes); docs/reliability.md records runs.
"""

from __future__ import annotations

import argparse
import json
import signal
import sqlite3
import statistics
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from gateway.audit import check_store
from ledger.keys import load_key_file
from tests.support.fleet_world import (
    FleetWorld,
    audit,
    finish_sim,
    fleet_world,
    start_sim,
)
from tests.support.processes import start_gateway, wait_for_log_size, wait_until_started
from voltproof.broker import MosquittoBroker

FLEET = """name = "soak"
buses = {buses}
physics = "{physics}"
period_s = {period}
ramp_s = 2
"""


@dataclass(slots=True)
class Memory:
    """RSS samples of the gateway: (seconds since start, process number, KiB)."""

    samples: list[tuple[float, int, int]] = field(default_factory=list)

    def longest_run(self) -> list[int]:
        """The RSS samples of the process that was sampled most often."""
        by_process: dict[int, list[int]] = {}
        for _, process, kib in self.samples:
            by_process.setdefault(process, []).append(kib)
        return max(by_process.values(), key=len, default=[])


def rss_kib(pid: int) -> int | None:
    """Resident set size of ``pid`` from /proc (Linux), or None if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


def main() -> None:
    """Run the soak and print its report (and write it as JSON beside the deployment)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--buses", type=int, default=10)
    parser.add_argument("--period", type=int, default=5, help="seconds per signed message")
    parser.add_argument("--physics", choices=["full", "steady"], default="full")
    parser.add_argument("--kill-every", type=float, default=60.0, metavar="S")
    parser.add_argument("--broker-every", type=float, default=150.0, metavar="S")
    parser.add_argument("--sample-every", type=float, default=5.0, metavar="S")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="voltproof-soak-"))
    duration = args.minutes * 60
    broker = MosquittoBroker(workdir=workdir / "broker")
    broker.start()
    text = FLEET.format(buses=args.buses, physics=args.physics, period=args.period)
    # A plain subscription: mosquitto 2.0.11 drops a shared one on restart (reliability.md).
    world = fleet_world(workdir, broker, text, shared=False)
    deployment = world.deployment
    memory = Memory()
    kills = restarts = 0
    gateway = start_gateway(deployment)
    wait_until_started(deployment)
    sim = start_sim(world, broker.url, duration_s=duration)
    started = time.monotonic()
    next_kill, next_broker = args.kill_every, args.broker_every
    process = 0
    try:
        while (elapsed := time.monotonic() - started) < duration:
            kib = rss_kib(gateway.pid)
            if kib is not None:
                memory.samples.append((round(elapsed, 1), process, kib))
            if elapsed >= next_kill:
                gateway.send_signal(signal.SIGKILL)
                gateway.wait(10)
                gateway = start_gateway(deployment)
                kills, process, next_kill = kills + 1, process + 1, next_kill + args.kill_every
            if elapsed >= next_broker:
                broker.restart()
                restarts, next_broker = restarts + 1, next_broker + args.broker_every
            time.sleep(args.sample_every)
        summary = finish_sim(sim, world)
        wait_for_log_size(deployment.settings.db_path, summary["committed"] + summary["devices"])
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(60)
        broker.stop()
    report = _report(world, summary, memory, kills=kills, restarts=restarts, minutes=args.minutes)
    (workdir / "soak-report.json").write_text(json.dumps(report, indent=1) + "\n", "utf-8")
    print(json.dumps({k: v for k, v in report.items() if k != "rss_kib"}, indent=1))
    print(f"report and RSS series: {workdir / 'soak-report.json'}")


def _report(
    world: FleetWorld, summary: dict[str, object], memory: Memory, **facts: float
) -> dict[str, object]:
    settings = world.deployment.settings
    found = audit(settings.db_path)
    with closing(sqlite3.connect(settings.db_path)) as db:
        (distinct,) = db.execute(
            "SELECT count(DISTINCT message_hash) FROM leaves WHERE kind = 'telemetry'"
        ).fetchone()
    key = load_key_file(settings.key_file)
    check = check_store(
        settings.db_path,
        origin=settings.origin,
        key_name=key.name,
        public_key=key.public_key,
        anchors_path=settings.data_dir / "anchors.db",
    )
    committed = int(str(summary["committed"]))
    longest = memory.longest_run()
    quarter = max(1, len(longest) // 4)
    first, last = statistics.median(longest[:quarter]), statistics.median(longest[-quarter:])
    return {
        **facts,
        "devices": summary["devices"],
        "committed": committed,
        "logged": found.messages,
        "lost": committed - distinct,
        "duplicated": found.messages - distinct,
        "broken_chains": list(found.broken),
        "selfcheck_problems": [p.describe() for p in check.problems],
        "historical": found.historical,
        "agent_reconnects": summary["reconnects"],
        "rss_first_quarter_kib": first,
        "rss_last_quarter_kib": last,
        "rss_max_kib": max((kib for _, _, kib in memory.samples), default=0),
        "rss_growth_pct": round(100 * (last - first) / first, 1) if first else None,
        "rss_kib": memory.samples,
    }


if __name__ == "__main__":
    main()
