"""A gateway store filled through the real pipeline for evidence v2 (bundle) tests.

Buses and packs enrolled by the real :class:`~gateway.registry.Registry`, their signed
messages accepted by the real :class:`~gateway.pipeline.Pipeline` into SQLite, a checkpoint
signed by the gateway key *with its* ``voltproof-index/1`` *line* (the root of
``StoreReader.device_index_at``, as the gateway will commit it), anchored in the local anchor
table, and the anchor table exported as a lessor would download it.

The fleet: ``bus-0001`` and ``bus-0002``; ``pack-0001`` rides in ``bus-0001`` for its first
six messages and is swapped into ``bus-0002`` for the rest; ``pack-0002`` takes its place in
``bus-0001`` (a swapped pack); ``bus-0003`` rotates its key after six messages; ``pack-0003``
is a backfilled device (its messages arrive late, marked historical).
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from gateway import pipeline as pipeline_module
from gateway.anchoring import Anchorer
from gateway.config import load_settings
from gateway.evidence_v2 import extract_bundle_v2
from gateway.pipeline import OutcomeKind, Pipeline
from gateway.registry import DeviceSpec, Registry
from gateway.store import CheckpointRecord, RegistryAction, RegistryChange, SqliteStore
from gateway.store import log_writes as sqlite_store
from gateway.store.records import DeviceRecord, DeviceStatus
from gateway.verification import Incoming, Parsed, Rejected, authorize
from ledger.anchors.base import AnchorBackend
from ledger.anchors.evm_checker import anchor_checker
from ledger.anchors.local import LocalAnchorBackend
from ledger.bundle_v2 import BundleV2, read_bundle
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.device_index import index_line
from ledger.keys import load_key_file, public_key_from_seed
from ledger.message import sign_message, sign_registry_entry
from ledger.telemetry import TelemetryBatch, encode_batch
from ledger.verify_v2 import V2Report, verify_bundle_v2
from tests.support.gateway_devices import T0_MS, bus_sample, pack_sample
from tests.support.gateway_world import Deployment, write_deployment
from tests.support.store_world import offline_broker

FLEET = "fleet-a"
STEP_MS = 10_000
MESSAGES = 12
RECEIVED_MS = T0_MS + 10**7
"""When the gateway received everything (after the last message's ``t``)."""


def t_of(seq: int) -> int:
    """The ``t`` of message ``seq`` of every device of the world."""
    return T0_MS + seq * STEP_MS


@dataclass(slots=True, kw_only=True)
class Agent:
    """A device signing its chain: seed, next seq, previous hash."""

    device_id: str
    kind: str
    seed: bytes
    seq: int = 0
    prev: bytes = bytes(32)
    t0_ms: int = T0_MS
    """The ``t`` of seq 0 (a replacement device starts when it was enrolled)."""

    def sign(self, *, host: str | None = None, packs: tuple[str, ...] = ()) -> bytes:
        """The next message (at :func:`t_of` its seq, counted from ``t0_ms``); the chain
        advances."""
        t_ms = t_of(self.seq) - T0_MS + self.t0_ms
        samples = (pack_sample(),) * 3 if self.kind == "pack" else (bus_sample(),) * 3
        batch = TelemetryBatch(
            kind="pack" if self.kind == "pack" else "bus", t_ms=t_ms, dt_ms=1000,
            samples=samples, packs=packs, host=host,
        )  # fmt: skip
        payload = {"v": 1, "dev": self.device_id, "seq": self.seq, "prev": self.prev, "t": t_ms,
                   **encode_batch(batch)}  # fmt: skip
        data = sign_message(payload, seed=self.seed)
        self.seq += 1
        self.prev = hashlib.sha256(data).digest()
        return data

    def incoming(
        self, data: bytes, *, historical: bool = False, received_at_ms: int = RECEIVED_MS
    ) -> Incoming:
        """``data`` on this device's topic."""
        return Incoming(
            topic=f"voltproof/{FLEET}/{self.device_id}/telemetry", payload=data,
            received_at_ms=received_at_ms, historical=historical,
        )  # fmt: skip


def seed_of(name: str) -> bytes:
    """A deterministic device seed (tests only)."""
    return hashlib.sha256(b"voltproof-evidence-world:" + name.encode()).digest()


@dataclass(slots=True, kw_only=True)
class EvidenceWorld:
    """The deployment, its agents and where the lessor's anchor export lies."""

    deployment: Deployment
    agents: dict[str, Agent] = field(default_factory=dict)
    anchor_backend: Callable[[], Awaitable[AnchorBackend]] | None = None
    """Opens the ledger checkpoints are anchored on; ``None``: the local anchor table."""

    @property
    def workdir(self) -> Path:
        """The deployment's directory."""
        return self.deployment.workdir

    @property
    def anchor_export(self) -> Path:
        """The anchor table export the operator published (the lessor's independent copy)."""
        return self.deployment.anchor_export

    @property
    def gateway_key(self) -> str:
        """The gateway's C2SP verifier key."""
        return self.deployment.gateway_key

    def bundle(self, asset: str, *, from_ms: int = 0, to_ms: int | None = None) -> BundleV2:
        """The v2 bundle the real builder makes (default: full history up to now)."""
        return asyncio.run(
            self._bundle(asset, from_ms=from_ms, to_ms=RECEIVED_MS + 1 if to_ms is None else to_ms)
        )

    async def _bundle(self, asset: str, *, from_ms: int, to_ms: int) -> BundleV2:
        settings = self.deployment.settings
        store = await SqliteStore.open(settings.db_path)
        try:
            operator = load_key_file(settings.operator_key_file)
            return await extract_bundle_v2(
                store, asset_id=asset, from_ms=from_ms, to_ms=to_ms,
                operator_key=operator.public_key, anchor_db=settings.data_dir / "anchors.db",
            )  # fmt: skip
        finally:
            await store.close()

    def copy(self, workdir: Path) -> EvidenceWorld:
        """A copy of the whole deployment (for an operator who tampers with it)."""
        shutil.copytree(self.workdir, workdir)
        settings = load_settings(workdir / "gateway.toml")
        return EvidenceWorld(
            deployment=Deployment(workdir=workdir, settings=settings, devices=()),
            agents=dict(self.agents),
            anchor_backend=self.anchor_backend,
        )

    def grow(self, device: str, *, messages: int) -> None:
        """``device`` sends ``messages`` more, then a checkpoint is signed, anchored (now)
        and the anchor table exported again."""
        asyncio.run(self._grow(device, messages=messages))

    async def _grow(self, device: str, *, messages: int) -> None:
        store = await SqliteStore.open(self.deployment.settings.db_path)
        try:
            agent = self.agents[device]
            await _accept(Pipeline(store=store),
                          [agent.incoming(agent.sign()) for _ in range(messages)])  # fmt: skip
            await sign_and_anchor(self, store)
        finally:
            await store.close()

    def replace_device(self, old: str, new: str, *, at_ms: int = RECEIVED_MS) -> None:
        """The honest operator retires ``old`` (revoked), enrols ``new`` of the same kind with
        its own key and links them with a ``replace`` entry; then signs and anchors. The
        entries' ``t`` is ``at_ms`` (the operator's clock)."""
        asyncio.run(self._replace_device(old, new, at_ms=at_ms))

    async def _replace_device(self, old: str, new: str, *, at_ms: int) -> None:
        settings = self.deployment.settings
        store = await SqliteStore.open(settings.db_path)
        try:
            registry = Registry(store=store, operator=load_key_file(settings.operator_key_file),
                                clock_ms=lambda: at_ms)  # fmt: skip
            kind = self.agents[old].kind
            self.agents[new] = Agent(device_id=new, kind=kind, seed=seed_of(new), t0_ms=at_ms)
            await registry.revoke(old, reason="replaced")
            await registry.enroll([DeviceSpec(
                device_id=new, kind="bus" if kind == "bus" else "pack", fleet=FLEET,
                public_key=public_key_from_seed(seed_of(new)))])  # fmt: skip
            await registry.replace(old, new_device_id=new)
            await sign_and_anchor(self, store)
        finally:
            await store.close()

    def log_after_revocation(self, device: str, *, messages: int) -> None:
        """A dishonest gateway logs ``messages`` more of the revoked ``device`` (signed by its
        own key) that the honest one refuses as ``revoked``; then signs and anchors."""
        asyncio.run(self._log_after_revocation(device, messages=messages))

    async def _log_after_revocation(self, device: str, *, messages: int) -> None:
        store = await SqliteStore.open(self.deployment.settings.db_path)
        honest = getattr(pipeline_module, "authorize")  # noqa: B009
        setattr(pipeline_module, "authorize", _authorize_revoked)  # noqa: B010
        try:
            agent = self.agents[device]
            await _accept(Pipeline(store=store),
                          [agent.incoming(agent.sign()) for _ in range(messages)])  # fmt: skip
            await sign_and_anchor(self, store)
        finally:
            setattr(pipeline_module, "authorize", honest)  # noqa: B010
            await store.close()

    def rekey(self, device: str, *, how: str) -> None:
        """The operator gives ``device`` an attacker key with its own key, then signs and
        anchors a checkpoint of that log and republishes the anchor export.

        ``how``: ``"revoke+enroll"`` (revoke, then enrol again), ``"enroll"`` (enrol again)
        or ``"rotate"`` (a rotation signed by the operator key). The store refuses all
        three, so this operator runs a gateway whose registry check lets anything through.
        """
        asyncio.run(self._rekey(device, how=how))

    async def _rekey(self, device: str, *, how: str) -> None:
        settings = self.deployment.settings
        store = await SqliteStore.open(settings.db_path)
        honest_check = getattr(sqlite_store, "check_registry_change")  # noqa: B009
        honest_rules = getattr(sqlite_store, "check_registry")  # noqa: B009
        setattr(sqlite_store, "check_registry_change", _lets_anything_through)  # noqa: B010
        setattr(sqlite_store, "check_registry", _no_rules)  # noqa: B010
        try:
            operator = load_key_file(settings.operator_key_file)
            if how == "revoke+enroll":
                await Registry(store=store, operator=operator, clock_ms=lambda: RECEIVED_MS).revoke(
                    device
                )
            attacker = public_key_from_seed(seed_of("attacker:" + device))
            entry: dict[str, object] = {
                "type": "rotate",
                "dev": device,
                "t": RECEIVED_MS,
                "key": attacker,
                "seq": self.agents[device].seq,
            }
            if how != "rotate":
                entry = {
                    "type": "enroll",
                    "dev": device,
                    "t": RECEIVED_MS,
                    "kind": FLEET_KINDS[device],
                    "fleet": FLEET,
                    "key": attacker,
                }
            cose = sign_registry_entry(entry, seed=operator.seed, kid=operator.name)
            change = RegistryChange(
                action=RegistryAction.ROTATE,
                device_id=device,
                cose=cose,
                recorded_at_ms=RECEIVED_MS,
                public_key=attacker,
                seq=self.agents[device].seq,
            )
            await store.apply_registry([change], operator_key=operator.public_key)
            await sign_and_anchor(self, store)
        finally:
            setattr(sqlite_store, "check_registry_change", honest_check)  # noqa: B010
            setattr(sqlite_store, "check_registry", honest_rules)  # noqa: B010
            await store.close()


def _authorize_revoked(parsed: Parsed, device: DeviceRecord | None) -> Rejected | None:
    """A dishonest gateway's authorization: a revoked device's messages go through."""
    if device is not None and device.status is DeviceStatus.REVOKED:
        return None
    return authorize(parsed, device)


def _no_rules(*args: object, **kwargs: object) -> None:
    """A dishonest gateway skips the registry rules it should apply before writing."""


def _lets_anything_through(change: RegistryChange, status: str | None) -> str:
    """A dishonest gateway's registry check."""
    del change, status
    return "active"


FLEET_KINDS = {
    "bus-0001": "bus", "bus-0002": "bus", "bus-0003": "bus",
    "pack-0001": "pack", "pack-0002": "pack", "pack-0003": "pack",
}  # fmt: skip


def build_world(
    workdir: Path,
    *,
    keys_from: Path | None = None,
    forged: frozenset[str] = frozenset(),
    anchor_backend: Callable[[], Awaitable[AnchorBackend]] | None = None,
) -> EvidenceWorld:
    """Enrol the fleet, run its history through the pipeline, sign, anchor and export.

    A forged world: ``keys_from`` is another world's directory whose gateway and operator
    keys are used (the operator re-signs a whole other log), and the devices in ``forged``
    get attacker keys instead of their own.
    """
    deployment = write_deployment(
        workdir, offline_broker(workdir), fleet=FLEET, devices=0, enrolled_at_ms=T0_MS
    )
    if keys_from is not None:
        for name in ("gateway.key", "operator.key"):
            shutil.copy2(keys_from / "keys" / name, workdir / "keys" / name)
    world = EvidenceWorld(deployment=deployment, anchor_backend=anchor_backend)
    for device, kind in FLEET_KINDS.items():
        seed = seed_of(("attacker:" if device in forged else "") + device)
        world.agents[device] = Agent(device_id=device, kind=kind, seed=seed)
    asyncio.run(_populate(world))
    return world


async def _populate(world: EvidenceWorld) -> None:
    settings = world.deployment.settings
    store = await SqliteStore.open(settings.db_path)
    try:
        operator = load_key_file(settings.operator_key_file)
        registry = Registry(store=store, operator=operator, clock_ms=lambda: T0_MS)
        await registry.enroll(
            [
                DeviceSpec(device_id=a.device_id, kind="bus" if a.kind == "bus" else "pack",
                           fleet=FLEET, public_key=public_key_from_seed(a.seed))
                for a in world.agents.values()
            ]
        )  # fmt: skip
        pipeline = Pipeline(store=store)
        agents = world.agents
        backfill: list[Incoming] = []
        for round_ in range(MESSAGES):
            first = round_ < MESSAGES // 2
            batch = [
                agents["bus-0001"].incoming(
                    agents["bus-0001"].sign(packs=("pack-0001",) if first else ("pack-0002",))
                ),
                agents["bus-0002"].incoming(
                    agents["bus-0002"].sign(packs=() if first else ("pack-0001",))
                ),
                agents["pack-0001"].incoming(
                    agents["pack-0001"].sign(host="bus-0001" if first else "bus-0002")
                ),
                agents["pack-0002"].incoming(
                    agents["pack-0002"].sign(host=None if first else "bus-0001")
                ),
                agents["bus-0003"].incoming(agents["bus-0003"].sign()),
            ]
            backfill.append(
                agents["pack-0003"].incoming(agents["pack-0003"].sign(host="bus-0003"),
                                             historical=True)
            )  # fmt: skip
            await _accept(pipeline, batch)
            if round_ == MESSAGES // 2 - 1:
                bus3 = agents["bus-0003"]
                new_seed = hashlib.sha256(bus3.seed).digest()
                await registry.rotate(
                    "bus-0003", old_seed=bus3.seed, new_public_key=public_key_from_seed(new_seed),
                    seq=bus3.seq,
                )  # fmt: skip
                bus3.seed = new_seed
        await _accept(pipeline, backfill)
        await sign_and_anchor(world, store)
    finally:
        await store.close()


async def _accept(pipeline: Pipeline, batch: list[Incoming]) -> None:
    outcomes = await pipeline.process(batch)
    assert all(o.kind is OutcomeKind.ACCEPTED for o in outcomes), outcomes


async def sign_and_anchor(world: EvidenceWorld, store: SqliteStore) -> None:
    """Sign a checkpoint of the whole log with its index line, anchor it, export the table
    (with another ledger than the local table: anchor it there, nothing to export)."""
    settings = world.deployment.settings
    key = load_key_file(settings.key_file)
    head = await store.log_head()
    index = await store.device_index_at(head.size)
    checkpoint = Checkpoint(
        origin=settings.origin, size=head.size, root=head.root,
        extensions=(index_line(index.root()),),
    )  # fmt: skip
    note = sign_checkpoint(checkpoint, name=key.name, seed=key.seed)
    await store.add_checkpoint(
        CheckpointRecord(size=head.size, root=head.root, note=note, signed_at_ms=RECEIVED_MS)
    )
    if world.anchor_backend is not None:
        other = await world.anchor_backend()
        try:
            await Anchorer(store=store, backend=other, origin=settings.origin).sync()
        finally:
            await other.aclose()
        return
    backend = await LocalAnchorBackend.open(settings.data_dir / "anchors.db", seed=key.seed)
    try:
        await Anchorer(store=store, backend=backend, origin=settings.origin).sync()
        await backend.export(world.anchor_export)
    finally:
        await backend.aclose()


def lessor_check(
    world: EvidenceWorld,
    bundle: BundleV2,
    *,
    export: Path | None = None,
    expected_from_ms: int | None = None,
    expected_to_ms: int | None = None,
) -> V2Report:
    """What a lessor runs: the bundle against the anchor export it downloaded itself."""
    text = (export or world.anchor_export).read_text(encoding="utf-8")
    anchors = anchor_checker(gateway_verifier_key=world.gateway_key, anchor_export=text)
    again = read_bundle(bundle.to_bytes())  # what the lessor reads is the file
    assert isinstance(again, BundleV2)
    return verify_bundle_v2(again, gateway_verifier_key=world.gateway_key, anchors=anchors,
                            expected_from_ms=expected_from_ms,
                            expected_to_ms=expected_to_ms)  # fmt: skip


def assert_complete(report: V2Report) -> None:
    """VALID, COMPLETE and independently anchored."""
    assert report.independently_anchored, report.anchor
    assert report.complete, [c for c in report.chains if not c.complete]
