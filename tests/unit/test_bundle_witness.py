"""Bundles with cosigned checkpoints and a timeline, verified with ``--witness``.

Real stores filled by the real pipeline, checkpoints cosigned by the real witness core
(``voltproof.witness.Witness``) at times the test sets, bundles made by the real builder,
and ``voltproof verify`` run in-process. Every refusal is checked for its named reason.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from gateway import evidence_v2
from ledger.bundle import BundleFieldError
from ledger.bundle_v2 import (
    MAX_TIMELINE_NOTE_CHARS,
    BundleTimelineError,
    BundleV2,
    parse_bundle_v2,
)
from ledger.bundle_witness import TimelineEntryError, check_bundle_witnesses
from ledger.keys import SigningKey
from ledger.note import split_note
from ledger.witness_protocol import format_add_checkpoint
from tests.support.witnessed_world import WitnessedWorld, build_witnessed_world
from voltproof.cli import main
from voltproof.witness import Witness, WitnessState

T0 = 1_750_000_000
"""POSIX seconds; every time of these worlds lies in the past of the verifier's clock."""
ROUND_S = 600
ROUNDS = 18
LESSOR, AUDITOR, STRANGER = (
    "lessor.example/witness-1",
    "auditor.example/witness-2",
    ("stranger.example/witness-3"),
)
OUTAGE_FROM, BACK_AT = 6, 18
"""bus-0002 is offline from round 6 and sends its buffered messages at round 18."""
DAY = 86_400


def _ms(seconds: int) -> int:
    return seconds * 1000


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> WitnessedWorld:
    """Two buses over three hours; bus-0002 offline for two of them, then backfilled.

    Each round (10 min) the online buses send one message a second after its ``t``, a
    checkpoint is signed 5 s after ``t`` and the lessor's and the auditor's witnesses cosign
    it at once; the stranger's witness cosigns too (a witness the lessor does not trust).
    """
    workdir = tmp_path_factory.mktemp("witnessed") / "gw"
    world = build_witnessed_world(
        workdir, buses=["bus-0001", "bus-0002"], witnesses=[LESSOR, AUDITOR, STRANGER],
        enrolled_ms=_ms(T0),
    )  # fmt: skip
    for round_ in range(ROUNDS + 1):
        t = T0 + round_ * ROUND_S
        if round_ < ROUNDS:
            world.log("bus-0001", _ms(t), received_ms=_ms(t + 1))
        if round_ < OUTAGE_FROM:
            world.log("bus-0002", _ms(t), received_ms=_ms(t + 1))
        if round_ == BACK_AT:
            for buffered in range(OUTAGE_FROM, BACK_AT):
                world.log(
                    "bus-0002", _ms(T0 + buffered * ROUND_S), received_ms=_ms(t + 1),
                    historical=True,
                )  # fmt: skip
        world.checkpoint(at_s=t + 5)
    world.anchor()
    return world


@pytest.fixture(scope="module")
def forged(tmp_path_factory: pytest.TempPathFactory) -> WitnessedWorld:
    """An operator who writes today a bus's three hours of last month, backdated.

    The device is enrolled with last month's time and every message carries last month's
    ``t``; all are appended, checkpointed and cosigned 30 days later.
    """
    workdir = tmp_path_factory.mktemp("forged") / "gw"
    world = build_witnessed_world(
        workdir, buses=["bus-0001"], witnesses=[LESSOR], enrolled_ms=_ms(T0)
    )
    today = T0 + 30 * DAY
    for round_ in range(ROUNDS):
        world.log("bus-0001", _ms(T0 + round_ * ROUND_S), received_ms=_ms(today), historical=True)
    world.checkpoint(at_s=today + 5)
    world.anchor()
    return world


def _vkey(world: WitnessedWorld, name: str) -> str:
    return world.witnesses[name].vkey


def _write(tmp_path: Path, bundle: BundleV2, name: str = "bundle.json") -> Path:
    path = tmp_path / name
    path.write_bytes(bundle.to_bytes())
    return path


def _period() -> dict[str, int]:
    return {"from_ms": _ms(T0), "to_ms": _ms(T0 + (ROUNDS + 1) * ROUND_S)}


def _verify(
    world: WitnessedWorld, path: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str, str]:
    code = main(["verify", str(path), "--gateway-key", world.gateway_key, *extra])
    out, err = capsys.readouterr()
    return code, out, err


def _verify_json(
    world: WitnessedWorld, path: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, dict[str, object]]:
    code, out, err = _verify(world, path, capsys, *extra, "--json")
    assert out, err
    return code, json.loads(out)


def _lines(note: str) -> list[str]:
    """The signature lines of a note (gateway's first, then the cosignatures)."""
    return note.splitlines(keepends=True)[note.splitlines().index("") + 1 :]


def _without_lines_of(note: str, *names: str) -> str:
    body, _ = split_note(note)
    kept = [line for line in _lines(note) if line.split(" ")[1] not in names]
    return body + "\n" + "".join(kept)


class TestBuilder:
    """The builder's timeline: cosigned checkpoints first covering the messages, thinned."""

    def test_checkpoint_carries_its_cosignatures(self, world: WitnessedWorld) -> None:
        """The bundle's checkpoint is the gateway's note plus the three stored lines."""
        bundle = world.bundle("bus-0001", **_period())
        names = sorted(line.split(" ")[1] for line in _lines(bundle.checkpoint))
        assert names == sorted([LESSOR, AUDITOR, STRANGER, world.deployment.settings.origin])

    def test_one_entry_per_checkpoint_covering_a_message(self, world: WitnessedWorld) -> None:
        """bus-0001 has one message per round: one entry per round, strictly growing."""
        bundle = world.bundle("bus-0001", **_period())
        assert bundle.timeline is not None
        assert len(bundle.timeline) == ROUNDS
        sizes = [entry.size for entry in bundle.timeline]
        assert sizes == sorted(set(sizes))
        again = parse_bundle_v2(bundle.to_bytes())
        assert again.timeline == bundle.timeline

    def test_sub_period_only_its_checkpoints(self, world: WitnessedWorld) -> None:
        """An hour of bus-0001 (6 messages) needs six entries, not the log's nineteen."""
        bundle = world.bundle("bus-0001", from_ms=_ms(T0), to_ms=_ms(T0 + 6 * ROUND_S))
        assert bundle.timeline is not None
        assert len(bundle.timeline) == 6

    def test_backfill_is_covered_by_one_late_checkpoint(self, world: WitnessedWorld) -> None:
        """The twelve backfilled messages arrived together: one entry covers them all."""
        bundle = world.bundle("bus-0002", **_period())
        assert bundle.timeline is not None
        assert len(bundle.timeline) == OUTAGE_FROM + 1


class TestPolicy:
    """``--witness``: the bundle's checkpoint must carry the quorum; reasons named."""

    def test_quorum_met_is_an_independent_anchor(
        self, world: WitnessedWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without --anchors, the lessor's witness alone makes the verdict exit 0."""
        path = _write(tmp_path, world.bundle("bus-0001", **_period()))
        code, out, _ = _verify(world, path, capsys)
        assert code == 3
        assert "anchor NOT independently checked" in out
        code, out, _ = _verify(world, path, capsys, "--witness", _vkey(world, LESSOR))
        assert code == 0, out
        assert "VALID, COMPLETE, witnessed" in out
        assert f"quorum 1 of 1 met on the bundle's checkpoint: {LESSOR} at" in out

    def test_two_of_two(
        self, world: WitnessedWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Quorum 2 of the lessor and the auditor: met; JSON lists both with their times."""
        path = _write(tmp_path, world.bundle("bus-0001", **_period()))
        keys = ["--witness", _vkey(world, LESSOR), "--witness", _vkey(world, AUDITOR)]
        code, facts = _verify_json(world, path, capsys, *keys, "--witness-quorum", "2")
        assert code == 0, facts
        policy = facts["witness_policy"]
        assert isinstance(policy, dict)
        counted = {item["name"]: item["timestamp"] for item in policy["counted"]}
        last = T0 + ROUNDS * ROUND_S + 5
        assert counted == {LESSOR: last, AUDITOR: last}

    def test_quorum_not_met(
        self, world: WitnessedWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The checkpoint without the auditor's line: 2 of 2 is not met, the auditor named."""
        bundle = world.bundle("bus-0001", **_period())
        bundle = replace(bundle, checkpoint=_without_lines_of(bundle.checkpoint, AUDITOR))
        path = _write(tmp_path, bundle)
        keys = ["--witness", _vkey(world, LESSOR), "--witness", _vkey(world, AUDITOR)]
        code, _, err = _verify(world, path, capsys, *keys, "--witness-quorum", "2")
        assert code == 1
        assert "INVALID: WitnessPolicyError" in err
        assert f"1 of 2 required witness cosignature(s) count ({_vkey(world, AUDITOR)}: no " in err

    def test_cosignature_by_unknown_key(
        self, world: WitnessedWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Only the stranger's valid cosignature is left: it does not count for the lessor."""
        bundle = world.bundle("bus-0001", **_period())
        bundle = replace(bundle, checkpoint=_without_lines_of(bundle.checkpoint, LESSOR, AUDITOR))
        code, _, err = _verify(
            world, _write(tmp_path, bundle), capsys, "--witness", _vkey(world, LESSOR)
        )
        assert code == 1
        assert "WitnessPolicyError" in err
        assert "0 of 1" in err
        assert "no cosignature" in err

    def test_line_copied_from_another_checkpoint(
        self, world: WitnessedWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The lessor's real line over an earlier checkpoint, pasted on this one."""
        bundle = world.bundle("bus-0001", **_period())
        assert bundle.timeline is not None
        earlier = [line for line in _lines(bundle.timeline[0].note) if LESSOR in line]
        bare = _without_lines_of(bundle.checkpoint, LESSOR, AUDITOR, STRANGER)
        bundle = replace(bundle, checkpoint=bare + earlier[0])
        code, _, err = _verify(
            world, _write(tmp_path, bundle), capsys, "--witness", _vkey(world, LESSOR)
        )
        assert code == 1
        assert "WitnessPolicyError" in err
        assert "does not verify" in err

    def test_cosignature_from_the_future(
        self, world: WitnessedWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The lessor's key, its witness's clock a day ahead: the real cosignature is refused."""
        bundle = world.bundle("bus-0001", **_period())
        bare = _without_lines_of(bundle.checkpoint, LESSOR, AUDITOR, STRANGER)
        lessor = world.witnesses[LESSOR].witness
        ahead = Witness.from_policies(
            key=SigningKey(name=LESSOR, seed=lessor.key.seed, public_key=lessor.key.public_key),
            logs=list(lessor.logs.values()),
            state=WitnessState.open(tmp_path / "ahead.sqlite3"),
            clock=lambda: time.time() + DAY,
        )
        line = ahead.add_checkpoint(format_add_checkpoint(old_size=0, proof=[], checkpoint=bare))
        code, _, err = _verify(
            world, _write(tmp_path, replace(bundle, checkpoint=bare + line)), capsys,
            "--witness", _vkey(world, LESSOR),
        )  # fmt: skip
        assert code == 1
        assert "WitnessPolicyError" in err
        assert "is after" in err

    def test_stale_checkpoint_for_a_period_reaching_past_it(
        self, world: WitnessedWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A checkpoint the witnesses last saw a day before the period's end cannot prove,
        by the device's head, that nothing came after: what an operator hiding a day of
        data behind an older checkpoint relies on. Within the tolerance it still can."""
        last_seen = T0 + ROUNDS * ROUND_S + 5  # the world's last checkpoint
        period = {"from_ms": _ms(T0), "to_ms": _ms(last_seen + DAY)}
        path = _write(tmp_path, world.bundle("bus-0001", **period))
        code, facts = _verify_json(world, path, capsys, "--witness", _vkey(world, LESSOR))
        assert code == 3, facts
        chains = facts["chains"]
        assert isinstance(chains, list)
        (chain,) = chains
        assert (chain["end_proven"], chain["end_by"], chain["complete"]) == (False, None, False)
        assert chain["end_note"].startswith(
            f"stale checkpoint: the witness quorum last saw it as the log's newest at "
            f"{_ms(last_seen)} ms, {DAY} s before this chain's end"
        )
        assert facts["verdict"] == "VALID but INCOMPLETE"
        # The same bundle with a tolerance beyond its staleness: the head proves the end.
        code, facts = _verify_json(
            world, path, capsys, "--witness", _vkey(world, LESSOR), "--late-after", "2d"
        )
        assert code == 0, facts
        # Without --witness nothing says how old the checkpoint is (the anchor rule needs a
        # later anchor in the verifier's own export).
        code, facts = _verify_json(world, path, capsys, "--anchors", str(world.anchor_export))
        assert code == 0, facts

    def test_checkpoint_the_witness_never_saw(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The operator signs and anchors one more checkpoint itself: exit 1, named."""
        world = build_witnessed_world(
            tmp_path / "gw", buses=["bus-0001"], witnesses=[LESSOR], enrolled_ms=_ms(T0)
        )
        for round_ in range(3):
            world.log("bus-0001", _ms(T0 + round_ * 60), received_ms=_ms(T0 + round_ * 60 + 1))
            world.checkpoint(at_s=T0 + round_ * 60 + 5)
        world.log("bus-0001", _ms(T0 + 180), received_ms=_ms(T0 + 181))
        world.checkpoint(at_s=T0 + 185, witnesses=[])
        world.anchor()
        bundle = world.bundle("bus-0001", from_ms=_ms(T0), to_ms=_ms(T0 + 3600))
        assert bundle.timeline is not None
        assert len(bundle.timeline) == 3
        path = _write(tmp_path, bundle)
        code, _, err = _verify(
            world, path, capsys, "--witness", _vkey(world, LESSOR), "--anchors",
            str(world.anchor_export),
        )  # fmt: skip
        assert code == 1
        assert "WitnessPolicyError: the bundle's checkpoint (size 5) is not witnessed" in err
        assert "no cosignature" in err
        code, _, _ = _verify(world, path, capsys, "--anchors", str(world.anchor_export))
        assert code == 0  # without --witness the lessor asked nothing of witnesses

    def test_witness_key_from_file_and_usage_errors(
        self, world: WitnessedWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A key file works as --gateway-key does; a bad key or quorum is exit 2."""
        path = _write(tmp_path, world.bundle("bus-0001", **_period()))
        key_file = tmp_path / "witness-verifier-key.txt"
        key_file.write_text(_vkey(world, LESSOR) + "\n", encoding="utf-8")
        assert _verify(world, path, capsys, "--witness", str(key_file))[0] == 0
        code, _, err = _verify(world, path, capsys, "--witness", str(tmp_path / "missing"))
        assert code == 2
        assert "no such file" in err
        code, _, err = _verify(world, path, capsys, "--witness", world.gateway_key)
        assert code == 2
        assert "not a witness key" in err
        code, _, err = _verify(
            world, path, capsys, "--witness", str(key_file), "--witness-quorum", "2"
        )
        assert code == 2
        assert "--witness-quorum 2" in err
        secret = world.workdir / "keys" / "gateway.key"
        code, _, err = _verify(world, path, capsys, "--witness", str(secret))
        assert code == 2
        assert "holds a private key" in err
        text = secret.read_text(encoding="utf-8").strip()
        code, _, err = _verify(world, path, capsys, "--witness", text)
        assert code == 2
        assert text not in err
        # a file that is no key (a password file, say) is not echoed back, in part or whole
        wrong = tmp_path / "mqtt-password.txt"
        wrong.write_text("device+S3cretPassw0rd+more\n", encoding="utf-8")
        for option in ("--witness", "--gateway-key"):
            code, _, err = _verify(world, path, capsys, option, str(wrong))
            assert code == 2
            assert "S3cret" not in err
        code, _, err = _verify(world, path, capsys, "--witness-quorum", "1")
        assert code == 2
        assert "needs at least one --witness" in err


class TestTimeline:
    """The timeline's entries: parsed strictly, checked against the bundle's checkpoint."""

    def test_bad_consistency_proof_is_invalid(
        self, world: WitnessedWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """One hash of an entry's proof changed: INVALID, with or without --witness."""
        bundle = world.bundle("bus-0001", **_period())
        assert bundle.timeline is not None
        entry = bundle.timeline[2]
        broken = (bytes(32), *entry.consistency[1:])
        timeline = list(bundle.timeline)
        timeline[2] = replace(entry, consistency=broken)
        path = _write(tmp_path, replace(bundle, timeline=tuple(timeline)))
        code, _, err = _verify(world, path, capsys, "--anchors", str(world.anchor_export))
        assert code == 1
        assert "TimelineEntryError: timeline entry 2" in err
        assert "does not verify" in err
        code, _, err = _verify(world, path, capsys, "--witness", _vkey(world, LESSOR))
        assert code == 1
        assert "TimelineEntryError" in err

    def test_untrusted_entry_proves_nothing(self, world: WitnessedWorld) -> None:
        """Entries cosigned only by the stranger prove nothing to the lessor: unproven, no
        refusal of the bundle (the bundle's own checkpoint still bounds every message)."""
        bundle = world.bundle("bus-0001", **_period())
        assert bundle.timeline is not None
        timeline = tuple(
            replace(e, note=_without_lines_of(e.note, LESSOR, AUDITOR)) for e in bundle.timeline
        )
        report = check_bundle_witnesses(
            replace(bundle, timeline=timeline), keys=[_vkey(world, LESSOR)], quorum=1,
            not_after=int(time.time()),
        )  # fmt: skip
        assert len(report.timeline_refused) == ROUNDS
        assert all("0 of 1" in item.reason for item in report.timeline_refused)
        (chain,) = report.delays.values()
        # Only the last checkpoint counts: the first message looks committed 3 h late.
        assert chain.late > 0
        assert chain.unproven == 0

    def test_entry_of_another_log(self, world: WitnessedWorld, forged: WitnessedWorld) -> None:
        """A cosigned checkpoint of another log in the timeline: INVALID, named."""
        bundle = world.bundle("bus-0001", **_period())
        other = forged.bundle("bus-0001", from_ms=_ms(T0), to_ms=_ms(T0 + DAY))
        assert bundle.timeline is not None
        assert other.timeline is not None
        stolen = (*bundle.timeline[:1], other.timeline[0])
        if stolen[1].size <= stolen[0].size:
            stolen = (other.timeline[0],)
        with pytest.raises(TimelineEntryError, match=r"consistency proof|of log"):
            check_bundle_witnesses(
                replace(bundle, timeline=stolen), keys=[_vkey(world, LESSOR)], quorum=1,
                not_after=int(time.time()),
            )  # fmt: skip

    def test_parse_bounds(self, world: WitnessedWorld) -> None:
        """Version, order, note length, proof length and fields are refused by name."""
        bundle = world.bundle("bus-0001", **_period())
        document = json.loads(bundle.to_bytes())

        def parse(change: dict[str, object]) -> None:
            parse_bundle_v2(json.dumps({**document, "timeline": change}).encode())

        good = document["timeline"]
        with pytest.raises(BundleTimelineError, match="version 2 is not 1"):
            parse({**good, "version": 2})
        with pytest.raises(BundleTimelineError, match="strictly increasing"):
            parse({**good, "checkpoints": list(reversed(good["checkpoints"]))})
        with pytest.raises(BundleTimelineError, match="strictly increasing"):
            parse({**good, "checkpoints": [good["checkpoints"][0]] * 2})
        long_note = {"note": "x" * (MAX_TIMELINE_NOTE_CHARS + 1), "consistency": []}
        with pytest.raises(BundleTimelineError, match="more than 16384"):
            parse({**good, "checkpoints": [long_note]})
        hashes = [base64.b64encode(bytes(32)).decode()] * 65
        with pytest.raises(BundleTimelineError, match="more than 64 hashes"):
            parse({**good, "checkpoints": [{"note": "n", "consistency": hashes}]})
        with pytest.raises(BundleTimelineError, match="not a signed checkpoint"):
            parse({**good, "checkpoints": [{"note": "hello\n", "consistency": []}]})
        with pytest.raises(BundleFieldError, match="unknown fields"):
            parse({**good, "extra": 1})

    def test_old_bundle_without_timeline(
        self, world: WitnessedWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """No timeline key at all still verifies, and --witness uses the checkpoint alone."""
        bundle = replace(world.bundle("bus-0001", **_period()), timeline=None)
        assert "timeline" not in json.loads(bundle.to_bytes())
        path = _write(tmp_path, bundle)
        assert _verify(world, path, capsys, "--anchors", str(world.anchor_export))[0] == 0
        code, facts = _verify_json(world, path, capsys, "--witness", _vkey(world, LESSOR))
        # Every message is bounded by the bundle's checkpoint alone: up to 3 h late.
        timeliness = facts["timeliness"]
        assert isinstance(timeliness, dict)
        assert code == 3
        assert timeliness["late"] > 0


class TestTimeliness:
    """Per chain delays: live data, a backfill after an outage, a backdated forgery."""

    def test_live_bus(
        self, world: WitnessedWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Every message proven 6 s after its t (5 s to the cosignature, +1 s truncation)."""
        path = _write(tmp_path, world.bundle("bus-0001", **_period()))
        code, facts = _verify_json(world, path, capsys, "--witness", _vkey(world, LESSOR))
        assert code == 0
        timeliness = facts["timeliness"]
        assert isinstance(timeliness, dict)
        (chain,) = timeliness["chains"]
        assert (chain["p50_ms"], chain["p99_ms"], chain["max_ms"]) == (6000, 6000, 6000)
        assert (chain["late"], chain["unproven"], chain["impossible"]) == (0, 0, 0)
        assert facts["warnings"] == []

    def test_backfilled_device(
        self, world: WitnessedWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The outage's messages are late by up to the outage, the others are not; exit 3
        (a person should look), 0 with --allow-late; the warning names the backfill."""
        path = _write(tmp_path, world.bundle("bus-0002", **_period()))
        code, out, _ = _verify(world, path, capsys, "--witness", _vkey(world, LESSOR))
        assert code == 3
        assert "WARNING: LATE DATA: bus-0002: 11 of 18 message(s)" in out
        assert "first late seq 6" in out
        assert "VALID but LATE DATA (11 message(s))" in out
        code, facts = _verify_json(
            world, path, capsys, "--witness", _vkey(world, LESSOR), "--allow-late"
        )
        assert code == 0
        timeliness = facts["timeliness"]
        assert isinstance(timeliness, dict)
        (chain,) = timeliness["chains"]
        outage_s = (BACK_AT - OUTAGE_FROM) * ROUND_S
        assert chain["max_ms"] == _ms(outage_s + 5 + 1)  # the outage + cosigning + truncation
        # The online hour is live (6 s); the median is the fourth-last buffered message.
        assert chain["p50_ms"] == _ms(3 * ROUND_S + 6)
        assert (chain["late"], chain["first_late_seq"], chain["impossible"]) == (11, 6, 0)
        late_after = main([
            "verify", str(path), "--gateway-key", world.gateway_key, "--witness",
            _vkey(world, LESSOR), "--late-after", "3h",
        ])  # fmt: skip
        assert late_after == 0  # the lessor's own threshold above the outage
        capsys.readouterr()

    def test_backdated_history(
        self, forged: WitnessedWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Last month's data written today: every message late by about 30 days, flagged."""
        bundle = forged.bundle("bus-0001", from_ms=_ms(T0), to_ms=_ms(T0 + DAY))
        path = _write(tmp_path, bundle)
        code, out, _ = _verify(forged, path, capsys, "--witness", _vkey(forged, LESSOR))
        assert code == 3
        assert f"WARNING: LATE DATA: bus-0001: {ROUNDS} of {ROUNDS} message(s)" in out
        assert "max 30 d 0 h" in out
        assert "backdated history" in out
        report = check_bundle_witnesses(
            bundle, keys=[_vkey(forged, LESSOR)], quorum=1, not_after=int(time.time())
        )
        (chain,) = report.delays.values()
        assert chain.late == chain.count == ROUNDS
        assert chain.flagged
        assert chain.p50_ms is not None
        assert chain.p50_ms > 29 * DAY * 1000


class TestReport:
    """``voltproof report --witness``: the condition report with per-chain delay figures."""

    def test_report_shows_the_delays(
        self, world: WitnessedWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Text and JSON carry the backfilled bus's delays and the late-data warning."""
        path = _write(tmp_path, world.bundle("bus-0002", **_period()))
        assert main(["report", str(path)]) == 0
        plain = capsys.readouterr().out
        assert "timeliness" not in plain
        assert main(["report", str(path), "--witness", _vkey(world, LESSOR)]) == 0
        out = capsys.readouterr().out
        assert out.startswith(plain.rstrip("\n"))
        assert "bus-0002: 18 message(s), p50 30 min 6 s, p99 2 h 0 min, max 2 h 0 min" in out
        assert "WARNING: LATE DATA: bus-0002: 11 of 18" in out
        assert main(["report", str(path), "--witness", _vkey(world, LESSOR), "--json"]) == 0
        document = json.loads(capsys.readouterr().out)
        assert document["witness_policy"]["counted"][0]["name"] == LESSOR
        (chain,) = document["timeliness"]["chains"]
        assert (chain["late"], chain["max_ms"]) == (11, _ms(12 * ROUND_S + 6))

    def test_report_refuses_an_unwitnessed_checkpoint(
        self, world: WitnessedWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The lessor's witness did not cosign: exit 1, named, no report."""
        bundle = world.bundle("bus-0001", **_period())
        bundle = replace(bundle, checkpoint=_without_lines_of(bundle.checkpoint, LESSOR))
        code = main(["report", str(_write(tmp_path, bundle)), "--witness", _vkey(world, LESSOR)])
        out, err = capsys.readouterr()
        assert code == 1
        assert "INVALID: WitnessPolicyError" in err
        assert out == ""

    def test_report_refuses_a_message_not_in_the_checkpoint(
        self, world: WitnessedWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A message moved to another leaf index (to look earlier): its proof fails."""
        bundle = world.bundle("bus-0001", **_period())
        (chain,) = bundle.chains
        moved = replace(chain.messages[-1], index=chain.messages[0].index)
        chain = replace(chain, messages=(*chain.messages[:-1], moved))
        path = _write(tmp_path, replace(bundle, chains=(chain,)))
        code = main(["report", str(path), "--witness", _vkey(world, LESSOR)])
        assert code == 1
        assert "InclusionProofError" in capsys.readouterr().err


def test_v1_bundle_carries_cosignatures(
    world: WitnessedWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A v1 bundle's checkpoint carries its stored cosignature lines too; with no timeline,
    every message is bounded by that one checkpoint, and the output says so."""
    out = tmp_path / "v1.json"
    config = str(world.deployment.config)
    assert main(["bundle", "--config", config, "--asset", "bus-0001", "--out", str(out),
                 "--format", "1"]) == 0  # fmt: skip
    capsys.readouterr()
    code, text, err = _verify(world, out, capsys, "--witness", _vkey(world, LESSOR))
    assert "WitnessPolicyError" not in err
    assert f"quorum 1 of 1 met on the bundle's checkpoint: {LESSOR}" in text
    assert "timeline:    none in the bundle" in text
    assert code == 3  # the coarse bounds make early messages look late


def test_thinned_timeline_keeps_every_message_bounded(
    world: WitnessedWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above the builder's budget, the leaves are probed in groups: fewer entries, every
    message still bounded, and no bound earlier than the unthinned one (only coarser)."""
    keys = [_vkey(world, LESSOR)]
    full = world.bundle("bus-0001", **_period())
    monkeypatch.setattr(evidence_v2, "TIMELINE_BUDGET", 4)
    thin = world.bundle("bus-0001", **_period())
    assert full.timeline is not None
    assert thin.timeline is not None
    assert len(full.timeline) == ROUNDS
    assert len(thin.timeline) == 4
    assert {e.size for e in thin.timeline} <= {e.size for e in full.timeline}
    now = int(time.time())
    (exact,) = check_bundle_witnesses(full, keys=keys, quorum=1, not_after=now).delays.values()
    (coarse,) = check_bundle_witnesses(thin, keys=keys, quorum=1, not_after=now).delays.values()
    assert coarse.unproven == exact.unproven == 0
    assert coarse.max_ms is not None
    assert exact.max_ms is not None
    assert coarse.max_ms >= exact.max_ms
    assert coarse.late >= exact.late
