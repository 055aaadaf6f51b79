"""Subcommands of the edge: ``agent`` (one device) and ``sim`` (a simulated fleet)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``agent`` and ``sim`` to the ``voltproof`` parser."""
    agent = subparsers.add_parser(
        "agent",
        help="run one edge agent (one device): sample, sign, buffer, publish",
        description="Run one edge agent as on a device: 1 Hz samples, a signed message every "
        "period, a durable outbox, MQTT v5 QoS 1 publishing. SIGTERM stops it cleanly.",
    )
    agent.add_argument(
        "--config",
        type=Path,
        required=True,
        metavar="FILE",
        help="agent settings (TOML), see configs/agent.example.toml",
    )
    agent.set_defaults(handler=_agent)
    sim = subparsers.add_parser(
        "sim",
        help="simulate a fleet of buses and packs, each an agent publishing to a broker",
        description="Drive a simulated fleet (one agent per bus and per pack) in real time "
        "against a broker, with the faults and attacks the fleet file switches on.",
    )
    sim.add_argument(
        "--fleet",
        type=Path,
        required=True,
        metavar="FILE",
        help="fleet description (TOML), see configs/fleet.example.toml",
    )
    sim.add_argument("--broker", required=True, metavar="URL", help="mqtt://host:port")
    sim.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="S",
        help="stop after S seconds (default: until Ctrl-C)",
    )
    sim.add_argument(
        "--export-keys",
        type=Path,
        default=None,
        metavar="FILE",
        help="write {device id: base64 public key} as JSON (and FILE.enroll.json)",
    )
    sim.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep keys, chains and outboxes in DIR (default: the fleet file's)",
    )
    sim.add_argument(
        "--summary-json",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the final summary as JSON",
    )
    sim.set_defaults(handler=_sim)


def _agent(args: argparse.Namespace) -> int:
    from ledger.jsonlog import configure_logging

    from .agent import app
    from .agent.config import AgentConfigError, load_settings
    from .agent.identity import IdentityError
    from .agent.source import SourceError
    from .agent.store import ChainStoreError

    try:
        settings = load_settings(args.config)
    except AgentConfigError as exc:
        print(f"voltproof agent: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    configure_logging(settings.log_level)
    try:
        asyncio.run(app.run(settings))
    except (IdentityError, ChainStoreError, SourceError) as exc:
        print(f"voltproof agent: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _sim(args: argparse.Namespace) -> int:
    from ledger.jsonlog import configure_logging

    from .sim.fleet import FleetError, load_fleet
    from .sim.runner import SimError, SimOptions, run

    try:
        fleet = load_fleet(args.fleet)
    except FleetError as exc:
        print(f"voltproof sim: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    configure_logging("WARNING")
    options = SimOptions(
        broker_url=args.broker,
        duration_s=args.duration,
        export_keys=args.export_keys,
        state_dir=args.state_dir or args.fleet.resolve().parent / f".{args.fleet.stem}-state",
        summary_json=args.summary_json,
    )
    try:
        summary = asyncio.run(run(fleet, options))
    except SimError as exc:
        print(f"voltproof sim: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(summary.render())
    return EXIT_OK
