"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from voltproof.broker import INSTALL_HINT, MosquittoBroker, find_mosquitto

REPO = Path(__file__).resolve().parents[1]


def require_binary(found: str | None, what: str, install: str) -> str:
    """Return ``found``; without it fail under CI (it must run there) or skip with the reason."""
    if found is not None:
        return found
    message = f"{what} is not installed; install it with: {install}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A real mosquitto with the project's limits, on a free port, stopped after the test."""
    binary = require_binary(find_mosquitto(), "mosquitto", INSTALL_HINT)
    broker = MosquittoBroker(workdir=tmp_path / "broker", binary=binary)
    broker.start()
    try:
        yield broker
    finally:
        broker.kill()
