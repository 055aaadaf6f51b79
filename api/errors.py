"""Every error answer is JSON ``{"detail": ..., "status": ...}`` (see ``ErrorPublic``)."""

from __future__ import annotations

import logging
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.evidence import EvidenceError, NotAnchoredError, UnknownAssetError
from gateway.store import StoreError
from ledger.merkle import OutOfRangeError

from .cursor import CursorError
from .queries import QueryError
from .schemas import ErrorPublic

log = logging.getLogger(__name__)


def _answer(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "status": status}, status_code=status, headers=headers)


ERROR_STATUSES: Final = {
    400: "bad parameter (named in detail), e.g. a cursor this list did not hand out",
    401: "no API key, or an unknown or revoked one",
    403: "the key's role may not use this operation",
    404: "no such asset, leaf or checkpoint, or none the key may see",
    409: "no anchored checkpoint yet",
    422: "invalid request or stored evidence that does not check",
    503: "the gateway store cannot be read right now",
}


def error_responses() -> dict[int | str, dict[str, Any]]:
    """The error answers every operation documents: one schema, ``ErrorPublic``."""
    return {
        status: {"model": ErrorPublic, "description": description}
        for status, description in ERROR_STATUSES.items()
    }


def document_errors(app: FastAPI) -> None:
    """Make every documented error answer of every operation ``application/json`` with the
    ``ErrorPublic`` schema (FastAPI would document it in a route's own media type, e.g. the
    ``text/plain`` of the signed checkpoint note, and its 422 as ``HTTPValidationError``)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorPublic"}}}
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                for status, response in operation.get("responses", {}).items():
                    if status.isdigit() and int(status) >= 400:
                        response["content"] = error
        schema.setdefault("components", {}).setdefault("schemas", {})["ErrorPublic"] = (
            ErrorPublic.model_json_schema()
        )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


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

    @app.exception_handler(CursorError)
    async def bad_cursor(_: Request, exc: CursorError) -> JSONResponse:
        return _answer(400, str(exc))

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
