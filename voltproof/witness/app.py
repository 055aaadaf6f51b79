"""The HTTP face of a witness: ``POST <prefix>/add-checkpoint`` (C2SP tlog-witness).

200 ``text/plain; charset=utf-8``: the cosignature line(s). 409 ``text/x.tlog.size``: the
latest cosigned size and a newline. 400, 403, 404, 422: ``text/plain`` with the reason. The
checks and the signature run on the event loop (a few hundred microseconds, less than a hop
to a worker thread and back); the SQLite commit runs on the :class:`GroupCommitter`'s thread,
one transaction and one fsync for all requests that arrive while the previous one commits,
so a slow disk never stalls the loop.
"""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ledger.witness_protocol import SIZE_CONTENT_TYPE, format_size

from .committer import GroupCommitter
from .errors import SizeConflictError, WitnessRefusalError
from .witness import Witness

__all__ = ["create_app"]

log = logging.getLogger(__name__)


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None if it is longer than ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > limit:
            return None
    return bytes(chunks)


def create_app(
    witness: Witness,
    *,
    prefix: str = "",
    max_body_bytes: int = 65536,
    committer: GroupCommitter | None = None,
) -> Starlette:
    """The ASGI app of ``witness`` (its swaps group-committed by ``committer``, or a new one)."""
    commits = GroupCommitter(witness.state) if committer is None else committer

    async def add_checkpoint(request: Request) -> Response:
        try:
            body = await _read_body(request, max_body_bytes)
        except ClientDisconnect:
            return Response(status_code=400)
        if body is None:
            return PlainTextResponse(f"request body exceeds {max_body_bytes} bytes\n", 400)
        try:
            line = await witness.add_checkpoint_async(body, commits)
        except SizeConflictError as exc:
            log.info("checkpoint_refused", extra={"status": exc.status, "reason": str(exc)})
            # exactly text/x.tlog.size: a media_type would get "; charset=utf-8" appended
            return Response(
                format_size(exc.size), exc.status, headers={"content-type": SIZE_CONTENT_TYPE}
            )
        except WitnessRefusalError as exc:
            log.info("checkpoint_refused", extra={"status": exc.status, "reason": str(exc)})
            return PlainTextResponse(f"{exc}\n", exc.status)
        return PlainTextResponse(line)

    return Starlette(routes=[Route(f"{prefix}/add-checkpoint", add_checkpoint, methods=["POST"])])
