"""The dashboard of GB/T 32960 buses, in a real browser: evidence label, pack charts, KPIs.

``voltproof api`` serves a deployment whose terminals streamed through the real listener
(``tests.support.terminal_world``, the 2016 terminal's last frame with a level-2 alarm);
Debian's chromium opens the fleet and each bus's page as an operator. A 2016 terminal's bus
says "received-only", a 2025 terminal's "signed by the terminal"; a terminal's bus shows its
pack's charts beside its own (those its frames carry), and the fleet counts its SoC and alarm.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace

import pytest
from playwright.sync_api import Page, expect

from api.access import Role
from api.accessdb import AccessDb
from tests.support.api_fleet import Deployment as ApiDeployment
from tests.support.dashboard_browser import (
    Console,
    Served,
    chromium,
    login,
    screenshot,
    serious_violations,
    serve,
)
from tests.support.terminal_world import (
    CLOCK_MS,
    FRAMES,
    VIN_2016,
    VIN_2025,
    build_terminal_world,
    reading,
)

pytestmark = pytest.mark.integration

ALARM = replace(reading(FRAMES), alarm_level=2, alarm_bits=(1,))
"""The 2016 terminal's last frame: a level-2 alarm."""
BUS_CHARTS = ["Speed", "Odometer", "Traction power"]
PACK_CHARTS = [
    "State of charge",
    "Temperatures",
    "Cell voltage spread (max \u2212 min of the same sample)",
    "Alarm level",
]


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
    world.send(VIN_2016, [ALARM])
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


def test_terminal_bus_shows_its_pack_charts_and_counts_in_the_fleet(served: Served) -> None:
    """The fleet row of a terminal's bus has its pack's SoC and alarm level, which the SoC
    and open-alarm KPIs count; its page draws its bus charts and its pack charts (one point
    per frame), none for what frames do not carry (ambient, state of health, throughput)."""
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1366, "height": 900})
        tab: Page = context.new_page()
        console = Console()
        console.watch(tab)
        login(tab, served.base, served.keys["operator"])
        row = tab.locator(f"tr.asset-row[data-asset='{VIN_2016}'] td")
        expect(row.nth(5)).to_have_text(f"{ALARM.soc:.1f} %")
        expect(row.nth(7)).to_have_text("2 limit driving")
        soc = tab.locator(".kpi", has=tab.locator("h2", has_text="Pack SoC")).locator("dd")
        expect(soc.nth(2)).to_have_text("3")  # 50-80 %: the three terminals' buses
        alarms = tab.locator(".kpi", has=tab.locator("h2", has_text="Open alarms")).locator("dd")
        expect(alarms.nth(2)).to_have_text("1")  # level 2
        tab.goto(f"{served.base}/#asset/{VIN_2016}")
        expect(tab.locator("figure.chart .uplot")).to_have_count(len(BUS_CHARTS + PACK_CHARTS))
        for kind, titles in (("bus", BUS_CHARTS), ("pack", PACK_CHARTS)):
            charts = tab.locator(f"figure.chart[data-kind='{kind}']")
            assert charts.evaluate_all("nodes => nodes.map(n => n.dataset.title)") == titles
            points = charts.evaluate_all("nodes => nodes.map(n => n.dataset.points)")
            assert points == [str(FRAMES + 1)] * len(titles)
        expect(tab.locator("figure.chart[data-kind='pack'] figcaption").first).to_have_text(
            "Pack: State of charge (%)"
        )
        expect(tab.locator("#stints tbody")).to_have_text(
            "a GB/T 32960 terminal reports its pack in its own frames (the Pack charts above)"
        )
        tab.locator("figure.chart[data-kind='pack']").first.evaluate("n => n.scrollIntoView()")
        screenshot(tab, "dashboard-operator-terminal")
        assert serious_violations(tab) == []
        context.close()
        assert console.errors == [], f"console errors: {console.errors}"
