"""Edge agent benchmark: devices per core in real time, signing cost, agent memory.

Run: ``.venv/bin/python -m bench.bench_agent [--devices N] [--duration S]``

1. A simulated fleet of N devices (``--physics steady`` isolates the agent's own cost,
   ``full`` adds the battery/bus physics) runs in this process against a local mosquitto for
   S seconds; CPU seconds per wall second give the devices one core carries in real time.
2. The cost of committing one message (encode + COSE sign + SQLite commit) against raw
   PyNaCl signing of the same payload bytes, measured in the same run (ratio).
3. The resident memory of one ``voltproof agent`` process after it has run a few seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nacl.bindings

from firmware_sim.agent import Batcher, ChainStore, Device, SteadySource
from firmware_sim.agent.envelope import build_payload
from firmware_sim.agent.store import ZERO_HASH, ChainHead
from firmware_sim.sim.fleet import Fleet
from firmware_sim.sim.runner import SimOptions, run
from ledger import cbor
from ledger.keys import create_key_file, generate_seed
from voltproof.broker import MosquittoBroker

REPO = Path(__file__).resolve().parents[1]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bench_fleet(workdir: Path, devices: int, duration: float, physics: str) -> dict[str, float]:
    """Run ``devices`` simulated devices for ``duration`` s; return CPU use and lag."""
    fleet = Fleet(
        name="bench",
        buses=devices // 2,
        physics=physics,  # type: ignore[arg-type]
        ramp_s=min(10.0, duration / 3),
    )
    with MosquittoBroker(workdir=workdir / f"broker-{physics}") as broker:
        options = SimOptions(
            broker_url=broker.url,
            state_dir=workdir / f"state-{physics}",
            duration_s=duration,
            progress_every_s=3600,
        )
        wall, cpu = time.perf_counter(), _cpu()
        summary = asyncio.run(run(fleet, options))
        wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    load = cpu / wall
    return {
        "devices": summary.devices,
        "cpu_per_wall": load,
        "per_core": summary.devices / load,
        "acked": summary.acked,
        "committed": summary.committed,
        "max_tick_lag_ms": summary.max_tick_lag_ms,
    }


def bench_signing(workdir: Path, n: int) -> dict[str, float]:
    """Per-message cost of Device.commit vs raw Ed25519 signing of the same payload."""
    seed = generate_seed()
    source = SteadySource(kind="pack")
    batcher = Batcher(kind="pack", period=10)
    batches = []
    for k in range(n * 10):
        batches += batcher.feed(source.read(1_767_225_600_000 + 1000 * k))
    with ChainStore(path=workdir / "sign.sqlite3", synchronous="NORMAL") as store:
        device = Device(dev="pack-b", seed=seed, store=store, batcher=batcher)
        start = time.perf_counter()
        for batch in batches:
            device.commit(batch, now_ms=0)
        commit_s = (time.perf_counter() - start) / len(batches)
    payload = cbor.encode(
        build_payload(
            dev="pack-b", head=ChainHead(next_seq=0, prev=ZERO_HASH), batch=batches[0], notice=None
        )
    )
    _, secret = nacl.bindings.crypto_sign_seed_keypair(seed)
    start = time.perf_counter()
    for _ in batches:
        nacl.bindings.crypto_sign(payload, secret)
    raw_s = (time.perf_counter() - start) / len(batches)
    return {
        "commit_us": commit_s * 1e6,
        "raw_sign_us": raw_s * 1e6,
        "ratio": commit_s / raw_s,
        "payload_bytes": len(payload),
    }


def bench_rss(workdir: Path, seconds: float, source: str) -> float:
    """Resident memory (MiB) of one agent process after ``seconds``.

    ``source`` "can" is the agent as deployed on a pack's BMS (python-can's virtual bus here,
    so no frames arrive); "sim" adds the simulated physics (numpy) to the same process.
    """
    key = workdir / f"agent-{source}.key"
    create_key_file(key, name="pack-rss")
    config = workdir / f"agent-{source}.toml"
    source_toml = (
        '[source]\ntype = "can"\ncan_interface = "virtual"\ncan_channel = "bench"\n'
        if source == "can"
        else '[source]\ntype = "sim"\n'
    )
    with MosquittoBroker(workdir=workdir / f"broker-rss-{source}") as broker:
        config.write_text(
            f'device_id = "pack-rss"\nkind = "pack"\nkey_file = "{key}"\n'
            f'state_file = "{workdir}/agent-{source}.sqlite3"\nlog_level = "ERROR"\n'
            f'[mqtt]\nurl = "{broker.url}"\n{source_toml}',
            encoding="utf-8",
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "voltproof", "agent", "--config", str(config)], cwd=REPO
        )
        try:
            time.sleep(seconds)
            status = Path(f"/proc/{process.pid}/status").read_text(encoding="utf-8")
        finally:
            process.terminate()
            process.wait(20)
    kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return kib / 1024


def main(argv: list[str] | None = None) -> int:
    """Run the three measurements and print them."""
    parser = argparse.ArgumentParser(
        prog="bench.bench_agent",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--devices", type=int, default=2000, help="simulated devices (even)")
    parser.add_argument("--duration", type=float, default=40.0, help="seconds per fleet run")
    parser.add_argument("--physics", choices=["steady", "full", "both"], default="both")
    parser.add_argument("--messages", type=int, default=2000, help="messages for signing cost")
    parser.add_argument("--rss-seconds", type=float, default=8.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        sign = bench_signing(workdir, args.messages)
        print(
            f"signing: commit {sign['commit_us']:.0f} us/message (encode + COSE + SQLite), "
            f"raw PyNaCl {sign['raw_sign_us']:.0f} us, ratio {sign['ratio']:.2f}, "
            f"payload {sign['payload_bytes']:.0f} B"
        )
        for source in ("can", "sim"):
            rss = bench_rss(workdir, args.rss_seconds, source)
            print(f"agent process ({source} source): resident memory {rss:.1f} MiB")
        kinds = ["steady", "full"] if args.physics == "both" else [args.physics]
        for physics in kinds:
            fleet = bench_fleet(workdir, args.devices, args.duration, physics)
            print(
                f"fleet ({physics} physics): {fleet['devices']:.0f} devices, "
                f"{fleet['cpu_per_wall']:.2f} CPU s per wall s -> {fleet['per_core']:.0f} "
                f"devices per core in real time; committed {fleet['committed']:.0f}, acked "
                f"{fleet['acked']:.0f}, max tick lag {fleet['max_tick_lag_ms']:.0f} ms"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
