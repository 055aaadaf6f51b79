"""``voltproof sim``: a simulated fleet of agents publishing to a broker."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from .exits import CommandFailedError, ExitCode, UsageError
from .key_options import verifier_key_option
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
    sim.add_argument(
        "--gateway-key",
        default=None,
        metavar="KEY",
        help="the gateway's verifier key (name+id+key) or a file holding it: "
        "agents keep each message until a receipt signed by it covers it, and re-send the rest",
    )
    sim.add_argument(
        "--resend-after",
        type=float,
        default=10.0,
        metavar="S",
        help="re-send what no receipt covers after S seconds without progress (default 10)",
    )
    command(sim, _sim)


def default_state_dir(fleet: Path) -> Path:
    """Where a simulation keeps its state without ``--state-dir``: the user's state folder."""
    import os

    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "voltproof" / "sim" / fleet.stem


def _gateway_key(text: str | None) -> bytes | None:
    from ledger.note import parse_verifier_key

    if text is None:
        return None
    return parse_verifier_key(verifier_key_option(text, "--gateway-key")).public_key


def _sim(args: argparse.Namespace) -> int:
    from firmware_sim.sim.fleet import FleetError, load_fleet
    from firmware_sim.sim.runner import SimError, SimOptions, run
    from voltproof.logs import configure_logging

    if not args.resend_after > 0:
        raise UsageError(f"--resend-after must be > 0 seconds, got {args.resend_after}")
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
        gateway_key=_gateway_key(args.gateway_key),
        resend_after_s=args.resend_after,
    )
    try:
        summary = asyncio.run(run(fleet, options))
    except SimError as exc:
        raise CommandFailedError(exc) from exc
    print(summary.render())
    return ExitCode.OK
