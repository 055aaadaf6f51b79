"""Group commit for the HTTP witness: every compare-and-swap queued during one fsync, in the next.

The event loop checks and cosigns a request, then awaits :meth:`GroupCommitter.advance`.
While no commit runs, the swap starts one at once; while one runs (its fsync takes
milliseconds), every swap that arrives waits, and all of them go into the next transaction
together: one fsync and one thread hop per batch instead of per request. A swap's future is
resolved only after its batch's COMMIT returned, so the cosignature is never answered for a
state that is not durable. If the write fails, every swap of the batch gets the
:class:`~voltproof.witness.state.WitnessStateError` and nothing of the batch is applied.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Future, ThreadPoolExecutor

from .state import CosignedCheckpoint, Swap, WitnessState

__all__ = ["GroupCommitter"]


class GroupCommitter:
    """Batches the compare-and-swaps of one event loop onto one writer thread."""

    def __init__(self, state: WitnessState) -> None:
        self._state = state
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="witness-commit")
        self._queue: list[tuple[Swap, asyncio.Future[bool]]] = []
        self._committing = False

    @property
    def state(self) -> WitnessState:
        """The state the swaps are committed to (read it for the checks)."""
        return self._state

    @property
    def waiting(self) -> int:
        """Swaps queued for the next batch (not yet handed to the writer thread)."""
        return len(self._queue)

    async def advance(
        self, origin: str, *, expected: CosignedCheckpoint | None, new: CosignedCheckpoint
    ) -> bool:
        """Store ``new`` if ``origin`` still holds ``expected``; True once durably committed."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bool] = loop.create_future()
        self._queue.append((Swap(origin=origin, expected=expected, new=new), answer))
        if not self._committing:
            self._start(loop)
        # shielded: a client that disconnects must not cancel the swap others share a batch with
        return await asyncio.shield(answer)

    def close(self) -> None:
        """Wait for a commit in progress, then stop the writer thread."""
        self._executor.shutdown(wait=True)

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._queue = self._queue, []
        self._committing = True
        running = self._executor.submit(self._state.commit_swaps, [swap for swap, _ in batch])
        running.add_done_callback(
            lambda done: loop.call_soon_threadsafe(self._finish, loop, batch, done)
        )

    def _finish(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[tuple[Swap, asyncio.Future[bool]]],
        done: Future[None],
    ) -> None:
        self._committing = False
        error = done.exception()
        for swap, answer in batch:
            if answer.done():
                continue
            if error is not None:
                answer.set_exception(error)
            else:
                answer.set_result(swap.swapped)
        if self._queue:
            self._start(loop)
