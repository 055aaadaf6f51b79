"""Device index benchmark: the per-checkpoint update cost and a full replay, against a floor.

Run ``python -m bench.bench_index --help``. For an index of N devices (10,000 and 100,000 by
default), one checkpoint changes K devices (1,000): each gets a new telemetry head
(``DeviceIndex.add_message``: the entry re-encoded as CBOR and hashed, its tree path marked)
and then the root is recomputed (only marked nodes rehash). The same is measured for the bare
tree (``IndexTree.set`` with ready value hashes). The floor, measured in the same run, is a
plain ``hashlib`` loop doing the hashes any implementation must do for that checkpoint: one
value hash, one leaf hash and (depth) node hashes per changed device, depth = the mean entry
depth of the tree (each changed path rehashed on its own, no shared upper nodes saved). The
full replay builds the index of N devices from nothing (an enrolment and a head per device)
and computes its root: what the gateway does once at start-up, and what ``voltproof audit``
does over a whole log.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ledger.device_index import DeviceIndex, index_key
from ledger.merkle.index_tree import IndexTree


def _seconds(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _median_ms(runs: list[Callable[[], object]]) -> float:
    return statistics.median(_seconds(run) for run in runs) * 1000


def _enrolled(devices: int) -> DeviceIndex:
    index = DeviceIndex()
    for number in range(devices):
        device = f"dev-{number:06d}"
        index.add_registry_entry(device=device, kind="pack", entry=device.encode())
        index.add_message(device=device, seq=0, leaf=number, message_hash=bytes(32), t=0)
    index.root()
    return index


def _mean_depth(index: DeviceIndex, sample: list[str]) -> float:
    return statistics.mean(len(index.proof(device).siblings) for device in sample)


def _floor(changed: int, depth: float) -> Callable[[], object]:
    sha256 = hashlib.sha256
    value = os.urandom(120)  # about one CBOR-encoded entry with a head
    node = bytes(65)
    hashes = round(depth)

    def run() -> None:
        for _ in range(changed):
            sha256(value).digest()
            sha256(b"\x00" + bytes(64)).digest()
            for _ in range(hashes):
                sha256(node).digest()

    return run


def checkpoint_rows(devices: int, changed: int, repeat: int, rng: random.Random) -> list[str]:
    """Per-checkpoint update cost for ``devices`` with ``changed`` of them moving."""
    index = _enrolled(devices)
    names = [f"dev-{number:06d}" for number in range(devices)]
    depth = _mean_depth(index, rng.sample(names, min(devices, 2000)))
    seq = [0]

    def index_checkpoint() -> Callable[[], object]:
        moving = rng.sample(names, changed)
        seq[0] += 1
        step = seq[0]

        def run() -> None:
            for device in moving:
                index.add_message(
                    device=device, seq=step, leaf=step, message_hash=bytes(32), t=step
                )
            index.root()

        return run

    tree = IndexTree()
    keys = [index_key(name) for name in names]
    tree.update((key, hashlib.sha256(key).digest()) for key in keys)
    tree.root()

    def tree_checkpoint() -> Callable[[], object]:
        moving = rng.sample(keys, changed)
        values = [os.urandom(32) for _ in moving]

        def run() -> None:
            tree.update(zip(moving, values, strict=True))
            tree.root()

        return run

    floor = _median_ms([_floor(changed, depth) for _ in range(repeat)])
    full = _median_ms([index_checkpoint() for _ in range(repeat)])
    bare = _median_ms([tree_checkpoint() for _ in range(repeat)])
    return [
        f"{devices:>8,} devices, {changed:,} changed, mean depth {depth:.1f}:",
        f"  hashlib floor           {floor:8.2f} ms",
        f"  DeviceIndex checkpoint  {full:8.2f} ms  ({full / floor:.2f}x the floor)",
        f"  IndexTree checkpoint    {bare:8.2f} ms  ({bare / floor:.2f}x the floor)",
    ]


def replay_rows(devices: int) -> list[str]:
    """A full replay: the index of ``devices`` built from nothing, and its root."""
    depth_floor = _floor(devices, 0)  # value and leaf hash per device
    floor = _seconds(depth_floor) * 1000
    seconds = _seconds(lambda: _enrolled(devices)) * 1000
    return [
        f"full replay of {devices:,} devices (enrolment + head each, then the root):",
        f"  hashlib floor (2 hashes per device) {floor:8.1f} ms",
        f"  DeviceIndex                         {seconds:8.1f} ms  ({seconds / floor:.1f}x)",
    ]


async def _store_replay(devices: int, directory: str) -> tuple[float, float]:
    """Seconds to replay the index of a store of ``devices`` enrolled packs (and to fill it)."""
    from gateway.store import RegistryAction, RegistryChange, SqliteStore
    from ledger.keys import generate_seed, public_key_from_seed
    from ledger.message import sign_registry_entry

    store = await SqliteStore.open(Path(directory) / "gateway.db")
    seed = generate_seed()
    try:
        filled = time.perf_counter()
        for start in range(0, devices, 5000):
            changes = [
                RegistryChange(
                    action=RegistryAction.ENROLL,
                    device_id=f"dev-{number:06d}",
                    cose=sign_registry_entry(
                        {
                            "type": "enroll",
                            "dev": f"dev-{number:06d}",
                            "t": 0,
                            "kind": "pack",
                            "key": _device_key(number),
                        },
                        seed=seed,
                        kid="operator",
                    ),
                    recorded_at_ms=0,
                    kind="pack",
                    fleet="fleet-a",
                    public_key=_device_key(number),
                )
                for number in range(start, min(devices, start + 5000))
            ]
            await store.apply_registry(changes, operator_key=public_key_from_seed(seed))
        filled = time.perf_counter() - filled
        size = (await store.log_head()).size
        replay = time.perf_counter()
        (await store.device_index_at(size)).root()
        return time.perf_counter() - replay, filled
    finally:
        await store.close()


def store_rows(devices: int) -> list[str]:
    """The gateway's start-up replay from a store of ``devices`` enrolled devices."""
    with tempfile.TemporaryDirectory() as directory:
        replay, filled = asyncio.run(_store_replay(devices, directory))
    return [
        f"start-up replay from a store of {devices:,} enrolled devices: {replay * 1000:.0f} ms "
        f"(filling the store took {filled:.1f} s)"
    ]


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--changed", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=9, help="checkpoints per figure (median)")
    parser.add_argument("--replay", type=int, default=100_000, help="devices in the full replay")
    parser.add_argument(
        "--store-devices", type=int, default=0, help="also time the replay from a store (0: no)"
    )
    args = parser.parse_args()
    rng = random.Random(14)
    for devices in args.devices:
        print("\n".join(checkpoint_rows(devices, min(args.changed, devices), args.repeat, rng)))
    print("\n".join(replay_rows(args.replay)))
    if args.store_devices:
        print("\n".join(store_rows(args.store_devices)))


def _device_key(number: int) -> bytes:
    """A 32-byte key of its own per device (the registry refuses one key for two devices)."""
    return hashlib.sha256(b"bench-index-device-%d" % number).digest()


if __name__ == "__main__":
    main()
