"""Two requests racing on one witness state: only one consistent history is ever cosigned."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

from ledger.cosignature import verify_cosignature
from ledger.merkle import verify_consistency
from tests.support.witness_world import Log, open_witness
from voltproof.witness import CosignedCheckpoint, SizeConflictError, Witness, WitnessState
from voltproof.witness.errors import WitnessRefusalError


class _GatedState(WitnessState):
    """A state whose compare-and-swap waits until every racer has passed its checks."""

    barrier: threading.Barrier

    def advance(
        self, origin: str, *, expected: CosignedCheckpoint | None, new: CosignedCheckpoint
    ) -> bool:
        # a retry after losing finds the barrier broken: the other racers are done
        with contextlib.suppress(threading.BrokenBarrierError):
            self.barrier.wait(timeout=10)
        return super().advance(origin, expected=expected, new=new)


def _racers(path: Path, count: int) -> list[Witness]:
    """``count`` witnesses (as if separate processes) sharing one state file, gated."""
    barrier = threading.Barrier(count)
    witnesses = []
    for _ in range(count):
        witness = open_witness(path)
        gated = _GatedState(witness.state._connection)
        gated.barrier = barrier
        witness.state = gated
        witnesses.append(witness)
    return witnesses


def _race(witnesses: list[Witness], bodies: list[bytes]) -> list[str | WitnessRefusalError]:
    results: list[str | WitnessRefusalError] = [""] * len(bodies)

    def submit(position: int) -> None:
        try:
            results[position] = witnesses[position].add_checkpoint(bodies[position])
        except WitnessRefusalError as exc:
            results[position] = exc

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_two_forks_race_one_wins(tmp_path: Path) -> None:
    """Two histories extending the same cosigned size: exactly one is cosigned, one gets 409."""
    path = tmp_path / "w.sqlite3"
    honest, fork = Log(), Log()
    honest.grow(4)
    fork.grow(4)
    open_witness(path).add_checkpoint(honest.request(0))
    honest.grow(4)
    fork.label = b"forged"
    fork.grow(6)
    results = _race(_racers(path, 2), [honest.request(4), fork.request(4)])
    wins = [result for result in results if isinstance(result, str)]
    losses = [result for result in results if isinstance(result, SizeConflictError)]
    assert len(wins) == 1
    assert len(losses) == 1
    winner = honest if isinstance(results[0], str) else fork
    assert losses[0].size == winner.tree.size
    stored = WitnessState.open(path).latest(honest.origin)
    assert stored is not None
    assert (stored.size, stored.root) == (
        winner.tree.size,
        winner.tree.root(),
    )


def test_rollback_race_never_goes_back(tmp_path: Path) -> None:
    """Sizes N and N+K racing from the same old size: the stored size never goes back."""
    path = tmp_path / "w.sqlite3"
    log = Log()
    log.grow(3)
    open_witness(path).add_checkpoint(log.request(0))
    log.grow(9)
    results = _race(_racers(path, 2), [log.request(3, 6), log.request(3, 12)])
    cosigned = [
        (size, result)
        for size, result in zip((6, 12), results, strict=True)
        if isinstance(result, str)
    ]
    assert len(cosigned) == 1
    stored = WitnessState.open(path).latest(log.origin)
    assert stored is not None
    assert stored.size == cosigned[0][0]


def test_many_racers_one_consistent_history(tmp_path: Path) -> None:
    """Eight racers with forks of every size: all cosigned checkpoints are consistent."""
    path = tmp_path / "w.sqlite3"
    base = Log()
    base.grow(2)
    open_witness(path).add_checkpoint(base.request(0))
    logs = []
    for number in range(8):
        log = Log()
        log.grow(2)
        log.label = b"fork %d" % number
        log.grow(1 + number)
        logs.append(log)
    witnesses = _racers(path, 8)
    results = _race(witnesses, [log.request(2) for log in logs])
    cosigned = [
        (log, result) for log, result in zip(logs, results, strict=True) if isinstance(result, str)
    ]
    assert len(cosigned) == 1
    log, line = cosigned[0]
    assert verify_cosignature(log.checkpoint() + line, witness_key=witnesses[0].verifier_key)
    verify_consistency(
        size1=2,
        size2=log.tree.size,
        proof=log.tree.consistency_proof(size1=2, size2=log.tree.size),
        root1=base.tree.root(),
        root2=log.tree.root(),
    )
