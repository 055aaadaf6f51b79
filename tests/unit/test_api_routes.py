"""The API over a deployment seeded by the real gateway pipeline: data, proofs and refusals."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from google.transit import gtfs_realtime_pb2

from api.app import create_app
from api.settings import load_deployment
from ledger.anchors.checkers import LocalAnchorChecker
from ledger.bundle import parse_bundle
from ledger.keys import load_key_file
from ledger.merkle import hash_leaf, verify_consistency, verify_inclusion
from ledger.note import verify_note
from ledger.verify import verify_bundle
from tests.support.api_fleet import (
    DAY0_MS,
    LEASE_FROM,
    LEASE_TO,
    STEP_MS,
    Deployment,
    make_keys,
    seed,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Deployment, dict[str, str]]:
    """One seeded deployment and its API keys, shared by the module's tests."""
    workdir = tmp_path_factory.mktemp("api") / "deploy"

    async def build() -> tuple[Deployment, dict[str, str]]:
        deployment = await seed(workdir)
        return deployment, await make_keys(deployment)

    return asyncio.run(build())


@pytest.fixture(scope="module")
def client(world: tuple[Deployment, dict[str, str]]) -> Iterator[TestClient]:
    """A client of the app over the seeded deployment."""
    deployment, _ = world
    app = create_app(load_deployment(workdir=deployment.workdir))
    with TestClient(app) as test_client:
        yield test_client


def auth(keys: dict[str, str], name: str) -> dict[str, str]:
    """The bearer header of key ``name``."""
    return {"Authorization": f"Bearer {keys[name]}"}


def ids(response_json: dict[str, object]) -> list[str]:
    """The asset ids of an assets page."""
    data = response_json["data"]
    assert isinstance(data, list)
    return [item["id"] for item in data]


# --- authentication -----------------------------------------------------------------------

PROTECTED = [
    "/api/me",
    "/api/assets",
    "/api/assets/bus-1",
    "/api/assets/pack-1/samples?fields=soc",
    "/api/assets/pack-1/buckets?field=soc",
    "/api/alarms",
    "/api/quarantine",
    "/api/registry",
    "/api/checkpoints",
    "/api/checkpoints/latest",
    "/api/proofs/inclusion?leaf=0",
    "/api/proofs/consistency?size1=1&size2=2",
    "/api/proofs/assets/bus-1",
    "/api/assets/pack-1/report",
    "/api/assets/pack-1/bundle",
    "/api/assets/pack-1/verdict",
    "/api/assets/pack-1/passport",
    "/api/assets/pack-1/history",
    "/gtfs-rt/vehicle-positions",
]


@pytest.mark.parametrize("path", PROTECTED)
def test_no_key_is_401(client: TestClient, path: str) -> None:
    """Every data endpoint refuses a request without a key, with a JSON body."""
    response = client.get(path)
    assert response.status_code == 401
    assert response.json()["status"] == 401
    assert "API key is required" in response.json()["detail"]


def test_unknown_key_is_401(client: TestClient) -> None:
    """An unknown key is refused like no key; X-API-Key works like a bearer token."""
    response = client.get("/api/me", headers={"X-API-Key": "vpk_nope"})
    assert response.status_code == 401
    assert response.json()["detail"] == "unknown or revoked API key"


def test_x_api_key_header(client: TestClient, world: tuple[Deployment, dict[str, str]]) -> None:
    """The X-API-Key header authenticates as well as a bearer token."""
    _, keys = world
    response = client.get("/api/me", headers={"X-API-Key": keys["auditor"]})
    assert response.json() == {"name": "auditor", "role": "auditor", "fleet": None, "assets": []}


# --- tenants and roles ---------------------------------------------------------------------


def test_fleet_operator_sees_own_fleet(
    client: TestClient, world: tuple[Deployment, dict[str, str]]
) -> None:
    """A fleet operator lists its fleet's assets; the other fleet's bus is not there."""
    _, keys = world
    assert ids(client.get("/api/assets", headers=auth(keys, "operator-a")).json()) == [
        "bus-1", "bus-2", "pack-1", "pack-2",
    ]  # fmt: skip
    assert ids(client.get("/api/assets", headers=auth(keys, "operator-b")).json()) == ["bus-9"]
    everyone = client.get("/api/assets?kind=bus", headers=auth(keys, "operator")).json()
    assert ids(everyone) == ["bus-1", "bus-2", "bus-9"]


CROSS_TENANT = [
    "/api/assets/{a}",
    "/api/assets/{a}/samples?fields=speed_mps",
    "/api/assets/{a}/buckets?field=speed_mps",
    "/api/alarms?asset={a}",
    "/api/registry?asset={a}",
    "/api/proofs/assets/{a}",
    "/api/assets/{a}/report",
    "/api/assets/{a}/bundle",
]


OTHERS = [("operator-b", "bus-1"), ("operator-a", "bus-9"), ("lessor-1", "bus-2"),
          ("lessor-2", "bus-1")]  # fmt: skip


@pytest.mark.parametrize("template", CROSS_TENANT)
@pytest.mark.parametrize(("key", "asset"), OTHERS)
def test_other_tenants_asset_is_404_like_missing(
    client: TestClient, world: tuple[Deployment, dict[str, str]], template: str, key: str,
    asset: str,
) -> None:  # fmt: skip
    """Someone else's asset answers exactly like an asset that does not exist."""
    _, keys = world
    theirs = client.get(template.format(a=asset), headers=auth(keys, key))
    missing = client.get(template.format(a="no-such-asset"), headers=auth(keys, key))
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["detail"].replace(asset, "X") == missing.json()["detail"].replace(
        "no-such-asset", "X"
    )


@pytest.mark.parametrize(
    "path",
    [
        "/api/assets/bus-1/samples?fields=speed_mps",
        "/api/assets/bus-1/buckets?field=speed_mps",
        "/api/alarms",
        "/api/assets/bus-1/report",
        "/api/assets/bus-1/bundle",
        "/api/assets/bus-1/verdict",
        "/api/assets/pack-1/history",
        "/gtfs-rt/vehicle-positions",
    ],
)
def test_auditor_gets_403_on_telemetry(
    client: TestClient, world: tuple[Deployment, dict[str, str]], path: str
) -> None:
    """Auditors read proofs, never telemetry values."""
    _, keys = world
    response = client.get(path, headers=auth(keys, "auditor"))
    assert response.status_code == 403
    assert response.json()["detail"] == "auditor keys read proofs only, not telemetry"


@pytest.mark.parametrize("key", ["lessor-1", "auditor"])
def test_quarantine_is_operator_only(
    client: TestClient, world: tuple[Deployment, dict[str, str]], key: str
) -> None:
    """Quarantine is for operator keys."""
    _, keys = world
    response = client.get("/api/quarantine", headers=auth(keys, key))
    assert response.status_code == 403
    assert "this endpoint is for operator keys" in response.json()["detail"]


def test_operator_reads_quarantine(
    client: TestClient, world: tuple[Deployment, dict[str, str]]
) -> None:
    """The all-fleet operator sees quarantine rows and totals (none in a clean run)."""
    _, keys = world
    body = client.get("/api/quarantine", headers=auth(keys, "operator")).json()
    assert body == {"data": [], "count": 0, "totals": {}, "next": None}


def test_lessor_sees_leased_assets_in_lease_period(
    client: TestClient, world: tuple[Deployment, dict[str, str]]
) -> None:
    """A lessor lists its leased assets and reads samples only inside the lease."""
    _, keys = world
    headers = auth(keys, "lessor-1")
    assert ids(client.get("/api/assets", headers=headers).json()) == ["bus-1", "pack-1"]
    page = client.get(
        f"/api/assets/pack-1/samples?fields=soc&from=0&to={DAY0_MS + 30 * STEP_MS}&limit=5000",
        headers=headers,
    ).json()
    assert page["count"] == 12 * 10
    assert min(page["t_ms"]) >= LEASE_FROM
    assert max(page["t_ms"]) < LEASE_TO
    after = client.get(
        f"/api/assets/pack-1/samples?fields=soc&from={LEASE_TO}&to={LEASE_TO + STEP_MS}",
        headers=headers,
    )
    assert after.status_code == 404
    assert ids(client.get("/api/assets", headers=auth(keys, "lessor-2")).json()) == []


# --- fleet data ----------------------------------------------------------------------------


def test_asset_latest_values_and_status(
    client: TestClient, world: tuple[Deployment, dict[str, str]]
) -> None:
    """An asset shows its newest signed sample, leaf and last-seen time (offline by now)."""
    deployment, keys = world
    body = client.get("/api/assets/pack-1", headers=auth(keys, "operator-a")).json()
    assert body["kind"] == "pack"
    assert body["registry_status"] == "active"
    assert body["online"] is False
    assert body["last_leaf"] == deployment.message_leaves["pack-1"][-1]
    assert body["latest"]["t_ms"] == DAY0_MS + 23 * STEP_MS + 9000
    assert body["latest"]["soc"] == pytest.approx(0.7)


def test_samples_paginate(client: TestClient, world: tuple[Deployment, dict[str, str]]) -> None:
    """Pages follow each other through next_from without overlap or loss."""
    _, keys = world
    headers = auth(keys, "operator-a")
    seen: list[int] = []
    base = "/api/assets/bus-1/samples?fields=speed_mps,odometer_m&limit=70"
    url = f"{base}&from=0"
    while True:
        page = client.get(url, headers=headers).json()
        seen += page["t_ms"]
        assert set(page["values"]) == {"speed_mps", "odometer_m"}
        if page["next_from"] is None:
            break
        url = f"{base}&from={page['next_from']}"
    assert len(seen) == 240
    assert seen == sorted(set(seen))


def test_buckets_downsample(client: TestClient, world: tuple[Deployment, dict[str, str]]) -> None:
    """Buckets hold min <= avg <= max and count every sample once."""
    _, keys = world
    body = client.get(
        "/api/assets/pack-1/buckets?field=temp_max_c&points=6", headers=auth(keys, "operator-a")
    ).json()
    assert body["count"] <= 6
    assert sum(b["count"] for b in body["data"]) == 240
    for bucket in body["data"]:
        assert bucket["min"] <= bucket["avg"] <= bucket["max"]


@pytest.mark.parametrize(
    ("path", "status", "detail"),
    [
        ("/api/assets/pack-1/samples?fields=nope", 400, "unknown pack field(s) ['nope']"),
        ("/api/assets/pack-1/buckets?field=speed_mps", 400, "unknown pack field(s)"),
        ("/api/assets/pack-1/samples?fields=soc&from=10&to=5", 400, "from (10) must be before"),
        ("/api/assets/pack-1/samples?fields=soc&limit=0", 422, "invalid request: query.limit"),
        ("/api/assets?kind=tram", 422, "invalid request: query.kind"),
        ("/api/assets/bus-1/passport", 400, "'bus-1' is a bus; passports are for packs"),
        ("/api/assets/bus-1/history", 400, "'bus-1' is a bus; history is for packs"),
        ("/api/proofs/consistency?size1=5&size2=2", 400, "size1 (5) is larger than size2 (2)"),
        ("/api/proofs/consistency?size1=1&size2=99999", 404, "size 99999 is beyond the log"),
        ("/api/proofs/inclusion?leaf=99999", 404, "leaf 99999 is not stored"),
        ("/api/checkpoints/77777", 404, "no checkpoint of size 77777"),
    ],
)
def test_bad_requests_are_clear_4xx(
    client: TestClient, world: tuple[Deployment, dict[str, str]], path: str, status: int,
    detail: str,
) -> None:  # fmt: skip
    """Bad requests get a 4xx with a JSON body naming the problem."""
    _, keys = world
    response = client.get(path, headers=auth(keys, "operator"))
    assert response.status_code == status
    assert detail in response.json()["detail"]
    assert response.json()["status"] == status


def test_alarms_by_level(client: TestClient, world: tuple[Deployment, dict[str, str]]) -> None:
    """The level-2 alarm pack-1 signed is listed, newest first, filtered by level."""
    _, keys = world
    body = client.get("/api/alarms?min_level=2", headers=auth(keys, "operator-a")).json()
    assert body["count"] == 1
    assert {a["device"] for a in body["data"]} == {"pack-1"}
    assert all(a["level"] == 2 for a in body["data"])
    none = client.get("/api/alarms?min_level=3", headers=auth(keys, "operator-a")).json()
    assert none["count"] == 0
    other = client.get("/api/alarms", headers=auth(keys, "operator-b")).json()
    assert other["count"] == 0


def test_registry_scoped(client: TestClient, world: tuple[Deployment, dict[str, str]]) -> None:
    """Operators see their fleet's enrolments; auditors see every registry leaf."""
    _, keys = world
    mine = client.get("/api/registry", headers=auth(keys, "operator-b")).json()
    assert [e["device"] for e in mine["data"]] == ["bus-9"]
    everything = client.get("/api/registry", headers=auth(keys, "auditor")).json()
    assert everything["count"] == 5
    assert {e["action"] for e in everything["data"]} == {"enroll"}


def test_gtfs_vehicle_positions(
    client: TestClient, world: tuple[Deployment, dict[str, str]]
) -> None:
    """The GTFS-RT feed holds the newest signed position of each visible bus."""
    _, keys = world
    response = client.get("/gtfs-rt/vehicle-positions", headers=auth(keys, "operator-a"))
    assert response.headers["content-type"] == "application/x-protobuf"
    feed = gtfs_realtime_pb2.FeedMessage()
    feed.ParseFromString(response.content)
    assert feed.header.gtfs_realtime_version == "2.0"
    assert sorted(e.id for e in feed.entity) == ["bus-1", "bus-2"]
    bus = next(e for e in feed.entity if e.id == "bus-1")
    assert bus.vehicle.timestamp == (DAY0_MS + 23 * STEP_MS + 9000) // 1000
    assert bus.vehicle.position.latitude == pytest.approx(22.54 + 0.023 + 0.01)


# --- proofs --------------------------------------------------------------------------------


def test_latest_checkpoint_is_signed_note(
    client: TestClient, world: tuple[Deployment, dict[str, str]]
) -> None:
    """The latest checkpoint is the gateway-signed note, as text/plain."""
    deployment, keys = world
    response = client.get("/api/checkpoints/latest", headers=auth(keys, "auditor"))
    assert response.headers["content-type"].startswith("text/plain")
    gateway = load_key_file(deployment.settings.key_file)
    body = verify_note(response.text, verifier_key=gateway.verifier_key)
    assert body.splitlines()[1] == str(deployment.anchored_size)


def test_inclusion_proof_verifies(
    client: TestClient, world: tuple[Deployment, dict[str, str]]
) -> None:
    """An inclusion proof from the API verifies against the root it names."""
    deployment, keys = world
    leaf = deployment.message_leaves["bus-2"][5]
    body = client.get(f"/api/proofs/inclusion?leaf={leaf}", headers=auth(keys, "operator")).json()
    message = base64.b64decode(body["message_b64"])
    assert hash_leaf(message).hex() == body["leaf_hash"]
    verify_inclusion(
        leaf_hash=hash_leaf(message), index=leaf, size=body["tree_size"],
        proof=[bytes.fromhex(h) for h in body["proof"]], root=bytes.fromhex(body["root"]),
    )  # fmt: skip
    assert body["device"] == "bus-2"
    assert body["seq"] == 5


def test_auditor_gets_proof_without_content(
    client: TestClient, world: tuple[Deployment, dict[str, str]]
) -> None:
    """An auditor gets the leaf hash and proof but not the message or its device."""
    deployment, keys = world
    leaf = deployment.message_leaves["pack-1"][0]
    body = client.get(f"/api/proofs/inclusion?leaf={leaf}", headers=auth(keys, "auditor")).json()
    assert body["message_b64"] is None
    assert body["device"] is None
    assert len(body["proof"]) > 0


def test_lessor_inclusion_outside_lease_is_404(
    client: TestClient, world: tuple[Deployment, dict[str, str]]
) -> None:
    """A lessor cannot fetch a message of its asset from outside the lease."""
    deployment, keys = world
    inside = deployment.message_leaves["pack-1"][0]
    outside = deployment.message_leaves["pack-1"][20]
    headers = auth(keys, "lessor-1")
    assert client.get(f"/api/proofs/inclusion?leaf={inside}", headers=headers).status_code == 200
    refused = client.get(f"/api/proofs/inclusion?leaf={outside}", headers=headers)
    assert refused.status_code == 404


def test_consistency_between_checkpoints(
    client: TestClient, world: tuple[Deployment, dict[str, str]]
) -> None:
    """The two stored checkpoints are consistent, as the served proof shows."""
    _, keys = world
    listing = client.get("/api/checkpoints", headers=auth(keys, "auditor")).json()
    sizes = sorted(c["size"] for c in listing["data"])
    assert len(sizes) == 2
    assert listing["data"][0]["anchor_state"] == "final"
    assert listing["data"][0]["receipt"]["backend"] == "local"
    body = client.get(
        f"/api/proofs/consistency?size1={sizes[0]}&size2={sizes[1]}", headers=auth(keys, "auditor")
    ).json()
    verify_consistency(
        size1=sizes[0], size2=sizes[1], proof=[bytes.fromhex(h) for h in body["proof"]],
        root1=bytes.fromhex(body["root1"]), root2=bytes.fromhex(body["root2"]),
    )  # fmt: skip


def test_proof_status(client: TestClient, world: tuple[Deployment, dict[str, str]]) -> None:
    """The proof status names the newest anchored message and the server's check."""
    deployment, keys = world
    body = client.get("/api/proofs/assets/bus-1", headers=auth(keys, "operator-a")).json()
    assert body["anchored"] is True
    assert body["anchored_size"] == deployment.anchored_size
    assert body["inclusion"]["leaf_index"] == deployment.message_leaves["bus-1"][-1]
    assert body["server_check"].startswith("verified: leaf")


# --- evidence ------------------------------------------------------------------------------


def test_lessor_bundle_verifies_offline(
    client: TestClient, world: tuple[Deployment, dict[str, str]]
) -> None:
    """A lessor's bundle covers the lease period only and verifies with the gateway key; the
    message after the lease is not in it, so its end is reported as not proven."""
    deployment, keys = world
    response = client.get("/api/assets/pack-1/bundle?format=1", headers=auth(keys, "lessor-1"))
    assert response.status_code == 200
    bundle = parse_bundle(response.content)
    assert (bundle.from_ms, bundle.to_ms) == (LEASE_FROM, LEASE_TO)
    assert [c.device for c in bundle.chains] == ["pack-1"]
    gateway = load_key_file(deployment.settings.key_file)
    anchors = LocalAnchorChecker(gateway_verifier_key=gateway.verifier_key)
    report = verify_bundle(bundle, gateway_verifier_key=gateway.verifier_key, anchors=anchors)
    assert bundle.chains[0].after is None
    assert not report.complete
    assert [(c.start_proven, c.end_proven) for c in report.chains] == [(True, False)]
    assert report.messages == 12
    assert report.anchor.source == "embedded export"


def test_report_matches_bundle(
    client: TestClient, world: tuple[Deployment, dict[str, str]]
) -> None:
    """The served condition report is the deterministic report of the served bundle."""
    _, keys = world
    headers = auth(keys, "lessor-1")
    report = client.get("/api/assets/pack-1/report", headers=headers).json()
    assert report["format"] == "voltproof-condition-report/1"
    assert report["period"] == {"from_ms": LEASE_FROM, "to_ms": LEASE_TO}
    # The lessor's default (v2) bundle: the pack's 12 messages and its host's 12 over the
    # hosting intervals, the same messages `voltproof report` reads from the download.
    assert report["figures"]["messages"]["value"] == 24
    assert report["completeness"][0]["device"].startswith("bus-")
    assert report["alarms_by_level"]["2"] == 1
    passport = client.get("/api/assets/pack-1/passport", headers=headers).json()
    assert json.dumps(passport)


def test_operator_pack_bundle_follows_hosts(
    client: TestClient, world: tuple[Deployment, dict[str, str]]
) -> None:
    """An operator's pack bundle includes both buses that hosted the pack."""
    _, keys = world
    response = client.get(
        f"/api/assets/pack-1/bundle?format=1&from={DAY0_MS}&to={DAY0_MS + 24 * STEP_MS}",
        headers=auth(keys, "operator-a"),
    )
    bundle = parse_bundle(response.content)
    assert [c.device for c in bundle.chains] == ["bus-1", "bus-2", "pack-1"]


def test_pack_history_across_buses(
    client: TestClient, world: tuple[Deployment, dict[str, str]]
) -> None:
    """The pack's own signed messages show it moving from bus-1 to bus-2 at midday."""
    _, keys = world
    body = client.get("/api/assets/pack-1/history", headers=auth(keys, "operator-a")).json()
    assert [(s["bus"], s["messages"]) for s in body["data"]] == [("bus-1", 12), ("bus-2", 12)]
    assert body["data"][1]["from_ms"] == DAY0_MS + 12 * STEP_MS


def test_transfer_gives_buyer_whole_history(
    client: TestClient, world: tuple[Deployment, dict[str, str]]
) -> None:
    """After a transfer the buyer reads the pack's whole history; others still cannot."""
    _, keys = world
    buyer = auth(keys, "lessor-2")
    assert client.get("/api/assets/pack-2", headers=buyer).status_code == 404
    refused = client.post("/api/packs/pack-2/transfer", json={"to": "lessor-2"}, headers=buyer)
    assert refused.status_code == 404
    lessor = client.post(
        "/api/packs/pack-1/transfer", json={"to": "lessor-2"}, headers=auth(keys, "lessor-1")
    )
    assert lessor.status_code == 403
    assert lessor.json()["detail"] == "'lessor-1' does not own pack-1; only its owner may sell it"
    bad = client.post(
        "/api/packs/pack-2/transfer", json={"to": "auditor"}, headers=auth(keys, "operator-a")
    )
    assert bad.status_code == 400
    done = client.post(
        "/api/packs/pack-2/transfer", json={"to": "lessor-2"}, headers=auth(keys, "operator-a")
    )
    assert done.status_code == 201
    page = client.get("/api/assets/pack-2/samples?fields=soc&limit=5000", headers=buyer).json()
    assert page["count"] == 240
    history = client.get("/api/assets/pack-2/history", headers=buyer).json()
    assert history["count"] == 2
    assert client.get("/api/assets/bus-2", headers=buyer).status_code == 404


def test_health_and_metrics(client: TestClient, world: tuple[Deployment, dict[str, str]]) -> None:
    """Health names the log size; metrics count requests by route and take an operator key."""
    deployment, keys = world
    assert client.get("/healthz").json() == {"status": "ok", "log_size": deployment.anchored_size}
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=auth(keys, "lessor-1")).status_code == 403
    text = client.get("/metrics", headers=auth(keys, "operator")).text
    assert "voltproof_api_requests_total" in text
    assert f"voltproof_api_log_size {float(deployment.anchored_size)}" in text


def test_dashboard_and_openapi_served(client: TestClient) -> None:
    """The web page and the OpenAPI document are served."""
    page = client.get("/")
    assert page.status_code == 200
    assert "voltproof dashboard" in page.text
    schema = client.get("/openapi.json").json()
    assert "/api/proofs/inclusion" in schema["paths"]
    assert client.get("/docs").status_code == 200
