"""The dashboard in a real browser: ``voltproof api`` over a pipeline-seeded deployment, Debian's
chromium driven by Playwright (never ``playwright install``), console errors collected, axe-core
from the npm lockfile injected for accessibility checks. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from api.access import Window
from api.accessdb import AccessDb
from tests.support.api_fleet import DAY0_MS, Deployment, make_keys, seed
from tests.support.binaries import require_binary
from tests.support.paths import REPO

ARTIFACTS = REPO / "test-artifacts"
DOCS_SCREENSHOTS = REPO / "docs" / "screenshots"
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
YEAR_MS = 365 * 86_400_000
LONG_LEASE = Window(from_ms=DAY0_MS - YEAR_MS, to_ms=DAY0_MS + 10 * YEAR_MS)
"""lessor-2 leases pack-2 from 2025 to 2036 (one day of data inside): the empty-charts case."""


@dataclass(slots=True, kw_only=True)
class Served:
    """A running ``voltproof api``: its URL, deployment, keys and log."""

    base: str
    deployment: Deployment
    keys: dict[str, str]
    log: Path


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def seeded_world(workdir: Path) -> tuple[Deployment, dict[str, str]]:
    """The api_fleet deployment with its keys, plus a decade-long lease of pack-2 to lessor-2."""

    async def build() -> tuple[Deployment, dict[str, str]]:
        deployment = await seed(workdir)
        keys = await make_keys(deployment)
        access = await AccessDb.open(deployment.settings.data_dir / "api.db")
        try:
            await access.add_lease(asset="pack-2", lessor="lessor-2", window=LONG_LEASE)
        finally:
            await access.close()
        return deployment, keys

    return asyncio.run(build())


@contextlib.contextmanager
def serve(workdir: Path, deployment: Deployment, keys: dict[str, str]) -> Iterator[Served]:
    """``voltproof api`` on a free port until the block ends."""
    port = free_port()
    command = [sys.executable, "-c", "import sys; from voltproof.cli import main; sys.exit(main())",
               "api", "--workdir", str(deployment.workdir), "--port", str(port)]  # fmt: skip
    log_path = workdir / "api.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(base, server)
            yield Served(base=base, deployment=deployment, keys=keys, log=log_path)
        finally:
            server.terminate()
            server.wait(timeout=10)


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


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's chromium through Playwright (skips, or fails under CI, when it is missing)."""
    path = require_binary(shutil.which("chromium"), "chromium", "apt-get install -y chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass(slots=True)
class Console:
    """Console errors and uncaught page errors seen by one page."""

    errors: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        """Collect from ``page`` from now on."""
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))


def login(page: Page, base: str, key: str) -> None:
    """Open the dashboard and paste ``key``."""
    page.goto(f"{base}/")
    page.fill("#key", key)
    page.click("#login-form button")


def screenshot(page: Page, name: str) -> Path:
    """A full-page PNG under test-artifacts/; with ``VOLTPROOF_DOCS_SCREENSHOTS=1`` also the
    first screen of it in docs/screenshots/ (how the committed copies are refreshed)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("VOLTPROOF_DOCS_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(DOCS_SCREENSHOTS / f"{name}.png"), full_page=False)
    return path


def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not AXE.is_file():
        pytest.fail(
            f"axe-core is missing at {AXE.relative_to(REPO)}: run scripts/setup.sh (npm ci)"
        )
    page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in {"serious", "critical"}
    ]


def export_trust(deployment: Deployment, into: Path) -> tuple[Path, Path]:
    """What a lessor is handed out of band: the gateway verifier key and the anchor export."""
    from ledger.anchors.local import LocalAnchorBackend
    from ledger.keys import load_key_file

    key = load_key_file(deployment.settings.key_file)
    key_path = into / "gateway-verifier-key.txt"
    key_path.write_text(key.verifier_key + "\n", encoding="utf-8")
    anchors = into / "anchors-export.json"

    async def export() -> None:
        backend = await LocalAnchorBackend.open(deployment.anchor_db, seed=key.seed)
        try:
            await backend.export(anchors)
        finally:
            await backend.aclose()

    # in a thread of its own: Playwright's sync API keeps an event loop running in this one
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, export()).result()
    return key_path, anchors
