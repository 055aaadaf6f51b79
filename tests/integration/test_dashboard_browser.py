"""The web dashboard in a real browser (Debian chromium via Playwright) against a real server.

The deployment is seeded by the real gateway pipeline (signed messages, a signed checkpoint,
a local anchor); ``voltproof api`` serves it on a free port; the page asks for a key, lists
the fleet, draws the charts of a pack and verifies its newest message's inclusion proof in
the browser with WebCrypto. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.support.api_fleet import Deployment, make_keys, seed
from tests.support.binaries import require_binary
from tests.support.paths import REPO

ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Deployment, dict[str, str]]]:
    """``voltproof api`` over a pipeline-seeded deployment: (base url, deployment, keys)."""

    async def build() -> tuple[Deployment, dict[str, str]]:
        deployment = await seed(tmp_path / "deploy")
        return deployment, await make_keys(deployment)

    deployment, keys = asyncio.run(build())
    port = free_port()
    command = [sys.executable, "-c", "import sys; from voltproof.cli import main; sys.exit(main())",
               "api", "--workdir", str(deployment.workdir), "--port", str(port)]  # fmt: skip
    log = (tmp_path / "api.log").open("wb")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, server)
        yield base, deployment, keys
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


def _wait_ready(base: str, server: subprocess.Popen[bytes]) -> None:
    """Poll /healthz until the server answers (or fail if it exits)."""
    with httpx.Client() as client:
        for _ in range(600):
            if server.poll() is not None:
                pytest.fail(f"voltproof api exited with {server.returncode}")
            try:
                if client.get(f"{base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    server.wait(timeout=0.05)
    pytest.fail("voltproof api did not become ready")


def _login(page: Page, base: str, key: str) -> None:
    page.goto(f"{base}/")
    page.fill("#key", key)
    page.click("#login-form button")


@pytest.mark.integration
def test_dashboard_shows_fleet_charts_and_verified_proof(
    served: tuple[str, Deployment, dict[str, str]],
) -> None:
    """The page loads, lists the fleet, draws a pack's charts and verifies its proof."""
    chromium = require_binary(shutil.which("chromium"), "chromium", "apt-get install -y chromium")
    base, _, keys = served
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            _login(page, base, keys["operator-a"])
            rows = page.locator("tr.asset-row")
            expect(rows).to_have_count(4)
            expect(page.locator("#who")).to_have_text("operator-a (operator, fleet-a)")
            expect(page.locator("#alarms tbody tr")).to_have_count(1)
            assert "bus-9" not in page.locator("#assets").inner_text()
            page.screenshot(path=str(ARTIFACTS / "dashboard-fleet.png"), full_page=True)
            page.locator("tr.asset-row[data-asset='pack-1']").click()
            expect(page.locator("#browser-check")).to_have_class("verified")
            expect(page.locator("#browser-check")).to_contain_text("verified: SHA-256")
            expect(page.locator(".chart")).to_have_count(4)
            expect(page.locator(".chart polyline.series")).to_have_count(5)
            page.screenshot(path=str(ARTIFACTS / "dashboard-pack.png"), full_page=True)
        finally:
            browser.close()


@pytest.mark.integration
def test_dashboard_refuses_bad_key(served: tuple[str, Deployment, dict[str, str]]) -> None:
    """A wrong key sends the page back to the key form with the refusal."""
    chromium = require_binary(shutil.which("chromium"), "chromium", "apt-get install -y chromium")
    base, _, _ = served
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            _login(page, base, "vpk_wrong")
            expect(page.locator("#login-error")).to_have_text("the key was refused")
            expect(page.locator("#login")).to_be_visible()
        finally:
            browser.close()
