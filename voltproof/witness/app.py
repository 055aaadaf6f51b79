"""The HTTP face of a witness: ``POST <prefix>/add-checkpoint`` (C2SP tlog-witness).

200 ``text/plain; charset=utf-8``: the cosignature line(s). 409 ``text/x.tlog.size``: the
latest cosigned size and a newline. 400, 403, 404, 422: ``text/plain`` with the reason; 405
for another method on the path, 404 for another path. The checks and the SQLite commit run
in a worker thread, so a slow disk never stalls the loop.

A bare ASGI callable rather than a framework: one route, a handful of answers, and the
request rate is the service's figure of merit (``bench/bench_witness.py``), so nothing runs
per request that the protocol does not need (no router, request or response objects).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

import anyio.to_thread

from ledger.witness_protocol import SIZE_CONTENT_TYPE, format_size

from .errors import SizeConflictError, WitnessRefusalError
from .witness import Witness

__all__ = ["create_app"]

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

_TEXT: Final = b"text/plain; charset=utf-8"


class _DisconnectedError(Exception):
    """The client went away before its body arrived."""


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The request body, or None if it is longer than ``limit`` bytes."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            return None
    chunks = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _DisconnectedError
        chunks += message.get("body", b"")
        if len(chunks) > limit:
            return None
        if not message.get("more_body", False):
            return bytes(chunks)


async def _answer(send: Send, status: int, body: bytes, content_type: bytes = _TEXT) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    """Nothing to start or stop (the state is opened and closed by the service)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def create_app(witness: Witness, *, prefix: str = "", max_body_bytes: int = 65536) -> App:
    """The ASGI app of ``witness``."""
    path = f"{prefix}/add-checkpoint"

    async def add_checkpoint(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            body = await _read_body(scope, receive, max_body_bytes)
        except _DisconnectedError:
            return
        if body is None:
            message = f"request body exceeds {max_body_bytes} bytes\n"
            await _answer(send, 400, message.encode())
            return
        try:
            line = await anyio.to_thread.run_sync(witness.add_checkpoint, body)
        except SizeConflictError as exc:
            log.info("checkpoint_refused", extra={"status": exc.status, "reason": str(exc)})
            await _answer(send, exc.status, format_size(exc.size), SIZE_CONTENT_TYPE.encode())
            return
        except WitnessRefusalError as exc:
            log.info("checkpoint_refused", extra={"status": exc.status, "reason": str(exc)})
            await _answer(send, exc.status, f"{exc}\n".encode())
            return
        await _answer(send, 200, line.encode())

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["path"] != path:
            await _answer(send, 404, b"Not Found")
            return
        if scope["method"] != "POST":
            await send({"type": "http.response.start", "status": 405,
                        "headers": [(b"allow", b"POST"), (b"content-type", _TEXT),
                                    (b"content-length", b"18")]})  # fmt: skip
            await send({"type": "http.response.body", "body": b"Method Not Allowed"})
            return
        await add_checkpoint(scope, receive, send)

    return app
