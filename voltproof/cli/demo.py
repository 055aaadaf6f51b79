"""``voltproof demo``: the whole system on this machine (:mod:`voltproof.demo` runs it)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from voltproof.demo import (
    DEFAULT_AGEING_ACCEL,
    DEFAULT_DEVICES,
    DEFAULT_WORKDIR,
    MIN_DEVICES,
    OWN_CLUSTER,
    POSTGRESQL_GATEWAYS,
    SPARE_PACKS,
    buses_for,
)

from .exits import CommandFailedError, UsageError
from .options import command, port


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``demo`` to the ``voltproof`` parser."""
    parser = subparsers.add_parser(
        "demo",
        help="run the whole system on this machine: broker, gateway, ledger, API, fleet",
        description=(
            "Start mosquitto, the gateway (local ledger by default), the dashboard API and "
            "web page, and a simulated fleet of buses and packs. Prints the dashboard URL and "
            "a lessor's API key; Ctrl-C or --duration stops it cleanly and leaves everything "
            "in --workdir for `voltproof bundle` and `voltproof verify`."
        ),
    )
    parser.add_argument(
        "--duration", type=float, default=None, metavar="S", help="stop after S seconds"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=DEFAULT_WORKDIR,
        metavar="DIR",
        help=f"where everything is kept (default: ./{DEFAULT_WORKDIR})",
    )
    parser.add_argument(
        "--devices",
        type=int,
        default=DEFAULT_DEVICES,
        metavar="N",
        help=f"simulated devices: buses, one pack in each and {SPARE_PACKS} spare packs "
        f"(default {DEFAULT_DEVICES}: {buses_for(DEFAULT_DEVICES)} buses and "
        f"{buses_for(DEFAULT_DEVICES) + SPARE_PACKS} packs; an odd N runs N - 1)",
    )
    parser.add_argument(
        "--ledger",
        choices=("local", "evm"),
        default="local",
        help="anchor on the embedded local ledger (default) or a local EVM node (anvil)",
    )
    parser.add_argument(
        "--api-port",
        type=port,
        default=8080,
        metavar="P",
        help="dashboard port (default 8080; 0 or a busy port: a free one)",
    )
    parser.add_argument(
        "--ageing-accel",
        type=float,
        default=DEFAULT_AGEING_ACCEL,
        metavar="X",
        help="how much faster than wall time the packs age (timestamps stay real)",
    )
    parser.add_argument(
        "--store",
        default="sqlite",
        metavar="STORE",
        help=(
            "where the log is kept: 'sqlite' (default: one gateway, gateway/gateway.db), "
            f"'postgresql' (a PostgreSQL cluster the demo starts, kept in WORKDIR/postgresql, "
            "stopped on exit) or a postgresql://user:password@host:port/dbname URL (that "
            f"server); on PostgreSQL {POSTGRESQL_GATEWAYS} gateway processes share one log "
            "through one MQTT 5 shared subscription and elect one checkpoint signer"
        ),
    )
    parser.add_argument("--seed", type=int, default=1, help="simulation seed (default 1)")
    command(parser, _handler)


def _handler(args: argparse.Namespace) -> int:
    from voltproof.broker import BrokerError
    from voltproof.demo import Demo, DemoError, DemoOptions

    if args.devices < MIN_DEVICES:
        raise UsageError(
            f"--devices must be at least {MIN_DEVICES} (a bus, its pack and {SPARE_PACKS} spares)"
        )
    options = DemoOptions(
        store=store_choice(args.store),
        workdir=args.workdir,
        duration_s=args.duration,
        devices=args.devices,
        ledger=args.ledger,
        api_port=args.api_port,
        ageing_accel=args.ageing_accel,
        seed=args.seed,
    )
    try:
        return asyncio.run(Demo(options).run())
    except (DemoError, BrokerError) as exc:
        raise CommandFailedError(exc) from exc


def store_choice(value: str) -> str | None:
    """``--store`` as :class:`~voltproof.demo.DemoOptions` takes it: ``None`` for SQLite,
    ``OWN_CLUSTER``, or a ``postgresql://`` URL; anything else is a usage error."""
    from gateway.store.postgresql import is_postgres_url

    if value == "sqlite":
        return None
    if value in (OWN_CLUSTER, "postgres"):
        return OWN_CLUSTER
    if is_postgres_url(value):
        from psycopg.conninfo import conninfo_to_dict

        try:
            conninfo_to_dict(value)
        except Exception:  # noqa: BLE001 - psycopg's parse errors vary
            # Not the parser's words: they may quote the URL, password included.
            raise UsageError("--store: not a valid postgresql:// URL") from None
        from ledger.placeholders import has_placeholder_password

        if has_placeholder_password(value):
            raise UsageError("--store: the password in the URL is a placeholder; set the real one")
        return value
    # Only the scheme is repeated: the rest may hold a password.
    scheme, separator, _ = value.partition("://")
    raise UsageError(
        "--store must be sqlite, postgresql or a postgresql://... URL, "
        f"got {scheme + separator + ('...' if separator else '')!r}"
    )
