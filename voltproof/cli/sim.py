"""``voltproof sim``: a simulated fleet of agents publishing to a broker."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from .exits import CommandFailedError, ExitCode, UsageError
from .options import command, mqtt_url


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``sim`` to the ``voltproof`` parser."""
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
    sim.add_argument(
        "--broker", required=True, type=mqtt_url, metavar="URL", help="mqtt://host:port"
    )
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
        help="keep keys, chains and outboxes in DIR (default: "
        "$XDG_STATE_HOME/voltproof/sim/<fleet file name>, ~/.local/state if unset; never "
        "beside the fleet file, which may be in a checkout)",
    )
    sim.add_argument(
        "--summary-json",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the final summary as JSON",
    )
    command(sim, _sim)


def default_state_dir(fleet: Path) -> Path:
    """Where a simulation keeps its state without ``--state-dir``: the user's state folder."""
    import os

    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "voltproof" / "sim" / fleet.stem


def _sim(args: argparse.Namespace) -> int:
    from firmware_sim.sim.fleet import FleetError, load_fleet
    from firmware_sim.sim.runner import SimError, SimOptions, run
    from voltproof.logs import configure_logging

    try:
        fleet = load_fleet(args.fleet)
    except FleetError as exc:
        raise UsageError(exc) from exc
    configure_logging("WARNING")
    options = SimOptions(
        broker_url=args.broker,
        duration_s=args.duration,
        export_keys=args.export_keys,
        state_dir=args.state_dir or default_state_dir(args.fleet),
        summary_json=args.summary_json,
    )
    try:
        summary = asyncio.run(run(fleet, options))
    except SimError as exc:
        raise CommandFailedError(exc) from exc
    print(summary.render())
    return ExitCode.OK
