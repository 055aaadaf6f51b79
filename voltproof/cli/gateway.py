"""``voltproof gateway`` and ``voltproof gateway check``: run or check the gateway.

The settings come from ``--config FILE`` or ``--workdir DIR``; the gateway itself is
``gateway.app.Gateway(settings).run()``.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

from .exits import CommandFailedError, ExitCode, UsageError, unwrap
from .options import add_deployment_options, command

if TYPE_CHECKING:
    from gateway.config import GatewaySettings

_WORKDIR_HELP = "deployment directory holding gateway.toml (default: ./voltproof-demo)"


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
    add_deployment_options(parser, workdir_help=_WORKDIR_HELP)
    parser.add_argument(
        "--store",
        metavar="URL",
        help=(
            "keep the state in PostgreSQL (postgresql://user:password@host:port/db) instead of "
            "DATA_DIR/gateway.db; several gateways on one database share one log "
            "(overrides store.url)"
        ),
    )
    command(parser, _run)
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
    add_deployment_options(check, workdir_help=_WORKDIR_HELP, default=argparse.SUPPRESS)
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.add_argument(
        "--store",
        metavar="URL",
        default=None,
        help="check this PostgreSQL store (postgresql://...)",
    )
    command(check, _check)
    migrate = actions.add_parser(
        "migrate",
        help="bring the store's schema to this version's (run with the gateway stopped)",
        description=(
            "Apply the schema migrations the store lacks, each in one transaction (a crash "
            "leaves the old or the new version), and print the versions. The gateway does "
            "the same when it opens the store; this command does it before the start, after "
            "an upgrade and a backup. A store newer than this code is refused (exit 1)."
        ),
    )
    add_deployment_options(migrate, workdir_help=_WORKDIR_HELP, default=argparse.SUPPRESS)
    command(migrate, _migrate)


def _run(args: argparse.Namespace) -> int:
    from gateway.app import Gateway
    from gateway.collector import tune_collector
    from gateway.config import ConfigError, load_settings
    from gateway.intake import IntakeError
    from ledger.keys import KeyFileError
    from voltproof.logs import configure_logging

    try:
        settings = with_store_url(load_settings(args.config, workdir=args.workdir), args.store)
    except ConfigError as exc:
        raise UsageError(exc) from exc
    configure_logging(settings.log_level)
    tune_collector()
    try:
        asyncio.run(Gateway(settings).run())
    except Exception as exc:
        error = unwrap(exc)  # a failure inside the gateway's TaskGroup arrives wrapped
        if isinstance(error, KeyFileError):
            raise UsageError(error) from exc
        if isinstance(error, (IntakeError, FileNotFoundError)):
            raise CommandFailedError(error) from exc
        raise
    return ExitCode.OK


def with_store_url(settings: GatewaySettings, url: str | None) -> GatewaySettings:
    """``settings`` with ``store.url`` replaced by ``url`` (if given), validated."""
    from pydantic import ValidationError

    from gateway.config import ConfigError, StoreSettings

    if url is None:
        return settings
    try:
        store = StoreSettings.model_validate({**settings.store.model_dump(), "url": url})
    except ValidationError as exc:
        raise ConfigError(f"--store: {exc.errors()[0]['msg']}") from None
    updated = settings.model_copy(update={"store": store})
    updated.refuse_placeholders()
    return updated


def _check(args: argparse.Namespace) -> int:
    import json

    from gateway.audit import SelfCheckError, check_store, report_lines
    from gateway.config import AnchorBackendName, ConfigError, load_settings
    from ledger.keys import KeyFileError, load_key_file

    try:
        settings = with_store_url(load_settings(args.config, workdir=args.workdir), args.store)
        key = load_key_file(settings.key_file)
        anchors = settings.data_dir / "anchors.db"
        use_anchors = settings.anchors.backend is AnchorBackendName.LOCAL and anchors.is_file()
        report = check_store(
            settings.db_path
            if settings.store.url is None
            else settings.store.url.get_secret_value(),
            origin=settings.origin,
            key_name=key.name,
            public_key=key.public_key,
            anchors_path=anchors if use_anchors else None,
        )
    except (ConfigError, KeyFileError) as exc:
        raise UsageError(exc) from exc
    except SelfCheckError as exc:
        raise CommandFailedError(exc) from exc
    if args.json:
        print(json.dumps(report.as_dict(), indent=1))
    else:
        print("\n".join(report_lines(report)))
    return ExitCode.OK if report.ok else ExitCode.FAILED


def _migrate(args: argparse.Namespace) -> int:
    from gateway.config import ConfigError, load_settings
    from gateway.store import StoreError
    from gateway.store.connect import connect
    from gateway.store.migrate import LATEST_VERSION, Migration, migrate, schema_version

    from .progress import stages

    try:
        settings = load_settings(args.config, workdir=args.workdir)
    except ConfigError as exc:
        raise UsageError(exc) from exc
    if not settings.db_path.is_file():
        raise CommandFailedError(f"no gateway database at {settings.db_path}")

    async def run() -> tuple[int, int]:
        db = await connect(settings.db_path, read_only=False, busy_timeout_ms=5_000)
        try:
            before = await schema_version(db)
            with stages("migrating the gateway store", max(0, LATEST_VERSION - before)) as step:

                def started(migration: Migration) -> None:
                    step(f"version {migration.version} ({migration.name})")

                return before, await migrate(db, on_migration=started)
        finally:
            await db.close()

    try:
        before, after = asyncio.run(run())
    except StoreError as exc:
        raise CommandFailedError(exc) from exc
    if before == after:
        print(
            f"{settings.db_path}: schema version {after}, up to date (this code: {LATEST_VERSION})"
        )
    else:
        print(f"{settings.db_path}: schema migrated from version {before} to {after}")
    return ExitCode.OK
