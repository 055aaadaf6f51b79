"""The GB/T 32960 listener's group commit, over real TCP and a real SQLite store.

The store is the real one behind a gate (its ``commit`` waits for the test to open it, or
fails once, as a full disk or a PostgreSQL restart would): so what is batched together, and
what a failed commit leaves behind, is decided by the test, not by the machine's speed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from rtm_con import msg_checked

from gateway.config import GbtSettings
from gateway.gbt32960 import GbtListener
from gateway.registry import DeviceSpec, Registry
from gateway.store import (
    Candidate,
    QuarantineEntry,
    SqliteStore,
    StoredOutcome,
    StoreError,
    open_reader,
)
from ledger.gbt32960 import Terminal, decode_envelope, placeholder_key
from ledger.keys import SigningKey, generate_seed, public_key_from_seed
from tests.support import gbt_terminal as terminal
from tests.support.gbt_world import TerminalConnection

pytestmark = pytest.mark.integration

VINS = [f"LZYTBGBW5M10000{k:02d}" for k in range(4)]


class GatedStore:
    """The real store; ``commit`` of leaves first waits for ``gate``, or raises once."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.gate = asyncio.Event()
        self.fail_next = False
        self.batches: list[list[str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def commit(
        self, candidates: Sequence[Candidate], rejections: Sequence[QuarantineEntry]
    ) -> list[StoredOutcome]:
        if candidates:
            await self.gate.wait()
            if self.fail_next:
                self.fail_next = False
                raise StoreError("disk I/O error (injected)")
            self.batches.append([c.device_id for c in candidates])
        return await self.store.commit(candidates, rejections)


async def _store(path: Path) -> SqliteStore:
    store = await SqliteStore.open(path)
    seed = generate_seed()
    operator = SigningKey(name="operator", seed=seed, public_key=public_key_from_seed(seed))
    await Registry(store=store, operator=operator).enroll([
        DeviceSpec(device_id=vin, kind="bus", fleet="fleet-a", public_key=placeholder_key(vin),
                   terminal=Terminal(vin=vin, chip="chip", sm2=terminal.Sm2Key.generate().public))
        for vin in VINS
    ])  # fmt: skip
    return store


def _listener(store: GatedStore) -> GbtListener:
    return GbtListener(
        settings=GbtSettings(enabled=True, host="127.0.0.1", port=0),
        store=store,  # the real store behind a gate
        clock_ms=lambda: time.time_ns() // 1_000_000,
    )


def _ack(answer: bytes) -> str:
    return str(msg_checked.parse(answer).ack)


async def _until(condition: Any, what: str) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def test_frames_of_all_connections_share_one_commit(tmp_path: Path) -> None:
    """While one commit runs, the frames of the other terminals wait and then go in one
    transaction together; each is answered only after its own commit, all are logged."""

    async def main() -> None:
        store = GatedStore(await _store(tmp_path / "gateway.db"))
        try:
            async with _listener(store) as listener:
                links = [await TerminalConnection.open(*listener.address) for _ in VINS]
                frames = [
                    terminal.realtime(2016, vin, terminal.Reading(at=terminal.at(k)))
                    for k, vin in enumerate(VINS)
                ]
                first = asyncio.create_task(links[0].ask(frames[0]))
                await _until(lambda: listener.waiting_frames == 1, "the first frame waits")
                rest = [
                    asyncio.create_task(link.ask(frame))
                    for link, frame in zip(links[1:], frames[1:], strict=True)
                ]
                await _until(lambda: listener.waiting_frames == 4, "all four frames wait")
                assert not first.done()  # not answered before its commit is durable
                store.gate.set()
                answers = await asyncio.gather(first, *rest)
                assert [_ack(a) for a in answers] == ["ok"] * 4
                assert listener.stats.commits == 2
                assert listener.stats.appended == 4
                for link in links:
                    await link.close()
            assert store.batches == [VINS[:1], VINS[1:]]
        finally:
            await store.store.close()
        async with await open_reader(tmp_path / "gateway.db") as reader:
            for vin, frame in zip(VINS, frames, strict=True):
                (leaf,) = await reader.device_leaves(vin)
                assert (leaf.seq, decode_envelope(leaf.cose).frame.raw) == (0, frame)

    asyncio.run(main())


def test_a_failed_commit_loses_no_frame_and_leaves_no_gap(tmp_path: Path) -> None:
    """The store fails one commit: its frames get no answer (their connections close), the
    listener goes on, and the terminals' re-sent frames are logged with the seqs the failed
    commit would have used: no gap, no frame twice."""

    async def main() -> None:
        store = GatedStore(await _store(tmp_path / "gateway.db"))
        vin = VINS[0]
        frames = [terminal.realtime(2016, vin, terminal.Reading(at=terminal.at(k)))
                  for k in range(3)]  # fmt: skip
        try:
            async with _listener(store) as listener:
                store.gate.set()
                async with await TerminalConnection.open(*listener.address) as link:
                    assert _ack(await link.ask(frames[0])) == "ok"
                    store.fail_next = True
                    await link.send(frames[1])
                    assert await link.closed_by_peer()  # unanswered: the terminal re-sends
                async with await TerminalConnection.open(*listener.address) as link:
                    assert _ack(await link.ask(frames[1])) == "ok"
                    assert _ack(await link.ask(frames[2])) == "ok"
                    assert _ack(await link.ask(frames[2])) == "ok"  # a resend: no second leaf
                assert listener.stats.appended == 3
        finally:
            await store.store.close()
        async with await open_reader(tmp_path / "gateway.db") as reader:
            leaves = await reader.device_leaves(vin)
            assert [leaf.seq for leaf in leaves] == [0, 1, 2]
            assert [decode_envelope(leaf.cose).frame.raw for leaf in leaves] == frames
            assert await reader.chain_gaps(vin) == []

    asyncio.run(main())
