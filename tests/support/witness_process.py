"""A real witness process (``voltproof witness``) for a test gateway, and fake ones.

:class:`WitnessProcess` runs the project's witness as its own process on a free port, with
its own key and state in a directory, accepting the test deployment's log. It can be
stopped and restarted on the same state, or frozen (SIGSTOP) to play a slow witness.
:class:`AnsweringWitness` is an HTTP server in a thread that answers every submission with
a body a callback makes (garbage, or a cosignature over another checkpoint): the behaviour
of a broken or lying witness, which the real one never shows.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from gateway.config import load_settings
from ledger.cosignature import witness_verifier_key
from ledger.keys import create_key_file, load_key_file
from ledger.note import verifier_key
from tests.support.gateway_world import Deployment
from tests.support.http_stub import PostServer
from tests.support.paths import REPO
from voltproof.broker import free_port


@dataclass
class WitnessProcess:
    """One witness process accepting ``origin`` signed by ``log_key``."""

    workdir: Path
    origin: str
    log_key: str
    name: str = "lessor.example/witness-1"
    port: int = field(default_factory=free_port)
    vkey: str = ""
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        info = create_key_file(self.workdir / "witness.key", name=self.name)
        self.vkey = witness_verifier_key(info.name, info.public_key)
        (self.workdir / "witness.toml").write_text(
            'key_file = "witness.key"\nstate_file = "witness.sqlite3"\n'
            f'port = {self.port}\n[[logs]]\norigin = "{self.origin}"\nkeys = ["{self.log_key}"]\n',
            encoding="utf-8",
        )

    @classmethod
    def for_deployment(cls, workdir: Path, deployment: Deployment) -> WitnessProcess:
        """A witness of the deployment's log (its origin and gateway key)."""
        key = load_key_file(deployment.settings.key_file)
        return cls(
            workdir=workdir,
            origin=deployment.settings.origin,
            log_key=verifier_key(key.name, key.public_key),
        )

    @property
    def url(self) -> str:
        """The submission prefix the gateway is configured with."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        """What the witness process wrote."""
        path = self.workdir / "witness.log"
        return path.read_text(encoding="utf-8") if path.exists() else ""

    def start(self, timeout_s: float = 20.0) -> None:
        """Start the process and wait until it listens."""
        with (self.workdir / "witness.log").open("ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "voltproof", "witness", "--config", "witness.toml"],
                stdout=output,
                stderr=output,
                cwd=self.workdir,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.process.poll() is None, f"witness exited: {self.log}"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                assert time.monotonic() < deadline, f"witness not listening: {self.log}"
                time.sleep(0.05)
            else:
                return

    def stop(self) -> None:
        """SIGTERM and wait (a witness going down)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(20)
        self.process = None

    def freeze(self) -> None:
        """SIGSTOP: connections are accepted by the kernel and never answered."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT: the witness answers again."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(10)


class AnsweringWitness(PostServer):
    """An HTTP server answering each add-checkpoint body with ``answer(body)`` (200)."""

    def __init__(self, answer: Callable[[bytes], bytes]) -> None:
        self.requests = 0

        def counted(body: bytes) -> tuple[str, bytes]:
            self.requests += 1
            return "text/plain; charset=utf-8", answer(body)

        super().__init__(counted)


def with_witnesses(
    deployment: Deployment,
    witnesses: list[tuple[str, str, str]],
    *,
    timeout_s: float = 2.0,
    retry_max_s: float = 1.0,
) -> Deployment:
    """The deployment with ``[[witnesses]]`` (name, url, vkey) added to its gateway.toml."""
    text = deployment.config.read_text(encoding="utf-8")
    for name, url, key in witnesses:
        text += (
            f'[[witnesses]]\nname = "{name}"\nurl = "{url}"\nkey = "{key}"\n'
            f"timeout_s = {timeout_s}\nretry_max_s = {retry_max_s}\n"
        )
    deployment.config.write_text(text, encoding="utf-8")
    return Deployment(
        workdir=deployment.workdir,
        settings=load_settings(deployment.config),
        devices=deployment.devices,
    )
