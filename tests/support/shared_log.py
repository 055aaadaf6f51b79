"""Several gateway processes on one PostgreSQL database behind one mosquitto.

Each gateway has its own folder, ``gateway.toml``, MQTT client id and log file; they share
the gateway and operator keys, the origin, the shared subscription group and ``store.url``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from gateway.audit import CheckReport, audit_store
from gateway.config import GatewaySettings, load_settings
from gateway.registry import Registry
from gateway.store.postgresql import PostgresStore
from gateway.store.postgresql.election import SIGNER_APPLICATION, SIGNER_LOCK
from ledger.checkpoint import verify_checkpoint
from ledger.keys import create_key_file, load_key_file
from ledger.merkle import verify_consistency
from ledger.note import verifier_key
from tests.support.gateway_devices import FakeDevice
from tests.support.gateway_world import ORIGIN, Deployment
from tests.support.processes import Streamer
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


def stop_gateways(gateways: list[subprocess.Popen[bytes]]) -> list[int]:
    """SIGTERM every gateway; their exit codes (a gateway still running after a minute is
    killed and reported as -9)."""
    for gateway in gateways:
        gateway.send_signal(signal.SIGTERM)
    codes = []
    for gateway in gateways:
        try:
            codes.append(gateway.wait(60))
        except subprocess.TimeoutExpired:
            gateway.kill()
            gateway.wait(10)
            codes.append(-9)
    return codes


@contextmanager
def streaming(
    shared: SharedLog, gateways: list[subprocess.Popen[bytes]], broker: MosquittoBroker
) -> Iterator[Streamer]:
    """A publisher streaming to ``gateways`` during the block; afterwards it stops, the log
    must come to hold every message it published, and every gateway (``gateways`` as the
    block left it) must stop cleanly on SIGTERM."""
    streamer = Streamer(shared.as_deployment(), broker)
    streamer.start()
    try:
        yield streamer
        streamer.finish()
        wait_for_size(shared, len(shared.devices) + len(streamer.sent))
    finally:
        streamer.stop.set()
        codes = stop_gateways(gateways)
    assert codes == [0] * len(gateways), shared.logs()


def wait_for_size(shared: SharedLog, size: int, timeout_s: float = 90.0) -> None:
    """Wait until the shared log holds ``size`` leaves."""

    async def run() -> None:
        deadline = time.monotonic() + timeout_s
        async with await PostgresStore.open(shared.url) as store:
            while (now := (await store.log_head()).size) < size:
                assert time.monotonic() < deadline, f"log at {now} < {size}\n{shared.logs()}"
                await asyncio.sleep(0.1)

    asyncio.run(run())


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """What a run over a shared log left: each count must be zero, the report clean."""

    published: int
    logged: int
    lost: int
    duplicated: int
    foreign: int
    checkpoints: int
    forked_sizes: tuple[int, ...]
    """Sizes for which the gateways' logs show two different signed roots."""
    report: CheckReport


def verdict(shared: SharedLog, sent: list[bytes]) -> Verdict:
    """Count lost, duplicated and foreign messages; verify every checkpoint's signature and
    its consistency with the next (raises if one fails); audit the store."""
    return asyncio.run(_verdict(shared, sent))


async def _verdict(shared: SharedLog, sent: list[bytes]) -> Verdict:
    key = load_key_file(shared.settings.key_file)
    trusted = verifier_key(key.name, key.public_key)
    async with await PostgresStore.open(shared.url) as store:
        head = await store.log_head()
        leaves = await store.leaves_page(after=-1, limit=head.size)
        logged = [leaf.cose for leaf in leaves[len(shared.devices) :]]
        checkpoints = sorted(await store.checkpoints(limit=100_000), key=lambda c: c.size)
        for checkpoint in checkpoints:
            verify_checkpoint(checkpoint.note, verifier_key=trusted)
        for older, newer in itertools.pairwise(checkpoints):
            verify_consistency(
                size1=older.size, size2=newer.size, root1=older.root, root2=newer.root,
                proof=await store.consistency_proof(older.size, newer.size),
            )  # fmt: skip
        report = await audit_store(
            store, origin=shared.settings.origin, key_name=key.name, public_key=key.public_key
        )
    roots: dict[int, set[str]] = {}
    for event in shared.events("checkpoint_signed"):
        roots.setdefault(int(str(event["size"])), set()).add(str(event["root"]))
    return Verdict(
        published=len(sent),
        logged=len(logged),
        lost=len(set(sent) - set(logged)),
        duplicated=len(logged) - len(set(logged)),
        foreign=len(set(logged) - set(sent)),
        checkpoints=len(checkpoints),
        forked_sizes=tuple(sorted(size for size, seen in roots.items() if len(seen) > 1)),
        report=report,
    )
