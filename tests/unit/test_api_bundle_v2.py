"""The API serves ``voltproof-bundle/2`` by default; the lessor verifies it offline, COMPLETE."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

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
from tests.support.evidence_world import EvidenceWorld, build_world, t_of


async def _operator_key(world: EvidenceWorld) -> str:
    access = await AccessDb.open(world.deployment.settings.data_dir / "api.db")
    try:
        created = await access.create_key(
            name="operator", role=Role.OPERATOR, fleet=None, now_ms=t_of(0)
        )
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
