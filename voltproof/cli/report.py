"""``voltproof report BUNDLE``: the condition report recomputed from a bundle alone."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledger.errors import VerificationError

from .exits import ExitCode, InvalidEvidenceError, UsageError
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

if TYPE_CHECKING:
    from ledger.batterypass import PackIdentity
    from ledger.bundle import Bundle
    from ledger.bundle_v2 import BundleV2
    from ledger.report import ConditionReport


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
    report.add_argument(
        "--passport", action="store_true",
        help="print the pack's complete battery passport (Tractus-X battery_pass 6.1.0 JSON)",
    )  # fmt: skip
    report.add_argument(
        "--passport-setting", type=Path, metavar="FILE",
        help="the passport setting (static sections, JSON; docs/operations.md) for --passport",
    )  # fmt: skip
    command(report, _report)


def offline_report(bundle: Bundle | BundleV2) -> ConditionReport:
    """The condition report of a bundle's checked messages (signatures and chains checked).

    What ``voltproof report`` prints, and what the API's ``/report`` must equal for the
    bundle it serves by default; for a GB/T 32960 bus, with the pack figures of its frames
    and their evidence label. Raises :class:`InvalidEvidenceError` when a check fails.
    """
    from gateway.collector import gc_paused
    from ledger.bundle_v2 import BundleV2
    from ledger.gbt32960.figures import with_terminal_figures
    from ledger.report import compute_report
    from ledger.verify import check_messages
    from ledger.verify_terminal import asset_frames
    from ledger.verify_v2 import check_messages_v2

    try:
        frames = []
        predecessors: tuple[str, ...] = ()
        if isinstance(bundle, BundleV2):
            payloads = check_messages_v2(bundle)
            frames = asset_frames(bundle)
            predecessors = tuple(c.device for c in bundle.chains if c.role == "predecessor")
        else:
            payloads = check_messages(bundle).payloads
        with gc_paused():
            report = compute_report(
                payloads,
                asset_id=bundle.asset_id,
                asset_kind=bundle.asset_kind,
                from_ms=bundle.from_ms,
                to_ms=bundle.to_ms,
                predecessors=predecessors,
            )
        return with_terminal_figures(report, frames)
    except VerificationError as exc:
        raise InvalidEvidenceError(f"{type(exc).__name__}: {exc}") from exc


def _report(args: argparse.Namespace) -> int:
    from ledger.bundle_witness import check_messages_included
    from ledger.report.text import render_text

    setting = _setting(args.passport_setting) if args.passport else {}
    bundle = load_bundle(args.bundle)
    policy = witness_policy(args)
    if args.passport and bundle.asset_kind != "pack":
        raise UsageError(f"{bundle.asset_id!r} is a bus; passports are for packs")
    report = offline_report(bundle)
    witnessed = None
    if policy is not None:
        try:
            check_messages_included(bundle)
            witnessed = check_witnesses(bundle, policy, args.late_after)
        except VerificationError as exc:
            raise InvalidEvidenceError(f"{type(exc).__name__}: {exc}") from exc
    if args.passport:
        # The passport is the Tractus-X document alone; --witness only gates it.
        from ledger.batterypass import battery_passport

        passport = battery_passport(report, static=setting, identity=_identity(bundle))
        print(json.dumps(passport, sort_keys=True, separators=(",", ":")))
        return ExitCode.OK
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


def _setting(path: Path | None) -> dict[str, Any]:
    from ledger.batterypass import PassportSettingError, parse_passport_setting

    if path is None:
        return {}
    try:
        return parse_passport_setting(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"--passport-setting {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"--passport-setting {path}: not UTF-8 text ({exc.reason})") from exc
    except PassportSettingError as exc:
        raise UsageError(f"--passport-setting {path}: {exc}") from exc


def _identity(bundle: Bundle | BundleV2) -> PackIdentity:
    """The pack's identity from the registry entries the bundle carries for it."""
    from ledger.batterypass import pack_identity
    from ledger.bundle_v2 import BundleV2

    if isinstance(bundle, BundleV2):
        leaves = [
            leaf for d in bundle.devices if d.device == bundle.asset_id for leaf in d.registry
        ]
    else:
        leaves = list(bundle.registry)
    return pack_identity(bundle.asset_id, [(leaf.index, leaf.data) for leaf in leaves])
