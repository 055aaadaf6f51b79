"""A partner that no registry holds: the v2 bundle proves its absence from the device index.

The world: the evidence fleet plus ``pack-0004``, which names ``bus-9999`` (never enrolled)
as its host for its first four messages and ``bus-0002`` after, and ``bus-0004``, whose
messages name ``pack-9999`` (never enrolled) as installed. All through the real registry,
pipeline and store; the checkpoint signed with its index line and anchored.

An honest bundle is VALID and COMPLETE with the absence proven; an operator who drops a
real host's chain and claims the host absent, forges proof bits, or claims the absence of a
device the asset never names is refused with the reason named.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.evidence_v2 import extract_payloads_v2
from gateway.pipeline import OutcomeKind, Pipeline
from gateway.registry import DeviceSpec, Registry
from gateway.store import SqliteStore
from ledger.anchors.evm_checker import anchor_checker
from ledger.bundle import BundleFormatError
from ledger.bundle_v2 import (
    MAX_ABSENT,
    AbsentDevice,
    BundleAbsenceError,
    BundleV2,
    parse_bundle_v2,
    read_bundle,
)
from ledger.device_index import DeviceIndex, index_key
from ledger.keys import load_key_file, public_key_from_seed
from ledger.merkle.index_tree import IndexProof
from ledger.report import compute_report
from ledger.verify_v2 import (
    ABSENCE_PROVEN,
    AbsenceProofError,
    AbsentPartner,
    BundleDeviceError,
    HostChainError,
    V2Report,
    verify_bundle_v2,
)
from tests.support import bundle_mutations as mut
from tests.support.evidence_world import (
    FLEET,
    Agent,
    EvidenceWorld,
    build_world,
    seed_of,
    sign_and_anchor,
    t_of,
)
from tests.support.gateway_devices import T0_MS
from tests.support.paths import REPO
from voltproof.cli.report import offline_report

STRAY_HOST = "bus-9999"
STRAY_PACK = "pack-9999"


async def _add_strays(world: EvidenceWorld) -> None:
    settings = world.deployment.settings
    store = await SqliteStore.open(settings.db_path)
    try:
        operator = load_key_file(settings.operator_key_file)
        registry = Registry(store=store, operator=operator, clock_ms=lambda: T0_MS)
        pack = Agent(device_id="pack-0004", kind="pack", seed=seed_of("pack-0004"))
        bus = Agent(device_id="bus-0004", kind="bus", seed=seed_of("bus-0004"))
        await registry.enroll(
            [DeviceSpec(device_id=a.device_id, kind="pack" if a.kind == "pack" else "bus",
                        fleet=FLEET, public_key=public_key_from_seed(a.seed))
             for a in (pack, bus)]
        )  # fmt: skip
        world.agents.update({pack.device_id: pack, bus.device_id: bus})
        batch = []
        for seq in range(8):
            batch.append(pack.incoming(pack.sign(host=STRAY_HOST if seq < 4 else "bus-0002")))
            batch.append(bus.incoming(bus.sign(packs=(STRAY_PACK,))))
        outcomes = await Pipeline(store=store).process(batch)
        assert all(o.kind is OutcomeKind.ACCEPTED for o in outcomes), outcomes
        await sign_and_anchor(world, store)
    finally:
        await store.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> EvidenceWorld:
    """The evidence fleet plus a pack and a bus naming partners never enrolled."""
    built = build_world(tmp_path_factory.mktemp("absence") / "gw")
    asyncio.run(_add_strays(built))
    return built


async def _index(world: EvidenceWorld) -> DeviceIndex:
    store = await SqliteStore.open(world.deployment.settings.db_path)
    try:
        head = await store.log_head()
        return await store.device_index_at(head.size)
    finally:
        await store.close()


@pytest.fixture(scope="module")
def index(world: EvidenceWorld) -> DeviceIndex:
    """The device index the bundles' checkpoint commits to."""
    return asyncio.run(_index(world))


def lessor_check(world: EvidenceWorld, bundle: BundleV2) -> V2Report:
    """The bundle, read back from its file, against the anchor export the lessor holds."""
    anchors = anchor_checker(
        gateway_verifier_key=world.gateway_key,
        anchor_export=world.anchor_export.read_text(encoding="utf-8"),
    )
    again = read_bundle(bundle.to_bytes())
    assert isinstance(again, BundleV2)
    assert again == bundle
    return verify_bundle_v2(again, gateway_verifier_key=world.gateway_key, anchors=anchors)


# -- honest bundles ---------------------------------------------------------------------------


def test_pack_with_a_host_never_enrolled_is_valid_and_complete(world: EvidenceWorld) -> None:
    """The builder proves bus-9999 absent instead of refusing; the verifier accepts the
    interval without a chain and says so."""
    bundle = world.bundle("pack-0004")
    assert [a.device for a in bundle.absent] == [STRAY_HOST]
    assert [(c.device, c.role) for c in bundle.chains] == [
        ("pack-0004", "asset"), ("bus-0002", "host")]  # fmt: skip
    assert {d.device for d in bundle.devices} == {"pack-0004", "bus-0002"}
    report = lessor_check(world, bundle)
    assert report.independently_anchored
    assert report.complete, report.chains
    assert report.absent == (
        AbsentPartner(device=STRAY_HOST, role="host", from_ms=t_of(0), to_ms=t_of(4)),
    )
    assert report.absent[0].status == ABSENCE_PROVEN == "not enrolled (absence proven)"


def test_bus_naming_a_pack_never_enrolled_is_valid_and_complete(world: EvidenceWorld) -> None:
    """The mirror: a bus's installed pack that the index does not hold."""
    bundle = world.bundle("bus-0004")
    assert [a.device for a in bundle.absent] == [STRAY_PACK]
    assert [c.role for c in bundle.chains] == ["asset"]
    report = lessor_check(world, bundle)
    assert report.complete
    assert [(a.device, a.role) for a in report.absent] == [(STRAY_PACK, "installed")]


def test_period_inside_the_stray_interval_has_only_the_absence(world: EvidenceWorld) -> None:
    """A period in which the pack names only bus-9999: no host chain at all, still complete."""
    bundle = world.bundle("pack-0004", to_ms=t_of(3))
    assert [c.role for c in bundle.chains] == ["asset"]
    report = lessor_check(world, bundle)
    assert report.complete
    assert [(a.from_ms, a.to_ms) for a in report.absent] == [(t_of(0), t_of(3))]


def test_bundles_without_strays_carry_no_absent_field(world: EvidenceWorld) -> None:
    """Nothing changes for a pack whose hosts are all enrolled (the file has no ``absent``)."""
    bundle = world.bundle("pack-0001")
    assert bundle.absent == ()
    assert "absent" not in json.loads(bundle.to_bytes())
    assert lessor_check(world, bundle).absent == ()


async def _served(world: EvidenceWorld, asset: str, to_ms: int) -> str:
    store = await SqliteStore.open(world.deployment.settings.db_path)
    try:
        found = await extract_payloads_v2(store, asset_id=asset, from_ms=0, to_ms=to_ms)
    finally:
        await store.close()
    return compute_report(found.payloads, asset_id=asset, asset_kind=found.asset_kind,
                          from_ms=found.from_ms, to_ms=found.to_ms).to_json()  # fmt: skip


def test_payload_report_is_the_offline_report_of_the_bundle(world: EvidenceWorld) -> None:
    """What the API serves for the pack equals `voltproof report` of its bundle."""
    bundle = world.bundle("pack-0004")
    assert (
        asyncio.run(_served(world, "pack-0004", bundle.to_ms)) == offline_report(bundle).to_json()
    )


# -- a dishonest operator ---------------------------------------------------------------------


def _hide_host(bundle: BundleV2, proof: IndexProof, *, keep_device: bool = False) -> BundleV2:
    """``bundle`` without bus-0002's host chain (and entry), claiming bus-0002 absent."""
    chain = mut.chain_of(bundle, "bus-0002", "host")
    hidden = mut.with_chain(bundle, chain, None)
    if not keep_device:
        hidden = mut.with_device(hidden, mut.device_of(hidden, "bus-0002"), None)
    claim = AbsentDevice(device="bus-0002", proof=proof)
    return replace(hidden, absent=(*hidden.absent, claim))


def test_dropping_a_real_host_and_claiming_it_absent_is_refused(
    world: EvidenceWorld, index: DeviceIndex
) -> None:
    """The operator's best tries: the host's own entry proof as if its path ended empty, and
    every other device's leaf at every depth it could claim ends the host's path."""
    bundle = world.bundle("pack-0004")
    entry_proof = index.proof("bus-0002")
    assert entry_proof.other_key is None  # an entry proof: bus-0002 is in the index
    with pytest.raises(AbsenceProofError, match=r"'bus-0002' is claimed absent .* does not"):
        lessor_check(world, _hide_host(bundle, entry_proof))
    tries = 0
    for entry in index.entries():
        if entry.device == "bus-0002":
            continue
        siblings = index.proof(entry.device).siblings
        for depth in range(len(siblings) + 1):
            forged = IndexProof(siblings=siblings[:depth], other_key=index_key(entry.device),
                                other_value_hash=entry.value_hash())  # fmt: skip
            with pytest.raises(AbsenceProofError, match="'bus-0002' is claimed absent"):
                lessor_check(world, _hide_host(bundle, forged))
            tries += 1
    assert tries > len(index)
    with pytest.raises(AbsenceProofError, match="and the bundle gives its index entry"):
        lessor_check(world, _hide_host(bundle, entry_proof, keep_device=True))


def test_dropping_a_real_host_without_a_claim_stays_refused(world: EvidenceWorld) -> None:
    """Without an absence claim the missing chain is a missing host chain, as before."""
    bundle = world.bundle("pack-0004")
    hidden = mut.with_chain(bundle, mut.chain_of(bundle, "bus-0002", "host"), None)
    hidden = mut.with_device(hidden, mut.device_of(hidden, "bus-0002"), None)
    with pytest.raises(HostChainError, match="put it in 'bus-0002'"):
        lessor_check(world, hidden)


def _flip(value: bytes, bit: int = 0) -> bytes:
    return bytes([value[0] ^ (1 << bit)]) + value[1:]


def _forgeries(proof: IndexProof) -> list[tuple[str, IndexProof]]:
    """Every sibling flipped, one removed, one added, the other leaf changed or dropped."""
    siblings = proof.siblings
    found = [
        (f"sibling {depth} flipped",
         replace(proof, siblings=(*siblings[:depth], _flip(s), *siblings[depth + 1 :])))
        for depth, s in enumerate(siblings)
    ]  # fmt: skip
    found.append(("sibling added", replace(proof, siblings=(*siblings, bytes(32)))))
    if siblings:
        found.append(("last sibling removed", replace(proof, siblings=siblings[:-1])))
        found.append(("first sibling removed", replace(proof, siblings=siblings[1:])))
    if proof.other_key is not None and proof.other_value_hash is not None:
        found.append(("other value flipped",
                      replace(proof, other_value_hash=_flip(proof.other_value_hash))))  # fmt: skip
        found.extend((f"other key bit {bit} flipped",
                      replace(proof, other_key=_flip(proof.other_key, bit)))
                     for bit in (0, 7))  # fmt: skip
        found.append(("other leaf dropped", IndexProof(siblings=siblings)))
    else:
        found.append(("some leaf claimed", replace(proof, other_key=bytes(32),
                                                   other_value_hash=bytes(32))))  # fmt: skip
    return found


@pytest.mark.parametrize("asset", ["pack-0004", "bus-0004"])
def test_forged_absence_proof_bits_are_refused(world: EvidenceWorld, asset: str) -> None:
    """Each systematic corruption of an honest absence proof is refused by name."""
    bundle = world.bundle(asset)
    (claim,) = bundle.absent
    forgeries = _forgeries(claim.proof)
    assert len(forgeries) >= 4
    for what, forged in forgeries:
        mutant = replace(bundle, absent=(replace(claim, proof=forged),))
        with pytest.raises(AbsenceProofError, match="claimed absent from the index") as caught:
            lessor_check(world, mutant)
        assert claim.device in str(caught.value), what


def test_absence_of_a_device_the_asset_never_names_is_refused(
    world: EvidenceWorld, index: DeviceIndex
) -> None:
    """A genuine absence proof of an unrelated id is still disclosure outside the bundle's
    partners: refused like an unrelated device."""
    unrelated = AbsentDevice(device="bus-7777", proof=index.proof("bus-7777"))
    pack4 = world.bundle("pack-0004")
    with pytest.raises(
        BundleDeviceError, match=r"'bus-7777' is claimed absent .* never name it as host"
    ):
        lessor_check(world, replace(pack4, absent=(*pack4.absent, unrelated)))
    pack1 = world.bundle("pack-0001")
    stray = AbsentDevice(device=STRAY_HOST, proof=index.proof(STRAY_HOST))
    with pytest.raises(
        BundleDeviceError, match=r"'bus-9999' is claimed absent .* never name it as host"
    ):
        lessor_check(world, replace(pack1, absent=(stray,)))
    bus4 = world.bundle("bus-0004")
    with pytest.raises(BundleDeviceError, match="bus's messages never name it as installed"):
        lessor_check(world, replace(bus4, absent=(*bus4.absent, unrelated)))
    twice = replace(pack4, absent=pack4.absent * 2)
    with pytest.raises(BundleDeviceError, match="claimed absent twice"):
        verify_bundle_v2(twice, gateway_verifier_key=world.gateway_key)


def test_dropping_the_absence_is_refused(world: EvidenceWorld) -> None:
    """Without its absence proof the stray interval is a missing host chain."""
    bundle = world.bundle("pack-0004")
    with pytest.raises(HostChainError, match="put it in 'bus-9999'"):
        lessor_check(world, replace(bundle, absent=()))


# -- the file ---------------------------------------------------------------------------------


def _edited(bundle: BundleV2, change: Any) -> bytes:
    document = json.loads(bundle.to_bytes())
    change(document)
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.__setitem__("absent", []), "absent has 0 entries"),
        (lambda d: d.__setitem__("absent", {}), "absent must be a list"),
        (lambda d: d.__setitem__("absent", d["absent"] * 2), "'bus-9999' is listed twice"),
        (
            lambda d: d.__setitem__("absent", d["absent"] * (MAX_ABSENT + 1)),
            "absent has 1001 entries; give 1 to 1000",
        ),
        (lambda d: d["absent"][0].__setitem__("extra", 1), r"unknown fields \['extra'\]"),
        (lambda d: d["absent"][0].pop("other"), r"lacks absent\[0\]\.other"),
        (
            lambda d: d["absent"][0].__setitem__("index_proof", ["AAAA"] * 257),
            "more than 256 hashes",
        ),
        (lambda d: d["absent"][0].__setitem__("index_proof", ["AA=="]), "must be 32 bytes"),
        (lambda d: d["absent"][0].__setitem__("other", {"key": "AA=="}), "lacks"),
        (lambda d: d["absent"][0].__setitem__("id", 5), "must be str"),
    ],
)
def test_absent_field_is_strictly_parsed(world: EvidenceWorld, change: Any, message: str) -> None:
    """Bounded, each id once, every key required and no others, each hash 32 bytes."""
    data = _edited(world.bundle("pack-0004"), change)
    with pytest.raises(BundleFormatError, match=message):
        parse_bundle_v2(data)


def test_absent_errors_are_their_own_type(world: EvidenceWorld) -> None:
    """The list-level refusals name the field by type (``BundleAbsenceError``)."""
    data = _edited(world.bundle("pack-0004"), lambda d: d.__setitem__("absent", []))
    with pytest.raises(BundleAbsenceError):
        parse_bundle_v2(data)


# -- the command line -------------------------------------------------------------------------


def _iso(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, tz=UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )


def _verify(world: EvidenceWorld, path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voltproof", "verify", str(path), "--gateway-key",
         world.gateway_key, "--anchors", str(world.anchor_export), *extra],
        capture_output=True, text=True, cwd=REPO, check=False, timeout=120,
    )  # fmt: skip


def test_cli_prints_the_proven_absence(world: EvidenceWorld, tmp_path: Path) -> None:
    """`voltproof verify` names the absent host and its interval; a forged claim is INVALID."""
    honest = tmp_path / "pack4.json"
    bundle = world.bundle("pack-0004")
    honest.write_bytes(bundle.to_bytes())
    done = _verify(world, honest)
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if "bus-9999" in x)
    assert (
        line == f"  host bus-9999 {_iso(t_of(0))} .. {_iso(t_of(4))}: not enrolled (absence proven)"
    )
    assert done.stdout.splitlines()[-1] == "VALID, COMPLETE, independently anchored"
    as_json = json.loads(_verify(world, honest, "--json").stdout)
    assert as_json["absent"] == [{
        "device": STRAY_HOST, "role": "host", "from_ms": t_of(0), "to_ms": t_of(4),
        "from": _iso(t_of(0)), "to": _iso(t_of(4)),
        "status": "not enrolled (absence proven)"}]  # fmt: skip
    (claim,) = bundle.absent
    forged = replace(bundle, absent=(replace(claim, proof=_forgeries(claim.proof)[0][1]),))
    bad = tmp_path / "forged.json"
    bad.write_bytes(forged.to_bytes())
    refused = _verify(world, bad)
    assert refused.returncode == 1
    assert "INVALID: AbsenceProofError: device 'bus-9999' is claimed absent" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_cli_bundle_notes_the_absence(world: EvidenceWorld, tmp_path: Path) -> None:
    """`voltproof bundle` says which partner it proved absent; the file verifies."""
    out = tmp_path / "pack4-cli.json"
    done = subprocess.run(
        [sys.executable, "-m", "voltproof", "bundle", "--workdir", str(world.workdir),
         "--asset", "pack-0004", "--out", str(out)],
        capture_output=True, text=True, cwd=REPO, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "devices bus-0002, pack-0004," in done.stdout
    assert (
        "note: bus-9999 named by the asset's messages is not enrolled; the bundle proves its "
        "absence from the device index"
    ) in done.stdout
    assert _verify(world, out).returncode == 0
