"""Offline bundle timings on a synthetic one-year pack bundle (17,520 messages by default).

Builds an in-memory deployment (real keys, signed messages of 30 pack samples, a real Merkle
log, a signed checkpoint and a local anchor), then times ``build_bundle``, ``check_messages``
and ``verify_bundle`` (with one signature thread and with the default number) on the same
bundle, best of ``--repeat`` runs each, against a baseline measured in the same run: one
Ed25519 check per message in a plain loop.

    .venv/bin/python -m bench.bench_bundle --messages 17520 --repeat 3
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

from ledger.anchors.checkers import LocalAnchorChecker
from ledger.bundle import BundleInput, build_bundle
from ledger.message import decode_message
from ledger.verify import DEFAULT_WORKERS, check_messages, verify_bundle
from tests.support.bundle_world import T0, World, pack_batch, pack_sample

_HALF_HOUR_MS = 1_800_000


def _best(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    """Build the world, time each offline step, print seconds and ratios to the baseline."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=17_520)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    world = World()
    world.enroll("pack-1", "pack")
    samples = tuple(pack_sample() for _ in range(30))
    indexes = []
    for i in range(args.messages):
        world.send("pack-1", pack_batch(T0 + i * _HALF_HOUR_MS, samples, dt_ms=60_000))
        indexes.append(world.log.size - 1)
    to_ms = T0 + args.messages * _HALF_HOUR_MS
    bundle = world.bundle(asset="pack-1", kind="pack", from_ms=T0, to_ms=to_ms, messages=indexes)
    size = world.log.size
    inp = BundleInput(
        asset_id="pack-1", asset_kind="pack", from_ms=T0, to_ms=to_ms,
        checkpoint=bundle.checkpoint, operator_key=bundle.operator_key,
        registry=list(bundle.registry), messages=[world.leaf(i, size) for i in indexes],
        anchor=bundle.anchor,
    )  # fmt: skip
    key = bundle.devices[0].keys[0]
    decoded = [decode_message(leaf.data) for leaf in bundle.chains[0].messages]

    def baseline() -> None:
        for message in decoded:
            message.verify_signature(key)

    gateway_key = world.gateway_key
    figures = {
        "baseline: one Ed25519 check per message, one thread": _best(args.repeat, baseline),
        "build_bundle": _best(args.repeat, lambda: build_bundle(inp)),
    }
    for workers in (1, DEFAULT_WORKERS):
        figures[f"check_messages, {workers} signature thread(s)"] = _best(
            args.repeat, partial(check_messages, bundle, workers=workers)
        )
        figures[f"verify_bundle, {workers} signature thread(s)"] = _best(
            args.repeat,
            partial(
                verify_bundle,
                bundle,
                gateway_verifier_key=gateway_key,
                anchors=LocalAnchorChecker(gateway_verifier_key=gateway_key),
                workers=workers,
            ),
        )
    base = figures["baseline: one Ed25519 check per message, one thread"]
    print(f"{args.messages} messages, best of {args.repeat}")
    for name, seconds in figures.items():
        print(f"{name:55s} {seconds:8.3f} s  {seconds / base:6.2f} x baseline")


if __name__ == "__main__":
    main()
