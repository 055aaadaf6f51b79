"""``voltproof broker-credentials``: mosquitto's password file and ACL from the registry.

One MQTT account per enrolled, unrevoked device (username = device id) and one for the
gateway. The password file holds only PBKDF2-SHA512 hashes (mosquitto 2.x's ``$7$``
format, :func:`voltproof.broker.password_line`); a new account's password is drawn here
and appended once to a mode-0600 file for the operator to hand to its device, then delete.
Accounts already in the password file keep their hash (their password is not shown again);
a revoked or unknown device loses its account and its ACL entry. The ACL lets a device
publish only its own telemetry and status topics, in its own fleet; the gateway reads all.
Run it again after every enrolment or revocation, then reload mosquitto (SIGHUP).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .exits import CommandFailedError, ExitCode, UsageError
from .options import add_deployment_options, command

if TYPE_CHECKING:
    from gateway.store import DeviceRecord

GATEWAY_USER = "voltproof-gateway"
PASSWORD_FILE = "passwd"  # noqa: S105 - a file name, not a password
ACL_FILE = "acl"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``broker-credentials`` to the ``voltproof`` parser."""
    parser = subparsers.add_parser(
        "broker-credentials",
        help="write mosquitto's password file and ACL for the enrolled devices",
        description=(
            "Write OUT_DIR/passwd (hashed passwords, mode 0600) and OUT_DIR/acl for every "
            "enrolled, unrevoked device and the gateway account. New accounts get a random "
            "password, appended once to --passwords (mode 0600); existing accounts keep theirs; "
            "revoked devices lose theirs. Reload mosquitto (SIGHUP) afterwards."
        ),
    )
    add_deployment_options(parser, workdir_help="deployment directory holding gateway.toml")
    parser.add_argument(
        "--out-dir", type=Path, required=True, metavar="DIR", help="where passwd and acl go"
    )
    parser.add_argument(
        "--passwords",
        type=Path,
        required=True,
        metavar="FILE",
        help="file (mode 0600) the new accounts' 'user:password' lines are appended to",
    )
    parser.add_argument(
        "--gateway-user",
        default=GATEWAY_USER,
        metavar="NAME",
        help=f"the gateway's MQTT username (default {GATEWAY_USER})",
    )
    command(parser, _run)


@dataclass(frozen=True, slots=True, kw_only=True)
class Accounts:
    """What one run wrote: every account, the new ones with their passwords, the removed."""

    users: tuple[str, ...]
    new: dict[str, str]
    removed: tuple[str, ...]


def acl_text(devices: list[DeviceRecord], *, gateway_user: str) -> str:
    """The mosquitto ACL: the gateway reads every device topic and writes the receipts; a
    device writes its own telemetry and status and reads only its own receipts."""
    from ledger.protocol import (
        RECEIPT_FILTER,
        STATUS_FILTER,
        TELEMETRY_FILTER,
        receipt_topic,
        status_topic,
        telemetry_topic,
    )

    lines = [
        "# Written by 'voltproof broker-credentials' from the device registry: do not edit,",
        "# run the command again after an enrolment or a revocation.",
        "",
        f"user {gateway_user}",
        f"topic read {TELEMETRY_FILTER}",
        f"topic read {STATUS_FILTER}",
        f"topic write {RECEIPT_FILTER}",
    ]
    for device in devices:
        lines += [
            "",
            f"user {device.device_id}",
            f"topic write {telemetry_topic(device.fleet, device.device_id)}",
            f"topic readwrite {status_topic(device.fleet, device.device_id)}",
            f"topic read {receipt_topic(device.fleet, device.device_id)}",
        ]
    return "\n".join(lines) + "\n"


def read_password_file(path: Path) -> dict[str, str]:
    """``{username: hash line}`` of an existing mosquitto password file (empty if none)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the password file {path}: {exc}") from exc
    lines: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        user, sep, _ = line.partition(":")
        if not sep or not user:
            raise UsageError(f"{path}:{number}: not a mosquitto password line (user:hash)")
        lines[user] = line
    return lines


def write_private(path: Path, text: str, *, append: bool = False) -> None:
    """Write (or append) ``text`` to ``path`` with mode 0600, replacing atomically."""
    if append:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as out:
            out.write(text)
        return
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    tmp.replace(path)


def write_accounts(
    devices: list[DeviceRecord], *, out_dir: Path, passwords: Path, gateway_user: str
) -> Accounts:
    """Write ``out_dir/passwd`` and ``out_dir/acl``; append new passwords to ``passwords``."""
    from gateway.store import DeviceStatus
    from voltproof.broker import password_line

    active = [d for d in devices if d.status is DeviceStatus.ACTIVE]
    if gateway_user in {d.device_id for d in active}:
        raise UsageError(f"the gateway user {gateway_user!r} is also a device id")
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    known = read_password_file(out_dir / PASSWORD_FILE)
    users = [gateway_user, *(d.device_id for d in active)]
    new = {user: secrets.token_urlsafe(24) for user in users if user not in known}
    lines = {user: known.get(user) or password_line(user, new[user]) for user in users}
    if new:
        write_private(passwords, "".join(f"{user}:{pw}\n" for user, pw in new.items()), append=True)
    write_private(out_dir / PASSWORD_FILE, "".join(f"{lines[u]}\n" for u in sorted(lines)))
    (out_dir / ACL_FILE).write_text(acl_text(active, gateway_user=gateway_user), "utf-8")
    removed = tuple(sorted(set(known) - set(users)))
    return Accounts(users=tuple(users), new=new, removed=removed)


def _run(args: argparse.Namespace) -> int:
    from gateway.config import ConfigError
    from gateway.store import StoreError, open_reader

    from .devices import deployment

    try:
        where = deployment(args)
    except ConfigError as exc:
        raise UsageError(exc) from exc
    if not where.db_path.is_file():
        raise CommandFailedError(f"no gateway database at {where.db_path}: enrol the devices first")

    async def devices() -> list[DeviceRecord]:
        async with await open_reader(where.db_path) as reader:
            return await reader.list_devices()

    try:
        listed = asyncio.run(devices())
        accounts = write_accounts(
            listed, out_dir=args.out_dir, passwords=args.passwords, gateway_user=args.gateway_user
        )
    except StoreError as exc:
        raise CommandFailedError(exc) from exc
    except OSError as exc:
        raise CommandFailedError(f"cannot write the broker files: {exc}") from exc
    count = len(accounts.users) - 1
    print(
        f"{len(accounts.users)} broker accounts ({count} device{'' if count == 1 else 's'} "
        f"and {args.gateway_user}) in {args.out_dir / PASSWORD_FILE} and "
        f"{args.out_dir / ACL_FILE}"
    )
    if accounts.new:
        print(
            f"new: {', '.join(accounts.new)}; their passwords were appended to "
            f"{args.passwords} (mode 0600): hand each its line, then delete the file"
        )
    if accounts.removed:
        print(f"removed (revoked or no longer enrolled): {', '.join(accounts.removed)}")
    return ExitCode.OK
