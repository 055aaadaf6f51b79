"""Operator views: quarantined input and the device registry."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Query

from ledger.protocol import fleet_prefix

from ..access import Role
from ..deps import CurrentUser, DashboardDep, OperatorUser, ReaderDep, visible_device
from ..schemas import QuarantinePublic, QuarantinesPublic, RegistryEntryPublic, RegistryPublic

quarantine_router = APIRouter(prefix="/api/quarantine", tags=["quarantine"])
registry_router = APIRouter(prefix="/api/registry", tags=["registry"])


@quarantine_router.get("", response_model=QuarantinesPublic)
async def list_quarantine(
    *,
    reader: ReaderDep,
    user: OperatorUser,
    reason: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> QuarantinesPublic:
    """Newest rejected inputs (operator keys only; a fleet key sees its fleet's topics)."""
    rows = await reader.quarantine(reason=reason, limit=limit * 4 if user.fleet else limit)
    prefix = None if user.fleet is None else fleet_prefix(user.fleet)
    data = [
        QuarantinePublic(id=r.row_id, reason=r.reason, detail=r.detail, topic=r.topic,
                         device=r.device_id, raw_b64=base64.b64encode(r.raw).decode(),
                         raw_size=r.raw_size, received_at_ms=r.received_at_ms)
        for r in rows
        if prefix is None or r.topic.startswith(prefix)
    ][:limit]  # fmt: skip
    totals = (
        {count.reason: count.total for count in await reader.quarantine_counts()}
        if user.fleet is None
        else {}
    )
    return QuarantinesPublic(data=data, count=len(data), totals=totals)


@registry_router.get("", response_model=RegistryPublic)
async def list_registry(
    *,
    reader: ReaderDep,
    dashboard: DashboardDep,
    user: CurrentUser,
    asset: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> RegistryPublic:
    """Registry leaves (enrol, rotate, revoke) of the devices the caller sees; auditors see all."""
    if asset is not None and user.role is not Role.AUDITOR:
        await visible_device(dashboard, user, asset)
    rows = await reader.registry_events(device_id=asset, limit=limit)
    data = [
        RegistryEntryPublic(leaf_index=r.leaf_index, action=r.action, device=r.device_id,
                            recorded_at_ms=r.recorded_at_ms, message_hash=r.message_hash.hex())
        for r in rows
        if user.role is Role.AUDITOR or user.windows(r.device_id, r.fleet or "")
    ]  # fmt: skip
    return RegistryPublic(data=data, count=len(data))
