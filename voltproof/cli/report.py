"""``voltproof report BUNDLE``: the condition report recomputed from a bundle alone."""

from __future__ import annotations

import argparse
from pathlib import Path

from ledger.errors import VerificationError

from .exits import ExitCode, InvalidEvidenceError
from .options import command
from .verify import load_bundle


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``report`` to the ``voltproof`` parser."""
    report = subparsers.add_parser(
        "report",
        help="recompute the condition report from a bundle alone",
        description=(
            "Check the bundle's device signatures and hash chains, then compute the condition "
            "report (state of health, usage, abuse, completeness) from its messages; for a "
            "GB/T 32960 bus, also the pack figures of its frames and their evidence label "
            "(received-only or signed-by-terminal)."
        ),
    )
    report.add_argument("bundle", type=Path, metavar="BUNDLE", help="the bundle file")
    report.add_argument("--json", action="store_true", help="print the report's JSON")
    command(report, _report)


def _report(args: argparse.Namespace) -> int:
    from gateway.collector import gc_paused
    from ledger.bundle_v2 import BundleV2
    from ledger.gbt32960.figures import with_terminal_figures
    from ledger.report import compute_report
    from ledger.report.text import render_text
    from ledger.verify import check_messages
    from ledger.verify_terminal import asset_frames
    from ledger.verify_v2 import check_messages_v2

    bundle = load_bundle(args.bundle)
    try:
        frames = []
        if isinstance(bundle, BundleV2):
            payloads = check_messages_v2(bundle)
            frames = asset_frames(bundle)
        else:
            payloads = check_messages(bundle).payloads
        with gc_paused():
            report = compute_report(
                payloads,
                asset_id=bundle.asset_id,
                asset_kind=bundle.asset_kind,
                from_ms=bundle.from_ms,
                to_ms=bundle.to_ms,
            )
        report = with_terminal_figures(report, frames)
    except VerificationError as exc:
        raise InvalidEvidenceError(f"{type(exc).__name__}: {exc}") from exc
    print(report.to_json() if args.json else render_text(report))
    return ExitCode.OK
