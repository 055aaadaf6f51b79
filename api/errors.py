"""Every error answer is JSON ``{"detail": ..., "status": ...}`` (see ``ErrorPublic``)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.evidence import EvidenceError, NotAnchoredError, UnknownAssetError
from gateway.store import StoreError
from ledger.merkle import OutOfRangeError

from .queries import QueryError

log = logging.getLogger(__name__)


def _answer(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "status": status}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Map HTTP, validation, range, evidence and store errors to JSON answers."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _answer(exc.status_code, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        return _answer(422, f"invalid request: {problems}")

    @app.exception_handler(OutOfRangeError)
    async def out_of_range(_: Request, exc: OutOfRangeError) -> JSONResponse:
        return _answer(404, str(exc))

    @app.exception_handler(UnknownAssetError)
    async def unknown_asset(_: Request, exc: UnknownAssetError) -> JSONResponse:
        return _answer(404, str(exc))

    @app.exception_handler(NotAnchoredError)
    async def not_anchored(_: Request, exc: NotAnchoredError) -> JSONResponse:
        return _answer(409, str(exc))

    @app.exception_handler(EvidenceError)
    async def evidence(_: Request, exc: EvidenceError) -> JSONResponse:
        return _answer(422, str(exc))

    @app.exception_handler(QueryError)
    async def query_failed(_: Request, exc: QueryError) -> JSONResponse:
        log.error("query_failed", extra={"error": str(exc)})
        return _answer(503, "the gateway database cannot be read right now")

    @app.exception_handler(StoreError)
    async def store_failed(_: Request, exc: StoreError) -> JSONResponse:
        log.error("store_failed", extra={"error": str(exc)})
        return _answer(503, "the gateway store cannot be read right now")
