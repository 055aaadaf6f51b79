"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.support.binaries import require_binary
from tests.support.postgres_cluster import PostgresCluster, start_cluster
from voltproof.broker import INSTALL_HINT, MosquittoBroker, find_mosquitto

# Hypothesis's deadline and "too slow" health check are timing thresholds: on a loaded
# machine they fail tests whose properties hold. The properties decide; the clock does not.
settings.register_profile("voltproof", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("voltproof")


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


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One throwaway PostgreSQL cluster for the session (never the server on 5432)."""
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """The URL of a new, empty database on the session's cluster."""
    return postgres_cluster.create_database()
