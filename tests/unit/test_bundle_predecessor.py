"""A ``replace`` carries the asset's history: predecessor chains in v2 bundles.

pack-0003 (twelve backfilled messages) is revoked and replaced by pack-0004, which then sends
three messages of its own; everything goes through the real registry and pipeline into a
real store, signed and anchored. The successor's bundle carries pack-0003's chain as its
``predecessor`` over the whole period (the ``replace`` entry's ``t`` is the operator's word and
decides nothing), and every way an operator can bend that chain, backdating the replace
included, is refused by name (INVALID) or reported (INCOMPLETE).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.access import Role, Window
from api.accessdb import AccessDb
from api.app import create_app
from api.settings import load_deployment
from ledger.bundle_v2 import BundleV2, RoleChain, read_bundle
from ledger.message import decode_message
from ledger.report import compute_report
from ledger.verify import PeriodBoundaryError
from ledger.verify_v2 import (
    MAX_PREDECESSORS,
    BundleDeviceError,
    PredecessorChainError,
    RegistryCompletenessError,
    check_messages_v2,
    predecessor_lineage,
)
from tests.support import bundle_mutations as mut
from tests.support.evidence_world import (
    RECEIVED_MS,
    EvidenceWorld,
    assert_complete,
    build_world,
    lessor_check,
    t_of,
)
from tests.support.paths import REPO
from voltproof.cli.report import offline_report

OLD, NEW = "pack-0003", "pack-0004"
REPLACED_MS = RECEIVED_MS - 60_000
"""When the operator replaced pack-0003 (the replace entry's ``t``)."""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> EvidenceWorld:
    """pack-0003 replaced by pack-0004 at REPLACED_MS; pack-0004 sends three messages."""
    built = build_world(tmp_path_factory.mktemp("predecessor") / "gw")
    built.replace_device(OLD, NEW, at_ms=REPLACED_MS)
    built.grow(NEW, messages=3)
    return built


@pytest.fixture(scope="module")
def early(tmp_path_factory: pytest.TempPathFactory) -> EvidenceWorld:
    """The operator dates the replace entry t_of(8): pack-0003's seq 8..11, logged before the
    revocation, are after the replacement by the operator's word."""
    built = build_world(tmp_path_factory.mktemp("early") / "gw")
    built.replace_device(OLD, NEW, at_ms=t_of(8))
    return built


def predecessor(bundle: BundleV2, device: str = OLD) -> RoleChain:
    """The bundle's predecessor chain of ``device``."""
    return mut.chain_of(bundle, device, "predecessor")


def run_cli(world: EvidenceWorld, *args: str) -> subprocess.CompletedProcess[str]:
    """``voltproof ARGS`` as its own process."""
    return subprocess.run(
        [sys.executable, "-m", "voltproof", *args], capture_output=True, text=True, cwd=REPO,
        check=False, timeout=120,
    )  # fmt: skip


# -- honest bundles ---------------------------------------------------------------------------


def test_successor_bundle_carries_the_predecessor_chain(world: EvidenceWorld) -> None:
    """pack-0004's bundle holds its own three messages and pack-0003's twelve over the whole
    period; both devices with every registry entry; COMPLETE."""
    bundle = world.bundle(NEW)
    chains = [(c.device, c.role, c.from_ms, c.to_ms) for c in bundle.chains]
    assert chains == [(NEW, "asset", 0, bundle.to_ms), (OLD, "predecessor", 0, bundle.to_ms)]
    old = predecessor(bundle)
    assert (len(old.messages), old.before, old.after) == (12, None, None)
    assert [d.device for d in bundle.devices] == [OLD, NEW]
    report = lessor_check(world, bundle)
    assert_complete(report)
    facts = {c.device: c for c in report.chains}
    assert (facts[OLD].role, facts[OLD].received, facts[OLD].end_by) == ("predecessor", 12, "head")
    assert facts[NEW].received == 3
    assert report.messages == 15
    assert report.registry_entries == 4  # enroll both, revoke, replace (listed under both)


def test_sub_period_clips_the_predecessor_chain(world: EvidenceWorld) -> None:
    """Inside the predecessor's life: its chain over the period, with boundary messages."""
    bundle = world.bundle(NEW, from_ms=t_of(3), to_ms=t_of(8))
    old = predecessor(bundle)
    assert (old.from_ms, old.to_ms, len(old.messages)) == (t_of(3), t_of(8), 5)
    assert old.before is not None
    assert old.after is not None
    assert_complete(lessor_check(world, bundle))


def test_period_after_the_replace_has_an_empty_predecessor_chain(world: EvidenceWorld) -> None:
    """A period starting at the replace entry's t: the predecessor's chain is there, empty,
    with no boundary message; its index head (before the period) proves both ends."""
    bundle = world.bundle(NEW, from_ms=REPLACED_MS)
    assert [(c.device, c.role, c.from_ms, len(c.messages)) for c in bundle.chains] == [
        (NEW, "asset", REPLACED_MS, 3), (OLD, "predecessor", REPLACED_MS, 0),
    ]  # fmt: skip
    assert (predecessor(bundle).before, predecessor(bundle).after) == (None, None)
    assert [d.device for d in bundle.devices] == [OLD, NEW]
    report = lessor_check(world, bundle)
    assert_complete(report)
    facts = next(c for c in report.chains if c.role == "predecessor")
    assert (facts.received, facts.first_seq, facts.end_by) == (0, None, "head")


def test_replace_dated_before_the_last_messages_hides_none(early: EvidenceWorld) -> None:
    """The replace entry's t is t_of(8), before pack-0003's seq 8..11: all twelve are in the
    predecessor chain over the whole period, its end proven by the index head; COMPLETE. A
    period starting after that t holds seq 9..11."""
    bundle = early.bundle(NEW)
    old = predecessor(bundle)
    assert (old.from_ms, old.to_ms, len(old.messages)) == (0, bundle.to_ms, 12)
    assert (old.before, old.after) == (None, None)
    report = lessor_check(early, bundle)
    assert_complete(report)
    assert next(c for c in report.chains if c.role == "predecessor").end_by == "head"
    later = early.bundle(NEW, from_ms=t_of(9))
    assert len(predecessor(later).messages) == 3
    assert_complete(lessor_check(early, later))
    figures = {f.key: f.value for f in offline_report(bundle).figures}
    assert (figures["messages"], figures["samples"]) == (12, 36)


def test_predecessors_are_followed_transitively(world: EvidenceWorld, tmp_path: Path) -> None:
    """pack-0004 replaced in turn by pack-0005: its bundle carries both predecessors."""
    twice = world.copy(tmp_path / "twice")
    twice.replace_device(NEW, "pack-0005")
    bundle = twice.bundle("pack-0005")
    assert sorted((c.device, c.role) for c in bundle.chains) == [
        (OLD, "predecessor"), (NEW, "predecessor"), ("pack-0005", "asset"),
    ]  # fmt: skip
    assert_complete(lessor_check(twice, bundle))
    # Dropping the older predecessor is named like dropping the newer one.
    dropped = mut.with_chain(bundle, predecessor(bundle, OLD), None)
    with pytest.raises(PredecessorChainError, match=f"'{NEW}' replaces '{OLD}'"):
        lessor_check(twice, dropped)
    # Without the newer predecessor's device, the line cannot be followed past it: named.
    no_link = mut.with_device(bundle, mut.device_of(bundle, NEW), None)
    unfollowed = f"'pack-0005' replaces '{NEW}' .*does not give the device"
    with pytest.raises(PredecessorChainError, match=unfollowed):
        lessor_check(twice, no_link)
    # A period after both replacements still carries both lives, each proven empty or not.
    later = twice.bundle("pack-0005", from_ms=RECEIVED_MS)
    assert [(c.device, c.role) for c in later.chains] == [
        ("pack-0005", "asset"), (NEW, "predecessor"), (OLD, "predecessor"),
    ]  # fmt: skip
    assert_complete(lessor_check(twice, later))


def test_predecessor_lineage_rule() -> None:
    """The replace links walked back from the asset, newest first, to a device that replaces
    none; more than MAX_PREDECESSORS, or a line that comes back to a device, is refused."""
    links = {"c": "b", "b": "a"}
    assert predecessor_lineage(links, asset_id="c") == ["b", "a"]
    assert predecessor_lineage(links, asset_id="b") == ["a"]
    assert predecessor_lineage(links, asset_id="a") == []
    chain = {f"d{i + 1}": f"d{i}" for i in range(MAX_PREDECESSORS + 1)}
    top = f"d{MAX_PREDECESSORS + 1}"
    with pytest.raises(PredecessorChainError, match=f"more than {MAX_PREDECESSORS} predecessors"):
        predecessor_lineage(chain, asset_id=top)
    assert len(predecessor_lineage(chain, asset_id=f"d{MAX_PREDECESSORS}")) == MAX_PREDECESSORS
    with pytest.raises(PredecessorChainError, match="from 'c' come back to 'b'"):
        predecessor_lineage({"c": "b", "b": "a", "a": "b"}, asset_id="c")
    with pytest.raises(PredecessorChainError, match="from 'c' come back to 'c'"):
        predecessor_lineage({"c": "b", "b": "c"}, asset_id="c")


# -- the command line -------------------------------------------------------------------------


def test_cli_prints_the_predecessor_chain(world: EvidenceWorld, tmp_path: Path) -> None:
    """`voltproof bundle` then `voltproof verify`: exit 0 COMPLETE, the predecessor chain
    printed and in --json like a host chain, and `voltproof report` counts both devices."""
    path = tmp_path / "successor.json"
    made = run_cli(world, "bundle", "--workdir", str(world.workdir), "--asset", NEW,
                   "--out", str(path))  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert f"devices {OLD}, {NEW}, 15 messages, 4 registry entries" in made.stdout
    check = ["verify", str(path), "--gateway-key", world.gateway_key,
             "--anchors", str(world.anchor_export)]  # fmt: skip
    said = run_cli(world, *check)
    assert said.returncode == 0, said.stdout + said.stderr
    assert said.stdout.rstrip().endswith("VALID, COMPLETE, independently anchored")
    assert "messages:    15, registry entries 4" in said.stdout
    assert f"  predecessor {OLD} " in said.stdout
    assert "seq 0..11, received 12/12, missing none, start proven, end proven" in said.stdout
    assert f"replaces {OLD} (leaf" in said.stdout
    assert "its history is in this bundle (predecessor chain)" in said.stdout
    facts = json.loads(run_cli(world, *check, "--json").stdout)
    old = next(c for c in facts["chains"] if c["role"] == "predecessor")
    assert (old["device"], old["received"], old["complete"]) == (OLD, 12, True)
    report = run_cli(world, "report", str(path), "--json")
    assert report.returncode == 0, report.stdout + report.stderr
    assert json.loads(report.stdout)["figures"]["messages"]["value"] == 15


def test_cli_names_a_dropped_predecessor_chain(world: EvidenceWorld, tmp_path: Path) -> None:
    """INVALID, exit 1, the missing chain named."""
    bundle = world.bundle(NEW)
    path = tmp_path / "dropped.json"
    path.write_bytes(mut.with_chain(bundle, predecessor(bundle), None).to_bytes())
    said = run_cli(world, "verify", str(path), "--gateway-key", world.gateway_key,
                   "--anchors", str(world.anchor_export))  # fmt: skip
    assert said.returncode == 1, said.stdout + said.stderr
    assert "PredecessorChainError" in said.stdout + said.stderr
    assert f"no predecessor chain of '{OLD}'" in said.stdout + said.stderr
    assert "Traceback" not in said.stderr


def test_api_bundle_and_report_read_the_history_across_both(world: EvidenceWorld) -> None:
    """The API serves the successor's v2 bundle with its predecessor chain, and its report
    equals `voltproof report` of that download: the pack figures over both devices' samples
    (15 messages of 3 samples), where pack-0004 alone has 9. A period after the replacement:
    the predecessor chain is there, empty, and the report has pack-0004's messages only."""
    secret = asyncio.run(_operator_key(world))
    period = f"from=0&to={RECEIVED_MS + 1}"
    after = f"from={REPLACED_MS}&to={RECEIVED_MS + 1}"
    headers = {"Authorization": f"Bearer {secret}"}
    with TestClient(create_app(load_deployment(workdir=world.workdir))) as client:
        served = client.get(f"/api/assets/{NEW}/bundle?{period}", headers=headers)
        report = client.get(f"/api/assets/{NEW}/report?{period}", headers=headers)
        served_after = client.get(f"/api/assets/{NEW}/bundle?{after}", headers=headers)
        report_after = client.get(f"/api/assets/{NEW}/report?{after}", headers=headers)
    assert served_after.status_code == 200, served_after.text
    assert report_after.status_code == 200, report_after.text
    bundle_after = read_bundle(served_after.content)
    assert isinstance(bundle_after, BundleV2)
    assert [(c.role, len(c.messages)) for c in bundle_after.chains] == [
        ("asset", 3), ("predecessor", 0),
    ]  # fmt: skip
    assert report_after.json() == json.loads(offline_report(bundle_after).to_json())
    assert report_after.json()["figures"]["messages"]["value"] == 3
    assert served.status_code == 200, served.text
    assert report.status_code == 200, report.text
    bundle = read_bundle(served.content)
    assert isinstance(bundle, BundleV2)
    assert [(c.device, c.role) for c in bundle.chains] == [(NEW, "asset"), (OLD, "predecessor")]
    assert_complete(lessor_check(world, bundle))
    offline = offline_report(bundle)
    assert report.json() == json.loads(offline.to_json())
    figures = {f.key: f.value for f in offline.figures}
    assert (figures["messages"], figures["samples"]) == (15, 45)
    alone = compute_report(check_messages_v2(bundle)[:3], asset_id=NEW, asset_kind="pack",
                           from_ms=bundle.from_ms, to_ms=bundle.to_ms)  # fmt: skip
    assert {f.key: f.value for f in alone.figures}["samples"] == 9


def test_lessor_gets_no_predecessor_message_outside_its_lease(world: EvidenceWorld) -> None:
    """A lessor of the successor, leased over part of the predecessor's life: the API's bundle
    holds that part of the predecessor's chain and none of its boundary messages (they lie
    outside the lease); it verifies, with those ends reported as not proven."""
    lease_from, lease_to = t_of(3), t_of(8)
    secret = asyncio.run(_lessor_key(world, window=Window(from_ms=lease_from, to_ms=lease_to)))
    with TestClient(create_app(load_deployment(workdir=world.workdir))) as client:
        served = client.get(
            f"/api/assets/{NEW}/bundle", headers={"Authorization": f"Bearer {secret}"}
        )
    assert served.status_code == 200, served.text
    bundle = read_bundle(served.content)
    assert isinstance(bundle, BundleV2)
    old = predecessor(bundle)
    assert (old.from_ms, old.to_ms, len(old.messages)) == (lease_from, lease_to, 5)
    assert (old.before, old.after) == (None, None)
    times = [
        decode_message(leaf.data).payload["t"]
        for chain in bundle.chains
        for leaf in (chain.before, *chain.messages, chain.after)
        if leaf is not None
    ]
    assert times
    assert all(lease_from <= t < lease_to for t in times), times
    facts = {c.device: c for c in lessor_check(world, bundle).chains}
    assert (facts[OLD].received, facts[OLD].start_proven, facts[OLD].end_proven) == (
        5,
        False,
        False,
    )


async def _lessor_key(world: EvidenceWorld, *, window: Window) -> str:
    access = await AccessDb.open(world.deployment.settings.data_dir / "api.db")
    try:
        created = await access.create_key(name="successor-lessor", role=Role.LESSOR, fleet=None,
                                          now_ms=t_of(0))  # fmt: skip
        await access.add_lease(asset=NEW, lessor="successor-lessor", window=window)
        return created.secret
    finally:
        await access.close()


async def _operator_key(world: EvidenceWorld) -> str:
    access = await AccessDb.open(world.deployment.settings.data_dir / "api.db")
    try:
        created = await access.create_key(name="operator", role=Role.OPERATOR, fleet=None,
                                          now_ms=t_of(0))  # fmt: skip
        return created.secret
    finally:
        await access.close()


# -- the operator bends the predecessor chain -------------------------------------------------


def test_dropped_predecessor_chain_is_refused(world: EvidenceWorld) -> None:
    """The chain left out, its device left out, or both: the asset's own registry, complete by
    its index entry, still holds the replace that names it."""
    bundle = world.bundle(NEW)
    no_chain = mut.with_chain(bundle, predecessor(bundle), None)
    reason = f"'{NEW}' replaces '{OLD}' .*no predecessor chain of '{OLD}' over 0..{bundle.to_ms}"
    with pytest.raises(PredecessorChainError, match=reason):
        lessor_check(world, no_chain)
    no_device = f"'{NEW}' replaces '{OLD}' .*the bundle does not give the device '{OLD}'"
    neither = mut.with_device(no_chain, mut.device_of(no_chain, OLD), None)
    with pytest.raises(PredecessorChainError, match=no_device):
        lessor_check(world, neither)
    chain_only = mut.with_device(bundle, mut.device_of(bundle, OLD), None)
    with pytest.raises(PredecessorChainError, match=no_device):
        lessor_check(world, chain_only)


def test_dropped_replace_entry_is_refused(world: EvidenceWorld) -> None:
    """The replace left out of the successor's registry (or of both): the index entry's
    count and hash chain say an entry is missing."""
    bundle = world.bundle(NEW)
    link = mut.device_of(bundle, NEW).registry[-1]
    assert link.index == mut.device_of(bundle, OLD).registry[-1].index
    from_new = mut.registry_changed(bundle, NEW, lambda r: r.pop())
    with pytest.raises(RegistryCompletenessError, match=f"device '{NEW}'.*the index holds 2"):
        lessor_check(world, from_new)
    from_both = mut.registry_changed(from_new, OLD, lambda r: r.pop())
    with pytest.raises(RegistryCompletenessError, match="the index holds"):
        lessor_check(world, from_both)
    # Claiming the asset's history started with it: no predecessor at all.
    alone = mut.with_device(mut.with_chain(from_new, predecessor(from_new), None),
                            mut.device_of(from_new, OLD), None)  # fmt: skip
    with pytest.raises(RegistryCompletenessError, match=f"device '{NEW}'"):
        lessor_check(world, alone)


def test_predecessor_chain_of_an_unnamed_device_is_refused(world: EvidenceWorld) -> None:
    """Another device's chain (with its entry) as a predecessor, added or in place of the
    real one, and the real chain relabelled to another device: refused by name."""
    bundle = world.bundle(NEW)
    other = world.bundle("pack-0001")
    stranger = replace(mut.chain_of(other, "pack-0001"), role="predecessor")
    stranger_device = mut.device_of(other, "pack-0001")
    added = replace(bundle, chains=(*bundle.chains, stranger),
                    devices=(*bundle.devices, stranger_device))  # fmt: skip
    with pytest.raises(PredecessorChainError, match=r"'pack-0001' .*links no replace of it"):
        lessor_check(world, added)
    instead = mut.with_chain(added, predecessor(added), None)
    with pytest.raises(PredecessorChainError, match=r"'pack-0001' .*links no replace of it"):
        lessor_check(world, instead)
    relabelled = mut.with_chain(bundle, predecessor(bundle),
                                replace(predecessor(bundle), device="pack-0001"))  # fmt: skip
    with pytest.raises(PredecessorChainError):
        lessor_check(world, relabelled)
    # Its device alone, without a chain, is a device the bundle does not speak of.
    extra_device = replace(bundle, devices=(*bundle.devices, stranger_device))
    with pytest.raises(BundleDeviceError, match="'pack-0001' is neither the asset"):
        lessor_check(world, extra_device)


def test_predecessor_chain_over_another_interval_is_refused(world: EvidenceWorld) -> None:
    """A predecessor chain over less than the period (cut short, as at a replace entry's t) or
    more (stretched before a sub-period's start), or given twice: refused by name; a boundary
    message moved inside its interval: outside it."""
    bundle = world.bundle(NEW, from_ms=t_of(3), to_ms=t_of(8))
    old = predecessor(bundle)
    assert [m.index for m in old.messages] == [
        m.index for m in predecessor(world.bundle(NEW)).messages[3:8]
    ]
    whole = predecessor(world.bundle(NEW))
    wider = replace(old, from_ms=0, before=None, messages=whole.messages[:8])
    with pytest.raises(
        PredecessorChainError,
        match=f"'{OLD}' over 0..{t_of(8)}: a predecessor's chain covers the period "
        f"{t_of(3)}..{t_of(8)}",
    ):
        lessor_check(world, mut.with_chain(bundle, old, wider))
    narrower = replace(old, to_ms=t_of(6), messages=old.messages[:3], after=old.messages[3])
    with pytest.raises(PredecessorChainError, match=f"'{OLD}' over {t_of(3)}..{t_of(6)}: "):
        lessor_check(world, mut.with_chain(bundle, old, narrower))
    twice = replace(bundle, chains=(*bundle.chains, old))
    with pytest.raises(PredecessorChainError, match=f"'{OLD}' over .*: a second chain of it"):
        lessor_check(world, twice)
    assert old.after is not None
    inside = replace(old, messages=(*old.messages, old.after), after=None)
    with pytest.raises(PeriodBoundaryError, match="does not fit its place"):
        lessor_check(world, mut.with_chain(bundle, old, inside))


def test_backdated_replace_hides_no_predecessor_message(early: EvidenceWorld) -> None:
    """The operator dates the replace t_of(8), before pack-0003's seq 8..11, and gives its
    chain up to that t only (seq 8 the ``after`` message that seems to prove the end), or only
    its first eight messages over the whole period, or, for a period starting after that t,
    no predecessor at all: refused by name, or INCOMPLETE with the unproven end named; never
    COMPLETE with seq 8..11 hidden."""
    bundle = early.bundle(NEW)
    old = predecessor(bundle)
    own = mut.chain_of(early.bundle(OLD), OLD)  # pack-0003's own bundle holds all twelve
    assert [m.index for m in own.messages[:8]] == [m.index for m in old.messages[:8]]
    cut = replace(old, to_ms=t_of(8), messages=own.messages[:8], after=own.messages[8])
    with pytest.raises(
        PredecessorChainError,
        match=f"predecessor chain of '{OLD}' over 0..{t_of(8)}: .*the period 0..{bundle.to_ms}",
    ):
        lessor_check(early, mut.with_chain(bundle, old, cut))
    short = replace(old, to_ms=bundle.to_ms, messages=own.messages[:8], after=None)
    report = lessor_check(early, mut.with_chain(bundle, old, short))
    facts = next(c for c in report.chains if c.role == "predecessor")
    assert not report.complete
    assert (facts.last_seq, facts.start_proven, facts.end_proven) == (7, True, False)
    later = early.bundle(NEW, from_ms=t_of(9))
    alone = replace(later, chains=tuple(c for c in later.chains if c.device != OLD),
                    devices=tuple(d for d in later.devices if d.device != OLD))  # fmt: skip
    with pytest.raises(PredecessorChainError, match=f"'{NEW}' replaces '{OLD}'"):
        lessor_check(early, alone)


def test_predecessor_message_logged_after_the_replace_is_refused(
    world: EvidenceWorld, tmp_path: Path
) -> None:
    """A dishonest gateway logs pack-0003's seq 12 after its replacement (signed by its own
    key, t inside the interval): the builder puts it in the chain, the verifier names it."""
    bent = world.copy(tmp_path / "bent")
    bent.log_after_revocation(OLD, messages=1)
    bundle = bent.bundle(NEW)
    old = predecessor(bundle)
    link = mut.device_of(bundle, NEW).registry[-1].index
    assert old.messages[-1].index > link
    with pytest.raises(
        PredecessorChainError,
        match=f"leaf {old.messages[-1].index} is logged after the replace entry at leaf {link}",
    ):
        lessor_check(bent, bundle)


def test_truncated_predecessor_chain_is_incomplete(world: EvidenceWorld) -> None:
    """Genuine evidence that says less: the end or the gap of the predecessor chain named."""
    bundle = world.bundle(NEW)
    old = predecessor(bundle)
    cut = lessor_check(world, mut.with_chain(bundle, old, replace(old, messages=old.messages[:9])))
    facts = next(c for c in cut.chains if c.role == "predecessor")
    assert not cut.complete
    assert (facts.last_seq, facts.end_proven, facts.start_proven) == (8, False, True)
    holed = old.messages[:4] + old.messages[6:]
    gap = lessor_check(world, mut.with_chain(bundle, old, replace(old, messages=holed)))
    facts = next(c for c in gap.chains if c.role == "predecessor")
    assert not gap.complete
    assert [(g.first, g.last) for g in facts.gaps] == [(4, 5)]


def test_more_predecessors_than_the_bound_is_a_clear_error(
    world: EvidenceWorld, tmp_path: Path
) -> None:
    """pack-0004 replaced sixteen times more (seventeen predecessors of the last one):
    `voltproof bundle` of it refuses with the reason, no traceback, whatever the period (the
    replace entries' t decide nothing); the one before it, with sixteen, has all of them."""
    line = world.copy(tmp_path / "line")
    devices = [NEW] + [f"pack-1{i:03}" for i in range(MAX_PREDECESSORS)]
    for number, (old, new) in enumerate(itertools.pairwise(devices)):
        line.replace_device(old, new, at_ms=REPLACED_MS + (number + 1) * 1000)
    last = devices[-1]
    made = run_cli(line, "bundle", "--workdir", str(line.workdir), "--asset", last,
                   "--out", str(tmp_path / "line.json"))  # fmt: skip
    assert made.returncode == 1, made.stdout + made.stderr
    assert f"'{last}' has more than {MAX_PREDECESSORS} predecessors; a v2 bundle" in made.stderr
    assert "ask for the predecessors' own bundles" in made.stderr
    assert "Traceback" not in made.stderr
    assert not (tmp_path / "line.json").exists()
    recent = run_cli(line, "bundle", "--workdir", str(line.workdir), "--asset", last, "--from",
                     str(RECEIVED_MS), "--out", str(tmp_path / "recent.json"))  # fmt: skip
    assert recent.returncode == 1, recent.stdout + recent.stderr
    assert f"more than {MAX_PREDECESSORS} predecessors" in recent.stderr
    bundle = line.bundle(devices[-2])
    assert [c.device for c in bundle.chains] == [devices[-2], *reversed(devices[:-2]), OLD]
    assert_complete(lessor_check(line, bundle))


def test_replaced_bus_carries_its_predecessor(world: EvidenceWorld, tmp_path: Path) -> None:
    """bus-0002 (which carried pack-0001 from seq 6) replaced by bus-0004: bus-0004's bundle
    holds bus-0002's chain as its predecessor, without bus-0002's installed packs (those are
    in bus-0002's own bundle); COMPLETE, and the report has both buses' figures."""
    buses = world.copy(tmp_path / "buses")
    buses.replace_device("bus-0002", "bus-0004", at_ms=REPLACED_MS)
    bundle = buses.bundle("bus-0004")
    assert [(c.device, c.role) for c in bundle.chains] == [
        ("bus-0004", "asset"), ("bus-0002", "predecessor"),
    ]  # fmt: skip
    assert len(predecessor(bundle, "bus-0002").messages) == 12
    assert_complete(lessor_check(buses, bundle))
    figures = {f.key: f.value for f in offline_report(bundle).figures}
    assert figures["messages"] == 12
    assert figures["samples"] == 36
