"""GB/T 32960 terminals (the independent rtm-con encoder) over real TCP to the real gateway."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rtm_con import msg_checked

from firmware_sim.agent.backoff import Backoff
from firmware_sim.gbt32960.encode import TerminalKey
from firmware_sim.gbt32960.terminal import Terminal
from gateway.app import Gateway
from gateway.config import GbtSettings
from gateway.gbt32960 import GbtListener
from gateway.registry import Registry
from gateway.store import SqliteReader, SqliteStore, open_reader
from ledger.gbt32960 import decode_envelope, parse_frame
from ledger.keys import load_key_file
from ledger.note import verifier_key
from tests.support import gbt_terminal as terminal
from tests.support.cli_process import run_voltproof as _voltproof
from tests.support.gateway_world import Deployment
from tests.support.gbt_world import TerminalConnection, gbt_deployment
from voltproof.broker import MosquittoBroker

pytestmark = pytest.mark.integration

VIN_2016 = "LZYTBGBW5M1000016"
VIN_2025 = "LZYTBGBW5M1000025"
UNKNOWN = "LZYTBGBW5M1999999"
KEY = terminal.Sm2Key.generate()


def _ack(answer: bytes) -> str:
    """The answer flag's name as the independent decoder reads it."""
    return str(msg_checked.parse(answer).ack)


def _deployment(workdir: Path, broker: MosquittoBroker) -> Deployment:
    return gbt_deployment(
        workdir, broker, {VIN_2016: terminal.Sm2Key.generate().public, VIN_2025: KEY.public}
    )


async def _run(deployment: Deployment, body: object) -> Gateway:
    gateway = Gateway(deployment.settings)
    task = asyncio.create_task(gateway.run(install_signal_handlers=False))
    await asyncio.wait_for(gateway.started.wait(), 20)
    try:
        assert gateway.runtime is not None
        assert gateway.runtime.gbt32960 is not None
        assert callable(body)
        await body(*gateway.runtime.gbt32960.address)
    finally:
        gateway.request_stop()
        await asyncio.wait_for(task, 30)
    return gateway


INVALID_SOC = 255
"""GB/T 32960's "invalid" state of charge byte."""


def _reading(k: int) -> terminal.Reading:
    """Reading ``k`` of a run: driving and discharging, then (from 15) parked and charging;
    a level-2 alarm (temperature difference) at 7; at 12 a level-3 high temperature (bit 1)
    in a frame whose state of charge is marked invalid (0xFF), as in a fault: no pack sample,
    but the alarm must still be recorded. Distinct cell voltages and probe temperatures, so
    the extremes' positions are unambiguous."""
    charging = k >= 15
    level, bits = {7: (2, (0,)), 12: (3, (1,))}.get(k, (0, ()))
    return terminal.Reading(
        at=terminal.at(k), speed_kmh=0.0 if charging else 10.0 + k,
        soc=INVALID_SOC if k == 12 else 60 + k,
        voltage_v=600.0 + k / 10, current_a=-120.5 + k if charging else 80.4 - k,
        insulation_kohm=4000 + 10 * k, alarm_level=level, alarm_bits=bits,
        charge_state="parking_charging" if charging else "uncharged",
        cell_volts=((3.301 + k / 1000, 3.322, 3.287 - k / 1000, 3.310),),
        probe_temps=((20 + k, 26, 18 - k % 3),),
    )  # fmt: skip


def _pack_sample(reading: terminal.Reading) -> dict[str, float]:
    """What the stored pack sample must hold for ``reading`` (in the units of the columns)."""
    volts = [v for row in reading.cell_volts for v in row]
    temps = [t for row in reading.probe_temps for t in row]
    return {
        "voltage_v": reading.voltage_v, "current_a": reading.current_a, "soc": reading.soc / 100,
        "cell_v_max": max(volts), "cell_v_max_pos": volts.index(max(volts)) + 1,
        "cell_v_min": min(volts), "cell_v_min_pos": volts.index(min(volts)) + 1,
        "temp_max_c": max(temps), "temp_max_pos": temps.index(max(temps)) + 1,
        "temp_min_c": min(temps), "temp_min_pos": temps.index(min(temps)) + 1,
        "insulation_ohm": reading.insulation_kohm * 1000, "alarm_level": reading.alarm_level,
        "alarm_flags": sum(1 << bit for bit in reading.alarm_bits),
        "charge_state": 1 if reading.charge_state == "parking_charging" else 0,
    }  # fmt: skip


async def _check_pack_samples(
    reader: SqliteReader, vin: str, readings: list[terminal.Reading]
) -> None:
    """The stored pack samples of ``vin`` are, frame by frame, what the encoder was given,
    and its alarms those of the frames' alarm levels."""
    rows = await reader.series("pack", vin, t_from=0, t_to=2**62)
    whole = [r for r in readings if r.soc != INVALID_SOC]
    assert [row["t_ms"] for row in rows] == [int(r.at.timestamp() * 1000) for r in whole]
    for row, reading in zip(rows, whole, strict=True):
        want = _pack_sample(reading)
        assert {name: row[name] for name in want} == pytest.approx(want), reading.at
    bus = await reader.series("bus", vin, t_from=0, t_to=2**62)
    assert len(bus) == len(readings)
    assert {row["leaf_index"] for row in rows} <= {row["leaf_index"] for row in bus}
    alarms = await reader.alarms(device_id=vin, limit=100)
    assert sorted((a.t_ms, a.level, a.flags) for a in alarms) == sorted(
        (int(r.at.timestamp() * 1000), r.alarm_level, _pack_sample(r)["alarm_flags"])
        for r in readings
        if r.alarm_level > 0
    )


def test_2016_terminal_login_run_disconnect_reissue_logout(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    """Login, 20 real-time frames, a disconnect, reissue of 5, logout: every frame answered
    0x01 after it is logged, the leaves hold the frames byte-exact on one gateway chain, and
    the stored bus and pack samples (and the alarm) equal what the encoder was given."""
    readings = [_reading(k) for k in range(25)]
    sent: list[bytes] = []

    async def body(host: str, port: int) -> None:
        async with await TerminalConnection.open(host, port) as link:
            assert _ack(await link.ask(terminal.login(2016, VIN_2016, terminal.at(0)))) == "ok"
            for reading in readings[:20]:
                frame = terminal.realtime(2016, VIN_2016, reading)
                sent.append(frame)
                answer = await link.ask(frame)
                assert _ack(answer) == "ok"
                assert answer[24:30] == frame[24:30]  # the answer carries the frame's time
            assert _ack(await link.ask(terminal.heartbeat(2016, VIN_2016))) == "ok"
            clock = await link.ask(terminal.time_sync(2016, VIN_2016))
            assert _ack(clock) == "ok"
            assert len(clock) == 24 + 6 + 1
        async with await TerminalConnection.open(host, port) as link:
            assert _ack(await link.ask(terminal.login(2016, VIN_2016, terminal.at(30), serial=2)))
            for reading in readings[20:]:
                frame = terminal.realtime(2016, VIN_2016, reading, reissue=True)
                sent.append(frame)
                assert _ack(await link.ask(frame)) == "ok"
            assert _ack(await link.ask(sent[-1])) == "ok"  # a resend: answered, not re-logged
            ahead = terminal.realtime(
                2016, VIN_2016, terminal.Reading(at=datetime.now(UTC) + timedelta(days=2))
            )
            assert _ack(await link.ask(ahead)) == "nok"  # dated two days ahead: refused
            assert _ack(await link.ask(terminal.logout(2016, VIN_2016, terminal.at(40)))) == "ok"

    asyncio.run(_run(_deployment(tmp_path, mosquitto), body))

    async def check() -> None:
        async with await open_reader(tmp_path / "gateway" / "gateway.db") as reader:
            leaves = await reader.device_leaves(VIN_2016)
            assert [leaf.seq for leaf in leaves] == list(range(25))
            envelopes = [decode_envelope(leaf.cose) for leaf in leaves]
            assert [e.frame.raw for e in envelopes] == sent
            assert [leaf.historical for leaf in leaves] == [False] * 20 + [True] * 5
            assert await reader.chain_gaps(VIN_2016) == []
            counts = {c.reason: c.total for c in await reader.quarantine_counts()}
            assert counts == {"gbt_future_timestamp": 1}
            rows = await reader.series("bus", VIN_2016, t_from=0, t_to=2**62)
            assert len(rows) == 25
            assert [round(row["speed_mps"] * 3.6, 1) for row in rows] == [
                r.speed_kmh for r in readings
            ]
            assert rows[0]["odometer_m"] == pytest.approx(12_345_600)
            await _check_pack_samples(reader, VIN_2016, readings)

    asyncio.run(check())
    for command in (["gateway", "check"], ["audit"]):
        done = _voltproof(*command, "--config", str(tmp_path / "gateway.toml"))
        assert done.returncode == 0, done.stdout + done.stderr


def test_both_editions_stream_and_each_bus_bundle_verifies(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    """A 2016 and a 2025 terminal stream at once (the 2025 one with a reissue after a
    reconnect); the gateway logs, checkpoints and anchors; ``voltproof bundle`` builds a v2
    bundle per bus and ``voltproof verify`` exits 0 for each, the 2016 frames labelled
    received-only and the 2025 frames signed by the terminal (SM2 checked offline). Each
    bus's pack samples (extremes from the 2016 extreme-values unit, derived from the cell
    voltages and probe temperatures in 2025) equal what the encoder was given."""
    frames = 8
    readings = [replace(_reading(k), at=terminal.at(10 * k)) for k in range(frames)]

    async def stream(host: str, port: int, edition: int, vin: str) -> None:
        key = KEY if edition == 2025 else None
        async with await TerminalConnection.open(host, port) as link:
            assert _ack(await link.ask(terminal.login(edition, vin, terminal.at(0)))) == "ok"
            for reading in readings[:-2]:
                assert _ack(await link.ask(terminal.realtime(edition, vin, reading, key=key))) == (
                    "ok"
                )
        async with await TerminalConnection.open(host, port) as link:
            for reading in readings[-2:]:
                frame = terminal.realtime(edition, vin, reading, key=key, reissue=True)
                assert _ack(await link.ask(frame)) == "ok"

    async def body(host: str, port: int) -> None:
        await asyncio.gather(stream(host, port, 2016, VIN_2016), stream(host, port, 2025, VIN_2025))

    asyncio.run(_run(_deployment(tmp_path, mosquitto), body))

    async def check() -> None:
        async with await open_reader(tmp_path / "gateway" / "gateway.db") as reader:
            for vin in (VIN_2016, VIN_2025):
                await _check_pack_samples(reader, vin, readings)

    asyncio.run(check())
    config = str(tmp_path / "gateway.toml")
    export = tmp_path / "anchors.json"
    done = _voltproof("anchors", "export", "--config", config, "--out", str(export))
    assert done.returncode == 0, done.stderr
    key = load_key_file(tmp_path / "keys" / "gateway.key")
    gateway_key = verifier_key(key.name, key.public_key)
    for vin, label in ((VIN_2016, "received-only"), (VIN_2025, "signed-by-terminal")):
        bundle = tmp_path / f"{vin}.bundle"
        built = _voltproof("bundle", "--config", config, "--asset", vin, "--out", str(bundle))
        assert built.returncode == 0, built.stdout + built.stderr
        verified = _voltproof("verify", str(bundle), "--gateway-key", gateway_key, "--anchors",
                              str(export))  # fmt: skip
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert f"evidence:    {frames} {label}" in verified.stdout
        assert ("messages received-only" in verified.stdout) == (vin == VIN_2016)


def test_cli_enrols_a_terminal_by_vin(tmp_path: Path, mosquitto: MosquittoBroker) -> None:
    """voltproof devices enroll --vin ... logs the terminal; wrong input is a clear error."""
    deployment = gbt_deployment(tmp_path, mosquitto, {})
    config = str(deployment.config)
    key = terminal.Sm2Key.generate().public.hex()
    base = ["devices", "--config", config, "enroll", "--vin", VIN_2016]
    done = _voltproof(*base, "--sm2-public-key", key, "--chip-id", "SE-0001", "--kind", "bus",
                      "--fleet", "fleet-a")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"enrolled {VIN_2016} (bus" in done.stdout
    listed = _voltproof("devices", "--config", config, "list", "--json")
    assert VIN_2016 in listed.stdout
    signed_only = _voltproof("devices", "--config", config, "enroll", "--vin", VIN_2025,
                             "--sm2-public-key", key, "--chip-id", "SE-0002", "--edition", "2025",
                             "--kind", "bus", "--fleet", "fleet-a")  # fmt: skip
    assert signed_only.returncode == 0, signed_only.stderr
    stray = _voltproof("devices", "--config", config, "enroll", "--id", "bus-9", "--edition",
                       "2025", "--kind", "bus", "--fleet", "fleet-a")  # fmt: skip
    assert stray.returncode == 2
    assert "go with --vin" in stray.stderr
    for extra, code, message in (
        (["--sm2-public-key", "04" + "11" * 64, "--chip-id", "x", "--kind", "bus",
          "--fleet", "fleet-a"], 1, "not a point"),
        (["--sm2-public-key", "zz", "--chip-id", "x", "--kind", "bus", "--fleet", "fleet-a"],
         1, "not hex"),
        (["--sm2-public-key", key, "--chip-id", "x", "--kind", "pack", "--fleet", "fleet-a"],
         2, "--kind bus"),
        (["--chip-id", "x", "--kind", "bus", "--fleet", "fleet-a"], 1, "--sm2-public-key"),
    ):  # fmt: skip
        refused = _voltproof(
            "devices", "--config", config, "enroll", "--vin", "LZYTBGBW5M1000099", *extra
        )
        assert refused.returncode == code, refused.stderr
        assert message in refused.stderr
        assert "Traceback" not in refused.stderr


def test_2025_signatures_and_bad_frames(tmp_path: Path, mosquitto: MosquittoBroker) -> None:
    """2025 frames verify against the enrolled SM2 key; a bad signature, an unknown VIN, a
    bad check code, a frame of the other edition and a truncated frame are each refused with
    the standard's answer and quarantined, without disturbing the other connection."""

    async def body(host: str, port: int) -> None:
        good = TerminalConnection.open(host, port)
        async with await good as link, await TerminalConnection.open(host, port) as bad:
            assert _ack(await link.ask(terminal.login(2025, VIN_2025, terminal.at(0)))) == "ok"
            signed = terminal.realtime(2025, VIN_2025, terminal.Reading(at=terminal.at(1)), key=KEY)
            assert _ack(await link.ask(signed)) == "ok"
            tampered = terminal.realtime(
                2025, VIN_2025, terminal.Reading(at=terminal.at(2)), key=KEY, tamper=True
            )
            assert _ack(await bad.ask(tampered)) == "signature_invalid"
            other_key = terminal.realtime(
                2025, VIN_2025, terminal.Reading(at=terminal.at(3)), key=terminal.Sm2Key.generate()
            )
            assert _ack(await bad.ask(other_key)) == "signature_invalid"
            assert _ack(await bad.ask(terminal.login(2025, UNKNOWN, terminal.at(0)))) == (
                "vin_unkown"
            )
            broken = bytearray(signed)
            broken[-1] ^= 0x55
            assert _ack(await bad.ask(bytes(broken))) == "structure_invalid"
            broken_2016 = bytearray(terminal.heartbeat(2016, VIN_2016))
            broken_2016[-1] ^= 0x55
            assert _ack(await bad.ask(bytes(broken_2016))) == "nok"
            # a 2025 frame ($$) carrying a 2016 data unit: no signature block, other layout
            other_edition = (
                b"$$" + terminal.realtime(2016, VIN_2025, terminal.Reading(at=terminal.at(4)))[2:]
            )
            assert parse_frame(other_edition).edition == 2025
            assert _ack(await bad.ask(other_edition)) in {"signature_invalid", "structure_invalid"}
            # a frame cut short, then the stream ends: that connection closes, the other works
            await bad.send(signed[:40])
            bad.writer.write_eof()
            assert await bad.closed_by_peer()
            # bytes that are no frame (an HTTP request; a length beyond 65531): closed too
            for junk in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", signed[:22] + b"\xff\xff"):
                async with await TerminalConnection.open(host, port) as stray:
                    await stray.send(junk)
                    assert await stray.closed_by_peer()
            again = terminal.realtime(2025, VIN_2025, terminal.Reading(at=terminal.at(5)), key=KEY)
            assert _ack(await link.ask(again)) == "ok"
            # a revocation (here by another store connection) applies from the next frame
            async with await SqliteStore.open(deployment.settings.db_path) as store:
                operator = load_key_file(deployment.settings.operator_key_file)
                await Registry(store=store, operator=operator).revoke(VIN_2025)
            late = terminal.realtime(2025, VIN_2025, terminal.Reading(at=terminal.at(6)), key=KEY)
            assert _ack(await link.ask(late)) == "vin_unkown"

    deployment = _deployment(tmp_path, mosquitto)
    asyncio.run(_run(deployment, body))

    async def check() -> None:
        async with await open_reader(tmp_path / "gateway" / "gateway.db") as reader:
            leaves = await reader.device_leaves(VIN_2025)
            assert [leaf.seq for leaf in leaves] == [0, 1]
            counts = {c.reason: c.total for c in await reader.quarantine_counts()}
            assert counts["gbt_bad_signature"] >= 2
            assert counts["gbt_unknown_vin"] == 2
            assert counts["gbt_bad_checksum"] == 2
            assert counts["gbt_truncated"] == 1
            assert counts["gbt_unframed"] == 2

    asyncio.run(check())


def test_sm2_verification_survives_killed_workers(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    """SM2 is verified in worker processes, off the event loop. Kill them all: the next 2025
    frame is verified by a new pool (logged, answered ok), a tampered one is still refused."""
    deployment = _deployment(tmp_path, mosquitto)

    async def main() -> None:
        gateway = Gateway(deployment.settings)
        task = asyncio.create_task(gateway.run(install_signal_handlers=False))
        await asyncio.wait_for(gateway.started.wait(), 20)
        try:
            assert gateway.runtime is not None
            listener = gateway.runtime.gbt32960
            assert listener is not None
            assert listener.sm2_worker_pids() == []
            async with await TerminalConnection.open(*listener.address) as link:
                assert _ack(await link.ask(terminal.login(2025, VIN_2025, terminal.at(0)))) == "ok"
                first = terminal.realtime(2025, VIN_2025, terminal.Reading(at=terminal.at(1)),
                                          key=KEY)  # fmt: skip
                assert _ack(await link.ask(first)) == "ok"
                killed = listener.sm2_worker_pids()
                assert killed
                for pid in killed:
                    os.kill(pid, signal.SIGKILL)
                second = terminal.realtime(2025, VIN_2025, terminal.Reading(at=terminal.at(2)),
                                           key=KEY)  # fmt: skip
                assert _ack(await link.ask(second)) == "ok"
                assert not set(listener.sm2_worker_pids()) & set(killed)
                tampered = terminal.realtime(
                    2025, VIN_2025, terminal.Reading(at=terminal.at(3)), key=KEY, tamper=True
                )
                assert _ack(await link.ask(tampered)) == "signature_invalid"
        finally:
            gateway.request_stop()
            await asyncio.wait_for(task, 30)

    asyncio.run(main())

    async def check() -> None:
        async with await open_reader(tmp_path / "gateway" / "gateway.db") as reader:
            assert [leaf.seq for leaf in await reader.device_leaves(VIN_2025)] == [0, 1]
            counts = {c.reason: c.total for c in await reader.quarantine_counts()}
            assert counts == {"gbt_bad_signature": 1}

    asyncio.run(check())


def test_connections_beyond_the_bound_are_closed(tmp_path: Path) -> None:
    """With max_connections = 1, a second terminal is disconnected while the first works."""

    async def run() -> None:
        async with await SqliteStore.open(tmp_path / "gateway.db") as store:
            settings = GbtSettings(enabled=True, host="127.0.0.1", port=0, max_connections=1)
            async with GbtListener(
                settings=settings, store=store, clock_ms=lambda: 1_796_536_800_000
            ) as gateway:
                host, port = gateway.address
                async with await TerminalConnection.open(host, port) as first:
                    heartbeat = terminal.heartbeat(2016, VIN_2016)
                    assert _ack(await first.ask(heartbeat)) == "vin_unkown"  # nobody enrolled
                    async with await TerminalConnection.open(host, port) as second:
                        assert await second.closed_by_peer()
                    assert _ack(await first.ask(heartbeat)) == "vin_unkown"

    asyncio.run(run())


def test_demo_terminal_retries_on_the_one_backoff(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The demo's terminal retries a listener that went away after the delays of the one
    jittered backoff (a seeded rng: the same delays as a twin schedule drawn from the same
    seed), and starts over from the first delay once a login is answered again."""
    caplog.set_level(logging.INFO, logger="firmware_sim.gbt32960.terminal")
    twin = Backoff(base_s=0.02, cap_s=0.08, rng=random.Random(5))
    device = Terminal(
        vin=UNKNOWN, edition=2016, key=TerminalKey.generate(), host="127.0.0.1", port=0,
        period_s=0.2, backoff=Backoff(base_s=0.02, cap_s=0.08, rng=random.Random(5)),
    )  # fmt: skip

    def retries() -> list[float]:
        return [
            record.__dict__["retry_in_s"]
            for record in caplog.records
            if record.getMessage() == "gbt32960_terminal_disconnected"
        ]

    async def until(predicate: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 30
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {retries()}"
            await asyncio.sleep(0.02)

    def clock() -> int:
        return 1_796_536_800_000

    async def run() -> None:
        stop = asyncio.Event()
        async with await SqliteStore.open(tmp_path / "gateway.db") as store:
            settings = GbtSettings(enabled=True, host="127.0.0.1", port=0)
            async with GbtListener(settings=settings, store=store, clock_ms=clock) as first:
                device.port = first.address[1]
                task = asyncio.create_task(device.run(stop))
                await until(lambda: device.state.refused >= 1, "the login answer")
            await until(lambda: len(retries()) >= 6, "six retries")
            settings = settings.model_copy(update={"port": device.port})
            async with GbtListener(settings=settings, store=store, clock_ms=clock):
                await until(lambda: device.backoff.attempt == 0, "a login answered again")
                outage = retries()
            await until(lambda: len(retries()) > len(outage), "the next retry")
            stop.set()
            await asyncio.wait_for(task, 30)
        assert outage == [round(twin.next_delay(), 3) for _ in outage]
        assert max(outage) >= 0.04  # the delays grew past the first two retries
        twin.reset()
        assert retries()[len(outage)] == round(twin.next_delay(), 3)

    asyncio.run(run())


def test_close_ends_a_connection_whose_frame_arrives_in_the_same_tick(tmp_path: Path) -> None:
    """close() returns even when it cancels a connection in the very loop tick its read of a
    frame completes. Python 3.11's asyncio.wait_for drops a cancellation that lands then
    (python/cpython#86296, fixed in 3.12): the connection went on being served, and close()
    waited for it as long as the terminal kept sending. Every tick offset is tried."""

    def clock() -> int:
        return 1_796_536_800_000

    async def close_after(ticks: int) -> None:
        # a store per listener: a cancelled connection may leave its store mid-transaction,
        # as a shutdown does (the store closes next)
        async with await SqliteStore.open(tmp_path / f"gateway-{ticks}.db") as store:
            settings = GbtSettings(enabled=True, host="127.0.0.1", port=0)
            listener = GbtListener(settings=settings, store=store, clock_ms=clock)
            await listener.__aenter__()
            reader, writer = await asyncio.open_connection(*listener.address)
            try:
                writer.write(terminal.heartbeat(2016, VIN_2016))
                header = await reader.readexactly(24)  # answered: the listener reads again
                await reader.readexactly(int.from_bytes(header[22:24], "big") + 1)
                writer.write(terminal.heartbeat(2016, VIN_2016))
                for _ in range(ticks):
                    await asyncio.sleep(0)
                closing = asyncio.create_task(listener.close())
                done, _ = await asyncio.wait({closing}, timeout=10)
                assert closing in done, f"close() still waits, {ticks} ticks after the frame"
            finally:
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()

    async def run() -> None:
        for ticks in range(16):
            await close_after(ticks)

    asyncio.run(run())
