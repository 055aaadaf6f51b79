"""Liveness, Prometheus metrics and the caller's identity."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..deps import CurrentUser, OperatorUser, ReaderDep
from ..schemas import HealthPublic, MePublic

router = APIRouter(tags=["system"])


@router.get("/healthz", response_model=HealthPublic)
async def healthz(reader: ReaderDep) -> HealthPublic:
    """Whether the API can read the gateway store; the committed log size."""
    head = await reader.log_head()
    return HealthPublic(status="ok", log_size=head.size)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}},
                     "description": "Prometheus text exposition"}},
)  # fmt: skip
async def metrics(*, request: Request, reader: ReaderDep, _user: OperatorUser) -> Response:
    """Prometheus text exposition: request counts and latencies, log size (operator keys:
    request counts by route and status tell who uses the API how; see docs/security.md)."""
    telemetry = request.app.state.metrics
    telemetry.log_size.set((await reader.log_head()).size)
    return Response(generate_latest(telemetry.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/api/me", response_model=MePublic)
async def me(*, user: CurrentUser) -> MePublic:
    """Who the key belongs to."""
    assets = sorted({g.asset for g in user.grants})
    return MePublic(name=user.name, role=user.role.value, fleet=user.fleet, assets=assets)
