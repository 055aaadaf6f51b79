"""A secured broker, a gateway deployment behind it and agents that wait for receipts.

The agents are the real agent link (``firmware_sim.agent.Link``) with end-to-end receipts on,
one per device, sharing one outbox file, run in a thread with its own event loop; each
produces signed messages into its outbox at a steady pace, exactly as the agent's sampler
does. :func:`logged_seqs` reads back what the gateway logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from firmware_sim.agent import (
    Backoff,
    ChainHead,
    ChainStore,
    DropNotice,
    Link,
    LinkConfig,
    ReceiptConfig,
)
from ledger.keys import load_key_file
from ledger.protocol import receipt_topic, status_topic
from tests.support.gateway_devices import FakeDevice
from tests.support.gateway_world import Deployment, write_deployment
from voltproof.broker import ACL_CONF, MosquittoBroker, write_password_file

GATEWAY_USER = "voltproof-gateway"
GATEWAY_PASSWORD = "gateway-test-password"


def device_password(device_id: str) -> str:
    """The test password of a device account."""
    return f"pw-{device_id}"


def secured_deployment(
    workdir: Path, *, binary: str, devices: int, persistence: bool = True
) -> tuple[MosquittoBroker, Deployment]:
    """A broker with passwords and the shipped ACL, and a gateway deployment using it."""
    broker = MosquittoBroker(workdir=workdir / "broker", binary=binary, persistence=persistence)
    deployment = write_deployment(
        workdir / "gw",
        broker,
        devices=devices,
        every_leaves=100,
        every_s=0.5,
        username=GATEWAY_USER,
        password=GATEWAY_PASSWORD,
        share_group="",
    )
    credentials = {GATEWAY_USER: GATEWAY_PASSWORD}
    credentials |= {d.device_id: device_password(d.device_id) for d in deployment.devices}
    (workdir / "broker").mkdir(parents=True, exist_ok=True)
    broker.password_file = write_password_file(workdir / "broker" / "passwd", credentials)
    broker.acl_file = ACL_CONF
    return broker, deployment


@dataclass(kw_only=True, eq=False)
class AgentFleet(threading.Thread):
    """One receipt-waiting agent link per device; produces until :meth:`stop_producing`."""

    deployment: Deployment
    broker: MosquittoBroker
    state: Path
    period_s: float = 0.05
    resend_after_s: float = 1.0
    links: list[Link] = field(default_factory=list)
    produced: dict[str, int] = field(default_factory=dict)
    error: BaseException | None = None
    link_errors: dict[str, str] = field(default_factory=dict)
    _producing: threading.Event = field(default_factory=threading.Event)
    _done: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        threading.Thread.__init__(self, name="agents", daemon=True)
        self._producing.set()

    def stop_producing(self) -> None:
        """Produce no more messages (the links keep running until :meth:`close`)."""
        self._producing.clear()

    def close(self) -> None:
        """Stop the links and the thread."""
        self._done.set()
        if self.is_alive():
            self.join(30)

    def outbox(self) -> int:
        """Messages still waiting in the outboxes for a receipt (read from the file)."""
        with contextlib.closing(sqlite3.connect(self.state / "agents.sqlite3")) as db:
            return int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            self.error = exc

    async def _main(self) -> None:
        gateway_key = load_key_file(self.deployment.settings.key_file).public_key
        self.state.mkdir(parents=True, exist_ok=True)
        with ChainStore(path=self.state / "agents.sqlite3", synchronous="NORMAL") as store:
            tasks: list[asyncio.Task[object]] = []
            for device in self.deployment.devices:
                dev = device.device_id
                config = LinkConfig(
                    dev=dev,
                    host=self.broker.host,
                    port=self.broker.port,
                    topic=device.topic,
                    status_topic=status_topic(device.fleet, dev),
                    username=dev,
                    password=device_password(dev),
                    max_inflight=50,
                    receipts=ReceiptConfig(
                        topic=receipt_topic(device.fleet, dev),
                        gateway_key=gateway_key,
                        resend_after_s=self.resend_after_s,
                        resend_cap_s=4 * self.resend_after_s,
                    ),
                )
                rng = random.Random(dev)
                link = Link(
                    config=config, store=store, backoff=Backoff(base_s=0.2, cap_s=2.0, rng=rng)
                )
                self.links.append(link)
                link_task: asyncio.Task[object] = asyncio.create_task(
                    link.run(), name=f"link-{dev}"
                )
                link_task.add_done_callback(self._record_end)
                tasks.append(link_task)
            producer = asyncio.create_task(self._produce(store), name="producer")
            while not self._done.is_set():  # noqa: ASYNC110 - a thread event, polled
                await asyncio.sleep(0.05)
            for running in [*tasks, producer]:
                running.cancel()
            await asyncio.gather(*tasks, producer, return_exceptions=True)

    def _record_end(self, task: asyncio.Task[object]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.link_errors[task.get_name()] = repr(task.exception())

    def describe(self) -> str:
        """What each link did and what is left, for a failure message."""
        with contextlib.closing(sqlite3.connect(self.state / "agents.sqlite3")) as db:
            left = dict(db.execute("SELECT dev, count(*) FROM outbox GROUP BY dev").fetchall())
        lines = [
            f"{link.config.dev}: outbox {left.get(link.config.dev, 0)}, "
            f"connected {link.connected.is_set()}, {link.stats}"
            for link in self.links
        ]
        return "\n".join([*lines, f"link errors: {self.link_errors}"])

    async def _produce(self, store: ChainStore) -> None:
        devices: tuple[FakeDevice, ...] = self.deployment.devices
        while self._producing.is_set():
            now_ms = time.time_ns() // 1_000_000
            for device, link in zip(devices, self.links, strict=True):
                store.append(device.device_id, _builder(device, now_ms), now_ms=now_ms)
                self.produced[device.device_id] = device.seq
                link.notify()
            await asyncio.sleep(self.period_s)


def _builder(device: FakeDevice, t_ms: int) -> Callable[[ChainHead, DropNotice | None], bytes]:
    def build(_head: ChainHead, _notice: DropNotice | None) -> bytes:
        return device.message(t_ms=t_ms, n=2)

    return build


def logged_seqs(db_path: Path) -> dict[str, list[int]]:
    """Every telemetry seq in the gateway's log, per device, in seq order (repeats kept)."""
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT device, seq FROM leaves WHERE kind = 'telemetry' ORDER BY device, seq"
        ).fetchall()
    seqs: dict[str, list[int]] = {}
    for device, seq in rows:
        seqs.setdefault(device, []).append(int(seq))
    return seqs


def wait_until(
    predicate: Callable[[], bool], *, timeout_s: float, what: str, detail: Callable[[], str] = str
) -> None:
    """Poll ``predicate()`` until true; fail with ``what`` and ``detail()`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}\n{detail()}"
        time.sleep(0.1)
