"""The ``voltproof`` console script: every command group's parser and handler live here.

One module per command group (``keys``, ``anchors``, ``verify``, ``report``, ``agent``,
``sim``, ``api``, ``bundle``, ``devices``, ``manufacturer``, ``gateway``, ``audit``, ``log``,
``broker-credentials``, ``witness``, ``demo``), each exposing
``register(subparsers)``. The handlers build settings and call the ``run``-style entry points
of ``ledger``, ``gateway``, ``api`` and ``firmware_sim`` (none of which parses arguments);
they import their heavy dependencies lazily so that ``voltproof --help`` stays fast. Exit
codes and error lines are decided in :mod:`voltproof.cli.exits`; :func:`main` is the one
place where an exception becomes a message and a code.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence

from voltproof import __version__

from . import (
    agent,
    anchors,
    api,
    audit,
    broker_credentials,
    bundle,
    demo,
    devices,
    gateway,
    keys,
    log,
    manufacturer,
    migrate,
    report,
    sim,
    verify,
    witness,
)
from .exits import ExitCode, debug_requested, error_line, exit_code

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

REGISTRARS: tuple[Registrar, ...] = (
    keys.register,
    anchors.register,
    verify.register,
    report.register,
    agent.register,
    sim.register,
    api.register,
    bundle.register,
    devices.register,
    manufacturer.register,
    broker_credentials.register,
    gateway.register,
    migrate.register,
    audit.register,
    log.register,
    witness.register,
    demo.register,
)

EXIT_OK = ExitCode.OK
EXIT_FAILED = ExitCode.FAILED
EXIT_USAGE = ExitCode.USAGE
EXIT_INCOMPLETE = ExitCode.INCOMPLETE

__all__ = ["EXIT_FAILED", "EXIT_INCOMPLETE", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="voltproof",
        description=(
            "Device-signed battery and e-bus telemetry, an append-only Merkle log, "
            "signed checkpoints, ledger anchors and offline-verifiable evidence. "
            "Exit codes: 0 success or valid, 1 invalid or failed, 2 usage error, "
            "3 reserved for verify (valid but incomplete)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"voltproof {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="print the traceback of an unexpected error (also: VOLTPROOF_DEBUG=1)",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in REGISTRARS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand; return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int | None] = args.handler
    prog: str = getattr(args, "prog", f"voltproof {args.command}")
    try:
        return int(exit_code(handler(args)))
    except BrokenPipeError as exc:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return int(exit_code(exc))
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - no traceback reaches a user
        if debug_requested(args.debug) and not isinstance(exc, KeyboardInterrupt):
            traceback.print_exc()
        print(error_line(prog, exc), file=sys.stderr)
        return int(exit_code(exc))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
