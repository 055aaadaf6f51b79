"""``voltproof witness``: run a witness, or make its key.

    voltproof witness --config witness.toml          serve add-checkpoint until SIGTERM
    voltproof witness keys new --name NAME --out F   new seed file (0600); prints the vkey
    voltproof witness keys show F                    print the vkey (type 0x04) of a key file

The service itself is :mod:`voltproof.witness` (``run(settings)``); this module only parses
arguments and maps failures to exit codes (:mod:`voltproof.cli.exits`).
"""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from types import FrameType

from .exits import CommandFailedError, ExitCode, UsageError
from .options import command


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``witness`` to the ``voltproof`` parser."""
    parser = subparsers.add_parser(
        "witness",
        help="run a C2SP tlog-witness (for lessors and auditors), or make its key",
        description=(
            "A C2SP tlog-witness: cosigns (cosignature/v1) checkpoints of the configured logs "
            "after checking their signature and a consistency proof. See docs/witness.md."
        ),
    )
    parser.add_argument("--config", type=Path, metavar="FILE", help="witness.toml")
    command(parser, _serve)
    sub = parser.add_subparsers(dest="witness_action", metavar="ACTION")
    keys = sub.add_parser("keys", help="witness key files")
    keys_sub = keys.add_subparsers(dest="keys_action", required=True, metavar="KEYS_ACTION")
    new = keys_sub.add_parser("new", help="write a new witness key file and print its vkey")
    new.add_argument("--name", required=True, help="key name, e.g. lessor.example/witness-1")
    new.add_argument("--out", type=Path, required=True, metavar="FILE")
    command(new, _keys)
    show = keys_sub.add_parser("show", help="print the vkey of a witness key file")
    show.add_argument("key_file", type=Path, metavar="FILE")
    command(show, _keys)


def _keys(args: argparse.Namespace) -> int:
    from ledger.cosignature import witness_verifier_key
    from ledger.keys import KeyFileError, create_key_file, load_key_file

    try:
        if args.keys_action == "new":
            info = create_key_file(args.out, name=args.name)
            print(witness_verifier_key(info.name, info.public_key))
        else:
            key = load_key_file(args.key_file)
            print(witness_verifier_key(key.name, key.public_key))
    except KeyFileError as exc:
        raise CommandFailedError(exc) from exc
    return ExitCode.OK


def _ignore(number: int, frame: FrameType | None) -> None:
    """A signal already handled by uvicorn's graceful shutdown."""


def _serve(args: argparse.Namespace) -> int:
    if args.config is None:
        raise UsageError("--config FILE is required to run a witness")
    from ledger.keys import KeyFileError
    from voltproof.logs import configure_logging
    from voltproof.witness.service import serve
    from voltproof.witness.settings import WitnessConfigError, load_settings
    from voltproof.witness.state import WitnessStateError

    try:
        settings = load_settings(args.config)
    except WitnessConfigError as exc:
        raise UsageError(exc) from exc
    configure_logging()
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal to the
    # handler it found: make that one a no-op so the state is closed and the exit code is 0.
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, _ignore)
    try:
        serve(settings)
    except (KeyFileError, WitnessStateError) as exc:
        raise CommandFailedError(exc) from exc
    return ExitCode.OK
