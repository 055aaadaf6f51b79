"""Gateway throughput, latency and memory against raw MQTT and a naive subscriber, in ONE run.

Every scenario gets a fresh mosquitto started with the project's configuration
(``voltproof.broker.MosquittoBroker``) and the same pre-signed messages: realistic 10-sample
telemetry (``bench.gateway_load``), one hash chain per device, signed before the clock starts.
Publishers, broker and consumers all run on this host as separate processes.

- **raw**: a paho subscriber that does nothing (QoS 1, paho acknowledges): the MQTT ceiling;
- **naive-N**: N subscribers on a shared subscription that verify each signature with PyNaCl,
  insert the batch into one SQLite file (WAL, ``synchronous=FULL``), commit and then
  acknowledge (manual ack);
- **gateway-N**: N ``voltproof gateway`` processes on one deployment (one database, one log,
  one shared subscription; only the first signs checkpoints and anchors locally), every
  check, samples, Merkle log, chain state. Zero loss is checked by counting leaves.
- **latency**: the best gateway configuration at ``--latency-load`` x its throughput,
  paced: publish time -> ``signed_at`` of the first checkpoint covering the message's leaf;
- **soak**: the same load for ``--soak-s`` seconds, signed on the fly; the gateways' resident
  memory (VmRSS) over time.

    .venv/bin/python -m bench.bench_gateway [--devices D] [--per-device M] [--soak-s S] ...
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.context import SpawnContext
from pathlib import Path
from typing import Any

from bench.gateway_load import (
    FLEET,
    SAMPLES,
    BenchDevice,
    PublishJob,
    bench_fleet,
    naive_subscriber,
    publish,
    publish_stream,
    raw_subscriber,
    sign_messages,
)
from voltproof.broker import MosquittoBroker

CTX: SpawnContext = multiprocessing.get_context("spawn")


@dataclass(slots=True, kw_only=True)
class Result:
    """One scenario's figures."""

    name: str
    messages: int
    seconds: float
    stored: int | None = None
    quarantined: int | None = None
    latencies_ms: list[int] = field(default_factory=list)
    rss_kib: list[tuple[float, int]] = field(default_factory=list)
    cpu_s: float | None = None
    """CPU seconds (user + system) the consuming processes spent on the run."""

    @property
    def rate(self) -> float:
        """Messages per second."""
        return self.messages / self.seconds

    @property
    def cpu_us_per_message(self) -> float | None:
        """Consumer CPU per message: independent of what else loads the machine."""
        return None if self.cpu_s is None or not self.messages else self.cpu_s / self.messages * 1e6


@dataclass(frozen=True, slots=True, kw_only=True)
class Load:
    """The pre-signed messages, split per publisher by device (a chain stays in order)."""

    jobs: list[list[tuple[str, bytes]]]
    keys: list[list[tuple[str, int]]]

    @property
    def total(self) -> int:
        """Number of messages."""
        return sum(len(job) for job in self.jobs)


def make_load(devices: Sequence[BenchDevice], per_device: int, publishers: int) -> Load:
    """Sign ``per_device`` messages per device (ending about now) and split them."""
    t0 = time.time_ns() // 1_000_000 - (per_device + 1) * SAMPLES * 1000
    signed = sign_messages(devices, per_device, t0)
    jobs: list[list[tuple[str, bytes]]] = [[] for _ in range(publishers)]
    keys: list[list[tuple[str, int]]] = [[] for _ in range(publishers)]
    for k, message in enumerate(signed):
        device = k % len(devices)
        jobs[device % publishers].append(message)
        keys[device % publishers].append((devices[device].device_id, k // len(devices)))
    return Load(jobs=jobs, keys=keys)


def run_publishers(
    broker: MosquittoBroker, load: Load, rate: float | None
) -> dict[tuple[str, int], int]:
    """Publish ``load`` (all publishers start together); publish time (ms) per message."""
    go = CTX.Event()
    results = CTX.Queue()
    processes = []
    share = None if rate is None else rate / len(load.jobs)
    for j, messages in enumerate(load.jobs):
        ready = CTX.Event()
        job = PublishJob(
            host=broker.host,
            port=broker.port,
            client_id=f"bench-pub-{j}",
            messages=messages,
            rate=share,
        )
        process = CTX.Process(target=publish, args=(job, ready, go, results), daemon=True)
        process.start()
        ready.wait(60)
        processes.append(process)
    go.set()
    times: dict[tuple[str, int], int] = {}
    for _ in processes:
        client_id, published = results.get()
        j = int(client_id.rsplit("-", 1)[1])
        times.update(zip(load.keys[j], published, strict=True))
    for process in processes:
        process.join(30)
    return times


def cpu_seconds(pids: Sequence[int | None]) -> float:
    """User + system CPU seconds of live processes ``pids`` so far (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        # Fields after the command name, which is in parentheses and may hold spaces.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def _wait_count(count: Any, last: Any, expected: int, timeout_s: float) -> float:
    deadline = time.monotonic() + timeout_s
    while count.value < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return float(last.value)


def run_raw(workdir: Path, load: Load, timeout_s: float) -> Result:
    """(a) raw MQTT: publishers -> mosquitto -> a subscriber that does nothing."""
    with MosquittoBroker(workdir=workdir / "broker-raw") as broker:
        count, last, ready = CTX.Value("q", 0), CTX.Value("d", 0.0), CTX.Event()
        sub = CTX.Process(
            target=raw_subscriber, args=(broker.host, broker.port, count, last, ready), daemon=True
        )
        sub.start()
        ready.wait(30)
        cpu_before = cpu_seconds([sub.pid])
        times = run_publishers(broker, load, None)
        done = _wait_count(count, last, load.total, timeout_s)
        cpu = cpu_seconds([sub.pid]) - cpu_before
        sub.terminate()
        sub.join()
    return Result(
        name="raw MQTT",
        messages=count.value,
        seconds=done - min(times.values()) / 1000,
        cpu_s=cpu,
    )


def run_naive(
    workdir: Path, load: Load, devices: Sequence[BenchDevice], n: int, timeout_s: float
) -> Result:
    """(b) naive subscribers on a shared subscription: verify, insert, commit, ack."""
    keys = {d.device_id: d.public_key for d in devices}
    db = workdir / f"naive-{n}.db"
    with MosquittoBroker(workdir=workdir / f"broker-naive-{n}") as broker:
        count, last = CTX.Value("q", 0), CTX.Value("d", 0.0)
        subs = []
        for i in range(n):
            ready = CTX.Event()
            sub = CTX.Process(
                target=naive_subscriber,
                args=(
                    broker.host,
                    broker.port,
                    f"bench-naive-{i}",
                    str(db),
                    keys,
                    count,
                    last,
                    ready,
                ),
                daemon=True,
            )
            sub.start()
            ready.wait(30)
            subs.append(sub)
        cpu_before = cpu_seconds([sub.pid for sub in subs])
        times = run_publishers(broker, load, None)
        done = _wait_count(count, last, load.total, timeout_s)
        cpu = cpu_seconds([sub.pid for sub in subs]) - cpu_before
        for sub in subs:
            sub.terminate()
            sub.join()
    with sqlite3.connect(db) as conn:
        stored = int(conn.execute("SELECT count(*) FROM messages").fetchone()[0])
    return Result(
        name=f"naive x{n}",
        messages=count.value,
        seconds=done - min(times.values()) / 1000,
        stored=stored,
        cpu_s=cpu,
    )


def write_deployment(
    workdir: Path, broker: MosquittoBroker, devices: Sequence[BenchDevice], *, every_s: float
) -> Path:
    """A gateway deployment (keys, gateway.toml) with every bench device enrolled."""
    import asyncio

    from gateway.config import load_settings
    from gateway.registry import DeviceSpec, Registry
    from gateway.store import SqliteStore
    from ledger.keys import create_key_file, load_key_file

    (workdir / "keys").mkdir(parents=True)
    create_key_file(workdir / "keys" / "gateway.key", name="voltproof.bench/gw")
    create_key_file(workdir / "keys" / "operator.key", name="operator.bench")
    config = workdir / "gateway.toml"
    config.write_text(
        'origin = "voltproof.bench/gw"\n'
        f'fleets = ["{FLEET}"]\n'
        f'[mqtt]\nurl = "{broker.url}"\nclient_id = "bench-gateway-0"\n'
        "[checkpoints]\nevery_leaves = 1000\n"
        f"every_s = {every_s}\n"
        '[anchors]\nbackend = "local"\n'
        "[metrics]\nport = 0\n",
        encoding="utf-8",
    )
    settings = load_settings(config)

    async def enroll() -> None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        async with await SqliteStore.open(settings.db_path) as store:
            registry = Registry(store=store, operator=load_key_file(settings.operator_key_file))
            await registry.enroll(
                [
                    DeviceSpec(
                        device_id=d.device_id, kind=d.kind, fleet=FLEET, public_key=d.public_key
                    )
                    for d in devices
                ]
            )

    asyncio.run(enroll())
    return config


def start_gateways(
    config: Path, processes: int, *, elected: bool = False
) -> list[subprocess.Popen[bytes]]:
    """``processes`` gateway processes on one deployment; the first signs and anchors (or,
    ``elected``, on PostgreSQL: the one holding the signer lock)."""
    started = []
    for i in range(processes):
        env = dict(os.environ, VOLTPROOF_GATEWAY__MQTT__CLIENT_ID=f"bench-gateway-{i}")
        if i > 0 and not elected:
            env["VOLTPROOF_GATEWAY__CHECKPOINTS__ENABLED"] = "false"
        log = config.parent / f"gateway-{i}.log"
        with log.open("wb") as out:
            started.append(
                subprocess.Popen(
                    [sys.executable, "-m", "voltproof", "gateway", "--config", str(config)],
                    stdout=out,
                    stderr=out,
                    env=env,
                )
            )
    for i, process in enumerate(started):
        log = config.parent / f"gateway-{i}.log"
        deadline = time.monotonic() + 60
        while b"gateway_started" not in log.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                for other in started:
                    other.kill()
                    other.wait()
                raise RuntimeError(f"gateway {i} did not start: {log.read_text()[-2000:]}")
            time.sleep(0.05)
    return started


def rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _log_size(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        row = conn.execute("SELECT max(leaf_index) FROM leaves").fetchone()
    return 0 if row[0] is None else int(row[0]) + 1


def run_gateway(
    workdir: Path,
    load: Load | None,
    devices: Sequence[BenchDevice],
    *,
    processes: int,
    rate: float | None,
    every_s: float,
    soak_s: float = 0.0,
    timeout_s: float,
) -> Result:
    """(c) the gateway: publish ``load`` (or a soak stream), wait for every leaf, stop."""
    name = f"gateway x{processes}" + ("" if rate is None else f" at {rate:.0f}/s")
    folder = Path(
        tempfile.mkdtemp(prefix=name.replace(" ", "-").replace("/", "") + "-", dir=workdir)
    )
    with MosquittoBroker(workdir=folder / "broker") as broker:
        config = write_deployment(folder, broker, devices, every_s=every_s)
        db = folder / "gateway" / "gateway.db"
        base = _log_size(db)
        gateways = start_gateways(config, processes)
        rss: list[tuple[float, int]] = []
        cpu_before = cpu_seconds([g.pid for g in gateways])
        t_start = time.time()
        try:
            if load is not None:
                times = run_publishers(broker, load, rate)
                expected = load.total
            else:
                assert rate is not None
                results = CTX.Queue()
                stream = CTX.Process(
                    target=publish_stream,
                    args=(broker.host, broker.port, list(devices), rate, soak_s, results),
                    daemon=True,
                )
                stream.start()
                while stream.is_alive():
                    rss.append((time.time() - t_start, sum(rss_kib(g.pid) for g in gateways)))
                    stream.join(5)
                times, expected = {}, int(results.get()[1])
            deadline = time.monotonic() + timeout_s
            while (size := _log_size(db)) < base + expected and time.monotonic() < deadline:
                time.sleep(0.05)
            done = time.time()
            cpu = cpu_seconds([g.pid for g in gateways]) - cpu_before
            rss.append((done - t_start, sum(rss_kib(g.pid) for g in gateways)))
        finally:
            for process in gateways:
                process.send_signal(signal.SIGTERM)
            for process in gateways:
                process.wait(60)
    first = min(times.values()) / 1000 if times else t_start
    result = Result(name=name, messages=size - base, seconds=done - first, rss_kib=rss, cpu_s=cpu)
    with sqlite3.connect(db) as conn:
        result.stored = int(
            conn.execute("SELECT count(*) FROM leaves WHERE kind = 'telemetry'").fetchone()[0]
        )
        result.quarantined = int(conn.execute("SELECT count(*) FROM quarantine").fetchone()[0])
        if times:
            checkpoints = conn.execute(
                "SELECT size, signed_at_ms FROM checkpoints ORDER BY size"
            ).fetchall()
            for device, seq, leaf in conn.execute(
                "SELECT device, seq, leaf_index FROM leaves WHERE kind = 'telemetry'"
            ):
                signed = next(at for size_, at in checkpoints if size_ > leaf)
                result.latencies_ms.append(signed - times[(device, seq)])
    return result


def _percentile(values: Sequence[int], q: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))])


def report(results: list[Result], baseline_raw: Result, baseline_naive: Result) -> None:
    """Print one line per scenario with ratios against the baselines of this run."""
    print(
        "| scenario | msgs/s | samples/s | x raw | x naive-1 | consumer CPU us/msg "
        "| CPU x naive-1 | stored | quarantined |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    naive_cpu = baseline_naive.cpu_us_per_message
    for r in results:
        stored = "" if r.stored is None else str(r.stored)
        quarantined = "" if r.quarantined is None else str(r.quarantined)
        cpu = r.cpu_us_per_message
        cpu_text = "" if cpu is None else f"{cpu:,.0f}"
        cpu_ratio = "" if cpu is None or not naive_cpu else f"{cpu / naive_cpu:.2f}"
        print(
            f"| {r.name} | {r.rate:,.0f} | {r.rate * SAMPLES:,.0f} | "
            f"{r.rate / baseline_raw.rate:.2f} | {r.rate / baseline_naive.rate:.2f} | "
            f"{cpu_text} | {cpu_ratio} | {stored} | {quarantined} |"
        )
    for r in results:
        if r.latencies_ms:
            lat = r.latencies_ms
            print(
                f"{r.name}: publish -> signed checkpoint p50 {_percentile(lat, 0.5):.0f} ms, "
                f"p99 {_percentile(lat, 0.99):.0f} ms, max {max(lat)} ms "
                f"over {len(lat)} messages"
            )
        if len(r.rss_kib) > 2:
            settled = [kib for t, kib in r.rss_kib if t >= r.rss_kib[-1][0] * 0.1]
            print(
                f"{r.name}: resident memory {settled[0] / 1024:.1f} MiB after warm-up, "
                f"{settled[-1] / 1024:.1f} MiB at the end, max {max(settled) / 1024:.1f} MiB, "
                f"median {statistics.median(settled) / 1024:.1f} MiB "
                f"({len(r.rss_kib)} samples over {r.rss_kib[-1][0]:.0f} s)"
            )


def main() -> None:
    """Run every scenario once and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=200, help="devices (one in four a bus)")
    parser.add_argument("--per-device", type=int, default=50, help="messages per device")
    parser.add_argument("--publishers", type=int, default=1, help="publisher processes")
    parser.add_argument("--gateways", default="1,2", help="gateway process counts to measure")
    parser.add_argument(
        "--latency-load",
        type=float,
        default=0.5,
        help="latency run at this fraction of the best gateway rate",
    )
    parser.add_argument(
        "--checkpoint-every-s",
        type=float,
        default=0.5,
        help="checkpoints.every_s of the bench deployment",
    )
    parser.add_argument("--soak-s", type=float, default=60.0, help="soak duration (0: none)")
    parser.add_argument("--timeout-s", type=float, default=300.0, help="per scenario")
    args = parser.parse_args()
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False)
    print(f"before: {uptime.stdout.strip()}")
    devices = bench_fleet(args.devices)
    started = time.monotonic()
    load = make_load(devices, args.per_device, args.publishers)
    size = statistics.mean(len(m) for job in load.jobs for _, m in job)
    print(
        f"python {platform.python_version()}, {os.cpu_count()} cores; {load.total} messages "
        f"(mean {size:.0f} bytes, {SAMPLES} samples) from {args.devices} devices, "
        f"{args.publishers} publisher(s); signed in {time.monotonic() - started:.1f} s"
    )
    with tempfile.TemporaryDirectory(prefix="voltproof-bench-") as name:
        workdir = Path(name)
        raw = run_raw(workdir, load, args.timeout_s)
        naive = [run_naive(workdir, load, devices, n, args.timeout_s) for n in (1, 2)]
        gateways = [
            run_gateway(
                workdir,
                load,
                devices,
                processes=int(n),
                rate=None,
                every_s=args.checkpoint_every_s,
                timeout_s=args.timeout_s,
            )
            for n in args.gateways.split(",")
        ]
        best = max(gateways, key=lambda r: r.rate)
        processes = int(best.name.split("x")[1])
        rate = best.rate * args.latency_load
        latency = run_gateway(
            workdir,
            load,
            devices,
            processes=processes,
            rate=rate,
            every_s=args.checkpoint_every_s,
            timeout_s=args.timeout_s,
        )
        results = [raw, *naive, *gateways, latency]
        if args.soak_s > 0:
            soak = run_gateway(
                workdir,
                None,
                devices,
                processes=processes,
                rate=rate,
                every_s=args.checkpoint_every_s,
                soak_s=args.soak_s,
                timeout_s=args.timeout_s,
            )
            soak.name = f"soak {args.soak_s:.0f} s, " + soak.name
            results.append(soak)
    report(results, raw, naive[0])
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False)
    print(f"after: {uptime.stdout.strip()}")


if __name__ == "__main__":
    main()
