"""Alarms by level (telemetry alarm levels and gateway findings such as forks), in keyset
pages, and their acknowledgement by operators.

An acknowledgement is the operator's workflow, not evidence: it is stored in the API's own
database (who, when, an optional note), never in the gateway's log, and it changes no alarm.
Acknowledging is idempotent (the first acknowledgement stays; a repeat answers it), open to
operator keys only, and audit-visible (``GET /api/alarms/acknowledgements``, and each alarm
carries its acknowledgement). Open-alarm counts leave acknowledged alarms out.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Final

from fastapi import APIRouter, HTTPException, Path, Query

from gateway.store import AlarmRecord, StoreReader
from gateway.store.access_tables import AckRow

from ..access import ALL_TIME, FOREVER, Principal, Role, Window
from ..accessdb import AccessError
from ..deps import (
    AccessDep,
    CurrentUser,
    CursorQuery,
    CursorsDep,
    DashboardDep,
    OperatorUser,
    ReaderDep,
    TelemetryUser,
    visible_device,
)
from ..queries import DashboardQueries
from ..schemas import AckIn, AckPublic, AcksPublic, AlarmPublic, AlarmsPublic, OpenAlarmsPublic

router = APIRouter(prefix="/api/alarms", tags=["alarms"])
log = logging.getLogger(__name__)

SCAN: Final = 200
"""Rows read per round when acknowledged (or open) alarms are filtered out of a page."""


class AckState(StrEnum):
    """Which alarms a page lists."""

    ALL = "all"
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"


@dataclass(frozen=True, slots=True, kw_only=True)
class _Source:
    """One store query an alarm page merges: a device, a fleet or all, over a window."""

    device_id: str | None
    fleet: str | None
    window: Window


async def _sources(
    dashboard: DashboardQueries, user: Principal, asset: str | None
) -> list[_Source]:
    """What ``user`` may see, as store queries: one per (asset, window), or one per fleet."""
    if asset is not None:
        device = await visible_device(dashboard, user, asset)
        return [_Source(device_id=asset, fleet=None, window=w)
                for w in user.windows(asset, device.fleet)]  # fmt: skip
    if user.role is Role.OPERATOR:
        return [_Source(device_id=None, fleet=user.fleet, window=ALL_TIME)]
    held = sorted({grant.asset for grant in user.grants})
    found = await dashboard.devices_of(held)
    return [
        _Source(device_id=d.device_id, fleet=None, window=w)
        for d in found
        for w in user.windows(d.device_id, d.fleet)
    ]


async def _newest(
    reader: StoreReader, sources: list[_Source], *, min_level: int, limit: int,
    before: tuple[int, int] | None,
) -> list[AlarmRecord]:  # fmt: skip
    """The ``limit`` newest alarms below ``before`` over every source, by ``(t_ms, id)`` desc.

    Each source is read in the same order, so the first ``limit`` of their merge are the
    first ``limit`` overall (a keyset merge: exact whatever is inserted meanwhile).
    """
    rows: list[AlarmRecord] = []
    for source in sources:
        rows += await reader.alarms(
            device_id=source.device_id, fleet=source.fleet, t_from=source.window.from_ms,
            t_to=min(source.window.to_ms, FOREVER), min_level=min_level, limit=limit,
            before=before,
        )  # fmt: skip
    rows.sort(key=lambda a: (a.t_ms, a.alarm_id), reverse=True)
    return rows[:limit]


def _ack_public(ack: AckRow) -> AckPublic:
    return AckPublic(alarm_id=ack.alarm_id, device=ack.device, t_ms=ack.t_ms, level=ack.level,
                     by=ack.by, at_ms=ack.at_ms, note=ack.note)  # fmt: skip


def _alarm_public(alarm: AlarmRecord, ack: AckRow | None) -> AlarmPublic:
    return AlarmPublic(
        alarm_id=alarm.alarm_id, device=alarm.device_id, t_ms=alarm.t_ms, level=alarm.level,
        flags=alarm.flags, source=alarm.source, detail=alarm.detail,
        leaf_index=alarm.leaf_index, acknowledged=None if ack is None else _ack_public(ack),
    )  # fmt: skip


@router.get("", response_model=AlarmsPublic)
async def list_alarms(
    *,
    reader: ReaderDep,
    dashboard: DashboardDep,
    access: AccessDep,
    cursors: CursorsDep,
    user: TelemetryUser,
    asset: str | None = None,
    min_level: Annotated[int, Query(ge=0, le=4)] = 1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    state: Annotated[AckState, Query(description="all, open or acknowledged alarms")] = (
        AckState.ALL
    ),
    cursor: CursorQuery = None,
) -> AlarmsPublic:
    """Newest alarms of level >= ``min_level`` over the assets (and periods) the caller sees,
    each with its acknowledgement, one keyset page at a time (``next`` continues)."""
    sources = await _sources(dashboard, user, asset)  # 404 for an asset not seen, first
    scope = cursors.scope("alarms", user.name, asset=asset, min_level=min_level, state=state)
    position = cursors.decode(scope, cursor, (int, int))
    before = None if position is None else (int(position[0]), int(position[1]))
    page: list[AlarmPublic] = []
    while len(page) <= limit:
        want = limit + 1 - len(page) if state is AckState.ALL else SCAN
        rows = await _newest(reader, sources, min_level=min_level, limit=want, before=before)
        acks = await access.acks_of(rows)
        for row in rows:
            ack = acks.get(row.alarm_id)
            if state is AckState.ALL or (ack is None) == (state is AckState.OPEN):
                page.append(_alarm_public(row, ack))
                if len(page) > limit:
                    break
        if len(rows) < want:
            break
        before = (rows[-1].t_ms, rows[-1].alarm_id)
    more = len(page) > limit
    page = page[:limit]
    next_cursor = cursors.encode(scope, (page[-1].t_ms, page[-1].alarm_id)) if more else None
    return AlarmsPublic(data=page, count=len(page), next=next_cursor)


@router.get("/open", response_model=OpenAlarmsPublic)
async def open_alarms(
    *, reader: ReaderDep, dashboard: DashboardDep, access: AccessDep, user: TelemetryUser
) -> OpenAlarmsPublic:
    """How many alarms of each level (>= 1) are not acknowledged, over what the caller sees."""
    sources = await _sources(dashboard, user, None)
    levels: dict[int, int] = {}
    for source in sources:
        counts = await reader.alarm_counts(
            device_id=source.device_id, fleet=source.fleet, t_from=source.window.from_ms,
            t_to=min(source.window.to_ms, FOREVER),
        )  # fmt: skip
        for level, count in counts.items():
            levels[level] = levels.get(level, 0) + count
    acknowledged = 0
    for ack in await _visible_acks(dashboard, access, user, sources):
        alarm = await reader.alarm(ack.alarm_id)
        if alarm is None or (alarm.device_id, alarm.t_ms, alarm.level) != (
            ack.device, ack.t_ms, ack.level,
        ):  # fmt: skip
            continue  # names no alarm of this store
        acknowledged += 1
        levels[ack.level] = levels.get(ack.level, 0) - 1
    return OpenAlarmsPublic(levels=levels, open=sum(levels.values()), acknowledged=acknowledged)


async def _visible_acks(
    dashboard: DashboardQueries, access: AccessDep, user: Principal, sources: list[_Source]
) -> list[AckRow]:
    """Every acknowledgement of an alarm inside ``sources``."""
    if user.role is Role.OPERATOR and user.fleet is None:
        return await access.acks(devices=None, before_id=None, limit=2**62)
    if user.role is Role.OPERATOR:
        devices = [d.device_id for d in await dashboard.devices() if d.fleet == user.fleet]
        return await access.acks(devices=devices, before_id=None, limit=2**62)
    devices = sorted({s.device_id for s in sources if s.device_id is not None})
    return [
        ack
        for ack in await access.acks(devices=devices, before_id=None, limit=2**62)
        if any(s.device_id == ack.device and s.window.covers(ack.t_ms) for s in sources)
    ]


@router.post("/{alarm_id}/acknowledgement", response_model=AckPublic)
async def acknowledge(
    *,
    reader: ReaderDep,
    dashboard: DashboardDep,
    access: AccessDep,
    user: OperatorUser,
    alarm_id: Annotated[int, Path(ge=0, le=FOREVER)],
    body: AckIn,
) -> AckPublic:
    """Acknowledge an alarm (operator keys; a fleet key only its fleet's alarms). Idempotent:
    a repeat answers the first acknowledgement and records nothing."""
    alarm = await reader.alarm(alarm_id)
    device = None if alarm is None else await dashboard.device(alarm.device_id)
    if alarm is None or device is None or not user.windows(device.device_id, device.fleet):
        raise HTTPException(status_code=404, detail=f"no alarm {alarm_id}")
    note = body.note
    try:
        ack = await access.acknowledge(alarm, by=user.name, now_ms=time.time_ns() // 1_000_000,
                                       note=note)  # fmt: skip
    except AccessError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc
    log.info("alarm_acknowledged", extra={"alarm_id": alarm_id, "device": alarm.device_id,
                                           "by": ack.by, "at_ms": ack.at_ms})  # fmt: skip
    return _ack_public(ack)


@router.get("/acknowledgements", response_model=AcksPublic)
async def list_acknowledgements(
    *,
    dashboard: DashboardDep,
    access: AccessDep,
    cursors: CursorsDep,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: CursorQuery = None,
) -> AcksPublic:
    """Every acknowledgement, newest first (operators: of their fleet; auditors: all)."""
    if user.role is Role.LESSOR:
        raise HTTPException(status_code=403, detail="this endpoint is for operator, auditor keys")
    scope = cursors.scope("acknowledgements", user.name)
    position = cursors.decode(scope, cursor, (int,))
    devices = None
    if user.role is Role.OPERATOR and user.fleet is not None:
        devices = [d.device_id for d in await dashboard.devices() if d.fleet == user.fleet]
    rows = await access.acks(
        devices=devices, before_id=None if position is None else int(position[0]),
        limit=limit + 1,
    )  # fmt: skip
    more = len(rows) > limit
    rows = rows[:limit]
    return AcksPublic(
        data=[_ack_public(r) for r in rows], count=len(rows),
        next=cursors.encode(scope, (rows[-1].ack_id,)) if more else None,
    )  # fmt: skip
