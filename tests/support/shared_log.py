"""Several gateway processes on one PostgreSQL database behind one mosquitto.

Each gateway has its own folder, ``gateway.toml``, MQTT client id and log file; they share
the gateway and operator keys, the origin, the shared subscription group and ``store.url``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from gateway.config import GatewaySettings, load_settings
from gateway.registry import Registry
from gateway.store.postgresql import PostgresStore
from gateway.store.postgresql.election import SIGNER_APPLICATION, SIGNER_LOCK
from ledger.keys import create_key_file, load_key_file
from tests.support.gateway_devices import FakeDevice
from tests.support.gateway_world import ORIGIN, Deployment
from voltproof.broker import MosquittoBroker

_SIGNER_PID_SQL = (
    "SELECT a.application_name FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
    "AND ((l.classid::bigint << 32) | l.objid::bigint) = %s AND a.application_name LIKE %s"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SharedLog:
    """``count`` gateway configurations on one database and one broker."""

    root: Path
    url: str
    configs: tuple[Path, ...]
    settings: GatewaySettings
    devices: tuple[FakeDevice, ...]

    def log_file(self, number: int) -> Path:
        return self.configs[number].parent / "gateway.log"

    def start(self, number: int, *, store_url: str | None = None) -> subprocess.Popen[bytes]:
        """Gateway ``number`` as its own process, as an operator starts it (``store_url``:
        reach the database another way, e.g. through a proxy)."""
        config = str(self.configs[number])
        command = [sys.executable, "-m", "voltproof", "gateway", "--config", config]
        if store_url is not None:
            command += ["--store", store_url]
        with self.log_file(number).open("ab") as log:
            return subprocess.Popen(command, stdout=log, stderr=log)

    def events(self, name: str) -> list[dict[str, object]]:
        """Every JSON log line named ``name`` of every gateway."""
        found = []
        for number in range(len(self.configs)):
            path = self.log_file(number)
            if not path.is_file():
                continue
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                if f'"{name}"' not in line:
                    continue
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(event, dict) and event.get("event") == name:
                    found.append(event)
        return found

    def logs(self) -> str:
        """The tail of every gateway's log."""
        return "\n".join(
            f"--- gateway {n}\n{self.log_file(n).read_text(errors='replace')[-1500:]}"
            for n in range(len(self.configs))
            if self.log_file(n).is_file()
        )

    def wait_for_events(self, name: str, count: int, timeout_s: float = 30.0) -> None:
        """Wait until the gateways logged ``count`` events ``name`` in all."""
        deadline = time.monotonic() + timeout_s
        while len(self.events(name)) < count:
            assert time.monotonic() < deadline, f"{name} x{count}?\n{self.logs()}"
            time.sleep(0.05)

    def signer_pid(self) -> int | None:
        """The process id of the gateway holding the signer lock, if one does."""
        with psycopg.connect(self.url, autocommit=True) as db:
            row = db.execute(_SIGNER_PID_SQL, (SIGNER_LOCK, f"{SIGNER_APPLICATION}%")).fetchone()
        return None if row is None else int(str(row[0]).removeprefix(SIGNER_APPLICATION))

    def as_deployment(self) -> Deployment:
        """Gateway 0's view, for helpers written for one deployment."""
        return Deployment(
            workdir=self.configs[0].parent, settings=self.settings, devices=self.devices
        )


def write_shared_log(
    root: Path,
    broker: MosquittoBroker,
    url: str,
    *,
    count: int = 3,
    devices: int = 4,
    every_leaves: int = 40,
    every_s: float = 0.3,
    fleet: str = "fleet-a",
) -> SharedLog:
    """Keys, ``count`` gateway configurations sharing ``url``, and ``devices`` enrolled."""
    keys = root / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    create_key_file(keys / "gateway.key", name=ORIGIN)
    create_key_file(keys / "operator.key", name="operator.test")
    configs = []
    for number in range(count):
        folder = root / f"gw-{number}"
        folder.mkdir()
        (folder / "gateway.toml").write_text(
            f'origin = "{ORIGIN}"\n'
            f'fleets = ["{fleet}"]\n'
            f'key_file = "{os.path.relpath(keys / "gateway.key", folder)}"\n'
            f'operator_key_file = "{os.path.relpath(keys / "operator.key", folder)}"\n'
            "[mqtt]\n"
            f'url = "{broker.url}"\n'
            f'client_id = "voltproof-gateway-{number}"\n'
            "[pipeline]\n"
            "batch_wait_ms = 5\n"
            "[checkpoints]\n"
            f"every_leaves = {every_leaves}\n"
            f"every_s = {every_s}\n"
            "[anchors]\n"
            'backend = "memory"\n'
            "refresh_s = 0.2\n"
            "[store]\n"
            f'url = "{url}"\n'
            "signer_poll_s = 0.5\n"
            "[metrics]\n"
            "port = 0\n",
            encoding="utf-8",
        )
        configs.append(folder / "gateway.toml")
    settings = load_settings(configs[0])
    fakes = tuple(
        FakeDevice(device_id=f"pack-{i:04d}", fleet=fleet, kind="pack") for i in range(devices)
    )
    asyncio.run(_enroll(url, settings, fakes))
    return SharedLog(root=root, url=url, configs=tuple(configs), settings=settings, devices=fakes)


async def _enroll(url: str, settings: GatewaySettings, devices: tuple[FakeDevice, ...]) -> None:
    async with await PostgresStore.open(url) as store:
        operator = load_key_file(settings.operator_key_file)
        await Registry(store=store, operator=operator).enroll([d.spec() for d in devices])
