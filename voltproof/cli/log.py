"""``voltproof log export``: every leaf and signed checkpoint of the log, for an auditor.

The format is :mod:`gateway.audit.export` (JSON lines); ``voltproof audit --leaves FILE
--gateway-key KEY`` replays it on another machine.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .exits import CommandFailedError, ExitCode, UsageError
from .options import add_deployment_options, command


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``log`` to the ``voltproof`` parser."""
    parser = subparsers.add_parser(
        "log", help="the gateway's Merkle log", description="Read the gateway's Merkle log."
    )
    actions = parser.add_subparsers(dest="log_action", metavar="ACTION", required=True)
    export = actions.add_parser(
        "export",
        help="write every leaf and signed checkpoint as JSON lines",
        description=(
            "Write the whole log (read-only, one snapshot): a header (origin, size, operator "
            "public key), every signed checkpoint, then every leaf (index, base64 COSE bytes), "
            "one JSON object per line. Audit it with: voltproof audit --leaves FILE "
            "--gateway-key KEY."
        ),
    )
    add_deployment_options(export, workdir_help="deployment directory (default: ./voltproof-demo)")
    export.add_argument("--out", type=Path, metavar="FILE", required=True, help="the export file")
    export.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    command(export, _export)


def _export(args: argparse.Namespace) -> int:
    import asyncio

    from gateway.audit.export import export_log
    from gateway.config import ConfigError, load_settings
    from gateway.store import SqliteReader, StoreError
    from ledger.keys import KeyFileError, load_key_file

    from .progress import progress_bar

    try:
        settings = load_settings(args.config, workdir=args.workdir)
        operator = load_key_file(settings.operator_key_file).public_key
    except (ConfigError, KeyFileError) as exc:
        raise UsageError(exc) from exc
    if not settings.db_path.is_file():
        raise UsageError(f"no gateway store at {settings.db_path}")
    partial = args.out.with_name(args.out.name + ".partial")

    async def run() -> int:
        async with await SqliteReader.open(settings.db_path) as reader:
            total = await reader.stored_size()
            with (
                partial.open("w", encoding="utf-8") as out,
                progress_bar(total, quiet=args.quiet, what="exporting") as progress,
            ):
                return await export_log(
                    reader, out, origin=settings.origin, operator_key=operator, progress=progress
                )

    try:
        count = asyncio.run(run())
        partial.replace(args.out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise CommandFailedError(f"cannot write {args.out}: {exc.strerror or exc}") from exc
    except StoreError as exc:
        partial.unlink(missing_ok=True)
        raise CommandFailedError(f"cannot read {settings.db_path}: {exc}") from exc
    print(f"exported {count} leaves of {settings.origin} to {args.out}")
    return ExitCode.OK
