"""The gateway store on real SQLite files: migrations, a second writer, and kill -9."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.pipeline import OutcomeKind, Pipeline
from gateway.registry import DeviceSpec, Registry
from gateway.store import SchemaVersionError, SqliteStore
from gateway.store.migrate import LATEST_VERSION
from gateway.verification import Policy
from ledger.keys import SigningKey, create_key_file, load_key_file
from ledger.merkle import hash_leaf, verify_inclusion
from tests.support.gateway_devices import T0_MS, FakeDevice

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration

WRITER = """
import asyncio, sys
from pathlib import Path
from gateway.registry import DeviceSpec, Registry
from gateway.store import SqliteStore
from ledger.keys import load_key_file

async def main() -> None:
    async with await SqliteStore.open(sys.argv[1]) as store:
        registry = Registry(store=store, operator=load_key_file(sys.argv[2]))
        for i in range(int(sys.argv[3])):
            # a key of its own per device (the registry refuses one key for two devices)
            await registry.enroll([DeviceSpec(device_id=f"extra-{i}", kind="bus", fleet="f",
                                              public_key=bytes([1]) * 31 + bytes([i]))])

asyncio.run(main())
"""

CRASHER = """
import asyncio, sys
from gateway.pipeline import Pipeline
from gateway.store import SqliteStore
from gateway.verification import Policy
from tests.support.gateway_devices import FakeDevice

async def main() -> None:
    store = await SqliteStore.open(sys.argv[1])
    pipeline = Pipeline(store=store, policy=Policy())
    dev = FakeDevice(device_id="pack-1", seed=bytes.fromhex(sys.argv[2]))
    while True:
        batch = [dev.incoming(dev.message()) for _ in range(20)]
        # Every other batch is sent twice: duplicates must never become leaves.
        await pipeline.process(batch + batch[:5])
        print(dev.seq, flush=True)

asyncio.run(main())
"""


def operator(tmp_path: Path) -> SigningKey:
    """An operator key file in ``tmp_path`` and its loaded key."""
    create_key_file(tmp_path / "operator.key", name="operator")
    return load_key_file(tmp_path / "operator.key")


async def assert_log_sound(path: Path) -> int:
    """Every stored leaf is in the tree at its index (inclusion proof) and nothing is extra."""
    async with await SqliteStore.open(path) as store:
        head = await store.log_head()
        for index in range(head.size):
            leaf = await store.leaf(index)
            proof = await store.inclusion_proof(index, head.size)
            verify_inclusion(leaf_hash=hash_leaf(leaf.cose), index=index, size=head.size,
                             proof=proof, root=head.root)  # fmt: skip
    with sqlite3.connect(path) as db:
        (count,) = db.execute("SELECT count(*) FROM leaves").fetchone()
        (distinct,) = db.execute("SELECT count(DISTINCT message_hash) FROM leaves").fetchone()
    assert count == distinct == head.size
    return head.size


def test_migrates_empty_and_refuses_future(tmp_path: Path) -> None:
    """An empty file is migrated to the latest version; a newer schema is refused."""

    async def scenario() -> None:
        path = tmp_path / "g.db"
        await (await SqliteStore.open(path)).close()
        with sqlite3.connect(path) as db:
            assert db.execute("SELECT max(version) FROM schema_version").fetchone() == (
                LATEST_VERSION,
            )
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (LATEST_VERSION + 1,))
        with pytest.raises(SchemaVersionError, match=f"version {LATEST_VERSION + 1} is newer"):
            await SqliteStore.open(path)

    asyncio.run(scenario())


def test_second_process_writes_while_gateway_appends(tmp_path: Path) -> None:
    """Registry changes from another process interleave with batches; the log never forks."""
    key = operator(tmp_path)
    path = tmp_path / "g.db"
    dev = FakeDevice(device_id="pack-1")

    async def scenario() -> None:
        async with await SqliteStore.open(path) as store:
            await Registry(store=store, operator=key, clock_ms=lambda: T0_MS).enroll([dev.spec()])
            pipeline = Pipeline(store=store, policy=Policy())
            writer = await asyncio.create_subprocess_exec(
                sys.executable, "-c", WRITER, str(path), str(tmp_path / "operator.key"), "40",
                cwd=REPO,
            )  # fmt: skip
            guard = time.monotonic() + 300  # a failing writer must fail the test, not hang it
            while writer.returncode is None:
                assert time.monotonic() < guard, "the registry writer never finished"
                outcomes = await pipeline.process([dev.incoming(dev.message())])
                assert outcomes[0].kind is OutcomeKind.ACCEPTED
            assert await writer.wait() == 0
            assert len(await store.list_devices()) == 41

    asyncio.run(scenario())
    assert asyncio.run(assert_log_sound(path)) >= 41


def test_kill_9_during_process_loses_nothing_committed(tmp_path: Path) -> None:
    """After SIGKILL mid-loop every committed message has a valid proof and no duplicate leaf."""
    key = operator(tmp_path)
    path = tmp_path / "g.db"
    dev = FakeDevice(device_id="pack-1")

    async def enroll() -> None:
        async with await SqliteStore.open(path) as store:
            await Registry(store=store, operator=key, clock_ms=lambda: T0_MS).enroll([dev.spec()])

    asyncio.run(enroll())
    crasher = subprocess.Popen(
        [sys.executable, "-c", CRASHER, str(path), dev.seed.hex()],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert crasher.stdout is not None
    reported = 0
    while reported < 200:
        line = crasher.stdout.readline()
        assert line, "the writer died before being killed"
        reported = int(line)
    time.sleep(0.05)  # let it get into the middle of another batch
    os.kill(crasher.pid, signal.SIGKILL)
    crasher.wait(timeout=30)
    crasher.stdout.close()
    size = asyncio.run(assert_log_sound(path))
    with sqlite3.connect(path) as db:
        seqs = [
            s for (s,) in db.execute("SELECT seq FROM leaves WHERE seq IS NOT NULL ORDER BY seq")
        ]
        (head,) = db.execute("SELECT seq FROM chain_heads WHERE device = 'pack-1'").fetchone()
    # Every message reported committed is there, in order, exactly once.
    assert seqs == list(range(len(seqs)))
    assert len(seqs) >= reported
    assert head == seqs[-1]
    assert size == len(seqs) + 1


def test_spec_type_is_exported() -> None:
    """DeviceSpec refuses a malformed key (the registry's own precondition)."""
    from gateway.registry import RegistryError

    with pytest.raises(RegistryError, match="is 3 bytes, want 32"):
        DeviceSpec(device_id="d", kind="bus", fleet="f", public_key=b"abc")
