"""The HTTP witness's group commit: answers wait for their batch, racers in one batch, failures.

The state's commit is gated (it waits on an event before writing), so each test decides what
is queued while a batch is being written, with no timing involved.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from ledger.cosignature import verify_cosignature
from tests.support.witness_world import LOG_KEY, Log, witness_key
from voltproof.witness import (
    SizeConflictError,
    Witness,
    WitnessState,
    WitnessStateError,
    create_app,
)
from voltproof.witness.committer import GroupCommitter
from voltproof.witness.settings import LogSettings
from voltproof.witness.state import Swap


class _GatedState(WitnessState):
    """A state whose batch commit waits for ``gate`` and can be made to fail."""

    gate: threading.Event
    entered: threading.Event
    batches: list[list[str]]
    fail: bool

    def commit_swaps(self, batch: list[Swap]) -> None:
        self.batches.append([swap.origin for swap in batch])
        self.entered.set()
        assert self.gate.wait(timeout=30)
        if self.fail:
            raise WitnessStateError("cannot write witness state: disk I/O error")
        super().commit_swaps(batch)


def _logs(count: int) -> list[Log]:
    logs = [Log(origin=f"group.example/log-{number}") for number in range(count)]
    for log in logs:
        log.grow(3)
    return logs


def _open(path: Path, logs: list[Log]) -> tuple[Witness, _GatedState, GroupCommitter]:
    state = _GatedState.open(path)
    state.gate, state.entered, state.batches, state.fail = (
        threading.Event(),
        threading.Event(),
        [],
        False,
    )
    policies = [LogSettings(origin=log.origin, keys=[LOG_KEY]).policy() for log in logs]
    witness = Witness.from_policies(
        key=witness_key(), logs=policies, state=state, clock=lambda: 1_700_000_000
    )
    return witness, state, GroupCommitter(state)


async def _until_queued(committer: GroupCommitter, count: int) -> None:
    """Let the submitted tasks run their checks until ``count`` swaps wait for the next batch."""
    for _ in range(10_000):
        if committer.waiting >= count:
            return
        await asyncio.sleep(0)
    pytest.fail(f"{committer.waiting} swaps queued, expected {count}")


def test_answer_waits_until_its_batch_committed(tmp_path: Path) -> None:
    """No cosignature is returned while its state is still being written; then it is stored."""
    (log,) = logs = _logs(1)
    witness, state, committer = _open(tmp_path / "w.sqlite3", logs)

    async def scenario() -> None:
        task = asyncio.create_task(witness.add_checkpoint_async(log.request(0), committer))
        await asyncio.to_thread(state.entered.wait, 30)
        await asyncio.sleep(0)
        assert not task.done()
        assert state.latest(log.origin) is None
        state.gate.set()
        line = await task
        assert verify_cosignature(log.checkpoint() + line, witness_key=witness.verifier_key)

    asyncio.run(scenario())
    committer.close()
    stored = WitnessState.open(tmp_path / "w.sqlite3").latest(log.origin)
    assert stored is not None
    assert stored.size == 3


def test_requests_arriving_during_a_commit_share_the_next_one(tmp_path: Path) -> None:
    """Seven logs submitting while the first commit is written: one more transaction, not 7."""
    logs = _logs(8)
    witness, state, committer = _open(tmp_path / "w.sqlite3", logs)

    async def scenario() -> list[str]:
        first = asyncio.create_task(witness.add_checkpoint_async(logs[0].request(0), committer))
        await asyncio.to_thread(state.entered.wait, 30)
        rest = [
            asyncio.create_task(witness.add_checkpoint_async(log.request(0), committer))
            for log in logs[1:]
        ]
        await _until_queued(committer, 7)
        state.gate.set()
        return await asyncio.gather(first, *rest)

    lines = asyncio.run(scenario())
    committer.close()
    assert state.batches == [[logs[0].origin], [log.origin for log in logs[1:]]]
    for log, line in zip(logs, lines, strict=True):
        assert verify_cosignature(log.checkpoint() + line, witness_key=witness.verifier_key)
        stored = state.latest(log.origin)
        assert stored is not None
        assert (stored.size, stored.root) == (3, log.tree.root())


def test_racers_for_one_log_in_one_batch(tmp_path: Path) -> None:
    """Four clients extend one log from the same size in one batch: one wins, three get 409."""
    busy, target = logs = _logs(2)
    witness, state, committer = _open(tmp_path / "w.sqlite3", logs)
    state.gate.set()
    racers = []
    for number in range(4):
        racer = Log(origin=target.origin)
        racer.grow(3)
        racer.label = b"branch %d" % number
        racer.grow(1 + number)
        racers.append(racer)

    async def scenario() -> list[str | BaseException]:
        await witness.add_checkpoint_async(target.request(0), committer)
        state.gate.clear()
        state.entered.clear()
        holding = asyncio.create_task(witness.add_checkpoint_async(busy.request(0), committer))
        await asyncio.to_thread(state.entered.wait, 30)
        tasks = [
            asyncio.create_task(witness.add_checkpoint_async(racer.request(3), committer))
            for racer in racers
        ]
        await _until_queued(committer, 4)
        state.gate.set()
        await holding
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = asyncio.run(scenario())
    committer.close()
    assert state.batches[-1] == [target.origin] * 4
    wins = [
        (racer, result)
        for racer, result in zip(racers, results, strict=True)
        if isinstance(result, str)
    ]
    assert len(wins) == 1
    winner, line = wins[0]
    assert verify_cosignature(winner.checkpoint() + line, witness_key=witness.verifier_key)
    refusals = [result for result in results if not isinstance(result, str)]
    assert all(isinstance(refusal, SizeConflictError) for refusal in refusals)
    assert {refusal.size for refusal in refusals if isinstance(refusal, SizeConflictError)} == {
        winner.tree.size
    }
    stored = state.latest(target.origin)
    assert stored is not None
    assert (stored.size, stored.root) == (winner.tree.size, winner.tree.root())


def test_failed_write_fails_the_whole_batch_and_cosigns_nothing(tmp_path: Path) -> None:
    """A batch whose write fails answers every request with the error; the next batch works."""
    logs = _logs(3)
    witness, state, committer = _open(tmp_path / "w.sqlite3", logs)
    state.fail = True

    async def scenario() -> tuple[list[str | BaseException], str]:
        first = asyncio.create_task(witness.add_checkpoint_async(logs[0].request(0), committer))
        await asyncio.to_thread(state.entered.wait, 30)
        second = asyncio.create_task(witness.add_checkpoint_async(logs[1].request(0), committer))
        await _until_queued(committer, 1)
        state.gate.set()
        failed = list(await asyncio.gather(first, second, return_exceptions=True))
        state.fail = False
        return failed, await witness.add_checkpoint_async(logs[2].request(0), committer)

    failed, line = asyncio.run(scenario())
    committer.close()
    assert [type(result) for result in failed] == [WitnessStateError, WitnessStateError]
    assert state.latest(logs[0].origin) is None
    assert state.latest(logs[1].origin) is None
    assert verify_cosignature(logs[2].checkpoint() + line, witness_key=witness.verifier_key)


def test_a_client_leaving_does_not_cancel_the_batch(tmp_path: Path) -> None:
    """A request cancelled while its batch commits: the others are answered, its swap stands."""
    logs = _logs(3)
    witness, state, committer = _open(tmp_path / "w.sqlite3", logs)

    async def scenario() -> list[str]:
        first = asyncio.create_task(witness.add_checkpoint_async(logs[0].request(0), committer))
        await asyncio.to_thread(state.entered.wait, 30)
        leaving = asyncio.create_task(witness.add_checkpoint_async(logs[1].request(0), committer))
        staying = asyncio.create_task(witness.add_checkpoint_async(logs[2].request(0), committer))
        await _until_queued(committer, 2)
        leaving.cancel()
        state.gate.set()
        with pytest.raises(asyncio.CancelledError):
            await leaving
        return list(await asyncio.gather(first, staying))

    lines = asyncio.run(scenario())
    committer.close()
    for log, line in zip((logs[0], logs[2]), lines, strict=True):
        assert verify_cosignature(log.checkpoint() + line, witness_key=witness.verifier_key)
    stored = state.latest(logs[1].origin)
    assert stored is not None
    assert stored.size == 3


def test_state_commits_are_durable_against_power_loss(tmp_path: Path) -> None:
    """WAL with synchronous=FULL: a COMMIT (hence an answer) waits for the WAL's fsync."""
    state = WitnessState.open(tmp_path / "w.sqlite3")
    try:
        journal = state._connection.execute("PRAGMA journal_mode").fetchone()
        synchronous = state._connection.execute("PRAGMA synchronous").fetchone()
    finally:
        state.close()
    assert (journal, synchronous) == (("wal",), (2,))


def test_http_answers_500_when_the_state_cannot_be_written(tmp_path: Path) -> None:
    """Over HTTP a failed write is a plain 500 with a reason, and the next request is cosigned."""
    first, second = logs = _logs(2)
    witness, state, committer = _open(tmp_path / "w.sqlite3", logs)
    state.gate.set()
    state.fail = True
    with TestClient(create_app(witness, committer=committer)) as client:
        failed = client.post("/add-checkpoint", content=first.request(0))
        state.fail = False
        answer = client.post("/add-checkpoint", content=second.request(0))
    committer.close()
    assert (failed.status_code, failed.text) == (
        500,
        "the witness cannot read or write its state\n",
    )
    assert state.latest(first.origin) is None
    assert answer.status_code == 200
    assert verify_cosignature(second.checkpoint() + answer.text, witness_key=witness.verifier_key)
