"""``voltproof sim``: thousands of agents in one process, in real time, against a broker.

Each device is a real agent (:class:`~firmware_sim.agent.Device` and its own MQTT
:class:`~firmware_sim.agent.Link` with its own client id, last will and credentials); one
ticker task samples every device each second instead of one sleeping task per device. All
chains and outboxes share one SQLite file (``synchronous=NORMAL``: a crash of the simulator
loses nothing committed; a power cut may lose the last commits of every device at once, which
is what the simulator's state is for: restarting it continues every chain).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

from firmware_sim.agent import Backoff, Batcher, ChainStore, Device, Link, LinkConfig
from firmware_sim.agent.link import ReceiptConfig
from firmware_sim.agent.source import SampleSource, SteadySource
from firmware_sim.physics import PackSource as PhysicsPackSource
from firmware_sim.physics import PackUnit, Vehicle, build_vehicle
from firmware_sim.physics.pack import PackConfig
from ledger.errors import VoltproofError
from ledger.protocol import receipt_topic, status_topic, telemetry_topic
from ledger.telemetry import Kind

from . import attacks
from .fleet import Fleet
from .keys import DeviceKey, FleetKeyError, export_keys, load_or_create
from .sources import PhysicsReading, SkewedSteady
from .summary import Summary

log = logging.getLogger("voltproof.sim")
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class SimError(VoltproofError, RuntimeError):
    """The simulation cannot start (keys, state, credentials or broker URL)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SimOptions:
    """How to run a fleet (command-line options)."""

    broker_url: str
    state_dir: Path
    duration_s: float | None = None
    export_keys: Path | None = None
    summary_json: Path | None = None
    progress_every_s: float = 10.0
    progress: TextIO | None = None
    gateway_key: bytes | None = None
    """The gateway's Ed25519 public key: agents keep messages until a receipt signed by it
    covers them (``None``: the broker's PUBACK releases them)."""
    resend_after_s: float = 10.0


@dataclass(slots=True, kw_only=True)
class SimDevice:
    """One simulated device: its agent core, link and source."""

    key: DeviceKey
    device: Device
    link: Link
    source: SampleSource
    last: bytes | None = None
    first: bytes | None = None


def _broker(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise SimError(f"--broker must be mqtt://host[:port], not {url}")
    return parts.hostname, parts.port or 1883


def _passwords(fleet: Fleet) -> dict[str, str]:
    path = fleet.credentials.password_file
    if not fleet.credentials.per_device or path is None:
        return {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SimError(f"cannot read credentials.password_file {path}: {exc.strerror}") from exc
    return dict(line.split(":", 1) for line in lines if ":" in line)


def _sources(
    fleet: Fleet, start_ms: int
) -> tuple[dict[str, SampleSource], list[Vehicle], list[PackUnit]]:
    """Sources per device id, the vehicles and the spare pack units (full physics)."""
    rng = random.Random(fleet.seed)  # noqa: S311 - simulation, not crypto
    n_skew = round(fleet.faults.clock_skew_fraction * (fleet.buses * 2 + fleet.spare_packs))
    skew_ms = round(fleet.faults.clock_skew_s * 1000)
    all_ids = fleet.bus_ids() + fleet.pack_ids()
    skewed = set(rng.sample(all_ids, n_skew)) if n_skew else set()
    sources: dict[str, SampleSource] = {}
    vehicles: list[Vehicle] = []
    spares: list[PackUnit] = []
    pack_config = PackConfig(ageing_accel=fleet.ageing_accel)  # the fleet's, for every pack
    for index, (bus_id, pack_id) in enumerate(zip(fleet.bus_ids(), fleet.pack_ids(), strict=False)):
        if fleet.physics == "steady":
            for dev, kind, extra in ((bus_id, "bus", (pack_id,)), (pack_id, "pack", ())):
                steady = SteadySource(
                    kind="bus" if kind == "bus" else "pack",
                    seed=fleet.seed + index,
                    packs=extra,
                    host=bus_id if kind == "pack" else None,
                )
                sources[dev] = SkewedSteady(source=steady, skew_ms=skew_ms if dev in skewed else 0)
            continue
        vehicle, bus, pack = build_vehicle(
            bus_id=bus_id,
            pack_id=pack_id,
            seed=fleet.seed * 100_003 + index,
            start_ms=start_ms,
            pack_config=pack_config,
        )
        vehicles.append(vehicle)
        for dev, src in ((bus_id, bus), (pack_id, pack)):
            sources[dev] = PhysicsReading(source=src, skew_ms=skew_ms if dev in skewed else 0)
    for pack_id in fleet.pack_ids()[fleet.buses :]:
        if fleet.physics == "steady":
            sources[pack_id] = SteadySource(kind="pack", seed=fleet.seed)
            continue
        unit = PackUnit(
            device_id=pack_id,
            seed=fleet.seed * 7 + len(spares),
            start_ms=start_ms,
            config=pack_config,
        )
        spares.append(unit)
        sources[pack_id] = PhysicsReading(source=PhysicsPackSource(unit))
    return sources, vehicles, spares


class FleetRun:
    """The state of one simulator run (built by :func:`run`)."""

    def __init__(self, fleet: Fleet, options: SimOptions, *, clock: Clock) -> None:
        self.fleet = fleet
        self.options = options
        self.clock = clock
        self.rng = random.Random(fleet.seed)  # noqa: S311 - simulation, not crypto
        self.devices: list[SimDevice] = []
        self.summary = Summary(fleet=fleet.name, devices=0)
        self.vehicles: list[Vehicle] = []
        self.spares: list[PackUnit] = []

    def build(self, store: ChainStore, keys: dict[str, DeviceKey]) -> None:
        """Create every device's agent core, link and source."""
        host, port = _broker(self.options.broker_url)
        passwords = _passwords(self.fleet)
        creds = self.fleet.credentials
        sources, self.vehicles, self.spares = _sources(self.fleet, int(self.clock() * 1000))
        for dev, key in keys.items():
            kind: Kind = "bus" if key.kind == "bus" else "pack"
            username = dev if creds.per_device else creds.shared_username
            password = (
                passwords.get(dev)
                if creds.per_device
                else (creds.shared_password.get_secret_value() if creds.shared_password else None)
            )
            if creds.per_device and password is None:
                raise SimError(f"no password for {dev} in {creds.password_file}")
            config = LinkConfig(
                dev=dev,
                host=host,
                port=port,
                topic=telemetry_topic(self.fleet.name, dev),
                status_topic=status_topic(self.fleet.name, dev),
                username=username,
                password=password,
                max_inflight=self.fleet.max_inflight,
                historical_after_ms=2000 * self.fleet.period_s,
                receipts=(
                    ReceiptConfig(
                        topic=receipt_topic(self.fleet.name, dev),
                        gateway_key=self.options.gateway_key,
                        resend_after_s=self.options.resend_after_s,
                        resend_cap_s=max(self.options.resend_after_s, 60.0),
                    )
                    if self.options.gateway_key is not None
                    else None
                ),
            )
            link = Link(
                config=config,
                store=store,
                clock=self.clock,
                backoff=Backoff(base_s=0.5, cap_s=30.0, rng=random.Random(dev)),  # noqa: S311 - jitter
            )
            batcher = Batcher(kind=kind, period=self.fleet.period_s)
            device = Device(dev=dev, seed=key.seed, store=store, batcher=batcher)
            self.devices.append(SimDevice(key=key, device=device, link=link, source=sources[dev]))
        self.summary.devices = len(self.devices)

    def tick(self, t_ms: int) -> None:
        """Sample every device at ``t_ms`` and hand due messages to their links."""
        now_ms = int(self.clock() * 1000)
        for sim in self.devices:
            entries = sim.device.ingest(sim.source.read(t_ms), now_ms=now_ms)
            if entries:
                sim.last = entries[-1].data
                sim.first = sim.first or entries[0].data
                self.summary.committed += len(entries)
                sim.link.notify()

    def refresh(self, started: float) -> None:
        """Recompute the summary's totals from the links and the store."""
        s = self.summary
        s.elapsed_s = self.clock() - started
        s.published = s.acked = s.historical = s.reconnects = s.link_failures = 0
        s.buffered = s.dropped = s.logged = s.receipts_refused = 0
        s.receipts_checked = self.options.gateway_key is not None
        for sim in self.devices:
            stats = sim.link.stats
            s.published += stats.published
            s.acked += stats.acked
            s.logged += stats.released
            s.receipts_refused += stats.receipts_refused
            s.historical += stats.historical
            s.reconnects += stats.connects
            s.link_failures += stats.failures
            outbox = sim.device.store.stats(sim.key.dev)
            s.buffered += outbox.count
            s.dropped += outbox.dropped_total


class _StopError(VoltproofError):
    """Ends the run's task group."""


async def _ticker(run: FleetRun, sleep: Sleep) -> None:
    next_ms = (int(run.clock() * 1000) // 1000 + 1) * 1000
    while True:
        await sleep(max(0.0, next_ms / 1000 - run.clock()))
        lag = run.clock() * 1000 - next_ms
        run.summary.max_tick_lag_ms = max(run.summary.max_tick_lag_ms, lag)
        run.tick(next_ms)
        run.summary.ticks += 1
        next_ms += 1000


async def _start_link(link: Link, delay: float, sleep: Sleep) -> None:
    await sleep(delay)
    await link.run()


async def _offline_window(run: FleetRun, sleep: Sleep) -> None:
    spec = run.fleet.faults.offline
    count = round(spec.fraction * len(run.devices))
    if not count:
        return
    chosen = run.rng.sample(run.devices, count)
    await sleep(spec.start_s)
    for sim in chosen:
        sim.link.offline = True
        sim.link.notify()
    run.summary.faults["offline"] += count
    await sleep(spec.duration_s)
    for sim in chosen:
        sim.link.offline = False
        sim.link.notify()


async def _pack_swaps(run: FleetRun, sleep: Sleep) -> None:
    swaps = run.fleet.faults.pack_swaps
    if not swaps:
        return
    await sleep(run.fleet.faults.pack_swap_at_s)
    for vehicle, spare in zip(run.vehicles[:swaps], run.spares[:swaps], strict=False):
        removed = vehicle.swap_pack(spare)
        run.spares.append(removed)
        run.summary.faults["pack_swap"] += 1


def _build(  # noqa: PLR0911 - one return per attack kind reads as a table
    kind: str, sim: SimDevice, victim: str, rng: random.Random
) -> attacks.Injection:
    """One injection of ``kind`` by ``sim`` (which has published at least one message)."""
    dev, seed, last, first = sim.key.dev, sim.key.seed, sim.last or b"", sim.first or b""
    match kind:
        case "forged_signature":
            return attacks.forged_signature(dev, last)
        case "replay":
            return attacks.replay(dev, first)
        case "reorder":
            return attacks.reorder(dev, last, seed)
        case "fork":
            return attacks.fork(dev, last, seed)
        case "wrong_topic":
            return attacks.wrong_topic(dev, last, victim)
        case "wrong_kid":
            return attacks.wrong_kid(dev, last, seed, victim)
        case "garbage":
            return attacks.garbage(dev, rng)
        case _:
            return attacks.oversized(dev, rng)


def _injections(run: FleetRun) -> list[attacks.Injection]:
    """The attack messages the fleet file asks for, from devices that have published."""
    spec = run.fleet.attacks
    ready = [s for s in run.devices if s.last is not None and s.first is not None]
    out: list[attacks.Injection] = []
    for kind in attacks.ATTACK_KINDS:
        for _ in range(getattr(spec, kind) if ready else 0):
            sim = run.rng.choice(ready)
            others = [s for s in run.devices if s is not sim] or [sim]
            out.append(_build(kind, sim, run.rng.choice(others).key.dev, run.rng))
    return out


async def _attacks(run: FleetRun, sleep: Sleep) -> None:
    import aiomqtt

    await sleep(run.fleet.attacks.at_s)
    by_dev = {s.key.dev: s for s in run.devices}
    for injection in _injections(run):
        config = by_dev[injection.sender].link.config
        topic = telemetry_topic(run.fleet.name, injection.topic_dev)
        try:
            async with aiomqtt.Client(
                config.host,
                config.port,
                identifier=f"{config.dev}-x",
                username=config.username,
                password=config.password,
                protocol=aiomqtt.ProtocolVersion.V5,
            ) as client:
                await client.publish(topic, injection.data, qos=1)
        except aiomqtt.MqttError as exc:
            log.warning("attack_not_published", extra={"kind": injection.kind, "error": str(exc)})
            continue
        run.summary.attacks[injection.kind] += 1


async def _progress(run: FleetRun, started: float, sleep: Sleep) -> None:
    out = run.options.progress or sys.stderr
    while True:
        await sleep(run.options.progress_every_s)
        run.refresh(started)
        print(run.summary.progress_line(), file=out, flush=True)


async def _stop_after(duration_s: float | None, stop: asyncio.Event, sleep: Sleep) -> None:
    if duration_s is not None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(duration_s):
                await stop.wait()
    else:
        await stop.wait()
    raise _StopError


async def _drain(run: FleetRun, timeout_s: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            while any(s.device.store.stats(s.key.dev).count for s in run.devices):  # noqa: ASYNC110 - polls SQLite
                await asyncio.sleep(0.1)


async def run(
    fleet: Fleet,
    options: SimOptions,
    *,
    clock: Clock = time.time,
    sleep: Sleep = asyncio.sleep,
    stop: asyncio.Event | None = None,
) -> Summary:
    """Run ``fleet`` until the duration elapses, ``stop`` is set or SIGINT/SIGTERM."""
    import signal

    stop = stop or asyncio.Event()
    fleet_run = FleetRun(fleet, options, clock=clock)
    devices = dict.fromkeys(fleet.bus_ids(), "bus") | dict.fromkeys(fleet.pack_ids(), "pack")
    try:
        keys = load_or_create(options.state_dir / "keys", devices)
        if options.export_keys is not None:
            export_keys(options.export_keys, keys, fleet=fleet.name)
    except FleetKeyError as exc:
        raise SimError(str(exc)) from exc
    loop = asyncio.get_running_loop()
    async with contextlib.AsyncExitStack() as stack:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
                stack.callback(loop.remove_signal_handler, sig)
        store = stack.enter_context(
            ChainStore(
                path=options.state_dir / "chains.sqlite3",
                max_messages=fleet.outbox_max_messages,
                synchronous="NORMAL",
            )
        )
        fleet_run.build(store, keys)
        started = clock()
        n = max(1, len(fleet_run.devices))
        try:
            async with asyncio.TaskGroup() as tasks:
                for index, sim in enumerate(fleet_run.devices):
                    delay = fleet.ramp_s * index / n
                    tasks.create_task(
                        _start_link(sim.link, delay, sleep), name=f"link-{sim.key.dev}"
                    )
                tasks.create_task(_ticker(fleet_run, sleep), name="ticker")
                tasks.create_task(_offline_window(fleet_run, sleep), name="offline")
                tasks.create_task(_pack_swaps(fleet_run, sleep), name="pack-swaps")
                tasks.create_task(_attacks(fleet_run, sleep), name="attacks")
                tasks.create_task(_progress(fleet_run, started, sleep), name="progress")
                tasks.create_task(_stop_after(options.duration_s, stop, sleep), name="stopper")
        except* _StopError:
            pass
        # the links were cancelled with the group: publish what is left, once, in order
        drain_group_links = [asyncio.create_task(s.link.run()) for s in fleet_run.devices]
        await _drain(fleet_run, 10.0)
        for task in drain_group_links:
            task.cancel()
        await asyncio.gather(*drain_group_links, return_exceptions=True)
        fleet_run.refresh(started)
    if options.summary_json is not None:
        options.summary_json.write_text(fleet_run.summary.to_json() + "\n", encoding="utf-8")
    return fleet_run.summary
