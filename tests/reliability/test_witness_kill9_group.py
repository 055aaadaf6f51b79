"""SIGKILL of a witness process under load from many logs: no answered cosignature is lost.

Eight logs submit back to back, so the witness is group-committing batches when it is killed.
For each log, the restarted witness must hold either the last checkpoint it answered with a
cosignature or the one whose answer was in flight (committed, answer lost), never an older
one, and the log then continues from what it holds after one 409 naming that size.

A process kill leaves the operating system's page cache intact, so this shows the order
(answer only after COMMIT), not the fsync; ``synchronous=FULL`` is what makes COMMIT durable
against a power loss (checked in tests/unit/test_witness_group_commit.py).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ledger.cosignature import parse_witness_key, verify_cosignature, witness_verifier_key
from ledger.keys import create_key_file
from tests.support.paths import REPO
from tests.support.witness_world import LOG_KEY, Log
from voltproof.broker import free_port
from voltproof.witness import WitnessState

pytestmark = pytest.mark.slow

_LOGS = 8
_ROUNDS = 3
_ACKS_BEFORE_KILL = 150


@dataclass
class _Client:
    """One log submitting its checkpoints in order; what was answered and what is in flight."""

    log: Log
    acked: int = 0
    in_flight: int | None = None
    lines: dict[int, str] = field(default_factory=dict)


async def _post(
    port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes
) -> tuple[int, bytes]:
    writer.write(
        b"POST /add-checkpoint HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: %d\r\n\r\n"
        % (port, len(body))
        + body
    )
    status = int((await reader.readuntil(b"\r\n")).split(b" ", 2)[1])
    length = 0
    while (header := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = header.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def _load_then_kill(
    port: int, clients: list[_Client], process: subprocess.Popen[bytes]
) -> None:
    """Submit from every log until ``_ACKS_BEFORE_KILL`` answers, then SIGKILL mid-stream."""
    acks = 0

    async def one(client: _Client) -> None:
        nonlocal acks
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while True:
                client.log.grow(3)
                client.in_flight = client.log.tree.size
                status, answer = await _post(port, reader, writer, client.log.request(client.acked))
                assert status == 200, answer
                client.lines[client.log.tree.size] = answer.decode()
                client.acked, client.in_flight = client.log.tree.size, None
                acks += 1
                if acks == _ACKS_BEFORE_KILL:
                    process.kill()
        except (ConnectionError, asyncio.IncompleteReadError):
            return  # the witness is gone; client.in_flight may or may not be stored
        finally:
            writer.close()

    await asyncio.gather(*(one(client) for client in clients))


def _start(workdir: Path) -> subprocess.Popen[bytes]:
    with (workdir / "witness.log").open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "voltproof", "witness", "--config", "witness.toml"],
            stdout=output,
            stderr=output,
            cwd=workdir,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )


async def _wait_listening(port: int, process: subprocess.Popen[bytes], workdir: Path) -> None:
    for _ in range(400):
        assert process.poll() is None, (workdir / "witness.log").read_text()
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
        else:
            writer.close()
            return
    pytest.fail(f"witness not listening: {(workdir / 'witness.log').read_text()}")


async def _resume(port: int, client: _Client, stored: int) -> None:
    """The log submits from what it believes; a 409 names the stored size; it goes on from there."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        client.log.grow(3)
        status, answer = await _post(port, reader, writer, client.log.request(client.acked))
        if stored != client.acked:
            assert (status, answer) == (409, b"%d\n" % stored)
            status, answer = await _post(port, reader, writer, client.log.request(stored))
        assert status == 200, answer
        client.acked, client.in_flight = client.log.tree.size, None
    finally:
        writer.close()


def test_kill9_during_group_commits_loses_no_answered_cosignature(tmp_path: Path) -> None:
    """Three SIGKILLs under load: every answered cosignature's state survives each of them."""
    info = create_key_file(tmp_path / "witness.key", name="lessor.example/witness-g")
    vkey = parse_witness_key(witness_verifier_key(info.name, info.public_key))
    port = free_port()
    clients = [_Client(log=Log(origin=f"kill.example/log-{number}")) for number in range(_LOGS)]
    (tmp_path / "witness.toml").write_text(
        f'key_file = "witness.key"\nstate_file = "state.sqlite3"\nport = {port}\n'
        + "".join(f'[[logs]]\norigin = "{c.log.origin}"\nkeys = ["{LOG_KEY}"]\n' for c in clients)
    )
    for _ in range(_ROUNDS):
        process = _start(tmp_path)
        try:
            asyncio.run(_wait_listening(port, process, tmp_path))
            asyncio.run(_load_then_kill(port, clients, process))
        finally:
            process.kill()
            process.wait(timeout=10)
        state = WitnessState.open(tmp_path / "state.sqlite3")
        try:
            stored = {client.log.origin: state.latest(client.log.origin) for client in clients}
        finally:
            state.close()
        process = _start(tmp_path)
        try:
            asyncio.run(_wait_listening(port, process, tmp_path))
            for client in clients:
                held = stored[client.log.origin]
                assert held is not None
                assert held.size in {client.acked, client.in_flight}, (client.acked, held.size)
                assert held.root == client.log.tree.root_at(held.size)
                asyncio.run(_resume(port, client, held.size))
        finally:
            process.kill()
            process.wait(timeout=10)
    for client in clients:
        assert len(client.lines) >= 1
        for size, line in client.lines.items():
            checkpoint = client.log.checkpoint(size)
            assert verify_cosignature(checkpoint + line, witness_key=vkey)
