"""GB/T 32960 terminals logged by the real listener, signed, anchored: v2 bundle tests.

Three terminals are enrolled by the real :class:`~gateway.registry.Registry`: a 2016 one
(:data:`VIN_2016`), a 2025 one enrolled with ``edition = 2025`` (:data:`VIN_2025`) and a
second 2025 one (:data:`VIN_OTHER`). Their frames come from the independent rtm-con encoder
(``tests.support.gbt_terminal``; 2025 frames signed with real gmssl SM2 keys) over TCP to
the real :class:`~gateway.gbt32960.GbtListener`, which verifies and logs them. A checkpoint
with its device index line is signed with the gateway key and anchored in the local table
(``tests.support.evidence_world.sign_and_anchor``).

A dishonest operator holds the store and the gateway key, so it can log anything and
re-sign the log: :meth:`TerminalWorld.forge` appends a frame of its choosing as the next
leaf of a terminal's chain, with the envelope a gateway would make but none of the
listener's checks, then signs and anchors the log again. Every proof in such a bundle is
genuine; only the frame's own content can betray it.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from gateway.config import GbtSettings
from gateway.gbt32960 import GbtListener
from gateway.registry import DeviceSpec, Registry
from gateway.store import Appended, Candidate, SqliteStore
from ledger import gbt32960 as gbt
from ledger.bundle_v2 import BundleV2
from ledger.chain import ZERO_PREV
from ledger.gbt32960.errors import ANSWER_OK
from ledger.keys import load_key_file
from tests.support import gbt_terminal as terminal
from tests.support.evidence_world import EvidenceWorld, sign_and_anchor
from tests.support.gateway_world import Deployment, write_deployment
from tests.support.gbt_world import TerminalConnection
from tests.support.store_world import offline_broker

VIN_2016 = "LZYTBGBW5M1000016"
VIN_2025 = "LZYTBGBW5M1000025"
VIN_OTHER = "LZYTBGBW5M1000026"
FRAMES = 6
STEP_S = 10
CLOCK_MS = 1_796_536_800_000 + 3_600_000
"""The gateway's clock while the frames arrive: an hour after the first frame's time."""
TO_MS = CLOCK_MS + 1
"""A bundle period end past every frame: an "up to now" bundle."""


def reading(k: int) -> terminal.Reading:
    """The ``k``-th reading of every terminal: driving, the pack discharging."""
    return terminal.Reading(
        at=terminal.at(k * STEP_S), speed_kmh=30.0 + k, odometer_km=12_345.6 + k / 10,
        voltage_v=612.3 - k, current_a=45.6 + k, soc=78 - k,
        cell_volts=((3.301 - k / 1000, 3.322, 3.298 - k / 1000, 3.310),),
        probe_temps=((25 + k, 27, 24),),
    )  # fmt: skip


@dataclass(slots=True, kw_only=True)
class TerminalWorld:
    """The deployment, the terminals' SM2 keys and the frames each sent."""

    deployment: Deployment
    keys: dict[str, terminal.Sm2Key]
    sent: dict[str, list[bytes]] = field(default_factory=dict)

    @property
    def evidence(self) -> EvidenceWorld:
        """The same deployment as an EvidenceWorld (its bundle builder and anchor export)."""
        return EvidenceWorld(deployment=self.deployment)

    @property
    def gateway_key(self) -> str:
        """The gateway's C2SP verifier key."""
        return self.evidence.gateway_key

    def bundle(self, vin: str, *, from_ms: int = 0, to_ms: int = TO_MS) -> BundleV2:
        """The v2 bundle the real builder makes for ``vin``."""
        return self.evidence.bundle(vin, from_ms=from_ms, to_ms=to_ms)

    def frame(self, vin: str, k: int, *, key: terminal.Sm2Key | None = None,
              tamper: bool = False) -> bytes:  # fmt: skip
        """Frame ``k`` of ``vin`` in its edition (2025: signed with ``key`` or its own)."""
        edition = 2016 if vin == VIN_2016 else 2025
        signer = None if edition == 2016 else key or self.keys[vin]
        return terminal.realtime(edition, vin, reading(k), key=signer, tamper=tamper)

    def send(self, vin: str, readings: list[terminal.Reading]) -> None:
        """``vin``'s terminal sends one more real-time frame per reading through the real
        listener (each must be answered 0x01); the log is then signed and anchored again."""
        asyncio.run(self._send(vin, readings))

    async def _send(self, vin: str, readings: list[terminal.Reading]) -> None:
        edition = 2016 if vin == VIN_2016 else 2025
        store = await SqliteStore.open(self.deployment.settings.db_path)
        try:
            settings = GbtSettings(enabled=True, host="127.0.0.1", port=0)
            listener = GbtListener(settings=settings, store=store, clock_ms=lambda: CLOCK_MS)
            async with listener, await TerminalConnection.open(*listener.address) as link:
                for item in readings:
                    key = None if edition == 2016 else self.keys[vin]
                    frame = terminal.realtime(edition, vin, item, key=key)
                    answer = await link.ask(frame)
                    assert answer[3] == ANSWER_OK, answer
                    self.sent[vin].append(frame)
            await sign_and_anchor(self.evidence, store)
        finally:
            await store.close()

    def forge(self, vin: str, frame: bytes, *, columns_of: bytes | None = None) -> None:
        """The operator logs ``frame`` as ``vin``'s next leaf, unchecked, and re-signs.

        ``columns_of``: the frame whose decoded sample the store keeps (when ``frame``
        itself does not decode, a dishonest gateway stores whatever it likes).
        """
        asyncio.run(self._forge(vin, frame, columns_of or frame))

    async def _forge(self, vin: str, frame: bytes, columns_of: bytes) -> None:
        store = await SqliteStore.open(self.deployment.settings.db_path)
        try:
            heads = {h.device_id: h for h in await store.chain_heads()}
            head = heads.get(vin)
            seq = 0 if head is None else head.seq + 1
            prev = ZERO_PREV if head is None else head.message_hash
            parsed = gbt.parse_frame(columns_of)
            record = gbt.decode_realtime(parsed.edition, parsed.data)
            leaf = gbt.encode_envelope(
                received_at_ms=CLOCK_MS, seq=seq, prev=prev, device_id=vin, frame=frame
            )
            candidate = Candidate(
                position=0, topic=f"gbt32960/{vin}", device_id=vin, seq=seq, prev=prev,
                t_ms=record.at_ms, received_at_ms=CLOCK_MS, historical=False, cose=leaf,
                message_hash=hashlib.sha256(leaf).digest(), batch=gbt.bus_telemetry(record),
                pack=gbt.pack_telemetry(record),
            )  # fmt: skip
            (outcome,) = await store.commit([candidate], [])
            assert isinstance(outcome, Appended), outcome
            await sign_and_anchor(self.evidence, store)
        finally:
            await store.close()


def build_terminal_world(workdir: Path) -> TerminalWorld:
    """Enrol the three terminals, stream :data:`FRAMES` frames of each, sign and anchor."""
    deployment = write_deployment(workdir, offline_broker(workdir), devices=0)
    keys = {vin: terminal.Sm2Key.generate() for vin in (VIN_2016, VIN_2025, VIN_OTHER)}
    world = TerminalWorld(deployment=deployment, keys=keys)
    asyncio.run(_populate(world))
    return world


async def _populate(world: TerminalWorld) -> None:
    settings = world.deployment.settings
    store = await SqliteStore.open(settings.db_path)
    try:
        registry = Registry(store=store, operator=load_key_file(settings.operator_key_file))
        await registry.enroll([
            DeviceSpec(
                device_id=vin, kind="bus", fleet="fleet-a", public_key=gbt.placeholder_key(vin),
                terminal=gbt.Terminal(vin=vin, chip=f"chip-{vin[-4:]}", sm2=key.public,
                                      edition=2025 if vin == VIN_2025 else None),
            )
            for vin, key in world.keys.items()
        ])  # fmt: skip
        listener_settings = GbtSettings(enabled=True, host="127.0.0.1", port=0)
        async with GbtListener(
            settings=listener_settings, store=store, clock_ms=lambda: CLOCK_MS
        ) as listener:
            host, port = listener.address
            for vin in world.keys:
                edition = 2016 if vin == VIN_2016 else 2025
                world.sent[vin] = []
                async with await TerminalConnection.open(host, port) as link:
                    await link.ask(terminal.login(edition, vin, terminal.at(0)))
                    for k in range(FRAMES):
                        frame = world.frame(vin, k)
                        answer = await link.ask(frame)
                        assert answer[3] == ANSWER_OK, answer
                        world.sent[vin].append(frame)
            assert listener.stats.appended == FRAMES * len(world.keys)
        await sign_and_anchor(world.evidence, store)
    finally:
        await store.close()
