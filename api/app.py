"""The FastAPI application: ``create_app(deployment)`` wires routers, errors, metrics, static.

Settings are built by the caller (``api.cli``) and passed in; nothing here reads the
environment at import time. Start-up opens the gateway store read-only (one
:class:`gateway.store.StoreReader` for proofs and dashboard queries) and the access database;
shutdown closes them in reverse.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from importlib import resources

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gateway.store_choice import open_store_reader, store_location

from .accessdb import AccessDb
from .cursor import Cursors
from .deps import AppState
from .errors import document_errors, error_responses, install_error_handlers
from .queries import DashboardQueries
from .routes import alarms, assets, dashboard, docs, evidence, feeds, operations, proofs, system
from .settings import Deployment

log = logging.getLogger(__name__)

DESCRIPTION = (
    "Fleet status, time series, alarms, device-signed evidence and RFC 9162 proofs of a "
    "voltproof gateway. Send an API key as `Authorization: Bearer KEY` or `X-API-Key: KEY`."
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiMetrics:
    """The API's Prometheus metrics, in a registry of their own (one per app)."""

    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    log_size: Gauge

    @classmethod
    def create(cls) -> ApiMetrics:
        """Fresh metrics."""
        registry = CollectorRegistry()
        return cls(
            registry=registry,
            requests=Counter(
                "voltproof_api_requests", "API requests", ["route", "status"], registry=registry
            ),
            latency=Histogram(
                "voltproof_api_request_seconds", "API request time", ["route"], registry=registry
            ),
            log_size=Gauge("voltproof_api_log_size", "committed log size", registry=registry),
        )


def create_app(deployment: Deployment) -> FastAPI:
    """The API and dashboard for ``deployment``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            reader = await open_store_reader(deployment.gateway)
            stack.push_async_callback(reader.close)
            access = await AccessDb.open(deployment.access_db)
            stack.push_async_callback(access.close)
            app.state.voltproof = AppState(
                deployment=deployment,
                reader=reader,
                dashboard=DashboardQueries(reader),
                access=access,
                cursors=Cursors(key=await access.cursor_key()),
            )
            log.info("api_started", extra={"gateway_db": store_location(deployment.gateway)})
            yield

    app = FastAPI(
        title="voltproof API",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served from local assets by routes.docs
        redoc_url=None,
    )
    metrics = ApiMetrics.create()
    app.state.metrics = metrics

    @app.middleware("http")
    async def measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        metrics.requests.labels(name, str(response.status_code)).inc()
        metrics.latency.labels(name).observe(time.perf_counter() - started)
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.3f}"
        return response

    install_error_handlers(app)
    document_errors(app)
    errors = error_responses()
    for router in (
        system.router,
        assets.router,
        alarms.router,
        operations.quarantine_router,
        operations.registry_router,
        proofs.checkpoints_router,
        proofs.proofs_router,
        evidence.router,
        evidence.packs_router,
        feeds.router,
        dashboard.router,
        docs.router,
    ):
        app.include_router(router, responses=errors)
    static = resources.files("api").joinpath("static")
    app.mount("/", StaticFiles(directory=str(static), html=True), name="dashboard")
    return app
