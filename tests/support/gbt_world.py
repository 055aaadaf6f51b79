"""A gateway deployment with GB/T 32960 terminals enrolled, and a TCP terminal client."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from types import TracebackType

from gateway.config import load_settings
from gateway.registry import DeviceSpec, Registry
from gateway.store import SqliteStore
from ledger.gbt32960 import Terminal, placeholder_key
from ledger.keys import load_key_file
from tests.support.gateway_world import Deployment, write_deployment
from voltproof.broker import MosquittoBroker


def gbt_deployment(
    workdir: object, broker: MosquittoBroker, terminals: dict[str, bytes]
) -> Deployment:
    """A deployment (no MQTT devices) with the listener on a free port and ``terminals``
    (VIN -> SM2 public key) enrolled as buses of fleet-a."""
    from pathlib import Path

    assert isinstance(workdir, Path)
    deployment = write_deployment(workdir, broker, devices=0)
    with deployment.config.open("a", encoding="utf-8") as config:
        config.write('[gbt32960]\nenabled = true\nhost = "127.0.0.1"\nport = 0\n')
    settings = load_settings(deployment.config)
    asyncio.run(_enroll(settings.db_path, settings.operator_key_file, terminals))
    return Deployment(workdir=workdir, settings=settings, devices=())


async def _enroll(db: object, operator_key: object, terminals: dict[str, bytes]) -> None:
    from pathlib import Path

    assert isinstance(db, Path)
    assert isinstance(operator_key, Path)
    store = await SqliteStore.open(db)
    try:
        registry = Registry(store=store, operator=load_key_file(operator_key))
        await registry.enroll([
            DeviceSpec(
                device_id=vin, kind="bus", fleet="fleet-a", public_key=placeholder_key(vin),
                terminal=Terminal(vin=vin, chip=f"chip-{vin[-4:]}", sm2=key),
            )
            for vin, key in terminals.items()
        ])  # fmt: skip
    finally:
        await store.close()


@dataclass
class TerminalConnection:
    """One terminal's TCP connection to the gateway's listener."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    @classmethod
    async def open(cls, host: str, port: int) -> TerminalConnection:
        """Connect."""
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def __aenter__(self) -> TerminalConnection:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def send(self, frame: bytes) -> None:
        """Send bytes (a frame, or anything)."""
        self.writer.write(frame)
        await self.writer.drain()

    async def answer(self) -> bytes:
        """The next answer frame (header, announced length, check code)."""
        header = await asyncio.wait_for(self.reader.readexactly(24), 20)
        rest = await asyncio.wait_for(
            self.reader.readexactly(int.from_bytes(header[22:24], "big") + 1), 20
        )
        return header + rest

    async def ask(self, frame: bytes) -> bytes:
        """Send a frame and return the answer."""
        await self.send(frame)
        return await self.answer()

    async def closed_by_peer(self) -> bool:
        """Whether the gateway closed the connection (reads EOF)."""
        data = await asyncio.wait_for(self.reader.read(1), 20)
        return data == b""

    async def close(self) -> None:
        """Close this side."""
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()
