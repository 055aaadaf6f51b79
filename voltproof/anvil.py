"""Start a local anvil EVM node for development, the demo, tests and benchmarks.

I/O: spawns a process and opens sockets. The binary comes from the npm package
``@foundry-rs/anvil-linux-amd64`` (``npm ci`` at the repository root installs it), the
``VOLTPROOF_ANVIL`` environment variable, or ``anvil`` on PATH.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from ledger.errors import VoltproofError

ANVIL_ENV = "VOLTPROOF_ANVIL"
NPM_BIN = Path("node_modules") / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
INSTALL_HINT = "run `npm ci` at the repository root (it installs @foundry-rs/anvil-linux-amd64)"


class AnvilError(VoltproofError, RuntimeError):
    """anvil is missing or did not start."""


def find_anvil() -> Path | None:
    """The anvil binary: ``$VOLTPROOF_ANVIL``, the npm package, or PATH."""
    override = os.environ.get(ANVIL_ENV)
    if override:
        return Path(override)
    for base in (Path(__file__).resolve().parents[2], Path.cwd()):
        candidate = base / NPM_BIN
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("anvil")
    return Path(found) if found else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rpc_request(url: str, method: str, params: list[Any], *, timeout: float = 5.0) -> Any:
    """One blocking JSON-RPC call (for node control: mining, snapshots)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    request = urllib.request.Request(  # noqa: S310 - the URL is a local node we started
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - as above
        reply = json.loads(response.read())
    if "error" in reply:
        raise AnvilError(f"{method}: {reply['error']}")
    return reply.get("result")


@dataclass(slots=True, kw_only=True)
class AnvilNode:
    """An anvil process on a free port; ``async with AnvilNode() as node: node.url``.

    ``block_time`` None mines a block per transaction; ``state`` keeps the chain in a file
    across ``stop``/``start`` (anvil ``--state``); ``genesis_s`` dates the genesis block
    (anvil ``--timestamp``; later blocks count on from it), so a chain can carry the dates of
    recorded telemetry.
    """

    binary: Path | None = None
    port: int = field(default_factory=free_port)
    block_time: float | None = None
    state: Path | None = None
    chain_id: int = 31337
    genesis_s: int | None = None
    start_timeout: float = 20.0
    _process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        """The JSON-RPC URL."""
        return f"http://127.0.0.1:{self.port}"

    def rpc(self, method: str, *params: Any) -> Any:
        """A blocking control call (``evm_mine``, ``evm_snapshot``, ...)."""
        return rpc_request(self.url, method, list(params))

    async def arpc(self, method: str, *params: Any) -> Any:
        """``rpc`` without blocking the event loop."""
        return await asyncio.to_thread(rpc_request, self.url, method, list(params))

    async def start(self) -> None:
        """Spawn anvil and wait until it answers."""
        binary = self.binary or find_anvil()
        if binary is None:
            raise AnvilError(f"anvil not found: {INSTALL_HINT}")
        args = [
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--chain-id", str(self.chain_id),
            "--accounts", "2",
        ]  # fmt: skip
        if self.block_time is not None:
            args += ["--block-time", str(self.block_time)]
        if self.state is not None:
            args += ["--state", str(self.state)]
        if self.genesis_s is not None:
            args += ["--timestamp", str(self.genesis_s)]
        self._process = await asyncio.create_subprocess_exec(
            str(binary),
            *args,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            async with asyncio.timeout(self.start_timeout):
                await self._wait_ready()
        except TimeoutError as exc:
            await self.stop()
            raise AnvilError(f"anvil did not answer on {self.url}") from exc

    async def _wait_ready(self) -> None:
        while True:
            assert self._process is not None
            if self._process.returncode is not None:
                raise AnvilError(f"anvil exited with code {self._process.returncode}")
            try:
                await self.arpc("eth_chainId")
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                await asyncio.sleep(0.05)
            else:
                return

    async def stop(self) -> None:
        """Stop anvil (it writes ``state`` on the way out) and wait for it."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            async with asyncio.timeout(10):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
