"""A gateway store whose checkpoints real witnesses cosign at chosen times (timeliness tests).

Devices enrolled by the real :class:`~gateway.registry.Registry`, their signed messages
accepted by the real :class:`~gateway.pipeline.Pipeline` into SQLite, checkpoints signed with
their ``voltproof-index/1`` line, each submitted to real witness cores
(:class:`voltproof.witness.Witness`, the code behind ``voltproof witness``) whose clock the
test sets, the answers stored as the gateway's witness client stores them, then anchored in
the local anchor table and exported. The bundle is made by the real builder.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from gateway.anchoring import Anchorer
from gateway.evidence_v2 import extract_bundle_v2
from gateway.pipeline import OutcomeKind, Pipeline
from gateway.registry import DeviceSpec, Registry
from gateway.store import CheckpointRecord, CosignatureRecord, SqliteStore
from gateway.verification import Incoming
from ledger.anchors.local import LocalAnchorBackend
from ledger.bundle_v2 import BundleV2
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.cosignature import verify_cosignature
from ledger.device_index import index_line
from ledger.keys import SigningKey, load_key_file, public_key_from_seed
from ledger.message import sign_message
from ledger.note import verifier_key
from ledger.telemetry import TelemetryBatch, encode_batch
from ledger.witness_protocol import format_add_checkpoint
from tests.support.gateway_devices import bus_sample
from tests.support.gateway_world import Deployment, write_deployment
from tests.support.store_world import offline_broker
from voltproof.witness import LogPolicy, Witness, WitnessState
from voltproof.witness.settings import LogSettings

FLEET = "fleet-w"


def _seed(label: str) -> bytes:
    return hashlib.sha256(b"voltproof witnessed world: " + label.encode()).digest()


@dataclass
class TestWitness:
    """A real witness core over its own state file, with a clock the test sets."""

    name: str
    witness: Witness
    now_s: float = 0.0
    size: int = 0
    """The size this witness last cosigned (what the gateway's client tracks)."""

    @property
    def vkey(self) -> str:
        """The witness's cosignature/v1 verifier key."""
        return str(self.witness.verifier_key)


@dataclass
class _Device:
    device_id: str
    seed: bytes
    seq: int = 0
    prev: bytes = bytes(32)


@dataclass
class WitnessedWorld:
    """A deployment with buses, witnesses, and a history made round by round."""

    deployment: Deployment
    witnesses: dict[str, TestWitness] = field(default_factory=dict)
    devices: dict[str, _Device] = field(default_factory=dict)

    @property
    def workdir(self) -> Path:
        """The deployment's directory."""
        return self.deployment.workdir

    @property
    def anchor_export(self) -> Path:
        """The anchor table export the operator published."""
        return self.deployment.anchor_export

    @property
    def gateway_key(self) -> str:
        """The gateway's C2SP verifier key."""
        return self.deployment.gateway_key

    def witness_vkeys(self) -> list[str]:
        """Every witness's vkey, by name."""
        return [self.witnesses[name].vkey for name in sorted(self.witnesses)]

    def log(self, device: str, t_ms: int, *, received_ms: int, historical: bool = False) -> None:
        """``device``'s next message, measured at ``t_ms``, accepted at ``received_ms``."""
        asyncio.run(self._log(device, t_ms, received_ms, historical))

    async def _log(self, device_id: str, t_ms: int, received_ms: int, historical: bool) -> None:
        device = self.devices[device_id]
        batch = TelemetryBatch(kind="bus", t_ms=t_ms, dt_ms=1000, samples=(bus_sample(),))
        payload = {"v": 1, "dev": device_id, "seq": device.seq, "prev": device.prev, "t": t_ms,
                   **encode_batch(batch)}  # fmt: skip
        data = sign_message(payload, seed=device.seed)
        device.seq += 1
        device.prev = hashlib.sha256(data).digest()
        incoming = Incoming(
            topic=f"voltproof/{FLEET}/{device_id}/telemetry", payload=data,
            received_at_ms=received_ms, historical=historical,
        )  # fmt: skip
        async with await SqliteStore.open(self.deployment.settings.db_path) as store:
            outcomes = await Pipeline(store=store).process([incoming])
        assert all(o.kind is OutcomeKind.ACCEPTED for o in outcomes), outcomes

    def checkpoint(self, *, at_s: int, witnesses: list[str] | None = None) -> int:
        """Sign a checkpoint of the whole log; the named witnesses (default all) cosign it at
        ``at_s`` (their clock), and the gateway stores their lines. Returns its size."""
        return asyncio.run(self._checkpoint(at_s, sorted(self.witnesses) if witnesses is None
                                            else witnesses))  # fmt: skip

    async def _checkpoint(self, at_s: int, names: list[str]) -> int:
        settings = self.deployment.settings
        key = load_key_file(settings.key_file)
        async with await SqliteStore.open(settings.db_path) as store:
            head = await store.log_head()
            index = await store.device_index_at(head.size)
            checkpoint = Checkpoint(
                origin=settings.origin, size=head.size, root=head.root,
                extensions=(index_line(index.root()),),
            )  # fmt: skip
            note = sign_checkpoint(checkpoint, name=key.name, seed=key.seed)
            await store.add_checkpoint(
                CheckpointRecord(
                    size=head.size, root=head.root, note=note, signed_at_ms=at_s * 1000
                )
            )
            for name in names:
                witness = self.witnesses[name]
                old = witness.size
                proof = await store.consistency_proof(old, head.size) if 0 < old < head.size else []
                witness.now_s = at_s
                body = format_add_checkpoint(old_size=old, proof=proof, checkpoint=note)
                line = witness.witness.add_checkpoint(body)
                timestamp = verify_cosignature(note + line, witness_key=witness.vkey)
                await store.add_cosignature(
                    CosignatureRecord(size=head.size, witness=witness.vkey, timestamp=timestamp,
                                      line=line, received_at_ms=at_s * 1000)
                )  # fmt: skip
                witness.size = head.size
            return head.size

    def anchor(self) -> None:
        """Anchor the newest checkpoint in the local anchor table and export the table."""
        asyncio.run(self._anchor())

    async def _anchor(self) -> None:
        settings = self.deployment.settings
        key = load_key_file(settings.key_file)
        async with await SqliteStore.open(settings.db_path) as store:
            backend = await LocalAnchorBackend.open(settings.data_dir / "anchors.db", seed=key.seed)
            try:
                await Anchorer(store=store, backend=backend, origin=settings.origin).sync()
                await backend.export(self.anchor_export)
            finally:
                await backend.aclose()

    def bundle(self, asset: str, *, from_ms: int, to_ms: int) -> BundleV2:
        """The v2 bundle the real builder makes of ``asset`` over ``[from_ms, to_ms)``."""
        return asyncio.run(self._bundle(asset, from_ms, to_ms))

    async def _bundle(self, asset: str, from_ms: int, to_ms: int) -> BundleV2:
        settings = self.deployment.settings
        operator = load_key_file(settings.operator_key_file)
        async with await SqliteStore.open(settings.db_path) as store:
            return await extract_bundle_v2(
                store, asset_id=asset, from_ms=from_ms, to_ms=to_ms,
                operator_key=operator.public_key, anchor_db=settings.data_dir / "anchors.db",
            )  # fmt: skip


def build_witnessed_world(
    workdir: Path, *, buses: list[str], witnesses: list[str], enrolled_ms: int
) -> WitnessedWorld:
    """Enrol ``buses`` at ``enrolled_ms`` and open one real witness per name in ``witnesses``."""
    deployment = write_deployment(
        workdir, offline_broker(workdir), fleet=FLEET, devices=0, enrolled_at_ms=enrolled_ms
    )
    world = WitnessedWorld(deployment=deployment)
    gateway = load_key_file(deployment.settings.key_file)
    policy: LogPolicy = LogSettings(
        origin=deployment.settings.origin, keys=[verifier_key(gateway.name, gateway.public_key)]
    ).policy()
    for name in witnesses:
        seed = _seed("witness " + name)
        holder = TestWitness(name=name, witness=None)  # type: ignore[arg-type]
        holder.witness = Witness.from_policies(
            key=SigningKey(name=name, seed=seed, public_key=public_key_from_seed(seed)),
            logs=[policy],
            state=WitnessState.open(workdir / f"witness-{len(world.witnesses)}.sqlite3"),
            clock=lambda holder=holder: holder.now_s,  # type: ignore[misc]
        )
        world.witnesses[name] = holder
    for bus in buses:
        world.devices[bus] = _Device(device_id=bus, seed=_seed("device " + bus))
    asyncio.run(_enroll(world, enrolled_ms))
    return world


async def _enroll(world: WitnessedWorld, enrolled_ms: int) -> None:
    settings = world.deployment.settings
    async with await SqliteStore.open(settings.db_path) as store:
        operator = load_key_file(settings.operator_key_file)
        registry = Registry(store=store, operator=operator, clock_ms=lambda: enrolled_ms)
        await registry.enroll(
            [
                DeviceSpec(device_id=d.device_id, kind="bus", fleet=FLEET,
                           public_key=public_key_from_seed(d.seed))
                for d in world.devices.values()
            ]
        )  # fmt: skip
