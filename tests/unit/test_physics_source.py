"""Sample sources: what edge agents get, deterministic and valid on the wire."""

from __future__ import annotations

import itertools

import pytest

from firmware_sim.physics.faults import InsulationFault, InternalShort
from firmware_sim.physics.source import (
    BusSource,
    PackSource,
    PackUnit,
    SampleSource,
    build_vehicle,
)
from ledger.telemetry import PackSample, decode_batch, encode_batch

T0 = 1_767_225_600_000  # 2026-01-01 08:00 local (UTC+8)


def test_sources_satisfy_the_protocol() -> None:
    """Both views are SampleSources with their kind and device id."""
    _, bus, pack = build_vehicle(bus_id="bus-7", pack_id="pack-7", seed=1, start_ms=T0)
    assert isinstance(bus, SampleSource)
    assert isinstance(pack, SampleSource)
    assert (bus.kind, bus.device_id, pack.kind, pack.device_id) == (
        "bus", "bus-7", "pack", "pack-7",
    )  # fmt: skip


def test_batches_encode_and_validate() -> None:
    """Every batch of an hour encodes and passes decode_batch's validation."""
    _, bus, pack = build_vehicle(bus_id="bus-7", pack_id="pack-7", seed=2, start_ms=T0)
    for k in range(360):
        for source in (bus, pack):
            batch = source.next_batch(T0 + k * 10_000, 10)
            assert batch.t_ms == T0 + k * 10_000
            decoded = decode_batch({"t": batch.t_ms, **encode_batch(batch)})
            assert decoded.kind == source.kind
            assert len(decoded.samples) == 10
    assert pack.next_batch(T0 + 3600_000, 1).host == "bus-7"
    assert bus.next_batch(T0 + 3600_000, 1).packs == ("pack-7",)


def test_deterministic_with_seed() -> None:
    """Two fleets built from the same seed produce identical batches."""
    runs = []
    for _ in range(2):
        _, bus, pack = build_vehicle(bus_id="b", pack_id="p", seed=3, start_ms=T0)
        runs.append([bus.next_batch(T0 + k * 30_000, 30) for k in range(40)]
                    + [pack.next_batch(T0 + k * 30_000, 30) for k in range(40)])  # fmt: skip
    assert runs[0] == runs[1]


def test_request_times_round_up_to_the_grid() -> None:
    """A request between grid points starts at the next one; skipped samples are dropped."""
    _, bus, _ = build_vehicle(bus_id="b", pack_id="p", seed=4, start_ms=T0)
    assert bus.next_batch(T0 + 1, 2).t_ms == T0 + 1000
    assert bus.next_batch(T0 + 60_000, 2).t_ms == T0 + 60_000


def test_already_taken_samples_are_refused() -> None:
    """Asking again for samples already handed out is an error, as is n < 1."""
    _, bus, _ = build_vehicle(bus_id="b", pack_id="p", seed=5, start_ms=T0)
    bus.next_samples(T0, 10)
    with pytest.raises(ValueError, match=f"samples at {T0 + 5000} were already taken"):
        bus.next_samples(T0 + 5000, 1)
    with pytest.raises(ValueError, match="n must be at least 1, not 0"):
        bus.next_samples(T0 + 20_000, 0)


def test_pack_swap_moves_identity() -> None:
    """A swap is an event on the bus and on both packs; the old pack rests on its shelf."""
    vehicle, bus, old = build_vehicle(bus_id="bus-1", pack_id="pack-a", seed=6, start_ms=T0)
    spare_unit = PackUnit(device_id="pack-b", seed=7, start_ms=T0)
    spare = PackSource(spare_unit)
    bus.next_batch(T0, 60)
    old.next_batch(T0, 60)
    vehicle.swap_pack(spare_unit)
    bus_batch = bus.next_batch(T0 + 60_000, 10)
    assert bus_batch.packs == ("pack-b",)
    assert [(e.kind, dict(e.data)) for e in bus_batch.events][:1] == [
        ("pack_swap", {"out": "pack-a", "in": "pack-b"})
    ]
    new_batch = spare.next_batch(T0 + 60_000, 10)
    assert new_batch.host == "bus-1"
    assert ("host", {"host": "bus-1"}) in [(e.kind, dict(e.data)) for e in new_batch.events]
    old_batch = old.next_batch(T0 + 60_000, 10)
    assert old_batch.host is None
    assert all(isinstance(s, PackSample) and abs(s.current_a) < 1e-9 for s in old_batch.samples)


def test_swap_refuses_installed_pack() -> None:
    """A pack installed in one bus cannot be installed in another."""
    first, _, _ = build_vehicle(bus_id="bus-1", pack_id="pack-a", seed=8, start_ms=T0)
    second, _, _ = build_vehicle(bus_id="bus-2", pack_id="pack-b", seed=9, start_ms=T0)
    with pytest.raises(ValueError, match="pack pack-b is installed in bus-2"):
        first.swap_pack(second.pack)


def test_swap_refuses_pack_off_the_grid() -> None:
    """A pack sampling between the bus's grid points cannot be installed."""
    vehicle, _, _ = build_vehicle(bus_id="bus-1", pack_id="pack-a", seed=8, start_ms=T0)
    spare = PackUnit(device_id="pack-b", seed=9, start_ms=T0 + 500)
    with pytest.raises(ValueError, match="pack pack-b samples off the bus's 1000 ms grid"):
        vehicle.swap_pack(spare)


def test_spare_ahead_of_the_bus_is_synchronised() -> None:
    """A spare pack that ran ahead on its shelf is installed once the bus catches up."""
    vehicle, bus, _ = build_vehicle(bus_id="bus-1", pack_id="pack-a", seed=8, start_ms=T0)
    spare_unit = PackUnit(device_id="pack-b", seed=9, start_ms=T0)
    PackSource(spare_unit).next_batch(T0, 95)
    vehicle.swap_pack(spare_unit)
    assert vehicle.t_ms == spare_unit.t_ms == T0 + 100_000
    batch = bus.next_batch(T0 + 100_000, 1)
    assert [e.kind for e in batch.events] == ["pack_swap"]


def test_internal_short_raises_level_four_with_pre_fault() -> None:
    """An injected internal short ends in a level-4 alarm with a pre_fault marker."""
    vehicle, _, pack = build_vehicle(bus_id="b", pack_id="p", seed=10, start_ms=T0)
    vehicle.pack.inject(InternalShort(element=42))
    kinds: list[tuple[str, int | str]] = []
    for k in range(60):
        batch = pack.next_batch(T0 + k * 60_000, 60)
        kinds += [(e.kind, e.data.get("lvl", "")) for e in batch.events]
        if ("alarm", 4) in kinds:
            break
    assert ("alarm", 4) in kinds
    assert ("pre_fault", 3) in kinds  # the burst starts when level 3 is first reached


def test_insulation_fault_alarms() -> None:
    """A 40 kOhm leak on a ~630 V pack is below 100 Ohm/V: level 3, insulation flag."""
    vehicle, _, pack = build_vehicle(bus_id="b", pack_id="p", seed=11, start_ms=T0)
    vehicle.pack.inject(InsulationFault(resistance_ohm=40_000.0))
    sample = pack.next_samples(T0, 5)[-1]
    assert isinstance(sample, PackSample)
    assert sample.insulation_ohm < 40_000.0
    assert sample.alarm_level == 3
    assert sample.alarm_flags & (1 << 11)
    vehicle.pack.inject(None)
    healthy = pack.next_samples(T0 + 10_000, 1)[0]
    assert isinstance(healthy, PackSample)
    assert healthy.insulation_ohm > 1e6


def test_bus_source_reports_bus_samples() -> None:
    """A BusSource serves the vehicle's BusSamples, not the pack's."""
    vehicle, _, _ = build_vehicle(bus_id="b", pack_id="p", seed=12, start_ms=T0)
    assert BusSource(vehicle).next_batch(T0, 3).kind == "bus"


def test_reported_soh_follows_accelerated_ageing_within_minutes() -> None:
    """With accelerated ageing the BMS's capacity SoH falls within minutes, never rising."""
    from firmware_sim.physics.pack import PackConfig

    _, _bus, pack = build_vehicle(
        bus_id="bus-a", pack_id="pack-a", seed=4, start_ms=T0,
        pack_config=PackConfig(ageing_accel=100_000.0),
    )  # fmt: skip
    soh = [
        sample.soh_capacity
        for k in range(30)
        for sample in pack.next_samples(T0 + k * 10_000, 10)
        if isinstance(sample, PackSample)
    ]
    assert len(soh) == 300
    assert all(later <= earlier for earlier, later in itertools.pairwise(soh))
    assert soh[-1] < soh[0] - 0.001  # five minutes at 100,000x: months of fade, visible
