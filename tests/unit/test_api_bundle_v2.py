"""The API serves ``voltproof-bundle/2`` by default; the lessor verifies it offline, COMPLETE."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.access import Role
from api.accessdb import AccessDb
from api.app import create_app
from api.settings import load_deployment
from ledger.anchors.evm_checker import anchor_checker
from ledger.bundle import parse_bundle
from ledger.bundle_v2 import BundleV2, read_bundle
from ledger.verify_v2 import verify_bundle_v2
from tests.support.evidence_world import RECEIVED_MS, EvidenceWorld, build_world, t_of


async def _operator_key(world: EvidenceWorld, name: str = "operator") -> str:
    access = await AccessDb.open(world.deployment.settings.data_dir / "api.db")
    try:
        created = await access.create_key(name=name, role=Role.OPERATOR, fleet=None, now_ms=t_of(0))
        return created.secret
    finally:
        await access.close()


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[EvidenceWorld, TestClient, dict[str, str]]]:
    """The app over an evidence world, and an operator's headers."""
    world = build_world(tmp_path_factory.mktemp("api-v2") / "gw")
    secret = asyncio.run(_operator_key(world))
    with TestClient(create_app(load_deployment(workdir=world.workdir))) as client:
        yield world, client, {"Authorization": f"Bearer {secret}"}


def test_api_serves_v2_that_verifies_complete(
    served: tuple[EvidenceWorld, TestClient, dict[str, str]],
) -> None:
    """GET /bundle is v2 by default; against the published export it is VALID and COMPLETE."""
    world, client, headers = served
    response = client.get("/api/assets/pack-0001/bundle", headers=headers)
    assert response.status_code == 200, response.text
    bundle = read_bundle(response.content)
    assert isinstance(bundle, BundleV2)
    anchors = anchor_checker(
        gateway_verifier_key=world.gateway_key,
        anchor_export=world.anchor_export.read_text(encoding="utf-8"),
    )
    report = verify_bundle_v2(bundle, gateway_verifier_key=world.gateway_key, anchors=anchors)
    assert report.complete
    assert report.independently_anchored
    assert [c.role for c in bundle.chains] == ["asset", "host", "host"]


def test_api_period_and_v1(served: tuple[EvidenceWorld, TestClient, dict[str, str]]) -> None:
    """?from/?to give a closed period with its boundaries; ?format=1 still serves v1."""
    _, client, headers = served
    closed = client.get(f"/api/assets/bus-0001/bundle?from={t_of(3)}&to={t_of(8)}", headers=headers)
    bundle = read_bundle(closed.content)
    assert isinstance(bundle, BundleV2)
    assert len(bundle.chains[0].messages) == 5
    v1 = client.get("/api/assets/bus-0001/bundle?format=1", headers=headers)
    assert parse_bundle(v1.content).format == "voltproof-bundle/1"
    bad = client.get("/api/assets/bus-0001/bundle?format=3", headers=headers)
    assert bad.status_code == 422


def test_api_refuses_unknown_asset(
    served: tuple[EvidenceWorld, TestClient, dict[str, str]],
) -> None:
    """An asset the registry does not hold is a 404 with the reason."""
    _, client, headers = served
    assert client.get("/api/assets/ghost/bundle", headers=headers).status_code == 404


def _export_entry(world: EvidenceWorld, size: int) -> dict[str, object]:
    entries = json.loads(world.anchor_export.read_text(encoding="utf-8"))["entries"]
    (entry,) = [e for e in entries if e["tree_size"] == size]
    assert isinstance(entry, dict)
    return entry


def test_api_verdict_is_the_v2_verdict_of_the_download(
    served: tuple[EvidenceWorld, TestClient, dict[str, str]],
) -> None:
    """GET /verdict: what `voltproof verify` finds in the bundle /bundle serves (chains, ends,
    gaps, checkpoint and its anchor time), never claimed independent."""
    world, client, headers = served
    end = RECEIVED_MS + 1  # "up to now" as the world's gateway saw it
    response = client.get(f"/api/assets/pack-0001/verdict?to={end}", headers=headers)
    assert response.status_code == 200, response.text
    found = response.json()
    assert (found["valid"], found["complete"], found["verdict"]) == (True, True, "VALID, COMPLETE")
    assert (found["independent"], found["anchor_source"]) == (False, "embedded export")
    assert (found["asset"], found["kind"], found["format"]) == (
        "pack-0001", "pack", "voltproof-bundle/2")  # fmt: skip
    assert [(c["role"], c["device"]) for c in found["chains"]] == [
        ("asset", "pack-0001"), ("host", "bus-0001"), ("host", "bus-0002")]  # fmt: skip
    assert all(c["complete"] and c["missing"] == [] for c in found["chains"])
    assert found["chains"][0]["received"] == 12
    served_bundle = client.get(f"/api/assets/pack-0001/bundle?to={end}", headers=headers)
    bundle = read_bundle(served_bundle.content)
    assert isinstance(bundle, BundleV2)
    assert (found["from_ms"], found["to_ms"]) == (bundle.from_ms, bundle.to_ms)
    entry = _export_entry(world, found["checkpoint_size"])
    assert found["anchored_at_ms"] == entry["anchored_at_ms"]
    closed = client.get(f"/api/assets/bus-0001/verdict?from={t_of(3)}&to={t_of(8)}",
                        headers=headers).json()  # fmt: skip
    assert closed["complete"]
    assert (closed["chains"][0]["first_seq"], closed["chains"][0]["last_seq"]) == (3, 7)
    assert client.get("/api/assets/ghost/verdict", headers=headers).status_code == 404


def test_api_verdict_names_what_is_wrong_with_a_tampered_store(
    served: tuple[EvidenceWorld, TestClient, dict[str, str]], tmp_path: Path
) -> None:
    """A message edited in the store: the verdict is INVALID with the error named (a 200),
    and a missing gateway key is a 503 with the reason."""
    world, _, _ = served
    copy = world.copy(tmp_path / "edited")
    with sqlite3.connect(copy.deployment.settings.db_path) as db:
        leaf, cose = db.execute(
            "SELECT leaf_index, cose FROM leaves WHERE device = 'bus-0001' AND seq = 4"
        ).fetchone()
        db.execute("UPDATE leaves SET cose = ? WHERE leaf_index = ?",
                   (cose[:-1] + bytes([cose[-1] ^ 1]), leaf))  # fmt: skip
    secret = asyncio.run(_operator_key(copy, "auditing-operator"))
    headers = {"Authorization": f"Bearer {secret}"}
    with TestClient(create_app(load_deployment(workdir=copy.workdir))) as client:
        found = client.get("/api/assets/bus-0001/verdict", headers=headers).json()
        assert (found["valid"], found["complete"], found["chains"]) == (False, False, [])
        assert found["error"] == "InclusionProofError"
        assert found["verdict"].startswith("INVALID: InclusionProofError: ")
        assert f"leaf {leaf}" in found["verdict"]
        copy.deployment.settings.key_file.unlink()
        gone = client.get("/api/assets/pack-0002/verdict", headers=headers)
        assert gone.status_code == 503
        assert "gateway key unavailable" in gone.json()["detail"]
