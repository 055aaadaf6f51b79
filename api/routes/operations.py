"""Operator views: quarantined input and the device registry."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Query

from ledger.protocol import fleet_prefix

from ..access import Role
from ..deps import CurrentUser, OperatorUser, ReadsDep, visible_device
from ..schemas import QuarantinePublic, QuarantinesPublic, RegistryEntryPublic, RegistryPublic

quarantine_router = APIRouter(prefix="/api/quarantine", tags=["quarantine"])
registry_router = APIRouter(prefix="/api/registry", tags=["registry"])


@quarantine_router.get("", response_model=QuarantinesPublic)
async def list_quarantine(
    *,
    reads: ReadsDep,
    user: OperatorUser,
    reason: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> QuarantinesPublic:
    """Newest rejected inputs (operator keys only; a fleet key sees its fleet's topics)."""
    where, params = "", []
    if reason is not None:
        where, params = "WHERE reason = ?", [reason]
    rows = await reads.rows(
        "SELECT id, reason, detail, topic, device, raw, raw_size, received_at_ms "  # noqa: S608 -- constant clause
        f"FROM quarantine {where} ORDER BY id DESC LIMIT ?",
        [*params, limit * 4 if user.fleet else limit],
    )
    prefix = None if user.fleet is None else fleet_prefix(user.fleet)
    data = [
        QuarantinePublic(id=r[0], reason=r[1], detail=r[2], topic=r[3], device=r[4],
                         raw_b64=base64.b64encode(bytes(r[5])).decode(), raw_size=r[6],
                         received_at_ms=r[7])
        for r in rows
        if prefix is None or str(r[3]).startswith(prefix)
    ][:limit]  # fmt: skip
    totals = (
        {
            str(r[0]): int(r[1])
            for r in await reads.rows("SELECT reason, total FROM quarantine_counts")
        }
        if user.fleet is None
        else {}
    )
    return QuarantinesPublic(data=data, count=len(data), totals=totals)


@registry_router.get("", response_model=RegistryPublic)
async def list_registry(
    *,
    reads: ReadsDep,
    user: CurrentUser,
    asset: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> RegistryPublic:
    """Registry leaves (enrol, rotate, revoke) of the devices the caller sees; auditors see all."""
    if asset is not None and user.role is not Role.AUDITOR:
        await visible_device(reads, user, asset)
    where, params = ("WHERE e.device = ?", [asset]) if asset is not None else ("", [])
    rows = await reads.rows(
        "SELECT e.leaf_index, e.action, e.device, e.recorded_at_ms, l.message_hash, d.fleet "  # noqa: S608 -- constant clause
        "FROM registry_events AS e JOIN leaves AS l ON l.leaf_index = e.leaf_index "
        f"LEFT JOIN devices AS d ON d.id = e.device {where} ORDER BY e.leaf_index LIMIT ?",
        [*params, limit],
    )
    data = [
        RegistryEntryPublic(leaf_index=r[0], action=r[1], device=r[2], recorded_at_ms=r[3],
                            message_hash=bytes(r[4]).hex())
        for r in rows
        if user.role is Role.AUDITOR or user.windows(r[2], r[5] or "")
    ]  # fmt: skip
    return RegistryPublic(data=data, count=len(data))
