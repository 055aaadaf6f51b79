"""``voltproof verify BUNDLE``: offline verification of an evidence bundle, for lessors.

Reads ``voltproof-bundle/1`` and ``/2`` (and says which it checked). Prints the summary
block first (version, asset, kind, period in ISO 8601 UTC, checkpoint, what the anchor was
checked against, witnesses, per chain its facts), then the verdict. Exit codes
(:mod:`voltproof.cli.exits`): 0 only for VALID, COMPLETE and independently anchored; 3 valid
but incomplete or not independently anchored (``--allow-incomplete`` / ``--allow-unanchored``
turn those into 0); 1 invalid (the failure named); 2 usage (including an unreadable bundle,
key or anchor file, or a malformed verifier key).

With ``--witness KEY`` the bundle's checkpoint must carry ``--witness-quorum`` valid
cosignatures by those witnesses (else INVALID, ``WitnessPolicyError``); met, it counts as an
independent anchor. The timeliness of every chain is printed; late data (``--late-after``,
default 15 min) is a WARNING and exit 3 unless ``--allow-late`` (``docs/witness.md``).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger.bundle import Bundle
from ledger.bundle_v2 import BundleV2, read_bundle
from ledger.errors import VerificationError

from .exits import CommandFailedError, ExitCode, InvalidEvidenceError, UsageError
from .key_options import key_text, verifier_key_option
from .options import command, parse_time, url
from .progress import stages
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
    """Add ``verify`` to the ``voltproof`` parser."""
    verify = subparsers.add_parser(
        "verify",
        help="verify an evidence bundle offline",
        description=(
            "Check every signature, registry fact, hash-chain link, inclusion proof, the "
            "checkpoint (and its device index) and the anchor of an evidence bundle, trusting "
            "only the gateway key, the ledger and the witnesses you name. Exit 0 only if VALID, "
            "COMPLETE and the anchor was checked against an export or node you obtained "
            "yourself, or the checkpoint carries your --witness quorum; 3 if valid but "
            "incomplete (a gap, an unproven end, a checkpoint your ledger export or witnesses "
            "show was stale before the period's end, or a voltproof-bundle/1, which cannot "
            "prove completeness), not independently anchored, or (with --witness) some data "
            "was committed late; 1 if invalid (the failure is named, e.g. a checkpoint your "
            "witnesses did not cosign); 2 for usage errors."
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
        "--anchors", type=Path, metavar="FILE",
        help="the operator's published anchor export (voltproof anchors export), obtained "
        "independently",
    )  # fmt: skip
    ledger.add_argument(
        "--rpc", type=url, metavar="URL", help="an EVM JSON-RPC URL to check the anchor on"
    )
    verify.add_argument(
        "--confirmations", type=int, default=None, metavar="N",
        help="with --rpc: the blocks (the anchor's included) that must be on top of the "
        "anchor for it to count (default 1; a chain that may reorganise needs more). Fewer "
        "is no forgery: VALID but not final yet, exit 3",
    )  # fmt: skip
    verify.add_argument("--from", dest="from_ms", type=parse_time, default=None, metavar="T",
                        help="the period start you expect (ISO 8601 or Unix ms): a bundle "
                        "starting later is INVALID")  # fmt: skip
    verify.add_argument("--to", dest="to_ms", type=parse_time, default=None, metavar="T",
                        help="the period end you expect: a bundle ending earlier is "
                        "INVALID")  # fmt: skip
    verify.add_argument("--allow-incomplete", action="store_true",
                        help="exit 0 even if a chain has a gap or an unproven end")  # fmt: skip
    verify.add_argument("--allow-unanchored", action="store_true",
                        help="exit 0 even if the anchor was checked only against the copy in "
                        "the bundle")  # fmt: skip
    verify.add_argument(
        "--manufacturer", action="append", default=[], metavar="KEY",
        help="a manufacturer's verifier key (repeatable): every enrolled device key must carry "
        "a birth certificate signed by one of them",
    )  # fmt: skip
    verify.add_argument(
        "--pin", action="append", default=[], metavar="ID=KEY",
        help="a device's first key as you obtained it yourself (base64 Ed25519, repeatable): "
        "the bundle's enrolment of ID must carry exactly this key",
    )  # fmt: skip
    verify.add_argument(
        "--pin-terminal", action="append", default=[], metavar="VIN=KEY",
        help="a GB/T 32960 terminal's SM2 public key as you obtained it yourself (hex X || Y, "
        "repeatable): the bundle's enrolment of VIN must carry exactly this key",
    )  # fmt: skip
    verify.add_argument(
        "--require-signed", action="store_true",
        help="refuse received-only evidence (GB/T 32960 2016 frames, signed by no vehicle "
        "key): every message must be signed by its device or terminal",
    )  # fmt: skip
    add_witness_options(verify)
    verify.add_argument("--allow-late", action="store_true",
                        help="exit 0 even if some data was committed late (it is still "
                        "flagged)")  # fmt: skip
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    command(verify, _verify)


def _trust_anchors(args: argparse.Namespace) -> tuple[list[Any], dict[str, bytes]]:
    """The ``--manufacturer`` keys and ``--pin`` pairs; a malformed one is a usage error."""
    from ledger.note import NoteError, parse_verifier_key
    from ledger.registry import PinFormatError, parse_pin

    makers = []
    for text in args.manufacturer:
        key = key_text("--manufacturer", text)
        try:
            makers.append(parse_verifier_key(key))
        except NoteError as exc:
            raise UsageError(f"--manufacturer {text}: not a verifier key: {exc}") from exc
    try:
        pins = dict(parse_pin(text) for text in args.pin)
    except PinFormatError as exc:
        raise UsageError(f"--pin: {exc}") from exc
    return makers, pins


def _terminal_pins(args: argparse.Namespace) -> dict[str, bytes]:
    """The ``--pin-terminal`` pairs; a malformed one is a usage error."""
    from ledger.verify_terminal import TerminalPinFormatError, parse_terminal_pin

    try:
        return dict(parse_terminal_pin(text) for text in args.pin_terminal)
    except TerminalPinFormatError as exc:
        raise UsageError(f"--pin-terminal: {exc}") from exc


def _check_terminal_pins(bundle: Bundle | BundleV2, pins: dict[str, bytes]) -> None:
    """Pinned terminal keys against the bundle's enrolments (a v1 bundle holds no terminal)."""
    from ledger.verify_terminal import check_terminal_pins

    if isinstance(bundle, BundleV2):
        check_terminal_pins(bundle, pins)


def _check_enrolments(bundle: Bundle | BundleV2, makers: list[Any], pins: dict[str, bytes]) -> None:
    """Every enrolment in the bundle against the trusted manufacturers and the pins.

    Raises :class:`~ledger.errors.VerificationError` (INVALID) naming the device.
    """
    from ledger.registry import check_enrolments, check_registry

    if isinstance(bundle, BundleV2):
        leaves = {(leaf.index, leaf.data) for d in bundle.devices for leaf in d.registry}
        scope = [d.device for d in bundle.devices]
    else:
        leaves = {(leaf.index, leaf.data) for leaf in bundle.registry}
        scope = [d.device for d in bundle.devices]
    history = check_registry(sorted(leaves), operator_key=bundle.operator_key, scope=scope)
    check_enrolments(history, manufacturers=makers, pins=pins)


def load_bundle(path: Path) -> Bundle | BundleV2:
    """The bundle in ``path``; an unreadable file is a usage error, a malformed one INVALID."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return read_bundle(data)
    except VerificationError as exc:
        raise InvalidEvidenceError(exc) from exc


def _gateway_key(text: str) -> str:
    """The verifier key given as such or in a file; neither is a usage error, never INVALID."""
    return verifier_key_option(text, "--gateway-key")


def _anchor_export(path: Path) -> str:
    """The text of a local anchor export; a file that cannot be read, or that is not a
    ``voltproof-local-anchors/1`` document, is a usage error (never INVALID: the bundle was
    not checked against anything). An export that reads but does not hold the bundle's
    anchor, or whose entries do not verify, is INVALID when the bundle is checked."""
    from ledger.anchors.errors import AnchorExportError
    from ledger.anchors.local_verify import parse_export

    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not an anchor export (not UTF-8 text)") from exc
    try:
        parse_export(text)
    except AnchorExportError as exc:
        raise UsageError(f"{path} is not an anchor export: {exc}") from exc
    return text


V1_NOT_PROVABLE = (
    "voltproof-bundle/1 carries no device index: it cannot prove that it holds every chain "
    "and message of the asset (ask for a v2 bundle: voltproof bundle without --format 1)"
)


def _iso(ms: int) -> str:
    """``ms`` as ISO 8601 UTC (millisecond precision when needed); a time beyond what a
    calendar date can say (an open period's far end) as ``+inf`` with its milliseconds."""
    try:
        moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return f"{'+' if ms > 0 else '-'}inf ({ms} ms)"
    text = moment.isoformat(timespec="milliseconds" if ms % 1000 else "seconds")
    return text.replace("+00:00", "Z")


def _check(
    bundle: Bundle | BundleV2, args: argparse.Namespace, key: str, anchors: Any
) -> dict[str, Any]:
    """Verify ``bundle`` (either version); the facts as one JSON-ready object."""
    from ledger.verify import ChainReport, verify_bundle
    from ledger.verify_terminal import SIGNED_BY_DEVICE
    from ledger.verify_v2 import (
        INDEPENDENT_SOURCES,
        ChainFacts,
        check_expected_period,
        verify_bundle_v2,
    )

    check_expected_period(
        from_ms=bundle.from_ms, to_ms=bundle.to_ms, expected_from_ms=args.from_ms,
        expected_to_ms=args.to_ms,
    )  # fmt: skip
    chains: list[tuple[str, str, int, int, ChainFacts | ChainReport]]
    if isinstance(bundle, BundleV2):
        v2 = verify_bundle_v2(
            bundle, gateway_verifier_key=key, anchors=anchors, require_signed=args.require_signed
        )
        evidence = v2.evidence
        origin, size, anchor, chains = (
            v2.origin,
            v2.checkpoint_size,
            v2.anchor,
            [(c.device, c.role, c.from_ms, c.to_ms, c) for c in v2.chains],
        )
        messages, registry = v2.messages, v2.registry_entries
        later = v2.later_anchor
        absent = [
            {"device": a.device, "role": a.role, "from_ms": a.from_ms, "to_ms": a.to_ms,
             "from": _iso(a.from_ms), "to": _iso(a.to_ms), "status": a.status}
            for a in v2.absent
        ]  # fmt: skip
    else:
        later = None
        absent = []
        v1 = verify_bundle(bundle, gateway_verifier_key=key, anchors=anchors)
        origin, size, anchor = v1.origin, v1.checkpoint_size, v1.anchor
        chains = [
            (c.device, "asset" if c.device == bundle.asset_id else "host", bundle.from_ms,
             bundle.to_ms, c)
            for c in v1.chains
        ]  # fmt: skip
        messages, registry = v1.messages, v1.registry_entries
        evidence = {SIGNED_BY_DEVICE: messages} if messages else {}
    witnessed, seen = _witnessed(bundle, args)
    if seen is not None:
        # An end proven by the index head holds as of the checkpoint the witnesses saw.
        chains = [
            (device, role, start, end, _stale(c, seen, args.late_after))
            for device, role, start, end, c in chains
        ]
    facts = [
        {
            "device": device, "role": role, "from_ms": start, "to_ms": end, "from": _iso(start),
            "to": _iso(end), "first_seq": c.first_seq, "last_seq": c.last_seq,
            "received": c.received, "expected": c.expected,
            "missing": [[g.first, g.last] for g in c.gaps], "start_proven": c.start_proven,
            "end_proven": c.end_proven, "complete": c.complete,
            "end_by": getattr(c, "end_by", None),
            "end_note": getattr(c, "end_note", ""),
            "evidence": dict(getattr(c, "evidence", {SIGNED_BY_DEVICE: c.received})),
        }
        for device, role, start, end, c in chains
    ]  # fmt: skip
    return {
        "format": bundle.format,
        "valid": True,
        "asset": {"id": bundle.asset_id, "kind": bundle.asset_kind},
        "period": {"from_ms": bundle.from_ms, "to_ms": bundle.to_ms,
                   "from": _iso(bundle.from_ms), "to": _iso(bundle.to_ms)},
        "checkpoint": {"origin": origin, "size": size,
                       "anchored_at_ms": anchor.anchored_at_ms,
                       "anchored_at": None if anchor.anchored_at_ms is None
                       else _iso(anchor.anchored_at_ms)},
        "anchor": {"backend": anchor.backend, "tree_size": anchor.tree_size,
                   "source": anchor.source,
                   "independent": anchor.source in INDEPENDENT_SOURCES},
        "later_anchor": None if later is None else {
            "tree_size": later.tree_size, "anchored_at_ms": later.anchored_at_ms,
            "anchored_at": _iso(later.anchored_at_ms)},
        "witnesses": [] if witnessed is None else witnessed["counted"],
        **({} if witnessed is None else {"witness_policy": witnessed,
                                         "timeliness": witnessed.pop("timeliness")}),
        "messages": messages,
        "evidence": evidence,
        "registry_entries": registry,
        "chains": facts,
        "absent": absent,
        "registry": _registry_facts(bundle),
        # A v1 bundle has no device index: nothing proves it holds every chain and every
        # message of the asset (an operator could leave the asset's chain out, or a pack's
        # host), so its completeness is never proven against the operator.
        "complete": isinstance(bundle, BundleV2) and all(c["complete"] for c in facts),
        "completeness_note": "" if isinstance(bundle, BundleV2) else V1_NOT_PROVABLE,
    }  # fmt: skip


def _registry_facts(bundle: Bundle | BundleV2) -> list[dict[str, Any]]:
    """What the registry entries of a v2 bundle's devices establish, per device: enrolment,
    keys, revocation and the ``replace`` links (a lessor of a revoked device learns its
    successor; one of a successor, the device whose history it carries on). v1: none."""
    from ledger.registry import check_registry

    if not isinstance(bundle, BundleV2):
        return []
    leaves = sorted({(leaf.index, leaf.data) for d in bundle.devices for leaf in d.registry})
    scope = sorted((d.device for d in bundle.devices), key=lambda d: (d != bundle.asset_id, d))
    history = check_registry(leaves, operator_key=bundle.operator_key, scope=scope)
    return [
        {"device": h.device, "kind": h.kind, "enrolled_leaf": h.enrolled_index,
         "keys": len(h.keys), "birth_certificate": h.birth is not None,
         "revoked_leaf": h.revoked_index, "replaced_by": h.replaced_by,
         "replaced_leaf": h.replaced_index, "replaces": h.replaces,
         "replaces_leaf": h.replaces_index}
        for h in (history.devices[d] for d in scope if d in history.devices)
    ]  # fmt: skip


def _registry_line(r: dict[str, Any], carried: set[str]) -> str:
    """One device's registry facts as the summary prints them (``carried``: the devices
    whose predecessor chain is in the bundle)."""
    parts = [f"enrolled at leaf {r['enrolled_leaf']}"
             + (" with a birth certificate" if r["birth_certificate"] else ""),
             f"{r['keys']} key{'' if r['keys'] == 1 else 's'}"]  # fmt: skip
    if r["replaces"] is not None:
        where = ("this bundle (predecessor chain)" if r["replaces"] in carried
                 else f"{r['replaces']}'s bundle")  # fmt: skip
        parts.append(f"replaces {r['replaces']} (leaf {r['replaces_leaf']}): its history is "
                     f"in {where}")  # fmt: skip
    if r["revoked_leaf"] is not None:
        parts.append(f"revoked at leaf {r['revoked_leaf']}")
    if r["replaced_by"] is not None:
        parts.append(f"replaced by {r['replaced_by']} at leaf {r['replaced_leaf']}")
    return f"{r['device']} ({r['kind']}): {', '.join(parts)}"


def _stale(c: Any, seen_s: int, tolerance_ms: int) -> Any:
    """A v2 chain's facts with the witnesses' stale-checkpoint rule applied (v1: as is)."""
    from ledger.verify_v2 import ChainFacts, stale_after

    if not isinstance(c, ChainFacts):
        return c
    return stale_after(c, seen_ms=seen_s * 1000, tolerance_ms=tolerance_ms, by="the witness quorum")


def _witnessed(
    bundle: Bundle | BundleV2, args: argparse.Namespace
) -> tuple[dict[str, Any] | None, int | None]:
    """The witness policy's outcome and the timeliness, and the time (POSIX s) the quorum
    last saw the bundle's checkpoint as the log's newest (both ``None`` without ``--witness``).

    Without ``--witness`` a v2 bundle's timeline is still checked for consistency with its
    checkpoint (a broken one is INVALID), but it proves nothing to a verifier trusting no
    witness.
    """
    from ledger.bundle_witness import bundle_checkpoint, check_timeline

    policy = args.witness_keys
    if policy is None:
        if isinstance(bundle, BundleV2) and bundle.timeline:
            check_timeline(bundle_checkpoint(bundle), bundle.timeline)
        return None, None
    report = check_witnesses(bundle, policy, args.late_after)
    return {
        **witness_json(report),
        "timeliness": timeliness_json(report),
        "_lines": witness_lines(report),
        "_warnings": late_warnings(report),
    }, report.seen_s


def _confirmations(args: argparse.Namespace) -> int:
    """``--confirmations``: at least 1, and only with ``--rpc`` (a usage error otherwise)."""
    if args.confirmations is None:
        return 1
    if args.rpc is None:
        raise UsageError("--confirmations counts blocks on an EVM chain: give it with --rpc URL")
    if args.confirmations < 1:
        raise UsageError(f"--confirmations {args.confirmations}: must be 1 or more")
    return int(args.confirmations)


def _verdict(facts: dict[str, Any], args: argparse.Namespace) -> tuple[str, ExitCode]:
    """The verdict line and the exit code for a VALID bundle.

    A witness quorum met on the bundle's checkpoint is an independent anchor; late data is
    exit 3 (like INCOMPLETE: valid, but a person should look) unless ``--allow-late``.
    """
    problems = []
    code = ExitCode.OK
    witnessed = "witness_policy" in facts
    if not facts["complete"]:
        problems.append("INCOMPLETE")
        code = code if args.allow_incomplete else ExitCode.INCOMPLETE
    if facts["anchor"]["source"] == "evm rpc, not final" and not witnessed:
        problems.append(
            f"anchor NOT final yet (fewer than {_confirmations(args)} confirmations: "
            "verify again later)"
        )
        code = code if args.allow_unanchored else ExitCode.INCOMPLETE
    elif not facts["anchor"]["independent"] and not witnessed:
        problems.append("anchor NOT independently checked")
        code = code if args.allow_unanchored else ExitCode.INCOMPLETE
    if witnessed and facts["timeliness"]["late"]:
        problems.append(f"LATE DATA ({facts['timeliness']['late']} message(s))")
        code = code if args.allow_late else ExitCode.INCOMPLETE
    if not problems:
        how = (
            "witnessed"
            if witnessed and not facts["anchor"]["independent"]
            else ("independently anchored and witnessed" if witnessed else "independently anchored")
        )
        return f"VALID, COMPLETE, {how}", code
    allowed = " (allowed by option)" if code is ExitCode.OK else ""
    return f"VALID but {' and '.join(problems)}{allowed}", code


def _print_header(bundle: Bundle | BundleV2) -> None:
    print(f"bundle:      {bundle.format}")
    print(f"asset:       {bundle.asset_id} ({bundle.asset_kind})")
    print(f"period:      {_iso(bundle.from_ms)} .. {_iso(bundle.to_ms)} "
          f"[{bundle.from_ms}, {bundle.to_ms}) ms")  # fmt: skip


def _print_facts(facts: dict[str, Any]) -> None:
    checkpoint, anchor = facts["checkpoint"], facts["anchor"]
    print(f"checkpoint:  {checkpoint['origin']} size {checkpoint['size']}, "
          f"{_checkpoint_time(checkpoint, anchor)}")  # fmt: skip
    where = (
        anchor["source"]
        if anchor["independent"] or anchor["source"] == "evm rpc, not final"
        else (f"NOT independently checked ({anchor['source']})")
    )
    print(f"anchor:      {anchor['backend']} size {anchor['tree_size']}, checked against: {where}")
    if facts["later_anchor"] is not None:
        later = facts["later_anchor"]
        print(f"ledger:      a larger tree (size {later['tree_size']}) was anchored at "
              f"{later['anchored_at']}")  # fmt: skip
    policy = facts.get("witness_policy")
    if policy is None:
        print("witnesses:   not checked (no --witness given)")
    else:
        for line in policy["_lines"]:
            print(line)
    print(f"messages:    {facts['messages']}, registry entries {facts['registry_entries']}")
    print(f"evidence:    {_evidence_line(facts['evidence'])}")
    carried = {c["device"] for c in facts["chains"] if c["role"] == "predecessor"}
    for number, entry in enumerate(facts["registry"]):
        print(f"{'registry:' if number == 0 else '':<13}{_registry_line(entry, carried)}")
    for c in facts["chains"]:
        gaps = ", ".join(f"{a}..{b}" for a, b in c["missing"]) or "none"
        seqs = "none" if c["first_seq"] is None else f"{c['first_seq']}..{c['last_seq']}"
        print(f"  {c['role']} {c['device']} {c['from']} .. {c['to']}: seq {seqs}, "
              f"received {c['received']}/{c['expected']}, missing {gaps}, "
              f"start {'proven' if c['start_proven'] else 'NOT proven'}, end "
              f"{'proven' if c['end_proven'] else 'NOT proven'}")  # fmt: skip
        if c["end_note"]:
            print(f"    end: {c['end_note']}")
    for a in facts["absent"]:
        print(f"  {a['role']} {a['device']} {a['from']} .. {a['to']}: {a['status']}")
    if facts["completeness_note"]:
        print(f"completeness: NOT provable: {facts['completeness_note']}")


def _checkpoint_time(checkpoint: dict[str, Any], anchor: dict[str, Any]) -> str:
    """When the ledger the anchor was checked against recorded it (the checkpoint's time)."""
    if checkpoint["anchored_at"] is None:
        return "time unknown (the anchor was not checked)"
    within = "" if anchor["tree_size"] == checkpoint["size"] else (
        f" (within the anchored tree of size {anchor['tree_size']})")  # fmt: skip
    return f"anchored {checkpoint['anchored_at']}{within}"


def _evidence_line(evidence: dict[str, int]) -> str:
    """Messages per evidence label, received-only ones explained (docs/protocol.md)."""
    line = ", ".join(f"{count} {label}" for label, count in sorted(evidence.items()))
    if evidence.get("received-only"):
        line += (" (received-only: GB/T 32960 2016 frames, signed by no vehicle key; they "
                 "prove only that the gateway logged them)")  # fmt: skip
    return line or "no messages"


def _print_invalid(
    args: argparse.Namespace,
    bundle: Bundle | BundleV2 | None,
    invalid: InvalidEvidenceError,
    *,
    error: str | None = None,
    reason: str | None = None,
) -> None:
    """With ``--json``, the INVALID verdict as a JSON object on stdout (the one-line reason
    still goes to stderr): what the bundle claims, the error's name and its reason."""
    if not args.json:
        return
    cause = invalid.__cause__
    facts: dict[str, Any] = {
        "format": None if bundle is None else bundle.format,
        "valid": False,
        "complete": False,
        "asset": None if bundle is None else {"id": bundle.asset_id, "kind": bundle.asset_kind},
        "period": None if bundle is None else {
            "from_ms": bundle.from_ms, "to_ms": bundle.to_ms, "from": _iso(bundle.from_ms),
            "to": _iso(bundle.to_ms)},
        "error": error or (type(cause).__name__ if cause is not None else None),
        "reason": reason or (str(cause) if cause is not None else str(invalid)),
        "verdict": f"INVALID: {invalid}",
        "exit": int(ExitCode.FAILED),
    }  # fmt: skip
    print(json.dumps(facts, sort_keys=True, indent=2))


def _verify(args: argparse.Namespace) -> int:
    from ledger.anchors.errors import AnchorError
    from ledger.anchors.evm_checker import anchor_checker

    with stages(f"verify {args.bundle.name}", 2) as step:
        step("reading")
        try:
            bundle = load_bundle(args.bundle)
        except InvalidEvidenceError as exc:
            _print_invalid(args, None, exc)
            raise
        # Every option is checked before anything is printed: a usage error is all it says.
        key = _gateway_key(args.gateway_key)
        args.witness_keys = witness_policy(args)  # a bad key is a usage error before any work
        makers, pins = _trust_anchors(args)
        terminal_pins = _terminal_pins(args)
        export = None if args.anchors is None else _anchor_export(args.anchors)
        anchors = anchor_checker(
            gateway_verifier_key=key, anchor_export=export, rpc_url=args.rpc,
            confirmations=_confirmations(args),
        )  # fmt: skip
        if not args.json:
            _print_header(bundle)
        messages = sum(len(chain.messages) for chain in bundle.chains)
        step(f"checking {messages} messages, their proofs and the anchor")
        try:
            facts = _check(bundle, args, key, anchors)
            if terminal_pins:
                _check_terminal_pins(bundle, terminal_pins)
                facts["terminal_pins"] = sorted(terminal_pins)
            if makers or pins:
                _check_enrolments(bundle, makers, pins)
                facts["manufacturers"] = len(makers)
                facts["pins"] = sorted(pins)
        except VerificationError as exc:
            invalid = InvalidEvidenceError(f"{type(exc).__name__}: {exc}")
            _print_invalid(args, bundle, invalid, error=type(exc).__name__, reason=str(exc))
            raise invalid from exc
        except AnchorError as exc:  # the ledger could not answer: no verdict, not INVALID
            raise CommandFailedError(f"the ledger could not be read: {exc}") from exc
    verdict, code = _verdict(facts, args)
    received_only = facts["evidence"].get("received-only", 0)
    if received_only:
        verdict += f"; {received_only} of {facts['messages']} messages received-only"
    policy = facts.get("witness_policy", {})
    warnings = policy.pop("_warnings", [])
    if args.json:
        policy.pop("_lines", None)
        print(json.dumps({**facts, "warnings": warnings, "verdict": verdict, "exit": int(code)},
                         sort_keys=True, indent=2))  # fmt: skip
        return code
    _print_facts(facts)
    for warning in warnings:
        print(warning)
    print(verdict)
    return code
