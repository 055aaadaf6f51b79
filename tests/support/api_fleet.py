"""A small deployment for API and evidence tests, seeded through the REAL gateway pipeline.

Real key files, devices enrolled by ``gateway.registry.Registry`` (signed registry leaves),
telemetry signed with ``ledger.message`` and accepted by ``gateway.pipeline.Pipeline``, a
checkpoint signed with the gateway key and anchored in a real local anchor table: every row
the API serves and every proof it hands out comes from that run, none is inserted by hand.

Fleet ``fleet-a``: buses bus-1, bus-2 and packs pack-1 (bus-1, then bus-2 from the middle
of the day) and pack-2 (bus-2, then bus-1). Fleet ``fleet-b``: bus-9 (another tenant).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final

from gateway.config import GatewaySettings, load_settings
from gateway.pipeline import Pipeline
from gateway.registry import DeviceSpec, Registry
from gateway.store import AnchorStatus, CheckpointRecord, SqliteStore
from gateway.verification import Incoming
from ledger.anchors.base import AnchorRequest
from ledger.anchors.local import LocalAnchorBackend
from ledger.checkpoint import Checkpoint, log_id, sign_checkpoint
from ledger.device_index import index_line
from ledger.keys import create_key_file, generate_seed, load_key_file, public_key_from_seed
from ledger.message import message_hash, sign_message
from ledger.telemetry import BusSample, Kind, PackSample, TelemetryBatch, encode_batch

ORIGIN: Final = "voltproof.example/gw-test"
DAY0_MS: Final = 1_767_225_600_000
"""2026-01-01T00:00:00Z."""
MESSAGES_PER_DEVICE: Final = 24
SAMPLES: Final = 10
STEP_MS: Final = 3_600_000
"""One message per hour of simulated time (10 samples at 1 Hz each)."""

GATEWAY_TOML: Final = f"""\
origin = "{ORIGIN}"
data_dir = "gateway"
key_file = "keys/gateway.key"
operator_key_file = "keys/operator.key"
fleets = ["fleet-a", "fleet-b"]
"""


@dataclass(slots=True, kw_only=True)
class Device:
    """A simulated device with its key and hash chain."""

    device_id: str
    kind: Kind
    fleet: str
    seed: bytes = field(default_factory=generate_seed)
    seq: int = 0
    prev: bytes = bytes(32)

    def sign(self, batch: TelemetryBatch) -> bytes:
        """Sign the next message of the chain."""
        payload = {"v": 1, "dev": self.device_id, "seq": self.seq, "prev": self.prev,
                   "t": batch.t_ms, **encode_batch(batch)}  # fmt: skip
        data = sign_message(payload, seed=self.seed)
        self.seq += 1
        self.prev = message_hash(data)
        return data

    def incoming(self, data: bytes, t_ms: int) -> Incoming:
        """The message as the broker delivers it, shortly after its last sample."""
        return Incoming(
            topic=f"voltproof/{self.fleet}/{self.device_id}/telemetry",
            payload=data,
            received_at_ms=t_ms + SAMPLES * 1000 + 500,
        )


def _pack_sample(hour: int, k: int, pack: int) -> PackSample:
    soc = 0.9 - 0.03 * hour + 0.0005 * k if hour < 20 else 0.4 + 0.1 * (hour - 20)
    temp = 25.0 + 6.0 * math.sin(hour / 4) + pack
    alarm = 2 if (pack == 1 and hour == 7) else 0
    return PackSample(
        voltage_v=600.0 + 60 * soc, current_a=120.0 if hour < 20 else -200.0, soc=round(soc, 3),
        cell_v_max=3.30 + 0.1 * soc + 0.002 * pack, cell_v_max_pos=17, cell_v_min=3.28 + 0.1 * soc,
        cell_v_min_pos=150, temp_max_c=round(temp, 1), temp_max_pos=4,
        temp_min_c=round(temp - 3, 1), temp_min_pos=9, insulation_ohm=2_000_000.0,
        alarm_level=alarm, alarm_flags=2 if alarm else 0, soh_capacity=0.97 - 0.0001 * hour,
        resistance_growth=1.05, r0_ohm=0.045, capacity_ah=540.0,
        energy_in_wh=1_000_000 + 1000 * hour, energy_out_wh=900_000 + 1200 * hour,
        ah_in=2000.0 + hour, ah_out=1900.0 + 2 * hour, charge_state=0 if hour < 20 else 1,
    )  # fmt: skip


def _bus_sample(hour: int, k: int, bus: int) -> BusSample:
    return BusSample(
        speed_mps=8.0 + k % 5, odometer_m=1_000_000.0 + 36_000 * hour + 10 * k,
        lat_deg=22.54 + 0.001 * hour + 0.01 * bus, lon_deg=114.05 + 0.001 * k,
        vehicle_state=1, charge_state=0, traction_power_w=50_000.0, aux_power_w=6_000.0,
        ambient_c=21.0, at_stop=0,
    )  # fmt: skip


@dataclass(slots=True, kw_only=True)
class Deployment:
    """A seeded deployment directory and facts the tests check against."""

    workdir: Path
    settings: GatewaySettings
    devices: dict[str, Device]
    anchored_size: int = 0
    message_leaves: dict[str, list[int]] = field(default_factory=dict)

    @property
    def config(self) -> Path:
        """The gateway configuration file."""
        return self.workdir / "gateway.toml"

    @property
    def anchor_db(self) -> Path:
        """The local anchor table."""
        return self.settings.data_dir / "anchors.db"


def _host(pack: str, hour: int) -> str:
    first, second = ("bus-1", "bus-2") if pack == "pack-1" else ("bus-2", "bus-1")
    return first if hour < MESSAGES_PER_DEVICE // 2 else second


def _batch(device: Device, hour: int) -> TelemetryBatch:
    t_ms = DAY0_MS + hour * STEP_MS
    number = int(device.device_id.rsplit("-", 1)[1])
    if device.kind == "pack":
        samples = tuple(_pack_sample(hour, k, number) for k in range(SAMPLES))
        return TelemetryBatch(kind="pack", t_ms=t_ms, dt_ms=1000, samples=samples,
                              host=_host(device.device_id, hour))  # fmt: skip
    packs = tuple(p for p in ("pack-1", "pack-2") if _host(p, hour) == device.device_id)
    bus_samples = tuple(_bus_sample(hour, k, number) for k in range(SAMPLES))
    return TelemetryBatch(kind="bus", t_ms=t_ms, dt_ms=1000, samples=bus_samples, packs=packs)


async def seed(workdir: Path, *, anchor: bool = True, extra_unanchored: int = 0) -> Deployment:
    """Create the deployment in ``workdir`` and run a day of telemetry through the pipeline."""
    (workdir / "keys").mkdir(parents=True)
    (workdir / "gateway").mkdir()
    (workdir / "gateway.toml").write_text(GATEWAY_TOML, encoding="utf-8")
    create_key_file(workdir / "keys/gateway.key", name=ORIGIN)
    create_key_file(workdir / "keys/operator.key", name="operator")
    settings = load_settings(workdir / "gateway.toml")
    devices = {
        d.device_id: d
        for d in (
            Device(device_id="bus-1", kind="bus", fleet="fleet-a"),
            Device(device_id="bus-2", kind="bus", fleet="fleet-a"),
            Device(device_id="pack-1", kind="pack", fleet="fleet-a"),
            Device(device_id="pack-2", kind="pack", fleet="fleet-a"),
            Device(device_id="bus-9", kind="bus", fleet="fleet-b"),
        )
    }
    deployment = Deployment(workdir=workdir, settings=settings, devices=devices)
    store = await SqliteStore.open(settings.db_path)
    try:
        registry = Registry(
            store=store,
            operator=load_key_file(settings.operator_key_file),
            clock_ms=lambda: DAY0_MS - 86_400_000,
        )
        await registry.enroll([
            DeviceSpec(device_id=d.device_id, kind=d.kind, fleet=d.fleet,
                       public_key=public_key_from_seed(d.seed))
            for d in devices.values()
        ])  # fmt: skip
        pipeline = Pipeline(store=store)
        for hour in range(MESSAGES_PER_DEVICE + extra_unanchored):
            if hour == MESSAGES_PER_DEVICE:
                deployment.anchored_size = await _checkpoint_and_anchor(deployment, store, anchor)
            batch = [
                device.incoming(device.sign(_batch(device, hour)), DAY0_MS + hour * STEP_MS)
                for device in devices.values()
            ]
            outcomes = await pipeline.process(batch)
            for device, outcome in zip(devices.values(), outcomes, strict=True):
                assert outcome.leaf_index is not None, outcome
                deployment.message_leaves.setdefault(device.device_id, []).append(
                    outcome.leaf_index
                )
        if not extra_unanchored:
            deployment.anchored_size = await _checkpoint_and_anchor(deployment, store, anchor)
    finally:
        await store.close()
    return deployment


async def _checkpoint_and_anchor(deployment: Deployment, store: SqliteStore, anchor: bool) -> int:
    """Sign checkpoints (a small one first, then the head) and anchor the head."""
    key = load_key_file(deployment.settings.key_file)
    head = await store.log_head()
    last = await store.latest_checkpoint()
    start = 0 if last is None else last.size
    for size in sorted({max(start + 1, head.size // 2), head.size} - {start}):
        root = await store.root_at(size)
        # As the gateway's checkpointer does: the device index of exactly that prefix.
        index = index_line((await store.device_index_at(size)).root())
        note = sign_checkpoint(Checkpoint(origin=ORIGIN, size=size, root=root,
                                          extensions=(index,)),
                               name=key.name, seed=key.seed)  # fmt: skip
        await store.add_checkpoint(
            CheckpointRecord(size=size, root=root, note=note, signed_at_ms=DAY0_MS + size)
        )
    if not anchor:
        return 0
    backend = await LocalAnchorBackend.open(deployment.anchor_db, seed=key.seed)
    try:
        receipt = await backend.submit(
            AnchorRequest(log_id=log_id(ORIGIN), tree_size=head.size, root=head.root)
        )
    finally:
        await backend.aclose()
    await store.record_anchor(
        size=head.size, backend="local", state=AnchorStatus.FINAL, receipt=receipt.to_json(),
        now_ms=DAY0_MS + head.size,
    )  # fmt: skip
    return head.size


def digest(data: bytes) -> str:
    """Hex SHA-256 (the browser recomputes it with WebCrypto)."""
    return hashlib.sha256(data).hexdigest()


LEASE_FROM: Final = DAY0_MS
LEASE_TO: Final = DAY0_MS + 12 * STEP_MS
"""lessor-1 leases pack-1 for the first half of the day (and bus-1 all day)."""


async def make_keys(deployment: Deployment) -> dict[str, str]:
    """API keys of every kind: two fleet operators, an all-fleet operator, two lessors, an
    auditor; lessor-1 holds leases on pack-1 (half a day) and bus-1 (the whole day)."""
    from api.access import Role, Window
    from api.accessdb import AccessDb

    access = await AccessDb.open(deployment.settings.data_dir / "api.db")
    try:
        specs = [
            ("operator-a", Role.OPERATOR, "fleet-a"),
            ("operator-b", Role.OPERATOR, "fleet-b"),
            ("operator", Role.OPERATOR, None),
            ("lessor-1", Role.LESSOR, None),
            ("lessor-2", Role.LESSOR, None),
            ("auditor", Role.AUDITOR, None),
        ]
        keys = {
            name: (
                await access.create_key(name=name, role=role, fleet=fleet, now_ms=DAY0_MS)
            ).secret
            for name, role, fleet in specs
        }
        await access.add_lease(
            asset="pack-1", lessor="lessor-1", window=Window(from_ms=LEASE_FROM, to_ms=LEASE_TO)
        )
        await access.add_lease(
            asset="bus-1",
            lessor="lessor-1",
            window=Window(from_ms=DAY0_MS, to_ms=DAY0_MS + 24 * STEP_MS),
        )
    finally:
        await access.close()
    return keys


async def seed_awkward(deployment: Deployment) -> None:
    """Add what breaks naive code to a seeded deployment, through the real pipeline: pack-3,
    whose state of health never moves (a flat trend), with six hours backfilled late after an
    outage; bus-4, revoked after a few messages (its later messages refused). Then sign and
    anchor a new checkpoint."""
    store = await SqliteStore.open(deployment.settings.db_path)
    try:
        operator = load_key_file(deployment.settings.operator_key_file)
        registry = Registry(store=store, operator=operator, clock_ms=lambda: DAY0_MS - 1000)
        flat = Device(device_id="pack-3", kind="pack", fleet="fleet-a")
        doomed = Device(device_id="bus-4", kind="bus", fleet="fleet-a")
        await registry.enroll([
            DeviceSpec(device_id=d.device_id, kind=d.kind, fleet=d.fleet,
                       public_key=public_key_from_seed(d.seed))
            for d in (flat, doomed)
        ])  # fmt: skip
        pipeline = Pipeline(store=store)
        signed = []
        for hour in range(MESSAGES_PER_DEVICE):
            samples = tuple(
                replace(_pack_sample(hour, k, 3), soh_capacity=0.949) for k in range(SAMPLES)
            )
            t_ms = DAY0_MS + hour * STEP_MS
            signed.append((hour, flat.sign(TelemetryBatch(kind="pack", t_ms=t_ms, dt_ms=1000,
                                                          samples=samples))))  # fmt: skip
        outage = range(6, 12)
        live = [flat.incoming(data, DAY0_MS + h * STEP_MS) for h, data in signed if h not in outage]
        late = [
            replace(flat.incoming(data, DAY0_MS + 12 * STEP_MS), historical=True)
            for h, data in signed
            if h in outage
        ]
        for outcome in await pipeline.process([*live[:6], *live[6:], *late]):
            assert outcome.leaf_index is not None, outcome
        bus_batches = [
            doomed.incoming(doomed.sign(_batch(doomed, hour)), DAY0_MS + hour * STEP_MS)
            for hour in range(4)
        ]
        for outcome in await pipeline.process(bus_batches[:2]):
            assert outcome.leaf_index is not None, outcome
        await registry.revoke("bus-4", reason="stolen")
        refused = await pipeline.process(bus_batches[2:])
        assert all(outcome.leaf_index is None for outcome in refused), refused
        deployment.devices.update({flat.device_id: flat, doomed.device_id: doomed})
        deployment.anchored_size = await _checkpoint_and_anchor(deployment, store, True)
    finally:
        await store.close()
