"""Dashboard benchmark in a real browser: the fleet view with 2,000 assets and the map, and an
asset-year of charts, each against a baseline page measured in the same run.

Two deployments are seeded through the REAL gateway pipeline (``bench.bench_api.seed``:
signed messages, verified, logged, samples stored, a checkpoint signed and anchored):
``--assets`` devices (half buses, half packs) with a few messages each, and two devices with
a year of data (one message per ``--year-step-min`` minutes, one sample a minute).
``voltproof api`` serves each on a free port; Debian's chromium (Playwright) opens:

- baseline: ``/report.html`` without an asset (a small page whose script runs and shows an
  error): the cost of a page load and a script on this machine;
- fleet: the dashboard's fleet view until every table row is drawn and the map holds every
  bus marker (the fleet API call, KPIs, table and map included);
- asset-year: a pack's page until its six charts are drawn over a year of data;
- and the server's own time (``Server-Timing``) for that page's year series, asked for directly.

Times are wall clock from ``goto`` to the view drawn (median of ``--repeat`` loads in a
fresh page each), and ratios to the baseline.

    .venv/bin/python -m bench.bench_dashboard --assets 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import httpx
from playwright.sync_api import Browser, Page, sync_playwright

from bench.bench_api import seed

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
REPO = Path(__file__).resolve().parent.parent


@contextmanager
def api(workdir: Path) -> Iterator[str]:
    """``voltproof api`` over ``workdir`` on a free port; yields its base URL."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "voltproof", "api", "--workdir", str(workdir),
               "--port", str(port)]  # fmt: skip
    with (workdir / "api.log").open("wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.05)
            else:
                raise SystemExit("voltproof api did not start")
            yield base
        finally:
            server.terminate()
            server.wait(timeout=10)


def timed_load(browser: Browser, key: str, url: str, ready: Callable[[Page], None]) -> float:
    """Seconds from ``goto`` to ``ready`` returning, in a fresh page with the key stored."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    context.add_init_script(f"sessionStorage.setItem('voltproof-api-key', {json.dumps(key)})")
    page = context.new_page()
    try:
        started = time.perf_counter()
        page.goto(url)
        ready(page)
        return time.perf_counter() - started
    finally:
        context.close()


YEAR_FIELDS = (
    "soc,soh_capacity,temp_max_c,temp_min_c,cell_spread_v,energy_out_wh,energy_in_wh,alarm_level"
)
"""The columns the asset page's six pack charts ask for, in one request (``api/static/app.js``)."""


def server_s(base: str, key: str, path: str, params: dict[str, str] | None = None) -> float:
    """The server's own time (``Server-Timing: app``) for one GET."""
    response = httpx.get(f"{base}{path}", params=params,
                         headers={"Authorization": f"Bearer {key}"}, timeout=60)  # fmt: skip
    response.raise_for_status()
    timing = response.headers["Server-Timing"]
    return float(timing.split("dur=")[1]) / 1000


def series_server_s(base: str, key: str) -> float:
    """The server's own time for the asset page's year series."""
    params = {"fields": YEAR_FIELDS, "points": "800"}
    return server_s(base, key, "/api/dashboard/assets/pack-0/series", params)


ASSET_REQUESTS: Final = (
    ("asset", "/api/assets/pack-0", None),
    ("series", "/api/dashboard/assets/pack-0/series", {"fields": YEAR_FIELDS, "points": "800"}),
    ("history", "/api/assets/pack-0/history", None),
)
"""What the asset page asks the server for (``--requests-only``), one after the other."""


def requests_only(year_dir: Path, repeat: int) -> None:
    """The server's time for each of the asset page's requests, without a browser."""
    with api(year_dir) as base:
        key = (year_dir / "bench.key").read_text(encoding="utf-8").strip()
        for name, path, params in ASSET_REQUESTS:
            median = median_of(repeat, lambda: server_s(base, key, path, params))  # noqa: B023
            print(f"{name:<10}{path:<42}{median * 1000:>9.1f} ms (median of {repeat})")


def median_of(count: int, action: Callable[[], float]) -> float:
    """Median of ``count`` runs (one warm-up run first)."""
    action()
    return statistics.median(action() for _ in range(count))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=2000)
    parser.add_argument("--messages-per-asset", type=int, default=3)
    parser.add_argument("--year-step-min", type=int, default=60)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--requests-only", action="store_true",
                        help="seed the asset-year only and time the asset page's requests on "
                        "the server (Server-Timing), no browser")  # fmt: skip
    args = parser.parse_args()
    if args.requests_only:
        with tempfile.TemporaryDirectory() as tmp:
            year_dir = Path(tmp) / "year"
            asyncio.run(seed(year_dir, messages=2 * 365 * 24 * 60 // args.year_step_min,
                             devices=2, samples=args.year_step_min, dt_ms=60_000))  # fmt: skip
            requests_only(year_dir, args.repeat)
        return
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("chromium is not installed (apt-get install -y chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        fleet_dir, year_dir = Path(tmp) / "fleet", Path(tmp) / "year"
        started = time.perf_counter()
        asyncio.run(seed(fleet_dir, messages=args.assets * args.messages_per_asset,
                         devices=args.assets, samples=args.samples, dt_ms=1000))  # fmt: skip
        year_messages = 2 * 365 * 24 * 60 // args.year_step_min
        asyncio.run(seed(year_dir, messages=year_messages, devices=2,
                         samples=args.year_step_min, dt_ms=60_000))  # fmt: skip
        print(f"seeded {args.assets} assets and an asset-year ({year_messages // 2} messages "
              f"per device) in {time.perf_counter() - started:.0f} s")  # fmt: skip
        buses = args.assets // 2
        results: dict[str, float] = {}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                with api(fleet_dir) as base:
                    key = (fleet_dir / "bench.key").read_text(encoding="utf-8").strip()

                    def baseline_ready(page: Page) -> None:
                        page.wait_for_selector("p.error")

                    def fleet_ready(page: Page) -> None:
                        page.wait_for_function(
                            f"document.querySelectorAll('tr.asset-row').length === {args.assets}"
                            f" && document.querySelector('#map').dataset.markers === '{buses}'",
                            timeout=60_000,
                        )

                    results["baseline"] = median_of(args.repeat, lambda: timed_load(
                        browser, key, f"{base}/report.html", baseline_ready))  # fmt: skip
                    results["fleet"] = median_of(args.repeat, lambda: timed_load(
                        browser, key, f"{base}/#fleet", fleet_ready))  # fmt: skip
                with api(year_dir) as base:
                    key = (year_dir / "bench.key").read_text(encoding="utf-8").strip()

                    def charts_ready(page: Page) -> None:
                        page.wait_for_function(
                            "document.querySelectorAll('figure.chart .uplot').length === 6",
                            timeout=60_000,
                        )

                    results["asset_year"] = median_of(args.repeat, lambda: timed_load(
                        browser, key, f"{base}/#asset/pack-0", charts_ready))  # fmt: skip
                    results["series_server"] = median_of(
                        3 * args.repeat, lambda: series_server_s(base, key)
                    )
            finally:
                browser.close()
    base_s = results["baseline"]
    print(f"{'view':<34}{'median s':>10}{'x baseline':>12}{'aim':>8}")
    for name, label, aim in (
        ("baseline", "baseline page (report.html)", None),
        ("fleet", f"fleet view, {args.assets} assets + map", 1.5),
        ("asset_year", "asset-year charts (6)", 1.0),
    ):
        value = results[name]
        aim_text = "" if aim is None else f"< {aim:g} s"
        print(f"{label:<34}{value:>10.3f}{value / base_s:>12.1f}{aim_text:>8}")
    print(
        f"{'year series, server time (8 columns, 800 buckets)':<52}"
        f"{results['series_server']:>8.3f} s (median of {3 * args.repeat})"
    )


if __name__ == "__main__":
    main()
