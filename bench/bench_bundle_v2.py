"""Evidence v2 against v1 in the same run: build from a real store, verify, bundle size.

Fills a SQLite gateway store through the real pipeline: one pack (hosted by one bus, so a v2
pack bundle carries one host chain) with ``--messages`` messages, its bus with as many, and
``--devices`` other enrolled devices (so index proofs have a realistic depth); signs one
checkpoint with its ``voltproof-index/1`` line and anchors it locally. Then times, best of
``--repeat``: the v1 build (``extract_evidence`` + ``build_bundle``) against the v2 build
(``extract_bundle_v2``), ``verify_bundle`` against ``verify_bundle_v2`` (one signature
thread, the lessor's anchor export), and compares the file sizes.

    .venv/bin/python -m bench.bench_bundle_v2 --messages 20000 --devices 1000 --repeat 3

A v2 pack bundle holds the host bus only over the hosting intervals, so it is compared with
the v1 bundle that also follows the host (``follow_hosts=True``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from gateway.evidence import extract_evidence
from gateway.evidence_v2 import extract_bundle_v2
from gateway.pipeline import OutcomeKind, Pipeline
from gateway.registry import DeviceSpec, Registry
from gateway.store import SqliteStore
from ledger.anchors.base import AnchorChecker
from ledger.anchors.evm_checker import anchor_checker
from ledger.bundle import Bundle, build_bundle
from ledger.bundle_v2 import BundleV2
from ledger.keys import load_key_file, public_key_from_seed
from ledger.verify import verify_bundle
from ledger.verify_v2 import verify_bundle_v2
from tests.support.evidence_world import (
    FLEET,
    Agent,
    EvidenceWorld,
    seed_of,
    sign_and_anchor,
    t_of,
)
from tests.support.gateway_devices import T0_MS
from tests.support.gateway_world import write_deployment
from tests.support.store_world import offline_broker

_CHUNK = 500


async def _fill(world: EvidenceWorld, messages: int, others: int) -> None:
    settings = world.deployment.settings
    store = await SqliteStore.open(settings.db_path)
    try:
        operator = load_key_file(settings.operator_key_file)
        registry = Registry(store=store, operator=operator, clock_ms=lambda: T0_MS)
        pack = Agent(device_id="pack-0001", kind="pack", seed=seed_of("pack-0001"))
        bus = Agent(device_id="bus-0001", kind="bus", seed=seed_of("bus-0001"))
        world.agents.update({"pack-0001": pack, "bus-0001": bus})
        specs = [
            DeviceSpec(device_id=a.device_id, kind="bus" if a.kind == "bus" else "pack",
                       fleet=FLEET, public_key=public_key_from_seed(a.seed))
            for a in (pack, bus)
        ] + [
            DeviceSpec(device_id=f"other-{i:06d}", kind="pack", fleet=FLEET,
                       public_key=public_key_from_seed(seed_of(f"other-{i}")))
            for i in range(others)
        ]  # fmt: skip
        await registry.enroll(specs)
        pipeline = Pipeline(store=store)
        for start in range(0, messages, _CHUNK):
            batch = []
            for _ in range(start, min(messages, start + _CHUNK)):
                late = t_of(pack.seq) + 1_000
                batch.append(pack.incoming(pack.sign(host="bus-0001"), received_at_ms=late))
                batch.append(bus.incoming(bus.sign(packs=("pack-0001",)), received_at_ms=late))
            outcomes = await pipeline.process(batch)
            assert all(o.kind is OutcomeKind.ACCEPTED for o in outcomes)
        await sign_and_anchor(world, store)
    finally:
        await store.close()


async def _pair(
    repeat: int, first: Callable[[], Awaitable[object]], second: Callable[[], Awaitable[object]]
) -> tuple[float, float]:
    """Best time of each, runs interleaved (v1, v2, v2, v1, ...) after a full collection, so
    neither pays for the other's garbage or for running second on a shared machine."""
    times: tuple[list[float], list[float]] = ([], [])
    for round_ in range(repeat):
        order = (0, 1) if round_ % 2 == 0 else (1, 0)
        for which in order:
            gc.collect()
            start = time.perf_counter()
            await (first, second)[which]()
            times[which].append(time.perf_counter() - start)
    return min(times[0]), min(times[1])


async def _measure(world: EvidenceWorld, repeat: int) -> None:
    settings = world.deployment.settings
    store = await SqliteStore.open(settings.db_path)
    operator = load_key_file(settings.operator_key_file).public_key
    anchor_db = settings.data_dir / "anchors.db"
    now = 2**62
    try:

        async def v1() -> Bundle:
            found = await extract_evidence(
                store, asset_id="pack-0001", from_ms=0, to_ms=now, operator_key=operator,
                anchor_db=anchor_db,
            )  # fmt: skip
            return build_bundle(found.bundle_input)

        async def v2() -> BundleV2:
            return await extract_bundle_v2(
                store, asset_id="pack-0001", from_ms=0, to_ms=now, operator_key=operator,
                anchor_db=anchor_db,
            )  # fmt: skip

        build1, build2 = await _pair(repeat, v1, v2)
        bundle1 = await v1()
        bundle2 = await v2()
    finally:
        await store.close()
    key = world.gateway_key
    export = world.anchor_export.read_text(encoding="utf-8")

    def checker() -> AnchorChecker:
        return anchor_checker(gateway_verifier_key=key, anchor_export=export)

    async def verify1() -> object:
        return verify_bundle(bundle1, gateway_verifier_key=key, anchors=checker(), workers=1)

    async def verify2() -> object:
        return verify_bundle_v2(bundle2, gateway_verifier_key=key, anchors=checker(), workers=1)

    check1, check2 = await _pair(repeat, verify1, verify2)
    size1 = len(bundle1.to_bytes())
    size2 = len(bundle2.to_bytes())
    print(f"{'':28s} {'v1':>10s} {'v2':>10s} {'v2/v1':>7s}")
    print(f"{'build from the store (s)':28s} {build1:10.3f} {build2:10.3f} {build2 / build1:7.3f}")
    print(f"{'verify, 1 thread (s)':28s} {check1:10.3f} {check2:10.3f} {check2 / check1:7.3f}")
    print(f"{'bundle size (bytes)':28s} {size1:10d} {size2:10d} {size2 / size1:7.3f}")


def main() -> None:
    """Fill the store, then print v1 and v2 figures side by side."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000, help="messages of the pack")
    parser.add_argument("--devices", type=int, default=1_000, help="other enrolled devices")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp) / "gw"
        deployment = write_deployment(
            workdir, offline_broker(workdir), fleet=FLEET, devices=0, enrolled_at_ms=T0_MS
        )
        world = EvidenceWorld(deployment=deployment)
        start = time.perf_counter()
        asyncio.run(_fill(world, args.messages, args.devices))
        print(f"filled: {args.messages} pack + {args.messages} bus messages, "
              f"{args.devices + 2} devices, in {time.perf_counter() - start:.1f} s; "
              f"best of {args.repeat}")  # fmt: skip
        asyncio.run(_measure(world, args.repeat))


if __name__ == "__main__":
    main()
