"""The dashboard's routes over a deployment seeded by the real gateway pipeline.

Fleet in one call (relation bus <-> pack, SoH, position), map trails, chart series spanning
the data (not a decade-long lease), ISO 8601 times, local Swagger UI and ReDoc, the event
stream, and a clear refusal for every wrong input.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.access import Window
from api.accessdb import AccessDb
from api.app import create_app
from api.settings import load_deployment
from ledger.telemetry import FIELDS
from tests.support.api_fleet import (
    DAY0_MS,
    LEASE_FROM,
    LEASE_TO,
    STEP_MS,
    Deployment,
    make_keys,
    seed,
)

World = tuple[Deployment, dict[str, str]]
YEAR_MS = 365 * 86_400_000
LONG_LEASE = Window(from_ms=DAY0_MS - YEAR_MS, to_ms=DAY0_MS + 10 * YEAR_MS)
"""lessor-2 leases pack-2 from 2025 to 2036 (a day of data inside)."""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Deployment, dict[str, str]]:
    """A seeded deployment, its keys, and a decade-long lease of pack-2 to lessor-2."""
    workdir = tmp_path_factory.mktemp("dash") / "deploy"

    async def build() -> tuple[Deployment, dict[str, str]]:
        deployment = await seed(workdir)
        keys = await make_keys(deployment)
        access = await AccessDb.open(deployment.settings.data_dir / "api.db")
        try:
            await access.add_lease(asset="pack-2", lessor="lessor-2", window=LONG_LEASE)
        finally:
            await access.close()
        return deployment, keys

    return asyncio.run(build())


@pytest.fixture(scope="module")
def client(world: tuple[Deployment, dict[str, str]]) -> Iterator[TestClient]:
    """A client of the app over the seeded deployment."""
    app = create_app(load_deployment(workdir=world[0].workdir))
    with TestClient(app) as test_client:
        yield test_client


def auth(world: tuple[Deployment, dict[str, str]], name: str) -> dict[str, str]:
    """The bearer header of key ``name``."""
    return {"Authorization": f"Bearer {world[1][name]}"}


# --- fleet ----------------------------------------------------------------------------------


def test_fleet_names_the_packs_in_each_bus_and_their_soh(client: TestClient, world: World) -> None:
    """The fleet view relates buses and packs from their newest signed messages."""
    body = client.get("/api/dashboard/fleet", headers=auth(world, "operator-a")).json()
    rows = {row["id"]: row for row in body["data"]}
    assert sorted(rows) == ["bus-1", "bus-2", "pack-1", "pack-2"]
    assert rows["pack-1"]["host"] == "bus-2"
    assert rows["pack-2"]["host"] == "bus-1"
    assert rows["bus-1"]["packs"] == ["pack-2"]
    assert rows["pack-1"]["soh"] is not None
    assert 0 < rows["pack-1"]["soh"] <= 1.2
    assert rows["bus-1"]["lat"] is not None
    assert rows["bus-1"]["lon"] is not None
    assert not any(row["online"] for row in rows.values())  # data of 2026-01-01, long ago


def test_fleet_for_an_auditor_is_empty(client: TestClient, world: World) -> None:
    """An auditor reads proofs, not assets: the fleet view holds nothing."""
    body = client.get("/api/dashboard/fleet", headers=auth(world, "auditor")).json()
    assert body["data"] == []
    assert body["count"] == 0


def test_fleet_for_a_lessor_holds_only_its_leases(client: TestClient, world: World) -> None:
    """A lessor sees what it leases, nothing else."""
    body = client.get("/api/dashboard/fleet", headers=auth(world, "lessor-1")).json()
    assert sorted(row["id"] for row in body["data"]) == ["bus-1", "pack-1"]


def test_trails_are_thinned_routes_of_visible_buses(client: TestClient, world: World) -> None:
    """Each bus's trail is at most ``points`` (+ its newest) positions."""
    body = client.get(
        "/api/dashboard/trails?minutes=1440&points=5", headers=auth(world, "operator-a")
    ).json()
    trails = {t["id"]: t["points"] for t in body["data"]}
    assert sorted(trails) == ["bus-1", "bus-2"]
    assert 2 <= len(trails["bus-1"]) <= 6
    lat, lon = trails["bus-1"][0]
    assert 22 < lat < 23
    assert 114 < lon < 115


def test_trails_refuse_an_auditor(client: TestClient, world: World) -> None:
    """Positions are telemetry: 403 for auditors."""
    response = client.get("/api/dashboard/trails", headers=auth(world, "auditor"))
    assert response.status_code == 403


# --- series ---------------------------------------------------------------------------------


def test_series_over_a_decade_lease_spans_the_data(client: TestClient, world: World) -> None:
    """A 2025-2036 lease holding one day of data gets buckets over that day, not one bucket."""
    body = client.get(
        "/api/dashboard/assets/pack-2/series?fields=soc", headers=auth(world, "lessor-2")
    ).json()
    assert body["from_ms"] >= DAY0_MS
    assert body["to_ms"] <= DAY0_MS + 25 * STEP_MS
    values = [v for v in body["columns"]["soc"]["avg"] if v is not None]
    assert len(values) >= 24
    assert body["columns"]["soc"]["unit"] == "/"


def test_series_clips_to_the_lease(client: TestClient, world: World) -> None:
    """lessor-1 leases half a day of pack-1: no bucket outside it."""
    body = client.get(
        "/api/dashboard/assets/pack-1/series?fields=soc", headers=auth(world, "lessor-1")
    ).json()
    assert body["t_ms"]
    assert all(LEASE_FROM <= t < LEASE_TO for t in body["t_ms"])


def test_cell_spread_is_per_sample_and_never_negative(client: TestClient, world: World) -> None:
    """max - min cell voltage of the same sample: the seeded spread is 2 mV + 0.1 V x 0."""
    body = client.get(
        "/api/dashboard/assets/pack-1/series?fields=cell_spread_v,cell_v_max",
        headers=auth(world, "operator-a"),
    ).json()
    spread = body["columns"]["cell_spread_v"]
    lows = [v for v in spread["min"] if v is not None]
    assert lows
    assert min(lows) >= 0
    assert max(v for v in spread["max"] if v is not None) < 0.1
    assert spread["unit"] == "V"


def test_series_accepts_iso_8601_and_unix_ms_alike(client: TestClient, world: World) -> None:
    """from=2026-01-01T02:00:00Z names the same instant as its Unix ms."""
    headers = auth(world, "operator-a")
    base = "/api/dashboard/assets/pack-1/series?fields=soc"
    iso = client.get(f"{base}&from=2026-01-01T02:00:00Z&to=2026-01-01T06:00:00%2B00:00",
                     headers=headers).json()  # fmt: skip
    ms = client.get(f"{base}&from={DAY0_MS + 2 * STEP_MS}&to={DAY0_MS + 6 * STEP_MS}",
                    headers=headers).json()  # fmt: skip
    assert iso == ms
    assert iso["from_ms"] >= DAY0_MS + 2 * STEP_MS


@pytest.mark.parametrize(
    ("query", "status", "match"),
    [
        ("fields=nope", 400, "unknown pack column"),
        ("fields=", 400, "unknown pack column"),
        ("fields=soc&from=yesterday", 422, "neither Unix ms nor an ISO 8601"),
        ("fields=soc&from=2026-13-01", 422, "neither Unix ms nor an ISO 8601"),
        ("fields=soc&points=1", 422, "points"),
        ("fields=soc&from=2026-01-02&to=2026-01-01", 400, "must be before"),
    ],
)
def test_series_refuses_wrong_input_clearly(
    client: TestClient, world: World, query: str, status: int, match: str
) -> None:
    """Each wrong input is a 4xx naming the problem."""
    response = client.get(
        f"/api/dashboard/assets/pack-1/series?{query}", headers=auth(world, "operator-a")
    )
    assert response.status_code == status
    assert match in response.json()["detail"]


def test_series_of_a_bus_refuses_cell_spread(client: TestClient, world: World) -> None:
    """Cell spread is a pack column."""
    response = client.get(
        "/api/dashboard/assets/bus-1/series?fields=cell_spread_v", headers=auth(world, "operator-a")
    )
    assert response.status_code == 400
    assert "is a bus" in response.json()["detail"]


def test_an_agents_asset_has_the_samples_of_its_own_kind(client: TestClient, world: World) -> None:
    """An agent's bus has bus samples only, a pack pack samples (with the derived cell spread);
    asking a bus for pack samples is a 400 naming what it has."""
    headers = auth(world, "operator-a")
    bus = client.get("/api/assets/bus-1", headers=headers).json()
    assert bus["columns"] == {"bus": [spec.attr for spec in FIELDS["bus"]]}
    pack = client.get("/api/assets/pack-1", headers=headers).json()
    assert pack["columns"] == {"pack": [*(spec.attr for spec in FIELDS["pack"]), "cell_spread_v"]}
    assert set(pack["latest"]) == {"t_ms", "leaf_index", *(s.attr for s in FIELDS["pack"])}
    for path in ("/api/dashboard/assets/bus-1/series?kind=pack&fields=soc",
                 "/api/assets/bus-1/samples?kind=pack&fields=soc",
                 "/api/assets/bus-1/buckets?kind=pack&field=soc"):  # fmt: skip
        response = client.get(path, headers=headers)
        assert response.status_code == 400, path
        assert response.json()["detail"] == "'bus-1' has no pack samples; it has ['bus']"
    wrong = client.get("/api/assets/bus-1/samples?kind=cell&fields=soc", headers=headers)
    assert wrong.status_code == 422


def test_series_of_an_unknown_or_unleased_asset_is_404(client: TestClient, world: World) -> None:
    """The same answer for no such asset and someone else's asset."""
    for asset in ("ghost", "pack-2"):
        response = client.get(
            f"/api/dashboard/assets/{asset}/series?fields=soc", headers=auth(world, "lessor-1")
        )
        assert response.status_code == 404
        assert response.json()["detail"] == f"no asset '{asset}'"


def test_existing_time_routes_accept_iso_8601(client: TestClient, world: World) -> None:
    """/samples and /buckets take ISO 8601 as well as Unix ms."""
    headers = auth(world, "operator-a")
    iso = client.get("/api/assets/pack-1/samples?fields=soc&from=2026-01-01T03:00:00Z",
                     headers=headers).json()  # fmt: skip
    ms = client.get(f"/api/assets/pack-1/samples?fields=soc&from={DAY0_MS + 3 * STEP_MS}",
                    headers=headers).json()  # fmt: skip
    assert iso == ms
    assert iso["count"] > 0


def test_buckets_over_a_decade_lease_span_the_data(client: TestClient, world: World) -> None:
    """/buckets narrows a bounded lease to the data too (it used to make one 13-day bucket)."""
    body = client.get(
        "/api/assets/pack-2/buckets?field=soc&points=300", headers=auth(world, "lessor-2")
    ).json()
    assert body["bucket_ms"] < STEP_MS
    assert body["count"] >= 24


# --- config, docs, events ---------------------------------------------------------------------


def test_config_has_no_tiles_by_default(client: TestClient, world: World) -> None:
    """Without a tile URL the map is drawn offline; the online window is 30 s."""
    body = client.get("/api/dashboard/config", headers=auth(world, "lessor-1")).json()
    assert body == {"tile_url": None, "tile_attribution": "", "online_window_s": 30}


def test_config_needs_a_key(client: TestClient) -> None:
    """No key: 401."""
    assert client.get("/api/dashboard/config").status_code == 401


@pytest.mark.parametrize(
    ("path", "asset"),
    [
        ("/docs", "/vendor/swagger-ui/swagger-ui-bundle.js"),
        ("/redoc", "/vendor/redoc/redoc.standalone.js"),
    ],
)
def test_api_docs_load_local_assets_only(client: TestClient, path: str, asset: str) -> None:
    """/docs and /redoc name no CDN, and the scripts they name are served."""
    page = client.get(path).text
    assert asset in page
    assert "cdn" not in page.lower()
    assert "googleapis" not in page
    served = client.get(asset)
    assert served.status_code == 200
    assert len(served.content) > 100_000


def test_event_stream_announces_the_log(world: World) -> None:
    """The first event names the log size and the newest checkpoint."""
    app = create_app(load_deployment(workdir=world[0].workdir))
    with (
        TestClient(app) as fresh,
        fresh.stream("GET", "/api/dashboard/events", headers=auth(world, "operator-a")) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        seen = [next(lines) for _ in range(5)]
    assert "event: log" in seen
    data = next(line for line in seen if line.startswith("data: "))
    assert '"log_size"' in data
    assert '"anchor_state"' in data


def test_event_stream_needs_a_key(client: TestClient) -> None:
    """No key: 401, no stream."""
    assert client.get("/api/dashboard/events").status_code == 401
