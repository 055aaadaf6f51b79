"""``run(settings)``: one witness process serving HTTP until SIGTERM or SIGINT.

``serve(settings)`` runs it on uvloop when it is installed (it comes with uvicorn's
``standard`` extra): the loop's own overhead per request is a sizeable part of the witness's
CPU cost, since the checks themselves take only a few hundred microseconds.

uvicorn handles the signals: it stops accepting connections, lets requests in flight finish
(each one's state commit is a single SQLite transaction, so an abandoned request leaves either
the old or the new state) within ``shutdown_timeout_s``, then the group committer finishes the
commit in progress and the state database is closed.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from collections.abc import Callable
from contextlib import AsyncExitStack

import uvicorn

from ledger.keys import load_key_file

from .app import create_app
from .committer import GroupCommitter
from .settings import WitnessSettings
from .state import WitnessState
from .witness import Witness

__all__ = ["build_witness", "run", "serve"]

log = logging.getLogger(__name__)


def build_witness(settings: WitnessSettings, state: WitnessState) -> Witness:
    """The witness of ``settings`` over an open ``state`` (its key file loaded)."""
    key = load_key_file(settings.key_file)
    return Witness.from_policies(
        key=key, logs=[entry.policy() for entry in settings.logs], state=state
    )


async def run(settings: WitnessSettings) -> None:
    """Serve ``settings``' witness until a shutdown signal."""
    async with AsyncExitStack() as stack:
        state = WitnessState.open(settings.state_file)
        stack.callback(state.close)
        witness = build_witness(settings, state)
        committer = GroupCommitter(state)
        stack.callback(committer.close)
        app = create_app(
            witness,
            prefix=settings.prefix,
            max_body_bytes=settings.max_body_bytes,
            committer=committer,
        )
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=int(settings.shutdown_timeout_s),
        )
        server = uvicorn.Server(config)
        log.info(
            "witness_starting",
            extra={
                "vkey": str(witness.verifier_key),
                "host": settings.host,
                "port": settings.port,
                "logs": sorted(witness.logs),
            },
        )
        await server.serve()
        log.info("witness_stopped", extra={})


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop if it is installed, else None (asyncio's default loop)."""
    if importlib.util.find_spec("uvloop") is None:
        return None
    import uvloop

    return uvloop.new_event_loop


def serve(settings: WitnessSettings) -> None:
    """Run :func:`run` to completion on its own event loop (uvloop when installed)."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(run(settings))
