"""The fleet file: what ``voltproof sim`` simulates (see ``configs/fleet.example.toml``)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from ledger.errors import VoltproofError
from ledger.placeholders import is_placeholder


class FleetError(VoltproofError, ValueError):
    """The fleet file cannot be read or is invalid; the message names the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OfflineFault(_Section):
    """A fraction of devices loses its uplink for a window, then backfills."""

    fraction: float = Field(default=0.0, ge=0, le=1)
    start_s: float = Field(default=20.0, ge=0)
    duration_s: float = Field(default=30.0, gt=0)


class Faults(_Section):
    """Faults of honest devices (the data stays valid; the gateway must cope)."""

    offline: OfflineFault = OfflineFault()
    clock_skew_fraction: float = Field(default=0.0, ge=0, le=1)
    clock_skew_s: float = 0.0
    pack_swaps: int = Field(default=0, ge=0)
    pack_swap_at_s: float = Field(default=15.0, ge=0)


class Attacks(_Section):
    """How many messages of each attack kind to inject (each must be rejected)."""

    at_s: float = Field(default=12.0, ge=0)
    forged_signature: int = Field(default=0, ge=0)
    replay: int = Field(default=0, ge=0)
    reorder: int = Field(default=0, ge=0)
    fork: int = Field(default=0, ge=0)
    wrong_topic: int = Field(default=0, ge=0)
    wrong_kid: int = Field(default=0, ge=0)
    garbage: int = Field(default=0, ge=0)
    oversized: int = Field(default=0, ge=0)


class Credentials(_Section):
    """MQTT credentials: none, or one user per device (user = device id)."""

    per_device: bool = False
    password_file: Path | None = None
    """Lines ``device_id:password`` (mode 0600); required when per_device is true."""
    shared_username: str | None = None
    shared_password: SecretStr | None = None


class Fleet(_Section):
    """A fleet: buses with their packs, physics, faults and attacks."""

    name: str = Field(default="demo", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    seed: int = 1
    buses: int = Field(default=10, ge=0, le=100_000)
    packs_per_bus: Literal[1] = 1
    spare_packs: int = Field(default=0, ge=0)
    physics: Literal["full", "steady"] = "full"
    charging: Literal["depot", "pantograph"] = "depot"
    ageing_accel: float = Field(default=1.0, ge=1.0)
    period_s: int = Field(default=10, ge=1, le=30)
    max_inflight: int = Field(default=20, ge=1)
    ramp_s: float = Field(default=5.0, ge=0)
    outbox_max_messages: int = Field(default=10_000, ge=1)
    credentials: Credentials = Credentials()
    faults: Faults = Faults()
    attacks: Attacks = Attacks()

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.credentials.per_device and self.credentials.password_file is None:
            raise ValueError("credentials.per_device needs credentials.password_file")
        shared = self.credentials.shared_password
        if shared is not None and is_placeholder(shared.get_secret_value()):
            raise ValueError("credentials.shared_password is a placeholder; set the real one")
        if self.faults.pack_swaps > min(self.spare_packs, self.buses):
            raise ValueError("faults.pack_swaps needs a bus and a spare pack per swap")
        if self.faults.pack_swaps and self.physics != "full":
            raise ValueError('faults.pack_swaps needs physics = "full"')
        return self

    def bus_ids(self) -> list[str]:
        """Bus device ids."""
        return [f"bus-{i:04d}" for i in range(self.buses)]

    def pack_ids(self) -> list[str]:
        """Pack device ids (installed ones first, then spares)."""
        return [f"pack-{i:04d}" for i in range(self.buses + self.spare_packs)]


def load_fleet(path: Path) -> Fleet:
    """Read and validate a fleet file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FleetError(f"cannot read {path}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise FleetError(f"{path} is not valid TOML: {exc}") from exc
    try:
        fleet = Fleet(**data)
    except ValidationError as exc:
        described = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'fleet'}: {e['msg']}" for e in exc.errors()
        )
        raise FleetError(f"{path}: invalid fleet: {described}") from exc
    password_file = fleet.credentials.password_file
    if password_file is not None and not password_file.is_absolute():
        # Relative paths in a fleet file are relative to the file, as in gateway.toml.
        credentials = fleet.credentials.model_copy(
            update={"password_file": path.resolve().parent / password_file}
        )
        fleet = fleet.model_copy(update={"credentials": credentials})
    return fleet
