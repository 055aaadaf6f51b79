"""Gateway pipeline throughput against a naive baseline, measured in the same run.

Messages: realistic pack telemetry (10 samples at 1 Hz, every column of ``ledger.telemetry``)
from ``--devices`` devices, each a proper hash chain, signed with ``ledger.message``.

- **pipeline**: ``gateway.pipeline.Pipeline.process`` in batches of ``--batch``: strict decode,
  every check of ``gateway.verification``, signatures in a 2-thread pool, schema decoding,
  chain decisions, and ONE transaction per batch holding leaves, samples, Merkle nodes, chain
  state (``synchronous=FULL``).
- **naive**: what a first version would do: ``ledger.message.verify_message`` per message with
  PyNaCl, then one ``executemany`` of the raw messages per batch into a plain SQLite table
  (WAL, ``synchronous=FULL``), no Merkle log, no samples, no chain checks.

The ratio is pipeline msgs/s / naive msgs/s (above 1.0: the pipeline is faster despite
doing more). The pipeline's three stages are timed apart: ``authorize`` (strict COSE decoding,
topic and ids, registry lookup), ``verify`` (signatures, schema decoding with
``ledger.telemetry.decode_columns``, clock; worker threads) and ``commit`` (chain decisions,
leaves, 10 sample rows per message, Merkle nodes, one ``synchronous=FULL`` transaction).

    .venv/bin/python -m bench.bench_pipeline [--messages N] [--batch B] [--devices D]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sqlite3
import tempfile
import time
from pathlib import Path

from gateway.pipeline import OutcomeKind, Pipeline
from gateway.registry import Registry
from gateway.store import SqliteStore
from gateway.verification import Incoming, Policy
from ledger.keys import SigningKey, generate_seed, public_key_from_seed
from ledger.message import verify_message
from tests.support.gateway_devices import T0_MS, FakeDevice


def make_messages(devices: int, count: int) -> tuple[list[FakeDevice], list[Incoming]]:
    """``count`` signed messages round-robin over ``devices`` chains."""
    fleet = [FakeDevice(device_id=f"pack-{i:04d}") for i in range(devices)]
    incoming = []
    for k in range(count):
        dev = fleet[k % devices]
        incoming.append(dev.incoming(dev.message()))
    return fleet, incoming


async def run_pipeline(
    folder: Path, fleet: list[FakeDevice], batches: list[list[Incoming]]
) -> tuple[float, dict[str, float]]:
    """Seconds to process every batch through a fresh gateway store, and seconds per stage."""
    seed = generate_seed()
    operator = SigningKey(name="operator", seed=seed, public_key=public_key_from_seed(seed))
    stages = dict.fromkeys(("authorize", "verify", "commit"), 0.0)
    async with await SqliteStore.open(folder / "gateway.db") as store:
        # Enrolled when the messages' clock starts, so no message predates its enrolment.
        registry = Registry(store=store, operator=operator, clock_ms=lambda: T0_MS)
        await registry.enroll([d.spec() for d in fleet])
        pipeline = Pipeline(store=store, policy=Policy())
        started = time.perf_counter()
        for batch in batches:
            t0 = time.perf_counter()
            authorized = await pipeline.authorize(batch)
            t1 = time.perf_counter()
            verified = await pipeline.verify(authorized)
            t2 = time.perf_counter()
            outcomes = await pipeline.commit(verified)
            stages["authorize"] += t1 - t0
            stages["verify"] += t2 - t1
            stages["commit"] += time.perf_counter() - t2
            assert all(o.kind is OutcomeKind.ACCEPTED for o in outcomes), outcomes[0]
        return time.perf_counter() - started, stages


def run_naive(folder: Path, fleet: list[FakeDevice], batches: list[list[Incoming]]) -> float:
    """Seconds to verify each message with PyNaCl and insert each batch with executemany."""
    keys = {d.device_id: d.public_key for d in fleet}
    db = sqlite3.connect(folder / "naive.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(
        "CREATE TABLE messages (id INTEGER PRIMARY KEY, device TEXT, seq INTEGER, cose BLOB)"
    )
    started = time.perf_counter()
    for batch in batches:
        rows = []
        for item in batch:
            device = item.topic.split("/")[2]
            payload = verify_message(item.payload, public_key=keys[device])
            rows.append((device, payload["seq"], item.payload))
        db.execute("BEGIN")
        db.executemany("INSERT INTO messages (device, seq, cose) VALUES (?, ?, ?)", rows)
        db.execute("COMMIT")
    seconds = time.perf_counter() - started
    db.close()
    return seconds


def main() -> None:
    """Measure both paths and print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--devices", type=int, default=100)
    args = parser.parse_args()
    fleet, incoming = make_messages(args.devices, args.messages)
    batches = [incoming[i : i + args.batch] for i in range(0, len(incoming), args.batch)]
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        naive = run_naive(folder, fleet, batches)
        pipeline, stages = asyncio.run(run_pipeline(folder, fleet, batches))
    size = len(incoming[0].payload)
    print(f"python {platform.python_version()} on {platform.machine()}; "
          f"{args.messages} messages of {size} bytes (10 samples), batches of {args.batch}, "
          f"{args.devices} devices")  # fmt: skip
    print(f"naive    (verify + executemany): {args.messages / naive:10.0f} msgs/s")
    print(f"pipeline (full checks + log):    {args.messages / pipeline:10.0f} msgs/s")
    print(f"ratio pipeline / naive: {naive / pipeline:.2f}")
    per_message = ", ".join(
        f"{name} {seconds / args.messages * 1e6:.0f} us" for name, seconds in stages.items()
    )
    print(f"pipeline stages per message: {per_message}")


if __name__ == "__main__":
    main()
