"""Buses and packs: status, newest values, time series (raw pages or chart buckets)."""

from __future__ import annotations

import math
from typing import Annotated, Final

from fastapi import APIRouter, HTTPException, Query

from gateway.store import DeviceRecord
from ledger.telemetry import Kind

from ..access import FOREVER, Principal, Window
from ..deps import (
    CurrentUser,
    CursorQuery,
    CursorsDep,
    DashboardDep,
    StateDep,
    TelemetryUser,
    visible_device,
    window_of,
)
from ..queries import Columns, DashboardQueries, Newest
from ..schemas import AssetPublic, AssetsPublic, BucketPublic, BucketsPublic, SamplesPublic
from ..series import DERIVED
from ..times import TimeMs

router = APIRouter(prefix="/api/assets", tags=["assets"])

MAX_SPAN: Final = FOREVER
KindQuery = Annotated[
    Kind | None,
    Query(
        description="which samples: the asset's own kind (default), or `pack` for the pack "
        "samples of a GB/T 32960 terminal's bus (the asset's `columns` lists them)"
    ),
]


def sample_kind(
    device: DeviceRecord, columns: Columns, kind: Kind | None
) -> tuple[Kind, list[str]]:
    """The kind of samples asked for (default: the device's own) and the stored columns the
    asset carries of it; 400 when the asset has no samples of that kind."""
    chosen: Kind = device.kind if kind is None else kind
    if chosen not in columns:
        raise HTTPException(
            status_code=400,
            detail=f"{device.device_id!r} has no {chosen} samples; it has {sorted(columns)}",
        )
    return chosen, [name for name in columns[chosen] if name not in DERIVED]


async def describe(
    dashboard: DashboardQueries,
    user: Principal,
    device: DeviceRecord,
    *,
    online_window_ms: int,
    now_ms: int,
) -> AssetPublic:
    """One asset as ``user`` may see it."""
    newest = await dashboard.newest_of(user, [device], samples=user.reads_telemetry)
    return described(device, newest[device.device_id], online_window_ms=online_window_ms,
                     now_ms=now_ms)  # fmt: skip


def described(
    device: DeviceRecord, newest: Newest, *, online_window_ms: int, now_ms: int
) -> AssetPublic:
    """One asset from its newest message and sample (as the caller may see them)."""
    last, latest = newest.last, newest.latest
    online = last is not None and now_ms - last.received_at_ms <= online_window_ms
    level = latest.get("alarm_level")
    columns = {str(kind): list(names) for kind, names in newest.columns(device.kind).items()}
    return AssetPublic(
        id=device.device_id,
        kind=device.kind,
        fleet=device.fleet,
        registry_status=device.status,
        online=online,
        last_seen_ms=None if last is None else last.received_at_ms,
        last_t_ms=None if last is None else last.t_ms,
        last_leaf=None if last is None else last.leaf_index,
        latest=latest,
        columns=columns,
        alarm_level=int(level) if level is not None else None,
        evidence=None if last is None else last.evidence,
    )


def _now_ms() -> int:
    import time

    return time.time_ns() // 1_000_000


@router.get("", response_model=AssetsPublic)
async def list_assets(
    *,
    state: StateDep,
    dashboard: DashboardDep,
    cursors: CursorsDep,
    user: CurrentUser,
    kind: Annotated[Kind | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    cursor: CursorQuery = None,
) -> AssetsPublic:
    """The buses and packs the caller may see, by id, with online status and newest values,
    one keyset page at a time (``next`` continues)."""
    scope = cursors.scope("assets", user.name, kind=kind)
    position = cursors.decode(scope, cursor, (str,))
    online_ms = state.deployment.api.online_window_s * 1000
    now = _now_ms()
    devices, more = await dashboard.visible_devices(
        user, after=None if position is None else str(position[0]), limit=limit, kind=kind
    )
    newest = await dashboard.newest_of(user, devices, samples=user.reads_telemetry)
    data = [
        described(d, newest[d.device_id], online_window_ms=online_ms, now_ms=now) for d in devices
    ]
    next_cursor = cursors.encode(scope, (devices[-1].device_id,)) if more else None
    return AssetsPublic(data=data, count=len(data), next=next_cursor)


@router.get("/{asset}", response_model=AssetPublic)
async def get_asset(
    *, state: StateDep, dashboard: DashboardDep, user: CurrentUser, asset: str
) -> AssetPublic:
    """One asset."""
    device = await visible_device(dashboard, user, asset)
    return await describe(
        dashboard, user, device,
        online_window_ms=state.deployment.api.online_window_s * 1000, now_ms=_now_ms(),
    )  # fmt: skip


@router.get("/{asset}/samples", response_model=SamplesPublic)
async def samples(
    *,
    state: StateDep,
    dashboard: DashboardDep,
    user: TelemetryUser,
    asset: str,
    fields: Annotated[str, Query(description="comma-separated sample fields, e.g. soc,temp_max_c")],
    kind: KindQuery = None,
    from_ms: Annotated[TimeMs, Query(alias="from")] = None,
    to_ms: Annotated[TimeMs, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
) -> SamplesPublic:
    """Raw samples, oldest first, one page at a time (``next_from`` continues)."""
    device = await visible_device(dashboard, user, asset)
    window = window_of(user, device, from_ms, to_ms)
    kind, known = sample_kind(device, await dashboard.columns_of(user, device), kind)
    names = [name.strip() for name in fields.split(",") if name.strip()]
    limit = min(limit, state.deployment.api.max_points)
    try:
        rows = await dashboard.samples(kind, asset, names, window, limit=limit + 1, known=known)
    except ValueError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc
    more = len(rows) > limit
    rows = rows[:limit]
    return SamplesPublic(
        asset=asset,
        fields=names,
        t_ms=[r[0] for r in rows],
        leaf_index=[r[1] for r in rows],
        values={name: [r[2 + i] for r in rows] for i, name in enumerate(names)},
        count=len(rows),
        next_from=rows[-1][0] + 1 if more and rows else None,
    )


@router.get("/{asset}/buckets", response_model=BucketsPublic)
async def buckets(
    *,
    state: StateDep,
    dashboard: DashboardDep,
    user: TelemetryUser,
    asset: str,
    field: Annotated[str, Query(description="one sample field, e.g. soc")],
    kind: KindQuery = None,
    from_ms: Annotated[TimeMs, Query(alias="from")] = None,
    to_ms: Annotated[TimeMs, Query(alias="to")] = None,
    points: Annotated[int, Query(ge=1, le=100_000)] = 500,
) -> BucketsPublic:
    """``field`` downsampled server-side to at most ``points`` buckets (min, max, mean)."""
    device = await visible_device(dashboard, user, asset)
    window = window_of(user, device, from_ms, to_ms)
    kind, known = sample_kind(device, await dashboard.columns_of(user, device), kind)
    window = await _data_window(dashboard, kind, device, window)
    points = min(points, state.deployment.api.max_points)
    bucket_ms = max(1000, math.ceil((window.to_ms - window.from_ms) / points))
    try:
        data = await dashboard.buckets(kind, asset, field, window, bucket_ms=bucket_ms,
                                       known=known)  # fmt: skip
    except ValueError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc
    return BucketsPublic(
        asset=asset, field=field, bucket_ms=bucket_ms,
        data=[BucketPublic(t_ms=b.t_ms, count=b.count, min=b.min, max=b.max, avg=b.avg)
              for b in data],
        count=len(data),
    )  # fmt: skip


async def _data_window(
    dashboard: DashboardQueries, kind: Kind, device: DeviceRecord, window: Window
) -> Window:
    """The window narrowed to the device's ``kind`` data in it (a lease of years holding a day
    of data gets buckets of that day, not of the lease)."""
    narrowed = await dashboard.sample_bounds(kind, device.device_id, window)
    if narrowed is None:
        return window
    return window.clamp(narrowed) or window
