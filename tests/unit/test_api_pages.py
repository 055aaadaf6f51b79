"""Cursors on every list of the API, and alarm acknowledgement, over a deployment seeded and
then fed by the real gateway pipeline.

Every list is walked page by page while the gateway writes between pages (new messages with
alarms, quarantined input, new devices, new checkpoints): no row present at the start is
skipped or repeated, and the order holds. A cursor edited, made up or carried to another
list, filter, asset or key is refused with the error schema, never a 500; a lessor's cursor
never reaches past its grants. Acknowledging is for operators only, idempotent and visible
to auditors, and open-alarm counts leave acknowledged alarms out.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.access import Role
from api.accessdb import AccessDb
from api.app import create_app
from api.cursor import CursorError, Cursors
from api.settings import load_deployment
from gateway.pipeline import Pipeline
from gateway.registry import DeviceSpec, Registry
from gateway.store import CheckpointRecord, SqliteStore
from gateway.store.access_tables import MIGRATIONS
from gateway.verification import Incoming
from ledger.keys import load_key_file, public_key_from_seed
from tests.support.api_fleet import (
    DAY0_MS,
    MESSAGES_PER_DEVICE,
    STEP_MS,
    Deployment,
    Device,
    _batch,
    make_keys,
    seed,
)

World = tuple[Deployment, dict[str, str]]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """A seeded deployment (this module's own: its tests write to it) and its keys."""
    workdir = tmp_path_factory.mktemp("pages") / "deploy"

    async def build() -> World:
        deployment = await seed(workdir)
        return deployment, await make_keys(deployment)

    return asyncio.run(build())


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    """A client of the app over the deployment."""
    with TestClient(create_app(load_deployment(workdir=world[0].workdir))) as test_client:
        yield test_client


def auth(world: World, name: str) -> dict[str, str]:
    """The bearer header of key ``name``."""
    return {"Authorization": f"Bearer {world[1][name]}"}


class Gateway:
    """Writes through the real pipeline between pages: an hour of alarmed messages from
    every device, a quarantined input, a device enrolled, a checkpoint signed."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.hour = MESSAGES_PER_DEVICE
        self.enrolled = 0

    def step(self) -> None:
        """One round of writes."""
        asyncio.run(self._step())

    async def _step(self) -> None:
        settings = self.deployment.settings
        store = await SqliteStore.open(settings.db_path)
        try:
            pipeline = Pipeline(store=store)
            t_ms = DAY0_MS + self.hour * STEP_MS
            batch = []
            for device in self.deployment.devices.values():
                # the values of an hour of the second half (hosts stay put), at a new time
                signed = replace(_batch(device, 12 + self.hour % 12), t_ms=t_ms)
                if device.kind == "pack":
                    samples = tuple(replace(s, alarm_level=3) for s in signed.samples)  # type: ignore[arg-type]
                    signed = replace(signed, samples=samples)
                batch.append(device.incoming(device.sign(signed), t_ms))
            junk = Incoming(topic="voltproof/fleet-a/pack-1/telemetry", payload=b"\x00junk",
                            received_at_ms=t_ms)  # fmt: skip
            outcomes = await pipeline.process([*batch, junk])
            assert all(o.leaf_index is not None for o in outcomes[:-1]), outcomes
            self.enrolled += 1
            # each id sorts before every earlier one: below the cursor of any walk under way
            fresh = Device(device_id=f"a-bus-{999 - self.enrolled:03}", kind="bus", fleet="fleet-a")
            registry = Registry(store=store, operator=load_key_file(settings.operator_key_file),
                                clock_ms=lambda: t_ms)  # fmt: skip
            spec = DeviceSpec(device_id=fresh.device_id, kind="bus", fleet="fleet-a",
                              public_key=public_key_from_seed(fresh.seed))  # fmt: skip
            await registry.enroll([spec])
            head = await store.log_head()
            await store.add_checkpoint(CheckpointRecord(size=head.size, root=head.root,
                                                        note=f"note {head.size}",
                                                        signed_at_ms=t_ms))  # fmt: skip
        finally:
            await store.close()
        self.hour += 1


@pytest.fixture(scope="module")
def gateway(world: World) -> Gateway:
    """The writer between pages (one per module: it continues the devices' chains)."""
    return Gateway(world[0])


def walk(
    client: TestClient, path: str, headers: dict[str, str], between: Callable[[], None]
) -> list[dict[str, Any]]:
    """Every row of a list, page by page, calling ``between`` after each page."""
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(200):
        sep = "&" if "?" in path else "?"
        url = path if cursor is None else f"{path}{sep}cursor={cursor}"
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["count"] == len(body["data"])
        rows += body["data"]
        between()
        cursor = body["next"]
        if cursor is None:
            return rows
    raise AssertionError(f"{path} did not end")


LISTS: list[tuple[str, str, Callable[[dict[str, Any]], Any], bool]] = [
    # path, key, the row's order key, descending
    ("/api/alarms?min_level=1&limit=7", "operator", lambda r: (r["t_ms"], r["alarm_id"]), True),
    ("/api/alarms?min_level=1&limit=3", "operator-a", lambda r: (r["t_ms"], r["alarm_id"]), True),
    ("/api/alarms?min_level=1&limit=3", "lessor-1", lambda r: (r["t_ms"], r["alarm_id"]), True),
    ("/api/alarms?asset=pack-1&limit=4", "operator", lambda r: (r["t_ms"], r["alarm_id"]), True),
    ("/api/quarantine?limit=2", "operator", lambda r: r["id"], True),
    ("/api/registry?limit=2", "operator", lambda r: (r["leaf_index"], r["device"]), False),
    ("/api/registry?limit=2", "auditor", lambda r: (r["leaf_index"], r["device"]), False),
    ("/api/checkpoints?limit=2", "auditor", lambda r: r["size"], True),
    ("/api/assets?limit=2", "operator", lambda r: r["id"], False),
    ("/api/assets?limit=1", "lessor-1", lambda r: r["id"], False),
    ("/api/dashboard/fleet?limit=2", "operator-a", lambda r: r["id"], False),
    ("/api/dashboard/trails?minutes=1440&limit=25", "operator", lambda r: r["id"], False),
]


@pytest.mark.parametrize("case", LISTS, ids=[f"{p.split('?')[0]}-{k}" for p, k, _, _ in LISTS])
def test_every_list_walked_while_the_gateway_writes(
    client: TestClient,
    world: World,
    gateway: Gateway,
    case: tuple[str, str, Callable[[dict[str, Any]], Any], bool],
) -> None:
    """Page by page, with writes between pages: every row present at the start is seen once,
    none twice, in the list's order."""
    path, key, order, descending = case
    gateway.step()  # something to page through on every list
    whole = client.get(path.replace("limit=", "limit=1000&_=") if "limit" in path else path,
                       headers=auth(world, key))  # fmt: skip
    assert whole.status_code == 200, whole.text
    at_start = [order(r) for r in whole.json()["data"]]
    assert at_start, f"{path} is empty for {key}"
    seen = [order(r) for r in walk(client, path, auth(world, key), gateway.step)]
    assert len(seen) == len(set(seen)), f"a row was repeated: {seen}"
    assert seen == sorted(seen, reverse=descending)
    assert set(at_start) <= set(seen), f"rows skipped: {set(at_start) - set(seen)}"


def test_a_pack_history_walked_in_pages_is_the_history(client: TestClient, world: World) -> None:
    """Stints read a few messages a page, joined where a stint goes on into the next page,
    are the stints read in one page; the cursor is bound to the asset and period."""
    operator = auth(world, "operator")
    whole = client.get("/api/assets/pack-1/history", headers=operator).json()
    assert whole["next"] is None
    joined: list[dict[str, Any]] = []
    for stint in walk(client, "/api/assets/pack-1/history?limit=5", operator, lambda: None):
        if joined and joined[-1]["bus"] == stint["bus"]:
            last = joined[-1]
            joined[-1] = {**last, "to_ms": stint["to_ms"],
                          "messages": last["messages"] + stint["messages"]}  # fmt: skip
        else:
            joined.append(stint)
    assert joined == whole["data"]
    assert len({s["bus"] for s in joined}) >= 2  # pack-1 moved from bus-1 to bus-2
    cursor = _cursor_of(client, "/api/assets/pack-1/history?limit=5", operator)
    _refused(client.get(f"/api/assets/pack-2/history?cursor={cursor}", headers=operator))
    _refused(client.get(f"/api/assets/pack-1/history?from={DAY0_MS}&cursor={cursor}",
                        headers=operator))  # fmt: skip


def _cursor_of(client: TestClient, path: str, headers: dict[str, str]) -> str:
    body = client.get(path, headers=headers).json()
    assert body["next"] is not None, body
    return str(body["next"])


def _refused(response: Any, status: int = 400) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"detail", "status"}
    assert body["status"] == status
    return str(body["detail"])


def test_a_made_up_or_altered_cursor_is_refused(client: TestClient, world: World) -> None:
    """Garbage, an edited position, a truncated tag: 400 with the reason, never a 500."""
    headers = auth(world, "operator")
    good = _cursor_of(client, "/api/alarms?limit=1", headers)
    body, tag = good.split(".")
    position = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    edited = base64.urlsafe_b64encode(json.dumps([position[0] + 1, 0]).encode()).decode()
    for bad in ("nonsense", "a.b", f"{edited.rstrip('=')}.{tag}", f"{body}.{tag[:-2]}",
                f"{body}.!!!", "." * 10):  # fmt: skip
        detail = _refused(client.get(f"/api/alarms?limit=1&cursor={bad}", headers=headers))
        assert "cursor" in detail
    _refused(client.get(f"/api/alarms?cursor={'x' * 600}", headers=headers), 422)
    assert client.get(f"/api/alarms?limit=1&cursor={good}", headers=headers).status_code == 200


def test_a_cursor_belongs_to_its_list_filters_and_key(client: TestClient, world: World) -> None:
    """A cursor carried to another list, other filters or another key is refused."""
    operator = auth(world, "operator")
    alarms = _cursor_of(client, "/api/alarms?asset=pack-1&limit=1", operator)
    assert "another list" in _refused(
        client.get(f"/api/alarms?asset=pack-2&limit=1&cursor={alarms}", headers=operator)
    )
    _refused(client.get(f"/api/alarms?asset=pack-1&min_level=2&cursor={alarms}", headers=operator))
    _refused(client.get(f"/api/quarantine?cursor={alarms}", headers=operator))
    _refused(client.get(f"/api/alarms?asset=pack-1&cursor={alarms}",
                        headers=auth(world, "operator-a")))  # fmt: skip
    fleet = _cursor_of(client, "/api/assets?limit=1", operator)
    _refused(client.get(f"/api/dashboard/fleet?cursor={fleet}", headers=operator))
    _refused(client.get(f"/api/assets?kind=bus&cursor={fleet}", headers=operator))


def test_a_lessor_cursor_never_reaches_past_its_grants(client: TestClient, world: World) -> None:
    """lessor-1 holds bus-1 and half a day of pack-1: its cursor does not open pack-2 (another
    asset: 404 before any cursor is read, and the cursor is refused on its own), nor does an
    operator's cursor, nor do its pages ever hold another asset or a time outside its lease."""
    lessor = auth(world, "lessor-1")
    mine = _cursor_of(client, "/api/dashboard/fleet?limit=1", lessor)
    tag = mine.split(".")[1]
    for position in (["a"], ["pack-2"], [""]):
        crafted = base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")
        _refused(client.get(f"/api/dashboard/fleet?cursor={crafted}.{tag}", headers=lessor))
    for asset in ("pack-2", "bus-2"):
        response = client.get(f"/api/alarms?asset={asset}&cursor={mine}", headers=lessor)
        assert response.status_code == 404
    # an operator's walk of pack-1 (all of its history) cannot be resumed by the lessor
    theirs = _cursor_of(client, "/api/alarms?asset=pack-1&limit=1", auth(world, "operator"))
    _refused(client.get(f"/api/alarms?asset=pack-1&cursor={theirs}", headers=lessor))
    _refused(client.get(f"/api/alarms?cursor={theirs}", headers=lessor))
    everyone = _cursor_of(client, "/api/dashboard/fleet?limit=1", auth(world, "operator"))
    _refused(client.get(f"/api/dashboard/fleet?cursor={everyone}", headers=lessor))
    rows = walk(client, "/api/alarms?limit=1", lessor, lambda: None)
    assert rows
    assert {r["device"] for r in rows} <= {"bus-1", "pack-1"}
    assert all(r["t_ms"] < DAY0_MS + 12 * STEP_MS for r in rows if r["device"] == "pack-1")
    assets = walk(client, "/api/dashboard/fleet?limit=1", lessor, lambda: None)
    assert sorted(r["id"] for r in assets) == ["bus-1", "pack-1"]


def test_cursor_shape_and_key_are_checked() -> None:
    """A position of the wrong shape is refused even under a good tag; a short key is not
    accepted; each scope has its own tags."""
    cursors = Cursors(key=b"k" * 32)
    scope = Cursors.scope("alarms", "operator", asset=None)
    token = cursors.encode(scope, ("pack-1",))
    with pytest.raises(CursorError, match="shape"):
        cursors.decode(scope, token, (int,))
    assert cursors.decode(scope, token, (str,)) == ("pack-1",)
    with pytest.raises(CursorError, match="another list"):
        cursors.decode(Cursors.scope("alarms", "operator", asset="x"), token, (str,))
    with pytest.raises(CursorError, match="another list"):
        Cursors(key=b"j" * 32).decode(scope, token, (str,))
    bool_token = cursors.encode(scope, (True,))
    with pytest.raises(CursorError, match="shape"):
        cursors.decode(scope, bool_token, (int,))
    with pytest.raises(ValueError, match="32 bytes"):
        Cursors(key=b"short")


# --- acknowledgement ----------------------------------------------------------------------


def test_acknowledgement_is_for_operators_idempotent_and_audit_visible(
    client: TestClient, world: World
) -> None:
    """An operator acknowledges (who, when, note); a repeat answers the first; a lessor or
    auditor is refused (403), a fleet key cannot reach another fleet's alarm (404); the open
    count drops by one at that level; auditors list acknowledgements."""
    operator = auth(world, "operator-a")
    alarm = client.get("/api/alarms?asset=pack-1&min_level=2&state=open&limit=1",
                       headers=operator).json()["data"][0]  # fmt: skip
    alarm_id, level = alarm["alarm_id"], alarm["level"]
    before = client.get("/api/alarms/open", headers=operator).json()
    for name in ("lessor-1", "auditor"):
        refused = client.post(f"/api/alarms/{alarm_id}/acknowledgement", json={"note": "x"},
                              headers=auth(world, name))  # fmt: skip
        detail = _refused(refused, 403)
        assert "operator" in detail
    _refused(client.post(f"/api/alarms/{alarm_id}/acknowledgement", json={},
                         headers=auth(world, "operator-b")), 404)  # fmt: skip
    _refused(client.post("/api/alarms/999999999/acknowledgement", json={}, headers=operator), 404)
    _refused(client.post(f"/api/alarms/{alarm_id}/acknowledgement", headers=operator), 422)
    _refused(client.post(f"/api/alarms/{alarm_id}/acknowledgement", json={"note": "n" * 501},
                         headers=operator), 422)  # fmt: skip
    first = client.post(f"/api/alarms/{alarm_id}/acknowledgement",
                        json={"note": "cell 7 checked"}, headers=operator)  # fmt: skip
    assert first.status_code == 200, first.text
    ack = first.json()
    assert (ack["alarm_id"], ack["by"], ack["note"], ack["level"]) == (
        alarm_id, "operator-a", "cell 7 checked", level,
    )  # fmt: skip
    again = client.post(f"/api/alarms/{alarm_id}/acknowledgement", json={"note": "again"},
                        headers=auth(world, "operator"))  # fmt: skip
    assert again.json() == ack  # the first acknowledgement stays
    after = client.get("/api/alarms/open", headers=operator).json()
    assert after["levels"][str(level)] == before["levels"][str(level)] - 1
    assert after["acknowledged"] == before["acknowledged"] + 1
    listed = client.get(f"/api/alarms?asset=pack-1&min_level={level}&limit=1000",
                        headers=operator).json()["data"]  # fmt: skip
    (shown,) = [a for a in listed if a["alarm_id"] == alarm_id]
    assert shown["acknowledged"] == ack
    open_ids = {a["alarm_id"] for a in walk(
        client, f"/api/alarms?asset=pack-1&min_level={level}&state=open&limit=5", operator,
        lambda: None)}  # fmt: skip
    acked_ids = {a["alarm_id"] for a in walk(
        client, f"/api/alarms?asset=pack-1&min_level={level}&state=acknowledged&limit=5",
        operator, lambda: None)}  # fmt: skip
    assert alarm_id in acked_ids
    assert alarm_id not in open_ids
    assert open_ids | acked_ids == {a["alarm_id"] for a in listed}
    audit = client.get("/api/alarms/acknowledgements", headers=auth(world, "auditor")).json()
    assert ack in audit["data"]
    fleet_b = client.get("/api/alarms/acknowledgements", headers=auth(world, "operator-b"))
    assert ack not in fleet_b.json()["data"]
    _refused(client.get("/api/alarms/acknowledgements", headers=auth(world, "lessor-1")), 403)


def test_acknowledgements_page_with_cursors(client: TestClient, world: World) -> None:
    """Acknowledgements read in keyset pages, newest first, while more are recorded."""
    operator = auth(world, "operator")
    alarms = client.get("/api/alarms?state=open&limit=6", headers=operator).json()["data"]
    for alarm in alarms[:3]:
        client.post(f"/api/alarms/{alarm['alarm_id']}/acknowledgement", json={}, headers=operator)
    pending = iter(alarms[3:])

    def acknowledge_one() -> None:
        alarm = next(pending, None)
        if alarm is not None:
            client.post(f"/api/alarms/{alarm['alarm_id']}/acknowledgement", json={},
                        headers=operator)  # fmt: skip

    at_start = client.get("/api/alarms/acknowledgements?limit=1000", headers=operator).json()
    rows = walk(client, "/api/alarms/acknowledgements?limit=1", operator, acknowledge_one)
    ids = [r["alarm_id"] for r in rows]
    assert len(ids) == len(set(ids))
    assert {r["alarm_id"] for r in at_start["data"]} <= set(ids)


def test_an_access_database_of_version_2_is_migrated(tmp_path: Path) -> None:
    """A database made before acknowledgements keeps its keys and gains the new tables; the
    cursor key is made once and stays."""
    path = tmp_path / "api.db"
    with sqlite3.connect(path) as db:
        for number, script in enumerate(MIGRATIONS[:2]):
            db.executescript(f"{script} PRAGMA user_version = {number + 1};")

    async def run() -> None:
        access = await AccessDb.open(path)
        try:
            made = await access.create_key(name="op", role=Role.OPERATOR, fleet=None, now_ms=1)
            key = await access.cursor_key()
            assert len(key) == 32
            assert await access.cursor_key() == key
            assert await access.authenticate(made.secret) is not None
        finally:
            await access.close()
        again = await AccessDb.open(path)
        try:
            assert await again.cursor_key() == key
        finally:
            await again.close()

    asyncio.run(run())
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
        assert db.execute("SELECT count(*) FROM alarm_acks").fetchone() == (0,)
