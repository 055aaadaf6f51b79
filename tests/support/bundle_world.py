"""A small deployment in memory for bundle, verifier and report tests.

Real Ed25519 keys, real COSE messages and registry entries, a real :class:`MemoryLog`, a
signed checkpoint and a local anchor table signed by the gateway key: every proof in a
bundle built here is genuine, so a test that corrupts one byte exercises the real checks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from nacl.signing import SigningKey

from ledger.anchors.base import AnchorReceipt, AnchorState
from ledger.anchors.local_entry import EXPORT_FORMAT, GENESIS_HASH, LocalEntry
from ledger.bundle import AnchorEvidence, Bundle, BundleInput, LoggedLeaf, build_bundle
from ledger.checkpoint import Checkpoint, log_id, sign_checkpoint
from ledger.keys import public_key_from_seed
from ledger.merkle import MemoryLog
from ledger.message import message_hash, sign_message, sign_registry_entry
from ledger.note import verifier_key
from ledger.telemetry import BusSample, Event, PackSample, TelemetryBatch, encode_batch

ORIGIN = "voltproof.example/gw-1"
T0 = 1_767_225_600_000
"""2026-01-01T00:00:00Z in Unix ms."""


def seed_of(name: str) -> bytes:
    """A deterministic 32-byte seed per name (tests only)."""
    return hashlib.sha256(b"voltproof-test-seed:" + name.encode()).digest()


def pack_sample(**changes: Any) -> PackSample:
    """A plausible BMS sample of a 280 Ah LFP pack; keyword arguments override fields."""
    values: dict[str, Any] = {
        "voltage_v": 620.0, "current_a": 0.0, "soc": 0.5, "cell_v_max": 3.3,
        "cell_v_max_pos": 1, "cell_v_min": 3.29, "cell_v_min_pos": 2, "temp_max_c": 25.0,
        "temp_max_pos": 1, "temp_min_c": 24.0, "temp_min_pos": 2,
        "insulation_ohm": 5_000_000.0, "alarm_level": 0, "alarm_flags": 0,
        "soh_capacity": 0.95, "resistance_growth": 1.1, "r0_ohm": 0.05, "capacity_ah": 266.0,
        "energy_in_wh": 1_000_000.0, "energy_out_wh": 950_000.0, "ah_in": 5000.0,
        "ah_out": 4800.0, "charge_state": 0,
    }  # fmt: skip
    values.update(changes)
    return PackSample(**values)


def bus_sample(**changes: Any) -> BusSample:
    """A plausible vehicle-controller sample; keyword arguments override fields."""
    values: dict[str, Any] = {
        "speed_mps": 10.0, "odometer_m": 100_000.0, "lat_deg": 22.5, "lon_deg": 114.0,
        "vehicle_state": 1, "charge_state": 0, "traction_power_w": 50_000.0,
        "aux_power_w": 5000.0, "ambient_c": 20.0, "at_stop": 0,
    }  # fmt: skip
    values.update(changes)
    return BusSample(**values)


def pack_batch(
    t_ms: int,
    samples: Sequence[PackSample],
    *,
    dt_ms: int = 1000,
    events: Sequence[Event] = (),
    host: str | None = "bus-1",
) -> TelemetryBatch:
    """A pack batch starting at ``t_ms``."""
    return TelemetryBatch(
        kind="pack", t_ms=t_ms, dt_ms=dt_ms, samples=tuple(samples), events=tuple(events),
        host=host,
    )  # fmt: skip


def bus_batch(
    t_ms: int, samples: Sequence[BusSample], *, dt_ms: int = 1000, events: Sequence[Event] = ()
) -> TelemetryBatch:
    """A bus batch starting at ``t_ms`` with pack-1 installed."""
    return TelemetryBatch(
        kind="bus", t_ms=t_ms, dt_ms=dt_ms, samples=tuple(samples), events=tuple(events),
        packs=("pack-1",),
    )  # fmt: skip


@dataclass(kw_only=True)
class DeviceState:
    """A simulated device: its current seed, next seq and last message hash."""

    seed: bytes
    seq: int = 0
    prev: bytes = bytes(32)


@dataclass(kw_only=True)
class World:
    """An operator, a gateway log and devices; every leaf appended is remembered."""

    log: MemoryLog = field(default_factory=MemoryLog)
    leaves: list[bytes] = field(default_factory=list)
    devices: dict[str, DeviceState] = field(default_factory=dict)
    operator_seed: bytes = field(default_factory=lambda: seed_of("operator"))
    gateway_seed: bytes = field(default_factory=lambda: seed_of("gateway"))
    anchors: list[LocalEntry] = field(default_factory=list)
    registry_leaves: list[int] = field(default_factory=list)

    @property
    def gateway_key(self) -> str:
        """The gateway's C2SP verifier key (the one key a lessor trusts)."""
        return verifier_key(ORIGIN, public_key_from_seed(self.gateway_seed))

    def append_leaf(self, data: bytes) -> int:
        """Log ``data`` as the next leaf; return its index."""
        self.leaves.append(data)
        return self.log.append([data])

    def registry(self, entry: dict[str, Any], *, seed: bytes | None = None) -> int:
        """Sign (operator key by default) and log a registry entry; return its leaf index."""
        data = sign_registry_entry(entry, seed=seed or self.operator_seed, kid="operator")
        index = self.append_leaf(data)
        self.registry_leaves.append(index)
        return index

    def enroll(self, device: str, kind: str, *, t_ms: int = T0 - 86_400_000) -> int:
        """Enrol ``device`` with a fresh key."""
        state = DeviceState(seed=seed_of(device))
        self.devices[device] = state
        key = public_key_from_seed(state.seed)
        return self.registry({"type": "enroll", "dev": device, "kind": kind, "key": key,
                              "t": t_ms})  # fmt: skip

    def rotate(self, device: str, *, t_ms: int = T0) -> int:
        """Rotate ``device`` to a new key from its next seq on (signed by its old key)."""
        state = self.devices[device]
        new_seed = hashlib.sha256(state.seed).digest()
        entry = {"type": "rotate", "dev": device, "key": public_key_from_seed(new_seed),
                 "seq": state.seq, "t": t_ms}  # fmt: skip
        index = self.registry(entry, seed=state.seed)
        state.seed = new_seed
        return index

    def revoke(self, device: str, *, t_ms: int = T0) -> int:
        """Revoke ``device``'s key."""
        return self.registry({"type": "revoke", "dev": device, "t": t_ms})

    def send(self, device: str, batch: TelemetryBatch, *, log: bool = True) -> bytes:
        """Sign the device's next message (logging it unless ``log`` is false)."""
        state = self.devices[device]
        payload = {"v": 1, "dev": device, "seq": state.seq, "prev": state.prev, "t": batch.t_ms,
                   **encode_batch(batch)}  # fmt: skip
        data = sign_message(payload, seed=state.seed)
        state.seq += 1
        state.prev = message_hash(data)
        if log:
            self.append_leaf(data)
        return data

    def checkpoint(self, size: int | None = None) -> str:
        """The signed checkpoint of the first ``size`` leaves (default: all)."""
        size = self.log.size if size is None else size
        body = Checkpoint(origin=ORIGIN, size=size, root=self.log.root_at(size))
        return sign_checkpoint(body, name=ORIGIN, seed=self.gateway_seed)

    def anchor(self, size: int | None = None) -> AnchorReceipt:
        """Anchor the tree of ``size`` leaves in the local anchor table; return its receipt."""
        size = self.log.size if size is None else size
        entry = LocalEntry.create(
            sequence=len(self.anchors) + 1, log_id=log_id(ORIGIN), tree_size=size,
            root=self.log.root_at(size), anchored_at_ms=T0 + len(self.anchors),
            prev_hash=self.anchors[-1].entry_hash if self.anchors else GENESIS_HASH,
            signing_key=SigningKey(self.gateway_seed),
        )  # fmt: skip
        self.anchors.append(entry)
        return AnchorReceipt(
            backend="local", log_id=entry.log_id, tree_size=size, root=entry.root,
            state=AnchorState.FINAL, details=entry.details(),
        )  # fmt: skip

    def export(self) -> dict[str, Any]:
        """The local anchor table's export document."""
        return {"format": EXPORT_FORMAT, "entries": [e.to_dict() for e in self.anchors]}

    def leaf(self, index: int, size: int) -> LoggedLeaf:
        """Leaf ``index`` with its inclusion proof in the tree of ``size`` leaves."""
        proof = self.log.inclusion_proof(index=index, size=size)
        return LoggedLeaf(index=index, data=self.leaves[index], proof=tuple(proof))

    def bundle(
        self,
        *,
        asset: str,
        kind: str,
        from_ms: int,
        to_ms: int,
        messages: Sequence[int],
        size: int | None = None,
        receipt: AnchorReceipt | None = None,
        embed_export: bool = True,
    ) -> Bundle:
        """A bundle of the leaves ``messages`` and every registry entry, against ``size``."""
        size = self.log.size if size is None else size
        receipt = receipt or self.anchor(size)
        registry = [self.leaf(i, size) for i in self.registry_leaves if i < size]
        evidence = AnchorEvidence(
            size=receipt.tree_size, root=receipt.root,
            consistency=tuple(self.log.consistency_proof(size1=size, size2=receipt.tree_size)),
            receipt=receipt, local_export=self.export() if embed_export else None,
        )  # fmt: skip
        return build_bundle(
            BundleInput(
                asset_id=asset, asset_kind=kind, from_ms=from_ms, to_ms=to_ms,
                checkpoint=self.checkpoint(size),
                operator_key=public_key_from_seed(self.operator_seed), registry=registry,
                messages=[self.leaf(i, size) for i in messages], anchor=evidence,
            )
        )  # fmt: skip


def with_anchor(bundle: Bundle, **changes: Any) -> Bundle:
    """``bundle`` with fields of its anchor evidence replaced."""
    return replace(bundle, anchor=replace(bundle.anchor, **changes))


def pack_world(*, messages: int = 6) -> tuple[World, Bundle]:
    """A pack with one boundary message each side of a period holding ``messages - 2``."""
    world = World()
    world.enroll("pack-1", "pack")
    for k in range(messages):
        world.send("pack-1", pack_batch(T0 + (k - 1) * 10_000, [pack_sample()] * 10))
    to_ms = T0 + (messages - 2) * 10_000
    bundle = world.bundle(
        asset="pack-1", kind="pack", from_ms=T0, to_ms=to_ms, messages=range(1, messages + 1)
    )
    return world, bundle


def flip(data: bytes, at: int) -> bytes:
    """``data`` with the lowest bit of byte ``at`` flipped."""
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


def with_message(bundle: Bundle, position: int, leaf: LoggedLeaf) -> Bundle:
    """``bundle`` with message ``position`` of its only chain replaced by ``leaf``."""
    (chain,) = bundle.chains
    messages = list(chain.messages)
    messages[position] = leaf
    return replace(bundle, chains=(replace(chain, messages=tuple(messages)),))
