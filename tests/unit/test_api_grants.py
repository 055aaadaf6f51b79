"""Grants, attacked over HTTP: nothing a lessor or buyer receives lies outside its grant.

The world is a deployment seeded by the real gateway pipeline (24 hourly messages per device
from ``DAY0_MS``) with extra lessor keys whose grants sit around that data: a lease that starts
after the newest message ("tomorrow"), a lease in the middle of the day, an ended lease, a pack
sold on at midday, and a revoked key.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Final

import pytest
from fastapi.testclient import TestClient

from api.access import Role, Window
from api.accessdb import AccessDb
from api.app import create_app
from api.settings import load_deployment
from ledger.bundle_v2 import BundleV2, read_bundle
from ledger.keys import load_key_file
from ledger.message import decode_message
from ledger.verify_v2 import verify_bundle_v2
from tests.support.api_fleet import DAY0_MS, STEP_MS, Deployment, make_keys, seed

TOMORROW: Final = DAY0_MS + 30 * STEP_MS
MID_FROM: Final = DAY0_MS + 10 * STEP_MS
MID_TO: Final = DAY0_MS + 14 * STEP_MS
ENDED_AT: Final = DAY0_MS + 6 * STEP_MS
SOLD_AT: Final = DAY0_MS + 12 * STEP_MS
NEXT_WEEK: Final = time.time_ns() // 1_000_000 + 7 * 86_400_000
"""A lease that starts after the wall clock's now (all the data is long before it)."""
FORMATS: Final = (1, 2)
"""Both bundle versions the API serves (2 is the default)."""


async def _grant_world(deployment: Deployment) -> dict[str, str]:
    keys = await make_keys(deployment)
    access = await AccessDb.open(deployment.settings.data_dir / "api.db")
    try:
        names = ("future", "middle", "ended", "seller", "buyer", "third", "revoked", "next-week")
        for name in names:
            created = await access.create_key(
                name=name, role=Role.LESSOR, fleet=None, now_ms=DAY0_MS
            )
            keys[name] = created.secret
        await access.add_lease(
            asset="bus-2", lessor="future", window=Window(from_ms=TOMORROW, to_ms=TOMORROW * 2)
        )
        await access.add_lease(
            asset="bus-2", lessor="middle", window=Window(from_ms=MID_FROM, to_ms=MID_TO)
        )
        await access.add_lease(
            asset="pack-2",
            lessor="next-week",
            window=Window(from_ms=NEXT_WEEK, to_ms=2 * NEXT_WEEK),
        )
        ended = await access.add_lease(
            asset="bus-2", lessor="ended", window=Window(from_ms=DAY0_MS, to_ms=TOMORROW)
        )
        await access.end_lease(ended.lease_id, now_ms=ENDED_AT)
        await access.transfer(
            pack="pack-2", owner="seller", by="operator", by_operator=True, now_ms=DAY0_MS
        )
        await access.transfer(
            pack="pack-2", owner="buyer", by="seller", by_operator=False, now_ms=SOLD_AT
        )
        await access.add_lease(
            asset="bus-2", lessor="revoked", window=Window(from_ms=DAY0_MS, to_ms=TOMORROW)
        )
        await access.revoke_key("revoked", now_ms=DAY0_MS + 1)
    finally:
        await access.close()
    return keys


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Deployment, dict[str, str]]:
    """The seeded deployment and every key (including the revoked one's secret)."""
    workdir = tmp_path_factory.mktemp("grants") / "deploy"

    async def build() -> tuple[Deployment, dict[str, str]]:
        deployment = await seed(workdir)
        return deployment, await _grant_world(deployment)

    return asyncio.run(build())


@pytest.fixture(scope="module")
def client(world: tuple[Deployment, dict[str, str]]) -> Iterator[TestClient]:
    """A client of the app over the world."""
    with TestClient(create_app(load_deployment(workdir=world[0].workdir))) as test_client:
        yield test_client


def _as(world: tuple[Deployment, dict[str, str]], name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world[1][name]}"}


def _message_times(content: bytes) -> list[int]:
    """The signed ``t`` of every message of a bundle of either version, boundary messages
    and (v2) the host and installed chains included."""
    return [
        int(decode_message(leaf.data).payload["t"])
        for chain in read_bundle(content).chains
        for leaf in (chain.before, *chain.messages, chain.after)
        if leaf is not None
    ]


def _v2(content: bytes) -> BundleV2:
    bundle = read_bundle(content)
    assert isinstance(bundle, BundleV2)
    return bundle


def test_lease_not_started_gives_nothing(
    client: TestClient, world: tuple[Deployment, dict[str, str]]
) -> None:
    """Attack: a lessor whose lease starts tomorrow asks for the bus now. No newest message,
    no sample, and the bundle holds no message (not even the boundary one before the lease)."""
    headers = _as(world, "future")
    asset = client.get("/api/assets/bus-2", headers=headers).json()
    assert (asset["last_t_ms"], asset["last_leaf"], asset["latest"]) == (None, None, {})
    samples = client.get("/api/assets/bus-2/samples?fields=speed_mps", headers=headers).json()
    assert samples["count"] == 0
    for version in FORMATS:
        bundle = client.get(f"/api/assets/bus-2/bundle?format={version}", headers=headers)
        assert bundle.status_code == 200
        assert _message_times(bundle.content) == [], version
    report = client.get("/api/assets/bus-2/report", headers=headers).json()
    assert report["figures"]["messages"]["value"] == 0
    feed = client.get("/gtfs-rt/vehicle-positions", headers=headers)
    assert feed.status_code == 200
    assert b"bus-2" not in feed.content


def test_period_after_now_is_nothing_logged_yet(
    client: TestClient, world: tuple[Deployment, dict[str, str]]
) -> None:
    """A lease that starts next week, and an operator asking for a period after now: the
    bundle, report and passport are a 404 that says so (they were a 500: the period could not
    be cut at now), and every other read is empty."""
    lessor, operator = _as(world, "next-week"), _as(world, "operator")
    later = NEXT_WEEK + 86_400_000
    asks = [
        (lessor, ""),
        (lessor, f"?from={later}"),
        (operator, f"?from={NEXT_WEEK}"),
        (operator, f"?from={NEXT_WEEK}&to={later}"),
        (operator, "?from=9223372036854775806"),
    ]
    for headers, query in asks:
        for route in ("bundle", "bundle?format=1", "report", "passport"):
            url = f"/api/assets/pack-2/{route}"
            url += query if "?" not in route else query.replace("?", "&")
            response = client.get(url, headers=headers)
            assert response.status_code == 404, (url, response.text)
            detail = response.json()["detail"]
            assert "after now: nothing is logged in it yet" in detail, (url, detail)
    assert client.get("/api/assets/pack-2", headers=lessor).json()["last_t_ms"] is None
    samples = client.get("/api/assets/pack-2/samples?fields=soc", headers=lessor).json()
    assert samples["count"] == 0


def test_yesterday_and_tomorrow_are_refused(
    client: TestClient, world: tuple[Deployment, dict[str, str]]
) -> None:
    """Attack: a mid-day lessor asks for the hours before and after its lease: 404; asking
    for the whole day is clipped to the lease, boundary messages included."""
    headers = _as(world, "middle")
    for start, end in ((DAY0_MS, MID_FROM), (MID_TO, TOMORROW)):
        url = f"/api/assets/bus-2/samples?fields=speed_mps&from={start}&to={end}"
        assert client.get(url, headers=headers).status_code == 404
        for version in FORMATS:
            url = f"/api/assets/bus-2/bundle?from={start}&to={end}&format={version}"
            assert client.get(url, headers=headers).status_code == 404
    for version in FORMATS:
        whole = client.get(
            f"/api/assets/bus-2/bundle?from={DAY0_MS}&to={TOMORROW}&format={version}",
            headers=headers,
        )
        times = _message_times(whole.content)
        assert times, version
        assert all(MID_FROM <= t < MID_TO for t in times), (version, times)
    assert len(_message_times(whole.content)) > 4, "v2 adds the installed packs' messages"
    one = client.get(f"/api/assets/bus-2/bundle?format=1&from={MID_FROM}", headers=headers)
    assert len(_message_times(one.content)) == 4
    operator = _as(world, "operator")
    url = f"/api/assets/bus-2/bundle?from={MID_FROM}&to={MID_TO}"
    assert len(_message_times(client.get(url + "&format=1", headers=operator).content)) == 6
    chain = _v2(client.get(url, headers=operator).content).chains[0]
    assert chain.before is not None, "an operator still gets both boundaries"
    assert chain.after is not None


def test_lessor_v2_bundle_without_boundaries_is_valid_and_says_what_is_unproven(
    client: TestClient, world: tuple[Deployment, dict[str, str]]
) -> None:
    """The clipped v2 bundle of a closed lease verifies (VALID); the ends that only a message
    outside the lease could pin are reported as not proven, never guessed."""
    deployment, _ = world
    key = load_key_file(deployment.settings.key_file).verifier_key
    bundle = _v2(client.get("/api/assets/bus-2/bundle", headers=_as(world, "middle")).content)
    assert (bundle.from_ms, bundle.to_ms) == (MID_FROM, MID_TO)
    report = verify_bundle_v2(bundle, gateway_verifier_key=key)
    own = report.chains[0]
    assert (own.device, own.received) == ("bus-2", 4)
    assert (own.start_proven, own.end_proven) == (False, False)
    assert not report.complete


def test_ended_lease_reads_nothing_after_its_end(
    client: TestClient, world: tuple[Deployment, dict[str, str]]
) -> None:
    """Attack: a lessor keeps reading after its lease was ended early."""
    headers = _as(world, "ended")
    page = client.get(
        f"/api/assets/bus-2/samples?fields=speed_mps&from=0&to={TOMORROW}&limit=5000",
        headers=headers,
    ).json()
    assert page["count"] > 0
    assert max(page["t_ms"]) < ENDED_AT
    later = f"/api/assets/bus-2/samples?fields=speed_mps&from={ENDED_AT}"
    assert client.get(later, headers=headers).status_code == 404
    assert client.get("/api/assets/bus-2", headers=headers).json()["last_t_ms"] < ENDED_AT
    for version in FORMATS:
        bundle = client.get(f"/api/assets/bus-2/bundle?format={version}", headers=headers)
        assert max(_message_times(bundle.content)) < ENDED_AT, version


def test_seller_after_the_sale(
    client: TestClient, world: tuple[Deployment, dict[str, str]]
) -> None:
    """Attack: a seller reads the pack after selling it, and sells it again. It reads only
    what was logged before the sale, and the second sale is refused."""
    headers = _as(world, "seller")
    page = client.get("/api/assets/pack-2/samples?fields=soc&limit=5000", headers=headers).json()
    assert page["count"] > 0
    assert max(page["t_ms"]) < SOLD_AT
    after = client.get(f"/api/assets/pack-2/samples?fields=soc&from={SOLD_AT}", headers=headers)
    assert after.status_code == 404
    assert client.get("/api/assets/pack-2", headers=headers).json()["last_t_ms"] < SOLD_AT
    for version in FORMATS:
        bundle = client.get(f"/api/assets/pack-2/bundle?format={version}", headers=headers)
        assert max(_message_times(bundle.content)) < SOLD_AT, version
    again = client.post("/api/packs/pack-2/transfer", json={"to": "third"}, headers=headers)
    assert again.status_code == 403
    assert again.json() == {
        "detail": "'seller' does not own pack-2; only its owner may sell it",
        "status": 403,
    }


def test_buyer_resells_once_only_and_never_to_itself(
    client: TestClient, world: tuple[Deployment, dict[str, str]]
) -> None:
    """Attack: the buyer transfers to itself, then resells twice. Self-transfer is a 400; the
    first resale works and ends its access; the second is a 403."""
    headers = _as(world, "buyer")
    self_sale = client.post("/api/packs/pack-2/transfer", json={"to": "buyer"}, headers=headers)
    assert self_sale.status_code == 400
    assert "a transfer to oneself is refused" in self_sale.json()["detail"]
    first = client.post("/api/packs/pack-2/transfer", json={"to": "third"}, headers=headers)
    assert first.status_code == 201
    second = client.post("/api/packs/pack-2/transfer", json={"to": "seller"}, headers=headers)
    assert second.status_code == 403
    third = _as(world, "third")
    assert client.get("/api/assets/pack-2", headers=third).status_code == 200


def test_revoked_key_is_401(client: TestClient, world: tuple[Deployment, dict[str, str]]) -> None:
    """Attack: a revoked key calls again."""
    response = client.get("/api/assets/bus-2", headers=_as(world, "revoked"))
    assert response.status_code == 401
    assert response.json() == {"detail": "unknown or revoked API key", "status": 401}
