"""What the web dashboard reads in one request per view: fleet, map trails, chart series, events.

The other routes stay resource-shaped for API clients; these answer the page's questions
without a request per asset: the fleet view is one call (status, SoC, SoH, position and the
bus <-> pack relation from each device's newest signed message), the map's trails a second,
each chart one call. ``/events`` is a server-sent event stream: the page refreshes when the
log grows instead of polling.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Final

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from ledger.message import MessageError, decode_message
from ledger.telemetry import FIELDS

from ..deps import (
    CurrentUser,
    CursorQuery,
    CursorsDep,
    DashboardDep,
    ReaderDep,
    StateDep,
    TelemetryUser,
    visible_device,
    window_of,
)
from ..series import DERIVED, bucket_size, bucketed_summaries
from ..times import TimeMs
from .assets import KindQuery, described, sample_kind

router = APIRouter(prefix="/api/dashboard", tags=["dashboard"])

EVENT_CHECK_S: Final = 2.0
"""How often the event stream looks at the log head (server side; the page never polls)."""
HEARTBEAT_S: Final = 15.0
"""A comment line this often keeps proxies from closing an idle stream."""
UNITS: Final = {kind: {spec.attr: spec.unit for spec in specs} for kind, specs in FIELDS.items()}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class DashboardConfigPublic(_Model):
    """Settings the page needs."""

    tile_url: str | None = Field(description="Leaflet tile URL template; none: plain background")
    tile_attribution: str
    online_window_s: int


class FleetAssetPublic(_Model):
    """One row of the fleet view."""

    id: str
    kind: str
    fleet: str
    registry_status: str
    online: bool
    last_seen_ms: int | None
    soc: float | None = Field(
        description="state of charge (0..1) of a pack, or of a GB/T 32960 terminal bus's pack"
    )
    soh: float | None = Field(description="capacity state of health (packs)")
    alarm_level: int | None = Field(
        description="alarm level of the newest sample (a pack's, a GB/T 32960 terminal's pack)"
    )
    lat: float | None
    lon: float | None
    speed_mps: float | None
    packs: list[str] = Field(description="packs in this bus (its newest message)")
    host: str | None = Field(description="the bus this pack is in (its newest message)")


class FleetPublic(_Model):
    """The fleet as the caller sees it, one keyset page (by asset id) at a time."""

    data: list[FleetAssetPublic]
    count: int
    now_ms: int
    next: str | None = Field(
        default=None, description="cursor of the next page (pass as ?cursor=); none: the last"
    )


class TrailPublic(_Model):
    """A bus's recent route: [lat, lon] points, oldest first."""

    id: str
    points: list[tuple[float, float]]


class TrailsPublic(_Model):
    """Recent routes of the buses the caller sees, one keyset page (by bus id) at a time."""

    data: list[TrailPublic]
    count: int
    next: str | None = Field(
        default=None, description="cursor of the next page (pass as ?cursor=); none: the last"
    )


class ColumnPublic(_Model):
    """Per bucket mean, min and max; ``null`` where there is no data (a gap)."""

    unit: str
    avg: list[float | None]
    min: list[float | None]
    max: list[float | None]


class SeriesPublic(_Model):
    """Chart data: columns on one time axis spanning the data in the period."""

    asset: str
    kind: str
    from_ms: int
    to_ms: int
    bucket_ms: int
    t_ms: list[int]
    columns: dict[str, ColumnPublic]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@router.get("/config", response_model=DashboardConfigPublic)
async def config(*, state: StateDep, user: CurrentUser) -> DashboardConfigPublic:
    """Tile source and online window."""
    del user  # any valid key
    api = state.deployment.api
    return DashboardConfigPublic(tile_url=api.tile_url, tile_attribution=api.tile_attribution,
                                 online_window_s=api.online_window_s)  # fmt: skip


@router.get("/fleet", response_model=FleetPublic)
async def fleet(
    *,
    state: StateDep,
    dashboard: DashboardDep,
    cursors: CursorsDep,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    cursor: CursorQuery = None,
) -> FleetPublic:
    """The assets the caller sees with status, SoC, SoH, position, alarm level and relation,
    by id, one keyset page at a time (``next`` continues)."""
    scope = cursors.scope("fleet", user.name)
    position = cursors.decode(scope, cursor, (str,))
    online_ms = state.deployment.api.online_window_s * 1000
    now = _now_ms()
    devices, more = await dashboard.visible_devices(
        user, after=None if position is None else str(position[0]), limit=limit
    )
    newest = await dashboard.newest_of(user, devices, samples=user.reads_telemetry)
    rows: list[FleetAssetPublic] = []
    for device in devices:
        state_of = newest[device.device_id]
        asset = described(device, state_of, online_window_ms=online_ms, now_ms=now)
        latest = asset.latest
        relation: dict[str, Any] = {}
        if user.reads_telemetry and state_of.cose is not None:
            relation = _relation(state_of.cose)
        rows.append(
            FleetAssetPublic(
                id=asset.id, kind=asset.kind, fleet=asset.fleet,
                registry_status=asset.registry_status, online=asset.online,
                last_seen_ms=asset.last_seen_ms, soc=_number(latest.get("soc")),
                soh=_number(latest.get("soh_capacity")), alarm_level=asset.alarm_level,
                lat=_number(latest.get("lat_deg")), lon=_number(latest.get("lon_deg")),
                speed_mps=_number(latest.get("speed_mps")),
                packs=[p for p in relation.get("pack", []) if isinstance(p, str)],
                host=relation["host"] if isinstance(relation.get("host"), str) else None,
            )
        )  # fmt: skip
    next_cursor = cursors.encode(scope, (devices[-1].device_id,)) if more else None
    return FleetPublic(data=rows, count=len(rows), now_ms=now, next=next_cursor)


def _relation(cose: bytes) -> dict[str, Any]:
    """``host`` and ``pack`` of a device's newest message (empty if it names neither)."""
    try:
        payload = decode_message(cose).payload
    except MessageError:
        return {}
    packs = payload.get("pack")
    return {"host": payload.get("host"), "pack": packs if isinstance(packs, list) else []}


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


@router.get("/trails", response_model=TrailsPublic)
async def trails(
    *,
    dashboard: DashboardDep,
    reader: ReaderDep,
    cursors: CursorsDep,
    user: TelemetryUser,
    minutes: Annotated[int, Query(ge=1, le=24 * 60)] = 30,
    points: Annotated[int, Query(ge=2, le=500)] = 60,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    cursor: CursorQuery = None,
) -> TrailsPublic:
    """Each visible bus's route over the last ``minutes`` of its own data, thinned to
    ``points``, by bus id, one keyset page of buses at a time."""
    scope = cursors.scope("trails", user.name, minutes=minutes, points=points)
    position = cursors.decode(scope, cursor, (str,))
    buses, more = await dashboard.visible_devices(
        user, after=None if position is None else str(position[0]), limit=limit, kind="bus"
    )
    data: list[TrailPublic] = []
    for device in buses:
        window = user.default_window(device.device_id, device.fleet)
        if window is None:
            continue
        bounds = await dashboard.sample_bounds("bus", device.device_id, window)
        if bounds is None:
            continue
        start = max(bounds.from_ms, bounds.to_ms - minutes * 60_000)
        found = await reader.sample_window(
            "bus", device.device_id, t_from=start, t_to=bounds.to_ms,
            fields=("lat_deg", "lon_deg"),
        )  # fmt: skip
        lat, lon = found.values["lat_deg"], found.values["lon_deg"]
        step = max(1, len(lat) // points)
        trail = list(zip(lat[::step].tolist(), lon[::step].tolist(), strict=True))
        if len(lat) and (len(lat) - 1) % step:
            trail.append((float(lat[-1]), float(lon[-1])))
        data.append(TrailPublic(id=device.device_id, points=trail))
    next_cursor = cursors.encode(scope, (buses[-1].device_id,)) if more else None
    return TrailsPublic(data=data, count=len(data), next=next_cursor)


@router.get("/assets/{asset}/series", response_model=SeriesPublic)
async def series(
    *,
    state: StateDep,
    dashboard: DashboardDep,
    reader: ReaderDep,
    user: TelemetryUser,
    asset: str,
    fields: Annotated[str, Query(description="comma-separated columns, e.g. soc,cell_spread_v")],
    kind: KindQuery = None,
    from_ms: Annotated[TimeMs, Query(alias="from")] = None,
    to_ms: Annotated[TimeMs, Query(alias="to")] = None,
    points: Annotated[int, Query(ge=10, le=100_000)] = 600,
) -> SeriesPublic:
    """Columns of one kind of samples bucketed over the data inside the period (not the whole
    lease); gaps are nulls.

    ``cell_spread_v`` is max - min cell voltage of the same sample. A GB/T 32960 terminal's
    bus has bus samples and (``kind=pack``) pack samples: the asset's ``columns`` lists both.
    """
    device = await visible_device(dashboard, user, asset)
    names = [name.strip() for name in fields.split(",") if name.strip()]
    columns = await dashboard.columns_of(user, device)
    kind, _stored = sample_kind(device, columns, kind)
    if kind != "pack" and any(n in DERIVED for n in names):
        hint = "; its pack samples: kind=pack" if "pack" in columns else ""
        raise HTTPException(
            status_code=400, detail=f"{asset!r} is a bus; cell spread is for packs{hint}"
        )
    unknown = sorted(n for n in names if n not in columns[kind])
    if unknown or not names:
        detail = f"unknown {kind} column(s) {unknown}; known: {sorted(columns[kind])}"
        raise HTTPException(status_code=400, detail=detail)
    window = window_of(user, device, from_ms, to_ms)
    data_window = await dashboard.sample_bounds(kind, asset, window)
    if data_window is not None:
        window = data_window
    points = min(points, state.deployment.api.max_points)
    bucket_ms = bucket_size(window.to_ms - window.from_ms, points)
    read = await reader.sample_summaries_in(
        kind, asset, t_from=window.from_ms, t_to=window.to_ms, bucket_ms=bucket_ms, names=names
    )
    result = await asyncio.to_thread(
        bucketed_summaries, read, names, from_ms=window.from_ms, to_ms=window.to_ms,
        bucket_ms=bucket_ms,
    )  # fmt: skip
    units = {**UNITS[kind], "cell_spread_v": "V"}
    return SeriesPublic(
        asset=asset, kind=kind, from_ms=window.from_ms, to_ms=window.to_ms,
        bucket_ms=result.bucket_ms, t_ms=result.t_ms,
        columns={name: ColumnPublic(unit=units[name], avg=c.avg, min=c.min, max=c.max)
                 for name, c in result.columns.items()},
    )  # fmt: skip


# Not in the OpenAPI document: a stream that never ends hangs schema-driven clients and
# fuzzers (schemathesis waits for the body); docs/api.md describes it.
@router.get("/events", response_class=StreamingResponse, include_in_schema=False)
async def events(*, request: Request, reader: ReaderDep, user: CurrentUser) -> StreamingResponse:
    """Server-sent events: ``log`` (size, newest checkpoint and its anchor state) on each change.

    Read it with ``fetch`` (the key goes in a header, which ``EventSource`` cannot send).
    """
    del user  # any valid key; the event carries no asset data

    async def stream() -> AsyncIterator[str]:
        last: tuple[int, int, str] | None = None
        quiet = 0.0
        yield "retry: 5000\n\n"
        while not await request.is_disconnected():
            head = await reader.log_head()
            checkpoint = await reader.latest_checkpoint()
            current = (
                head.size,
                checkpoint.size if checkpoint else 0,
                checkpoint.anchor_state.value if checkpoint else "",
            )
            if current != last:
                last, quiet = current, 0.0
                body = {"log_size": current[0], "checkpoint_size": current[1],
                        "anchor_state": current[2], "now_ms": _now_ms()}  # fmt: skip
                yield f"event: log\ndata: {json.dumps(body)}\n\n"
            elif quiet >= HEARTBEAT_S:
                quiet = 0.0
                yield ": still here\n\n"
            await asyncio.sleep(EVENT_CHECK_S)
            quiet += EVENT_CHECK_S

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )
