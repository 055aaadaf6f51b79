"""The `voltproof` console script.

Each package owns its subcommands in its own ``cli`` module, which exposes
``register(subparsers)``; handlers import their heavy dependencies lazily so that
``voltproof --help`` stays fast. Exit codes (contract 5): 0 success or valid,
1 invalid or failed, 2 usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from api import cli as api_cli
from firmware_sim import cli as firmware_sim_cli
from gateway import bundle_cli as gateway_bundle_cli
from gateway import cli as gateway_cli
from gateway import devices_cli
from ledger import bundle_cli
from ledger import cli as ledger_cli
from ledger.anchors import cli as anchors_cli

from . import __version__, demo

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

REGISTRARS: tuple[Registrar, ...] = (
    ledger_cli.register,
    anchors_cli.register,
    bundle_cli.register,
    firmware_sim_cli.register,
    api_cli.register,
    gateway_bundle_cli.register,
    devices_cli.register,
    gateway_cli.register,
    demo.register,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="voltproof",
        description=(
            "Device-signed battery and e-bus telemetry, an append-only Merkle log, "
            "signed checkpoints, ledger anchors and offline-verifiable evidence."
        ),
    )
    parser.add_argument("--version", action="version", version=f"voltproof {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in REGISTRARS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand; return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        print(f"voltproof {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``voltproof report B | head``): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
