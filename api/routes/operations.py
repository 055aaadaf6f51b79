"""Operator views: quarantined input and the device registry."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Query

from ledger.protocol import fleet_prefix

from ..access import Role
from ..deps import (
    CurrentUser,
    CursorQuery,
    CursorsDep,
    DashboardDep,
    OperatorUser,
    ReaderDep,
    visible_device,
)
from ..schemas import QuarantinePublic, QuarantinesPublic, RegistryEntryPublic, RegistryPublic

quarantine_router = APIRouter(prefix="/api/quarantine", tags=["quarantine"])
registry_router = APIRouter(prefix="/api/registry", tags=["registry"])


@quarantine_router.get("", response_model=QuarantinesPublic)
async def list_quarantine(
    *,
    reader: ReaderDep,
    cursors: CursorsDep,
    user: OperatorUser,
    reason: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: CursorQuery = None,
) -> QuarantinesPublic:
    """Newest rejected inputs, one keyset page at a time (operator keys only; a fleet key
    sees its fleet's topics)."""
    scope = cursors.scope("quarantine", user.name, reason=reason)
    position = cursors.decode(scope, cursor, (int,))
    prefix = None if user.fleet is None else fleet_prefix(user.fleet)
    rows = await reader.quarantine(
        reason=reason, limit=limit + 1, topic_prefix=prefix,
        before_id=None if position is None else int(position[0]),
    )  # fmt: skip
    more = len(rows) > limit
    data = [
        QuarantinePublic(id=r.row_id, reason=r.reason, detail=r.detail, topic=r.topic,
                         device=r.device_id, raw_b64=base64.b64encode(r.raw).decode(),
                         raw_size=r.raw_size, received_at_ms=r.received_at_ms)
        for r in rows[:limit]
    ]  # fmt: skip
    totals = (
        {count.reason: count.total for count in await reader.quarantine_counts()}
        if user.fleet is None
        else {}
    )
    next_cursor = cursors.encode(scope, (data[-1].id,)) if more else None
    return QuarantinesPublic(data=data, count=len(data), totals=totals, next=next_cursor)


@registry_router.get("", response_model=RegistryPublic)
async def list_registry(
    *,
    reader: ReaderDep,
    dashboard: DashboardDep,
    cursors: CursorsDep,
    user: CurrentUser,
    asset: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    cursor: CursorQuery = None,
) -> RegistryPublic:
    """Registry leaves (enrol, rotate, revoke, replace) of the devices the caller sees, in log
    order, one keyset page at a time; auditors see all."""
    if asset is not None and user.role is not Role.AUDITOR:
        await visible_device(dashboard, user, asset)
    scope = cursors.scope("registry", user.name, asset=asset)
    position = cursors.decode(scope, cursor, (int, str))
    after = None if position is None else (int(position[0]), str(position[1]))
    data: list[RegistryEntryPublic] = []
    while len(data) <= limit:
        rows = await reader.registry_events(device_id=asset, limit=limit + 1, after=after)
        for r in rows:
            if user.role is Role.AUDITOR or user.windows(r.device_id, r.fleet or ""):
                data.append(RegistryEntryPublic(
                    leaf_index=r.leaf_index, action=r.action, device=r.device_id,
                    recorded_at_ms=r.recorded_at_ms, message_hash=r.message_hash.hex(),
                ))  # fmt: skip
                if len(data) > limit:
                    break
        if len(rows) <= limit:
            break
        after = (rows[-1].leaf_index, rows[-1].device_id)
    more = len(data) > limit
    data = data[:limit]
    next_cursor = cursors.encode(scope, (data[-1].leaf_index, data[-1].device)) if more else None
    return RegistryPublic(data=data, count=len(data), next=next_cursor)
