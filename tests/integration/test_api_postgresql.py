"""The API on a PostgreSQL store answers exactly what it answers on the SQLite file it came from.

A seeded deployment (a day of telemetry, checkpoints, an anchor) is migrated with
``voltproof migrate``; one API reads the SQLite file, another the PostgreSQL copy
(``store.url``), and the same requests get the same JSON.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Deployment, load_deployment
from tests.support.api_fleet import LEASE_TO, make_keys, seed
from voltproof.cli.gateway import with_store_url

pytestmark = pytest.mark.integration

PATHS = (
    "/api/assets",
    "/api/assets/pack-1",
    "/api/assets/pack-1/samples?fields=soc,voltage_v",
    "/api/assets/bus-1/buckets?field=speed_mps",
    "/api/assets/pack-1/history",
    f"/api/assets/pack-1/report?to={LEASE_TO}",
    "/api/alarms",
    "/api/quarantine",
    "/api/registry",
    "/api/checkpoints",
)


def _answers(deployment: Deployment, secret: str) -> dict[str, tuple[int, object]]:
    headers = {"Authorization": f"Bearer {secret}"}
    with TestClient(create_app(deployment)) as client:
        answers: dict[str, tuple[int, object]] = {}
        for path in PATHS:
            response = client.get(path, headers=headers)
            answers[path] = (response.status_code, response.json())
        return answers


def _migrate(path: Path, url: str) -> None:
    migrated = subprocess.run(
        [sys.executable, "-m", "voltproof", "migrate", "--from", f"sqlite:{path}", "--to", url],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr


def test_api_on_postgresql_answers_as_on_sqlite(tmp_path: Path, postgres_url: str) -> None:
    """Same status and JSON for every request, over the file and over its PostgreSQL copy."""
    world = asyncio.run(seed(tmp_path / "deployment"))
    keys = asyncio.run(make_keys(world))
    _migrate(world.settings.db_path, postgres_url)
    on_sqlite = load_deployment(workdir=world.workdir)
    on_postgresql = Deployment(
        api=on_sqlite.api, gateway=with_store_url(on_sqlite.gateway, postgres_url)
    )
    sqlite_answers = _answers(on_sqlite, keys["operator"])
    failed = {path: answer for path, answer in sqlite_answers.items() if answer[0] != 200}
    assert failed == {}
    assert _answers(on_postgresql, keys["operator"]) == sqlite_answers


def test_bundle_from_postgresql_equals_bundle_from_sqlite(
    tmp_path: Path, postgres_url: str
) -> None:
    """``voltproof bundle`` over the PostgreSQL copy writes the same bytes as over the file."""
    world = asyncio.run(seed(tmp_path / "deployment"))
    _migrate(world.settings.db_path, postgres_url)
    bundles = []
    for name, env in (
        ("sqlite", {}),
        ("postgresql", {"VOLTPROOF_GATEWAY__STORE__URL": postgres_url}),
    ):
        out = tmp_path / f"{name}.bundle"
        made = subprocess.run(
            [sys.executable, "-m", "voltproof", "bundle", "--config", str(world.config),
             "--asset", "pack-1", "--to", str(LEASE_TO), "--out", str(out)],
            capture_output=True, text=True, timeout=300, check=False,
            env={**os.environ, **env},
        )  # fmt: skip
        assert made.returncode == 0, made.stdout + made.stderr
        bundles.append(out.read_bytes())
    assert bundles[0] == bundles[1]
