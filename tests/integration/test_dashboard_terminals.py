"""The dashboard's asset page of GB/T 32960 buses, in a real browser: the evidence label.

``voltproof api`` serves a deployment whose terminals streamed through the real listener
(``tests.support.terminal_world``); Debian's chromium opens each bus's page as an operator.
A 2016 terminal's bus says "received-only", a 2025 terminal's "signed by the terminal".
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from api.access import Role
from api.accessdb import AccessDb
from tests.support.api_fleet import Deployment as ApiDeployment
from tests.support.dashboard_browser import Console, Served, chromium, login, serve
from tests.support.terminal_world import CLOCK_MS, VIN_2016, VIN_2025, build_terminal_world

pytestmark = pytest.mark.integration


async def _operator(db: object) -> str:
    from pathlib import Path

    assert isinstance(db, Path)
    access = await AccessDb.open(db)
    try:
        created = await access.create_key(
            name="operator", role=Role.OPERATOR, fleet=None, now_ms=CLOCK_MS
        )
        return created.secret
    finally:
        await access.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The terminals' deployment served, with an operator key."""
    workdir = tmp_path_factory.mktemp("terminals-dashboard")
    world = build_terminal_world(workdir / "deploy")
    secret = asyncio.run(_operator(world.deployment.settings.data_dir / "api.db"))
    served_deployment = ApiDeployment(
        workdir=world.deployment.workdir, settings=world.deployment.settings, devices={}
    )
    with serve(workdir, served_deployment, {"operator": secret}) as running:
        yield running


def test_asset_page_labels_received_only_terminals(served: Served) -> None:
    """The 2016 terminal's bus is labelled received-only; the 2025 one signed by the terminal."""
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1366, "height": 900})
        tab: Page = context.new_page()
        console = Console()
        console.watch(tab)
        login(tab, served.base, served.keys["operator"])
        for vin, text, style in (
            (VIN_2016, "received-only (GB/T 32960 2016: signed by no vehicle key)", "warn"),
            (VIN_2025, "signed by the terminal (GB/T 32960 2025, SM2)", "ok"),
        ):
            tab.goto(f"{served.base}/#asset/{vin}")
            expect(tab.locator("#asset-title")).to_contain_text(vin)
            expect(tab.locator("#asset-evidence")).to_have_text(text)
            expect(tab.locator("#asset-evidence")).to_have_class(style)
        context.close()
        assert console.errors == [], f"console errors: {console.errors}"
