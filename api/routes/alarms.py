"""Alarms by level: telemetry alarm levels and gateway findings (forks)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ..access import FOREVER, Window
from ..deps import ReadsDep, TelemetryUser, visible_device
from ..schemas import AlarmPublic, AlarmsPublic

router = APIRouter(prefix="/api/alarms", tags=["alarms"])


@router.get("", response_model=AlarmsPublic)
async def list_alarms(
    *,
    reads: ReadsDep,
    user: TelemetryUser,
    asset: str | None = None,
    min_level: Annotated[int, Query(ge=0, le=4)] = 1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AlarmsPublic:
    """Newest alarms of level >= ``min_level`` over the assets (and periods) the caller sees."""
    if asset is not None:
        devices = [await visible_device(reads, user, asset)]
    else:
        devices = [d for d in await reads.devices() if user.windows(d.device_id, d.fleet)]
    found: list[AlarmPublic] = []
    for device in devices:
        for window in user.windows(device.device_id, device.fleet):
            found += await _alarms(reads, device.device_id, window, min_level, limit)
    found.sort(key=lambda a: (-a.t_ms, a.device))
    found = found[:limit]
    return AlarmsPublic(data=found, count=len(found))


async def _alarms(
    reads: ReadsDep, device: str, window: Window, min_level: int, limit: int
) -> list[AlarmPublic]:
    rows = await reads.rows(
        "SELECT device, t_ms, level, flags, source, detail, leaf_index FROM alarms "
        "WHERE device = ? AND t_ms >= ? AND t_ms < ? AND level >= ? ORDER BY t_ms DESC LIMIT ?",
        (device, window.from_ms, min(window.to_ms, FOREVER), min_level, limit),
    )
    return [
        AlarmPublic(device=r[0], t_ms=r[1], level=r[2], flags=r[3], source=r[4], detail=r[5],
                    leaf_index=r[6])
        for r in rows
    ]  # fmt: skip
