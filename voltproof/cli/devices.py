"""``voltproof devices enroll|rotate|revoke|replace|list``: the device registry.

Safe while the gateway runs: each change is one ``BEGIN IMMEDIATE`` transaction that
appends its registry leaf after whatever the gateway committed (see ``gateway.store``).
The deployment is found from ``--config FILE`` (a gateway TOML) or ``--workdir DIR``
(``DIR/gateway.toml`` if present, else ``DIR/gateway.db`` and ``DIR/keys/operator.key``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.registry import DeviceSpec
    from gateway.store import Store, StoreReader
    from ledger.keys import SigningKey

from .exits import CommandFailedError, ExitCode, UsageError
from .options import command


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``devices`` and its actions to the ``voltproof`` parser."""
    devices = subparsers.add_parser(
        "devices",
        help="enrol, rotate, revoke, replace and list devices (each change is a signed log leaf)",
        description="The device registry. Every change is a registry entry appended to the "
        "log: enrolments, revocations and replacements signed by the operator key, rotations "
        "by the device's old key. An id is enrolled once, ever; a revocation is final.",
    )
    where = devices.add_mutually_exclusive_group()
    where.add_argument("--workdir", type=Path, help="deployment directory (default: demo's)")
    where.add_argument("--config", type=Path, help="gateway configuration file (TOML)")
    actions = devices.add_subparsers(dest="devices_command", required=True, metavar="ACTION")

    enroll = actions.add_parser("enroll", help="enrol one device, or many from a file")
    enroll.add_argument("--file", type=Path, help="JSON array or CSV with device_id, kind, "
                        "fleet, public_key (base64)")  # fmt: skip
    enroll.add_argument("--id", dest="device_id", help="device id")
    enroll.add_argument("--kind", choices=("bus", "pack"), help="device kind")
    enroll.add_argument("--fleet", help="fleet (the topic's second level)")
    enroll.add_argument("--public-key", help="the device's verifier key (as 'keys new' prints "
                        "it) or its base64 Ed25519 public key")  # fmt: skip
    enroll.add_argument("--birth", type=Path, metavar="FILE", help="the device's birth "
                        "certificate (as `voltproof manufacturer certify` writes it)")  # fmt: skip
    enroll.add_argument("--vin", help="a GB/T 32960 terminal: its VIN (the device id)")
    enroll.add_argument("--sm2-public-key", metavar="HEX", help="the terminal's SM2 public key "
                        "(hex, 64 bytes X || Y or 65 with 04)")  # fmt: skip
    enroll.add_argument("--chip-id", help="the terminal's security-chip id")
    enroll.add_argument("--edition", type=int, choices=(2016, 2025), default=None,
                        help="the one GB/T 32960.3 edition the terminal's frames may use "
                        "(2025: every data frame must be signed; default: either)")  # fmt: skip
    command(enroll, _enroll)

    rotate = actions.add_parser("rotate", help="rotate a device key (signed by the old key)")
    rotate.add_argument("device_id", metavar="DEVICE")
    rotate.add_argument("--old-key", type=Path, required=True, help="the device's key file")
    rotate.add_argument("--new-public-key", required=True, help="base64 new public key")
    rotate.add_argument("--seq", type=int, required=True, help="first seq signed by the new key")
    command(rotate, _rotate)

    revoke = actions.add_parser("revoke", help="revoke a device")
    revoke.add_argument("device_id", metavar="DEVICE")
    revoke.add_argument("--reason", help="why (recorded in the entry)")
    command(revoke, _revoke)

    replace = actions.add_parser(
        "replace",
        help="link a revoked device to its enrolled successor (same kind)",
        description="Log an operator-signed replace entry: OLD must be revoked, NEW enrolled "
        "and live, both of one kind; each id is replaced once and succeeds one device at most.",
    )
    replace.add_argument("old_id", metavar="OLD", help="the revoked device")
    replace.add_argument("new_id", metavar="NEW", help="its successor (enrolled already)")
    command(replace, _replace)

    listing = actions.add_parser("list", help="list devices")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    command(listing, _list)


@dataclass(frozen=True, slots=True, kw_only=True)
class Deployment:
    """Where the store and the operator key are."""

    db_path: Path
    operator_key_file: Path
    configured: bool = False
    """Whether a gateway configuration names this deployment (its data folder may be made)."""
    fleets: tuple[str, ...] = ()
    """The fleets the gateway serves (``fleets`` in its configuration); empty: any."""
    store_url: str | None = None
    """The PostgreSQL store (``store.url``), instead of the SQLite file at ``db_path``."""


def deployment(args: argparse.Namespace) -> Deployment:
    """Resolve ``--config`` / ``--workdir`` into paths."""
    from gateway.config import CONFIG_NAME, DEFAULT_WORKDIR, load_settings

    config: Path | None = args.config
    workdir: Path = args.workdir or DEFAULT_WORKDIR
    if config is None and (workdir / CONFIG_NAME).is_file():
        config = workdir / CONFIG_NAME
    if config is not None:
        settings = load_settings(config)
        return Deployment(
            db_path=settings.db_path,
            operator_key_file=settings.operator_key_file,
            configured=True,
            fleets=settings.fleets,
            store_url=None if settings.store.url is None else settings.store.url.get_secret_value(),
        )
    return Deployment(
        db_path=workdir / "gateway.db", operator_key_file=workdir / "keys" / "operator.key"
    )


def check_fleets(specs: list[DeviceSpec], fleets: tuple[str, ...]) -> None:
    """Refuse a device of a fleet the gateway does not serve (it would refuse its messages)."""
    from gateway.registry import RegistryError

    for spec in specs:
        if fleets and spec.fleet not in fleets:
            raise RegistryError(
                f"device {spec.device_id!r} is in fleet {spec.fleet!r}, which this gateway "
                f"does not serve (fleets = {list(fleets)} in its configuration)"
            )


def _run(args: argparse.Namespace, action: str) -> int:
    from gateway.config import ConfigError
    from gateway.registry import RegistryError
    from gateway.store import StoreError
    from ledger.keys import KeyFileError

    try:
        return asyncio.run(_act(args, action))
    except (ConfigError, KeyFileError) as exc:
        raise UsageError(exc) from exc
    except (RegistryError, StoreError) as exc:
        raise CommandFailedError(exc) from exc


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """A registry change, read and checked in full before any store is opened or created."""

    action: str
    operator: SigningKey
    specs: tuple[DeviceSpec, ...] = ()
    """``enroll``: the devices, each of a fleet the gateway serves."""
    old_seed: bytes = b""
    """``rotate``: the device's current key, which signs the rotation."""
    new_public_key: bytes = b""
    """``rotate``: the key the device signs with from ``--seq`` on."""


def prepare(args: argparse.Namespace, action: str, where: Deployment) -> Change:
    """Every input of ``action`` read and checked: the operator key, the devices, the keys.

    A mistyped key path or a bad device row fails here, before the store exists, so a
    command that fails leaves no empty store behind (which the next ``broker-credentials``
    would take for a deployment without devices).
    """
    from gateway.registry import decode_public_key
    from ledger.keys import load_key_file

    operator = load_key_file(where.operator_key_file)
    if action == "enroll":
        specs = _enrolment_specs(args)
        check_fleets(specs, where.fleets)
        return Change(action=action, operator=operator, specs=tuple(specs))
    if action == "rotate":
        return Change(
            action=action,
            operator=operator,
            old_seed=load_key_file(args.old_key).seed,
            new_public_key=decode_public_key(args.new_public_key, what="--new-public-key"),
        )
    return Change(action=action, operator=operator)


async def _act(args: argparse.Namespace, action: str) -> int:
    from gateway.registry import RegistryError
    from gateway.store import SqliteStore, open_reader

    where = deployment(args)
    if where.store_url is None and not where.configured and not where.db_path.parent.is_dir():
        raise RegistryError(
            f"no deployment at {where.db_path.parent} (give --config or a --workdir "
            "holding gateway.toml)"
        )
    change = None if action == "list" else prepare(args, action, where)
    if where.store_url is not None:
        from gateway.store.postgresql import PostgresStore

        async with await PostgresStore.open(where.store_url, pool_size=2) as shared:
            if change is None:
                return await _print_list(shared, as_json=args.json)
            return await _change(args, change, shared)
    if change is None:
        if not where.db_path.is_file():
            raise RegistryError(f"no gateway database at {where.db_path}")
        async with await open_reader(where.db_path) as reader:
            return await _print_list(reader, as_json=args.json)
    if action != "enroll" and not where.db_path.is_file():
        # Only an enrolment creates the store: a revocation of nothing would leave one behind.
        raise RegistryError(f"no gateway database at {where.db_path}: enrol the devices first")
    if action == "enroll" and where.configured:
        # Enrolment may come before the gateway's first start: the store is created here.
        try:
            where.db_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise RegistryError(f"cannot create {where.db_path.parent}: {exc.strerror}") from exc
    async with await SqliteStore.open(where.db_path) as store:
        return await _change(args, change, store)


async def _change(args: argparse.Namespace, change: Change, store: Store) -> int:
    """Apply the registry ``change`` to ``store``."""
    from gateway.registry import Registry

    registry = Registry(store=store, operator=change.operator)
    if change.action == "enroll":
        specs = list(change.specs)
        leaves = await registry.enroll(specs)
        for spec, leaf in zip(specs, leaves, strict=True):
            print(f"enrolled {spec.device_id} ({spec.kind}, fleet {spec.fleet}) at leaf {leaf}")
    elif change.action == "rotate":
        leaf = await registry.rotate(
            args.device_id,
            old_seed=change.old_seed,
            new_public_key=change.new_public_key,
            seq=args.seq,
        )
        print(f"rotated {args.device_id} from seq {args.seq} at leaf {leaf}")
    elif change.action == "replace":
        leaf = await registry.replace(args.old_id, new_device_id=args.new_id)
        print(f"replaced {args.old_id} by {args.new_id} at leaf {leaf}")
    else:
        leaf = await registry.revoke(args.device_id, reason=args.reason)
        print(f"revoked {args.device_id} at leaf {leaf}")
    return ExitCode.OK


def _enrolment_specs(args: argparse.Namespace) -> list[DeviceSpec]:
    """The devices to enrol: the rows of ``--file``, or the one given by ``--id`` and friends."""
    from gateway.registry import DeviceSpec, RegistryError, decode_public_key, load_device_specs

    if args.vin is not None:
        return [_terminal_spec(args)]
    if args.sm2_public_key is not None or args.chip_id is not None or args.edition is not None:
        raise UsageError("--sm2-public-key, --chip-id and --edition go with --vin")
    if args.file is not None:
        if args.birth is not None:
            raise UsageError("--birth goes with --id; a --file row carries 'birth'")
        return load_device_specs(args.file)
    missing = [n for n in ("device_id", "kind", "fleet", "public_key")
               if getattr(args, n) is None]  # fmt: skip
    if missing:
        raise RegistryError(f"give --file, or --id --kind --fleet --public-key "
                            f"(missing {', '.join(missing)})")  # fmt: skip
    return [DeviceSpec(device_id=args.device_id, kind=args.kind, fleet=args.fleet,
                       public_key=decode_public_key(args.public_key, what="--public-key"),
                       birth=_read_birth(args.birth))]  # fmt: skip


def _terminal_spec(args: argparse.Namespace) -> DeviceSpec:
    """A GB/T 32960 terminal: enrolled under its VIN, checked by its SM2 key."""
    from gateway.registry import DeviceSpec, RegistryError
    from ledger.gbt32960 import Terminal, TerminalEntryError, placeholder_key

    missing = [f"--{n.replace('_', '-')}" for n in ("sm2_public_key", "chip_id", "kind", "fleet")
               if getattr(args, n) is None]  # fmt: skip
    if missing:
        raise RegistryError(f"--vin needs {', '.join(missing)}")
    if args.kind != "bus":
        raise UsageError("a GB/T 32960 terminal is a vehicle: --kind bus")
    if args.device_id not in {None, args.vin} or args.public_key is not None:
        raise UsageError("a terminal is enrolled under its VIN with its SM2 key: no --id or "
                         "--public-key")  # fmt: skip
    try:
        sm2 = bytes.fromhex(args.sm2_public_key)
    except ValueError as exc:
        raise RegistryError(f"--sm2-public-key is not hex: {exc}") from exc
    try:
        terminal = Terminal(vin=args.vin, chip=args.chip_id, sm2=sm2, edition=args.edition)
    except TerminalEntryError as exc:
        raise RegistryError(str(exc)) from exc
    return DeviceSpec(device_id=args.vin, kind=args.kind, fleet=args.fleet,
                      public_key=placeholder_key(args.vin), birth=_read_birth(args.birth),
                      terminal=terminal)  # fmt: skip


async def _print_list(reader: StoreReader, *, as_json: bool) -> int:
    devices = await reader.list_devices()
    if as_json:
        print(json.dumps([
            {"id": d.device_id, "kind": d.kind, "fleet": d.fleet, "status": d.status.value,
             "public_key": base64.b64encode(d.public_key).decode("ascii")}
            for d in devices
        ], indent=2))  # fmt: skip
        return ExitCode.OK
    for d in devices:
        key = base64.b64encode(d.public_key).decode("ascii")
        print(f"{d.device_id}\t{d.kind}\t{d.fleet}\t{d.status.value}\t{key}")
    return ExitCode.OK


def _enroll(args: argparse.Namespace) -> int:
    return _run(args, "enroll")


def _rotate(args: argparse.Namespace) -> int:
    return _run(args, "rotate")


def _revoke(args: argparse.Namespace) -> int:
    return _run(args, "revoke")


def _replace(args: argparse.Namespace) -> int:
    return _run(args, "replace")


def _read_birth(path: Path | None) -> bytes | None:
    """The certificate file's bytes, checked to be a birth certificate (not its signature)."""
    if path is None:
        return None
    from gateway.registry import RegistryError
    from ledger.birth import BirthCertificateError, read_birth_certificate

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read --birth {path}: {exc.strerror}") from exc
    try:
        read_birth_certificate(data, where=f"--birth {path}")
    except BirthCertificateError as exc:
        raise RegistryError(str(exc)) from exc
    return data


def _list(args: argparse.Namespace) -> int:
    return _run(args, "list")
