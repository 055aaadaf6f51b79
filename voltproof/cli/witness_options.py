"""``--witness KEY``, ``--witness-quorum K``, ``--late-after D``: shared by verify and report.

The keys are the witnesses' cosignature/v1 vkeys (what ``voltproof witness keys new`` prints
and writes), given as such or as a file holding one, as ``--gateway-key`` is. This module
turns the options into the policy, and a :class:`~ledger.bundle_witness.WitnessReport` into
the lines and the JSON both commands print (``docs/witness.md``, "Bundles and verify").
"""

from __future__ import annotations

import argparse
import re
import time
from datetime import UTC, datetime
from typing import Any, Final

from ledger.bundle import Bundle
from ledger.bundle_v2 import BundleV2
from ledger.bundle_witness import WitnessReport, check_bundle_witnesses
from ledger.cosignature import CosignatureError, WitnessKey, parse_witness_key
from ledger.timeliness import DEFAULT_LATE_MS

from .exits import UsageError
from .key_options import key_text

_PRIVATE: Final = "PRIVATE+KEY+"
"""How a private key file's text starts (``ledger.keys``): never echoed back."""

WITNESS_SKEW_S: Final = 60
"""A cosignature dated more than this after the verifier's clock does not count."""

_DURATION: Final = re.compile(r"(\d+)(ms|s|m|h|d)?")
_UNIT_MS: Final = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_duration(text: str) -> int:
    """Milliseconds from ``90s``, ``15m``, ``2h``, ``1d``, ``500ms`` or bare seconds."""
    found = _DURATION.fullmatch(text.strip())
    if found is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration (a whole number with ms, s, m, h or d: 15m)"
        )
    return int(found.group(1)) * _UNIT_MS[found.group(2) or "s"]


def add_witness_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--witness``, ``--witness-quorum`` and ``--late-after`` to ``parser``."""
    parser.add_argument(
        "--witness", action="append", default=[], metavar="KEY",
        help="a witness you trust: its vkey (name+keyid+base64, as 'voltproof witness keys "
        "new' prints it) or a file holding it (repeatable). The bundle's checkpoint must carry "
        "--witness-quorum valid cosignatures by these witnesses",
    )  # fmt: skip
    parser.add_argument(
        "--witness-quorum", type=int, default=None, metavar="K",
        help="how many of the --witness keys must have cosigned (default 1)",
    )  # fmt: skip
    parser.add_argument(
        "--late-after", type=parse_duration, default=DEFAULT_LATE_MS, metavar="DURATION",
        help="data proven to exist more than this after its measurement time is late, and "
        "a checkpoint the witnesses last saw more than this before a period's end is stale "
        "(default 15m; e.g. 90s, 2h, 1d)",
    )  # fmt: skip


def _key(text: str) -> WitnessKey:
    key = text.strip()
    if key.startswith(_PRIVATE):
        raise UsageError(
            "--witness: that is a private key; give the witness's vkey "
            "('voltproof witness keys show FILE' prints it)"
        )
    key = key_text("--witness", text, what="witness key")
    if key.startswith(_PRIVATE):
        raise UsageError(
            f"--witness {text}: that file holds a private key; give the witness's vkey "
            "('voltproof witness keys show FILE' prints it)"
        )
    try:
        return parse_witness_key(key)
    except CosignatureError as exc:
        raise UsageError(f"--witness {text}: not a witness key: {exc}") from exc


def witness_policy(args: argparse.Namespace) -> tuple[list[WitnessKey], int] | None:
    """The trusted witness keys and the quorum, or ``None`` without ``--witness``."""
    if not args.witness:
        if args.witness_quorum is not None:
            raise UsageError("--witness-quorum needs at least one --witness KEY")
        return None
    keys = {str(key): key for key in (_key(text) for text in args.witness)}
    quorum = 1 if args.witness_quorum is None else args.witness_quorum
    if not 1 <= quorum <= len(keys):
        raise UsageError(
            f"--witness-quorum {quorum}: must be between 1 and the {len(keys)} distinct "
            "--witness key(s)"
        )
    return list(keys.values()), quorum


def check_witnesses(
    bundle: Bundle | BundleV2, policy: tuple[list[WitnessKey], int], late_ms: int
) -> WitnessReport:
    """The policy applied to a verified bundle, with this machine's clock plus the skew."""
    keys, quorum = policy
    return check_bundle_witnesses(
        bundle, keys=keys, quorum=quorum, not_after=int(time.time()) + WITNESS_SKEW_S,
        late_ms=late_ms,
    )  # fmt: skip


def _iso_s(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat().replace("+00:00", "Z")


def human_ms(ms: int | None) -> str:
    """A delay in the largest fitting unit (``-1.2 s``, ``6 s``, ``2 h 0 min``, ``30 d 1 h``)."""
    if ms is None:
        return "-"
    sign, ms = ("-", -ms) if ms < 0 else ("", ms)
    if ms < 10_000:
        return f"{sign}{ms / 1000:.1f} s"
    seconds = ms // 1000
    if seconds < 60:
        return f"{sign}{seconds} s"
    if seconds < 3600:
        rest = f" {seconds % 60} s" if seconds % 60 else ""
        return f"{sign}{seconds // 60} min{rest}"
    if seconds < 86_400:
        return f"{sign}{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{sign}{seconds // 86_400} d {seconds % 86_400 // 3600} h"


def witness_json(report: WitnessReport) -> dict[str, Any]:
    """The policy's outcome and the timeliness as JSON-ready objects."""
    return {
        "quorum": report.quorum,
        "met": True,
        "counted": [
            {"key": key, "name": key.split("+", 1)[0], "timestamp": stamp, "time": _iso_s(stamp)}
            for key, stamp in sorted(report.counted.items())
        ],
        "not_counted": [{"key": key, "reason": why} for key, why in sorted(report.refused.items())],
        "checkpoint_proven_at": _iso_s(report.checkpoint_time_s),
        "timeline": {
            "entries": report.timeline_entries,
            "refused": [
                {"position": item.position, "reason": item.reason}
                for item in report.timeline_refused
            ],
        },
    }


def timeliness_json(report: WitnessReport) -> dict[str, Any]:
    """Per chain the delays from measurement to proven existence, and the late data."""
    return {
        "late_after_ms": report.late_ms,
        "late": report.late,
        "impossible": report.impossible,
        "flagged": report.late > 0,
        "chains": [
            {
                "device": c.chain, "messages": c.count, "unproven": c.unproven,
                "p50_ms": c.p50_ms, "p99_ms": c.p99_ms, "max_ms": c.max_ms, "late": c.late,
                "first_late_seq": c.first_late_seq, "impossible": c.impossible,
                "flagged": c.flagged,
            }
            for c in report.delays.values()
        ],
    }  # fmt: skip


def witness_lines(report: WitnessReport) -> list[str]:
    """The summary lines: who cosigned, the timeline, per chain the delays."""
    names = ", ".join(
        f"{key.split('+', 1)[0]} at {_iso_s(stamp)}"
        for key, stamp in sorted(report.counted.items())
    )
    lines = [
        f"witnesses:   quorum {report.quorum} of {len(report.keys)} met on the bundle's "
        f"checkpoint: {names}"
    ]
    lines += [
        f"  not counted: {key.split('+', 1)[0]}: {why}"
        for key, why in sorted(report.refused.items())
    ]
    refused = len(report.timeline_refused)
    if report.timeline_entries:
        lines.append(
            f"timeline:    {report.timeline_entries} cosigned checkpoint(s) first covering the "
            "messages" + (f", {refused} prove nothing to you (not your quorum)" if refused else "")
        )
    else:
        lines.append(
            "timeline:    none in the bundle: every message is bounded by the bundle's "
            "checkpoint alone, so the delays are upper bounds (a v2 bundle carries one)"
        )
    lines.append(
        f"timeliness:  delay from measurement (t) to proven existence; late after "
        f"{human_ms(report.late_ms)}"
    )
    for c in report.delays.values():
        lines.append(
            f"  {c.chain}: {c.count} message(s), p50 {human_ms(c.p50_ms)}, p99 "
            f"{human_ms(c.p99_ms)}, max {human_ms(c.max_ms)}, late {c.late}, unproven "
            f"{c.unproven}, before their t {c.impossible}{'  LATE' if c.flagged else ''}"
        )
    return lines


def late_warnings(report: WitnessReport) -> list[str]:
    """One WARNING line per chain with late data, and one per chain proven before its t."""
    lines = []
    for c in report.delays.values():
        if c.flagged:
            lines.append(
                f"WARNING: LATE DATA: {c.chain}: {c.late} of {c.count} message(s) were proven "
                f"to exist only more than {human_ms(c.late_ms)} after their measurement time "
                f"(max {human_ms(c.max_ms)}, first late seq {c.first_late_seq}). A backfill "
                "after an outage explains delays up to the device's offline window; data "
                "committed long after its t may be a backdated history."
            )
        if c.impossible:
            lines.append(
                f"WARNING: {c.chain}: {c.impossible} message(s) were proven to exist before "
                "their own t (the device's clock runs ahead, or its t is false)"
            )
    return lines
