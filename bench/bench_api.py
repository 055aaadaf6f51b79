"""API benchmark: server time of proofs, time series and reports over a large store.

Seeds a deployment through the REAL gateway pipeline (signed messages, verified, appended to
the Merkle log, samples stored), signs and anchors a checkpoint, then measures server time
(the API's ``Server-Timing`` header, in-process over ASGI) for:

- an inclusion proof of a random message;
- one asset-day of a time series (raw page and chart buckets);
- a one-year condition report as the endpoint serves it (the bundle's messages read from the
  store and decoded once, ``gateway.evidence.extract_payloads``, then ``compute_report``);

and, in-process, the same report the old way (full bundle extraction with proofs,
``build_bundle``, ``report_of``: every signature checked again), which must be equal; then
the size of a bundle per asset-day and the time to verify an asset-year bundle offline.
Every figure is also given as a ratio to a baseline measured in the same run: a bare SQLite
primary-key lookup of one leaf (``SELECT cose FROM leaves WHERE leaf_index = ?``).

    .venv/bin/python -m bench.bench_api --messages 100000 --devices 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from api.access import Role
from api.accessdb import AccessDb
from api.app import create_app
from api.routes.evidence import report_of
from api.settings import Deployment, load_deployment
from gateway.evidence import extract_evidence
from gateway.pipeline import Pipeline
from gateway.registry import DeviceSpec, Registry
from gateway.store import AnchorStatus, CheckpointRecord, SqliteStore
from gateway.verification import Incoming, Policy
from ledger.anchors.base import AnchorRequest
from ledger.anchors.checkers import LocalAnchorChecker
from ledger.anchors.local import LocalAnchorBackend
from ledger.bundle import build_bundle, parse_bundle
from ledger.checkpoint import Checkpoint, log_id, sign_checkpoint
from ledger.keys import create_key_file, generate_seed, load_key_file, public_key_from_seed
from ledger.message import message_hash, sign_message
from ledger.report import ConditionReport
from ledger.telemetry import BusSample, PackSample, TelemetryBatch, encode_batch
from ledger.verify import verify_bundle

ORIGIN = "voltproof.example/bench"
T0 = 1_735_689_600_000  # 2025-01-01T00:00:00Z
DAY = 86_400_000
BATCH = 1000


def _pack(i: int, k: int) -> PackSample:
    soc = 0.2 + 0.7 * abs(((i * 30 + k) % 1440) / 720 - 1)
    return PackSample(
        voltage_v=600 + 60 * soc, current_a=100.0 if (i % 48) < 40 else -150.0, soc=round(soc, 3),
        cell_v_max=3.3 + 0.1 * soc, cell_v_max_pos=3, cell_v_min=3.28 + 0.1 * soc,
        cell_v_min_pos=90, temp_max_c=30.0 + (k % 7), temp_max_pos=2, temp_min_c=24.0,
        temp_min_pos=5, insulation_ohm=3_000_000.0, alarm_level=0, alarm_flags=0,
        soh_capacity=max(0.5, 1.0 - i * 1e-6), resistance_growth=1.0 + i * 1e-6, r0_ohm=0.05,
        capacity_ah=540.0, energy_in_wh=1_000_000 + 500 * i, energy_out_wh=950_000 + 480 * i,
        ah_in=2000.0 + i, ah_out=1900.0 + i, charge_state=0 if (i % 48) < 40 else 1,
    )  # fmt: skip


def _bus(i: int, k: int) -> BusSample:
    return BusSample(
        speed_mps=8.0 + k % 6, odometer_m=1_000_000.0 + 10_000 * i + 300 * k, lat_deg=22.5,
        lon_deg=114.0, vehicle_state=1, charge_state=0, traction_power_w=40_000.0,
        aux_power_w=5_000.0, ambient_c=20.0, at_stop=0,
    )  # fmt: skip


def _batch(device: str, i: int, t_ms: int, *, samples: int, dt_ms: int) -> TelemetryBatch:
    if device.startswith("pack"):
        packs = tuple(_pack(i, k) for k in range(samples))
        return TelemetryBatch(kind="pack", t_ms=t_ms, dt_ms=dt_ms, samples=packs)
    buses = tuple(_bus(i, k) for k in range(samples))
    return TelemetryBatch(kind="bus", t_ms=t_ms, dt_ms=dt_ms, samples=buses)


async def seed(workdir: Path, *, messages: int, devices: int, samples: int, dt_ms: int) -> int:
    """Enrol ``devices`` (half packs) and run ``messages`` signed messages through the pipeline."""
    (workdir / "keys").mkdir(parents=True)
    (workdir / "gateway").mkdir()
    (workdir / "gateway.toml").write_text(
        f'origin = "{ORIGIN}"\ndata_dir = "gateway"\n', encoding="utf-8"
    )
    create_key_file(workdir / "keys/gateway.key", name=ORIGIN)
    create_key_file(workdir / "keys/operator.key", name="operator")
    settings = load_deployment(workdir=workdir).gateway
    ids = [f"{'pack' if n % 2 == 0 else 'bus'}-{n}" for n in range(devices)]
    seeds = {d: generate_seed() for d in ids}
    step = samples * dt_ms
    per_device = messages // devices
    async with await SqliteStore.open(settings.db_path) as store:
        registry = Registry(store=store, operator=load_key_file(settings.operator_key_file),
                            clock_ms=lambda: T0 - DAY)  # fmt: skip
        await registry.enroll([
            DeviceSpec(device_id=d, kind="pack" if d.startswith("pack") else "bus",
                       fleet="fleet-1", public_key=public_key_from_seed(seeds[d]))
            for d in ids
        ])  # fmt: skip
        pipeline = Pipeline(store=store, policy=Policy())
        prev = dict.fromkeys(ids, bytes(32))
        pending: list[Incoming] = []
        for i in range(per_device):
            t_ms = T0 + i * step
            for d in ids:
                batch = _batch(d, i, t_ms, samples=samples, dt_ms=dt_ms)
                payload = {"v": 1, "dev": d, "seq": i, "prev": prev[d], "t": t_ms,
                           **encode_batch(batch)}  # fmt: skip
                data = sign_message(payload, seed=seeds[d])
                prev[d] = message_hash(data)
                pending.append(Incoming(topic=f"voltproof/fleet-1/{d}/telemetry", payload=data,
                                        received_at_ms=t_ms + step, historical=True))  # fmt: skip
            if len(pending) >= BATCH or i == per_device - 1:
                await pipeline.process(pending)
                pending = []
        key = load_key_file(settings.key_file)
        head = await store.log_head()
        note = sign_checkpoint(Checkpoint(origin=ORIGIN, size=head.size, root=head.root),
                               name=key.name, seed=key.seed)  # fmt: skip
        await store.add_checkpoint(
            CheckpointRecord(size=head.size, root=head.root, note=note, signed_at_ms=T0)
        )
        async with await LocalAnchorBackend.open(
            settings.data_dir / "anchors.db", seed=key.seed
        ) as anchors:
            receipt = await anchors.submit(
                AnchorRequest(log_id=log_id(ORIGIN), tree_size=head.size, root=head.root)
            )
        await store.record_anchor(size=head.size, backend="local", state=AnchorStatus.FINAL,
                                  receipt=receipt.to_json(), now_ms=T0)  # fmt: skip
    access = await AccessDb.open(settings.data_dir / "api.db")
    try:
        key_text = (await access.create_key(name="bench", role=Role.OPERATOR, fleet=None,
                                            now_ms=T0)).secret  # fmt: skip
    finally:
        await access.close()
    (workdir / "bench.key").write_text(key_text, encoding="utf-8")
    return head.size


def warm_cache(path: Path) -> None:
    """Read ``path`` once, so every figure is measured with the store in the page cache.

    A machine that reclaims idle page cache would otherwise make the first requests of a run
    on a store seeded earlier (``--existing``) wait on the disk.
    """
    with path.open("rb") as file:
        while file.read(1 << 20):
            pass


def p99(values: list[float]) -> float:
    """The 99th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def server_ms(client: TestClient, url: str, headers: dict[str, str]) -> tuple[float, bytes]:
    """Server time (ms) from the Server-Timing header, and the body."""
    response = client.get(url, headers=headers)
    response.raise_for_status()
    timing = response.headers["server-timing"]
    return float(timing.split("dur=")[1]), response.content


def repeat(count: int, action: Callable[[], float]) -> list[float]:
    """``action`` run ``count`` times; its results."""
    return [action() for _ in range(count)]


async def full_bundle_report(
    deployment: Deployment, from_ms: int, to_ms: int
) -> tuple[float, ConditionReport]:
    """Max ms of 3 reports made from a full bundle (proofs, signatures), and the report."""
    operator_key = load_key_file(deployment.gateway.operator_key_file).public_key
    times = []
    async with await SqliteStore.open(deployment.gateway_db) as store:
        for _ in range(3):
            t = time.perf_counter()
            extraction = await extract_evidence(
                store, asset_id="pack-0", from_ms=from_ms, to_ms=to_ms,
                operator_key=operator_key, anchor_db=deployment.anchor_db,
            )  # fmt: skip
            report = report_of(build_bundle(extraction.bundle_input))
            report.to_dict()
            times.append((time.perf_counter() - t) * 1000)
    return max(times), report


def main() -> None:
    """Seed, measure, print figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=100_000, help="messages to seed")
    parser.add_argument("--devices", type=int, default=4, help="devices (half packs)")
    parser.add_argument("--samples", type=int, default=30, help="samples per message")
    parser.add_argument("--dt-ms", type=int, default=60_000, help="sample period (ms)")
    parser.add_argument("--repeat", type=int, default=200, help="requests per fast figure")
    parser.add_argument("--workdir", type=Path, help="keep the deployment here")
    parser.add_argument(
        "--existing", action="store_true", help="measure the deployment seeded in --workdir"
    )
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="voltproof-bench-")) / "deploy"
    started = time.perf_counter()
    if args.existing:
        with sqlite3.connect(f"file:{workdir / 'gateway/gateway.db'}?mode=ro", uri=True) as db:
            size = int(db.execute("SELECT size FROM merkle_size").fetchone()[0])
    else:
        size = asyncio.run(seed(workdir, messages=args.messages, devices=args.devices,
                                samples=args.samples, dt_ms=args.dt_ms))  # fmt: skip
    seconds = time.perf_counter() - started
    step = args.samples * args.dt_ms
    span_days = (args.messages // args.devices) * step / DAY
    how = "measured as found" if args.existing else "through the pipeline"
    print(f"seeded {size} leaves ({args.messages} messages, {args.devices} devices, "
          f"{span_days:.0f} days of {args.samples}-sample messages every {step // 1000} s) "
          f"{how} in {seconds:.0f} s "
          f"({args.messages / seconds:.0f} msg/s)")  # fmt: skip
    deployment = load_deployment(workdir=workdir)
    warm_cache(deployment.gateway_db)
    rng = random.Random(7)
    with sqlite3.connect(f"file:{deployment.gateway_db}?mode=ro", uri=True) as db:

        def lookup() -> float:
            t = time.perf_counter()
            db.execute("SELECT cose FROM leaves WHERE leaf_index = ?",
                        (rng.randrange(size),)).fetchone()  # fmt: skip
            return (time.perf_counter() - t) * 1000

        base = p99(repeat(args.repeat * 5, lookup))
    headers = {"Authorization": f"Bearer {(workdir / 'bench.key').read_text(encoding='utf-8')}"}
    year = min(span_days, 365) * DAY
    rows: list[tuple[str, float, str]] = []
    with TestClient(create_app(deployment)) as client:

        def proof() -> float:
            return server_ms(client, f"/api/proofs/inclusion?leaf={rng.randrange(size)}", headers)[
                0
            ]

        def day_window() -> tuple[int, int]:
            start = T0 + rng.randrange(max(1, int(span_days) - 1)) * DAY
            return start, start + DAY

        def raw_day() -> float:
            a, b = day_window()
            url = f"/api/assets/pack-0/samples?fields=soc,temp_max_c&from={a}&to={b}&limit=5000"
            return server_ms(client, url, headers)[0]

        def chart_day() -> float:
            a, b = day_window()
            url = f"/api/assets/pack-0/buckets?field=soc&from={a}&to={b}&points=500"
            return server_ms(client, url, headers)[0]

        rows.append(("inclusion proof", p99(repeat(args.repeat, proof)), "p99"))
        rows.append(
            ("1 asset-day raw samples (2 fields)", p99(repeat(args.repeat, raw_day)), "p99")
        )
        rows.append(("1 asset-day chart, 500 buckets", p99(repeat(args.repeat, chart_day)), "p99"))
        report_url = f"/api/assets/pack-0/report?from={T0}&to={T0 + int(year)}"
        reports = repeat(5, lambda: server_ms(client, report_url, headers)[0])
        rows.append((f"{year / DAY:.0f}-day condition report", max(reports),
                     f"max of 5, median {sorted(reports)[2]:.0f}"))  # fmt: skip
        served = json.dumps(client.get(report_url, headers=headers).json(), sort_keys=True,
                            separators=(",", ":"))  # fmt: skip
        full_ms, full = asyncio.run(full_bundle_report(deployment, T0, T0 + int(year)))
        if full.to_json() != served:
            raise SystemExit("the served report differs from the full-bundle report")
        rows.append((f"{year / DAY:.0f}-day report via full bundle", full_ms,
                     "max of 3, in-process, equal"))  # fmt: skip
        a, b = T0 + DAY, T0 + 2 * DAY
        # format=1: the same bundle the baseline measured (v2 is measured by bench_bundle_v2)
        day = f"/api/assets/pack-0/bundle?from={a}&to={b}&format=1"
        day_bundle = server_ms(client, day, headers)[1]
        year_bundle = server_ms(
            client, f"/api/assets/pack-0/bundle?from={T0}&to={T0 + int(year)}&format=1", headers
        )[1]
    gateway_key = load_key_file(deployment.gateway.key_file).verifier_key
    t = time.perf_counter()
    anchors = LocalAnchorChecker(gateway_verifier_key=gateway_key)
    result = verify_bundle(
        parse_bundle(year_bundle), gateway_verifier_key=gateway_key, anchors=anchors
    )
    verify_s = time.perf_counter() - t
    print(f"baseline: SQLite primary-key lookup of one leaf, p99 {base:.3f} ms")
    print(f"{'figure':40} {'server ms':>10} {'x baseline':>12}")
    for name, value, how in rows:
        print(f"{name:40} {value:10.2f} {value / base:12.0f}  ({how})")
    print(
        f"bundle size per asset-day (pack-0 and its chain ends): {len(day_bundle) / 1024:.0f} KiB"
    )
    print(f"{year / DAY:.0f}-day bundle: {len(year_bundle) / 2**20:.1f} MiB, {result.messages} "
          f"messages, verified offline in {verify_s:.1f} s "
          f"({verify_s / (year / DAY) * 365:.1f} s per asset-year)")  # fmt: skip


if __name__ == "__main__":
    main()
