"""A real gateway fed by a real simulated fleet (``voltproof sim``), and how to audit it.

The fleet's device keys are created before anything runs and enrolled in the gateway
store, so every message the simulator signs can be accepted. :func:`audit` reads the store
afterwards: per device, the seqs must be ``0..n-1`` with no gap, each ``prev`` the hash of
the message before, and the total equal to what the simulator committed.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware_sim.sim.fleet import load_fleet
from firmware_sim.sim.keys import load_or_create
from gateway.registry import DeviceSpec, Registry
from gateway.store import SqliteStore
from ledger.keys import load_key_file
from tests.support.gateway_world import Deployment, write_deployment
from voltproof.broker import MosquittoBroker

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetWorld:
    """A gateway deployment and the fleet file whose devices it enrolled."""

    deployment: Deployment
    fleet_file: Path
    state_dir: Path
    summary_file: Path


def fleet_world(
    workdir: Path,
    broker: MosquittoBroker,
    fleet_text: str,
    *,
    shared: bool = True,
    enrolled_at_ms: int | None = None,
) -> FleetWorld:
    """Write the fleet file, create its device keys and enrol them in a new deployment.

    ``shared=False`` subscribes the gateway without a shared-subscription group.
    ``enrolled_at_ms`` (default now) must not be later than the simulation's first sample
    (the gateway refuses data from before a device's enrolment).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    fleet_file = workdir / "fleet.toml"
    fleet_file.write_text(fleet_text, encoding="utf-8")
    fleet = load_fleet(fleet_file)
    deployment = write_deployment(workdir / "gw", broker, fleet=fleet.name, devices=0)
    if not shared:
        config = deployment.config.read_text(encoding="utf-8")
        deployment.config.write_text(
            config.replace("[mqtt]\n", '[mqtt]\nshare_group = ""\n'), encoding="utf-8"
        )
    state_dir = workdir / "sim-state"
    kinds = dict.fromkeys(fleet.bus_ids(), "bus") | dict.fromkeys(fleet.pack_ids(), "pack")
    keys = load_or_create(state_dir / "keys", kinds)
    specs = [
        DeviceSpec(
            device_id=dev,
            kind="bus" if key.kind == "bus" else "pack",
            fleet=fleet.name,
            public_key=key.public_key,
        )
        for dev, key in keys.items()
    ]
    asyncio.run(_enroll(deployment, specs, enrolled_at_ms))
    return FleetWorld(
        deployment=deployment,
        fleet_file=fleet_file,
        state_dir=state_dir,
        summary_file=workdir / "summary.json",
    )


async def _enroll(
    deployment: Deployment, specs: list[DeviceSpec], enrolled_at_ms: int | None
) -> None:
    store = await SqliteStore.open(deployment.settings.db_path)
    try:
        operator = load_key_file(deployment.settings.operator_key_file)
        registry = (
            Registry(store=store, operator=operator)
            if enrolled_at_ms is None
            else Registry(store=store, operator=operator, clock_ms=lambda: enrolled_at_ms)
        )
        await registry.enroll(specs)
    finally:
        await store.close()


def start_sim(world: FleetWorld, broker_url: str, duration_s: float) -> subprocess.Popen[str]:
    """``voltproof sim`` as its own process, writing its summary as JSON."""
    return subprocess.Popen(
        [
            sys.executable, "-m", "voltproof", "sim", "--fleet", str(world.fleet_file),
            "--broker", broker_url, "--duration", str(duration_s), "--state-dir",
            str(world.state_dir), "--summary-json", str(world.summary_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )  # fmt: skip


def finish_sim(process: subprocess.Popen[str], world: FleetWorld) -> dict[str, Any]:
    """Wait for the simulator to end; return its summary."""
    _out, err = process.communicate(timeout=90)
    assert process.returncode == 0, err[-3000:]
    summary: dict[str, Any] = json.loads(world.summary_file.read_text(encoding="utf-8"))
    return summary


def wait_until_every_device_logged(db_path: Path, devices: int, timeout_s: float = 60) -> None:
    """Wait until each of ``devices`` devices has a telemetry leaf (all agents are connected)."""
    deadline = time.monotonic() + timeout_s
    while True:
        with closing(sqlite3.connect(db_path)) as db:
            (logged,) = db.execute(
                "SELECT count(DISTINCT device) FROM leaves WHERE kind = 'telemetry'"
            ).fetchone()
        if logged >= devices:
            return
        assert time.monotonic() < deadline, f"{logged} of {devices} devices logged"
        time.sleep(0.1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Audit:
    """What the store holds of the fleet's chains."""

    messages: int
    historical: int
    devices: int
    broken: tuple[str, ...]
    """One line per gap or broken link."""


def audit(db_path: Path) -> Audit:
    """Check every device chain in the store: contiguous seqs from 0 and valid links."""
    chains: dict[str, list[tuple[int, bytes, bytes, int]]] = defaultdict(list)
    with closing(sqlite3.connect(db_path)) as db:
        for device, seq, prev, digest, historical in db.execute(
            "SELECT device, seq, prev, message_hash, historical FROM leaves "
            "WHERE kind = 'telemetry' ORDER BY device, seq"
        ):
            chains[device].append((seq, bytes(prev), bytes(digest), historical))
    broken: list[str] = []
    for device, chain in sorted(chains.items()):
        previous = bytes(32)
        for expected, (seq, prev, digest, _) in enumerate(chain):
            if seq != expected:
                broken.append(f"{device}: seq {seq} where {expected} was expected")
                break
            if prev != previous:
                broken.append(f"{device}: seq {seq} does not link to seq {seq - 1}")
            previous = digest
    return Audit(
        messages=sum(len(chain) for chain in chains.values()),
        historical=sum(h for chain in chains.values() for *_, h in chain),
        devices=len(chains),
        broken=tuple(broken),
    )
