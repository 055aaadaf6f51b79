"""Several gateway processes on one deployment: concurrent appends to one store never fork."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.config import CheckpointSettings, GatewaySettings, MetricsSettings
from gateway.pipeline import OutcomeKind, Pipeline
from gateway.registry import Registry
from gateway.store import SqliteStore
from gateway.verification import Policy
from ledger.keys import SigningKey, create_key_file, generate_seed, public_key_from_seed
from ledger.merkle import MemoryLog, verify_inclusion
from tests.support.gateway_devices import T0_MS, FakeDevice

pytestmark = pytest.mark.integration

BATCHES = 12
BATCH = 15
DEVICES_PER_WRITER = 5


def _devices(writer: int, seeds: list[bytes]) -> list[FakeDevice]:
    return [
        FakeDevice(device_id=f"pack-{writer}-{i}", seed=seed)
        for i, seed in enumerate(seeds[writer * DEVICES_PER_WRITER :][:DEVICES_PER_WRITER])
    ]


def write_batches(db: str, writer: int, seeds: list[bytes], start: object) -> None:
    """One writer process: ``BATCHES`` pipeline commits of its own devices' messages."""
    devices = _devices(writer, seeds)
    batches = [
        [d.incoming(d.message()) for d in devices for _ in range(BATCH // DEVICES_PER_WRITER)]
        for _ in range(BATCHES)
    ]

    async def run() -> None:
        async with await SqliteStore.open(db) as store:
            pipeline = Pipeline(store=store, policy=Policy())
            start.wait()  # type: ignore[attr-defined]  # a multiprocessing Event
            for batch in batches:
                outcomes = await pipeline.process(batch)
                if any(o.kind is not OutcomeKind.ACCEPTED for o in outcomes):
                    raise SystemExit(f"writer {writer}: {outcomes}")

    asyncio.run(run())


async def _enroll(db: Path, devices: list[FakeDevice]) -> None:
    seed = generate_seed()
    operator = SigningKey(name="operator", seed=seed, public_key=public_key_from_seed(seed))
    async with await SqliteStore.open(db) as store:
        await Registry(store=store, operator=operator, clock_ms=lambda: T0_MS).enroll(
            [d.spec() for d in devices]
        )


def test_two_processes_append_to_one_log_without_forking(tmp_path: Path) -> None:
    """Two processes committing at once give one log: every leaf once, a root that recomputes."""
    db = tmp_path / "gateway.db"
    seeds = [generate_seed() for _ in range(2 * DEVICES_PER_WRITER)]
    asyncio.run(_enroll(db, _devices(0, seeds) + _devices(1, seeds)))
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    writers = [ctx.Process(target=write_batches, args=(str(db), w, seeds, start)) for w in range(2)]
    for writer in writers:
        writer.start()
    start.set()
    for writer in writers:
        writer.join(120)
    assert [w.exitcode for w in writers] == [0, 0]
    with sqlite3.connect(db) as conn:
        leaves = conn.execute("SELECT leaf_index, cose FROM leaves ORDER BY leaf_index").fetchall()
        devices = conn.execute(
            "SELECT device, count(*), max(seq) FROM leaves WHERE kind = 'telemetry' GROUP BY device"
        ).fetchall()
    registry = 2 * DEVICES_PER_WRITER
    assert [index for index, _ in leaves] == list(range(registry + 2 * BATCHES * BATCH))
    per_device = BATCHES * BATCH // DEVICES_PER_WRITER
    assert sorted((n, top) for _, n, top in devices) == [(per_device, per_device - 1)] * registry
    reference = MemoryLog()
    reference.append(bytes(cose) for _, cose in leaves)

    async def check() -> None:
        async with await SqliteStore.open(db) as store:
            head = await store.log_head()
            assert head.root == reference.root()
            last = head.size - 1
            verify_inclusion(
                leaf_hash=reference.leaf_hash(last),
                index=last,
                size=head.size,
                proof=await store.inclusion_proof(last, head.size),
                root=head.root,
            )

    asyncio.run(check())


def test_checkpoints_enabled_defaults_on_and_can_be_switched_off() -> None:
    """One process of a deployment signs checkpoints; the setting says which (default: on)."""
    assert CheckpointSettings().enabled is True
    settings = GatewaySettings(checkpoints=CheckpointSettings(enabled=False))
    assert settings.checkpoints.enabled is False


def test_checkpoints_enabled_refuses_a_non_boolean() -> None:
    """A typo in checkpoints.enabled is refused instead of read as true."""
    with pytest.raises(ValueError, match="enabled"):
        CheckpointSettings(enabled="sometimes")  # type: ignore[arg-type]


def _settings(tmp_path: Path, *, enabled: bool) -> GatewaySettings:
    create_key_file(tmp_path / "gateway.key", name="voltproof.test/gw-1")
    return GatewaySettings(
        data_dir=tmp_path / "data",
        key_file=tmp_path / "gateway.key",
        checkpoints=CheckpointSettings(enabled=enabled),
        metrics=MetricsSettings(port=0),
    )


@pytest.mark.parametrize("enabled", [True, False])
def test_only_a_signing_process_opens_checkpointer_and_anchors(
    tmp_path: Path, *, enabled: bool
) -> None:
    """With checkpoints.enabled off a gateway neither signs nor opens the anchor backend."""
    settings = _settings(tmp_path, enabled=enabled)
    settings.data_dir.mkdir()

    async def open_runtime() -> tuple[bool, bool]:
        async with AsyncExitStack() as stack:
            # _open builds the runtime without connecting to a broker.
            runtime = await Gateway(settings)._open(stack)
            return runtime.checkpointer is not None, runtime.anchorer is not None

    assert asyncio.run(open_runtime()) == (enabled, enabled)
    assert (settings.data_dir / "anchors.db").exists() is enabled
