"""``voltproof api``: serve the dashboard API, and manage its keys, leases and transfers.

- ``voltproof api [--workdir DIR | --config FILE] [--host H] [--port P]`` serves;
- ``voltproof api keys create --role operator|lessor|auditor --name NAME [--fleet F]``
  prints a new key once;
- ``voltproof api keys list`` (names, roles, fleets, created, revoked: never a secret) and
  ``keys revoke --name NAME``;
- ``voltproof api leases add --asset ID --lessor NAME --from T --to T`` / ``leases list`` /
  ``leases end --id N`` (the lessor reads nothing after now);
- ``voltproof api transfer --pack ID --to OWNER`` gives a lessor key a pack's whole history
  and ends the previous owner's access now; ``api transfers list`` shows who did what when.

Exit codes (:mod:`voltproof.cli.exits`): 0 success, 1 failed, 2 usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from .exits import CommandFailedError, ExitCode, UsageError
from .options import add_deployment_options, command, parse_time, port

if TYPE_CHECKING:
    from api.accessdb import AccessDb
    from api.settings import Deployment


def _deployment_options(parser: argparse.ArgumentParser) -> None:
    add_deployment_options(parser, config_help="API configuration (api.toml)")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``api`` and its subcommands to the ``voltproof`` parser."""
    parser = subparsers.add_parser(
        "api",
        help="serve the dashboard API and web page; manage API keys, leases, transfers",
        description="Serve the dashboard API (OpenAPI at /docs) and the web dashboard at /.",
    )
    _deployment_options(parser)
    parser.add_argument("--host", help="listen address (default from the configuration)")
    parser.add_argument("--port", type=port, help="listen port (default from the configuration)")
    command(parser, _serve)
    commands = parser.add_subparsers(dest="api_command", metavar="SUBCOMMAND")

    keys = commands.add_parser("keys", help="API keys").add_subparsers(
        dest="keys_command", metavar="ACTION", required=True
    )
    create = keys.add_parser("create", help="create an API key (printed once)")
    create.add_argument("--role", required=True, choices=("operator", "lessor", "auditor"))
    create.add_argument("--name", required=True, help="unique key name (a lessor's name)")
    create.add_argument("--fleet", help="restrict an operator key to one fleet")
    create.add_argument("--json", action="store_true", help="print JSON")
    _deployment_options(create)
    command(create, _keys_create)
    key_list = keys.add_parser("list", help="list API keys (never their secrets)")
    key_list.add_argument("--json", action="store_true", help="print JSON")
    _deployment_options(key_list)
    command(key_list, _keys_list)
    revoke = keys.add_parser("revoke", help="revoke an API key at once")
    revoke.add_argument("--name", required=True, help="the key's name")
    _deployment_options(revoke)
    command(revoke, _keys_revoke)

    leases = commands.add_parser("leases", help="leases").add_subparsers(
        dest="leases_command", metavar="ACTION", required=True
    )
    add = leases.add_parser("add", help="lease an asset to a lessor for a period")
    add.add_argument("--asset", required=True, metavar="ID")
    add.add_argument("--lessor", required=True, metavar="NAME", help="a lessor key's name")
    add.add_argument("--from", dest="from_ms", required=True, type=parse_time, metavar="T")
    add.add_argument("--to", dest="to_ms", required=True, type=parse_time, metavar="T")
    _deployment_options(add)
    command(add, _leases_add)
    listing = leases.add_parser("list", help="list leases")
    listing.add_argument("--json", action="store_true", help="print JSON")
    _deployment_options(listing)
    command(listing, _leases_list)
    end = leases.add_parser("end", help="end a lease now")
    end.add_argument("--id", dest="lease_id", required=True, type=int, metavar="N")
    _deployment_options(end)
    command(end, _leases_end)

    transfer = commands.add_parser("transfer", help="sell a pack: the buyer sees its history")
    transfer.add_argument("--pack", required=True, metavar="ID")
    transfer.add_argument("--to", required=True, metavar="OWNER", help="the buyer's lessor key")
    _deployment_options(transfer)
    command(transfer, _transfer)
    transfers = commands.add_parser("transfers", help="recorded transfers").add_subparsers(
        dest="transfers_command", metavar="ACTION", required=True
    )
    transfer_list = transfers.add_parser("list", help="list transfers: pack, to, by, when")
    transfer_list.add_argument("--pack", metavar="ID", help="one pack only")
    transfer_list.add_argument("--json", action="store_true", help="print JSON")
    _deployment_options(transfer_list)
    command(transfer_list, _transfers_list)


def _load(args: argparse.Namespace) -> Deployment:
    from api.settings import load_deployment
    from gateway.config import ConfigError

    try:
        return load_deployment(args.config, workdir=args.workdir)
    except ConfigError as exc:
        raise UsageError(exc) from exc


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app

    deployment = _load(args)
    if deployment.gateway.store.url is None and not deployment.gateway_db.is_file():
        raise CommandFailedError(
            f"no gateway database at {deployment.gateway_db}; start the gateway first"
        )
    host = args.host or deployment.api.host
    port = deployment.api.port if args.port is None else args.port
    print(f"voltproof api: dashboard http://{host}:{port}/  API docs http://{host}:{port}/docs",
          flush=True)  # fmt: skip
    uvicorn.run(create_app(deployment), host=host, port=port,
                log_level=deployment.api.log_level.lower())  # fmt: skip
    return ExitCode.OK


async def _with_access(args: argparse.Namespace, action: str) -> int:
    from api.accessdb import AccessDb, AccessError

    deployment = _load(args)
    if action == "lease":
        await _require_device(deployment, args.asset, kind=None)
    elif action == "transfer":
        await _require_device(deployment, args.pack, kind="pack")
    try:
        access = await AccessDb.open(deployment.access_db)
    except AccessError as exc:
        raise CommandFailedError(exc) from exc
    try:
        return await _ACTIONS[action](access, args)
    except AccessError as exc:
        raise CommandFailedError(exc) from exc
    finally:
        await access.close()


async def _require_device(deployment: Deployment, device_id: str, *, kind: str | None) -> None:
    """Refuse an id the registry does not hold (or of the wrong kind): no lease of a typo."""
    from gateway.store import StoreError, open_reader

    if not deployment.gateway_db.is_file():
        raise CommandFailedError(
            f"no gateway database at {deployment.gateway_db}; enrol the devices first"
        )
    try:
        async with await open_reader(deployment.gateway_db) as reader:
            found = await reader.devices([device_id])
    except StoreError as exc:
        raise CommandFailedError(exc) from exc
    record = found.get(device_id)
    if record is None:
        raise CommandFailedError(f"no device {device_id!r} is registered")
    if kind is not None and record.kind != kind:
        raise CommandFailedError(f"{device_id} is a {record.kind}, not a {kind}")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def _create(access: AccessDb, args: argparse.Namespace) -> int:
    from api.access import Role

    key = await access.create_key(
        name=args.name, role=Role(args.role), fleet=args.fleet, now_ms=_now_ms()
    )
    if args.json:
        document = {"name": key.name, "role": key.role.value, "fleet": key.fleet}
        print(json.dumps({**document, "key": key.secret}))
    else:
        print(f"{key.role.value} key {key.name!r}: {key.secret}")
        print("keep it now: only its hash is stored")
    return ExitCode.OK


async def _lease(access: AccessDb, args: argparse.Namespace) -> int:
    from api.access import Window

    lease = await access.add_lease(
        asset=args.asset, lessor=args.lessor, window=Window(from_ms=args.from_ms, to_ms=args.to_ms)
    )
    print(
        f"lease {lease.lease_id}: {lease.asset} to {lease.lessor} "
        f"[{lease.window.from_ms}, {lease.window.to_ms})"
    )
    return ExitCode.OK


async def _list(access: AccessDb, args: argparse.Namespace) -> int:
    leases = await access.leases()
    if args.json:
        print(json.dumps([
            {"id": x.lease_id, "asset": x.asset, "lessor": x.lessor,
             "from_ms": x.window.from_ms, "to_ms": x.window.to_ms, "ended_at_ms": x.ended_at_ms}
            for x in leases
        ]))  # fmt: skip
        return ExitCode.OK
    for x in leases:
        ended = "" if x.ended_at_ms is None else f"\tended {x.ended_at_ms}"
        print(f"{x.lease_id}\t{x.asset}\t{x.lessor}\t{x.window.from_ms}\t{x.window.to_ms}{ended}")
    return ExitCode.OK


async def _end(access: AccessDb, args: argparse.Namespace) -> int:
    lease = await access.end_lease(args.lease_id, now_ms=_now_ms())
    print(f"lease {lease.lease_id} ({lease.asset} to {lease.lessor}) ended at {lease.ended_at_ms}")
    return ExitCode.OK


async def _key_list(access: AccessDb, args: argparse.Namespace) -> int:
    keys = await access.keys()
    if args.json:
        print(json.dumps([
            {"name": k.name, "role": k.role, "fleet": k.fleet, "created_at_ms": k.created_at_ms,
             "revoked_at_ms": k.revoked_at_ms}
            for k in keys
        ]))  # fmt: skip
        return ExitCode.OK
    for k in keys:
        state = "live" if k.revoked_at_ms is None else f"revoked {k.revoked_at_ms}"
        print(f"{k.name}\t{k.role}\t{k.fleet or '-'}\tcreated {k.created_at_ms}\t{state}")
    return ExitCode.OK


async def _revoke(access: AccessDb, args: argparse.Namespace) -> int:
    await access.revoke_key(args.name, now_ms=_now_ms())
    print(f"key {args.name!r} revoked: it is refused from now on")
    return ExitCode.OK


CLI_ACTOR = "operator (cli)"
"""Who a transfer made with ``voltproof api transfer`` is recorded as: whoever can run the
CLI on the API's host holds the access database, i.e. the operator."""


async def _transfer_pack(access: AccessDb, args: argparse.Namespace) -> int:
    await access.transfer(
        pack=args.pack, owner=args.to, by=CLI_ACTOR, by_operator=True, now_ms=_now_ms()
    )
    print(f"pack {args.pack} transferred to {args.to}: its whole history is theirs; "
          "the previous owner's access ends now")  # fmt: skip
    return ExitCode.OK


async def _transfer_list(access: AccessDb, args: argparse.Namespace) -> int:
    rows = await access.transfers(args.pack)
    if args.json:
        print(json.dumps([
            {"id": r.transfer_id, "pack": r.pack, "to": r.owner, "by": r.by, "at_ms": r.at_ms}
            for r in rows
        ]))  # fmt: skip
        return ExitCode.OK
    for r in rows:
        print(f"{r.transfer_id}\t{r.pack}\tto {r.owner}\tby {r.by or '?'}\tat {r.at_ms}")
    return ExitCode.OK


_ACTIONS: dict[str, Callable[[AccessDb, argparse.Namespace], Awaitable[int]]] = {
    "create": _create,
    "lease": _lease,
    "list": _list,
    "end": _end,
    "keys": _key_list,
    "revoke": _revoke,
    "transfer": _transfer_pack,
    "transfers": _transfer_list,
}


def _keys_create(args: argparse.Namespace) -> int:
    return asyncio.run(_with_access(args, "create"))


def _leases_add(args: argparse.Namespace) -> int:
    if not args.from_ms < args.to_ms:
        raise UsageError(f"--from ({args.from_ms}) must be before --to ({args.to_ms})")
    return asyncio.run(_with_access(args, "lease"))


def _leases_list(args: argparse.Namespace) -> int:
    return asyncio.run(_with_access(args, "list"))


def _transfer(args: argparse.Namespace) -> int:
    return asyncio.run(_with_access(args, "transfer"))


def _leases_end(args: argparse.Namespace) -> int:
    return asyncio.run(_with_access(args, "end"))


def _keys_list(args: argparse.Namespace) -> int:
    return asyncio.run(_with_access(args, "keys"))


def _keys_revoke(args: argparse.Namespace) -> int:
    return asyncio.run(_with_access(args, "revoke"))


def _transfers_list(args: argparse.Namespace) -> int:
    return asyncio.run(_with_access(args, "transfers"))
