"""Request dependencies: ``Annotated`` aliases for the store reader, dashboard, access and caller.

A key is sent as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. No key, or an
unknown one: 401. A known key without the right role: 403. An asset outside the caller's
fleet, leases or transfers: 404, exactly like an asset that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from gateway.store import DeviceRecord, StoreReader

from .access import FOREVER, Principal, Role, Window
from .accessdb import AccessDb
from .cursor import MAX_CURSOR_LEN, Cursors
from .queries import DashboardQueries
from .settings import Deployment

_bearer = HTTPBearer(auto_error=False, description="an API key as a bearer token")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key")


@dataclass(slots=True, kw_only=True)
class AppState:
    """What the app opened at start-up (closed at shutdown)."""

    deployment: Deployment
    reader: StoreReader
    dashboard: DashboardQueries
    access: AccessDb
    cursors: Cursors


def get_state(request: Request) -> AppState:
    """The app's open resources."""
    state: AppState = request.app.state.voltproof
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_reader(state: StateDep) -> StoreReader:
    """The gateway store, read-only (proofs, checkpoints, registry, quarantine, alarms)."""
    return state.reader


def get_dashboard(state: StateDep) -> DashboardQueries:
    """Dashboard queries over the reader."""
    return state.dashboard


def get_cursors(state: StateDep) -> Cursors:
    """Signs and checks page cursors."""
    return state.cursors


def get_access(state: StateDep) -> AccessDb:
    """The API's own database (keys, leases, transfers, acknowledgements)."""
    return state.access


ReaderDep = Annotated[StoreReader, Depends(get_reader)]
DashboardDep = Annotated[DashboardQueries, Depends(get_dashboard)]
CursorsDep = Annotated[Cursors, Depends(get_cursors)]
AccessDep = Annotated[AccessDb, Depends(get_access)]
CursorQuery = Annotated[
    str | None,
    Query(
        max_length=MAX_CURSOR_LEN,
        description="the `next` of the previous page; none: the first page",
    ),
]


async def get_current_user(
    state: StateDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    api_key: Annotated[str | None, Security(_api_key)],
) -> Principal:
    """The caller, from its API key; 401 without a valid one."""
    secret = bearer.credentials if bearer is not None else api_key
    if not secret:
        raise HTTPException(
            status_code=401,
            detail="an API key is required (Authorization: Bearer KEY or X-API-Key: KEY)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = await state.access.authenticate(secret)
    if principal is None:
        raise HTTPException(
            status_code=401,
            detail="unknown or revoked API key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


CurrentUser = Annotated[Principal, Depends(get_current_user)]


def require(*roles: Role) -> object:
    """A dependency refusing (403) callers whose role is not one of ``roles``."""

    async def check(user: CurrentUser) -> Principal:
        if user.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise HTTPException(
                status_code=403, detail=f"this endpoint is for {allowed} keys, not {user.role}"
            )
        return user

    return Depends(check)


def telemetry_reader(user: CurrentUser) -> Principal:
    """Operators and lessors (auditors read proofs only): 403 otherwise."""
    if not user.reads_telemetry:
        raise HTTPException(status_code=403, detail="auditor keys read proofs only, not telemetry")
    return user


TelemetryUser = Annotated[Principal, Depends(telemetry_reader)]
OperatorUser = Annotated[Principal, require(Role.OPERATOR)]


def not_found(asset: str) -> HTTPException:
    """The one answer for an unknown asset and for someone else's asset."""
    return HTTPException(status_code=404, detail=f"no asset {asset!r}")


async def visible_device(dashboard: DashboardQueries, user: Principal, asset: str) -> DeviceRecord:
    """The device ``asset`` if ``user`` may read any period of it; 404 otherwise."""
    device = await dashboard.device(asset)
    if device is None or not user.windows(asset, device.fleet):
        raise not_found(asset)
    return device


def window_of(
    user: Principal, device: DeviceRecord, from_ms: int | None, to_ms: int | None
) -> Window:
    """The requested period clipped to what ``user`` may read; 404 when nothing is left.

    No period: the latest permitted window. Only ``from``: from then on; only ``to``: up to
    then. ``from`` not before ``to`` is a 400 when both are given, else nothing (404).
    """
    default = user.default_window(device.device_id, device.fleet)
    if default is None:
        raise not_found(device.device_id)
    if from_ms is None and to_ms is None:
        return default
    start = 0 if from_ms is None else from_ms
    end = FOREVER if to_ms is None else to_ms
    if not start < end:
        if from_ms is not None and to_ms is not None:
            raise HTTPException(status_code=400, detail=f"from ({start}) must be before to ({end})")
        raise not_found(device.device_id)
    window = user.window_for(device.device_id, device.fleet, Window(from_ms=start, to_ms=end))
    if window is None:
        raise not_found(device.device_id)
    return window
