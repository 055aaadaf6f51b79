"""Proof and series latency of a big log, PostgreSQL against SQLite, in ONE run.

Builds one log of ``--messages`` telemetry leaves (plus the devices' enrolments) and reads it
through both backends' readers:

- **Build, SQLite**: :meth:`SqliteStore.commit` (the gateway's own write path: chain
  decisions, leaf indexes, Merkle node rows, sample blocks, chain heads) in batches of
  ``--batch`` candidates. The candidates skip what happens before the store (MQTT, signature
  checks: measured in "Gateway" and "PostgreSQL store"): each is a message of ``--devices``
  packs with 10 real samples and a proper hash chain, but its bytes are a real signed
  message's bytes with the leaf number written over the first 8, not a signature anybody
  could check (the store does not verify; ``voltproof audit`` would refuse these leaves).
- **Build, PostgreSQL**: that SQLite store copied into a database of a PostgreSQL cluster by
  ``voltproof migrate``'s code (:func:`gateway.store.postgresql.copy.copy_sqlite_to_postgres`:
  ``COPY`` into the store's schema, the Merkle node keys' generated columns recomputed by
  PostgreSQL), then ``VACUUM ANALYZE`` (what autovacuum does after a load that size). So both
  backends hold the same rows.
- **Reads**, each backend through the reader the API and bundles use (the read-only SQLite
  reader; a pooled :class:`PostgresStore`), the same random inputs for both: a leaf by index
  (a primary-key lookup: the floor each backend pays per statement), an inclusion proof of a
  random leaf and a consistency proof from a random size, both to the full size, one day of
  one pack's samples (every field) and one year of one pack's state of charge.

Each device sends one message of 10 samples (1 s apart) every ``year / (messages / devices)``,
so the log spans one year whatever its size. The SQLite log is kept in ``--workdir``: a second
run on the same folder and size measures again without building it. The PostgreSQL cluster
(``voltproof.postgres_cluster``, a throwaway one in a temporary folder) gets its copy anew in
every run.

    .venv/bin/python -m bench.bench_store_scale --messages 10000000 --workdir DIR
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import platform
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from gateway.registry import Registry
from gateway.store import Candidate, SqliteStore, StoreReader, open_reader
from gateway.store.postgresql import PostgresStore
from gateway.store.postgresql.copy import copy_sqlite_to_postgres, open_source
from ledger.keys import SigningKey, generate_seed, public_key_from_seed
from ledger.message import decode_message
from ledger.telemetry import TelemetryColumns, decode_columns
from tests.support.gateway_devices import FakeDevice
from voltproof.postgres_cluster import PostgresCluster

YEAR_MS = 365 * 24 * 3600 * 1000
DAY_MS = 24 * 3600 * 1000
T0_MS = 1_735_689_600_000
"""2025-01-01T00:00:00Z: the first message of every device."""
FLEET = "fleet-scale"
DATABASE = "scale"
YEAR_FIELD = "soc"


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """The log to build: ``messages`` leaves over ``devices`` packs, one year long."""

    messages: int
    devices: int

    @property
    def per_device(self) -> int:
        return -(-self.messages // self.devices)

    @property
    def period_ms(self) -> int:
        return YEAR_MS // self.per_device

    def device(self, number: int) -> str:
        return f"pack-{number:05d}"


def _template(device: FakeDevice) -> tuple[bytes, TelemetryColumns]:
    data = device.message(t_ms=T0_MS, n=10)
    return data, decode_columns(decode_message(data).payload)


def _candidates(
    plan: Plan,
    *,
    start: int,
    stop: int,
    heads: list[bytes],
    template: bytes,
    columns: TelemetryColumns,
) -> list[Candidate]:
    """Messages ``start`` to ``stop`` (message i: device i % D, seq i // D), chained on
    ``heads`` (each device's last message hash, updated)."""
    batch = []
    for number in range(start, stop):
        device, seq = number % plan.devices, number // plan.devices
        t_ms = T0_MS + seq * plan.period_ms + device * 7
        cose = number.to_bytes(8, "big") + template[8:]
        digest = hashlib.sha256(cose).digest()
        batch.append(
            Candidate(
                position=number - start, topic=f"voltproof/{FLEET}/{plan.device(device)}/telemetry",
                device_id=plan.device(device), seq=seq, prev=heads[device], t_ms=t_ms,
                received_at_ms=t_ms + 10_500, historical=False, cose=cose, message_hash=digest,
                batch=replace(columns, t_ms=t_ms),
            )
        )  # fmt: skip
        heads[device] = digest
    return batch


async def build_sqlite(path: Path, plan: Plan, *, batch: int) -> float:
    """Enrol the devices and commit ``plan.messages`` messages; seconds spent committing."""
    seed = generate_seed()
    operator = SigningKey(name="operator.scale", seed=seed, public_key=public_key_from_seed(seed))
    devices = [
        FakeDevice(device_id=plan.device(n), fleet=FLEET, kind="pack") for n in range(plan.devices)
    ]
    template, columns = _template(FakeDevice(device_id="pack-template", fleet=FLEET))
    store = await SqliteStore.open(path)
    spent = 0.0
    try:
        await Registry(store=store, operator=operator).enroll([d.spec() for d in devices])
        heads = [bytes(32)] * plan.devices
        for start in range(0, plan.messages, batch):
            candidates = _candidates(
                plan, start=start, stop=min(start + batch, plan.messages), heads=heads,
                template=template, columns=columns,
            )  # fmt: skip
            began = time.perf_counter()
            outcomes = await store.commit(candidates, [])
            spent += time.perf_counter() - began
            if not all(hasattr(outcome, "leaf_index") for outcome in outcomes):
                raise RuntimeError(f"a candidate of batch {start} was not appended: {outcomes[:3]}")
            done = start + len(candidates)
            if done % 1_000_000 < batch or done == plan.messages:
                print(f"  sqlite: {done:,} messages, {done / spent:,.0f}/s committing", flush=True)
    finally:
        await store.close()
    return spent


@dataclass(slots=True, kw_only=True)
class Figures:
    """One measurement on one backend: call times in microseconds."""

    times_us: list[float]

    @property
    def p50(self) -> float:
        return statistics.median(self.times_us)

    @property
    def p99(self) -> float:
        ordered = sorted(self.times_us)
        return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


async def _timed(calls: Sequence[Callable[[], Awaitable[Any]]]) -> Figures:
    times = []
    for call in calls:
        began = time.perf_counter()
        await call()
        times.append((time.perf_counter() - began) * 1e6)
    return Figures(times_us=times)


@dataclass(frozen=True, slots=True, kw_only=True)
class Inputs:
    """The random inputs every backend is asked the same of."""

    size: int
    leaves: list[int]
    sizes: list[int]
    days: list[tuple[str, int]]
    years: list[str]


def inputs(plan: Plan, size: int, *, repeat: int, series: int, years: int, seed: int) -> Inputs:
    rng = random.Random(seed)
    return Inputs(
        size=size,
        leaves=[rng.randrange(size) for _ in range(repeat)],
        sizes=[rng.randrange(1, size) for _ in range(repeat)],
        days=[
            (plan.device(rng.randrange(plan.devices)), T0_MS + rng.randrange(364) * DAY_MS)
            for _ in range(series)
        ],
        years=[plan.device(rng.randrange(plan.devices)) for _ in range(years)],
    )


async def measure(reader: StoreReader, given: Inputs) -> dict[str, Figures]:
    """Every measurement on ``reader``, in order, each after one untimed warm-up call."""
    size = given.size

    async def day(device: str, t: int) -> int:
        got = await reader.sample_window("pack", device, t_from=t, t_to=t + DAY_MS)
        return len(got)

    async def year(device: str) -> int:
        got = await reader.sample_window(
            "pack", device, t_from=T0_MS, t_to=T0_MS + YEAR_MS, fields=[YEAR_FIELD]
        )
        return len(got)

    suites: dict[str, list[Callable[[], Awaitable[Any]]]] = {
        "leaf by index (primary key)": [partial(reader.leaf, i) for i in given.leaves],
        "inclusion proof": [partial(reader.inclusion_proof, i, size) for i in given.leaves],
        "consistency proof": [partial(reader.consistency_proof, s, size) for s in given.sizes],
        "series: one pack, one day": [partial(day, d, t) for d, t in given.days],
        f"series: one pack, one year ({YEAR_FIELD})": [partial(year, d) for d in given.years],
    }
    found = {}
    for name, calls in suites.items():
        await calls[0]()
        found[name] = await _timed(calls)
    return found


def _us(value: float) -> str:
    return f"{value / 1000:,.1f} ms" if value >= 10_000 else f"{value:,.0f} us"


def report(sqlite: dict[str, Figures], postgresql: dict[str, Figures]) -> None:
    print(
        "| measurement | calls | SQLite p50 | SQLite p99 | PostgreSQL p50 | PostgreSQL p99 "
        "| PG/SQLite p50 |\n|---|---:|---:|---:|---:|---:|---:|"
    )
    for name, lite in sqlite.items():
        pg = postgresql[name]
        print(
            f"| {name} | {len(lite.times_us)} | {_us(lite.p50)} | {_us(lite.p99)} "
            f"| {_us(pg.p50)} | {_us(pg.p99)} | {pg.p50 / lite.p50:.2f}x |"
        )


async def _database_bytes(url: str) -> int:
    import psycopg

    async with await psycopg.AsyncConnection.connect(url) as db:
        cursor = await db.execute("SELECT pg_database_size(current_database())")
        row = await cursor.fetchone()
    return 0 if row is None else int(row[0])


async def _analyze(url: str) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as db:
        await db.execute("VACUUM ANALYZE")


async def run(args: argparse.Namespace) -> None:
    plan = Plan(messages=args.messages, devices=args.devices)
    db = args.workdir / f"scale-{plan.messages}-{plan.devices}.db"
    print(
        f"{platform.node()} {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; "
        f"{plan.messages:,} messages from {plan.devices} packs, one every "
        f"{plan.period_ms / 1000:,.0f} s each, over one year",
        flush=True,
    )
    if not db.is_file():
        building = await asyncio.to_thread(_fresh, db.with_suffix(".partial"))
        began = time.perf_counter()
        committing = await build_sqlite(building, plan, batch=args.batch)
        await asyncio.to_thread(building.rename, db)
        print(
            f"built SQLite in {time.perf_counter() - began:,.0f} s "
            f"({plan.messages / committing:,.0f} messages/s in commit), "
            f"{db.stat().st_size / 1e9:.2f} GB",
            flush=True,
        )
    cluster = await asyncio.to_thread(PostgresCluster.start)
    try:
        url = await asyncio.to_thread(cluster.ensure_database, DATABASE)
        async with await open_reader(db) as lite:
            size = (await lite.log_head()).size
        began = time.perf_counter()
        source = open_source(db)
        try:
            counts = await copy_sqlite_to_postgres(source, url)
        finally:
            source.close()
        copied = time.perf_counter() - began
        await _analyze(url)
        print(
            f"copied into PostgreSQL in {copied:,.0f} s ({sum(counts.values()):,} rows), "
            f"VACUUM ANALYZE in {time.perf_counter() - began - copied:,.0f} s, "
            f"{await _database_bytes(url) / 1e9:.2f} GB",
            flush=True,
        )
        given = inputs(
            plan, size, repeat=args.repeat, series=args.series, years=args.years, seed=args.seed
        )
        print(f"log size {size:,}; load {os.getloadavg()[0]:.1f} before the reads", flush=True)
        async with await open_reader(db) as lite:
            sqlite = await measure(lite, given)
        async with await PostgresStore.open(url, pool_size=2) as pg:
            postgresql = await measure(pg, given)
        print(f"load {os.getloadavg()[0]:.1f} after the reads\n")
        report(sqlite, postgresql)
    finally:
        await asyncio.to_thread(cluster.stop)


def _fresh(path: Path) -> Path:
    """``path`` with nothing left of an earlier, interrupted build."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    for stale in path.parent.glob(f"{path.name}*"):
        stale.unlink()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000, help="telemetry leaves")
    parser.add_argument("--devices", type=int, default=100, help="packs sending them")
    parser.add_argument("--batch", type=int, default=10_000, help="candidates per commit")
    parser.add_argument("--repeat", type=int, default=2000, help="calls per proof measurement")
    parser.add_argument("--series", type=int, default=200, help="one-day series calls")
    parser.add_argument("--years", type=int, default=10, help="one-year series calls")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--workdir", type=Path, required=True, help="where the logs are built and kept"
    )
    args = parser.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
