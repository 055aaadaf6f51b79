"""The API's condition report from store payloads equals the report of the full bundle.

``gateway.evidence.extract_payloads`` must choose exactly the messages ``extract_evidence``
puts in a bundle's chains, so that ``compute_report`` of its payloads is the report
``report_of(build_bundle(...))`` gives (which re-checks every signature), byte for byte; and
it must refuse a store that contradicts itself rather than report from it.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from api.app import create_app
from api.routes.evidence import report_of
from api.settings import load_deployment
from gateway.config import load_settings
from gateway.evidence import (
    EvidenceError,
    NotAnchoredError,
    StoredChainError,
    UnknownAssetError,
    extract_evidence,
    extract_payloads,
)
from gateway.pipeline import Pipeline
from gateway.store import SqliteStore
from ledger.batterypass import battery_passport, pack_identity
from ledger.bundle import build_bundle
from ledger.bundle_v2 import BundleV2, read_bundle
from ledger.keys import load_key_file
from ledger.message import decode_message, sign_message
from ledger.report import ConditionReport, compute_report
from tests.support.api_fleet import (
    DAY0_MS,
    LEASE_FROM,
    LEASE_TO,
    MESSAGES_PER_DEVICE,
    STEP_MS,
    Deployment,
    make_keys,
    seed,
)
from tests.support.api_fleet import _batch as fleet_batch
from tests.support.api_fleet import _checkpoint_and_anchor as checkpoint_and_anchor
from voltproof.cli.report import offline_report

EXTRA_HOURS = 3
"""Hours after the fleet's day (its packs reach full charge at hour 26)."""
SKIPPED = ("bus-1", MESSAGES_PER_DEVICE + 1)
"""bus-1 signs its message of hour 25 but it never reaches the gateway: a gap in its chain."""
HOUR = STEP_MS


async def _seed_with_gap(workdir: Path) -> Deployment:
    """The API fleet's day, then three more hours with one bus-1 message lost, anchored again."""
    deployment = await seed(workdir)
    async with await SqliteStore.open(deployment.settings.db_path) as store:
        pipeline = Pipeline(store=store)
        for hour in range(MESSAGES_PER_DEVICE, MESSAGES_PER_DEVICE + EXTRA_HOURS):
            batch = []
            for device in deployment.devices.values():
                data = device.sign(fleet_batch(device, hour))
                if (device.device_id, hour) != SKIPPED:
                    batch.append(device.incoming(data, DAY0_MS + hour * HOUR))
            outcomes = await pipeline.process(batch)
            assert all(outcome.leaf_index is not None for outcome in outcomes), outcomes
        deployment.anchored_size = await checkpoint_and_anchor(deployment, store, True)
    return deployment


@pytest.fixture(scope="module")
def gap_world(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    """A deployment whose bus-1 chain has a gap, fully anchored (read only)."""
    return asyncio.run(_seed_with_gap(tmp_path_factory.mktemp("payloads") / "deploy"))


@pytest.fixture(scope="module")
def unanchored_world(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    """A deployment with two hours of messages newer than its anchored tree (read only)."""
    return asyncio.run(seed(tmp_path_factory.mktemp("unanchored") / "deploy", extra_unanchored=2))


async def _both_reports(
    db_path: Path, operator_key: bytes, asset: str, window: tuple[int, int], follow_hosts: bool
) -> tuple[ConditionReport, ConditionReport, tuple[Any, ...], tuple[Any, ...]]:
    """(full-bundle report, payload report, their (devices, unanchored))."""
    from_ms, to_ms = window
    async with await SqliteStore.open(db_path) as store:
        extraction = await extract_evidence(
            store, asset_id=asset, from_ms=from_ms, to_ms=to_ms, operator_key=operator_key,
            follow_hosts=follow_hosts,
        )  # fmt: skip
        found = await extract_payloads(
            store, asset_id=asset, from_ms=from_ms, to_ms=to_ms, follow_hosts=follow_hosts
        )
    full = report_of(build_bundle(extraction.bundle_input))
    fast = compute_report(
        found.payloads, asset_id=found.asset_id, asset_kind=found.asset_kind,
        from_ms=found.from_ms, to_ms=found.to_ms,
    )  # fmt: skip
    return (
        full,
        fast,
        (extraction.devices, extraction.unanchored),
        (found.devices, found.unanchored),
    )


def _operator_key(deployment: Deployment) -> bytes:
    return load_key_file(deployment.settings.operator_key_file).public_key


Case = tuple[str, tuple[int, int], bool, tuple[str, ...], int]
"""asset, window, follow hosts, devices in the evidence, messages in the report."""
WHOLE = (DAY0_MS, DAY0_MS + (MESSAGES_PER_DEVICE + EXTRA_HOURS) * HOUR)
CASES: list[Case] = [
    ("pack-1", WHOLE, True, ("bus-1", "bus-2", "pack-1"), 80),
    ("pack-1", WHOLE, False, ("pack-1",), 27),
    ("pack-2", (DAY0_MS + 5 * HOUR, DAY0_MS + 17 * HOUR), True, ("bus-1", "bus-2", "pack-2"), 36),
    ("pack-2", (DAY0_MS + 5 * HOUR + 1, DAY0_MS + 17 * HOUR - 1), False, ("pack-2",), 11),
    ("bus-2", WHOLE, True, ("bus-2",), 27),
    ("bus-1", (DAY0_MS + 24 * HOUR, DAY0_MS + 27 * HOUR), True, ("bus-1",), 2),
    ("bus-1", (DAY0_MS + 25 * HOUR, DAY0_MS + 26 * HOUR), True, ("bus-1",), 0),
    ("pack-1", (DAY0_MS - 10 * HOUR, DAY0_MS + 1), True, ("bus-1", "pack-1"), 2),
    ("bus-9", (DAY0_MS + 26 * HOUR, DAY0_MS + 40 * HOUR), True, ("bus-9",), 1),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.asyncio
async def test_payload_report_equals_bundle_report(gap_world: Deployment, case: Case) -> None:
    """Packs with and without hosts, buses, cut windows, the gap: the same report, byte for byte."""
    asset, window, follow, devices, messages = case
    full, fast, full_meta, fast_meta = await _both_reports(
        gap_world.settings.db_path, _operator_key(gap_world), asset, window, follow
    )
    assert fast.to_dict() == full.to_dict()
    assert fast.to_json() == full.to_json()
    assert fast_meta == full_meta == (devices, 0)
    assert fast.figure("messages").value == messages


@pytest.mark.asyncio
async def test_gap_shows_in_both_reports(gap_world: Deployment) -> None:
    """The lost bus-1 message is missing from the completeness of both reports."""
    full, fast, _, _ = await _both_reports(
        gap_world.settings.db_path, _operator_key(gap_world), "bus-1", WHOLE, True
    )
    missing = [c.missing for c in fast.completeness if c.device == "bus-1"]
    assert missing == [((SKIPPED[1], SKIPPED[1]),)]
    assert fast.completeness == full.completeness


@pytest.mark.asyncio
async def test_messages_after_anchor_left_out_by_both(unanchored_world: Deployment) -> None:
    """Messages newer than the anchored tree are in neither report, and counted by both."""
    window = (DAY0_MS, DAY0_MS + 40 * HOUR)
    full, fast, full_meta, fast_meta = await _both_reports(
        unanchored_world.settings.db_path, _operator_key(unanchored_world), "pack-2", window, True
    )
    assert fast.to_json() == full.to_json()
    assert fast_meta == full_meta == (("bus-1", "bus-2", "pack-2"), 6)
    assert fast.figure("messages").value == 3 * MESSAGES_PER_DEVICE


async def _payloads(db_path: Path, asset: str, from_ms: int, to_ms: int) -> object:
    async with await SqliteStore.open(db_path) as store:
        return await extract_payloads(store, asset_id=asset, from_ms=from_ms, to_ms=to_ms)


@pytest.mark.asyncio
async def test_refusals_are_the_bundle_path_errors(gap_world: Deployment, tmp_path: Path) -> None:
    """Unknown asset, empty or reversed period, no anchor: the errors extract_evidence raises."""
    db = gap_world.settings.db_path
    with pytest.raises(UnknownAssetError, match="no device 'nope' is registered"):
        await _payloads(db, "nope", 0, 1)
    with pytest.raises(EvidenceError, match="period start 5 is not before its end 5"):
        await _payloads(db, "bus-1", 5, 5)
    with pytest.raises(EvidenceError, match="period start 9 is not before its end 5"):
        await _payloads(db, "bus-1", 9, 5)
    unanchored = await seed(tmp_path / "deploy", anchor=False)
    with pytest.raises(NotAnchoredError, match="no checkpoint has a final anchor yet"):
        await _payloads(unanchored.settings.db_path, "bus-1", 0, DAY0_MS * 2)


# --- a store that contradicts itself ----------------------------------------------------------


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    """A seeded deployment that tests copy before breaking its store."""
    return asyncio.run(seed(tmp_path_factory.mktemp("pristine") / "deploy"))


@pytest.fixture
def broken(pristine: Deployment, tmp_path: Path) -> tuple[Deployment, Path]:
    """The pristine deployment and the path of a copy of its store that a test may break."""
    copy = tmp_path / "gateway"
    shutil.copytree(pristine.settings.db_path.parent, copy)
    return pristine, copy / pristine.settings.db_path.name


def _tamper(db_path: Path, *statements: tuple[str, tuple[object, ...]]) -> None:
    db = sqlite3.connect(db_path)
    try:
        for sql, params in statements:
            db.execute(sql, params)
        db.commit()
    finally:
        db.close()


def _cose(db_path: Path, leaf: int) -> bytes:
    db = sqlite3.connect(db_path)
    try:
        return bytes(
            db.execute("SELECT cose FROM leaves WHERE leaf_index = ?", (leaf,)).fetchone()[0]
        )
    finally:
        db.close()


WINDOW = (DAY0_MS, DAY0_MS + MESSAGES_PER_DEVICE * HOUR)


@pytest.mark.asyncio
async def test_undecodable_leaf_is_refused(broken: tuple[Deployment, Path]) -> None:
    """A stored message that no longer decodes stops the report with its leaf index."""
    deployment, db = broken
    leaf = deployment.message_leaves["bus-1"][3]
    _tamper(db, ("UPDATE leaves SET cose = ? WHERE leaf_index = ?", (b"\xd2\x84garbage", leaf)))
    with pytest.raises(EvidenceError, match=f"stored leaf {leaf} does not decode"):
        await _payloads(db, "bus-1", *WINDOW)


@pytest.mark.asyncio
async def test_leaf_indexed_under_another_seq_is_refused(broken: tuple[Deployment, Path]) -> None:
    """A message whose stored seq is not its payload's seq is never reported."""
    deployment, db = broken
    leaf = deployment.message_leaves["bus-1"][3]
    _tamper(db, ("UPDATE leaves SET seq = 1000 WHERE leaf_index = ?", (leaf,)))
    with pytest.raises(StoredChainError, match=f"stored leaf {leaf} is not the telemetry message"):
        await _payloads(db, "bus-1", *WINDOW)


@pytest.mark.asyncio
async def test_leaf_indexed_at_another_time_is_refused(broken: tuple[Deployment, Path]) -> None:
    """A message whose stored time is not its payload's ``t`` is never reported."""
    deployment, db = broken
    leaf = deployment.message_leaves["pack-2"][5]
    _tamper(db, ("UPDATE leaves SET t_ms = t_ms + 1 WHERE leaf_index = ?", (leaf,)))
    with pytest.raises(StoredChainError, match="seq 5 at t = "):
        await _payloads(db, "pack-2", *WINDOW)


@pytest.mark.asyncio
async def test_registry_entry_in_a_chain_is_refused(broken: tuple[Deployment, Path]) -> None:
    """A registry entry's bytes stored as a device message are not telemetry of that device."""
    deployment, db = broken
    leaf = deployment.message_leaves["bus-2"][0]
    _tamper(db, ("UPDATE leaves SET cose = ? WHERE leaf_index = ?", (_cose(db, 0), leaf)))
    with pytest.raises(StoredChainError, match="is not the telemetry message of 'bus-2' seq 0"):
        await _payloads(db, "bus-2", *WINDOW)


@pytest.mark.asyncio
async def test_repeated_seq_is_refused(broken: tuple[Deployment, Path]) -> None:
    """Two stored messages with one seq (the unique index gone) are refused as repeated."""
    deployment, db = broken
    original = deployment.message_leaves["bus-1"][4]
    victim = deployment.message_leaves["bus-9"][4]
    _tamper(
        db,
        ("DROP INDEX leaves_by_device_seq", ()),
        ("UPDATE leaves SET device = 'bus-1', cose = ? WHERE leaf_index = ?",
         (_cose(db, original), victim)),
    )  # fmt: skip
    with pytest.raises(
        StoredChainError, match="follows seq 4 \\(messages reordered or repeated\\)"
    ):
        await _payloads(db, "bus-1", *WINDOW)


@pytest.mark.asyncio
async def test_broken_hash_link_is_refused(broken: tuple[Deployment, Path]) -> None:
    """A validly signed message whose ``prev`` is not its predecessor's hash is refused."""
    deployment, db = broken
    leaf = deployment.message_leaves["bus-2"][6]
    payload = dict(decode_message(_cose(db, leaf)).payload, prev=bytes([1]) * 32)
    forged = sign_message(payload, seed=deployment.devices["bus-2"].seed)
    _tamper(db, ("UPDATE leaves SET cose = ? WHERE leaf_index = ?", (forged, leaf)))
    with pytest.raises(StoredChainError, match=f"stored leaf {leaf} \\(bus-2 seq 6\\): prev"):
        await _payloads(db, "bus-2", *WINDOW)


@pytest.mark.asyncio
async def test_broken_link_to_boundary_message_is_refused(broken: tuple[Deployment, Path]) -> None:
    """The boundary messages are chain-checked too, as ``check_messages`` does."""
    deployment, db = broken
    leaf = deployment.message_leaves["bus-2"][6]
    payload = dict(decode_message(_cose(db, leaf)).payload, prev=bytes([1]) * 32)
    forged = sign_message(payload, seed=deployment.devices["bus-2"].seed)
    _tamper(db, ("UPDATE leaves SET cose = ? WHERE leaf_index = ?", (forged, leaf)))
    with pytest.raises(StoredChainError, match="prev is not the hash of seq 5"):
        await _payloads(db, "bus-2", DAY0_MS, DAY0_MS + 6 * HOUR)


# --- the endpoints -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(gap_world: Deployment) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """A client of the app over the gap world, and its API keys."""
    keys = asyncio.run(make_keys(gap_world))
    with TestClient(create_app(load_deployment(workdir=gap_world.workdir))) as test_client:
        yield test_client, keys


ENDPOINT_CASES = [
    ("operator-a", "pack-1", f"?from={WHOLE[0]}&to={WHOLE[1]}"),
    ("operator-a", "bus-1", f"?from={DAY0_MS + 20 * HOUR}&to={DAY0_MS + 29 * HOUR}"),
    ("lessor-1", "pack-1", ""),
    ("lessor-1", "bus-1", f"?from={DAY0_MS + 3 * HOUR}"),
]


@pytest.mark.parametrize(("key", "asset", "query"), ENDPOINT_CASES)
def test_served_report_is_report_of_served_bundle(
    client: tuple[TestClient, dict[str, str]], key: str, asset: str, query: str
) -> None:
    """/report answers the bytes `voltproof report` gives offline for the /bundle download."""
    test_client, keys = client
    headers = {"Authorization": f"Bearer {keys[key]}"}
    bundle = test_client.get(f"/api/assets/{asset}/bundle{query}", headers=headers)
    report = test_client.get(f"/api/assets/{asset}/report{query}", headers=headers)
    assert bundle.status_code == report.status_code == 200
    served = read_bundle(bundle.content)
    assert isinstance(served, BundleV2)  # the default download
    expected = offline_report(served)
    assert report.content == JSONResponse(expected.to_dict()).body
    assert expected.figure("messages").value not in {0, None}


def test_served_passport_is_passport_of_served_bundle(
    client: tuple[TestClient, dict[str, str]],
) -> None:
    """/passport answers the passport of the bundle's report and registry entries."""
    test_client, keys = client
    headers = {"Authorization": f"Bearer {keys['lessor-1']}"}
    bundle = test_client.get("/api/assets/pack-1/bundle", headers=headers)
    passport = test_client.get("/api/assets/pack-1/passport", headers=headers)
    assert passport.status_code == 200
    period = read_bundle(bundle.content)
    assert isinstance(period, BundleV2)
    registry = [(leaf.index, leaf.data) for d in period.devices if d.device == "pack-1"
                for leaf in d.registry]  # fmt: skip
    expected = battery_passport(offline_report(period), identity=pack_identity("pack-1", registry))
    assert passport.content == JSONResponse(expected).body
    assert (period.from_ms, period.to_ms) == (LEASE_FROM, LEASE_TO)


@pytest.mark.parametrize(
    ("path", "status", "detail"),
    [
        ("/api/assets/ghost/report", 404, "no asset 'ghost'"),
        (f"/api/assets/bus-1/report?from={DAY0_MS}&to={DAY0_MS}", 400, "must be before"),
        ("/api/assets/pack-1/passport?from=9&to=5", 400, "from (9) must be before to (5)"),
    ],
)
def test_endpoint_refusals(
    client: tuple[TestClient, dict[str, str]], path: str, status: int, detail: str
) -> None:
    """Unknown assets and bad periods get the same clear answers as before."""
    test_client, keys = client
    response = test_client.get(path, headers={"Authorization": f"Bearer {keys['operator']}"})
    assert response.status_code == status
    assert detail in response.json()["detail"]


def test_broken_store_is_a_clear_error_not_a_report(pristine: Deployment, tmp_path: Path) -> None:
    """A store that contradicts itself gets a 422 naming the contradiction, never a report.

    The report reads the v2 bundle's selection, whose device index no longer gives the root
    the anchored checkpoint commits to once a leaf's seq is rewritten (the v1 payload reader
    names the leaf: ``test_leaf_indexed_under_another_seq_is_refused``)."""
    workdir = tmp_path / "deploy"
    shutil.copytree(pristine.workdir, workdir)
    copy = replace(pristine, workdir=workdir, settings=load_settings(workdir / "gateway.toml"))
    leaf = pristine.message_leaves["bus-1"][3]
    _tamper(copy.settings.db_path, ("UPDATE leaves SET seq = 1000 WHERE leaf_index = ?", (leaf,)))
    keys = asyncio.run(make_keys(copy))
    with TestClient(create_app(load_deployment(workdir=workdir))) as test_client:
        response = test_client.get(
            f"/api/assets/bus-1/report?from={WINDOW[0]}&to={WINDOW[1]}",
            headers={"Authorization": f"Bearer {keys['operator']}"},
        )
    assert response.status_code == 422
    assert "does not give the root its checkpoint commits to" in response.json()["detail"]


def test_passport_setting_is_read_and_a_bad_one_refused(
    pristine: Deployment, tmp_path: Path
) -> None:
    """passport.json next to gateway.toml fills the static sections; a bad one is a 503."""
    workdir = tmp_path / "deploy"
    shutil.copytree(pristine.workdir, workdir)
    copy = replace(pristine, workdir=workdir, settings=load_settings(workdir / "gateway.toml"))
    keys = asyncio.run(make_keys(copy))
    headers = {"Authorization": f"Bearer {keys['operator']}"}
    url = f"/api/assets/pack-1/passport?from={WINDOW[0]}&to={WINDOW[1]}"
    setting = workdir / "passport.json"
    with TestClient(create_app(load_deployment(workdir=workdir))) as test_client:
        setting.write_text('{"identification": {"chemistry": "LFP"}}', encoding="utf-8")
        good = test_client.get(url, headers=headers)
        setting.write_text('{"identification": []}', encoding="utf-8")
        bad = test_client.get(url, headers=headers)
        setting.write_bytes(b'{"identification": {"chemistry": "\xff"}}')
        binary = test_client.get(url, headers=headers)
    assert good.status_code == 200
    assert good.json()["identification"]["chemistry"] == "LFP"
    assert bad.status_code == 503
    assert bad.json()["detail"] == (
        "passport.json: passport setting: identification must be an object"
    )
    assert binary.status_code == 503
    assert binary.json()["detail"] == "passport.json: not UTF-8 text (invalid start byte)"
