"""Property-based fuzzing of the API against its own OpenAPI schema (schemathesis, in-process).

Every operation gets requests generated from the schema (valid and boundary values, odd
path segments) with an all-fleet operator key and a lessor key; no request may produce a
5xx, and every error answer is the JSON ``{"detail", "status"}`` body.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from api.app import create_app
from api.settings import load_deployment
from tests.support.api_fleet import make_keys, seed


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> tuple[FastAPI, dict[str, str]]:
    """The app over a pipeline-seeded deployment, and its API keys."""
    workdir: Path = tmp_path_factory.mktemp("fuzz") / "deploy"

    async def build() -> dict[str, str]:
        return await make_keys(await seed(workdir))

    keys = asyncio.run(build())
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


@pytest.mark.integration
def test_no_server_errors(
    api_schema: Any, fuzz_client: TestClient, fuzz_app: tuple[FastAPI, dict[str, str]]
) -> None:
    """No generated request makes any operation fail with a 5xx; errors are JSON."""
    _, keys = fuzz_app
    labels = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        labels.append(operation.label)

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def check(case: Any) -> None:
            for key in (keys["operator"], keys["lessor-1"]):
                kwargs = case.as_transport_kwargs()
                kwargs["headers"] = {**kwargs.get("headers", {}), "Authorization": f"Bearer {key}"}
                kwargs.pop("cookies", None)
                response = fuzz_client.request(**kwargs)
                assert response.status_code < 500, (case.as_curl_command(), response.text)
                if response.status_code >= 400:
                    body = response.json()
                    assert body["status"] == response.status_code
                    assert body["detail"]

        check()
    assert "GET /api/proofs/inclusion" in labels
    assert "POST /api/packs/{pack}/transfer" in labels
