"""CPython's cyclic garbage collector, fitted to the gateway and API processes.

Process-wide switches, so they belong to the apps, never to the pure core: the gateway
process widens the young generation at start (:func:`tune_collector`), and the report and
evidence paths pause the collector while they build many acyclic objects (:func:`gc_paused`).

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


GC_YOUNG_THRESHOLD = 50_000
"""Allocations between two young collections of the gateway process (CPython's default: 700)."""


def tune_collector() -> None:
    """Fit CPython's cyclic garbage collector to the gateway's allocation pattern.

    The pipeline holds two batches of up to 500 messages, a few hundred small containers
    each, for a few milliseconds. With the default young threshold those survive the young
    collections, reach the oldest generation, and set off full collections that walk every
    live object: about 9 % of the gateway's CPU in a profile under load. A larger young
    generation lets them die by reference counting first (the profile: under 1 %). What the
    process built before the pipeline starts (modules, classes, settings) is frozen out of
    the collector's passes altogether (``gc.freeze``); reference counting still frees it.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)
