"""API keys (hashed), leases and pack transfers, stored in the API's own database.

The tables and their SQL are :mod:`gateway.store.access_tables`. Keys are 32 random bytes
shown once (``vpk_`` + URL-safe base64); only their SHA-256 is stored. A high-entropy key
needs no slow password hash: an attacker holding the database still has to invert SHA-256
on a 256-bit secret. The lookup goes by the hash and the found hash is compared again in
constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Self

from gateway.store.access_tables import (
    AccessTableError,
    AccessTables,
    AckRow,
    KeyInfo,
    TransferRow,
)
from gateway.store.records import AlarmRecord
from ledger.errors import VoltproofError

from .access import (
    Grant,
    Principal,
    Role,
    Sale,
    Window,
    current_owner,
    lease_grant,
    ownership_grants,
)

KEY_PREFIX: Final = "vpk_"
MAX_NAME_LEN: Final = 64


class AccessError(VoltproofError):
    """An access-control request is invalid (unknown role, duplicate name, bad period)."""


class OwnershipError(AccessError):
    """A transfer by someone who does not own the pack."""


def _sale(row: TransferRow) -> Sale:
    return Sale(pack=row.pack, owner=row.owner, at_ms=row.at_ms)


@dataclass(frozen=True, slots=True, kw_only=True)
class CreatedKey:
    """A new API key: the secret is shown once and never stored."""

    name: str
    role: Role
    fleet: str | None
    secret: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Lease:
    """An asset leased to a lessor over a period."""

    lease_id: int
    asset: str
    lessor: str
    window: Window
    ended_at_ms: int | None = None


def hash_key(secret: str) -> bytes:
    """The stored form of an API key."""
    return hashlib.sha256(secret.encode("utf-8")).digest()


def _new_secret() -> str:
    return KEY_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def _check_name(what: str, value: str) -> None:
    if not value or len(value) > MAX_NAME_LEN or not value.isprintable() or value != value.strip():
        raise AccessError(f"{what} must be 1-{MAX_NAME_LEN} printable characters, got {value!r}")


class AccessDb:
    """Keys, leases and transfers (:class:`gateway.store.access_tables.AccessTables`)."""

    def __init__(self, tables: AccessTables) -> None:
        self._tables = tables

    @classmethod
    async def open(cls, path: Path) -> Self:
        """Open (creating and migrating if needed) the database at ``path``."""
        try:
            return cls(await AccessTables.open(path))
        except AccessTableError as exc:
            raise AccessError(str(exc)) from exc

    async def close(self) -> None:
        """Close the connection."""
        await self._tables.close()

    async def create_key(
        self, *, name: str, role: Role, fleet: str | None, now_ms: int
    ) -> CreatedKey:
        """Create a key; the returned secret is the only copy."""
        _check_name("key name", name)
        if fleet is not None:
            _check_name("fleet", fleet)
        if fleet is not None and role is not Role.OPERATOR:
            raise AccessError(f"--fleet applies to operator keys, not {role.value} keys")
        secret = _new_secret()
        stored = await self._tables.insert_key(
            name=name, role=role.value, fleet=fleet, key_hash=hash_key(secret), now_ms=now_ms
        )
        if not stored:
            raise AccessError(f"a key named {name!r} exists already")
        return CreatedKey(name=name, role=role, fleet=fleet, secret=secret)

    async def reissue_key(self, name: str) -> CreatedKey:
        """A new secret for the live key ``name`` (same role, fleet and grants); the old
        secret stops working. The returned secret is the only copy."""
        info = {k.name: k for k in await self._tables.keys() if k.revoked_at_ms is None}.get(name)
        secret = _new_secret()
        if info is None or not await self._tables.replace_key_hash(name, hash_key(secret)):
            raise AccessError(f"no live API key named {name!r}")
        return CreatedKey(name=name, role=Role(info.role), fleet=info.fleet, secret=secret)

    async def add_lease(self, *, asset: str, lessor: str, window: Window) -> Lease:
        """Lease ``asset`` to the lessor key named ``lessor`` over ``window``."""
        _check_name("asset", asset)
        await self._require_lessor(lessor)
        lease_id = await self._tables.insert_lease(
            asset=asset, lessor=lessor, from_ms=window.from_ms, to_ms=window.to_ms
        )
        return Lease(lease_id=lease_id, asset=asset, lessor=lessor, window=window)

    async def transfer(
        self, *, pack: str, owner: str, by: str, by_operator: bool, now_ms: int
    ) -> None:
        """Give the lessor key ``owner`` the pack's whole history (a second-life sale).

        Only an operator (``by_operator``) or the pack's current owner (the key named ``by``)
        may sell it, never to its current owner; the seller's access ends now.
        """
        _check_name("pack", pack)
        await self._require_lessor(owner)
        sales = [_sale(row) for row in await self._tables.transfers(pack)]
        holder = current_owner(sales)
        if not by_operator and holder != by:
            raise OwnershipError(f"{by!r} does not own {pack}; only its owner may sell it")
        if owner == holder:
            raise AccessError(f"{owner!r} owns {pack} already; a transfer to oneself is refused")
        if sales and now_ms < sales[-1].at_ms:
            raise AccessError(f"{pack} was sold at {sales[-1].at_ms}, after now ({now_ms})")
        await self._tables.insert_transfer(pack=pack, owner=owner, by=by, at_ms=now_ms)

    async def transfers(self, pack: str | None = None) -> list[TransferRow]:
        """The recorded transfers (of ``pack``, or all), oldest first, with who made them."""
        return await self._tables.transfers(pack)

    async def keys(self) -> list[KeyInfo]:
        """Every key, live and revoked (never a secret nor its hash)."""
        return await self._tables.keys()

    async def revoke_key(self, name: str, *, now_ms: int) -> None:
        """Revoke the key ``name``: it authenticates no more, at once and for good."""
        if not await self._tables.revoke_key(name, now_ms=now_ms):
            raise AccessError(f"no live API key named {name!r}")

    async def end_lease(self, lease_id: int, *, now_ms: int) -> Lease:
        """End the running lease ``lease_id`` now: its lessor reads nothing after ``now_ms``."""
        if not await self._tables.end_lease(lease_id, now_ms=now_ms):
            raise AccessError(f"no running lease {lease_id}")
        (lease,) = [x for x in await self.leases() if x.lease_id == lease_id]
        return lease

    async def _require_lessor(self, name: str) -> None:
        role = await self._tables.key_role(name)
        if role is None:
            raise AccessError(f"no API key named {name!r}; create it first (api keys create)")
        if role != Role.LESSOR.value:
            raise AccessError(f"key {name!r} is a {role} key; leases go to lessor keys")

    async def authenticate(self, secret: str) -> Principal | None:
        """The principal holding ``secret``, or ``None`` for an unknown or revoked key."""
        wanted = hash_key(secret)
        row = await self._tables.key_by_hash(wanted)
        if row is None or not hmac.compare_digest(row.key_hash, wanted):
            return None
        role = Role(row.role)
        grants: list[Grant] = []
        if role is Role.LESSOR:
            leased = [
                lease_grant(asset=g.asset, from_ms=g.from_ms, to_ms=g.to_ms,
                            ended_at_ms=g.ended_at_ms)
                for g in await self._tables.leases(row.name)
            ]  # fmt: skip
            sales = [_sale(t) for t in await self._tables.transfers_touching(row.name)]
            grants = [g for g in leased if g is not None]
            grants.extend(ownership_grants(row.name, sales))
        return Principal(name=row.name, role=role, fleet=row.fleet, grants=tuple(grants))

    async def cursor_key(self) -> bytes:
        """The key that signs page cursors (made once per database)."""
        return await self._tables.secret("cursor")

    async def acknowledge(self, alarm: AlarmRecord, *, by: str, now_ms: int, note: str) -> AckRow:
        """Record that the operator key ``by`` acknowledged ``alarm``; idempotent: an alarm
        acknowledged already keeps its first acknowledgement, which is returned."""
        if not note.replace("\n", " ").isprintable():
            raise AccessError("an acknowledgement note must be printable text")
        return await self._tables.insert_ack(
            alarm_id=alarm.alarm_id, device=alarm.device_id, t_ms=alarm.t_ms, level=alarm.level,
            by=by, at_ms=now_ms, note=note,
        )  # fmt: skip

    async def acks_of(self, alarms: Sequence[AlarmRecord]) -> dict[int, AckRow]:
        """The acknowledgements of ``alarms``, by alarm id: only those naming the same alarm
        (device, time and level), so a store rebuilt with other ids inherits none."""
        found = await self._tables.acks_of([a.alarm_id for a in alarms])
        return {
            a.alarm_id: ack
            for a in alarms
            if (ack := found.get(a.alarm_id)) is not None
            and (ack.device, ack.t_ms, ack.level) == (a.device_id, a.t_ms, a.level)
        }

    async def acks(
        self, *, devices: Sequence[str] | None, before_id: int | None, limit: int
    ) -> list[AckRow]:
        """Acknowledgements (of ``devices``, or all), newest first, below ``before_id``."""
        return await self._tables.acks(devices=devices, before_id=before_id, limit=limit)

    async def leases(self) -> list[Lease]:
        """Every lease, oldest first."""
        return [
            Lease(lease_id=r.lease_id, asset=r.asset, lessor=r.lessor,
                  window=Window(from_ms=r.from_ms, to_ms=r.to_ms), ended_at_ms=r.ended_at_ms)
            for r in await self._tables.leases()
        ]  # fmt: skip
