"""The gateway process tunes CPython's cyclic collector before its pipeline starts."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from gateway.collector import GC_YOUNG_THRESHOLD, tune_collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    """Give the test process its collector settings back afterwards."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_collector")
def test_tune_collector_freezes_startup_objects_and_widens_the_young_generation() -> None:
    """Objects alive at startup leave the collector's passes; the older thresholds stay."""
    gc.unfreeze()
    _, middle, old = gc.get_threshold()
    tune_collector()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, middle, old)
