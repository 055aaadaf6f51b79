"""``voltproof report BUNDLE``: the condition report recomputed from a bundle alone."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ledger.errors import VerificationError

from .exits import ExitCode, InvalidEvidenceError
from .options import command
from .verify import load_bundle
from .witness_options import (
    add_witness_options,
    check_witnesses,
    late_warnings,
    timeliness_json,
    witness_json,
    witness_lines,
    witness_policy,
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``report`` to the ``voltproof`` parser."""
    report = subparsers.add_parser(
        "report",
        help="recompute the condition report from a bundle alone",
        description=(
            "Check the bundle's device signatures and hash chains, then compute the condition "
            "report (state of health, usage, abuse, completeness) from its messages; for a "
            "GB/T 32960 bus, also the pack figures of its frames and their evidence label "
            "(received-only or signed-by-terminal). With --witness, the bundle's checkpoint "
            "must carry the witnesses' quorum and the report adds per chain the delay from "
            "measurement to proven existence."
        ),
    )
    report.add_argument("bundle", type=Path, metavar="BUNDLE", help="the bundle file")
    add_witness_options(report)
    report.add_argument("--json", action="store_true", help="print the report's JSON")
    command(report, _report)


def _report(args: argparse.Namespace) -> int:
    from gateway.collector import gc_paused
    from ledger.bundle_v2 import BundleV2
    from ledger.bundle_witness import check_messages_included
    from ledger.gbt32960.figures import with_terminal_figures
    from ledger.report import compute_report
    from ledger.report.text import render_text
    from ledger.verify import check_messages
    from ledger.verify_terminal import asset_frames
    from ledger.verify_v2 import check_messages_v2

    bundle = load_bundle(args.bundle)
    policy = witness_policy(args)
    witnessed = None
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
        if policy is not None:
            check_messages_included(bundle)
            witnessed = check_witnesses(bundle, policy, args.late_after)
    except VerificationError as exc:
        raise InvalidEvidenceError(f"{type(exc).__name__}: {exc}") from exc
    if witnessed is None:
        print(report.to_json() if args.json else render_text(report))
        return ExitCode.OK
    if args.json:
        document = json.loads(report.to_json())
        document["witness_policy"] = witness_json(witnessed)
        document["timeliness"] = timeliness_json(witnessed)
        document["warnings"] = late_warnings(witnessed)
        print(json.dumps(document, sort_keys=True, separators=(",", ":")))
        return ExitCode.OK
    print(render_text(report).rstrip("\n"))
    print()
    print("\n".join([*witness_lines(witnessed), *late_warnings(witnessed)]))
    return ExitCode.OK
