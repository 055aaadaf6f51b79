"""The mutation suite: honest v2 bundles from a real store, and every tampering we thought of.

Honest bundles (full history up to now, sub-periods, a swapped pack, a backfilled device, a
rotated key) come out VALID and COMPLETE against the lessor's own copy of the anchor export.
Every mutant is refused with its reason named: INVALID (a named error) or, where the
evidence is genuine but says less, INCOMPLETE (the unproven end or the gap named). All go
through :func:`verify_bundle_v2`; a representative subset through the real command line.
"""

from __future__ import annotations

import asyncio
import base64
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.evidence import EvidenceError, UnknownAssetError
from gateway.evidence_v2 import extract_payloads_v2
from gateway.store import SqliteStore
from ledger.anchors.evm_checker import anchor_checker
from ledger.bundle_v2 import BundleV2
from ledger.checkpoint import parse_checkpoint, sign_checkpoint
from ledger.keys import load_key_file
from ledger.note import split_note
from ledger.report import ConditionReport, compute_report
from ledger.verify import (
    BundleAnchorError,
    BundleCheckpointError,
    BundleRegistryError,
    BundleVerificationError,
    ChainOrderError,
    MessageSignatureError,
    PeriodBoundaryError,
)
from ledger.verify_v2 import (
    AssetChainError,
    AssetKindError,
    BundleDeviceError,
    HostChainError,
    IndexEntryError,
    PeriodMismatchError,
    RegistryCompletenessError,
    verify_bundle_v2,
)
from tests.support import bundle_mutations as mut
from tests.support.evidence_world import (
    EvidenceWorld,
    assert_complete,
    build_world,
    lessor_check,
    t_of,
)
from tests.support.paths import REPO
from voltproof.cli.report import offline_report

SUB_FROM, SUB_TO = t_of(3), t_of(8)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> EvidenceWorld:
    """One honest deployment for the whole module (built through the real pipeline)."""
    return build_world(tmp_path_factory.mktemp("evidence") / "gw")


# -- honest bundles ---------------------------------------------------------------------------


@pytest.mark.parametrize("asset", ["pack-0001", "pack-0002", "pack-0003", "bus-0001", "bus-0003"])
def test_full_history_up_to_now_is_complete(world: EvidenceWorld, asset: str) -> None:
    """No `after` message: the index head proves the end (swap, backfill, rotation)."""
    bundle = world.bundle(asset)
    assert all(c.after is None for c in bundle.chains if c.role == "asset")
    report = lessor_check(world, bundle)
    assert_complete(report)
    assert report.chains[0].received == 12


def test_swapped_pack_carries_both_hosts_clipped(world: EvidenceWorld) -> None:
    """pack-0001 rode in bus-0001 then bus-0002: one host chain per interval, nothing outside."""
    bundle = world.bundle("pack-0001")
    hosts = [(c.device, c.from_ms, c.to_ms) for c in bundle.chains if c.role == "host"]
    assert hosts == [("bus-0001", t_of(0), t_of(6)), ("bus-0002", t_of(6), world_now(bundle))]
    bus1 = mut.chain_of(bundle, "bus-0001", "host")
    assert len(bus1.messages) == 6
    assert lessor_check(world, bundle).complete


def test_bus_bundle_carries_each_installed_pack_clipped(world: EvidenceWorld) -> None:
    """bus-0001 carried pack-0001, then pack-0002: one installed chain each, nothing outside,
    and the bus's report gives each pack's figures over its own stint."""
    bundle = world.bundle("bus-0001")
    installed = [(c.device, c.from_ms, c.to_ms) for c in bundle.chains if c.role == "installed"]
    assert installed == [("pack-0001", t_of(0), t_of(6)), ("pack-0002", t_of(6), bundle.to_ms)]
    assert len(mut.chain_of(bundle, "pack-0001", "installed").messages) == 6
    assert_complete(lessor_check(world, bundle))
    report = offline_report(bundle)
    assert [(s.pack, s.from_ms) for s in report.stints] == [
        ("pack-0001", t_of(0)), ("pack-0002", t_of(6))]  # fmt: skip
    for stint in report.stints:
        assert stint.reason is None
        samples = {f.key: f.value for f in stint.figures}["samples"]
        assert isinstance(samples, int)
        assert samples > 0


async def _payload_report(world: EvidenceWorld, asset: str, to_ms: int) -> ConditionReport:
    store = await SqliteStore.open(world.deployment.settings.db_path)
    try:
        found = await extract_payloads_v2(store, asset_id=asset, from_ms=0, to_ms=to_ms)
    finally:
        await store.close()
    return compute_report(found.payloads, asset_id=asset, asset_kind=found.asset_kind,
                          from_ms=found.from_ms, to_ms=found.to_ms)  # fmt: skip


@pytest.mark.parametrize(
    "asset", ["pack-0001", "pack-0002", "pack-0003", "bus-0001", "bus-0002", "bus-0003"]
)
def test_payload_report_is_the_offline_report_of_the_bundle(
    world: EvidenceWorld, asset: str
) -> None:
    """What the API serves (extract_payloads_v2) equals `voltproof report` of the bundle."""
    bundle = world.bundle(asset)
    served = asyncio.run(_payload_report(world, asset, bundle.to_ms))
    assert served.to_json() == offline_report(bundle).to_json()


def world_now(bundle: BundleV2) -> int:
    """The end of an "up to now" period."""
    return bundle.to_ms


@pytest.mark.parametrize("asset", ["pack-0001", "bus-0003", "pack-0003"])
def test_sub_period_is_complete_with_boundaries_only(world: EvidenceWorld, asset: str) -> None:
    """A closed period carries exactly its messages and the two boundary messages."""
    bundle = world.bundle(asset, from_ms=SUB_FROM, to_ms=SUB_TO)
    own = mut.chain_of(bundle, asset)
    assert len(own.messages) == 5
    assert own.before is not None
    assert own.after is not None
    assert_complete(lessor_check(world, bundle, expected_from_ms=SUB_FROM, expected_to_ms=SUB_TO))


def test_period_not_started_discloses_nothing(world: EvidenceWorld) -> None:
    """A period after the newest message: no message at all, and still complete."""
    start = world.bundle("bus-0001").to_ms + 1000
    bundle = world.bundle("bus-0001", from_ms=start, to_ms=start + 60_000)
    assert all(not c.leaves() for c in bundle.chains)
    assert_complete(lessor_check(world, bundle))


# -- mutants ----------------------------------------------------------------------------------

INVALID: list[tuple[str, str, Callable[[BundleV2], BundleV2], type[Exception], str]] = [
    ("reorder start", "bus-0001", mut.swap(0, 1), ChainOrderError, "reordered"),
    ("reorder middle", "bus-0001", mut.swap(5, 6), ChainOrderError, "reordered"),
    ("reorder end", "bus-0001", mut.swap(-2, -1), ChainOrderError, "reordered"),
    ("repeat a message", "bus-0001",
     lambda b: mut.asset_messages(b, lambda m: m.insert(3, m[3])), ChainOrderError, "repeated"),
    ("drop the asset chain", "bus-0001",
     lambda b: mut.with_chain(b, mut.chain_of(b, "bus-0001"), None), AssetChainError,
     "0 asset chain"),
    ("relabel the asset chain as a host", "bus-0001",
     lambda b: mut.with_chain(b, mut.chain_of(b, "bus-0001"),
                              replace(mut.chain_of(b, "bus-0001"), role="host")),
     AssetChainError, "0 asset chain"),
    ("relabel the asset chain's device", "pack-0001",
     lambda b: mut.with_chain(b, mut.chain_of(b, "pack-0001"),
                              replace(mut.chain_of(b, "pack-0001"), device="bus-0001")),
     AssetChainError, "exactly one, of 'pack-0001'"),
    ("bus relabelled as a pack", "bus-0001", lambda b: replace(b, asset_kind="pack"),
     AssetKindError, "enrolled as 'bus'"),
    ("pack relabelled as a bus", "pack-0001", lambda b: replace(b, asset_kind="bus"),
     AssetKindError, "enrolled as 'pack'"),
    ("period shrunk, messages kept", "bus-0001",
     lambda b: mut.set_period(b, t_of(2), b.to_ms), PeriodBoundaryError, "does not fit"),
    ("period moved, chain not", "bus-0001",
     lambda b: mut.set_period(b, t_of(2), b.to_ms, chain_too=False), AssetChainError,
     "not the period"),
    ("rotation dropped", "bus-0003",
     lambda b: mut.registry_changed(b, "bus-0003", lambda r: r.pop()), RegistryCompletenessError,
     "the index holds 2"),
    ("enrolment dropped", "bus-0003",
     lambda b: mut.registry_changed(b, "bus-0003", lambda r: r.pop(0)),
     RegistryCompletenessError, "the index holds 2"),
    ("registry reordered", "bus-0003",
     lambda b: mut.registry_changed(b, "bus-0003", lambda r: r.reverse()),
     RegistryCompletenessError, "out of log order"),
    ("registry entry added", "pack-0001",
     lambda b: mut.registry_changed(
         b, "pack-0001", lambda r: r.append(mut.device_of(b, "bus-0001").registry[0])),
     RegistryCompletenessError, "out of log order|the index holds 1"),
    ("host chain dropped", "pack-0001",
     lambda b: mut.with_chain(b, mut.chain_of(b, "bus-0002", "host"), None), HostChainError,
     "no host chain"),
    ("host chain stretched past the hosting interval", "pack-0001",
     lambda b: mut.with_chain(b, mut.chain_of(b, "bus-0001", "host"),
                              replace(mut.chain_of(b, "bus-0001", "host"), to_ms=t_of(9),
                                      after=None)),
     HostChainError, "no host chain for that interval"),
    ("installed chain dropped", "bus-0001",
     lambda b: mut.with_chain(b, mut.chain_of(b, "pack-0002", "installed"), None),
     HostChainError, "no installed-pack chain"),
    ("installed chain stretched past the interval", "bus-0001",
     lambda b: mut.with_chain(b, mut.chain_of(b, "pack-0001", "installed"),
                              replace(mut.chain_of(b, "pack-0001", "installed"), to_ms=t_of(9),
                                      after=None)),
     HostChainError, "no installed-pack chain for that interval"),
    ("host chain relabelled as installed", "pack-0001",
     lambda b: mut.with_chain(b, mut.chain_of(b, "bus-0002", "host"),
                              replace(mut.chain_of(b, "bus-0002", "host"), role="installed")),
     HostChainError, "a pack bundle has no installed chains"),
    ("installed chain relabelled as a host", "bus-0001",
     lambda b: mut.with_chain(b, mut.chain_of(b, "pack-0001", "installed"),
                              replace(mut.chain_of(b, "pack-0001", "installed"), role="host")),
     HostChainError, "a bus bundle has no host chains"),
    ("host message outside the interval", "pack-0001", mut.host_message_outside,
     PeriodBoundaryError, "does not fit"),
    ("host device dropped", "pack-0001",
     lambda b: mut.with_device(b, mut.device_of(b, "bus-0002"), None), BundleDeviceError,
     "no such device"),
    ("extra device", "bus-0001",
     lambda b: replace(b, devices=(*b.devices, mut.device_of(
         b, "bus-0001"))), BundleDeviceError, "appears twice"),
    ("anchor receipt of another log", "bus-0001", mut.foreign_receipt, BundleAnchorError,
     "not this log"),
    ("another device's entry listed", "pack-0001",
     lambda b: mut.registry_changed(
         b, "pack-0001", lambda r: r.__setitem__(0, mut.device_of(b, "bus-0001").registry[0])),
     BundleRegistryError, "listed under 'pack-0001' but names 'bus-0001'"),
    ("index entry head moved back", "bus-0001", mut.older_head, IndexEntryError,
     "does not prove against"),
    ("index entries swapped", "pack-0001", mut.swapped_entries, IndexEntryError, "is that of"),
    ("asset renamed", "bus-0001", lambda b: replace(b, asset_id="bus-9999"), BundleDeviceError,
     "not among the bundle's devices"),
    ("anchor receipt of a smaller tree of this log", "bus-0001",
     lambda b: mut.receipt_of_size(b, b.anchor.receipt.tree_size - 1), BundleAnchorError,
     "anchor receipt commits size"),
    ("anchor receipt of a larger tree of this log", "pack-0001",
     lambda b: mut.receipt_of_size(b, b.anchor.receipt.tree_size + 5), BundleAnchorError,
     "anchor receipt commits size"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("asset", "mutate", "error", "reason"),
    [pytest.param(*case[1:], id=case[0]) for case in INVALID],
)
def test_mutant_is_invalid(
    world: EvidenceWorld,
    asset: str,
    mutate: Callable[[BundleV2], BundleV2],
    error: type[Exception],
    reason: str,
) -> None:
    """Each tampering is INVALID, with the reason named."""
    with pytest.raises(error, match=reason):
        lessor_check(world, mutate(world.bundle(asset)))


INCOMPLETE: list[tuple[str, Callable[[BundleV2], BundleV2], str]] = [
    ("drop the first message", mut.drop_at(0), "start"),
    ("drop a middle message", mut.drop_at(5), "gap 5..5"),
    ("drop the last message", mut.drop_at(-1), "end"),
    ("truncate the end", mut.truncate(8), "end"),
    ("truncate the start", lambda b: mut.asset_messages(b, lambda m: m.__delitem__(slice(0, 3))),
     "start"),
    ("drop the first and the last message",
     lambda b: mut.drop_at(-1)(mut.drop_at(0)(b)), "both ends"),
]  # fmt: skip


@pytest.mark.parametrize(("mutate", "reason"), [pytest.param(*c[1:], id=c[0]) for c in INCOMPLETE])
def test_dropped_messages_are_incomplete(
    world: EvidenceWorld, mutate: Callable[[BundleV2], BundleV2], reason: str
) -> None:
    """Genuine messages with some left out: never COMPLETE, and the hole is named."""
    report = lessor_check(world, mutate(world.bundle("bus-0001")))
    assert not report.complete
    own = report.chains[0]
    found = {
        "start": not own.start_proven,
        "end": not own.end_proven,
        "both ends": not own.start_proven and not own.end_proven,
        "gap 5..5": [(g.first, g.last) for g in own.gaps] == [(5, 5)],
    }
    assert found[reason], own


def test_sub_period_without_after_is_incomplete(world: EvidenceWorld) -> None:
    """A closed period whose `after` message is removed: its end is not proven."""
    bundle = mut.drop_after(world.bundle("bus-0001", from_ms=SUB_FROM, to_ms=SUB_TO))
    assert not lessor_check(world, bundle).chains[0].end_proven


def test_extended_period_without_messages_is_incomplete(world: EvidenceWorld) -> None:
    """A closed period stretched later, keeping its messages and dropping `after`."""
    bundle = world.bundle("bus-0001", from_ms=SUB_FROM, to_ms=SUB_TO)
    stretched = mut.drop_after(mut.set_period(bundle, SUB_FROM, t_of(10)))
    assert not lessor_check(world, stretched).chains[0].end_proven


def test_moved_start_of_a_closed_period(world: EvidenceWorld) -> None:
    """The start side: moved earlier without `before`, the start is not proven; without
    `before` at all, the same; moved earlier keeping `before` (now inside the period), or
    later keeping messages now before it, INVALID."""
    bundle = world.bundle("bus-0001", from_ms=SUB_FROM, to_ms=SUB_TO)
    earlier = mut.move_start(bundle, t_of(1), keep_before=False)
    own = lessor_check(world, earlier).chains[0]
    assert (own.start_proven, own.end_proven) == (False, True)
    same = mut.move_start(bundle, SUB_FROM, keep_before=False)
    assert not lessor_check(world, same).chains[0].start_proven
    with pytest.raises(PeriodBoundaryError, match=r"\(before\)"):
        lessor_check(world, mut.move_start(bundle, t_of(1), keep_before=True))
    with pytest.raises(PeriodBoundaryError, match=r"\(in\)"):
        lessor_check(world, mut.move_start(bundle, t_of(4), keep_before=True))


def test_extended_period_with_stale_after_is_invalid(world: EvidenceWorld) -> None:
    """Stretched, the old `after` message now lies inside the period."""
    bundle = world.bundle("bus-0001", from_ms=SUB_FROM, to_ms=SUB_TO)
    with pytest.raises(PeriodBoundaryError, match=r"\(after\)"):
        lessor_check(world, mut.set_period(bundle, SUB_FROM, t_of(10)))


def test_shrunk_honest_period_is_refused_by_the_expected_period(world: EvidenceWorld) -> None:
    """Cut the end off and move to_ms (with its after): only the lessor's --to catches it."""
    cut = world.bundle("bus-0001", from_ms=0, to_ms=t_of(9))
    assert lessor_check(world, cut).complete  # a genuine, shorter bundle
    with pytest.raises(PeriodMismatchError, match="before the expected end"):
        lessor_check(world, cut, expected_to_ms=cut.to_ms + 60_000)
    with pytest.raises(PeriodMismatchError, match="after the expected start"):
        lessor_check(world, world.bundle("bus-0001", from_ms=t_of(2)), expected_from_ms=0)


def test_stripped_anchor_is_not_independent(world: EvidenceWorld) -> None:
    """Without the lessor's own export the anchor is only the bundle's copy, or nothing."""
    bundle = world.bundle("bus-0001")
    embedded = verify_bundle_v2(
        bundle, gateway_verifier_key=world.gateway_key,
        anchors=anchor_checker(gateway_verifier_key=world.gateway_key),
    )  # fmt: skip
    assert embedded.anchor.source == "embedded export"
    assert not embedded.independently_anchored
    stripped = verify_bundle_v2(mut.strip_export(bundle), gateway_verifier_key=world.gateway_key)
    assert stripped.anchor.source == "not checked"


@pytest.mark.parametrize(
    ("how", "error", "reason"),
    [
        ("revoke+enroll", BundleRegistryError, "one enrolment per device id"),
        ("enroll", BundleRegistryError, "one enrolment per device id"),
        ("rotate", BundleRegistryError, "current key"),
    ],
)
def test_operator_rekey_is_refused(
    world: EvidenceWorld, tmp_path: Path, how: str, error: type[Exception], reason: str
) -> None:
    """The operator gives pack-0001 its own key (re-signed, re-anchored, export republished)."""
    rekeyed = world.copy(tmp_path / "rekeyed")
    rekeyed.rekey("pack-0001", how=how)
    bundle = rekeyed.bundle("pack-0001")
    with pytest.raises(error, match=reason):
        lessor_check(rekeyed, bundle, export=rekeyed.anchor_export)
    # Leaving the original enrolment out of the bundle breaks the index entry instead.
    dropped = mut.registry_changed(bundle, "pack-0001", lambda r: r.pop(0))
    with pytest.raises(RegistryCompletenessError, match="the index holds"):
        lessor_check(rekeyed, dropped, export=rekeyed.anchor_export)


def test_replaced_device_and_its_successor_verify(world: EvidenceWorld, tmp_path: Path) -> None:
    """pack-0003 revoked and replaced by pack-0004 (an honest `replace`): each bundle is
    VALID and COMPLETE; the `replace` is a registry entry of both (leaving it out of either
    breaks the index entry), verify names the link, and the successor's bundle carries
    pack-0003's history (``tests/unit/test_bundle_predecessor.py`` bends it)."""
    replaced = world.copy(tmp_path / "replaced")
    replaced.replace_device("pack-0003", "pack-0004")
    old, new = replaced.bundle("pack-0003"), replaced.bundle("pack-0004")
    assert_complete(lessor_check(replaced, old))
    assert_complete(lessor_check(replaced, new))
    assert len(mut.device_of(old, "pack-0003").registry) == 3  # enroll, revoke, replace
    link = mut.device_of(old, "pack-0003").registry[-1]
    assert [leaf.index for leaf in mut.device_of(new, "pack-0004").registry][-1] == link.index
    for bundle, device in ((old, "pack-0003"), (new, "pack-0004")):
        dropped = mut.registry_changed(bundle, device, lambda r: r.pop())
        with pytest.raises(RegistryCompletenessError, match="the index holds"):
            lessor_check(replaced, dropped)
    paths = {}
    for name, bundle in (("old", old), ("new", new)):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_bytes(bundle.to_bytes())
    export = ["--anchors", str(replaced.anchor_export)]
    said_old = run_verify(replaced, paths["old"], *export)
    assert said_old.returncode == 0, said_old.stdout + said_old.stderr
    assert f"revoked at leaf {mut.device_of(old, 'pack-0003').registry[1].index}" in said_old.stdout
    assert f"replaced by pack-0004 at leaf {link.index}" in said_old.stdout
    said_new = run_verify(replaced, paths["new"], *export)
    assert said_new.returncode == 0, said_new.stdout + said_new.stderr
    assert f"replaces pack-0003 (leaf {link.index})" in said_new.stdout
    assert "seq none, received 0/0" in said_new.stdout
    assert "predecessor pack-0003 " in said_new.stdout
    # A v1 bundle of either is valid too (and, being v1, never complete).
    for device in ("pack-0003", "pack-0004"):
        v1 = tmp_path / f"{device}.v1.json"
        made = subprocess.run(
            [sys.executable, "-m", "voltproof", "bundle", "--workdir", str(replaced.workdir),
             "--asset", device, "--format", "1", "--out", str(v1)],
            capture_output=True, text=True, cwd=REPO, check=False, timeout=120,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        checked = run_verify(replaced, v1, *export)
        assert checked.returncode == 3, checked.stdout + checked.stderr
        assert checked.stdout.rstrip().endswith("VALID but INCOMPLETE")


def test_forged_log_resigned_with_the_gateway_key_is_refused(
    world: EvidenceWorld, tmp_path: Path
) -> None:
    """A whole other log with the same keys: consistent in itself, not in the lessor's export."""
    forged = build_world(tmp_path / "forged", keys_from=world.workdir,
                         forged=frozenset({"pack-0001"}))  # fmt: skip
    bundle = forged.bundle("pack-0001")
    assert verify_bundle_v2(bundle, gateway_verifier_key=world.gateway_key).anchor
    with pytest.raises(BundleAnchorError):
        lessor_check(world, bundle)
    # Spliced into the honest bundle, the forged messages fail the honest proofs.
    honest = world.bundle("pack-0001")
    spliced = mut.with_chain(honest, mut.chain_of(honest, "pack-0001"),
                             mut.chain_of(bundle, "pack-0001"))  # fmt: skip
    with pytest.raises(BundleVerificationError):
        lessor_check(world, spliced)


def test_stale_checkpoint_cannot_hide_what_the_device_sent_since(
    world: EvidenceWorld, tmp_path: Path
) -> None:
    """The operator hands out a bundle on an older, validly anchored checkpoint, so the
    device's head there "proves" the end and what it sent since stays hidden. The lessor's
    own ledger export holds the later anchor: the end is not proven, and says why."""
    grown = world.copy(tmp_path / "grown")
    copy_agents = {name: replace(agent) for name, agent in grown.agents.items()}
    grown.agents = copy_agents
    until = 2**62  # a period reaching past every anchor (an open lease)
    old = grown.bundle("bus-0002", to_ms=until)
    old_closed = grown.bundle("bus-0002", to_ms=t_of(9))  # its end is proven by seq 9
    assert_complete(lessor_check(grown, old))  # as of its checkpoint, and nothing later known
    grown.grow("bus-0002", messages=3)
    stale = lessor_check(grown, old, export=grown.anchor_export)
    asset = next(c for c in stale.chains if c.role == "asset")
    assert stale.later_anchor is not None
    assert stale.later_anchor.tree_size > stale.checkpoint_size
    assert (asset.end_proven, asset.complete, stale.complete) == (False, False, False)
    assert asset.end_note.startswith("stale checkpoint: the ledger anchored a larger tree")
    # The bundle the builder makes now is on the newer checkpoint, and complete.
    fresh = grown.bundle("bus-0002", to_ms=until)
    assert_complete(lessor_check(grown, fresh))
    assert mut.chain_of(fresh, "bus-0002").messages[-1].index > stale.checkpoint_size
    # A closed period whose end a later message proves is not affected by the later anchor.
    closed = lessor_check(grown, old_closed)
    assert closed.later_anchor is not None
    assert_complete(closed)
    path = tmp_path / "stale.json"
    path.write_bytes(old.to_bytes())
    done = run_verify(grown, path, "--anchors", str(grown.anchor_export))
    assert done.returncode == 3, done.stdout + done.stderr
    assert "end: stale checkpoint" in done.stdout
    assert "ledger:      a larger tree" in done.stdout


def test_wrong_device_messages_are_refused(world: EvidenceWorld) -> None:
    """Another device's message in the asset chain is not telemetry of that device."""
    bundle = world.bundle("bus-0001")
    other = mut.chain_of(world.bundle("bus-0003"), "bus-0003").messages[2]
    mutant = mut.asset_messages(bundle, lambda m: m.__setitem__(2, other))
    with pytest.raises(MessageSignatureError, match="is not a telemetry message of 'bus-0001'"):
        lessor_check(world, mutant)


# -- the command line -------------------------------------------------------------------------


def run_verify(world: EvidenceWorld, path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``voltproof verify`` as its own process."""
    return subprocess.run(
        [sys.executable, "-m", "voltproof", "verify", str(path), "--gateway-key",
         world.gateway_key, *extra],
        capture_output=True, text=True, cwd=REPO, check=False, timeout=120,
    )  # fmt: skip


def test_cli_verdicts(world: EvidenceWorld, tmp_path: Path) -> None:
    """Exit 0 only for complete + independent; 3 incomplete or unanchored; 1 invalid; 2 usage."""
    export = ["--anchors", str(world.anchor_export)]
    honest = tmp_path / "honest.json"
    honest.write_bytes(world.bundle("pack-0001").to_bytes())
    done = run_verify(world, honest, *export)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "bundle:      voltproof-bundle/2"
    assert lines[2].startswith("period:      1970-01-01T00:00:00Z .. ")
    assert "checked against: ledger export" in done.stdout
    assert lines[-1] == "VALID, COMPLETE, independently anchored"
    unanchored = run_verify(world, honest)
    assert unanchored.returncode == 3
    assert "NOT independently checked (embedded export)" in unanchored.stdout
    assert run_verify(world, honest, "--allow-unanchored").returncode == 0
    gapped = tmp_path / "gapped.json"
    gapped.write_bytes(mut.drop_at(5)(world.bundle("bus-0001")).to_bytes())
    incomplete = run_verify(world, gapped, *export)
    assert incomplete.returncode == 3
    assert "missing 5..5" in incomplete.stdout
    assert "VALID but INCOMPLETE" in incomplete.stdout
    assert run_verify(world, gapped, *export, "--allow-incomplete").returncode == 0
    reordered = tmp_path / "reordered.json"
    reordered.write_bytes(mut.swap(5, 6)(world.bundle("bus-0001")).to_bytes())
    invalid = run_verify(world, reordered, *export)
    assert invalid.returncode == 1
    assert "INVALID: ChainOrderError" in invalid.stderr
    short = tmp_path / "short.json"
    short.write_bytes(world.bundle("bus-0001", to_ms=t_of(9)).to_bytes())
    assert run_verify(world, short, *export).returncode == 0
    late = run_verify(world, short, *export, "--to", str(t_of(11)))
    assert late.returncode == 1
    assert "PeriodMismatchError" in late.stderr
    missing = run_verify(world, honest, "--anchors", str(tmp_path / "absent.json"))
    assert missing.returncode == 2
    as_json = run_verify(world, honest, *export, "--json")
    assert '"verdict": "VALID, COMPLETE, independently anchored"' in as_json.stdout


def test_report_from_v2_bundle(world: EvidenceWorld, tmp_path: Path) -> None:
    """`voltproof report` reads a v2 bundle; a forged signature makes it refuse."""
    path = tmp_path / "bus.json"
    path.write_bytes(world.bundle("bus-0001").to_bytes())
    command = [sys.executable, "-m", "voltproof", "report", str(path), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=False)
    assert done.returncode == 0, done.stderr
    assert '"asset":{"id":"bus-0001","kind":"bus"}' in done.stdout
    other = mut.chain_of(world.bundle("bus-0003"), "bus-0003").messages[0]
    bad = mut.asset_messages(world.bundle("bus-0001"), lambda m: m.__setitem__(0, other))
    path.write_bytes(bad.to_bytes())
    refused = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=False)
    assert refused.returncode == 1
    assert "MessageSignatureError" in refused.stderr


def test_anchors_export_is_what_a_lessor_checks_against(
    world: EvidenceWorld, tmp_path: Path
) -> None:
    """`voltproof anchors export` writes the table; verify accepts it as an independent copy."""
    export = tmp_path / "published.json"
    command = [sys.executable, "-m", "voltproof", "anchors", "export", "--workdir",
               str(world.workdir), "--out", str(export)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=False)
    assert done.returncode == 0, done.stderr
    assert "1 anchors" in done.stdout
    assert_complete(lessor_check(world, world.bundle("bus-0003"), export=export))
    nowhere = [*command[:-4], "--workdir", str(tmp_path / "none"), "--out", str(export)]
    failed = subprocess.run(nowhere, capture_output=True, text=True, cwd=REPO, check=False)
    assert failed.returncode == 2
    assert "no gateway configuration" in failed.stderr


def test_checkpoint_without_index_line_is_invalid(world: EvidenceWorld) -> None:
    """A v2 bundle on a checkpoint without the index line (re-signed by the gateway key)."""
    key = load_key_file(world.deployment.settings.key_file)
    bundle = world.bundle("bus-0001")
    body, _ = split_note(bundle.checkpoint)
    plain = replace(parse_checkpoint(body), extensions=())
    bare = replace(bundle, checkpoint=sign_checkpoint(plain, name=key.name, seed=key.seed))
    with pytest.raises(BundleCheckpointError, match="no voltproof-index/1 line"):
        lessor_check(world, bare)
    forged = replace(bundle, checkpoint=bundle.checkpoint.replace("\n\n", "\nextra\n\n", 1))
    with pytest.raises(BundleCheckpointError, match="checkpoint"):
        lessor_check(world, forged)


def test_builder_refuses_what_it_cannot_prove(world: EvidenceWorld, tmp_path: Path) -> None:
    """An unknown asset, an empty period, a stored checkpoint whose index line the store
    contradicts, an unreadable note: each a clear EvidenceError, never a bundle."""
    with pytest.raises(UnknownAssetError, match="no device 'ghost' is enrolled"):
        world.bundle("ghost")
    with pytest.raises(EvidenceError, match="period start"):
        world.bundle("bus-0001", from_ms=5, to_ms=5)
    copy = world.copy(tmp_path / "copy")
    with sqlite3.connect(copy.deployment.settings.db_path) as db:
        (note,) = db.execute("SELECT note FROM checkpoints WHERE anchor_state = 'final'").fetchone()
        line = next(x for x in note.splitlines() if x.startswith("voltproof-index/1 "))
        other = "voltproof-index/1 " + base64.b64encode(bytes(32)).decode()
        db.execute("UPDATE checkpoints SET note = ?", (note.replace(line, other),))
    with pytest.raises(EvidenceError, match="does not give the root its checkpoint commits"):
        copy.bundle("bus-0001")
    with sqlite3.connect(copy.deployment.settings.db_path) as db:
        db.execute("UPDATE checkpoints SET note = 'not a note'")
    with pytest.raises(EvidenceError, match="is unreadable"):
        copy.bundle("bus-0001")


def test_cli_manufacturer_and_pin(world: EvidenceWorld, tmp_path: Path) -> None:
    """--pin with the key the lessor holds passes; another key, a manufacturer whose
    certificate the enrolment lacks, or a malformed option is refused with its reason."""
    from ledger.keys import generate_seed, public_key_from_seed
    from ledger.note import verifier_key
    from ledger.registry import read_registry_entry

    export = ["--anchors", str(world.anchor_export)]
    bundle = world.bundle("pack-0001")
    path = tmp_path / "pack.json"
    path.write_bytes(bundle.to_bytes())
    (device,) = [d for d in bundle.devices if d.device == "pack-0001"]
    enrolled = read_registry_entry(device.registry[0].data, index=device.registry[0].index).key
    assert enrolled is not None
    right = f"pack-0001={base64.b64encode(enrolled).decode()}"
    pinned = run_verify(world, path, *export, "--pin", right)
    assert pinned.returncode == 0, pinned.stderr
    other = public_key_from_seed(generate_seed())
    wrong = run_verify(
        world, path, *export, "--pin", f"pack-0001={base64.b64encode(other).decode()}"
    )
    assert wrong.returncode == 1
    assert "INVALID: PinMismatchError" in wrong.stderr
    maker = verifier_key("maker.example/line-1", public_key_from_seed(generate_seed()))
    uncertified = run_verify(world, path, *export, "--manufacturer", maker)
    assert uncertified.returncode == 1
    assert "INVALID: MissingBirthCertificateError" in uncertified.stderr
    assert run_verify(world, path, *export, "--pin", "no-equals-sign").returncode == 2
    assert run_verify(world, path, *export, "--manufacturer", "not+a+key").returncode == 2


def test_cli_says_when_the_checkpoint_was_anchored(world: EvidenceWorld, tmp_path: Path) -> None:
    """The summary's checkpoint line carries the time the checked ledger recorded it (the
    export's entry for that size); nothing checked, no time claimed."""
    import json

    entries = json.loads(world.anchor_export.read_text(encoding="utf-8"))["entries"]
    bundle = world.bundle("pack-0001")
    (entry,) = [e for e in entries if e["tree_size"] == parse_checkpoint(
        split_note(bundle.checkpoint)[0]).size]  # fmt: skip
    path = tmp_path / "pack.json"
    path.write_bytes(bundle.to_bytes())
    done = run_verify(world, path, "--anchors", str(world.anchor_export))
    assert done.returncode == 0, done.stderr
    when = _iso_ms(entry["anchored_at_ms"])
    assert done.stdout.splitlines()[3] == (
        f"checkpoint:  voltproof.test/gw-1 size {entry['tree_size']}, anchored {when}"
    )
    facts = json.loads(run_verify(world, path, "--anchors", str(world.anchor_export),
                                  "--json").stdout)  # fmt: skip
    assert facts["checkpoint"]["anchored_at_ms"] == entry["anchored_at_ms"]
    assert facts["checkpoint"]["anchored_at"] == when
    path.write_bytes(mut.strip_export(bundle).to_bytes())
    unchecked = run_verify(world, path)
    assert unchecked.returncode == 3
    assert ", time unknown (the anchor was not checked)" in unchecked.stdout.splitlines()[3]


def _iso_ms(ms: int) -> str:
    """ISO 8601 UTC as verify prints it (milliseconds only when there are some)."""
    from datetime import UTC, datetime

    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    text = moment.isoformat(timespec="milliseconds" if ms % 1000 else "seconds")
    return text.replace("+00:00", "Z")


def test_cli_json_gives_the_invalid_verdict(world: EvidenceWorld, tmp_path: Path) -> None:
    """--json on an INVALID bundle still prints one JSON object (error named, exit 1), and the
    one-line reason on stderr; a file that is no bundle at all the same, without facts."""
    import json

    path = tmp_path / "reordered.json"
    path.write_bytes(mut.swap(5, 6)(world.bundle("bus-0001")).to_bytes())
    done = run_verify(world, path, "--anchors", str(world.anchor_export), "--json")
    assert done.returncode == 1
    facts = json.loads(done.stdout)
    assert (facts["valid"], facts["complete"], facts["exit"]) == (False, False, 1)
    assert facts["error"] == "ChainOrderError"
    assert "seq 5 follows seq 6" in facts["reason"]
    assert facts["verdict"].startswith("INVALID: ChainOrderError: ")
    assert facts["asset"] == {"id": "bus-0001", "kind": "bus"}
    assert facts["format"] == "voltproof-bundle/2"
    assert "INVALID: ChainOrderError" in done.stderr
    path.write_text('{"format": "voltproof-bundle/9"}', encoding="utf-8")
    unknown = run_verify(world, path, "--json")
    assert unknown.returncode == 1
    facts = json.loads(unknown.stdout)
    assert (facts["valid"], facts["asset"], facts["error"]) == (
        False, None, "UnknownBundleVersionError")  # fmt: skip
    assert "voltproof-bundle/9" in facts["reason"]


def test_cli_options_are_checked_before_anything_is_printed(
    world: EvidenceWorld, tmp_path: Path
) -> None:
    """A file that is no anchor export, an unreadable --manufacturer file or a malformed --pin
    is a usage error (exit 2) and prints nothing on stdout; --manufacturer reads a key file
    like --gateway-key does."""
    from ledger.keys import generate_seed, public_key_from_seed
    from ledger.note import verifier_key

    path = tmp_path / "pack.json"
    path.write_bytes(world.bundle("pack-0001").to_bytes())
    export = ["--anchors", str(world.anchor_export)]
    not_export = run_verify(world, path, "--anchors", str(path))
    assert not_export.returncode == 2
    assert not_export.stdout == ""
    assert "is not an anchor export: anchor export format must be" in not_export.stderr
    for bad in (["--manufacturer", str(tmp_path / "absent.txt")], ["--pin", "no-equals-sign"]):
        refused = run_verify(world, path, *export, *bad)
        assert refused.returncode == 2, refused.stderr
        assert refused.stdout == ""
    missing = run_verify(world, path, *export, "--manufacturer", str(tmp_path / "absent.txt"))
    assert "--manufacturer" in missing.stderr
    assert "no such file" in missing.stderr
    maker = tmp_path / "maker.txt"
    maker.write_text(
        verifier_key("maker.example/line-1", public_key_from_seed(generate_seed())) + "\n",
        encoding="utf-8",
    )
    from_file = run_verify(world, path, *export, "--manufacturer", str(maker))
    assert from_file.returncode == 1
    assert "INVALID: MissingBirthCertificateError" in from_file.stderr
