"""``voltproof keys new|show``: Ed25519 device and gateway key files."""

from __future__ import annotations

import argparse
from pathlib import Path

from .exits import CommandFailedError, ExitCode
from .options import command


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the core's subcommands to the ``voltproof`` parser."""
    keys = subparsers.add_parser(
        "keys",
        help="create and inspect Ed25519 device and gateway keys",
        description="Create and inspect Ed25519 device and gateway keys.",
    )
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    new = keys_sub.add_parser(
        "new",
        help="write a new private key file (mode 0600) and print its verifier key",
        description=(
            "Generate a new Ed25519 key, write its 32-byte seed to OUT with permissions 0600 "
            "(never overwriting an existing file; missing folders are created with 0700) "
            "and print the C2SP verifier key, which 'devices enroll --public-key' accepts."
        ),
    )
    new.add_argument("out", type=Path, metavar="OUT", help="path of the new private key file")
    new.add_argument(
        "--name",
        required=True,
        help="key name (the device id, or the gateway's checkpoint origin)",
    )
    command(new, _keys_new)
    show = keys_sub.add_parser(
        "show",
        help="print the verifier key of a private key file",
        description="Load a private key file (refusing one readable by group or others) "
        "and print its C2SP verifier key.",
    )
    show.add_argument("key_file", type=Path, metavar="KEY", help="path of the private key file")
    command(show, _keys_show)


def _keys_new(args: argparse.Namespace) -> int:
    from ledger import keys

    try:
        args.out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise CommandFailedError(f"cannot create {args.out.parent}: {exc.strerror}") from exc
    try:
        key = keys.create_key_file(args.out, name=args.name)
    except keys.KeyFileError as exc:
        raise CommandFailedError(exc) from exc
    print(key.verifier_key)
    return ExitCode.OK


def _keys_show(args: argparse.Namespace) -> int:
    from ledger import keys

    try:
        key = keys.load_key_file(args.key_file)
    except keys.KeyFileError as exc:
        raise CommandFailedError(exc) from exc
    print(key.verifier_key)
    return ExitCode.OK
