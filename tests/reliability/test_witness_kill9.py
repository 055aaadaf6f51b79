"""A real witness process killed with SIGKILL keeps what it cosigned and refuses a fork."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ledger.cosignature import verify_cosignature
from ledger.witness_protocol import SIZE_CONTENT_TYPE
from tests.support.witness_world import LOG_KEY, ORIGIN, Log
from voltproof.cli import main as voltproof_main

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "voltproof", "witness", "--config", str(config)],
            stdout=output,
            stderr=output,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"witness exited {process.returncode}: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            time.sleep(0.05)
        else:
            return
    pytest.fail(f"witness did not listen on {port}: {log.read_text()}")


def test_kill9_keeps_state_and_refuses_a_fork(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Cosign, SIGKILL, restart: the fork is refused and the log continues from the stored size."""
    assert (
        voltproof_main(
            [
                "witness",
                "keys",
                "new",
                "--name",
                "lessor.example/w1",
                "--out",
                str(tmp_path / "w.key"),
            ]
        )
        == 0
    )
    vkey = capsys.readouterr().out.strip()
    assert (tmp_path / "w.key").stat().st_mode & 0o777 == 0o600
    port = _free_port()
    config = tmp_path / "witness.toml"
    config.write_text(
        f'key_file = "w.key"\nstate_file = "state.sqlite3"\nport = {port}\n'
        f'[[logs]]\norigin = "{ORIGIN}"\nkeys = ["{LOG_KEY}"]\n'
    )
    url = f"http://127.0.0.1:{port}/add-checkpoint"
    output = tmp_path / "witness.log"
    log, fork = Log(), Log(label=b"forged")
    log.grow(10)
    fork.grow(10)

    process = _start(config, output)
    try:
        _wait_listening(port, process, output)
        with httpx.Client(timeout=10) as client:
            answer = client.post(url, content=log.request(0))
            assert answer.status_code == 200, answer.text
            assert verify_cosignature(log.checkpoint() + answer.text, witness_key=vkey)
            log.grow(5)
            assert client.post(url, content=log.request(10)).status_code == 200
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        process.kill()

    fork.grow(7)
    process = _start(config, output)
    try:
        _wait_listening(port, process, output)
        with httpx.Client(timeout=10) as client:
            refused = client.post(url, content=fork.request(10))
            assert (refused.status_code, refused.headers["content-type"], refused.text) == (
                409,
                SIZE_CONTENT_TYPE,
                "15\n",
            )
            same_size = client.post(url, content=fork.request(15, 15))
            assert (same_size.status_code, same_size.text) == (409, "15\n")
            assert client.post(url, content=Log(label=b"forged").request(0)).status_code == 409
            log.grow(5)
            answer = client.post(url, content=log.request(15))
            assert answer.status_code == 200, answer.text
            assert verify_cosignature(log.checkpoint() + answer.text, witness_key=vkey)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        process.kill()
