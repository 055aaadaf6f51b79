"""Bus figures and pack stints: exact answers on constructed data, never a crash on any series."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.report import ConditionReport, ReportParams, compute_report
from ledger.report.columns import decode_all
from ledger.report.compute import _stint_runs
from ledger.telemetry import BusSample, PackSample, TelemetryBatch, encode_batch
from tests.support.bundle_world import T0, bus_sample, pack_sample
from tests.support.strategies import bus_samples, pack_samples

MIN = 60_000
DAY = 86_400_000


def _payloads(dev: str, batches: Sequence[TelemetryBatch]) -> list[dict[str, Any]]:
    return [
        {"v": 1, "dev": dev, "seq": seq, "prev": bytes(32), "t": b.t_ms, **encode_batch(b)}
        for seq, b in enumerate(batches)
    ]


def _bus(t_ms: int, samples: Sequence[BusSample], packs: tuple[str, ...]) -> TelemetryBatch:
    return TelemetryBatch(kind="bus", t_ms=t_ms, dt_ms=MIN, samples=tuple(samples), packs=packs)


def _pack(t_ms: int, samples: Sequence[PackSample], host: str | None) -> TelemetryBatch:
    return TelemetryBatch(kind="pack", t_ms=t_ms, dt_ms=MIN, samples=tuple(samples), host=host)


def _drive(odometer_m: float) -> BusSample:
    return bus_sample(odometer_m=odometer_m, traction_power_w=50_000.0, aux_power_w=10_000.0)


def _plugged(odometer_m: float) -> BusSample:
    return bus_sample(odometer_m=odometer_m, charge_state=1, vehicle_state=2,
                      traction_power_w=0.0, aux_power_w=800.0)  # fmt: skip


def _route() -> list[dict[str, Any]]:
    """bus-1: 3 min driving, 2 min at the depot charger, a swap, 2 min driving.

    pack-1 (its pack for the first 5 minutes) charges 50 kWh during the session; pack-2,
    installed after the swap, sent nothing the evidence holds.
    """
    bus = [
        _bus(T0, [_drive(0.0), _drive(1000.0), _drive(2000.0)], ("pack-1",)),
        _bus(T0 + 3 * MIN, [_plugged(2000.0), _plugged(2000.0)], ("pack-1",)),
        _bus(T0 + 5 * MIN, [_drive(3000.0), _drive(4000.0)], ("pack-2",)),
    ]
    pack = [
        _pack(T0, [pack_sample(energy_in_wh=100_000.0)] * 3, "bus-1"),
        _pack(T0 + 3 * MIN, [pack_sample(energy_in_wh=110_000.0, current_a=-200.0),
                             pack_sample(energy_in_wh=150_000.0, current_a=-200.0)], "bus-1"),
    ]  # fmt: skip
    return _payloads("bus-1", bus) + _payloads("pack-1", pack)


def _report(payloads: list[dict[str, Any]], asset: str = "bus-1", kind: str = "bus",
            to_ms: int = T0 + 10 * MIN) -> ConditionReport:  # fmt: skip
    return compute_report(payloads, asset_id=asset, asset_kind=kind, from_ms=T0, to_ms=to_ms)


def test_bus_figures_on_a_known_route() -> None:
    """Distance, energy per km, auxiliary share and the charging session, by hand."""
    report = _report(_route())
    value = {f.key: f.value for f in report.figures}
    assert value["distance"] == 4.0
    # Not charging: 5 samples x 60 s x (50 + 10) kW = 5 kWh, 0.8333 kWh of it auxiliary.
    assert value["energy_per_km"] == pytest.approx(5.0 / 4.0)
    assert value["auxiliary_share"] == pytest.approx(10 / 60 * 100)
    assert value["charging_sessions"] == 1
    assert value["charging_hours"] == pytest.approx(2 / 60)
    # e_in of the last sample in the session minus the last one before it.
    assert value["charging_energy"] == pytest.approx(50.0)
    assert value["operating_hours"] == pytest.approx(5 / 60)


def test_km_per_day_needs_a_day() -> None:
    """Six minutes say why there is no daily figure; a day of data gives distance / days."""
    short = _report(_route()).figure("km_per_day")
    assert short.value is None
    assert short.reason is not None
    assert short.reason.startswith("not enough data: the bus samples span 0.1 h")
    day = _payloads("bus-1", [_bus(T0, [_drive(0.0)], ("pack-1",)),
                              _bus(T0 + DAY, [_drive(200_000.0)], ("pack-1",))])  # fmt: skip
    assert _report(day, to_ms=T0 + 2 * DAY).figure("km_per_day").value == pytest.approx(200.0)


def test_stints_give_each_pack_its_period_and_figures() -> None:
    """pack-1 was in bus-1 for 5 minutes, with its own figures; pack-2 has none, and says why."""
    report = _report(_route())
    first, second = report.stints
    assert (first.bus, first.pack, first.from_ms, first.to_ms) == (
        "bus-1",
        "pack-1",
        T0,
        T0 + 5 * MIN,
    )
    figures = {f.key: f.value for f in first.figures}
    assert figures["samples"] == 5
    assert figures["energy_charged"] == pytest.approx(50.0)
    assert first.reason is None
    assert (second.pack, second.from_ms, second.to_ms) == ("pack-2", T0 + 5 * MIN, T0 + 7 * MIN)
    assert second.figures == ()
    assert second.reason == (
        "the evidence holds no messages of pack-2 naming bus-1 as its host in this stint"
    )
    assert json.loads(report.to_json())["stints"][1]["reason"] == second.reason


def test_stint_runs_follow_a_packs_host() -> None:
    """From a pack's side, its runs are the host its own messages name (no host: none)."""
    payloads = _payloads("pack-1", [
        _pack(T0, [pack_sample()], "bus-1"), _pack(T0 + MIN, [pack_sample()], None),
        _pack(T0 + 2 * MIN, [pack_sample()], "bus-2"),
    ])  # fmt: skip
    messages = decode_all(payloads).messages
    assert _stint_runs(messages, asset_id="pack-1", asset_kind="pack") == [
        ("bus-1", "pack-1", T0, T0 + MIN),
        ("bus-2", "pack-1", T0 + 2 * MIN, T0 + 3 * MIN),
    ]
    # A pack's report lists no stints: its own figures are the figures of its time in buses.
    assert _report(payloads, asset="pack-1", kind="pack").stints == ()


def test_short_drive_and_no_charge_say_why() -> None:
    """Too short a distance for a per-km figure; no session; no energy drawn."""
    payloads = _payloads("bus-1", [_bus(T0, [bus_sample(traction_power_w=0.0, aux_power_w=0.0)],
                                        ("pack-1",))])  # fmt: skip
    report = _report(payloads)
    reasons = {f.key: f.reason for f in report.figures if f.value is None}
    assert reasons["energy_per_km"] == (
        "not enough data: 0 km driven, less than the 1 km a per-km figure needs"
    )
    assert reasons["auxiliary_share"] == ("no net energy drawn from the pack outside charging")
    assert reasons["charging_energy"] == "no charging session in the period"


def test_session_without_pack_samples() -> None:
    """A bus bundle without the installed pack's messages counts the session, not its energy."""
    bus_only = [p for p in _route() if p["dev"] == "bus-1"]
    report = _report(bus_only)
    assert report.figure("charging_sessions").value == 1
    assert report.figure("charging_energy").reason == (
        "the evidence holds no samples of the installed pack during any session"
    )


@st.composite
def fleets(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A bus and two packs with random samples, times (ties, gaps, huge spans) and pairings."""
    payloads: list[dict[str, Any]] = []
    for dev, kind in (("bus-a", "bus"), ("pack-a", "pack"), ("pack-b", "pack")):
        batches = []
        for _ in range(draw(st.integers(0 if kind == "pack" else 1, 5))):
            n = draw(st.integers(1, 4))
            t_ms = draw(st.sampled_from([0, 1, 60_000, DAY, 10**12, 2**62]))
            dt = draw(st.sampled_from([1000, 60_000]))
            if kind == "bus":
                samples: Sequence[BusSample | PackSample] = draw(
                    st.lists(bus_samples(), min_size=n, max_size=n)
                )
                packs = tuple(draw(st.lists(st.sampled_from(["pack-a", "pack-b"]), max_size=2,
                                            unique=True)))  # fmt: skip
                batches.append(
                    TelemetryBatch(
                        kind="bus", t_ms=t_ms, dt_ms=dt, samples=tuple(samples), packs=packs
                    )
                )
            else:
                samples = draw(st.lists(pack_samples(), min_size=n, max_size=n))
                host = draw(st.sampled_from([None, "bus-a", "bus-b"]))
                batches.append(
                    TelemetryBatch(
                        kind="pack", t_ms=t_ms, dt_ms=dt, samples=tuple(samples), host=host
                    )
                )
        payloads += _payloads(dev, batches)
    return payloads


@settings(max_examples=60, deadline=None)
@given(payloads=fleets(), kind=st.sampled_from(["bus", "pack"]))
def test_bus_and_stint_figures_never_raise(payloads: list[dict[str, Any]], kind: str) -> None:
    """Any series: every figure has a finite value or a reason, and the JSON is valid."""
    asset = "bus-a" if kind == "bus" else "pack-a"
    report = compute_report(payloads, asset_id=asset, asset_kind=kind, from_ms=0,
                            to_ms=2**63 - 1, params=ReportParams())  # fmt: skip
    figures = [*report.figures, *(f for s in report.stints for f in s.figures)]
    for figure in figures:
        if figure.value is None:
            assert figure.reason, figure.key
        elif isinstance(figure.value, float):
            assert math.isfinite(figure.value), figure.key
    for stint in report.stints:
        assert stint.from_ms < stint.to_ms
        assert bool(stint.figures) != bool(stint.reason)
    json.loads(report.to_json())


def test_peak_discharge_of_a_pack_that_only_charged_is_zero() -> None:
    """The largest discharging current of a period of charging alone is 0, not a charge."""
    payloads = _payloads("pack-1", [_pack(T0, [pack_sample(current_a=-120.0)] * 2, "bus-1")])
    rated = ReportParams(rated_capacity_ah=560.0)
    report = compute_report(payloads, asset_id="pack-1", asset_kind="pack", from_ms=T0,
                            to_ms=T0 + MIN, params=rated)  # fmt: skip
    assert report.figure("peak_discharge_c_rate").value == 0.0
    assert report.figure("peak_charge_c_rate").value == pytest.approx(120 / 560)
