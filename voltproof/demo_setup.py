"""Prepare a demo deployment directory: keys, configuration, credentials, enrolment.

Everything is idempotent: running the demo again in the same directory keeps the keys,
the log and the device chains, and continues where the last run stopped.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
import tomllib
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from api.access import Role, Window
from api.accessdb import AccessDb
from firmware_sim.gbt32960.encode import TerminalKey
from firmware_sim.physics.pack import PackConfig
from firmware_sim.sim.fleet import Fleet, load_fleet
from firmware_sim.sim.keys import load_or_create, manufacturer_key
from gateway.config import GatewaySettings, load_settings
from gateway.registry import DeviceSpec, Registry
from gateway.store_choice import open_store
from ledger.batterypass import PASSPORT_SETTING_NAME
from ledger.cosignature import witness_verifier_key
from ledger.gbt32960 import Terminal, placeholder_key
from ledger.keys import create_key_file, load_key_file
from ledger.note import verifier_key
from ledger.private_files import private_dir, private_file

from .demo import SPARE_PACKS

ORIGIN = "voltproof.demo/gw-1"
FLEET = "demo"
WITNESS_NAME = "lessor.demo/witness-1"
GATEWAY_USER = "voltproof-gateway"
OPERATOR_KEY_NAME = "demo-operator"
LESSOR_KEY_NAME = "demo-lessor"
YEAR_MS = 365 * 24 * 3600 * 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoLayout:
    """Where each part of the demo keeps its state under the work directory."""

    root: Path

    @property
    def keys(self) -> Path:
        """Gateway and operator keys."""
        return self.root / "keys"

    @property
    def secrets(self) -> Path:
        """Broker passwords and API keys (mode 0700)."""
        return self.root / "secrets"

    @property
    def logs(self) -> Path:
        """One log file per process."""
        return self.root / "logs"

    @property
    def sim_state(self) -> Path:
        """Device keys, chains and outboxes of the simulated fleet."""
        return self.root / "sim"

    @property
    def fleet_file(self) -> Path:
        """The simulated fleet."""
        return self.root / "fleet.toml"

    @property
    def gateway_config(self) -> Path:
        """The (first) gateway's configuration (the API, bundle and audit read it too)."""
        return self.root / "gateway.toml"

    def gateway_config_of(self, number: int) -> Path:
        """The configuration of gateway ``number`` (1: :attr:`gateway_config`)."""
        return self.gateway_config if number == 1 else self.root / f"gateway-{number}.toml"

    @property
    def postgresql(self) -> Path:
        """The demo's own PostgreSQL cluster (``--store postgresql`` without a URL)."""
        return self.root / "postgresql"

    @property
    def device_passwords(self) -> Path:
        """``device_id:password`` lines for the simulator."""
        return self.secrets / "device-passwords.txt"

    @property
    def broker_credentials(self) -> Path:
        """Every broker account's password, as JSON."""
        return self.secrets / "broker-credentials.json"

    @property
    def old_api_keys(self) -> Path:
        """Where earlier demos kept API keys in clear (deleted: keys are shown once now)."""
        return self.secrets / "api-keys.json"

    @property
    def anchor_export(self) -> Path:
        """The local ledger's export, for offline verification."""
        return self.root / "anchors-export.json"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


def write_fleet(layout: DemoLayout, *, buses: int, ageing_accel: float, seed: int) -> Fleet:
    """Write the demo fleet (kept if it exists, so a re-run continues the same fleet)."""
    if not layout.fleet_file.exists():
        layout.fleet_file.write_text(
            f"""# The demo fleet (voltproof demo). Edit and re-run to change it.
name = "{FLEET}"
seed = {seed}
buses = {buses}
packs_per_bus = 1
spare_packs = {SPARE_PACKS}
physics = "full"
charging = "depot"
ageing_accel = {ageing_accel}   # years of state-of-health decline in minutes
period_s = 10
ramp_s = 5.0

[credentials]
per_device = true
password_file = "secrets/device-passwords.txt"

[faults]
pack_swaps = 1
pack_swap_at_s = 60.0

[faults.offline]                 # 10 % of devices lose their uplink, then backfill
fraction = 0.1
start_s = 30.0
duration_s = 40.0

[attacks]                        # each is rejected and quarantined by the gateway
at_s = 20.0
forged_signature = 1
replay = 1
wrong_topic = 1
wrong_kid = 1
garbage = 1
oversized = 1
""",
            encoding="utf-8",
        )
    return load_fleet(layout.fleet_file)


def device_kinds(fleet: Fleet) -> dict[str, str]:
    """``{device id: kind}`` of every simulated device."""
    kinds = dict.fromkeys(fleet.bus_ids(), "bus")
    kinds.update(dict.fromkeys(fleet.pack_ids(), "pack"))
    return kinds


def gateway_user(number: int) -> str:
    """The broker account of gateway ``number``: the broker binds client ids to usernames
    (``use_username_as_clientid``), so each gateway process has its own."""
    return GATEWAY_USER if number == 1 else f"{GATEWAY_USER}-{number}"


def broker_credentials(layout: DemoLayout, fleet: Fleet, *, gateways: int = 1) -> dict[str, str]:
    """One password per device and per gateway (created once, then reused)."""
    known: dict[str, str] = {}
    if layout.broker_credentials.exists():
        known = json.loads(layout.broker_credentials.read_text(encoding="utf-8"))
    for user in [*(gateway_user(n) for n in range(1, gateways + 1)), *device_kinds(fleet)]:
        known.setdefault(user, secrets.token_urlsafe(18))
    _write_private(layout.broker_credentials, json.dumps(known, indent=1, sort_keys=True) + "\n")
    lines = "".join(f"{dev}:{known[dev]}\n" for dev in device_kinds(fleet))
    _write_private(layout.device_passwords, lines)
    return known


def acl_text(template: str, *, gateways: int) -> str:
    """The broker ACL ``template`` (the project's, with one ``user voltproof-gateway`` block)
    with the same block repeated for each further gateway account."""
    head, marker, rest = template.partition(f"user {GATEWAY_USER}\n")
    if not marker:
        raise ValueError(f"the ACL has no 'user {GATEWAY_USER}' block")
    block, blank, tail = rest.partition("\n\n")
    copies = "".join(f"user {gateway_user(n)}\n{block}\n\n" for n in range(2, gateways + 1))
    return f"{head}{marker}{block}{blank}{copies}{tail}"


def previous_store_url(layout: DemoLayout) -> str | None:
    """The ``store.url`` an earlier demo in this folder wrote (``None``: SQLite, or none)."""
    try:
        with layout.gateway_config.open("rb") as config:
            url = tomllib.load(config).get("store", {}).get("url")
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return url if isinstance(url, str) else None


def gateway_verifier_key(layout: DemoLayout) -> str:
    """The gateway's key (made once) as a verifier key, also written to a file for lessors."""
    layout.keys.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not (layout.keys / "gateway.key").exists():
        create_key_file(layout.keys / "gateway.key", name=ORIGIN)
    gateway_key = load_key_file(layout.keys / "gateway.key")
    vkey = verifier_key(gateway_key.name, gateway_key.public_key)
    (layout.root / "gateway-verifier-key.txt").write_text(vkey + "\n", encoding="utf-8")
    return vkey


def write_witness_config(layout: DemoLayout, *, port: int) -> tuple[str, str]:
    """The lessor's witness: its key (once) and witness.toml (each run: the port changes).

    Returns the witness's vkey and the ``[[witnesses]]`` section of the gateway's config.
    """
    folder = layout.root / "witness"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_file = folder / "witness.key"
    if not key_file.exists():
        create_key_file(key_file, name=WITNESS_NAME)
    key = load_key_file(key_file)
    vkey = witness_verifier_key(key.name, key.public_key)
    private_file(folder / "witness-verifier-key.txt").write_text(vkey + "\n", encoding="utf-8")
    (folder / "witness.toml").write_text(
        f"""# The lessor's witness (written by voltproof demo on every run).
key_file = "witness.key"
state_file = "witness.sqlite3"
host = "127.0.0.1"
port = {port}

[[logs]]
origin = "{ORIGIN}"
keys = ["{gateway_verifier_key(layout)}"]
""",
        encoding="utf-8",
    )
    section = f'[[witnesses]]\nname = "lessor"\nurl = "http://127.0.0.1:{port}"\nkey = "{vkey}"\n'
    return vkey, section


def write_gateway_config(
    layout: DemoLayout,
    *,
    broker_url: str,
    metrics_port: int,
    anchors: str,
    witnesses: str = "",
    gbt_port: int | None = None,
    store_url: str | None = None,
    number: int = 1,
) -> GatewaySettings:
    """Keys (once) and the configuration of gateway ``number`` (each run: ports change).

    On SQLite (``store_url`` None) the demo runs one gateway on a plain subscription, which
    mosquitto restores after a restart. On PostgreSQL every gateway shares ``store_url``, the
    data folder (the local anchor table, which only the elected signer writes) and the MQTT 5
    shared subscription group; each has its own broker account, metrics and GB/T 32960 port.
    """
    gateway_verifier_key(layout)
    if not (layout.keys / "operator.key").exists():
        create_key_file(layout.keys / "operator.key", name="voltproof.demo/operator")
    if store_url is None:
        subscription = (
            "# One gateway process: a plain subscription, which mosquitto restores after a "
            'restart.\nshare_group = ""\n'
        )
        store = ""
    else:
        subscription = (
            "# Several gateway processes split the load through one MQTT 5 shared subscription."
            '\nshare_group = "voltproof-gateways"\n'
        )
        store = f'[store]\nurl = "{store_url}"\n\n'
    user = gateway_user(number)
    path = layout.gateway_config_of(number)
    text = f"""# Demo gateway {number} (written by voltproof demo on every run).
origin = "{ORIGIN}"
data_dir = "gateway"
key_file = "keys/gateway.key"
operator_key_file = "keys/operator.key"
fleets = ["{FLEET}"]

[mqtt]
url = "{broker_url}"
client_id = "voltproof-demo-{user.removeprefix("voltproof-")}"
username = "{user}"
# the password comes from VOLTPROOF_GATEWAY__MQTT__PASSWORD
{subscription}
{store}[checkpoints]
every_leaves = 500
every_s = 5

{anchors}
[metrics]
host = "127.0.0.1"
port = {metrics_port}

{witnesses}{_gbt_section(gbt_port)}"""
    if store_url is None:
        path.write_text(text, encoding="utf-8")
    else:  # the URL may hold a password
        _write_private(path, text)
    return load_settings(path)


def demo_passport_setting() -> dict[str, Any]:
    """The static passport of the demo's pack type: only what the simulator models.

    Identification and the ratings that follow from the simulated cell and topology
    (``firmware_sim.physics``, ``docs/simulation.md``); everything the simulator does not
    model (power, self-discharge, efficiency, lifetime, materials, ...) is left out, so the
    passport names it undeclared rather than the demo inventing it.
    """
    pack = PackConfig()
    cell = pack.cell
    part = f"SIM-LFP-{pack.series}S{pack.parallel}P-{cell.capacity_ah:g}"
    return {
        "identification": {
            "category": "EV",
            "chemistry": "LFP",
            "idDmc": part,
            "identification": {"type": {
                "manufacturerPartId": part,
                "nameAtManufacturer": f"voltproof simulated {pack.series}S{pack.parallel}P "
                f"{cell.capacity_ah:g} Ah LFP traction pack",
            }},
        },
        "performance": {"rated": {
            "capacity": {"value": pack.capacity_ah},
            "voltage": {"nominal": round(cell.nominal_v * pack.series, 3),
                        "min": round(cell.min_v * pack.series, 3),
                        "max": round(cell.max_v * pack.series, 3)},
            "resistance": {"cell": cell.r0_ohm,
                           "pack": round(cell.r0_ohm * pack.series / pack.parallel, 9)},
        }},
    }  # fmt: skip


def write_passport_setting(layout: DemoLayout) -> Path:
    """Write the demo's passport setting next to gateway.toml (kept if it exists)."""
    path = layout.root / PASSPORT_SETTING_NAME
    if not path.exists():
        text = json.dumps(demo_passport_setting(), indent=2, sort_keys=True) + "\n"
        path.write_text(text, encoding="utf-8")
    return path


def _gbt_section(port: int | None) -> str:
    if port is None:
        return ""
    return f'\n[gbt32960]\nenabled = true\nhost = "127.0.0.1"\nport = {port}\n'


GBT_TERMINALS: Final = (("LVPDEMO2016000001", 2016), ("LVPDEMO2016000002", 2016),
                        ("LVPDEMO2025000001", 2025), ("LVPDEMO2025000002", 2025))  # fmt: skip
"""The demo's GB/T 32960 vehicles: VIN and edition."""


async def enroll_terminals(
    settings: GatewaySettings, layout: DemoLayout
) -> list[tuple[str, int, TerminalKey]]:
    """SM2 keys for the demo's GB/T 32960 terminals (made once, kept under sim state) and
    their enrolment by VIN; returns (VIN, edition, key) per terminal."""
    path = layout.sim_state / "gbt32960-terminals.json"
    if path.exists():
        saved = json.loads(path.read_text(encoding="utf-8"))
        keys = {vin: TerminalKey(private=k["private"], public=bytes.fromhex(k["public"]))
                for vin, k in saved.items()}  # fmt: skip
    else:
        keys = {vin: TerminalKey.generate() for vin, _ in GBT_TERMINALS}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({vin: {"private": k.private, "public": k.public.hex()}
                                    for vin, k in keys.items()}), encoding="utf-8")  # fmt: skip
        path.chmod(0o600)
    async with AsyncExitStack() as stack:
        store = await open_store(settings, stack)
        known = {device.device_id for device in await store.list_devices()}
        missing = [
            DeviceSpec(
                device_id=vin, kind="bus", fleet=FLEET, public_key=placeholder_key(vin),
                terminal=Terminal(vin=vin, chip=f"SE-{vin[-6:]}", sm2=keys[vin].public,
                                  edition=edition),
            )
            for vin, edition in GBT_TERMINALS
            if vin not in known
        ]  # fmt: skip
        if missing:
            registry = Registry(store=store, operator=load_key_file(settings.operator_key_file))
            await registry.enroll(missing)
    return [(vin, edition, keys[vin]) for vin, edition in GBT_TERMINALS]


def manufacturer_verifier_key(layout: DemoLayout) -> str:
    """The demo fleet's one manufacturer (made once): its verifier key, also written to
    ``manufacturer-verifier-key.txt`` for ``voltproof verify --manufacturer``."""
    maker = manufacturer_key(layout.sim_state / "keys")
    private_file(layout.root / "manufacturer-verifier-key.txt").write_text(
        maker.verifier_key + "\n", encoding="utf-8"
    )
    return maker.verifier_key


async def enroll_fleet(settings: GatewaySettings, layout: DemoLayout, fleet: Fleet) -> int:
    """Create device keys and their birth certificates (once) and enrol every device the
    registry does not know yet, each enrolment carrying its certificate."""
    keys = await asyncio.to_thread(load_or_create, layout.sim_state / "keys", device_kinds(fleet))
    private_dir(settings.data_dir)
    async with AsyncExitStack() as stack:
        store = await open_store(settings, stack)
        known = {device.device_id for device in await store.list_devices()}
        missing = [
            DeviceSpec(
                device_id=dev,
                kind="bus" if key.kind == "bus" else "pack",
                fleet=FLEET,
                public_key=key.public_key,
                birth=key.birth,
            )
            for dev, key in keys.items()
            if dev not in known
        ]
        if missing:
            registry = Registry(store=store, operator=load_key_file(settings.operator_key_file))
            await registry.enroll(missing)
        return len(missing)


async def api_keys(settings: GatewaySettings, layout: DemoLayout, fleet: Fleet) -> dict[str, str]:
    """An operator key and a lessor key with a lease on the first bus and its pack.

    The secrets are returned to be shown once and are written nowhere (the access database
    holds their SHA-256 only). A re-run issues new secrets for the same two keys (the old ones
    stop working), since nobody can recover the old ones; the leases stay.
    """
    layout.old_api_keys.unlink(missing_ok=True)
    access = await AccessDb.open(settings.data_dir / "api.db")
    now = time.time_ns() // 1_000_000
    try:
        existing = {key.name for key in await access.keys() if key.revoked_at_ms is None}
        created: dict[str, str] = {}
        for name, role in ((OPERATOR_KEY_NAME, Role.OPERATOR), (LESSOR_KEY_NAME, Role.LESSOR)):
            if name in existing:
                key = await access.reissue_key(name)
            else:
                key = await access.create_key(name=name, role=role, fleet=None, now_ms=now)
            created[name] = key.secret
        if LESSOR_KEY_NAME not in existing:
            window = Window(from_ms=now - YEAR_MS, to_ms=now + 10 * YEAR_MS)
            for asset in fleet.bus_ids()[:1] + fleet.pack_ids()[:1]:
                await access.add_lease(asset=asset, lessor=LESSOR_KEY_NAME, window=window)
    finally:
        await access.close()
    return created
