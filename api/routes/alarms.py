"""Alarms by level: telemetry alarm levels and gateway findings (forks)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from gateway.store import StoreReader

from ..access import FOREVER, Window
from ..deps import DashboardDep, ReaderDep, TelemetryUser, visible_device
from ..schemas import AlarmPublic, AlarmsPublic

router = APIRouter(prefix="/api/alarms", tags=["alarms"])


@router.get("", response_model=AlarmsPublic)
async def list_alarms(
    *,
    reader: ReaderDep,
    dashboard: DashboardDep,
    user: TelemetryUser,
    asset: str | None = None,
    min_level: Annotated[int, Query(ge=0, le=4)] = 1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AlarmsPublic:
    """Newest alarms of level >= ``min_level`` over the assets (and periods) the caller sees."""
    if asset is not None:
        devices = [await visible_device(dashboard, user, asset)]
    else:
        devices = [d for d in await dashboard.devices() if user.windows(d.device_id, d.fleet)]
    found: list[AlarmPublic] = []
    for device in devices:
        for window in user.windows(device.device_id, device.fleet):
            found += await _alarms(reader, device.device_id, window, min_level, limit)
    found.sort(key=lambda a: (-a.t_ms, a.device))
    found = found[:limit]
    return AlarmsPublic(data=found, count=len(found))


async def _alarms(
    reader: StoreReader, device: str, window: Window, min_level: int, limit: int
) -> list[AlarmPublic]:
    rows = await reader.alarms(
        device_id=device, t_from=window.from_ms, t_to=min(window.to_ms, FOREVER),
        min_level=min_level, limit=limit,
    )  # fmt: skip
    return [
        AlarmPublic(device=r.device_id, t_ms=r.t_ms, level=r.level, flags=r.flags,
                    source=r.source, detail=r.detail, leaf_index=r.leaf_index)
        for r in rows
    ]  # fmt: skip
