"""Property-based fuzzing of the API against its own OpenAPI schema (schemathesis, in-process).

Every operation gets requests generated from the schema (valid and boundary values, odd path
segments; an asset or pack path segment is most often one of the seeded devices, so that the
cases get past the 404 of an unknown id, and a period is often drawn around the data, now and
the bounds) with each role's key: an all-fleet operator, a fleet operator, a lessor (leases and
a bought pack), an auditor and a revoked key. No request may produce a 5xx; every status code must
be one the operation documents, every body must match the documented schema (errors: the one
``ErrorPublic`` body) and every content type the documented one.

CI runs ``test_no_server_errors`` (a bounded number of cases, a few minutes). The long run is
``test_no_server_errors_long`` (marked ``slow``, at least 10,000 cases); its command and figure
are in docs/security.md.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.access import FOREVER, Role
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
ASSETS: Final = ("bus-1", "bus-2", "bus-4", "bus-9", "pack-1", "pack-2", "pack-3")
"""The seeded world's devices: most generated cases name one (a random id stops at the 404)."""
NOW_MS: Final = time.time_ns() // 1_000_000
TIMES: Final = st.one_of(
    st.none(),
    st.sampled_from(
        (0, 1, DAY0_MS, DAY0_MS + 12 * STEP_MS, DAY0_MS + 10**9, NOW_MS - 86_400_000, NOW_MS,
         NOW_MS + 86_400_000, 253_402_300_800_000, 2**53, 2**62, FOREVER - 1, FOREVER)
    ),
    st.integers(min_value=0, max_value=FOREVER),
)  # fmt: skip
"""``from``/``to`` values: around the data, now and the bounds (a schema-only strategy draws
small integers, far from both; the 500 of a period starting after now went unseen)."""


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

        @given(
            case=operation.as_strategy(),
            real=st.sampled_from((None, *ASSETS)),
            when=st.tuples(st.booleans(), TIMES, TIMES),
        )
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def check(case: Any, real: str | None, when: tuple[bool, int | None, int | None]) -> None:
            nonlocal sent
            for name in ("asset", "pack"):
                if real is not None and name in (case.path_parameters or {}):
                    case.path_parameters[name] = real
            if when[0] and {"from", "to"} <= {p.name for p in case.operation.query}:
                case.query = {**(case.query or {}), "from": when[1], "to": when[2]}
                case.query = {k: v for k, v in case.query.items() if v is not None}
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
