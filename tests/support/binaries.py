"""Service binaries the integration tests start (mosquitto, anvil, node, a browser)."""

from __future__ import annotations

import pytest


def require_binary(found: str | None, what: str, install: str) -> str:
    """Return ``found``; without it the test fails with how to install it (``scripts/setup.sh``,
    which the README's test command runs first, installs every one): a test that cannot run is
    a missing test, never a skipped one."""
    if found is not None:
        return found
    pytest.fail(f"{what} is not installed; install it with: {install} (or run scripts/setup.sh)")
