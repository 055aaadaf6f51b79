"""``voltproof audit``: replay a whole log and recompute every signed checkpoint.

From the local store (``--workdir`` / ``--config``, opened read-only) or from an export
(``voltproof log export``; ``--leaves FILE --gateway-key KEY``). The replay is
:mod:`gateway.audit.replay`: Merkle roots, device index lines, hash chains, registry rules
and key validity. Exit 0 with a summary, 1 with the first disagreement, 2 for usage errors
(unreadable files or keys).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from .exits import CommandFailedError, ExitCode, InvalidEvidenceError, UsageError
from .key_options import verifier_key_option
from .options import add_deployment_options, command
from .progress import progress_bar

if TYPE_CHECKING:
    from gateway.audit.replay import AuditSummary


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``audit`` to the ``voltproof`` parser."""
    parser = subparsers.add_parser(
        "audit",
        help="replay a whole log and recompute every checkpoint, index, chain and key",
        description=(
            "Replay every leaf of a gateway's log, from its store (read-only, safe next to a "
            "running gateway) or from an export (voltproof log export), and recompute for "
            "every signed checkpoint: the Merkle root, the device index line, every device's "
            "hash chain and the registry state (signers, rules, key validity). Exit 0 with a "
            "summary; exit 1 with the first disagreement."
        ),
    )
    add_deployment_options(parser, workdir_help="deployment directory (default: ./voltproof-demo)")
    parser.add_argument(
        "--leaves", type=Path, metavar="FILE", help="audit an export instead of the store"
    )
    parser.add_argument(
        "--gateway-key",
        metavar="KEY",
        help="the gateway's verifier key (name+keyid+base64, or a file holding it); required "
        "with --leaves, else taken from the deployment's key file",
    )
    parser.add_argument(
        "--operator-key",
        metavar="KEY",
        help="the operator's verifier key (or a file holding it); default: the deployment's "
        "operator key, or with --leaves the key the export's header names",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    command(parser, _audit)


def _summary_lines(summary: AuditSummary, source: str) -> list[str]:
    v1 = f" ({summary.v1_checkpoints} v1, without a device index)" if summary.v1_checkpoints else ""
    return [
        f"audit of {source}: CLEAN",
        f"leaves: {summary.leaves} ({summary.messages} telemetry, "
        f"{summary.registry_entries} registry entries)",
        f"checkpoints: {summary.checkpoints} recomputed{v1}",
        f"devices: {summary.devices} indexed; chains: {summary.chains} "
        f"({summary.missing_seqs} seqs missing below their heads)",
    ]


def _audit(args: argparse.Namespace) -> int:
    from gateway.audit.replay import AuditDisagreementError

    try:
        if args.leaves is not None:
            summary, source = _audit_export(args)
        else:
            summary, source = _audit_store(args)
    except AuditDisagreementError as exc:
        raise InvalidEvidenceError(exc) from exc
    print("\n".join(_summary_lines(summary, source)))
    return ExitCode.OK


def _audit_export(args: argparse.Namespace) -> tuple[AuditSummary, str]:
    from gateway.audit.export import replay_export
    from ledger.note import parse_verifier_key

    if args.config is not None or args.workdir is not None:
        raise UsageError("--leaves audits a file: give no --config or --workdir")
    if args.gateway_key is None:
        raise UsageError("--leaves needs --gateway-key KEY (the gateway's verifier key)")
    gateway_key = verifier_key_option(args.gateway_key, "--gateway-key")
    operator = None
    if args.operator_key is not None:
        operator = parse_verifier_key(
            verifier_key_option(args.operator_key, "--operator-key")
        ).public_key
    try:
        handle = args.leaves.open(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {args.leaves}: {exc.strerror}") from exc
    with handle, progress_bar(None, quiet=args.quiet, what="replaying") as progress:
        try:
            header, summary = replay_export(
                iter(handle), gateway_key=gateway_key, operator_key=operator, progress=progress
            )
        except UnicodeDecodeError as exc:
            raise UsageError(f"{args.leaves} is not UTF-8 text: {exc}") from exc
    note = "" if operator is not None else " (operator key as the export's header names it)"
    return summary, f"{args.leaves} ({header.origin}){note}"


def _audit_store(args: argparse.Namespace) -> tuple[AuditSummary, str]:
    import asyncio

    from gateway.audit.export import replay_store
    from gateway.config import ConfigError, load_settings
    from gateway.store import StoreError
    from gateway.store_choice import open_store_reader, store_location
    from ledger.keys import KeyFileError, load_key_file
    from ledger.note import parse_verifier_key, verifier_key

    try:
        settings = load_settings(args.config, workdir=args.workdir)
        if args.gateway_key is not None:
            gateway_key = verifier_key_option(args.gateway_key, "--gateway-key")
        else:
            key = load_key_file(settings.key_file)
            gateway_key = verifier_key(key.name, key.public_key)
        if args.operator_key is not None:
            operator = parse_verifier_key(
                verifier_key_option(args.operator_key, "--operator-key")
            ).public_key
        else:
            operator = load_key_file(settings.operator_key_file).public_key
    except (ConfigError, KeyFileError) as exc:
        raise UsageError(exc) from exc
    if settings.store.url is None and not settings.db_path.is_file():
        raise UsageError(f"no gateway store at {settings.db_path}")

    async def run() -> AuditSummary:
        reader = await open_store_reader(settings)
        try:
            total = await reader.stored_size()
            with progress_bar(total, quiet=args.quiet, what="replaying") as progress:
                return await replay_store(
                    reader,
                    gateway_key=gateway_key,
                    operator_key=operator,
                    origin=settings.origin,
                    progress=progress,
                )
        finally:
            await reader.close()

    try:
        summary = asyncio.run(run())
    except StoreError as exc:
        raise CommandFailedError(f"cannot read {store_location(settings)}: {exc}") from exc
    return summary, f"{store_location(settings)} ({settings.origin})"
