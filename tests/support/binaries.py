"""Service binaries the integration tests start (mosquitto, anvil, node, a browser)."""

from __future__ import annotations

import os

import pytest


def require_binary(found: str | None, what: str, install: str) -> str:
    """Return ``found``; without it fail under CI (it must run there) or skip with the reason."""
    if found is not None:
        return found
    message = f"{what} is not installed; install it with: {install}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
