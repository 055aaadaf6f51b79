"""``voltproof demo``: the whole system on embedded defaults, on this machine.

It starts mosquitto with the project's configuration (per-device passwords and the ACL),
the gateway with the local ledger, the dashboard API and web page, and a simulated fleet
whose packs age fast enough for a state-of-health trend to show within minutes. It prints
the dashboard URL and a lessor's API key, shows progress, and stops cleanly on Ctrl-C or
after ``--duration``, leaving everything in ``--workdir`` for ``voltproof bundle`` and
``voltproof verify``.

With ``--store postgresql`` the log is kept in PostgreSQL instead of SQLite: the demo starts
its own cluster kept in the work directory (or uses the server of a given URL) and runs
:data:`POSTGRESQL_GATEWAYS` gateway processes on it, which split the fleet's messages through
one MQTT 5 shared subscription, append to one log and elect one checkpoint signer; the demo
says which one signs, and stops the others first so the signer's last checkpoint covers every
message. The cluster is stopped on the way out, whatever the way.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.store.errors import StoreError
from ledger.errors import VoltproofError
from ledger.private_files import open_private_log, private_dir

from .broker import ACL_CONF, INSTALL_HINT, MosquittoBroker, free_port
from .demo_report import progress_verdicts, schedule, summary_lines

if TYPE_CHECKING:
    from firmware_sim.gbt32960.encode import TerminalKey
    from gateway.config import GatewaySettings
    from gateway.store import CheckpointRecord

    from .anvil import AnvilNode
    from .demo_setup import DemoLayout
    from .postgres_cluster import PostgresCluster

DEFAULT_WORKDIR = Path("voltproof-demo")
DEFAULT_DEVICES = 48
DEFAULT_AGEING_ACCEL = 100_000.0
STOP_TIMEOUT_S = 45.0
SPARE_PACKS = 2
"""Packs of the demo fleet not installed in a bus (one of them replaces a pack in the swap)."""
MIN_DEVICES = 2 + SPARE_PACKS
"""The smallest demo: one bus, its pack and the spares."""
POSTGRESQL_GATEWAYS = 3
"""Gateway processes of a demo on PostgreSQL (one on SQLite: one process owns the file)."""
OWN_CLUSTER = "postgresql"
"""``--store`` value (without a URL) for a PostgreSQL cluster the demo starts itself."""
DEMO_DATABASE = "voltproof"


def buses_for(devices: int) -> int:
    """Buses of a demo of ``devices`` devices (each bus has one pack, plus the spares)."""
    return max(1, (devices - SPARE_PACKS) // 2)


class DemoError(VoltproofError, RuntimeError):
    """The demo cannot start; the message says what to do."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoOptions:
    """What the command line chose."""

    workdir: Path
    duration_s: float | None
    devices: int
    ledger: str
    api_port: int
    ageing_accel: float
    seed: int
    store: str | None = None
    """``None``: SQLite; :data:`OWN_CLUSTER`: a cluster in the work directory; else a
    ``postgresql://`` URL."""


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class Service:
    """One child process of the demo, with its log file."""

    name: str
    argv: list[str]
    log: Path
    env: Mapping[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process with its output going to its log file."""
        with os.fdopen(open_private_log(self.log), "ab") as out:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and argv
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                env={**os.environ, **self.env},
            )

    def alive(self) -> bool:
        """True while the process runs."""
        return self.process is not None and self.process.poll() is None

    def tail(self, lines: int = 15) -> str:
        """The end of the log, to explain a failure."""
        try:
            return "\n".join(self.log.read_text(encoding="utf-8").splitlines()[-lines:])
        except OSError:
            return ""

    async def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM, wait, then SIGKILL if it does not finish; return the exit code."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.to_thread(process.wait), timeout_s)
            except TimeoutError:
                process.kill()
        return process.wait()


async def _run_voltproof(*args: str) -> subprocess.CompletedProcess[str]:
    """Run a ``voltproof`` command to completion; its output captured."""
    return await asyncio.to_thread(
        subprocess.run, _voltproof(*args), capture_output=True, text=True, check=False
    )


def command_line() -> str:
    """How to run voltproof from a shell here: ``voltproof`` if that is on PATH and runs this
    interpreter's voltproof, else this interpreter with ``-m voltproof``."""
    import shlex
    import shutil

    found = shutil.which("voltproof")
    if found is not None and Path(found).resolve().parent == Path(sys.executable).resolve().parent:
        return "voltproof"
    return f"{shlex.quote(sys.executable)} -m voltproof"


def _voltproof(*args: str) -> list[str]:
    return [sys.executable, "-m", "voltproof", *args]


async def _wait_for_log(service: Service, marker: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        text = service.log.read_text(encoding="utf-8") if service.log.exists() else ""
        if marker in text.rsplit("gateway_stopped", 1)[-1]:
            return
        if not service.alive():
            raise DemoError(f"{service.name} exited at start:\n{service.tail()}")
        if time.monotonic() > deadline:
            raise DemoError(f"{service.name} did not start in {timeout_s:.0f} s:\n{service.tail()}")
        await asyncio.sleep(0.1)


async def _wait_for_port(service: Service, port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(_listening, port):
        if not service.alive():
            raise DemoError(f"{service.name} exited at start:\n{service.tail()}")
        if time.monotonic() > deadline:
            raise DemoError(f"{service.name} did not listen on port {port}:\n{service.tail()}")
        await asyncio.sleep(0.1)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


async def _wait_for_http(service: Service, url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            await asyncio.to_thread(urllib.request.urlopen, url, timeout=2)
        except (urllib.error.URLError, OSError):
            if not service.alive():
                raise DemoError(f"{service.name} exited at start:\n{service.tail()}") from None
            if time.monotonic() > deadline:
                raise DemoError(f"{service.name} did not answer at {url}") from None
            await asyncio.sleep(0.2)
        else:
            return


def read_metrics(port: int) -> dict[str, float]:
    """The gateway's Prometheus metrics as ``{name{labels}: value}`` (empty if unreachable)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return {}
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                values[name] = float(value)
            except ValueError:
                continue
    return values


def merge_metrics(readings: list[dict[str, float]]) -> dict[str, float]:
    """Several gateways' metrics as one: counters (``_total``) added up, and for a gauge the
    largest value (each gateway reads the same log, some a moment later than others)."""
    merged: dict[str, float] = {}
    for reading in readings:
        for name, value in reading.items():
            metric = name.partition("{")[0]
            if metric.endswith("_total"):
                merged[name] = merged.get(name, 0.0) + value
            else:
                merged[name] = max(merged.get(name, value), value)
    return merged


def progress_line(
    metrics: Mapping[str, float],
    elapsed_s: float,
    duration_s: float | None,
    *,
    signer: str | None = None,
) -> str:
    """One line of progress: time, messages, log, checkpoint and anchor (and on PostgreSQL
    which gateway signs)."""
    rejected = sum(
        v for k, v in metrics.items() if k.startswith("voltproof_messages_rejected_total")
    )
    if duration_s:
        done = min(1.0, elapsed_s / duration_s)
        filled = round(done * 20)
        clock = f"[{'#' * filled}{'.' * (20 - filled)}] {elapsed_s:4.0f}/{duration_s:.0f} s"
    else:
        clock = f"{elapsed_s:5.0f} s"
    return (
        f"{clock}  accepted {metrics.get('voltproof_messages_accepted_total', 0):.0f}"
        f"  rejected {rejected:.0f}"
        f"  log {metrics.get('voltproof_log_size', 0):.0f}"
        f"  checkpoint {metrics.get('voltproof_checkpoint_size', 0):.0f}"
        f"  anchored {metrics.get('voltproof_anchor_final_size', 0):.0f}"
        + (f"  signer {signer}" if signer else "")
        + (f"  verdicts: {verdicts}" if (verdicts := progress_verdicts(metrics)) else "")
    )


class Demo:
    """Starts the services in order, watches them, and stops them in reverse order."""

    def __init__(self, options: DemoOptions) -> None:
        from .demo_setup import DemoLayout

        self.options = options
        self.layout: DemoLayout = DemoLayout(root=options.workdir.resolve())
        self.services: list[Service] = []
        self.broker: MosquittoBroker | None = None
        self.anvil: AnvilNode | None = None
        self.keys: dict[str, str] = {}
        self.manufacturer = ""
        self.witness_key = ""
        self.stop = asyncio.Event()
        self.cluster: PostgresCluster | None = None
        self.store_url: str | None = None
        """The PostgreSQL store of this run (``None``: SQLite)."""
        self.gateways: list[Service] = []
        self.signer: Service | None = None
        """On PostgreSQL: the gateway last seen holding the signer lock."""
        self._metrics_ports: dict[str, int] = {}
        self._gbt_ports: list[int] = []
        self._final_metrics: dict[str, float] = {}
        self._accepted: dict[str, float] = {}
        self._terminals_stop = asyncio.Event()
        self._terminal_tasks: list[asyncio.Task[None]] = []

    async def run(self) -> int:
        """Run the demo until Ctrl-C, SIGTERM or the duration; return the exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop.set)
        checked = True
        try:
            urls = await self._start()
            self._banner(urls)
            await self._watch()
            await self._stop_services()
            self._report_injections()
            checked = await self.check_evidence()
        finally:
            await self._shutdown()
        self._next_steps()
        return 0 if checked else 1

    def _work_directory(self) -> None:
        """Make the work directory (0700), or say why it cannot be used."""
        root = self.layout.root
        try:
            private_dir(root)
        except OSError as exc:
            raise DemoError(f"cannot use {root} as the work directory: {exc.strerror}") from exc

    async def _start(self) -> dict[str, int]:
        from .demo_setup import (
            api_keys,
            broker_credentials,
            enroll_fleet,
            enroll_terminals,
            manufacturer_verifier_key,
            write_fleet,
            write_gateway_config,
            write_passport_setting,
            write_witness_config,
        )

        options, layout = self.options, self.layout
        self._work_directory()
        from .broker import find_mosquitto

        if find_mosquitto() is None:
            raise DemoError(f"mosquitto is not installed; install it with: {INSTALL_HINT}")
        await self._open_store()
        count = 1 if self.store_url is None else POSTGRESQL_GATEWAYS
        buses = buses_for(options.devices)
        fleet = write_fleet(
            layout, buses=buses, ageing_accel=options.ageing_accel, seed=options.seed
        )
        credentials = broker_credentials(layout, fleet, gateways=count)
        for line in schedule(fleet):
            self._say(f"will inject {line}")
        self.broker = self._broker(credentials, gateways=count)
        self._say(f"starting mosquitto on {self.broker.url} (per-device passwords, ACL)")
        await asyncio.to_thread(self.broker.start)
        anchors = await self._anchor_section()
        witness_port = free_port()
        self.witness_key, witnesses = write_witness_config(layout, port=witness_port)
        witness = Service(
            name="witness",
            argv=_voltproof("witness", "--config", str(layout.root / "witness" / "witness.toml")),
            log=layout.logs / "witness.log",
        )  # fmt: skip
        self._launch(witness)
        await _wait_for_port(witness, witness_port)
        self._say(f"the lessor's witness listens on http://127.0.0.1:{witness_port}")
        metrics_ports = [free_port() for _ in range(count)]
        gbt_ports = [free_port() for _ in range(count)]
        every = [
            write_gateway_config(
                layout,
                broker_url=self.broker.url,
                metrics_port=metrics_ports[n],
                anchors=anchors,
                witnesses=witnesses,
                gbt_port=gbt_ports[n],
                store_url=self.store_url,
                number=n + 1,
            )
            for n in range(count)
        ]
        settings = every[0]
        self._gbt_ports = gbt_ports
        try:
            enrolled = await enroll_fleet(settings, layout, fleet)
        except StoreError as exc:
            raise DemoError(f"the store cannot be used: {exc}") from exc
        write_passport_setting(layout)
        self.manufacturer = manufacturer_verifier_key(layout)
        self._say(f"fleet of {len(fleet.bus_ids())} buses and {len(fleet.pack_ids())} packs "
                  f"({enrolled} newly enrolled)")  # fmt: skip
        keys = await api_keys(settings, layout, fleet)
        terminals = await enroll_terminals(settings, layout)
        await self._start_gateways(credentials, metrics_ports)
        self._start_terminals(terminals, gbt_ports)
        wanted = options.api_port
        api_port = wanted if wanted and _port_free(wanted) else free_port()
        api = Service(
            name="api",
            argv=_voltproof("api", "--workdir", str(layout.root), "--port", str(api_port)),
            log=layout.logs / "api.log",
        )
        self._launch(api)
        await _wait_for_http(api, f"http://127.0.0.1:{api_port}/healthz")
        private_dir(layout.sim_state.parent)
        private_dir(layout.sim_state)
        sim_argv = [
            "sim", "--fleet", str(layout.fleet_file), "--broker", self.broker.url,
            "--state-dir", str(layout.sim_state),
            "--export-keys", str(layout.root / "device-keys.json"),
            "--summary-json", str(layout.root / "sim-summary.json"),
            "--gateway-key", str(layout.root / "gateway-verifier-key.txt"),
        ]  # fmt: skip
        self._launch(Service(name="sim", argv=_voltproof(*sim_argv), log=layout.logs / "sim.log"))
        self.keys = keys
        return {
            "api_port": api_port, "metrics_port": metrics_ports[0], "witness_port": witness_port,
            "gbt_port": gbt_ports[0],
        }  # fmt: skip

    def _broker(self, credentials: Mapping[str, str], *, gateways: int) -> MosquittoBroker:
        """mosquitto with every account's password and the ACL (one gateway block per
        gateway account)."""
        from .broker import write_password_file
        from .demo_setup import acl_text

        root = self.layout.root
        acl = ACL_CONF
        if gateways > 1:
            acl = private_dir(root / "broker") / "acl.conf"
            acl.write_text(acl_text(ACL_CONF.read_text(encoding="utf-8"), gateways=gateways))
        return MosquittoBroker(
            workdir=root / "broker",
            password_file=write_password_file(
                self.layout.secrets / "mosquitto.passwd", credentials
            ),
            acl_file=acl,
        )

    async def _start_gateways(
        self, credentials: Mapping[str, str], metrics_ports: list[int]
    ) -> None:
        """One gateway process per configuration written; wait until each has started."""
        from .demo_setup import gateway_user

        count = len(metrics_ports)
        for n in range(count):
            name = "gateway" if count == 1 else f"gateway-{n + 1}"
            gateway = Service(
                name=name,
                argv=_voltproof("gateway", "--config", str(self.layout.gateway_config_of(n + 1))),
                log=self.layout.logs / f"{name}.log",
                env={"VOLTPROOF_GATEWAY__MQTT__PASSWORD": credentials[gateway_user(n + 1)]},
            )
            self._launch(gateway)
            self.gateways.append(gateway)
            self._metrics_ports[name] = metrics_ports[n]
        for gateway in self.gateways:
            await _wait_for_log(gateway, '"gateway_started"')

    async def _open_store(self) -> None:
        """Choose the store of this run: refuse to mix SQLite and PostgreSQL in one work
        directory (the devices' chains continue from the last run's log), start the demo's own
        cluster or check that the given server answers."""
        from gateway.store.postgresql import PostgresStore, describe

        from .demo_setup import previous_store_url

        store, layout = self.options.store, self.layout
        previous = previous_store_url(layout)
        if store is None:
            if previous is not None or layout.postgresql.is_dir():
                raise DemoError(
                    f"{layout.root} keeps its log on PostgreSQL: run the demo with --store "
                    "postgresql (or postgresql://... for the server it used), or use another "
                    "--workdir"
                )
            return
        if (layout.root / "gateway" / "gateway.db").exists():
            raise DemoError(
                f"{layout.root} keeps its log in SQLite (gateway/gateway.db): use another "
                "--workdir for a demo on PostgreSQL (`voltproof migrate` moves a log over)"
            )
        if store == OWN_CLUSTER:
            from .postgres_cluster import PostgresCluster, PostgresUnavailableError

            self._say(f"starting PostgreSQL (cluster kept in {layout.postgresql})")
            private_dir(layout.postgresql)
            try:
                self.cluster = await asyncio.to_thread(PostgresCluster.keep_in, layout.postgresql)
                self.store_url = await asyncio.to_thread(
                    self.cluster.ensure_database, DEMO_DATABASE
                )
            except PostgresUnavailableError as exc:
                raise DemoError(str(exc)) from exc
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                raise DemoError(f"PostgreSQL did not start: {exc}") from exc
            self._say(f"PostgreSQL listens on {describe(self.store_url)} "
                      f"(server {self.cluster.data_dir})")  # fmt: skip
        else:
            self.store_url = store
        try:
            async with await PostgresStore.open(self.store_url, pool_size=1):
                pass  # reachable, and the schema created or migrated
        except StoreError as exc:
            raise DemoError(f"cannot use the PostgreSQL store: {exc}") from exc

    def _start_terminals(
        self, terminals: list[tuple[str, int, TerminalKey]], ports: list[int]
    ) -> None:
        """GB/T 32960 vehicles (2016 and 2025 terminals), each reporting to one gateway's
        listener (spread over the gateways in turn)."""
        from firmware_sim.gbt32960.terminal import Terminal

        for number, (vin, edition, key) in enumerate(terminals):
            port = ports[number % len(ports)]
            terminal = Terminal(vin=vin, edition=edition, key=key, host="127.0.0.1", port=port)
            self._terminal_tasks.append(
                asyncio.create_task(terminal.run(self._terminals_stop), name=f"gbt32960-{vin}")
            )
        self._say(f"{len(terminals)} GB/T 32960 terminals (2016 and 2025 editions) report over TCP")

    async def _anchor_section(self) -> str:
        if self.options.ledger == "local":
            return '[anchors]\nbackend = "local"\nrefresh_s = 2\n'
        from .demo_evm import start_evm_ledger

        return await start_evm_ledger(self)

    def _launch(self, service: Service) -> None:
        service.start()
        self.services.append(service)

    def _say(self, text: str) -> None:
        print(f"voltproof demo: {text}", flush=True)

    def _banner(self, urls: Mapping[str, int]) -> None:
        from .demo_setup import LESSOR_KEY_NAME, OPERATOR_KEY_NAME

        api = f"http://127.0.0.1:{urls['api_port']}"
        if len(self.gateways) == 1:
            gateways = [f"  gateway        http://127.0.0.1:{urls['metrics_port']}/metrics"]
        else:
            from gateway.store.postgresql import describe

            assert self.store_url is not None
            gateways = [
                f"  {name:<14} pid {service.process.pid if service.process else '-'}  "
                f"http://127.0.0.1:{self._metrics_ports[name]}/metrics"
                for name, service in ((g.name, g) for g in self.gateways)
            ] + [f"  log store      {describe(self.store_url)}  (one log, one elected signer)"]
        lines = [
            "",
            f"  dashboard      {api}/",
            f"  API (OpenAPI)  {api}/docs",
            *gateways,
            "  gb/t 32960     " + ", ".join(f"tcp://127.0.0.1:{p}" for p in self._gbt_ports),
            f"  witness        http://127.0.0.1:{urls['witness_port']}  key {self.witness_key}",
            f"  operator key   {self.keys[OPERATOR_KEY_NAME]}",
            f"  lessor key     {self.keys[LESSOR_KEY_NAME]}   (leases bus-0000 and pack-0000)",
            f"  manufacturer   {self.manufacturer}   (voltproof verify --manufacturer)",
            f"  workdir        {self.layout.root}   (logs in logs/)",
            "",
            "  Ctrl-C stops everything cleanly.",
            "",
        ]
        print("\n".join(lines), flush=True)

    def _read_metrics(self) -> dict[str, dict[str, float]]:
        """Every gateway's metrics, by gateway name."""
        return {name: read_metrics(port) for name, port in self._metrics_ports.items()}

    async def _watch_signer(self) -> None:
        """On PostgreSQL: ask the database which gateway holds the signer lock; say so when it
        changes."""
        if self.store_url is None:
            return
        from gateway.store import StoreError
        from gateway.store.postgresql.election import signer_process

        try:
            pid = await signer_process(self.store_url, timeout_s=2.0)
        except StoreError:
            return  # no answer this time: the next look asks again
        signer = next(
            (g for g in self.gateways if g.process is not None and g.process.pid == pid), None
        )
        if signer is not None and signer is not self.signer:
            self.signer = signer
            self._say(f"{signer.name} (pid {pid}) is the elected checkpoint signer")

    async def _watch(self) -> None:
        started = time.monotonic()
        tty = sys.stdout.isatty()
        last_print = 0.0
        while not self.stop.is_set():
            elapsed = time.monotonic() - started
            if self.options.duration_s is not None and elapsed >= self.options.duration_s:
                break
            dead = [s for s in self.services if not s.alive()]
            if dead:
                raise DemoError(f"{dead[0].name} stopped unexpectedly:\n{dead[0].tail()}")
            await self._watch_signer()
            if tty or elapsed - last_print >= 10:
                readings = await asyncio.to_thread(self._read_metrics)
                line = progress_line(
                    merge_metrics(list(readings.values())), elapsed, self.options.duration_s,
                    signer=self.signer.name if self.signer is not None else None,
                )  # fmt: skip
                print(f"\r{line}" if tty else line, end="" if tty else "\n", flush=True)
                last_print = elapsed
            try:
                await asyncio.wait_for(self.stop.wait(), timeout=1.0)
            except TimeoutError:
                continue
        if tty:
            print()

    async def _stop_services(self) -> None:
        """Stop the terminals, the simulator, the API and the gateways (reverse start order),
        once; on PostgreSQL the gateways that do not sign first, so the signer's last
        checkpoint covers every message."""
        if self._terminal_tasks:
            self._terminals_stop.set()
            await asyncio.wait(self._terminal_tasks, timeout=STOP_TIMEOUT_S)
            self._terminal_tasks.clear()
        await self._watch_signer()
        if self.signer is not None and self.signer in self.services:
            # Stopped last of the gateways: the list is stopped from its end.
            first = min(self.services.index(g) for g in self.gateways if g in self.services)
            self.services.remove(self.signer)
            self.services.insert(first, self.signer)
        while self.services:
            service = self.services.pop()
            if service.process is None:
                continue
            self._say(f"stopping {service.name}")
            code = await service.stop()
            if service.name == "sim" and self._metrics_ports:
                # The simulator has stopped: the gateways' verdicts on what it injected.
                readings = await asyncio.to_thread(self._read_metrics)
                self._final_metrics = merge_metrics(list(readings.values()))
                self._accepted = {
                    name: reading.get("voltproof_messages_accepted_total", 0.0)
                    for name, reading in readings.items()
                }
                if len(readings) > 1:
                    self._say(
                        "one log, messages accepted by "
                        + ", ".join(f"{n} {v:.0f}" for n, v in self._accepted.items())
                    )
            if code not in (0, None, -signal.SIGTERM):
                self._say(f"{service.name} exited with {code}; see {service.log}")
        if (
            self.options.ledger == "local"
            and (self.layout.root / "gateway" / "anchors.db").exists()
        ):
            await self._export_local_anchors()

    def _report_injections(self) -> None:
        """Say what the simulator injected and what the gateway decided about each."""
        import json

        path = self.layout.root / "sim-summary.json"
        try:
            sim = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self._say(f"no simulator summary at {path}: nothing to report on injections")
            return
        for line in summary_lines(sim, self._final_metrics):
            self._say(line)

    async def check_evidence(self) -> bool:
        """Do what a lessor would: bundle pack-0000's evidence and verify it offline.

        Runs the same commands :meth:`_next_steps` prints, trusting only the gateway's
        verifier key, the ledger and the lessor's witness (its cosignature on the bundle's
        checkpoint; late data would fail the check too). False (and the verifier's words) if
        it does not verify.
        """
        root = self.layout.root
        try:
            anchored = await self._anchored()
        except StoreError as exc:
            self._say(f"the log cannot be read: {exc}")
            return False
        if anchored is None:
            self._say("no checkpoint is anchored yet: nothing to check offline")
            return True
        bundle = root / "pack-0000.bundle"
        self._say("checking the evidence of pack-0000 offline (voltproof bundle, verify)")
        made = await _run_voltproof(
            "bundle", "--workdir", str(root), "--asset", "pack-0000", "--out", str(bundle)
        )
        if made.returncode != 0:
            self._say(f"the bundle could not be built: {made.stderr.strip()}")
            return False
        verify = ["verify", str(bundle), "--gateway-key", str(root / "gateway-verifier-key.txt")]
        maker = root / "manufacturer-verifier-key.txt"
        if maker.is_file():
            # Every device key must carry the manufacturer's birth certificate.
            verify += ["--manufacturer", maker.read_text(encoding="utf-8").strip()]
        if self.options.ledger == "local":
            verify += ["--anchors", str(self.layout.anchor_export)]
        elif self.anvil is not None:
            verify += ["--rpc", self.anvil.url]
        witness = root / "witness" / "witness-verifier-key.txt"
        if witness.is_file():
            # The lessor's own witness must have cosigned the bundle's checkpoint.
            verify += ["--witness", str(witness)]
        from .cli.exits import ExitCode  # the CLI package imports this module

        verified = await _run_voltproof(*verify)
        print("\n".join(f"  {line}" for line in verified.stdout.strip().splitlines()), flush=True)
        if verified.returncode == ExitCode.INCOMPLETE:
            self._say("the evidence is valid but NOT complete or not independently anchored")
            return False
        if verified.returncode != 0:
            self._say(f"the evidence did NOT verify: {verified.stderr.strip()}")
            return False
        return True

    async def _anchored(self) -> CheckpointRecord | None:
        """The latest anchored checkpoint of the demo's log (``None``: none, or no log)."""
        from gateway.config import ConfigError, load_settings
        from gateway.store_choice import open_store_reader

        try:
            settings: GatewaySettings = load_settings(self.layout.gateway_config)
        except ConfigError:
            return None
        if settings.store.url is None and not settings.db_path.exists():
            return None
        reader = await open_store_reader(settings)
        try:
            return await reader.latest_final_checkpoint()
        finally:
            await reader.close()

    async def _shutdown(self) -> None:
        try:
            await self._stop_services()
            if self.broker is not None:
                await asyncio.to_thread(self.broker.stop)
            from .demo_evm import stop_evm_ledger

            await stop_evm_ledger(self)
        finally:
            if self.cluster is not None:
                self._say("stopping PostgreSQL")
                await asyncio.to_thread(self.cluster.stop)
                self.cluster = None

    async def _export_local_anchors(self) -> None:
        from ledger.anchors.local import LocalAnchorBackend
        from ledger.keys import load_key_file

        key = load_key_file(self.layout.keys / "gateway.key")
        backend = await LocalAnchorBackend.open(
            self.layout.root / "gateway" / "anchors.db", seed=key.seed
        )
        try:
            await backend.export(self.layout.anchor_export)
        finally:
            await backend.aclose()

    def _next_steps(self) -> None:
        root = self.layout.root
        cli = command_line()
        anchor = (
            f" --anchors {self.layout.anchor_export}"
            if self.options.ledger == "local"
            else " --rpc <the node's URL>"
        )
        lines = [
            "",
            f"Everything is kept in {root}. To check the evidence offline:",
            f"  {cli} bundle --workdir {root} --asset pack-0000 --out pack-0000.bundle",
            f"  {cli} verify pack-0000.bundle"
            f" --gateway-key {root / 'gateway-verifier-key.txt'}{anchor}"
            f' --manufacturer "$(cat {root / "manufacturer-verifier-key.txt"})"'
            f" --witness {root / 'witness' / 'witness-verifier-key.txt'}",
            f"  {cli} report pack-0000.bundle"
            f" --witness {root / 'witness' / 'witness-verifier-key.txt'}",
        ]
        if self.options.ledger == "evm":
            lines.append(
                f"The chain is kept in {root / 'evm' / 'anvil-state.json'}: it runs again with "
                "the next `--ledger evm` demo (or `anvil --state FILE`)."
            )
        if self.options.store == OWN_CLUSTER:
            lines.append(
                f"The log is in the PostgreSQL cluster kept in {self.layout.postgresql}, stopped "
                f"now: `{cli} demo --workdir {root} --store postgresql` starts it again (bundle, "
                "verify and audit need it running)."
            )
        store = (
            ""
            if self.options.store is None
            else " --store "
            + (OWN_CLUSTER if self.options.store == OWN_CLUSTER else "<the same URL>")
        )
        lines.append(f"`{cli} demo --workdir {root}{store}` continues the same fleet and log.")
        print("\n".join(lines), flush=True)
