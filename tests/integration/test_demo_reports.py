"""Every report and passport of a real demo fleet: equal online and offline, and schema-valid.

A short `voltproof demo` (one bus, its pack, two spares, a pack swap early in the run) leaves
its workdir; the API is then served from that workdir, and for EVERY asset the condition
report the API answers must equal, byte for byte, what `voltproof report` computes offline
from the bundle the API serves for the same period. Every pack's passport, from the API and
offline (`voltproof report --passport`), must validate against the Tractus-X battery_pass
6.1.0 JSON schema and be the same document.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import load_deployment
from firmware_sim.sim.fleet import load_fleet
from tests.support.cli_process import run_voltproof as voltproof
from tests.support.paths import DATA
from voltproof.demo import DEFAULT_AGEING_ACCEL
from voltproof.demo_setup import DemoLayout, write_fleet

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCHEMA: dict[str, Any] = json.loads(
    (DATA / "batterypass" / "tractusx_battery_pass_6.1.0.schema.json").read_text(encoding="utf-8")
)
SWAP_AT_S = 12.0
"""The demo swaps a pack at 60 s; this run does it early so a 30 s demo holds a swap."""


def schema_errors(document: Any) -> list[str]:
    """Every validation error against the 6.1.0 schema, as ``path: message``."""
    validator = jsonschema.Draft4Validator(SCHEMA)
    return sorted(f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in validator.iter_errors(document))  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A finished 30 s demo with a pack swap: its workdir and the operator's API key."""
    workdir = tmp_path_factory.mktemp("demo-reports") / "demo"
    workdir.mkdir(mode=0o700)
    layout = DemoLayout(root=workdir)
    write_fleet(layout, buses=1, ageing_accel=DEFAULT_AGEING_ACCEL, seed=3)
    text = layout.fleet_file.read_text(encoding="utf-8")
    assert "pack_swap_at_s = 60.0" in text
    layout.fleet_file.write_text(
        text.replace("pack_swap_at_s = 60.0", f"pack_swap_at_s = {SWAP_AT_S}"), encoding="utf-8"
    )
    run = voltproof("demo", "--workdir", str(workdir), "--duration", "30", "--devices", "4",
                    "--api-port", "0")  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "pack swap: 1" in run.stdout, run.stdout
    key = re.search(r"operator key +(vpk_\S+)", run.stdout)
    assert key is not None, run.stdout
    return workdir, key.group(1)


def test_every_report_equals_offline_and_every_passport_validates(
    demo: tuple[Path, str], tmp_path: Path
) -> None:
    """All buses and packs: API report == offline report; passports valid and equal."""
    workdir, key = demo
    fleet = load_fleet(DemoLayout(root=workdir).fleet_file)
    buses, packs = fleet.bus_ids(), fleet.pack_ids()
    assert len(buses) == 1
    assert len(packs) == 3
    setting = workdir / "passport.json"
    assert setting.is_file()  # the demo wrote its passport setting
    period = f"?from=0&to={time.time_ns() // 1_000_000}"
    headers = {"Authorization": f"Bearer {key}"}
    reports: dict[str, dict[str, Any]] = {}
    with TestClient(create_app(load_deployment(workdir=workdir))) as client:
        listed = {
            a["id"]: a["kind"] for a in client.get("/api/assets", headers=headers).json()["data"]
        }
        assert set(buses) | set(packs) <= set(listed)
        for asset in sorted(listed):
            bundle = client.get(f"/api/assets/{asset}/bundle{period}", headers=headers)
            served = client.get(f"/api/assets/{asset}/report{period}", headers=headers)
            if asset not in buses and asset not in packs:
                # A GB/T 32960 terminal: whatever the bundle says, the report says too.
                assert (served.status_code, served.json().get("detail")) == (
                    bundle.status_code, bundle.json().get("detail")) or (
                    bundle.status_code == served.status_code == 200)  # fmt: skip
                if bundle.status_code != 200:
                    continue
            assert bundle.status_code == served.status_code == 200, (asset, served.text)
            path = tmp_path / f"{asset}.vpbundle.json"
            path.write_bytes(bundle.content)
            offline = voltproof("report", str(path), "--json")
            assert offline.returncode == 0, offline.stderr
            assert served.json() == json.loads(offline.stdout), asset
            reports[asset] = served.json()
            if listed[asset] != "pack":
                continue
            passport = client.get(f"/api/assets/{asset}/passport{period}", headers=headers)
            assert passport.status_code == 200, passport.text
            assert schema_errors(passport.json()) == [], asset
            made = voltproof("report", str(path), "--passport", "--passport-setting", str(setting))
            assert made.returncode == 0, made.stderr
            assert json.loads(made.stdout) == passport.json(), asset
            codes = passport.json()["identification"]["identification"]["codes"]
            assert {"key": "voltproof device id", "value": asset} in codes
            assert any(c["key"].startswith("serial number") for c in codes)  # birth certificate
            assert passport.json()["identification"]["chemistry"] == "LFP"  # from the setting
    bus = reports[buses[0]]
    stints = bus["stints"]
    assert len({s["pack"] for s in stints}) == 2, stints  # the swap: two packs in the bus
    for stint in stints:
        assert "reason" not in stint, stint
        assert stint["figures"]["samples"]["value"] > 0
    assert bus["figures"]["charging_sessions"]["value"] is not None
    for name in ("energy_per_km", "auxiliary_share", "km_per_day", "charging_energy"):
        figure = bus["figures"][name]
        assert (figure["value"] is None) != ("reason" not in figure), (name, figure)
