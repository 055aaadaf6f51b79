"""BMS frames on python-can's virtual bus decode into pack samples with the shipped DBC."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import can
import pytest

from firmware_sim.agent.batcher import Reading
from firmware_sim.agent.can_source import CanSource, CanSourceError, frames_for, load_dbc
from firmware_sim.agent.source import SourceError, SteadySource
from ledger.telemetry import PackSample

REPO = Path(__file__).resolve().parents[2]
DBC = REPO / "configs" / "can" / "voltproof_bms.dbc"
_channels = itertools.count()


@pytest.fixture
def buses() -> Iterator[tuple[can.BusABC, can.BusABC]]:
    """A BMS-side and an agent-side bus on one fresh virtual channel."""
    channel = f"voltproof-test-{next(_channels)}"
    bms = can.Bus(interface="virtual", channel=channel)
    agent = can.Bus(interface="virtual", channel=channel)
    yield bms, agent
    bms.shutdown()
    agent.shutdown()


def _deliver(source: CanSource, bms: can.BusABC, agent: can.BusABC, sample: PackSample) -> None:
    for frame in frames_for(source.db, sample):
        bms.send(frame)
        received = agent.recv(timeout=1)
        assert received is not None
        source.on_frame(received)


def _sample() -> PackSample:
    sample = SteadySource(kind="pack", alarms={0: 3}).read(0).sample
    assert isinstance(sample, PackSample)
    return sample


def test_frames_decode_to_the_sample(buses: tuple[can.BusABC, can.BusABC]) -> None:
    """Every signal survives the trip over the virtual bus at its DBC resolution."""
    bms, agent = buses
    source = CanSource(bus=agent, db=load_dbc(DBC), host="bus-1")
    sample = _sample()
    _deliver(source, bms, agent, sample)
    reading = source.read(round(agent_time_ms()))
    got = reading.sample
    assert isinstance(got, PackSample)
    assert reading.host == "bus-1"
    assert got.alarm_level == 3
    assert got.alarm_flags == sample.alarm_flags
    assert got.voltage_v == pytest.approx(sample.voltage_v, abs=0.05)
    assert got.cell_v_min == pytest.approx(sample.cell_v_min, abs=5e-4)
    assert got.insulation_ohm == pytest.approx(sample.insulation_ohm)
    assert got.energy_in_wh == sample.energy_in_wh


def agent_time_ms() -> float:
    """Now in Unix ms (virtual-bus frames carry wall-clock timestamps)."""
    return time.time() * 1000


def test_missing_message_is_named(buses: tuple[can.BusABC, can.BusABC]) -> None:
    """Before every BMS message was seen, read() says which one is missing."""
    _, agent = buses
    source = CanSource(bus=agent, db=load_dbc(DBC))
    with pytest.raises(SourceError, match="no BMS_PackStatus frame received yet"):
        source.read(0)


def test_stale_data_is_refused(buses: tuple[can.BusABC, can.BusABC]) -> None:
    """Data older than stale_after_ms is not sampled."""
    bms, agent = buses
    source = CanSource(bus=agent, db=load_dbc(DBC), stale_after_ms=1000)
    _deliver(source, bms, agent, _sample())
    with pytest.raises(SourceError, match="ms old"):
        source.read(round(agent_time_ms()) + 60_000)


def test_unknown_and_short_frames(buses: tuple[can.BusABC, can.BusABC]) -> None:
    """Frames outside the DBC are ignored; undecodable ones are counted."""
    _, agent = buses
    source = CanSource(bus=agent, db=load_dbc(DBC))
    source.on_frame(can.Message(arbitration_id=0x123, data=b"\x00" * 8, is_extended_id=False))
    source.on_frame(can.Message(arbitration_id=0x400, data=b"\x00", is_extended_id=False))
    assert source.decode_errors == 1


def _read_when_received(source: CanSource, *, within_s: float = 5.0) -> Reading:
    """The first complete reading once the receiving thread has delivered every message."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return source.read(round(agent_time_ms()))
        except SourceError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)  # waits on python-can's receiving thread, not on wall-clock data


def test_open_runs_the_notifier() -> None:
    """open() starts receiving on the named bus; close() stops it."""
    bms = can.Bus(interface="virtual", channel="voltproof-open")
    try:
        source = CanSource.open(interface="virtual", channel="voltproof-open", dbc_file=DBC)
        (notifier,) = can.Notifier.find_instances(source.bus)  # registered until stopped
        sample = _sample()
        frames = frames_for(source.db, sample)
        for frame in frames:
            bms.send(frame)
        got = _read_when_received(source).sample
        assert isinstance(got, PackSample)
        assert got.alarm_level == sample.alarm_level
        assert got.energy_in_wh == sample.energy_in_wh

        source.close()
        assert notifier.stopped
        assert can.Notifier.find_instances(source.bus) == ()
        with pytest.raises(can.CanOperationError, match="closed bus"):
            source.bus.send(frames[0])
    finally:
        bms.shutdown()


def test_missing_dbc_is_refused(tmp_path: Path) -> None:
    """A DBC path that does not exist is a CanSourceError."""
    with pytest.raises(CanSourceError, match="cannot load DBC"):
        load_dbc(tmp_path / "none.dbc")


def test_unknown_interface_is_refused() -> None:
    """A python-can interface that does not exist is a CanSourceError."""
    with pytest.raises(CanSourceError, match="cannot open CAN"):
        CanSource.open(interface="no-such-interface", channel="x", dbc_file=DBC)
