"""``voltproof bundle --asset ID [--from T] [--to T] --out FILE``: an evidence bundle.

Reads the deployment's gateway store (``--workdir DIR`` or ``--config FILE``), extracts the
asset's messages, registry entries, proofs and anchor (:mod:`gateway.evidence`) and writes a
``voltproof-bundle/1`` file that ``voltproof verify`` checks offline. Times are ISO 8601
(``2026-01-01``, ``2026-01-01T06:00:00Z``) or Unix milliseconds. Exit codes (contract 5):
0 written, 1 failed (the reason on stderr), 2 usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def parse_time(text: str) -> int:
    """Unix ms from ISO 8601 (UTC unless an offset is given) or a Unix-ms integer."""
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither ISO 8601 (2026-01-01T06:00:00Z) nor Unix milliseconds"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def add_deployment_options(parser: argparse.ArgumentParser) -> None:
    """``--workdir DIR`` / ``--config FILE`` (mutually exclusive)."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workdir", type=Path, metavar="DIR", help="deployment directory")
    where.add_argument("--config", type=Path, metavar="FILE", help="gateway configuration file")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``bundle`` to the ``voltproof`` parser."""
    parser = subparsers.add_parser(
        "bundle",
        help="write an evidence bundle for one bus or pack over a period",
        description=(
            "Extract an asset's device-signed messages, registry entries, inclusion proofs, "
            "checkpoint and anchor receipt into one voltproof-bundle/1 file. A pack's bundle "
            "also holds the messages of the buses that hosted it (--no-hosts leaves them out)."
        ),
    )
    parser.add_argument("--asset", required=True, metavar="ID", help="bus or pack id")
    parser.add_argument("--from", dest="from_ms", type=parse_time, default=0, metavar="T",
                        help="period start (default: the beginning)")  # fmt: skip
    parser.add_argument("--to", dest="to_ms", type=parse_time, default=None, metavar="T",
                        help="period end, exclusive (default: now)")  # fmt: skip
    parser.add_argument("--out", required=True, type=Path, metavar="FILE", help="bundle file")
    parser.add_argument("--no-hosts", action="store_true", help="a pack's own messages only")
    add_deployment_options(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from gateway.config import ConfigError, load_settings
    from ledger.keys import KeyFileError, load_key_file

    to_ms = args.to_ms
    if to_ms is None:
        to_ms = int(datetime.now(tz=UTC).timestamp() * 1000) + 1
    if not args.from_ms < to_ms:
        print(f"voltproof bundle: error: --from ({args.from_ms}) must be before --to ({to_ms})",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    try:
        settings = load_settings(args.config, workdir=args.workdir)
        operator_key = load_key_file(settings.operator_key_file).public_key
    except (ConfigError, KeyFileError) as exc:
        print(f"voltproof bundle: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return asyncio.run(
        _write(
            db=settings.db_path, anchor_db=settings.data_dir / "anchors.db", args=args,
            to_ms=int(to_ms), operator_key=operator_key,
        )
    )  # fmt: skip


async def _write(
    *, db: Path, anchor_db: Path, args: argparse.Namespace, to_ms: int, operator_key: bytes
) -> int:
    from ledger.bundle import build_bundle

    from .evidence import EvidenceError, extract_evidence
    from .store import StoreError, open_reader

    if not await asyncio.to_thread(db.is_file):
        print(f"voltproof bundle: error: no gateway database at {db}", file=sys.stderr)
        return EXIT_FAILED
    try:
        store = await open_reader(db)
    except StoreError as exc:
        print(f"voltproof bundle: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    try:
        extraction = await extract_evidence(
            store, asset_id=args.asset, from_ms=args.from_ms, to_ms=to_ms,
            operator_key=operator_key, anchor_db=anchor_db, follow_hosts=not args.no_hosts,
        )  # fmt: skip
        bundle = build_bundle(extraction.bundle_input)
    except (EvidenceError, StoreError, ValueError) as exc:
        print(f"voltproof bundle: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        await store.close()
    data = bundle.to_bytes()
    try:
        args.out.write_bytes(data)
    except OSError as exc:
        print(f"voltproof bundle: error: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
        return EXIT_FAILED
    messages = sum(len(chain.messages) for chain in bundle.chains)
    print(f"wrote {args.out}: {bundle.asset_kind} {bundle.asset_id}, devices "
          f"{', '.join(extraction.devices)}, {messages} messages, {len(bundle.registry)} "
          f"registry entries, {len(data)} bytes")  # fmt: skip
    if extraction.unanchored:
        print(f"note: {extraction.unanchored} newer messages are not anchored yet and were "
              "left out; ask again after the next anchor")  # fmt: skip
    return EXIT_OK
