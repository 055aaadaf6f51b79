"""Simulated devices for the gateway tests: real keys, real signed messages, real chains."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from gateway.registry import DeviceSpec
from gateway.verification import Incoming
from ledger.keys import generate_seed, public_key_from_seed
from ledger.message import sign_message, sign_registry_entry
from ledger.telemetry import BusSample, Kind, PackSample, TelemetryBatch, encode_batch

T0_MS = 1_750_000_000_000


def pack_sample(*, alarm: int = 0) -> PackSample:
    """A plausible LFP pack sample."""
    return PackSample(
        voltage_v=620.5, current_a=-120.3, soc=0.55, cell_v_max=3.312, cell_v_max_pos=17,
        cell_v_min=3.301, cell_v_min_pos=150, temp_max_c=31.5, temp_max_pos=4, temp_min_c=27.0,
        temp_min_pos=9, insulation_ohm=2_000_000.0, alarm_level=alarm,
        alarm_flags=2 if alarm else 0,
        soh_capacity=0.9712, resistance_growth=1.05, r0_ohm=0.0451, capacity_ah=543.2,
        energy_in_wh=123_456_789, energy_out_wh=120_000_000, ah_in=200_000.0, ah_out=195_000.0,
        charge_state=1,
    )  # fmt: skip


def bus_sample() -> BusSample:
    """A plausible city-bus sample."""
    return BusSample(
        speed_mps=10.0, odometer_m=123_456_780.0, lat_deg=22.543096, lon_deg=114.057865,
        vehicle_state=1, charge_state=0, traction_power_w=55_000.0, aux_power_w=8_000.0,
        ambient_c=28.5, at_stop=0,
    )  # fmt: skip


@dataclass(slots=True, kw_only=True)
class FakeDevice:
    """A device with a key and a hash chain; :meth:`message` signs the next message."""

    device_id: str
    fleet: str = "fleet-a"
    kind: Kind = "pack"
    seed: bytes = field(default_factory=generate_seed)
    seq: int = 0
    prev: bytes = bytes(32)

    @property
    def public_key(self) -> bytes:
        """The device's current public key."""
        return public_key_from_seed(self.seed)

    @property
    def topic(self) -> str:
        """The device's telemetry topic."""
        return f"voltproof/{self.fleet}/{self.device_id}/telemetry"

    def spec(self) -> DeviceSpec:
        """What enrolling this device needs."""
        return DeviceSpec(
            device_id=self.device_id, kind=self.kind, fleet=self.fleet, public_key=self.public_key
        )

    def payload(self, *, t_ms: int, n: int = 10, alarm: int = 0) -> dict[str, object]:
        """The payload of the next message (the chain is not advanced)."""
        samples: tuple[PackSample, ...] | tuple[BusSample, ...] = (
            tuple(pack_sample(alarm=alarm) for _ in range(n))
            if self.kind == "pack"
            else tuple(bus_sample() for _ in range(n))
        )
        batch = TelemetryBatch(kind=self.kind, t_ms=t_ms, dt_ms=1000, samples=samples, packs=())
        body = encode_batch(batch)
        return {"v": 1, "dev": self.device_id, "seq": self.seq, "prev": self.prev, "t": t_ms,
                **body}  # fmt: skip

    def message(self, *, t_ms: int | None = None, n: int = 10, alarm: int = 0) -> bytes:
        """Sign the next message of the chain and advance the chain."""
        t = T0_MS + self.seq * n * 1000 if t_ms is None else t_ms
        data = sign_message(self.payload(t_ms=t, n=n, alarm=alarm), seed=self.seed)
        self.seq += 1
        self.prev = hashlib.sha256(data).digest()
        return data

    def incoming(self, data: bytes, *, received_at_ms: int | None = None,
                 historical: bool = False, topic: str | None = None) -> Incoming:  # fmt: skip
        """``data`` as the broker would deliver it on this device's topic."""
        return Incoming(
            topic=self.topic if topic is None else topic,
            payload=data,
            received_at_ms=T0_MS + 10**9 if received_at_ms is None else received_at_ms,
            historical=historical,
        )

    def registry_entry(self) -> bytes:
        """A registry entry signed by this device (to send on the telemetry topic)."""
        return sign_registry_entry(
            {"type": "rotate", "dev": self.device_id, "t": T0_MS, "key": bytes(32), "seq": 0},
            seed=self.seed,
            kid=self.device_id,
        )
