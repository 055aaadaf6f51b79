"""GB/T 32960 terminal frames in ``voltproof-bundle/2``: carried, verified, attacked.

The frames come from the independent rtm-con encoder through the real listener
(``tests.support.terminal_world``); the SM2 keys and signatures are real (gmssl). Each attack
is made the way the operator would make it, with every proof genuine, and must be refused
with its named reason.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.access import Role
from api.accessdb import AccessDb
from api.app import create_app
from api.settings import load_deployment
from gateway.config import GbtSettings
from gateway.gbt32960 import GbtListener
from gateway.store import SqliteStore
from ledger.anchors.evm_checker import anchor_checker
from ledger.bundle_v2 import BundleV2, RoleChain, read_bundle
from ledger.gbt32960.errors import ANSWER_ERROR
from ledger.keys import load_key_file
from ledger.message import decode_message, sign_registry_entry
from ledger.telemetry import decode_columns
from ledger.verify import ChainOrderError, InclusionProofError
from ledger.verify_terminal import (
    RECEIVED_ONLY,
    SIGNED_BY_TERMINAL,
    ReceivedOnlyError,
    TerminalEditionError,
    TerminalFrameError,
    TerminalMismatchError,
    TerminalPinError,
    TerminalSignatureError,
    check_terminal_pins,
)
from ledger.verify_v2 import V2Report, check_messages_v2, verify_bundle_v2
from tests.support import gbt_terminal as terminal
from tests.support.gbt_world import TerminalConnection
from tests.support.paths import REPO
from tests.support.terminal_world import (
    CLOCK_MS,
    FRAMES,
    TO_MS,
    VIN_2016,
    VIN_2025,
    VIN_OTHER,
    TerminalWorld,
    build_terminal_world,
)

Counts = dict[str, int]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> TerminalWorld:
    """The honest world, shared by the tests that only read or mutate bundles in memory."""
    return build_terminal_world(tmp_path_factory.mktemp("terminals"))


def _verify(world: TerminalWorld, bundle: BundleV2, *, require_signed: bool = False) -> V2Report:
    export = world.evidence.anchor_export.read_text(encoding="utf-8")
    checker = anchor_checker(
        gateway_verifier_key=world.gateway_key, anchor_export=export, rpc_url=None
    )
    return verify_bundle_v2(
        bundle, gateway_verifier_key=world.gateway_key, anchors=checker,
        require_signed=require_signed,
    )  # fmt: skip


def _own(bundle: BundleV2) -> RoleChain:
    (chain,) = bundle.chains
    return chain


def _with_messages(bundle: BundleV2, messages: tuple[object, ...]) -> BundleV2:
    chain = replace(_own(bundle), messages=messages)  # type: ignore[arg-type]
    return replace(bundle, chains=(chain,))


# -- what an honest bundle carries and proves ----------------------------------------------


def test_bundle_carries_the_frames_byte_exact_with_the_enrolment(world: TerminalWorld) -> None:
    """The asset chain holds every logged frame (leaf bytes end with the frame as sent), and
    the device carries its enrolment: VIN, chip id, SM2 key and (2025) edition."""
    for vin in (VIN_2016, VIN_2025):
        bundle = world.bundle(vin)
        leaves = _own(bundle).messages
        assert [
            leaf.data.endswith(sent) for leaf, sent in zip(leaves, world.sent[vin], strict=True)
        ] == [True] * FRAMES
        (device,) = bundle.devices
        enrol = decode_message(device.registry[0].data).payload
        assert enrol["gbt"]["vin"] == vin
        assert enrol["gbt"]["sm2"] == world.keys[vin].public
        assert enrol["gbt"]["chip"] == f"chip-{vin[-4:]}"
        assert enrol["gbt"].get("edition") == (2025 if vin == VIN_2025 else None)
        assert read_bundle(bundle.to_bytes()) == bundle


def test_honest_bundles_are_valid_complete_and_labelled(world: TerminalWorld) -> None:
    """2025 frames are signed by the terminal, 2016 frames received-only; both complete."""
    signed = _verify(world, world.bundle(VIN_2025))
    received = _verify(world, world.bundle(VIN_2016))
    assert signed.evidence == {SIGNED_BY_TERMINAL: FRAMES}
    assert received.evidence == {RECEIVED_ONLY: FRAMES}
    for report in (signed, received):
        assert report.complete
        assert report.independently_anchored
        assert report.messages == FRAMES


def test_require_signed_refuses_received_only_evidence(world: TerminalWorld) -> None:
    """A lessor who requires signed evidence gets the 2025 bus, and a named refusal for 2016."""
    assert _verify(world, world.bundle(VIN_2025), require_signed=True).complete
    with pytest.raises(ReceivedOnlyError, match=r"unsigned 2016 frame .* signed evidence"):
        _verify(world, world.bundle(VIN_2016), require_signed=True)


def test_report_payloads_are_the_frames_samples(world: TerminalWorld) -> None:
    """What ``voltproof report`` reads: one bus sample per frame, the encoder's values."""
    payloads = check_messages_v2(world.bundle(VIN_2025))
    assert [p["seq"] for p in payloads] == list(range(FRAMES))
    speeds = [decode_columns(p).columns["spd"][0] for p in payloads]
    assert speeds == [round((30.0 + k) * 10) for k in range(FRAMES)]


# -- the operator attacks: each refused by name -------------------------------------------


def test_altered_signature_is_refused(world: TerminalWorld, tmp_path: Path) -> None:
    """The operator logs a 2025 frame whose signature it altered (every proof genuine)."""
    forged = _copy(world, tmp_path)
    forged.forge(VIN_2025, forged.frame(VIN_2025, FRAMES, tamper=True))
    with pytest.raises(TerminalSignatureError, match="does not verify against the registered"):
        _verify(forged, forged.bundle(VIN_2025))


def test_frame_signed_by_another_key_is_refused(world: TerminalWorld, tmp_path: Path) -> None:
    """The operator signs a frame of its own making with a key it holds."""
    forged = _copy(world, tmp_path)
    own_key = terminal.Sm2Key.generate()
    forged.forge(VIN_2025, forged.frame(VIN_2025, FRAMES, key=own_key))
    with pytest.raises(TerminalSignatureError, match="chip chip-0025"):
        _verify(forged, forged.bundle(VIN_2025))


def test_frame_of_another_vin_logged_under_this_one_is_refused(
    world: TerminalWorld, tmp_path: Path
) -> None:
    """A genuine, validly signed frame of another bus, logged in this bus's chain."""
    forged = _copy(world, tmp_path)
    forged.forge(VIN_2025, forged.sent[VIN_OTHER][0])
    with pytest.raises(TerminalMismatchError, match=f"frame of VIN {VIN_OTHER}"):
        _verify(forged, forged.bundle(VIN_2025))


def test_frame_of_another_vin_spliced_into_the_bundle_is_refused(world: TerminalWorld) -> None:
    """The other bus's logged leaf (its inclusion proof is genuine) put into this chain."""
    other = _own(world.bundle(VIN_OTHER)).messages
    bundle = world.bundle(VIN_2025)
    spliced = _with_messages(bundle, (*_own(bundle).messages[:3], other[3],
                                      *_own(bundle).messages[4:]))  # fmt: skip
    with pytest.raises(TerminalMismatchError, match=f"names device '{VIN_OTHER}'"):
        _verify(world, spliced)


def test_2016_frame_relabelled_as_2025_is_refused(world: TerminalWorld, tmp_path: Path) -> None:
    """A 2016 frame with 2025 start bytes (its check code still matches): no signature."""
    forged = _copy(world, tmp_path)
    unsigned = terminal.realtime(2016, VIN_OTHER, terminal.Reading(at=terminal.at(100)))
    forged.forge(VIN_OTHER, b"$$" + unsigned[2:], columns_of=unsigned)
    with pytest.raises(TerminalFrameError, match="frame at leaf"):
        _verify(forged, forged.bundle(VIN_OTHER))


def test_unsigned_frame_of_a_2025_terminal_is_refused(world: TerminalWorld, tmp_path: Path) -> None:
    """The downgrade: the operator logs a 2016 (unsigned) frame under a 2025 terminal's VIN."""
    forged = _copy(world, tmp_path)
    forged.forge(VIN_2025, terminal.realtime(2016, VIN_2025, terminal.Reading(at=terminal.at(99))))
    with pytest.raises(TerminalEditionError, match="enrolled as edition 2025"):
        _verify(forged, forged.bundle(VIN_2025))


def test_swapped_enrolment_key_fails_the_registry_proof(world: TerminalWorld) -> None:
    """The operator re-signs the terminal's enrolment with its own SM2 key in the bundle."""
    bundle = world.bundle(VIN_2025)
    (device,) = bundle.devices
    payload = dict(decode_message(device.registry[0].data).payload)
    payload["gbt"] = {**payload["gbt"], "sm2": terminal.Sm2Key.generate().public}
    operator = load_key_file(world.deployment.settings.operator_key_file)
    entry = replace(
        device.registry[0],
        data=sign_registry_entry(payload, seed=operator.seed, kid=operator.name),
    )
    swapped = replace(bundle, devices=(replace(device, registry=(entry,)),))
    with pytest.raises(InclusionProofError, match=rf"registry entry at leaf 1 \(enroll {VIN_2025}"):
        _verify(world, swapped)
    # Without proofs (what ``voltproof report`` checks), the frames betray the swapped key.
    with pytest.raises(TerminalSignatureError, match="seq 0"):
        check_messages_v2(swapped)


def test_dropped_frame_is_a_gap(world: TerminalWorld) -> None:
    """A frame left out of the chain: valid, but INCOMPLETE with the missing seq named."""
    bundle = world.bundle(VIN_2025)
    messages = _own(bundle).messages
    report = _verify(world, _with_messages(bundle, (*messages[:2], *messages[3:])))
    (chain,) = report.chains
    assert not report.complete
    assert [(gap.first, gap.last) for gap in chain.gaps] == [(2, 2)]
    assert chain.received == FRAMES - 1


def test_reordered_frames_are_refused(world: TerminalWorld) -> None:
    """Two frames swapped in the chain."""
    bundle = world.bundle(VIN_2016)
    m = _own(bundle).messages
    with pytest.raises(ChainOrderError, match="seq 1 follows seq 2"):
        _verify(world, _with_messages(bundle, (m[0], m[2], m[1], *m[3:])))


def test_flipped_bit_in_a_carried_frame_is_refused(world: TerminalWorld) -> None:
    """A frame altered in the bundle only: its inclusion proof no longer leads to the root."""
    bundle = world.bundle(VIN_2025)
    first = _own(bundle).messages[0]
    data = bytearray(first.data)
    data[-5] ^= 1
    altered = _with_messages(bundle, (replace(first, data=bytes(data)),
                                      *_own(bundle).messages[1:]))  # fmt: skip
    with pytest.raises(InclusionProofError):
        _verify(world, altered)


# -- the command line ----------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voltproof", *args], cwd=REPO, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip


def test_cli_verify_labels_and_require_signed(world: TerminalWorld, tmp_path: Path) -> None:
    """``voltproof verify`` exits 0 for both buses, says received-only for 2016 (text and
    --json counts per label); with --require-signed the 2016 bundle is INVALID, by name."""
    paths = {}
    for vin in (VIN_2016, VIN_2025):
        paths[vin] = tmp_path / f"{vin}.bundle"
        paths[vin].write_bytes(world.bundle(vin).to_bytes())
    base = ["--gateway-key", world.gateway_key, "--anchors", str(world.evidence.anchor_export)]
    text = _cli("verify", str(paths[VIN_2016]), *base)
    assert text.returncode == 0, text.stdout + text.stderr
    assert f"evidence:    {FRAMES} received-only (received-only:" in text.stdout
    assert f"{FRAMES} of {FRAMES} messages received-only" in text.stdout
    signed = _cli("verify", str(paths[VIN_2025]), *base, "--json", "--require-signed")
    assert signed.returncode == 0, signed.stdout + signed.stderr
    facts = json.loads(signed.stdout)
    assert facts["evidence"] == {SIGNED_BY_TERMINAL: FRAMES}
    assert facts["chains"][0]["evidence"] == {SIGNED_BY_TERMINAL: FRAMES}
    refused = _cli("verify", str(paths[VIN_2016]), *base, "--require-signed")
    assert refused.returncode == 1
    assert "ReceivedOnlyError" in refused.stderr
    assert "Traceback" not in refused.stderr


def _copy(world: TerminalWorld, workdir: Path) -> TerminalWorld:
    """The operator's own copy of the deployment (it tampers with the copy)."""
    copied = world.evidence.copy(workdir / "operator")
    return TerminalWorld(deployment=copied.deployment, keys=world.keys, sent=world.sent)


def test_gateway_refuses_a_frame_of_another_edition_than_enrolled(
    world: TerminalWorld, tmp_path: Path
) -> None:
    """The listener itself refuses an unsigned 2016 frame under a 2025-enrolled VIN (0x02,
    quarantined as gbt_wrong_edition) and logs nothing for it."""
    copied = _copy(world, tmp_path)
    downgrade = terminal.realtime(2016, VIN_2025, terminal.Reading(at=terminal.at(99)))
    answer, reasons, heads = asyncio.run(_send_one(copied, downgrade))
    assert answer[3] == ANSWER_ERROR
    assert reasons == {"gbt_wrong_edition": 1}
    assert heads[VIN_2025] == FRAMES - 1


async def _send_one(world: TerminalWorld, frame: bytes) -> tuple[bytes, Counts, Counts]:
    """Send ``frame`` to a listener on ``world``'s store: the answer, quarantine counts, heads."""
    store = await SqliteStore.open(world.deployment.settings.db_path)
    settings = GbtSettings(enabled=True, host="127.0.0.1", port=0)
    try:
        async with GbtListener(settings=settings, store=store, clock_ms=lambda: CLOCK_MS) as gw:
            link = await TerminalConnection.open(*gw.address)
            async with link:
                answer = await link.ask(frame)
        reasons = {c.reason: c.total for c in await store.quarantine_counts()}
        heads = {h.device_id: h.seq for h in await store.chain_heads()}
    finally:
        await store.close()
    return answer, reasons, heads


def test_cli_report_shows_the_terminal_figures_and_label(
    world: TerminalWorld, tmp_path: Path
) -> None:
    """``voltproof report`` on a terminal bus: the pack figures the frames carry (the
    encoder's values) and the evidence label of each edition."""
    last = FRAMES - 1
    expected = {
        "terminal_frames": FRAMES, "terminal_soc_first": 78, "terminal_soc_last": 78 - last,
        "terminal_soc_min": 78 - last, "terminal_voltage_max": 612.3,
        "terminal_voltage_min": round(612.3 - last, 1), "terminal_current_max": 45.6 + last,
        "terminal_cell_v_max": 3.322, "terminal_cell_v_min": round(3.298 - last / 1000, 3),
        "terminal_temp_max": 27 + max(0, last - 2), "terminal_temp_min": 24,
        "terminal_mileage_first": 12_345.6, "terminal_insulation_min": 5000,
    }  # fmt: skip
    for vin, label in ((VIN_2016, RECEIVED_ONLY), (VIN_2025, SIGNED_BY_TERMINAL)):
        path = tmp_path / f"{vin}.bundle"
        path.write_bytes(world.bundle(vin).to_bytes())
        done = _cli("report", str(path), "--json")
        assert done.returncode == 0, done.stderr
        figures = json.loads(done.stdout)["figures"]
        assert figures["terminal_evidence"]["value"] == label
        got = {key: figures[key]["value"] for key in expected}
        assert got == pytest.approx(expected)
        assert figures["distance"]["value"] == pytest.approx(last / 10)
        text = _cli("report", str(path))
        assert text.returncode == 0, text.stderr
        assert label in text.stdout


def test_api_report_equals_the_offline_report(world: TerminalWorld, tmp_path: Path) -> None:
    """The dashboard API's report of a terminal bus is the one ``voltproof report`` computes
    from the bundle the API serves: terminal figures and evidence label included."""
    secret = asyncio.run(_operator_secret(world))
    headers = {"Authorization": f"Bearer {secret}"}
    with TestClient(create_app(load_deployment(workdir=world.deployment.workdir))) as client:
        for vin in (VIN_2016, VIN_2025):
            query = f"?from=0&to={TO_MS}"
            served = client.get(f"/api/assets/{vin}/report{query}", headers=headers)
            assert served.status_code == 200, served.text
            bundle = client.get(f"/api/assets/{vin}/bundle{query}", headers=headers)
            path = tmp_path / f"{vin}.bundle"
            path.write_bytes(bundle.content)
            offline = _cli("report", str(path), "--json")
            assert offline.returncode == 0, offline.stderr
            assert served.json() == json.loads(offline.stdout)
            label = RECEIVED_ONLY if vin == VIN_2016 else SIGNED_BY_TERMINAL
            assert served.json()["figures"]["terminal_evidence"]["value"] == label


def test_api_report_refuses_a_stored_frame_that_does_not_decode(
    world: TerminalWorld, tmp_path: Path
) -> None:
    """A 2016 frame relabelled 2025 in the operator's store: the bundle still carries it (the
    verifier refuses it, test above), and the served report is a 422 naming its leaf, never a
    report computed without it."""
    forged = _copy(world, tmp_path)
    unsigned = terminal.realtime(2016, VIN_OTHER, terminal.Reading(at=terminal.at(100)))
    forged.forge(VIN_OTHER, b"$$" + unsigned[2:], columns_of=unsigned)
    secret = asyncio.run(_operator_secret(forged, name="operator-forged"))
    headers = {"Authorization": f"Bearer {secret}"}
    with TestClient(create_app(load_deployment(workdir=forged.deployment.workdir))) as client:
        query = f"?from=0&to={TO_MS}"
        bundle = client.get(f"/api/assets/{VIN_OTHER}/bundle{query}", headers=headers)
        assert bundle.status_code == 200, bundle.text
        served = client.get(f"/api/assets/{VIN_OTHER}/report{query}", headers=headers)
    assert served.status_code == 422, served.text
    assert re.search(r"stored leaf \d+ is no GB/T 32960 frame", served.json()["detail"])


async def _operator_secret(world: TerminalWorld, *, name: str = "operator-gbt") -> str:
    access = await AccessDb.open(world.deployment.settings.data_dir / "api.db")
    try:
        created = await access.create_key(
            name=name, role=Role.OPERATOR, fleet=None, now_ms=CLOCK_MS
        )
        return created.secret
    finally:
        await access.close()


def test_pinned_terminal_key(world: TerminalWorld, tmp_path: Path) -> None:
    """An operator that enrols a key of its own under a bus's VIN (and signs frames with it)
    is caught by a lessor who pinned the terminal's key; a malformed pin is a usage error."""
    path = tmp_path / "bus.bundle"
    path.write_bytes(world.bundle(VIN_2025).to_bytes())
    base = ["verify", str(path), "--gateway-key", world.gateway_key,
            "--anchors", str(world.evidence.anchor_export)]  # fmt: skip
    right = _cli(*base, "--pin-terminal", f"{VIN_2025}={world.keys[VIN_2025].public.hex()}")
    assert right.returncode == 0, right.stdout + right.stderr
    other = terminal.Sm2Key.generate().public.hex()
    wrong = _cli(*base, "--pin-terminal", f"{VIN_2025}=04{other}")
    assert wrong.returncode == 1
    assert f"TerminalPinError: terminal {VIN_2025} was enrolled with SM2 key" in wrong.stderr
    malformed = _cli(*base, "--pin-terminal", f"{VIN_2025}=zz")
    assert malformed.returncode == 2
    assert "--pin-terminal: pin of" in malformed.stderr
    with pytest.raises(TerminalPinError, match="the pinned key is"):
        check_terminal_pins(world.bundle(VIN_2025), {VIN_2025: bytes.fromhex(other)})
    check_terminal_pins(world.bundle(VIN_2016), {VIN_2025: bytes.fromhex(other)})
