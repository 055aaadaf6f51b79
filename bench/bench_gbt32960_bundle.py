"""GB/T 32960 frames as evidence: v2 bundle size and offline verification cost per frame,
against a native COSE device's bundle built and verified in the same run.

One deployment (SQLite store, local anchor table): a 2016 terminal and a 2025 terminal each
send ``--frames`` real-time frames (192 cell voltages, 32 probe temperatures, as in
``bench.bench_gbt32960``) through the real listener over TCP; a native pack sends
``--frames`` 10-sample messages through the real pipeline. A checkpoint with its device index
line is signed and anchored; then, per device, the real builder makes an "up to now"
``voltproof-bundle/2`` and the offline verifier checks it against the anchor export.

- **bundle size per 1,000 messages**: the bundle file's bytes / messages x 1,000 (inclusion
  proofs, registry entries and the anchor export included);
- **verify**: CPU and wall time of ``verify_bundle_v2`` per message (a 2025 frame's SM2
  check runs in the verifier's one thread; native Ed25519 signatures use its default
  ``workers`` threads, so its CPU time is the fair figure).

    .venv/bin/python -m bench.bench_gbt32960_bundle [--frames N]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import tempfile
import time
from pathlib import Path

from bench.bench_gbt32960 import START_MS, _values
from bench.bench_pipeline import make_messages
from firmware_sim.gbt32960 import encode
from gateway.config import GbtSettings
from gateway.evidence_v2 import extract_bundle_v2
from gateway.gbt32960 import GbtListener
from gateway.pipeline import OutcomeKind, Pipeline
from gateway.registry import DeviceSpec, Registry
from gateway.store import SqliteStore
from gateway.verification import Policy
from ledger import gbt32960 as gbt
from ledger.anchors.evm_checker import anchor_checker
from ledger.bundle_v2 import BundleV2, read_bundle
from ledger.keys import load_key_file
from ledger.message import decode_message
from ledger.verify_v2 import V2Report, verify_bundle_v2
from tests.support.evidence_world import EvidenceWorld, sign_and_anchor
from tests.support.gateway_world import write_deployment
from tests.support.store_world import offline_broker

VIN = {2016: "LVPBUNDLE20160001", 2025: "LVPBUNDLE20250001"}


def gateway_clock(frames: int) -> int:
    """The listener's clock: a minute after the last frame's collection time."""
    return START_MS + 10_000 * frames + 60_000


async def populate(world: EvidenceWorld, frames: int) -> str:
    """Terminals and a native pack logged, signed and anchored; returns the pack's id."""
    settings = world.deployment.settings
    key = encode.TerminalKey.generate()
    fleet, incoming = make_messages(1, frames)
    first_ms = min(int(decode_message(m.payload).payload["t"]) for m in incoming)
    async with await SqliteStore.open(settings.db_path) as store:
        registry = Registry(
            store=store, operator=load_key_file(settings.operator_key_file),
            clock_ms=lambda: first_ms,
        )  # fmt: skip
        await registry.enroll([
            *(d.spec() for d in fleet),
            *(DeviceSpec(
                device_id=vin, kind="bus", fleet="fleet-a", public_key=gbt.placeholder_key(vin),
                terminal=gbt.Terminal(vin=vin, chip="SE-BENCH", sm2=key.public),
            ) for vin in VIN.values()),
        ])  # fmt: skip
        pipeline = Pipeline(store=store, policy=Policy())
        for start in range(0, len(incoming), 200):
            outcomes = await pipeline.process(incoming[start : start + 200])
            assert all(o.kind is OutcomeKind.ACCEPTED for o in outcomes), outcomes[0]
        listener_settings = GbtSettings(enabled=True, host="127.0.0.1", port=0)
        async with GbtListener(
            settings=listener_settings, store=store, clock_ms=lambda: gateway_clock(frames)
        ) as listener:
            host, port = listener.address
            for edition, vin in VIN.items():
                reader, writer = await asyncio.open_connection(host, port)
                for k in range(frames):
                    writer.write(encode.realtime(edition, vin, _values(k), key=key))
                    await writer.drain()
                    header = await reader.readexactly(24)
                    answer = header + await reader.readexactly(
                        int.from_bytes(header[22:24], "big") + 1
                    )
                    assert answer[3] == 0x01, answer.hex()
                writer.close()
            assert listener.stats.appended == 2 * frames
        await sign_and_anchor(world, store)
    return fleet[0].device_id


async def bundle_of(world: EvidenceWorld, asset: str, to_ms: int) -> BundleV2:
    """The real builder's "up to now" bundle of ``asset``."""
    settings = world.deployment.settings
    async with await SqliteStore.open(settings.db_path) as store:
        return await extract_bundle_v2(
            store, asset_id=asset, from_ms=0, to_ms=to_ms,
            operator_key=load_key_file(settings.operator_key_file).public_key,
            anchor_db=settings.data_dir / "anchors.db",
        )  # fmt: skip


def verify(world: EvidenceWorld, data: bytes) -> tuple[V2Report, float, float]:
    """The lessor's check of the bundle file: (report, CPU s, wall s)."""
    export = world.anchor_export.read_text(encoding="utf-8")
    key = world.gateway_key
    cpu, wall = time.process_time(), time.perf_counter()
    bundle = read_bundle(data)
    assert isinstance(bundle, BundleV2)
    checker = anchor_checker(gateway_verifier_key=key, anchor_export=export, rpc_url=None)
    report = verify_bundle_v2(bundle, gateway_verifier_key=key, anchors=checker)
    return report, time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    """Build, bundle, verify; print one table with ratios against the native device."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1000, help="messages per device")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        deployment = write_deployment(workdir, offline_broker(workdir), devices=0)
        world = EvidenceWorld(deployment=deployment)
        pack = asyncio.run(populate(world, args.frames))
        rows = []
        # a first, unmeasured check: module imports and caches out of the figures
        verify(world, asyncio.run(bundle_of(world, pack, gateway_clock(1) + 1)).to_bytes())
        for name, asset in (("native COSE pack message (10 samples)", pack),
                            ("GB/T 2016 frame (received-only)", VIN[2016]),
                            ("GB/T 2025 frame (SM2-signed)", VIN[2025])):  # fmt: skip
            to_ms = max(gateway_clock(args.frames), time.time_ns() // 1_000_000) + 60_000
            data = asyncio.run(bundle_of(world, asset, to_ms)).to_bytes()
            report, cpu, wall = verify(world, data)
            assert report.complete, report
            assert report.messages == args.frames, report
            rows.append((name, len(data), cpu, wall, report.evidence))
    n = args.frames
    print(f"# GB/T 32960 bundles ({platform.python_implementation()} "
          f"{platform.python_version()}, {n} messages per device)")  # fmt: skip
    print("\n| device | bundle KB / 1,000 messages | x native | verify CPU us/message | "
          "x native | verify wall us/message | evidence |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    base_size, base_cpu = rows[0][1], rows[0][2]
    for name, size, cpu, wall, evidence in rows:
        print(f"| {name} | {size / n:,.1f} | {size / base_size:.2f} | {cpu / n * 1e6:,.0f} | "
              f"{cpu / base_cpu:.1f} | {wall / n * 1e6:,.0f} | {evidence} |")  # fmt: skip


if __name__ == "__main__":
    main()
