"""A gateway deployment directory for tests: keys, gateway.toml, enrolled devices."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from gateway.config import GatewaySettings, load_settings
from gateway.registry import Registry
from gateway.store import SqliteStore
from ledger.keys import create_key_file, load_key_file
from ledger.note import verifier_key
from tests.support.gateway_devices import FakeDevice
from voltproof.broker import MosquittoBroker, free_port

ORIGIN = "voltproof.test/gw-1"


@dataclass(frozen=True, slots=True, kw_only=True)
class Deployment:
    """Where a test gateway lives and what it knows."""

    workdir: Path
    settings: GatewaySettings
    devices: tuple[FakeDevice, ...]

    @property
    def gateway_key(self) -> str:
        """The gateway's C2SP verifier key."""
        key = load_key_file(self.settings.key_file)
        return verifier_key(key.name, key.public_key)

    @property
    def anchor_export(self) -> Path:
        """Where the anchor table export the operator publishes is written."""
        return self.workdir / "anchors.json"

    @property
    def config(self) -> Path:
        """The deployment's gateway.toml."""
        return self.workdir / "gateway.toml"


def write_deployment(
    workdir: Path,
    broker: MosquittoBroker,
    *,
    fleet: str = "fleet-a",
    devices: int = 4,
    every_leaves: int = 50,
    every_s: float = 0.5,
    metrics_port: int | None = None,
    client_id: str = "voltproof-gateway-test",
    enrolled_at_ms: int | None = None,
    username: str | None = None,
    password: str | None = None,
    share_group: str | None = None,
) -> Deployment:
    """Create keys and a gateway.toml in ``workdir`` and enrol ``devices`` fake devices.

    The devices are enrolled at ``enrolled_at_ms`` (default: now); a message may not start
    more than ten minutes before it.
    """
    (workdir / "keys").mkdir(parents=True, exist_ok=True)
    create_key_file(workdir / "keys" / "gateway.key", name=ORIGIN)
    create_key_file(workdir / "keys" / "operator.key", name="operator.test")
    port = free_port() if metrics_port is None else metrics_port
    (workdir / "gateway.toml").write_text(
        f'origin = "{ORIGIN}"\n'
        f'fleets = ["{fleet}"]\n'
        "[mqtt]\n"
        f'url = "{broker.url}"\n'
        f'client_id = "{client_id}"\n'
        + (f'username = "{username}"\npassword = "{password}"\n' if username else "")
        + (f'share_group = "{share_group}"\n' if share_group is not None else "")
        + "[pipeline]\n"
        "batch_wait_ms = 5\n"
        "[checkpoints]\n"
        f"every_leaves = {every_leaves}\n"
        f"every_s = {every_s}\n"
        "[anchors]\n"
        'backend = "local"\n'
        "refresh_s = 0.2\n"
        "[metrics]\n"
        f"port = {port}\n",
        encoding="utf-8",
    )
    settings = load_settings(workdir / "gateway.toml")
    fakes = tuple(
        FakeDevice(device_id=f"pack-{i:04d}", fleet=fleet, kind="pack") for i in range(devices)
    )
    asyncio.run(_enroll(settings, fakes, enrolled_at_ms))
    return Deployment(workdir=workdir, settings=settings, devices=fakes)


async def _enroll(
    settings: GatewaySettings, devices: tuple[FakeDevice, ...], enrolled_at_ms: int | None
) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = await SqliteStore.open(settings.db_path)
    try:
        operator = load_key_file(settings.operator_key_file)
        registry = (
            Registry(store=store, operator=operator)
            if enrolled_at_ms is None
            else Registry(store=store, operator=operator, clock_ms=lambda: enrolled_at_ms)
        )
        await registry.enroll([device.spec() for device in devices])
    finally:
        await store.close()
