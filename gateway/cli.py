"""``voltproof gateway``: run the gateway from a configuration file or a deployment dir."""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from pathlib import Path


def add_deployment_options(parser: argparse.ArgumentParser, *, default: object = None) -> None:
    """``--config FILE`` or ``--workdir DIR`` (a deployment directory with gateway.toml)."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--config", type=Path, metavar="FILE", default=default, help="gateway configuration (TOML)"
    )
    where.add_argument(
        "--workdir",
        type=Path,
        metavar="DIR",
        default=default,
        help="deployment directory holding gateway.toml (default: ./voltproof-demo)",
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``gateway`` to the ``voltproof`` parser."""
    parser = subparsers.add_parser(
        "gateway",
        help="run the gateway: MQTT intake, verification, log, checkpoints, anchors",
        description=(
            "Receive signed telemetry over MQTT, verify it, store it, append it to the "
            "Merkle log, sign checkpoints and anchor them. SIGTERM or Ctrl-C drains the "
            "pipeline, signs a final checkpoint and exits. See configs/gateway.example.toml."
        ),
    )
    add_deployment_options(parser)
    parser.set_defaults(handler=_run)
    actions = parser.add_subparsers(dest="gateway_action", metavar="ACTION")
    check = actions.add_parser(
        "check",
        help="recompute the store's hashes, chains, samples, checkpoints and anchors",
        description=(
            "Check a gateway store against itself: every leaf and Merkle node recomputed "
            "from the stored messages, every checkpoint's signature, root and consistency, "
            "every device chain and signature, the decoded samples and the local anchor "
            "table. Read-only; safe next to a running gateway. Exit 0 when clean, 1 with "
            "each problem named."
        ),
    )
    # SUPPRESS: an option given before ``check`` is not reset by the subcommand's default.
    add_deployment_options(check, default=argparse.SUPPRESS)
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(handler=_check)


GC_YOUNG_THRESHOLD = 50_000
"""Allocations between two young collections of the gateway process (CPython's default: 700)."""


def tune_collector() -> None:
    """Fit CPython's cyclic garbage collector to the gateway's allocation pattern.

    The pipeline holds two batches of up to 500 messages, a few hundred small containers
    each, for a few milliseconds. With the default young threshold those survive the young
    collections, reach the oldest generation, and set off full collections that walk every
    live object: about 9 % of the gateway's CPU in a profile under load. A larger young
    generation lets them die by reference counting first (the profile: under 1 %). What the
    process built before the pipeline starts (modules, classes, settings) is frozen out of
    the collector's passes altogether (``gc.freeze``); reference counting still frees it.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def _run(args: argparse.Namespace) -> int:
    from ledger.jsonlog import configure_logging

    from .app import Gateway
    from .config import ConfigError, load_settings
    from .intake import IntakeError

    try:
        settings = load_settings(args.config, workdir=args.workdir)
    except ConfigError as exc:
        print(f"voltproof gateway: error: {exc}", file=sys.stderr)
        return 1
    configure_logging(settings.log_level)
    tune_collector()
    try:
        asyncio.run(Gateway(settings).run())
    except IntakeError as exc:
        print(f"voltproof gateway: error: {exc}", file=sys.stderr)
        return 1
    except FileNotFoundError as exc:
        print(f"voltproof gateway: error: {exc}", file=sys.stderr)
        return 1
    return 0


def _check(args: argparse.Namespace) -> int:
    import json

    from ledger.keys import KeyFileError, load_key_file

    from .audit import SelfCheckError, check_store, report_lines
    from .config import AnchorBackendName, ConfigError, load_settings

    try:
        settings = load_settings(args.config, workdir=args.workdir)
        key = load_key_file(settings.key_file)
        anchors = settings.data_dir / "anchors.db"
        use_anchors = settings.anchors.backend is AnchorBackendName.LOCAL and anchors.is_file()
        report = check_store(
            settings.db_path,
            origin=settings.origin,
            key_name=key.name,
            public_key=key.public_key,
            anchors_path=anchors if use_anchors else None,
        )
    except (ConfigError, KeyFileError, SelfCheckError) as exc:
        print(f"voltproof gateway check: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.as_dict(), indent=1))
    else:
        print("\n".join(report_lines(report)))
    return 0 if report.ok else 1
