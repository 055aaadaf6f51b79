"""A populated gateway deployment on disk, built through the real pipeline (no broker).

Devices are enrolled with the operator key, their signed messages go through
:class:`~gateway.pipeline.Pipeline` into the SQLite store, two checkpoints are signed by the
gateway key and the newest is anchored in the local anchor table: every derived fact in the
store is genuine, so a test that tampers with one row exercises the real checks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import numpy as np

from gateway.anchoring import Anchorer
from gateway.checkpointer import Checkpointer
from gateway.pipeline import OutcomeKind, Pipeline
from gateway.store import SqliteStore
from gateway.store.samples import block_dtype
from ledger.anchors.local import LocalAnchorBackend
from ledger.cbor import Tag, encode
from ledger.keys import load_key_file
from ledger.message import decode_message
from ledger.telemetry import Kind, PackSample, decode_batch, encode_batch
from tests.support.gateway_devices import T0_MS
from tests.support.gateway_world import Deployment, write_deployment
from voltproof.broker import MosquittoBroker

MESSAGES_PER_DEVICE = 4


def offline_broker(workdir: Path) -> MosquittoBroker:
    """A broker description that is never started (the deployment only needs its URL)."""
    return MosquittoBroker(workdir=workdir / "unused-broker")


def build_deployment(workdir: Path, *, devices: int = 3) -> Deployment:
    """Enrol ``devices`` packs, log their messages, sign two checkpoints, anchor the last."""
    deployment = write_deployment(
        workdir, offline_broker(workdir), devices=devices, enrolled_at_ms=T0_MS
    )
    asyncio.run(_populate(deployment))
    return deployment


async def _populate(deployment: Deployment) -> None:
    settings = deployment.settings
    key = load_key_file(settings.key_file)
    store = await SqliteStore.open(settings.db_path)
    backend = await LocalAnchorBackend.open(settings.data_dir / "anchors.db", seed=key.seed)
    try:
        pipeline = Pipeline(store=store)
        checkpointer = Checkpointer(store=store, origin=settings.origin, key=key)
        for round_ in range(MESSAGES_PER_DEVICE):
            batch = []
            for device in deployment.devices:
                data = device.message()
                batch.append(device.incoming(data, received_at_ms=T0_MS + 10**7 + round_))
            outcomes = await pipeline.process(batch)
            assert all(o.kind is OutcomeKind.ACCEPTED for o in outcomes), outcomes
            if round_ == 1:
                await checkpointer.checkpoint()
        await checkpointer.checkpoint()
        anchorer = Anchorer(store=store, backend=backend, origin=settings.origin)
        await anchorer.sync()
        await backend.export(deployment.workdir / "anchors.json")
    finally:
        await backend.aclose()
        await store.close()


@contextmanager
def opened(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain read-write connection, committed on leaving (how a tamperer edits the file)."""
    with closing(sqlite3.connect(path)) as db, db:
        yield db


def first_leaf(db: sqlite3.Connection, device: str, seq: int = 0) -> int:
    """The leaf index of ``device``'s message ``seq``."""
    row = db.execute(
        "SELECT leaf_index FROM leaves WHERE device = ? AND seq = ?", (device, seq)
    ).fetchone()
    assert row is not None
    return int(row[0])


def with_changed_voltage(cose: bytes, voltage_v: float) -> bytes:
    """``cose`` with the first sample's pack voltage changed; the old signature is kept."""
    message = decode_message(cose)
    batch = decode_batch(message.payload)
    first = batch.samples[0]
    assert isinstance(first, PackSample)
    samples = (dataclasses.replace(first, voltage_v=voltage_v), *batch.samples[1:])
    payload = dict(message.payload)
    payload.update(encode_batch(dataclasses.replace(batch, samples=samples)))
    return encode(
        Tag(
            number=18,
            value=[
                message.protected,
                {4: message.kid.encode()},
                encode(payload),
                message.signature,
            ],
        )
    )


def change_stored_sample(
    db: sqlite3.Connection,
    leaf_index: int,
    name: str,
    sample: int,
    wire: int,
    *,
    kind: Kind = "pack",
) -> None:
    """Set column ``name`` of sample ``sample`` in the stored ``kind`` block of ``leaf_index``."""
    n, data = db.execute(
        "SELECT n, columns FROM sample_blocks WHERE leaf_index = ? AND kind = ?",
        (leaf_index, kind),
    ).fetchone()
    block = np.frombuffer(bytes(data), dtype=block_dtype(kind, n)).copy()
    block[name][0][sample] = wire
    db.execute(
        "UPDATE sample_blocks SET columns = ? WHERE leaf_index = ? AND kind = ?",
        (block.tobytes(), leaf_index, kind),
    )
