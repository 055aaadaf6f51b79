"""``voltproof bundle --asset ID [--from T] [--to T] --out FILE``: an evidence bundle.

Reads the deployment's gateway store (``--workdir DIR`` or ``--config FILE``), extracts the
asset's messages, registry entries, proofs and anchor (:mod:`gateway.evidence_v2`, or
:mod:`gateway.evidence` for ``--format 1``) and writes a ``voltproof-bundle/2`` (or ``/1``)
file that ``voltproof verify`` checks offline. Times are ISO 8601 (``2026-01-01``,
``2026-01-01T06:00:00Z``) or Unix milliseconds. Exit codes
(:mod:`voltproof.cli.exits`): 0 written, 1 failed (the reason on stderr), 2 usage error.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .exits import CommandFailedError, ExitCode, UsageError
from .options import add_deployment_options, command, parse_time
from .progress import stages

if TYPE_CHECKING:
    from gateway.config import GatewaySettings
    from gateway.store import StoreReader


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``bundle`` to the ``voltproof`` parser."""
    parser = subparsers.add_parser(
        "bundle",
        help="write an evidence bundle for one bus or pack over a period",
        description=(
            "Extract an asset's device-signed messages, registry entries, inclusion proofs, "
            "checkpoint and anchor receipt into one voltproof-bundle/2 file (--format 1: the "
            "older voltproof-bundle/1). A v2 bundle proves each device by its entry in the "
            "checkpoint's device index, and a pack's bundle holds its host buses' messages "
            "only over the intervals the pack was in them. --no-hosts (v1 only) leaves them out."
        ),
    )
    parser.add_argument("--asset", required=True, metavar="ID", help="bus or pack id")
    parser.add_argument("--from", dest="from_ms", type=parse_time, default=0, metavar="T",
                        help="period start (default: the beginning)")  # fmt: skip
    parser.add_argument("--to", dest="to_ms", type=parse_time, default=None, metavar="T",
                        help="period end, exclusive (default and latest: now)")  # fmt: skip
    parser.add_argument("--out", required=True, type=Path, metavar="FILE", help="bundle file")
    parser.add_argument("--no-hosts", action="store_true",
                        help="a pack's own messages only (--format 1 only)")  # fmt: skip
    parser.add_argument("--format", dest="version", type=int, choices=(1, 2), default=2,
                        help="bundle version (default 2)")  # fmt: skip
    add_deployment_options(parser, config_help="gateway configuration file")
    command(parser, _run)


def _run(args: argparse.Namespace) -> int:
    from gateway.config import ConfigError, load_settings
    from ledger.keys import KeyFileError, load_key_file

    # A period ends now at the latest: evidence speaks only of what the log holds.
    now_ms = int(datetime.now(tz=UTC).timestamp() * 1000) + 1
    to_ms = now_ms if args.to_ms is None else min(args.to_ms, now_ms)
    if not args.from_ms < to_ms:
        raise UsageError(f"--from ({args.from_ms}) must be before --to ({to_ms})")
    if args.no_hosts and args.version == 2:
        raise UsageError("--no-hosts is for --format 1: a v2 pack bundle must hold its hosts")
    try:
        settings = load_settings(args.config, workdir=args.workdir)
        operator_key = load_key_file(settings.operator_key_file).public_key
    except (ConfigError, KeyFileError) as exc:
        raise UsageError(exc) from exc
    return asyncio.run(
        _write(
            settings=settings, anchor_db=settings.data_dir / "anchors.db", args=args,
            to_ms=int(to_ms), operator_key=operator_key,
        )
    )  # fmt: skip


async def _write(
    *,
    settings: GatewaySettings,
    anchor_db: Path,
    args: argparse.Namespace,
    to_ms: int,
    operator_key: bytes,
) -> int:
    from gateway.evidence import EvidenceError, extract_evidence
    from gateway.store import StoreError
    from gateway.store_choice import open_store_reader
    from ledger.bundle import build_bundle

    db = settings.db_path
    if settings.store.url is None and not await asyncio.to_thread(db.is_file):
        raise CommandFailedError(f"no gateway database at {db}")
    try:
        store = await open_store_reader(settings)
    except StoreError as exc:
        raise CommandFailedError(exc) from exc
    if args.version == 2:
        return await _write_v2(store, anchor_db=anchor_db, args=args, to_ms=to_ms,
                               operator_key=operator_key)  # fmt: skip
    with stages(f"bundle {args.asset}", 4) as step:
        try:
            step("selecting messages and proofs")
            extraction = await extract_evidence(
                store, asset_id=args.asset, from_ms=args.from_ms, to_ms=to_ms,
                operator_key=operator_key, anchor_db=anchor_db, follow_hosts=not args.no_hosts,
            )  # fmt: skip
            step("building the bundle")
            bundle = build_bundle(extraction.bundle_input)
        except (EvidenceError, StoreError, ValueError) as exc:
            raise CommandFailedError(exc) from exc
        finally:
            await store.close()
        step("encoding")
        data = bundle.to_bytes()
        step(f"writing {len(data)} bytes")
        try:
            args.out.write_bytes(data)
        except OSError as exc:
            raise CommandFailedError(f"cannot write {args.out}: {exc.strerror}") from exc
    messages = sum(len(chain.messages) for chain in bundle.chains)
    print(f"wrote {args.out}: {bundle.asset_kind} {bundle.asset_id}, devices "
          f"{', '.join(extraction.devices)}, {messages} messages, {len(bundle.registry)} "
          f"registry entries, {len(data)} bytes")  # fmt: skip
    if extraction.unanchored:
        print(f"note: {extraction.unanchored} newer messages are not anchored yet and were "
              "left out; ask again after the next anchor")  # fmt: skip
    return ExitCode.OK


async def _write_v2(
    store: StoreReader, *, anchor_db: Path, args: argparse.Namespace, to_ms: int,
    operator_key: bytes,
) -> int:  # fmt: skip
    from gateway.evidence import EvidenceError
    from gateway.evidence_v2 import extract_bundle_v2
    from gateway.store import StoreError

    try:
        bundle = await extract_bundle_v2(
            store, asset_id=args.asset, from_ms=args.from_ms, to_ms=to_ms,
            operator_key=operator_key, anchor_db=anchor_db,
        )  # fmt: skip
    except (EvidenceError, StoreError, ValueError) as exc:
        raise CommandFailedError(exc) from exc
    finally:
        await store.close()
    data = bundle.to_bytes()
    try:
        args.out.write_bytes(data)
    except OSError as exc:
        raise CommandFailedError(f"cannot write {args.out}: {exc.strerror}") from exc
    messages = sum(len(chain.messages) for chain in bundle.chains)
    registry = len({leaf.index for device in bundle.devices for leaf in device.registry})
    print(f"wrote {args.out}: {bundle.format} {bundle.asset_kind} {bundle.asset_id}, devices "
          f"{', '.join(d.device for d in bundle.devices)}, {messages} messages, {registry} "
          f"registry entries, checkpoint size {bundle.anchor.size}, {len(data)} bytes")  # fmt: skip
    if bundle.absent:
        print(f"note: {', '.join(a.device for a in bundle.absent)} named by the asset's messages "
              "is not enrolled; the bundle proves its absence from the device index")  # fmt: skip
    return ExitCode.OK
