"""The demo says what it injected (attacks, offline devices, pack swap) and what became of it."""

from __future__ import annotations

from firmware_sim.sim.attacks import ATTACK_KINDS
from firmware_sim.sim.fleet import Attacks, Faults, Fleet, OfflineFault
from voltproof.demo import progress_line
from voltproof.demo_report import ATTACK_OUTCOME, schedule, summary_lines, verdicts

METRICS = {
    'voltproof_messages_rejected_total{reason="bad_signature"}': 1.0,
    'voltproof_messages_rejected_total{reason="id_mismatch"}': 2.0,
    "voltproof_messages_duplicate_total": 1.0,
    "voltproof_messages_accepted_total": 500.0,
}


def test_every_attack_kind_has_the_verdict_it_provokes() -> None:
    """No attack of the simulator is left out of the account."""
    assert set(ATTACK_OUTCOME) == set(ATTACK_KINDS)


def test_verdicts_read_the_gateway_metrics() -> None:
    """Quarantine reasons and duplicates are counted; zero counts are left out."""
    assert verdicts(METRICS) == {"bad_signature": 1, "id_mismatch": 2, "duplicate": 1}


def test_schedule_names_each_injection() -> None:
    """Before the run the demo says what it will inject and when."""
    fleet = Fleet(
        spare_packs=1,
        faults=Faults(offline=OfflineFault(fraction=0.1, start_s=30, duration_s=40),
                      pack_swaps=1, pack_swap_at_s=60),
        attacks=Attacks(at_s=20, forged_signature=1, garbage=2),
    )  # fmt: skip
    lines = schedule(fleet)
    assert lines[0] == "at 20 s: attacks (forged_signature 1, garbage 2)"
    assert lines[1].startswith("at 30 s: 10% of the devices go offline for 40 s")
    assert lines[2].startswith("at 60 s: 1 pack swap(s)")


def test_summary_pairs_each_injection_with_its_outcome() -> None:
    """Each attack sent, the offline devices and the swap get a line with the gateway's verdict."""
    sim = {
        "attacks": {"forged_signature": 1, "wrong_kid": 1, "garbage": 1},
        "faults": {"offline": 2, "pack_swap": 1},
        "historical": 37,
    }
    text = "\n".join(summary_lines(sim, METRICS))
    assert "attack forged_signature: 1 sent -> gateway counted 1 as bad_signature" in text
    assert "attack wrong_kid: 1 sent -> gateway counted 2 as id_mismatch" in text
    assert "attack garbage: 1 sent -> gateway counted 0 as malformed  (FEWER than sent" in text
    assert "offline: 2 device(s) lost their uplink -> 37 messages backfilled" in text
    assert "pack swap: 1 -> each pack's chain continues" in text
    assert "accepted into the log: 500 messages" in text


def test_summary_of_a_run_too_short_for_the_injections() -> None:
    """A run that ended before the injections says so instead of staying silent."""
    text = "\n".join(summary_lines({}, {}))
    assert "attacks: none were injected" in text
    assert "offline: no device was taken offline" in text
    assert "pack swap: none" in text


def test_progress_line_shows_the_verdicts() -> None:
    """The live progress line carries the gateway's quarantines and duplicates."""
    line = progress_line(METRICS, 30.0, 60.0)
    assert "verdicts: bad_signature 1, duplicate 1, id_mismatch 2" in line
    assert "verdicts" not in progress_line({}, 1.0, None)
