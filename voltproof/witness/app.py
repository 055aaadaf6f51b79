"""The HTTP face of a witness: ``POST <prefix>/add-checkpoint`` (C2SP tlog-witness).

200 ``text/plain; charset=utf-8``: the cosignature line(s). 409 ``text/x.tlog.size``: the
latest cosigned size and a newline. 400, 403, 404, 422: ``text/plain`` with the reason; 404
and 405 for another path or method; 500 if the state cannot be read or written (nothing
cosigned). The checks and the signature run on the event loop (a
few hundred microseconds, less than a hop to a worker thread and back); the SQLite commit
runs on the :class:`GroupCommitter`'s thread, one transaction and one fsync for all requests
that arrive while the previous one commits, so a slow disk never stalls the loop.

A bare ASGI callable rather than a framework app: one route, and the framework's request,
routing and middleware objects cost about as much CPU per request as the checks themselves.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from ledger.errors import VoltproofError
from ledger.witness_protocol import SIZE_CONTENT_TYPE, format_size

from .committer import GroupCommitter
from .errors import SizeConflictError, WitnessRefusalError
from .state import WitnessStateError
from .witness import Witness

__all__ = ["create_app"]

log = logging.getLogger(__name__)

_TEXT = b"text/plain; charset=utf-8"
_SIZE = SIZE_CONTENT_TYPE.encode("ascii")


class _DisconnectedError(VoltproofError):
    """The client went away before its request body was complete."""


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The request body, or None if it is longer than ``limit`` bytes."""
    for name, value in scope["headers"]:
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


async def _answer(
    send: Send, status: int, body: bytes, content_type: bytes = _TEXT, *, allow: bool = False
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    if allow:
        headers.append((b"allow", b"POST"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    """Nothing to start or stop: acknowledge both (the state is opened and closed by the caller)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def create_app(
    witness: Witness,
    *,
    prefix: str = "",
    max_body_bytes: int = 65536,
    committer: GroupCommitter | None = None,
) -> ASGIApp:
    """The ASGI app of ``witness`` (its swaps group-committed by ``committer``, or a new one)."""
    commits = GroupCommitter(witness.state) if committer is None else committer
    path = f"{prefix}/add-checkpoint"

    async def add_checkpoint(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            body = await _read_body(scope, receive, max_body_bytes)
        except _DisconnectedError:
            return
        if body is None:
            await _answer(send, 400, f"request body exceeds {max_body_bytes} bytes\n".encode())
            return
        try:
            line = await witness.add_checkpoint_async(body, commits)
        except SizeConflictError as exc:
            log.info("checkpoint_refused", extra={"status": exc.status, "reason": str(exc)})
            # exactly text/x.tlog.size, no charset parameter
            await _answer(send, exc.status, format_size(exc.size), _SIZE)
            return
        except WitnessRefusalError as exc:
            log.info("checkpoint_refused", extra={"status": exc.status, "reason": str(exc)})
            await _answer(send, exc.status, f"{exc}\n".encode())
            return
        except WitnessStateError as exc:
            # nothing was cosigned: the log retries later, as after any 5xx
            log.exception("witness_state_failed", extra={"reason": str(exc)})
            await _answer(send, 500, b"the witness cannot read or write its state\n")
            return
        await _answer(send, 200, line.encode())

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        elif scope["type"] != "http":
            return  # no websocket protocol to speak
        elif scope["path"] != path:
            await _answer(send, 404, b"Not Found")
        elif scope["method"] != "POST":
            await _answer(send, 405, b"Method Not Allowed", allow=True)
        else:
            await add_checkpoint(scope, receive, send)

    return app
