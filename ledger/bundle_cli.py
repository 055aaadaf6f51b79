"""``voltproof verify BUNDLE`` and ``voltproof report BUNDLE``: offline checks for lessors.

Exit codes (contract 5): 0 valid, 1 invalid (the failure printed on stderr), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .bundle import Bundle, parse_bundle
from .errors import VerificationError

_USAGE = 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``verify`` and ``report`` to the ``voltproof`` parser."""
    verify = subparsers.add_parser(
        "verify",
        help="verify an evidence bundle offline",
        description=(
            "Check every signature, registry fact, hash-chain link, inclusion proof, the "
            "checkpoint and the anchor of an evidence bundle, trusting only the gateway key "
            "and the ledger. Exit 0 if valid, 1 if not (the failure is named). Missing "
            "messages are reported, not failed, unless --require-complete is given."
        ),
    )
    verify.add_argument("bundle", type=Path, metavar="BUNDLE", help="the bundle file")
    verify.add_argument(
        "--gateway-key",
        required=True,
        metavar="KEY",
        help="the gateway's C2SP verifier key (name+keyid+base64), or a file holding it",
    )
    ledger = verify.add_mutually_exclusive_group()
    ledger.add_argument(
        "--anchors", type=Path, metavar="FILE", help="a local anchor export to check against"
    )
    ledger.add_argument("--rpc", metavar="URL", help="an EVM JSON-RPC URL to check the anchor on")
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    verify.add_argument(
        "--require-complete",
        action="store_true",
        help="exit 1 unless every device's chain is complete over the period "
        "(no missing seq, both ends proven)",
    )
    verify.set_defaults(handler=_verify)
    report = subparsers.add_parser(
        "report",
        help="recompute the condition report from a bundle alone",
        description=(
            "Check the bundle's device signatures and hash chains, then compute the condition "
            "report (state of health, usage, abuse, completeness) from its messages."
        ),
    )
    report.add_argument("bundle", type=Path, metavar="BUNDLE", help="the bundle file")
    report.add_argument("--json", action="store_true", help="print the report's JSON")
    report.set_defaults(handler=_report)


def _load(command: str, path: Path) -> Bundle | int:
    try:
        data = path.read_bytes()
    except OSError as exc:
        print(f"voltproof {command}: error: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return _USAGE
    try:
        return parse_bundle(data)
    except VerificationError as exc:
        print(f"voltproof {command}: INVALID: {exc}", file=sys.stderr)
        return 1


def _gateway_key(text: str) -> str:
    path = Path(text)
    if "+" not in text and path.is_file():
        return path.read_text(encoding="utf-8").strip()
    return text.strip()


def _verify(args: argparse.Namespace) -> int:
    from .anchors.evm_checker import anchor_checker
    from .verify import verify_bundle

    bundle = _load("verify", args.bundle)
    if isinstance(bundle, int):
        return bundle
    export = None
    if args.anchors is not None:
        try:
            export = args.anchors.read_text(encoding="utf-8")
        except OSError as exc:
            print(f"voltproof verify: error: cannot read {args.anchors}: {exc}", file=sys.stderr)
            return _USAGE
    gateway_key = _gateway_key(args.gateway_key)
    anchors = anchor_checker(
        gateway_verifier_key=gateway_key, anchor_export=export, rpc_url=args.rpc
    )
    try:
        result = verify_bundle(bundle, gateway_verifier_key=gateway_key, anchors=anchors)
    except VerificationError as exc:
        print(f"voltproof verify: INVALID: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    incomplete = 1 if args.require_complete and not result.complete else 0
    if args.json:
        print(json.dumps(_report_dict(result), sort_keys=True, indent=2))
        return incomplete
    print(f"VALID: {result.asset_kind} {result.asset_id}, {result.messages} messages, "
          f"{result.registry_entries} registry entries, log {result.origin} "
          f"size {result.checkpoint_size}")  # fmt: skip
    print(f"anchor: {result.anchor.backend} size {result.anchor.tree_size}, "
          f"checked against: {result.anchor.source}")  # fmt: skip
    for chain in result.chains:
        gaps = ", ".join(f"{g.first}..{g.last}" for g in chain.gaps) or "none"
        print(f"  {chain.device}: seq {chain.first_seq}..{chain.last_seq}, received "
              f"{chain.received}/{chain.expected}, missing {gaps}, start "
              f"{'proven' if chain.start_proven else 'NOT proven'}, end "
              f"{'proven' if chain.end_proven else 'NOT proven'}")  # fmt: skip
    print("complete" if result.complete else "INCOMPLETE: see the missing seqs and ends above")
    return incomplete


def _report_dict(result: object) -> dict[str, object]:
    from .verify import VerificationReport

    assert isinstance(result, VerificationReport)
    return {
        "valid": True,
        "asset": {"id": result.asset_id, "kind": result.asset_kind},
        "origin": result.origin,
        "checkpoint_size": result.checkpoint_size,
        "messages": result.messages,
        "registry_entries": result.registry_entries,
        "anchor": {
            "backend": result.anchor.backend,
            "tree_size": result.anchor.tree_size,
            "source": result.anchor.source,
        },
        "chains": [
            {
                "device": c.device,
                "first_seq": c.first_seq,
                "last_seq": c.last_seq,
                "received": c.received,
                "expected": c.expected,
                "missing": [[g.first, g.last] for g in c.gaps],
                "start_proven": c.start_proven,
                "end_proven": c.end_proven,
            }
            for c in result.chains
        ],
        "complete": result.complete,
    }


def _report(args: argparse.Namespace) -> int:
    from .report import compute_report
    from .report.text import render_text
    from .verify import check_messages

    bundle = _load("report", args.bundle)
    if isinstance(bundle, int):
        return bundle
    try:
        checked = check_messages(bundle)
        report = compute_report(
            checked.payloads,
            asset_id=bundle.asset_id,
            asset_kind=bundle.asset_kind,
            from_ms=bundle.from_ms,
            to_ms=bundle.to_ms,
        )
    except VerificationError as exc:
        print(f"voltproof report: INVALID: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(report.to_json() if args.json else render_text(report))
    return 0
