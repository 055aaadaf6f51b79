"""The tests' PostgreSQL cluster: :class:`voltproof.postgres_cluster.PostgresCluster`, which
fails under CI and skips elsewhere (with the reason) when the server is not installed."""

from __future__ import annotations

from tests.support.binaries import require_binary
from voltproof.broker import free_port
from voltproof.postgres_cluster import INSTALL_HINT, PostgresCluster, server_bin_dir

__all__ = ["PostgresCluster", "free_port", "start_cluster"]


def start_cluster() -> PostgresCluster:
    """A new running cluster on a free port."""
    found = server_bin_dir()
    require_binary(
        None if found is None else str(found), "PostgreSQL (initdb, pg_ctl)", INSTALL_HINT
    )
    return PostgresCluster.start()
