"""Property-based fuzzing of the API against its own OpenAPI schema (schemathesis, in-process).

Every operation gets requests generated from the schema (valid and boundary values, odd path
segments) with each role's key: an all-fleet operator, a fleet operator, a lessor (leases and a
bought pack), an auditor and a revoked key. No request may produce a 5xx; every status code must
be one the operation documents, every body must match the documented schema (errors: the one
``ErrorPublic`` body) and every content type the documented one.

CI runs ``test_no_server_errors`` (a bounded number of cases, a few minutes). The long run is
``test_no_server_errors_long`` (marked ``slow``, at least 10,000 cases); its command and figure
are in docs/security.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.access import Role
from api.accessdb import AccessDb
from api.app import create_app
from api.settings import load_deployment
from tests.support.api_fleet import DAY0_MS, STEP_MS, make_keys, seed, seed_awkward

pytestmark = pytest.mark.integration

ROLES: Final = ("operator", "operator-a", "lessor-1", "auditor", "revoked")
CHECKS: Final = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
LONG_RUN_CASES: Final = 10_000


async def _world(workdir: Path) -> dict[str, str]:
    deployment = await seed(workdir)
    # A flat state-of-health trend, a backfilled outage and a revoked device.
    await seed_awkward(deployment)
    keys = await make_keys(deployment)
    access = await AccessDb.open(workdir / "gateway" / "api.db")
    try:
        created = await access.create_key(
            name="revoked", role=Role.LESSOR, fleet=None, now_ms=DAY0_MS
        )
        keys["revoked"] = created.secret
        await access.revoke_key("revoked", now_ms=DAY0_MS)
        await access.transfer(
            pack="pack-2", owner="lessor-1", by="operator", by_operator=True,
            now_ms=DAY0_MS + 12 * STEP_MS,
        )  # fmt: skip
    finally:
        await access.close()
    return keys


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> tuple[FastAPI, dict[str, str]]:
    """The app over a pipeline-seeded deployment (a pack swapped between buses at midday, a
    flat-trend pack with a backfilled outage, a revoked device, a sold pack, a revoked API
    key), and every role's API key."""
    workdir: Path = tmp_path_factory.mktemp("fuzz") / "deploy"
    keys = asyncio.run(_world(workdir))
    return create_app(load_deployment(workdir=workdir)), keys


@pytest.fixture(scope="module")
def fuzz_client(fuzz_app: tuple[FastAPI, dict[str, str]]) -> Iterator[TestClient]:
    """A client with the app's lifespan running."""
    with TestClient(fuzz_app[0]) as client:
        yield client


@pytest.fixture(scope="module")
def api_schema(fuzz_app: tuple[FastAPI, dict[str, str]]) -> Any:
    """The app's OpenAPI schema, loaded in-process."""
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app[0])


def fuzz(api_schema: Any, client: TestClient, keys: dict[str, str], examples: int) -> int:
    """Fuzz every operation with ``examples`` generated cases per role; the requests sent."""
    sent = 0
    labels = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        labels.append(operation.label)

        @given(case=operation.as_strategy())
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def check(case: Any) -> None:
            nonlocal sent
            for role in ROLES:
                kwargs = case.as_transport_kwargs()
                headers = {**kwargs.get("headers", {}), "Authorization": f"Bearer {keys[role]}"}
                kwargs["headers"] = headers
                kwargs.pop("cookies", None)
                response = client.request(**kwargs)
                sent += 1
                assert response.status_code < 500, (role, case.as_curl_command(), response.text)
                case.validate_response(response, checks=CHECKS, headers=headers)

        check()
    assert "GET /api/proofs/inclusion" in labels
    assert "POST /api/packs/{pack}/transfer" in labels
    assert "POST /api/alarms/{alarm_id}/acknowledgement" in labels
    assert "GET /metrics" in labels
    return sent


def test_no_server_errors(
    api_schema: Any, fuzz_client: TestClient, fuzz_app: tuple[FastAPI, dict[str, str]]
) -> None:
    """No generated request makes any operation fail with a 5xx, an undocumented status or a
    body off its schema, for any role."""
    sent = fuzz(api_schema, fuzz_client, fuzz_app[1], examples=10)
    print(f"api fuzz: {sent} cases, 0 server errors")
    assert sent >= len(ROLES) * 20, "every operation was fuzzed with every key"


@pytest.mark.slow
def test_no_server_errors_long(
    api_schema: Any, fuzz_client: TestClient, fuzz_app: tuple[FastAPI, dict[str, str]]
) -> None:
    """The long run: at least 10,000 cases, none a 5xx or off the schema."""
    sent = fuzz(api_schema, fuzz_client, fuzz_app[1], examples=120)
    print(f"api fuzz (long): {sent} cases, 0 server errors")
    assert sent >= LONG_RUN_CASES
