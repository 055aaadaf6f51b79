"""Clients racing to extend one log over HTTP: a real witness process cosigns one branch a round.

Four clients, each on its own connection, submit four different extensions of the same
cosigned size at once, for twenty rounds. However their requests fall into the witness's
commit batches (the same batch, or one committing while another is checked), exactly one is
cosigned per round and the other three get 409 naming the winner's size; the winner's tree is
the base of the next round, so everything cosigned lies on one history.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from ledger.cosignature import verify_cosignature
from ledger.witness_protocol import SIZE_CONTENT_TYPE
from tests.support.witness_process import WitnessProcess
from tests.support.witness_world import LOG_KEY, ORIGIN, Log

pytestmark = pytest.mark.slow

_RACERS = 4
_ROUNDS = 20


def _branch(leaves: list[bytes], label: bytes, extra: int) -> Log:
    """A log holding ``leaves`` then ``extra`` leaves of its own."""
    log = Log()
    log.tree.append(leaves)
    log.label = label
    log.grow(extra)
    return log


async def _race(url: str, bodies: list[bytes]) -> list[httpx.Response]:
    clients = [httpx.AsyncClient(timeout=30) for _ in bodies]
    try:
        return list(
            await asyncio.gather(
                *(
                    client.post(url, content=body)
                    for client, body in zip(clients, bodies, strict=True)
                )
            )
        )
    finally:
        for client in clients:
            await client.aclose()


def test_racing_clients_of_one_log_get_one_cosignature_a_round(tmp_path: Path) -> None:
    """Twenty rounds of four racers: one 200 and three 409s with the winner's size each round."""
    with WitnessProcess(workdir=tmp_path, origin=ORIGIN, log_key=LOG_KEY) as witness:
        witness.start()
        url = f"{witness.url}/add-checkpoint"
        base = _branch([], b"base", 2)
        first = asyncio.run(_race(url, [base.request(0)]))[0]
        assert first.status_code == 200, first.text
        leaves = [b"base %d" % index for index in range(2)]
        for number in range(_ROUNDS):
            size = len(leaves)
            racers = [
                _branch(leaves, b"round %d racer %d" % (number, racer), 1 + racer)
                for racer in range(_RACERS)
            ]
            answers = asyncio.run(_race(url, [racer.request(size) for racer in racers]))
            won = [i for i, answer in enumerate(answers) if answer.status_code == 200]
            assert len(won) == 1, [(answer.status_code, answer.text) for answer in answers]
            winner = racers[won[0]]
            assert verify_cosignature(
                winner.checkpoint() + answers[won[0]].text, witness_key=witness.vkey
            )
            for i, answer in enumerate(answers):
                if i != won[0]:
                    assert (answer.status_code, answer.headers["content-type"], answer.text) == (
                        409,
                        SIZE_CONTENT_TYPE,
                        f"{winner.tree.size}\n",
                    )
            leaves += [
                b"round %d racer %d %d" % (number, won[0], index)
                for index in range(size, winner.tree.size)
            ]
            assert _branch(leaves, b"", 0).tree.root() == winner.tree.root()
        witness.stop()
