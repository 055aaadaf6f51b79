"""The API of a GB/T 32960 terminal's bus: its pack samples beside its bus samples.

Frames of the independent rtm-con encoder went through the real listener
(``tests.support.terminal_world``), the last one of the 2016 terminal with a level-2 alarm.
The asset lists the columns its frames carry, per kind; the fleet view shows its pack's state
of charge and alarm; charts, raw samples and buckets of ``kind=pack`` give the encoder's
values; columns the frames do not carry are refused, never served as the zeros that only make
the stored blocks fit the schema.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from api.access import Role, Window
from api.accessdb import AccessDb
from api.app import create_app
from api.settings import load_deployment
from tests.support.terminal_world import (
    CLOCK_MS,
    FRAMES,
    STEP_S,
    VIN_2016,
    VIN_2025,
    TerminalWorld,
    build_terminal_world,
    reading,
)

ALARM = replace(reading(FRAMES), alarm_level=2, alarm_bits=(1,))
"""The 2016 terminal's last frame: a level-2 alarm (battery high temperature)."""
BUS = ["speed_mps", "odometer_m", "lat_deg", "lon_deg", "vehicle_state", "charge_state",
       "traction_power_w"]  # fmt: skip
PACK = ["voltage_v", "current_a", "soc", "cell_v_max", "cell_v_max_pos", "cell_v_min",
        "cell_v_min_pos", "temp_max_c", "temp_max_pos", "temp_min_c", "temp_min_pos",
        "insulation_ohm", "alarm_level", "alarm_flags", "charge_state",
        "cell_spread_v"]  # fmt: skip


def _ms(k: int) -> int:
    return int(reading(k).at.timestamp() * 1000)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> TerminalWorld:
    """The terminals' deployment, the 2016 terminal's alarm frame sent last."""
    built = build_terminal_world(tmp_path_factory.mktemp("terminal-api"))
    built.send(VIN_2016, [ALARM])
    return built


@pytest.fixture(scope="module")
def keys(world: TerminalWorld) -> dict[str, str]:
    """An operator, and a lessor holding the 2016 bus over its frames."""

    async def make() -> dict[str, str]:
        access = await AccessDb.open(world.deployment.settings.data_dir / "api.db")
        try:
            operator = await access.create_key(
                name="operator", role=Role.OPERATOR, fleet=None, now_ms=CLOCK_MS
            )
            lessor = await access.create_key(
                name="lessor", role=Role.LESSOR, fleet=None, now_ms=CLOCK_MS
            )
            await access.add_lease(
                asset=VIN_2016, lessor="lessor", window=Window(from_ms=0, to_ms=CLOCK_MS)
            )
            return {"operator": operator.secret, "lessor": lessor.secret}
        finally:
            await access.close()

    return asyncio.run(make())


@pytest.fixture(scope="module")
def client(world: TerminalWorld) -> Iterator[TestClient]:
    """A client of the app over the terminals' deployment."""
    with TestClient(create_app(load_deployment(workdir=world.deployment.workdir))) as test:
        yield test


def _get(client: TestClient, keys: dict[str, str], path: str, who: str = "operator") -> object:
    response = client.get(path, headers={"Authorization": f"Bearer {keys[who]}"})
    assert response.status_code == 200, response.text
    return response.json()


def test_asset_lists_the_bus_and_pack_columns_its_frames_carry(
    client: TestClient, keys: dict[str, str]
) -> None:
    """A terminal's bus has bus and pack samples; its newest values hold the pack's, and
    neither the fills (ambient, auxiliary power, at-stop) nor the pack columns GB/T 32960
    lacks (state of health, throughput)."""
    body = _get(client, keys, f"/api/assets/{VIN_2025}")
    assert isinstance(body, dict)
    assert body["columns"] == {"bus": BUS, "pack": PACK}
    last = reading(FRAMES - 1)
    latest = body["latest"]
    assert latest["soc"] == last.soc / 100
    assert latest["voltage_v"] == pytest.approx(last.voltage_v)
    assert latest["current_a"] == pytest.approx(last.current_a)
    assert latest["speed_mps"] * 3.6 == pytest.approx(last.speed_kmh)
    assert latest["t_ms"] == _ms(FRAMES - 1)
    assert not {"soh_capacity", "energy_in_wh", "ambient_c", "aux_power_w", "at_stop"} & set(latest)
    assert body["alarm_level"] == 0


def test_fleet_counts_a_terminal_bus_soc_and_alarm(
    client: TestClient, keys: dict[str, str]
) -> None:
    """The fleet view gives each terminal's bus its pack's state of charge and alarm level
    (what the SoC bands and alarm KPIs count); no state of health, which frames lack."""
    body = _get(client, keys, "/api/dashboard/fleet")
    assert isinstance(body, dict)
    rows = {row["id"]: row for row in body["data"]}
    assert rows[VIN_2016]["soc"] == ALARM.soc / 100
    assert rows[VIN_2016]["alarm_level"] == 2
    assert rows[VIN_2025]["soc"] == reading(FRAMES - 1).soc / 100
    assert rows[VIN_2025]["alarm_level"] == 0
    assert {rows[vin]["soh"] for vin in (VIN_2016, VIN_2025)} == {None}
    lessor = _get(client, keys, "/api/dashboard/fleet", who="lessor")
    assert isinstance(lessor, dict)
    assert [(r["id"], r["soc"], r["alarm_level"]) for r in lessor["data"]] == [
        (VIN_2016, ALARM.soc / 100, 2),
    ]  # fmt: skip


def test_terminal_alarm_is_recorded_and_open(client: TestClient, keys: dict[str, str]) -> None:
    """The frame's alarm level and flags are an alarm of the bus, open until acknowledged."""
    alarms = _get(client, keys, f"/api/alarms?asset={VIN_2016}")
    assert isinstance(alarms, dict)
    assert [(a["t_ms"], a["level"], a["flags"]) for a in alarms["data"]] == [
        (_ms(FRAMES), 2, 1 << 1),
    ]  # fmt: skip
    opened = _get(client, keys, "/api/alarms/open")
    assert isinstance(opened, dict)
    assert opened["levels"] == {"2": 1}


def test_pack_chart_of_a_terminal_bus_is_the_encoders_values(
    client: TestClient, keys: dict[str, str]
) -> None:
    """``kind=pack``: state of charge, cell spread (max - min of the same frame), hottest
    probe and alarm level, one bucket per frame, equal to what the encoder was given."""
    fields = "soc,cell_spread_v,temp_max_c,alarm_level"
    body = _get(client, keys, f"/api/dashboard/assets/{VIN_2016}/series?kind=pack&fields={fields}")
    assert isinstance(body, dict)
    assert body["kind"] == "pack"
    frames = [reading(k) for k in range(FRAMES)] + [ALARM]
    assert body["t_ms"] == [_ms(k) for k in range(FRAMES + 1)]
    columns = body["columns"]
    assert columns["soc"]["avg"] == [r.soc / 100 for r in frames]
    spreads = [max(v for row in r.cell_volts for v in row) - min(v for row in r.cell_volts
               for v in row) for r in frames]  # fmt: skip
    assert columns["cell_spread_v"]["max"] == pytest.approx(spreads)
    assert columns["cell_spread_v"]["unit"] == "V"
    assert columns["temp_max_c"]["max"] == [max(t for row in r.probe_temps for t in row)
                                            for r in frames]  # fmt: skip
    assert columns["alarm_level"]["max"] == [0] * FRAMES + [2]
    bus = _get(client, keys, f"/api/dashboard/assets/{VIN_2016}/series?fields=speed_mps")
    assert isinstance(bus, dict)
    assert bus["kind"] == "bus"
    assert bus["t_ms"] == body["t_ms"]


def test_raw_samples_and_buckets_of_kind_pack(client: TestClient, keys: dict[str, str]) -> None:
    """/samples and /buckets take ``kind=pack`` too; the lessor reads them inside its lease."""
    path = f"/api/assets/{VIN_2025}/samples?kind=pack&fields=voltage_v,current_a,soc"
    body = _get(client, keys, path)
    assert isinstance(body, dict)
    frames = [reading(k) for k in range(FRAMES)]
    assert body["t_ms"] == [_ms(k) for k in range(FRAMES)]
    assert body["values"]["voltage_v"] == pytest.approx([r.voltage_v for r in frames])
    assert body["values"]["current_a"] == pytest.approx([r.current_a for r in frames])
    assert body["values"]["soc"] == [r.soc / 100 for r in frames]
    buckets = _get(client, keys, f"/api/assets/{VIN_2016}/buckets?kind=pack&field=soc",
                   who="lessor")  # fmt: skip
    assert isinstance(buckets, dict)
    assert [b["avg"] for b in buckets["data"]] == [r.soc / 100 for r in (*frames, ALARM)]
    assert buckets["bucket_ms"] <= STEP_S * 1000


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        (f"/api/dashboard/assets/{VIN_2025}/series?kind=pack&fields=soc,soh_capacity",
         "unknown pack column(s) ['soh_capacity']"),
        (f"/api/dashboard/assets/{VIN_2025}/series?fields=ambient_c",
         "unknown bus column(s) ['ambient_c']"),
        (f"/api/dashboard/assets/{VIN_2025}/series?fields=cell_spread_v",
         "is a bus; cell spread is for packs; its pack samples: kind=pack"),
        (f"/api/assets/{VIN_2025}/samples?kind=pack&fields=energy_out_wh",
         "unknown pack field(s) ['energy_out_wh']"),
        (f"/api/assets/{VIN_2025}/buckets?field=aux_power_w", "unknown bus field(s)"),
    ],
)  # fmt: skip
def test_columns_the_frames_do_not_carry_are_refused(
    client: TestClient, keys: dict[str, str], path: str, detail: str
) -> None:
    """A column a terminal's frames do not carry is a 400 naming it, never a chart of fills."""
    response = client.get(path, headers={"Authorization": f"Bearer {keys['operator']}"})
    assert response.status_code == 400, response.text
    assert detail in response.json()["detail"]
