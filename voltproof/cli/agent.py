"""``voltproof agent``: one edge agent (one device), as it runs on a Pi.

The settings come from ``--config FILE``; the agent itself is ``firmware_sim.agent.app.run``.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from .exits import CommandFailedError, ExitCode, UsageError
from .options import command


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``agent`` to the ``voltproof`` parser."""
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
    command(agent, _agent)


def _agent(args: argparse.Namespace) -> int:
    from firmware_sim.agent import app
    from firmware_sim.agent.config import AgentConfigError, load_settings
    from firmware_sim.agent.identity import IdentityError
    from firmware_sim.agent.source import SourceError
    from firmware_sim.agent.store import ChainStoreError
    from voltproof.logs import configure_logging

    try:
        settings = load_settings(args.config)
    except AgentConfigError as exc:
        raise UsageError(exc) from exc
    configure_logging(settings.log_level)
    try:
        asyncio.run(app.run(settings))
    except IdentityError as exc:  # the key file is missing, unreadable or another device's
        raise UsageError(exc) from exc
    except (ChainStoreError, SourceError) as exc:
        raise CommandFailedError(exc) from exc
    return ExitCode.OK
