"""``voltproof verify BUNDLE``: offline verification of an evidence bundle, for lessors.

Exit codes (:mod:`voltproof.cli.exits`): 0 valid, 1 invalid (the failure printed on stderr),
2 usage (including an unreadable bundle, key or anchor file, or a malformed verifier key),
3 reserved for valid but incomplete or not independently anchored (evidence v2).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ledger.bundle import Bundle, parse_bundle
from ledger.errors import VerificationError

from .exits import ExitCode, InvalidEvidenceError, UsageError
from .options import command, url
from .progress import stages


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``verify`` to the ``voltproof`` parser."""
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
    ledger.add_argument(
        "--rpc", type=url, metavar="URL", help="an EVM JSON-RPC URL to check the anchor on"
    )
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    verify.add_argument(
        "--require-complete",
        action="store_true",
        help="exit 1 unless every device's chain is complete over the period "
        "(no missing seq, both ends proven)",
    )
    command(verify, _verify)


def load_bundle(path: Path) -> Bundle:
    """The bundle in ``path``; an unreadable file is a usage error, a malformed one INVALID."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return parse_bundle(data)
    except VerificationError as exc:
        raise InvalidEvidenceError(exc) from exc


def _gateway_key(text: str) -> str:
    """The verifier key given as such or in a file; neither is a usage error, never INVALID."""
    from ledger.note import parse_verifier_key

    key = text.strip()
    if "+" not in text:
        path = Path(text)
        try:
            key = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError as exc:
            raise UsageError(
                f"--gateway-key {text}: no such file, and not a verifier key (name+keyid+base64)"
            ) from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--gateway-key {text}: cannot read the key file: {exc}") from exc
    try:
        parse_verifier_key(key)
    except (VerificationError, ValueError) as exc:
        raise UsageError(f"--gateway-key {text}: not a verifier key: {exc}") from exc
    return key


def _anchor_export(path: Path) -> str:
    """The text of a local anchor export; unreadable or not text is a usage error."""
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not an anchor export (not UTF-8 text)") from exc


def _verify(args: argparse.Namespace) -> int:
    from ledger.anchors.evm_checker import anchor_checker
    from ledger.verify import verify_bundle

    with stages(f"verify {args.bundle.name}", 2) as step:
        step("reading")
        bundle = load_bundle(args.bundle)
        key = _gateway_key(args.gateway_key)
        export = None if args.anchors is None else _anchor_export(args.anchors)
        anchors = anchor_checker(gateway_verifier_key=key, anchor_export=export, rpc_url=args.rpc)
        messages = sum(len(chain.messages) for chain in bundle.chains)
        step(f"checking {messages} messages, their proofs and the anchor")
        try:
            result = verify_bundle(bundle, gateway_verifier_key=key, anchors=anchors)
        except VerificationError as exc:
            raise InvalidEvidenceError(f"{type(exc).__name__}: {exc}") from exc
    # --require-complete keeps today's exit 1; evidence v2 gives ExitCode.INCOMPLETE (3).
    incomplete = ExitCode.FAILED if args.require_complete and not result.complete else ExitCode.OK
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
    from ledger.verify import VerificationReport

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
