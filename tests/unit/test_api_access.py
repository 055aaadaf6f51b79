"""Access control: windows, principals, and the API's own key/lease/transfer database."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.access import (
    ALL_TIME,
    FOREVER,
    Grant,
    Principal,
    Role,
    Sale,
    Window,
    current_owner,
    merged,
    ownership_grants,
    visible_assets,
)
from api.accessdb import AccessDb, AccessError, OwnershipError, hash_key
from gateway.store.access_tables import MIGRATIONS

T = 1_767_225_600_000
windows = st.tuples(st.integers(0, 10**6), st.integers(1, 10**6)).map(
    lambda pair: Window(from_ms=pair[0], to_ms=pair[0] + pair[1])
)


def test_window_refuses_empty_period() -> None:
    """A window must start before it ends."""
    with pytest.raises(ValueError, match="window start 5 is not before its end 5"):
        Window(from_ms=5, to_ms=5)


@given(windows, windows)
def test_clamp_is_the_overlap(a: Window, b: Window) -> None:
    """The clamp of two windows lies in both, and is None exactly when they are disjoint."""
    overlap = a.clamp(b)
    disjoint = a.to_ms <= b.from_ms or b.to_ms <= a.from_ms
    assert (overlap is None) == disjoint
    if overlap is not None:
        assert a.covers(overlap.from_ms)
        assert b.covers(overlap.from_ms)
        assert overlap.to_ms <= min(a.to_ms, b.to_ms)


def test_operator_sees_own_fleet_only() -> None:
    """A fleet operator reads its fleet all the time and nothing of another fleet."""
    user = Principal(name="op", role=Role.OPERATOR, fleet="fleet-a")
    assert user.windows("bus-1", "fleet-a") == (ALL_TIME,)
    assert user.windows("bus-9", "fleet-b") == ()
    everyone = Principal(name="root", role=Role.OPERATOR)
    assert everyone.windows("bus-9", "fleet-b") == (ALL_TIME,)


def test_lessor_sees_leased_periods_only() -> None:
    """A lessor reads an asset only inside a lease; the request is clipped to it."""
    lease = Window(from_ms=100, to_ms=200)
    user = Principal(name="l", role=Role.LESSOR, grants=(Grant(asset="pack-1", window=lease),))
    assert user.windows("pack-1", "fleet-a") == (lease,)
    assert user.windows("pack-2", "fleet-a") == ()
    assert user.window_for("pack-1", "x", Window(from_ms=0, to_ms=150)) == Window(
        from_ms=100, to_ms=150
    )
    assert user.window_for("pack-1", "x", Window(from_ms=300, to_ms=400)) is None
    assert user.default_window("pack-1", "x") == lease
    assert user.default_window("pack-2", "x") is None


def test_auditor_reads_no_telemetry() -> None:
    """An auditor has no telemetry window on any asset."""
    user = Principal(name="a", role=Role.AUDITOR)
    assert not user.reads_telemetry
    assert visible_assets(user, [("bus-1", "fleet-a")]) == []


async def _open(tmp_path: Path) -> AccessDb:
    return await AccessDb.open(tmp_path / "api.db")


@pytest.mark.asyncio
async def test_key_round_trip_and_hash_only(tmp_path: Path) -> None:
    """A created key authenticates; only its SHA-256 is stored."""
    access = await _open(tmp_path)
    try:
        key = await access.create_key(name="op", role=Role.OPERATOR, fleet="fleet-a", now_ms=T)
        principal = await access.authenticate(key.secret)
        assert principal == Principal(name="op", role=Role.OPERATOR, fleet="fleet-a")
        assert await access.authenticate(key.secret + "x") is None
    finally:
        await access.close()
    raw = (tmp_path / "api.db").read_bytes()
    assert key.secret.encode() not in raw
    with sqlite3.connect(tmp_path / "api.db") as db:
        (stored,) = db.execute("SELECT key_hash FROM api_keys").fetchone()
    assert stored == hash_key(key.secret)


@pytest.mark.asyncio
async def test_lessor_grants_from_leases_and_transfers(tmp_path: Path) -> None:
    """A lessor's principal carries its leases and, for a transferred pack, all time."""
    access = await _open(tmp_path)
    try:
        key = await access.create_key(name="bank", role=Role.LESSOR, fleet=None, now_ms=T)
        lease = Window(from_ms=T, to_ms=T + 1000)
        await access.add_lease(asset="bus-1", lessor="bank", window=lease)
        await access.transfer(pack="pack-1", owner="bank", by="ops", by_operator=True, now_ms=T)
        principal = await access.authenticate(key.secret)
        assert principal is not None
        assert set(principal.grants) == {
            Grant(asset="bus-1", window=lease),
            Grant(asset="pack-1", window=Window(from_ms=0, to_ms=FOREVER)),
        }
        assert [x.asset for x in await access.leases()] == ["bus-1"]
    finally:
        await access.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("name", "role", "fleet", "message"),
    [
        ("", Role.OPERATOR, None, "key name must be 1-64 printable characters"),
        (" x", Role.OPERATOR, None, "key name must be"),
        ("x" * 65, Role.OPERATOR, None, "key name must be"),
        ("l", Role.LESSOR, "fleet-a", "--fleet applies to operator keys, not lessor keys"),
        ("o", Role.OPERATOR, "", "fleet must be"),
    ],
)
async def test_create_key_refuses_bad_input(
    tmp_path: Path, name: str, role: Role, fleet: str | None, message: str
) -> None:
    """Bad key names, fleets and role combinations are refused with the reason."""
    access = await _open(tmp_path)
    try:
        with pytest.raises(AccessError, match=message):
            await access.create_key(name=name, role=role, fleet=fleet, now_ms=T)
    finally:
        await access.close()


@pytest.mark.asyncio
async def test_duplicate_key_name_refused(tmp_path: Path) -> None:
    """Key names are unique."""
    access = await _open(tmp_path)
    try:
        await access.create_key(name="dup", role=Role.AUDITOR, fleet=None, now_ms=T)
        with pytest.raises(AccessError, match="a key named 'dup' exists already"):
            await access.create_key(name="dup", role=Role.AUDITOR, fleet=None, now_ms=T)
    finally:
        await access.close()


@pytest.mark.asyncio
async def test_leases_and_transfers_need_a_lessor_key(tmp_path: Path) -> None:
    """Leases and transfers go to existing lessor keys only."""
    access = await _open(tmp_path)
    try:
        await access.create_key(name="op", role=Role.OPERATOR, fleet=None, now_ms=T)
        window = Window(from_ms=0, to_ms=1)
        with pytest.raises(AccessError, match="no API key named 'ghost'"):
            await access.add_lease(asset="bus-1", lessor="ghost", window=window)
        with pytest.raises(AccessError, match="key 'op' is a operator key"):
            await access.transfer(pack="pack-1", owner="op", by="op", by_operator=True, now_ms=T)
        with pytest.raises(AccessError, match="asset must be"):
            await access.add_lease(asset="", lessor="op", window=window)
    finally:
        await access.close()


@pytest.mark.asyncio
async def test_newer_schema_refused(tmp_path: Path) -> None:
    """A database from a newer voltproof is refused, not silently used."""
    with sqlite3.connect(tmp_path / "api.db") as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(
        AccessError,
        match=f"schema version {len(MIGRATIONS) + 1}; this voltproof knows {len(MIGRATIONS)}",
    ):
        await _open(tmp_path)


@pytest.mark.asyncio
async def test_reopen_keeps_keys(tmp_path: Path) -> None:
    """Migrations run once; a reopened database keeps its keys."""
    access = await _open(tmp_path)
    key = await access.create_key(name="a", role=Role.AUDITOR, fleet=None, now_ms=T)
    await access.close()
    again = await _open(tmp_path)
    try:
        assert await again.authenticate(key.secret) is not None
    finally:
        await again.close()


def test_unopenable_path_refused(tmp_path: Path) -> None:
    """A database path under a regular file gives an AccessError (a missing directory is
    created 0700)."""
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(AccessError, match="cannot open the access database"):
        asyncio.run(AccessDb.open(tmp_path / "file" / "api.db"))


async def _lessors(access: AccessDb, *names: str) -> dict[str, str]:
    return {
        name: (await access.create_key(name=name, role=Role.LESSOR, fleet=None, now_ms=T)).secret
        for name in names
    }


async def _grants(access: AccessDb, secret: str) -> set[Grant]:
    principal = await access.authenticate(secret)
    assert principal is not None
    return set(principal.grants)


@pytest.mark.asyncio
async def test_seller_loses_access_at_the_sale(tmp_path: Path) -> None:
    """Attack: a seller keeps reading the pack after selling it. Its grant ends at the sale."""
    access = await _open(tmp_path)
    try:
        keys = await _lessors(access, "seller", "buyer")
        await access.transfer(pack="pack-1", owner="seller", by="ops", by_operator=True, now_ms=T)
        await access.transfer(
            pack="pack-1", owner="buyer", by="seller", by_operator=False, now_ms=T + 500
        )
        assert await _grants(access, keys["seller"]) == {
            Grant(asset="pack-1", window=Window(from_ms=0, to_ms=T + 500))
        }
        assert await _grants(access, keys["buyer"]) == {Grant(asset="pack-1", window=ALL_TIME)}
        rows = await access.transfers("pack-1")
        assert [(r.owner, r.by, r.at_ms) for r in rows] == [
            ("seller", "ops", T),
            ("buyer", "seller", T + 500),
        ]
    finally:
        await access.close()


@pytest.mark.asyncio
async def test_seller_cannot_sell_twice(tmp_path: Path) -> None:
    """Attack: a buyer resells the pack twice. The second sale is refused: it is not the owner."""
    access = await _open(tmp_path)
    try:
        await _lessors(access, "a", "b", "c")
        await access.transfer(pack="pack-1", owner="a", by="ops", by_operator=True, now_ms=T)
        await access.transfer(pack="pack-1", owner="b", by="a", by_operator=False, now_ms=T + 1)
        with pytest.raises(OwnershipError, match="'a' does not own pack-1"):
            await access.transfer(pack="pack-1", owner="c", by="a", by_operator=False, now_ms=T + 2)
        with pytest.raises(OwnershipError, match="'c' does not own pack-1"):
            await access.transfer(pack="pack-1", owner="c", by="c", by_operator=False, now_ms=T + 2)
        assert [r.owner for r in await access.transfers("pack-1")] == ["a", "b"]
    finally:
        await access.close()


@pytest.mark.asyncio
async def test_transfer_to_oneself_refused(tmp_path: Path) -> None:
    """Attack: an owner transfers a pack to itself (to reset its history's end). Refused."""
    access = await _open(tmp_path)
    try:
        await _lessors(access, "a")
        await access.transfer(pack="pack-1", owner="a", by="ops", by_operator=True, now_ms=T)
        with pytest.raises(AccessError, match="'a' owns pack-1 already"):
            await access.transfer(pack="pack-1", owner="a", by="a", by_operator=False, now_ms=T + 1)
        with pytest.raises(AccessError, match="'a' owns pack-1 already"):
            await access.transfer(pack="pack-1", owner="a", by="ops", by_operator=True, now_ms=T)
    finally:
        await access.close()


@pytest.mark.asyncio
async def test_lessor_cannot_sell_a_pack_never_sold(tmp_path: Path) -> None:
    """Attack: a lessor of a pack sells it. Only an operator sells a pack nobody owns yet."""
    access = await _open(tmp_path)
    try:
        await _lessors(access, "renter", "fence")
        await access.add_lease(asset="pack-1", lessor="renter", window=Window(from_ms=0, to_ms=T))
        with pytest.raises(OwnershipError, match="'renter' does not own pack-1"):
            await access.transfer(
                pack="pack-1", owner="fence", by="renter", by_operator=False, now_ms=T
            )
    finally:
        await access.close()


@pytest.mark.asyncio
async def test_revoked_key_refused(tmp_path: Path) -> None:
    """Attack: a revoked key keeps calling. It no longer authenticates; it is listed revoked."""
    access = await _open(tmp_path)
    try:
        keys = await _lessors(access, "gone")
        await access.revoke_key("gone", now_ms=T + 7)
        assert await access.authenticate(keys["gone"]) is None
        (info,) = await access.keys()
        assert (info.name, info.revoked_at_ms) == ("gone", T + 7)
        with pytest.raises(AccessError, match="no live API key named 'gone'"):
            await access.revoke_key("gone", now_ms=T + 8)
        with pytest.raises(AccessError, match="no API key named 'gone'"):
            await access.add_lease(asset="bus-1", lessor="gone", window=ALL_TIME)
    finally:
        await access.close()


@pytest.mark.asyncio
async def test_ended_lease_stops_at_its_end(tmp_path: Path) -> None:
    """Attack: a lessor reads after its lease was ended. The grant stops at the end time; a
    lease ended before it started grants nothing."""
    access = await _open(tmp_path)
    try:
        keys = await _lessors(access, "bank")
        running = await access.add_lease(
            asset="bus-1", lessor="bank", window=Window(from_ms=T, to_ms=T + 1000)
        )
        future = await access.add_lease(
            asset="bus-2", lessor="bank", window=Window(from_ms=T + 5000, to_ms=T + 9000)
        )
        ended = await access.end_lease(running.lease_id, now_ms=T + 100)
        assert ended.ended_at_ms == T + 100
        await access.end_lease(future.lease_id, now_ms=T + 100)
        assert await _grants(access, keys["bank"]) == {
            Grant(asset="bus-1", window=Window(from_ms=T, to_ms=T + 100))
        }
        with pytest.raises(AccessError, match=f"no running lease {running.lease_id}"):
            await access.end_lease(running.lease_id, now_ms=T + 200)
        with pytest.raises(AccessError, match="no running lease 99"):
            await access.end_lease(99, now_ms=T + 200)
    finally:
        await access.close()


def test_ownership_grants_follow_the_sales() -> None:
    """Each purchase opens the whole history; the owner's next sale closes it at that time."""
    sales = [
        Sale(pack="p", owner="a", at_ms=10),
        Sale(pack="q", owner="a", at_ms=15),
        Sale(pack="p", owner="b", at_ms=20),
        Sale(pack="p", owner="a", at_ms=30),
    ]
    assert ownership_grants("a", sales) == (
        Grant(asset="p", window=Window(from_ms=0, to_ms=20)),
        Grant(asset="q", window=ALL_TIME),
        Grant(asset="p", window=ALL_TIME),
    )
    assert ownership_grants("b", sales) == (Grant(asset="p", window=Window(from_ms=0, to_ms=30)),)
    assert current_owner(sales[:3]) == "b"
    assert current_owner([]) is None


@given(st.lists(windows, max_size=6), st.integers(0, 2 * 10**6))
def test_merged_windows_cover_the_same_times_once(parts: list[Window], t_ms: int) -> None:
    """Merged windows are disjoint, ordered, and cover exactly the times the parts cover."""
    union = merged(parts)
    assert all(a.to_ms < b.from_ms for a, b in itertools.pairwise(union))
    assert any(w.covers(t_ms) for w in union) == any(w.covers(t_ms) for w in parts)


@pytest.mark.asyncio
async def test_reissued_key_replaces_the_old_secret(tmp_path: Path) -> None:
    """A reissued key keeps its name, role and leases; the old secret is refused."""
    access = await _open(tmp_path)
    try:
        old = await access.create_key(name="demo", role=Role.LESSOR, fleet=None, now_ms=T)
        await access.add_lease(asset="bus-1", lessor="demo", window=ALL_TIME)
        new = await access.reissue_key("demo")
        assert new.secret != old.secret
        assert await access.authenticate(old.secret) is None
        principal = await access.authenticate(new.secret)
        assert principal is not None
        assert principal.grants == (Grant(asset="bus-1", window=ALL_TIME),)
        await access.revoke_key("demo", now_ms=T)
        with pytest.raises(AccessError, match="no live API key named 'demo'"):
            await access.reissue_key("demo")
    finally:
        await access.close()
