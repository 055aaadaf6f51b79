"""Gateways on PostgreSQL against gateways on SQLite: 1, 2 and 3 processes, in ONE run.

Every scenario gets a fresh mosquitto, a fresh deployment and the same pre-signed messages
(``bench.gateway_load``: 10-sample telemetry, one hash chain per device). SQLite scenarios
run N ``voltproof gateway`` processes on one SQLite file (the first signs); PostgreSQL
scenarios run N processes with ``store.url`` on one database of a throwaway cluster (the
signer is elected). The publishers push everything as fast as mosquitto takes it; a scenario
ends when the log holds every message (zero loss is checked by counting leaves).

Reported per scenario: messages per second (first publish -> last leaf), the gateways' CPU
per message (user + system, /proc), and for PostgreSQL the server's CPU per message (every
process of the cluster). Ratios are against "sqlite x1" of the same run.

    .venv/bin/python -m bench.bench_store_pg [--devices D] [--per-device M] [--publishers P]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from bench.bench_gateway import Load, cpu_seconds, make_load, run_publishers, start_gateways
from bench.gateway_load import FLEET, BenchDevice, bench_fleet
from voltproof.broker import MosquittoBroker
from voltproof.postgres_cluster import PostgresCluster


@dataclass(slots=True, kw_only=True)
class Result:
    """One scenario's figures."""

    name: str
    messages: int
    seconds: float
    gateway_cpu_s: float
    server_cpu_s: float | None = None

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    def per_message_us(self, cpu_s: float | None) -> float | None:
        return None if cpu_s is None else cpu_s / self.messages * 1e6


def _config(folder: Path, broker: MosquittoBroker, url: str | None) -> Path:
    from ledger.keys import create_key_file

    (folder / "keys").mkdir(parents=True)
    create_key_file(folder / "keys" / "gateway.key", name="voltproof.bench/gw")
    create_key_file(folder / "keys" / "operator.key", name="operator.bench")
    store = "" if url is None else f'[store]\nurl = "{url}"\n'
    config = folder / "gateway.toml"
    config.write_text(
        'origin = "voltproof.bench/gw"\n'
        f'fleets = ["{FLEET}"]\n'
        f'[mqtt]\nurl = "{broker.url}"\nclient_id = "bench-gateway-0"\n'
        "[checkpoints]\nevery_leaves = 1000\nevery_s = 1.0\n"
        '[anchors]\nbackend = "memory"\n'
        f"{store}"
        "[metrics]\nport = 0\n",
        encoding="utf-8",
    )
    return config


async def _enroll(config: Path, devices: Sequence[BenchDevice]) -> None:
    from gateway.config import load_settings
    from gateway.registry import DeviceSpec, Registry
    from gateway.store_choice import open_store
    from ledger.keys import load_key_file

    settings = load_settings(config)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    async with AsyncExitStack() as stack:
        store = await open_store(settings, stack)
        registry = Registry(store=store, operator=load_key_file(settings.operator_key_file))
        await registry.enroll(
            [
                DeviceSpec(device_id=d.device_id, kind=d.kind, fleet=FLEET, public_key=d.public_key)
                for d in devices
            ]
        )


async def _log_size(config: Path) -> int:
    from gateway.config import load_settings
    from gateway.store_choice import open_store

    async with AsyncExitStack() as stack:
        store = await open_store(load_settings(config), stack)
        return (await store.log_head()).size


def _cluster_pids(cluster: PostgresCluster) -> list[int]:
    """The postmaster and every process it started (backends, writer, WAL writer...)."""
    postmaster = int((cluster.data_dir / "postmaster.pid").read_text().split()[0])
    children = [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and _parent(int(entry.name)) == postmaster
    ]
    return [postmaster, *children]


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return None


def _server_cpu(pids: Sequence[int]) -> float:
    live = [pid for pid in pids if Path(f"/proc/{pid}").exists()]
    return cpu_seconds(live)


def run_scenario(
    workdir: Path,
    load: Load,
    devices: Sequence[BenchDevice],
    *,
    processes: int,
    cluster: PostgresCluster | None,
    timeout_s: float,
) -> Result:
    backend = "sqlite" if cluster is None else "postgresql"
    folder = Path(tempfile.mkdtemp(prefix=f"{backend}-{processes}-", dir=workdir))
    url = None if cluster is None else cluster.create_database()
    with MosquittoBroker(workdir=folder / "broker") as broker:
        config = _config(folder, broker, url)
        asyncio.run(_enroll(config, devices))
        base = asyncio.run(_log_size(config))
        gateways = start_gateways(config, processes, elected=cluster is not None)
        try:
            pids: list[int | None] = [g.pid for g in gateways]
            server = [] if cluster is None else _cluster_pids(cluster)
            cpu_before = cpu_seconds(pids)
            server_before = _server_cpu(server) if server else 0.0
            times = run_publishers(broker, load, None)
            deadline = time.monotonic() + timeout_s
            while (size := asyncio.run(_log_size(config))) < base + load.total:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{backend} x{processes}: log stuck at {size - base}")
                time.sleep(0.05)
            done = time.time()
            cpu = cpu_seconds(pids) - cpu_before
            server_after = _server_cpu(_cluster_pids(cluster)) if cluster is not None else 0.0
        finally:
            for gateway in gateways:
                gateway.terminate()
            for gateway in gateways:
                gateway.wait(60)
    return Result(
        name=f"{backend} x{processes}",
        messages=load.total,
        seconds=done - min(times.values()) / 1000,
        gateway_cpu_s=cpu,
        server_cpu_s=None if cluster is None else server_after - server_before,
    )


def report(results: list[Result]) -> None:
    baseline = results[0]
    print(
        f"{'scenario':16} {'msgs/s':>8} {'x sqlite1':>9} "
        f"{'gw CPU us/msg':>14} {'pg CPU us/msg':>14}"
    )
    for result in results:
        gw = result.per_message_us(result.gateway_cpu_s)
        pg = result.per_message_us(result.server_cpu_s)
        print(
            f"{result.name:16} {result.rate:8.0f} {result.rate / baseline.rate:9.2f} "
            f"{gw or 0:14.0f} {'-' if pg is None else f'{pg:14.0f}':>14}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--per-device", type=int, default=40)
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument("--max-processes", type=int, default=3)
    parser.add_argument("--timeout-s", type=float, default=600.0)
    args = parser.parse_args()
    devices = bench_fleet(args.devices)
    load = make_load(devices, args.per_device, args.publishers)
    print(
        f"{platform.node()} {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; "
        f"{load.total} messages from {args.devices} devices, {args.publishers} publishers"
    )
    results = []
    cluster = PostgresCluster.start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-store-pg-") as workdir:
            for backend in (None, cluster):
                for processes in range(1, args.max_processes + 1):
                    result = run_scenario(
                        Path(workdir), load, devices, processes=processes, cluster=backend,
                        timeout_s=args.timeout_s,
                    )  # fmt: skip
                    print(f"  {result.name}: {result.rate:.0f} msgs/s", flush=True)
                    results.append(result)
    finally:
        cluster.stop()
    report(results)


if __name__ == "__main__":
    main()
