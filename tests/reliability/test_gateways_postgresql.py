"""Three gateway processes on one PostgreSQL log, one mosquitto shared subscription, kill -9.

A publisher streams signed messages at QoS 1 while, trial after trial, the checkpoint signer
or a random gateway is killed with SIGKILL and started again. Afterwards: every message the
broker acknowledged is in the log exactly once, every checkpoint is signed by the gateway key
and consistent with the next, no two checkpoints of one size have different roots (as stored
and as logged by every signer), and the store audits clean.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from gateway.audit import audit_store
from gateway.store.postgresql import PostgresStore
from ledger.checkpoint import verify_checkpoint
from ledger.keys import load_key_file
from ledger.merkle import verify_consistency
from ledger.note import verifier_key
from tests.support.processes import Streamer
from tests.support.shared_log import SharedLog, write_shared_log
from voltproof.broker import MosquittoBroker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GATEWAYS = 3
TRIALS = int(os.environ.get("VOLTPROOF_PG_KILL9_TRIALS", "10"))


def _wait_for_signer(shared: SharedLog, pids: set[int], timeout_s: float = 30.0) -> int:
    """The pid of the signer, once one of ``pids`` holds the lock."""
    deadline = time.monotonic() + timeout_s
    while (pid := shared.signer_pid()) not in pids:
        assert time.monotonic() < deadline, f"no signer among {pids}\n{shared.logs()}"
        time.sleep(0.05)
    assert pid is not None
    return pid


def test_three_gateways_survive_kill9_of_signer_and_others(
    tmp_path: Path, mosquitto: MosquittoBroker, postgres_url: str
) -> None:
    """Lost, duplicated or foreign messages, inconsistent or forked checkpoints: all zero."""
    shared = write_shared_log(tmp_path / "deployment", mosquitto, postgres_url, count=GATEWAYS)
    rng = random.Random(20261206)
    gateways = [shared.start(n) for n in range(GATEWAYS)]
    shared.wait_for_events("gateway_started", GATEWAYS)
    _wait_for_signer(shared, {g.pid for g in gateways})
    streamer = Streamer(shared.as_deployment(), mosquitto)
    streamer.start()
    takeovers = 0
    try:
        for trial in range(TRIALS):
            time.sleep(rng.uniform(0.3, 1.0))
            signer = _wait_for_signer(shared, {g.pid for g in gateways})
            victim = (
                next(n for n, g in enumerate(gateways) if g.pid == signer)
                if trial % 2 == 0
                else rng.randrange(GATEWAYS)
            )
            was_signer = gateways[victim].pid == signer
            gateways[victim].send_signal(signal.SIGKILL)
            gateways[victim].wait(10)
            if was_signer:
                survivors = {g.pid for n, g in enumerate(gateways) if n != victim}
                _wait_for_signer(shared, survivors)  # another takes over, victim still down
                takeovers += 1
            gateways[victim] = shared.start(victim)
        streamer.finish()
        asyncio.run(_wait_for_size(shared, len(shared.devices) + len(streamer.sent)))
    finally:
        streamer.stop.set()
        for gateway in gateways:
            gateway.send_signal(signal.SIGTERM)
        codes = [_exit_code(gateway) for gateway in gateways]
    assert codes == [0] * GATEWAYS, shared.logs()
    asyncio.run(_check(shared, streamer.sent, takeovers))
    for command in (["gateway", "check"], ["audit"]):
        result = subprocess.run(
            [sys.executable, "-m", "voltproof", *command, "--config", str(shared.configs[1])],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr


def _exit_code(gateway: subprocess.Popen[bytes]) -> int:
    try:
        return gateway.wait(60)
    except subprocess.TimeoutExpired:
        gateway.kill()
        return gateway.wait(10) or -9


async def _wait_for_size(shared: SharedLog, size: int, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with await PostgresStore.open(shared.url) as store:
        while (now := (await store.log_head()).size) < size:
            assert time.monotonic() < deadline, f"log stuck at {now} < {size}\n{shared.logs()}"
            await asyncio.sleep(0.1)


async def _check(shared: SharedLog, sent: list[bytes], takeovers: int) -> None:
    key = load_key_file(shared.settings.key_file)
    trusted = verifier_key(key.name, key.public_key)
    async with await PostgresStore.open(shared.url) as store:
        head = await store.log_head()
        leaves = await store.leaves_page(after=-1, limit=head.size)
        logged = [leaf.cose for leaf in leaves[len(shared.devices) :]]
        lost = len(set(sent) - set(logged))
        duplicated = len(logged) - len(set(logged))
        foreign = len(set(logged) - set(sent))
        checkpoints = sorted(await store.checkpoints(limit=100_000), key=lambda c: c.size)
        assert checkpoints[-1].size == head.size
        verify_checkpoint(checkpoints[0].note, verifier_key=trusted)
        for older, newer in itertools.pairwise(checkpoints):
            verify_checkpoint(newer.note, verifier_key=trusted)
            verify_consistency(
                size1=older.size,
                size2=newer.size,
                proof=await store.consistency_proof(older.size, newer.size),
                root1=older.root,
                root2=newer.root,
            )
        report = await audit_store(
            store, origin=shared.settings.origin, key_name=key.name, public_key=key.public_key
        )
    roots: defaultdict[object, set[object]] = defaultdict(set)
    for event in shared.events("checkpoint_signed"):
        roots[event["size"]].add(event["root"])
    forked = sorted(size for size, seen in roots.items() if len(seen) > 1)  # type: ignore[type-var]
    signers = len(shared.events("signer_elected"))
    print(
        f"3 gateways, kill -9 trials {TRIALS} ({takeovers} of the signer): published "
        f"{len(sent)}, logged {len(logged)}, lost {lost}, duplicated {duplicated}, checkpoints "
        f"{len(checkpoints)}, elections {signers}, forked sizes {forked}"
    )
    assert (lost, duplicated, foreign) == (0, 0, 0)
    assert forked == []
    assert report.ok, report.problems
    assert signers >= takeovers + 1
