"""``voltproof witness``: run a witness, or make its key.

    voltproof witness --config witness.toml          serve add-checkpoint until SIGTERM
    voltproof witness keys new --name NAME --out F   new seed file (0600); prints the vkey
    voltproof witness keys show F                    print the vkey (type 0x04) of a key file

Exit codes: 0 success, 1 failure, 2 usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from ledger.cosignature import witness_verifier_key
from ledger.keys import KeyFileError, create_key_file, load_key_file

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``voltproof witness``."""
    parser = argparse.ArgumentParser(
        prog="voltproof witness",
        description=(
            "A C2SP tlog-witness: cosigns (cosignature/v1) checkpoints of the configured logs "
            "after checking their signature and a consistency proof. See docs/witness.md."
        ),
    )
    parser.add_argument("--config", type=Path, metavar="FILE", help="witness.toml")
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    keys = sub.add_parser("keys", help="witness key files")
    keys_sub = keys.add_subparsers(dest="keys_action", required=True, metavar="KEYS_ACTION")
    new = keys_sub.add_parser("new", help="write a new witness key file and print its vkey")
    new.add_argument("--name", required=True, help="key name, e.g. lessor.example/witness-1")
    new.add_argument("--out", type=Path, required=True, metavar="FILE")
    show = keys_sub.add_parser("show", help="print the vkey of a witness key file")
    show.add_argument("key_file", type=Path, metavar="FILE")
    return parser


def _keys(args: argparse.Namespace) -> int:
    try:
        if args.keys_action == "new":
            info = create_key_file(args.out, name=args.name)
            print(witness_verifier_key(info.name, info.public_key))
        else:
            key = load_key_file(args.key_file)
            print(witness_verifier_key(key.name, key.public_key))
    except KeyFileError as exc:
        print(f"voltproof witness keys: {exc}", file=sys.stderr)
        return 1
    return 0


def _ignore(number: int, frame: FrameType | None) -> None:
    """A signal already handled by uvicorn's graceful shutdown."""


def _serve(config: Path) -> int:
    from voltproof.logs import configure_logging

    from .service import run
    from .settings import WitnessConfigError, load_settings
    from .state import WitnessStateError

    try:
        settings = load_settings(config)
    except WitnessConfigError as exc:
        print(f"voltproof witness: {exc}", file=sys.stderr)
        return 2
    configure_logging()
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal to the
    # handler it found: make that one a no-op so the state is closed and the exit code is 0.
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, _ignore)
    try:
        asyncio.run(run(settings))
    except (KeyFileError, WitnessStateError) as exc:
        print(f"voltproof witness: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (without the leading ``witness``) and run it; return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code == 0 else 2
    if args.action == "keys":
        return _keys(args)
    if args.config is None:
        parser.print_usage(sys.stderr)
        print("voltproof witness: --config FILE is required to run a witness", file=sys.stderr)
        return 2
    return _serve(args.config)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
