"""What ``voltproof demo`` injected and what the gateway made of it (pure text, no I/O).

The simulator counts what it injected (``sim-summary.json``: attacks by kind, devices taken
offline, pack swaps, historical messages backfilled); the gateway counts what it decided
(Prometheus: messages accepted, duplicates, quarantined by reason). These functions put the
two side by side, for the progress line while the demo runs and the summary at its end.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from firmware_sim.sim.fleet import Fleet

ATTACK_OUTCOME: Final = {
    "forged_signature": "bad_signature",
    "replay": "duplicate",
    "reorder": "seq_jump",
    "fork": "fork",
    "wrong_topic": "id_mismatch",
    "wrong_kid": "id_mismatch",
    "garbage": "malformed",
    "oversized": "oversize",
}
"""The gateway's verdict each attack kind of the simulator is built to provoke."""

_REJECTED = "voltproof_messages_rejected_total"


def verdicts(metrics: Mapping[str, float]) -> dict[str, int]:
    """The gateway's counts by verdict: each quarantine reason, ``duplicate`` and ``seq_jump``."""
    counts: dict[str, int] = {}
    for name, value in metrics.items():
        if name.startswith(_REJECTED + "{") and 'reason="' in name:
            reason = name.split('reason="', 1)[1].split('"', 1)[0]
            counts[reason] = counts.get(reason, 0) + int(value)
    counts["duplicate"] = int(metrics.get("voltproof_messages_duplicate_total", 0))
    counts["seq_jump"] = int(metrics.get("voltproof_seq_jumps_total", 0))
    return {k: v for k, v in counts.items() if v}


def schedule(fleet: Fleet) -> list[str]:
    """What the fleet file will inject and when."""
    lines = []
    attacks = {k: getattr(fleet.attacks, k) for k in ATTACK_OUTCOME if getattr(fleet.attacks, k)}
    if attacks:
        listed = ", ".join(f"{k} {v}" for k, v in attacks.items())
        lines.append(f"at {fleet.attacks.at_s:.0f} s: attacks ({listed})")
    offline = fleet.faults.offline
    if offline.fraction:
        lines.append(
            f"at {offline.start_s:.0f} s: {offline.fraction:.0%} of the devices go offline for "
            f"{offline.duration_s:.0f} s, then backfill from their outboxes"
        )
    if fleet.faults.pack_swaps:
        lines.append(
            f"at {fleet.faults.pack_swap_at_s:.0f} s: {fleet.faults.pack_swaps} pack swap(s) "
            "(a spare pack replaces a bus's pack; each pack's chain follows it)"
        )
    return lines


def progress_verdicts(metrics: Mapping[str, float]) -> str:
    """The gateway's non-accepting verdicts so far, for the progress line (empty if none)."""
    counts = verdicts(metrics)
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def summary_lines(sim: Mapping[str, Any], metrics: Mapping[str, float]) -> list[str]:
    """The end-of-demo account: each injection and the gateway's verdict on it."""
    counts = verdicts(metrics)
    attacks: Mapping[str, int] = sim.get("attacks", {})
    faults: Mapping[str, int] = sim.get("faults", {})
    lines = ["what was injected, and what became of it:"]
    if not attacks:
        lines.append("  attacks: none were injected (the run ended before they were due)")
    for kind, sent in sorted(attacks.items()):
        verdict = ATTACK_OUTCOME.get(kind, "?")
        seen = counts.get(verdict, 0)
        lines.append(
            f"  attack {kind}: {sent} sent -> gateway counted {seen} as {verdict}"
            + ("" if seen >= sent else "  (FEWER than sent: see logs/gateway.log)")
        )
    offline = int(faults.get("offline", 0))
    historical = int(sim.get("historical", 0))
    if offline:
        lines.append(
            f"  offline: {offline} device(s) lost their uplink -> {historical} messages "
            "backfilled from their outboxes (flagged historical) and logged"
        )
    else:
        lines.append("  offline: no device was taken offline (the run ended before it was due)")
    swaps = int(faults.get("pack_swap", 0))
    if swaps:
        lines.append(
            f"  pack swap: {swaps} -> each pack's chain continues unbroken under its new bus "
            "(a pack's bundle carries both buses' messages)"
        )
    else:
        lines.append("  pack swap: none (the run ended before it was due)")
    accepted = int(metrics.get("voltproof_messages_accepted_total", 0))
    lines.append(f"  accepted into the log: {accepted} messages")
    return lines
