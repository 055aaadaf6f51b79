"""kill -9 of the gateway at random moments during ingestion loses and duplicates nothing.

A publisher streams signed messages through a real mosquitto while the gateway process is
killed with SIGKILL and restarted, again and again. Afterwards every message that was
published is in the log exactly once, every stored checkpoint is consistent with the next,
and every leaf has a valid inclusion proof against the latest signed checkpoint.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import signal
import time
from pathlib import Path

import pytest

from gateway.store import SqliteStore
from ledger.checkpoint import verify_checkpoint
from ledger.keys import load_key_file
from ledger.merkle import MerkleProofError, hash_leaf, verify_consistency, verify_inclusion
from ledger.note import verifier_key
from tests.support.gateway_world import Deployment, write_deployment
from tests.support.processes import (
    Streamer,
    start_gateway,
    wait_for_log_size,
    wait_until_started,
)
from voltproof.broker import MosquittoBroker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TRIALS = int(os.environ.get("VOLTPROOF_KILL9_TRIALS", "20"))


def test_gateway_survives_repeated_kill9(tmp_path: Path, mosquitto: MosquittoBroker) -> None:
    """Messages lost, duplicated or unprovable after repeated SIGKILLs: all zero."""
    deployment = write_deployment(
        tmp_path / "gw", mosquitto, devices=4, every_leaves=40, every_s=0.3
    )
    rng = random.Random(20261122)
    gateway = start_gateway(deployment)
    # The broker queues for the gateway's session only once that session subscribed.
    wait_until_started(deployment)
    streamer = Streamer(deployment, mosquitto)
    streamer.start()
    try:
        for _ in range(TRIALS):
            time.sleep(rng.uniform(0.2, 0.7))
            gateway.send_signal(signal.SIGKILL)
            gateway.wait(10)
            gateway = start_gateway(deployment)
        streamer.finish()
        wait_for_log_size(deployment.settings.db_path, len(deployment.devices) + len(streamer.sent))
    finally:
        streamer.stop.set()
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(30) == 0, (deployment.workdir / "gateway.log").read_text()[-3000:]
    asyncio.run(_check(deployment, streamer.sent))


async def _check(deployment: Deployment, sent: list[bytes]) -> None:
    settings = deployment.settings
    key = load_key_file(settings.key_file)
    trusted = verifier_key(key.name, key.public_key)
    store = await SqliteStore.open(settings.db_path)
    try:
        head = await store.log_head()
        registry = len(deployment.devices)
        logged = [(await store.leaf(i)).cose for i in range(registry, head.size)]
        lost = len(set(sent) - set(logged))
        duplicated = len(logged) - len(set(logged))
        foreign = len(set(logged) - set(sent))
        checkpoints = sorted(await store.checkpoints(limit=100_000), key=lambda c: c.size)
        assert checkpoints[-1].size == head.size
        for older, newer in itertools.pairwise(checkpoints):
            verify_checkpoint(newer.note, verifier_key=trusted)
            verify_consistency(
                size1=older.size,
                size2=newer.size,
                proof=await store.consistency_proof(older.size, newer.size),
                root1=older.root,
                root2=newer.root,
            )
        latest = checkpoints[-1]
        unprovable = 0
        for index in range(head.size):
            try:
                verify_inclusion(
                    leaf_hash=hash_leaf((await store.leaf(index)).cose),
                    index=index,
                    size=latest.size,
                    proof=await store.inclusion_proof(index, latest.size),
                    root=latest.root,
                )
            except MerkleProofError:
                unprovable += 1
    finally:
        await store.close()
    print(
        f"kill -9 trials {TRIALS}: published {len(sent)}, logged {len(logged)}, lost {lost}, "
        f"duplicated {duplicated}, unprovable {unprovable}, checkpoints {len(checkpoints)}"
    )
    assert (lost, duplicated, foreign, unprovable) == (0, 0, 0, 0)
