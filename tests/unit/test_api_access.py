"""Access control: windows, principals, and the API's own key/lease/transfer database."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.access import ALL_TIME, FOREVER, Grant, Principal, Role, Window, visible_assets
from api.accessdb import AccessDb, AccessError, hash_key
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
        await access.transfer(pack="pack-1", owner="bank", now_ms=T)
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
            await access.transfer(pack="pack-1", owner="op", now_ms=T)
        with pytest.raises(AccessError, match="asset must be"):
            await access.add_lease(asset="", lessor="op", window=window)
    finally:
        await access.close()


@pytest.mark.asyncio
async def test_newer_schema_refused(tmp_path: Path) -> None:
    """A database from a newer voltproof is refused, not silently used."""
    with sqlite3.connect(tmp_path / "api.db") as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(AccessError, match="schema version 2; this voltproof knows 1"):
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
    """A database path in a missing directory gives an AccessError."""
    with pytest.raises(AccessError, match="cannot open the access database"):
        asyncio.run(AccessDb.open(tmp_path / "missing" / "api.db"))
