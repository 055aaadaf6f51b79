"""Pausing CPython's cyclic garbage collector while a report builds many acyclic objects.

Decoding a year of one asset's messages creates about a million small containers (payload
maps, typed arrays, per-message records) that stay alive until the report is made and hold
no reference cycles. The cyclic collector still walks every one of them each time enough new
allocations pile up, which cost about a third of a year report's time. Reference counting
frees these objects on its own, so the collector is paused while they are built and resumed
afterwards (only if it was running: a caller that turned it off keeps it off). The pause is
process-wide; when two threads overlap, the first to finish resumes the collector early,
which only gives back part of the saving.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Run the ``with`` body with the cyclic garbage collector off."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
