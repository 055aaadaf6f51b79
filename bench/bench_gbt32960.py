"""GB/T 32960 terminals: cost per frame and frames/s per gateway process, against the native
COSE path measured in the same run.

- **per frame (CPU, one thread)**: ``parse_frame`` + ``decode_realtime`` + the bus block for a
  2016 frame; the same plus SM2/SM3 verification (gmssl, pure Python) for a 2025 frame; SM2
  verification alone; and a native message (10-sample pack telemetry, COSE_Sign1 Ed25519):
  strict decode, signature, ``decode_columns``.
- **through the listener**: one ``GbtListener`` on a real SQLite store (``synchronous=FULL``)
  in this process, ``--terminals`` TCP connections each sending pre-built frames one at a
  time and waiting for the answer, as a terminal does. Frames are group-committed (each is
  answered once the commit holding it is durable); the table says how many commits. CPU per
  frame is this process's CPU time (listener, store and the terminals' socket I/O) plus that
  of the listener's SM2 processes, per frame.
- **native pipeline**: ``gateway.pipeline.Pipeline`` on the same machine, batches of
  ``--batch`` (as ``bench.bench_pipeline``), messages/s and CPU per message.

    .venv/bin/python -m bench.bench_gbt32960 [--frames N] [--terminals T] [--batch B]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.bench_pipeline import make_messages
from firmware_sim.gbt32960 import encode
from gateway.config import GbtSettings
from gateway.gbt32960 import GbtListener
from gateway.pipeline import OutcomeKind, Pipeline
from gateway.registry import DeviceSpec, Registry
from gateway.store import SqliteStore
from gateway.verification import Incoming, Policy
from ledger import gbt32960 as gbt
from ledger.gbt32960.signature import DEFAULT_BACKEND, SM2_BACKENDS
from ledger.keys import SigningKey, generate_seed, public_key_from_seed
from ledger.message import decode_message
from ledger.telemetry import decode_columns
from tests.support.gateway_devices import FakeDevice

START_MS = 1_796_536_800_000


def _values(k: int) -> encode.Values:
    cells = tuple(3300 + (j * 7 + k) % 23 for j in range(192))
    return encode.Values(
        at_ms=START_MS + 10_000 * k, speed_dkmh=300 + k % 100, odometer_hm=1_000_000 + k,
        voltage_dv=6200, current_da=-450, soc_pct=70, insulation_kohm=4800,
        lat_udeg=31_230_416, lon_udeg=121_473_701, cell_mv=cells, probe_c=(28, 29, 30, 31) * 8,
    )  # fmt: skip


def _vin(edition: int, terminal: int) -> str:
    return f"LVPBENCH{edition}{terminal:05d}"


def _cpu_per_call(function: Callable[[], object], count: int) -> float:
    started = time.process_time()
    for _ in range(count):
        function()
    return (time.process_time() - started) / count


def per_frame_costs(frames: dict[int, list[bytes]], key: encode.TerminalKey) -> dict[str, float]:
    """Microseconds of CPU per frame for each decode path."""
    f16, f25 = frames[2016][0], frames[2025][0]
    record25 = gbt.decode_realtime(2025, gbt.parse_frame(f25).data)
    assert record25.signature is not None
    signature = record25.signature

    def gbt2016() -> None:
        record = gbt.decode_realtime(2016, gbt.parse_frame(f16).data)
        gbt.bus_telemetry(record)
        gbt.pack_telemetry(record)

    def gbt2025() -> None:
        record = gbt.decode_realtime(2025, gbt.parse_frame(f25).data)
        assert record.signature is not None
        gbt.verify_sm2(signature=record.signature, signed=record.signed, public_key=key.public)
        gbt.bus_telemetry(record)
        gbt.pack_telemetry(record)

    def sm2_only(backend: str) -> Callable[[], None]:
        def verify() -> None:
            gbt.verify_sm2(signature=signature, signed=record25.signed, public_key=key.public,
                           backend=backend)  # fmt: skip

        return verify

    fleet, incoming = make_messages(1, 1)
    cose, device_key = incoming[0].payload, fleet[0].public_key

    def native() -> None:
        message = decode_message(cose)
        message.verify_signature(device_key)
        decode_columns(message.payload)

    return {
        "GB/T 2016 frame: parse + decode + bus block": _cpu_per_call(gbt2016, 2000) * 1e6,
        f"GB/T 2025 frame: + SM2/SM3 verify ({DEFAULT_BACKEND})": (
            _cpu_per_call(gbt2025, 100) * 1e6
        ),
        **{
            f"SM2/SM3 verify alone ({backend})": _cpu_per_call(sm2_only(backend), 100) * 1e6
            for backend in SM2_BACKENDS
        },
        "native COSE message (10 samples): decode + Ed25519 + columns": (
            _cpu_per_call(native, 2000) * 1e6
        ),
    }


async def through_listener(
    folder: Path, edition: int, frames: dict[str, list[bytes]], key: encode.TerminalKey
) -> tuple[float, float, int, int]:
    """(frames/s, CPU us per frame, frames, commits) through one listener and a real store."""
    seed = generate_seed()
    operator = SigningKey(name="operator", seed=seed, public_key=public_key_from_seed(seed))
    async with await SqliteStore.open(folder / f"gbt{edition}.db") as store:
        await Registry(store=store, operator=operator).enroll([
            DeviceSpec(
                device_id=vin, kind="bus", fleet="bench", public_key=gbt.placeholder_key(vin),
                terminal=gbt.Terminal(vin=vin, chip="SE-BENCH", sm2=key.public),
            )
            for vin in frames
        ])  # fmt: skip
        settings = GbtSettings(enabled=True, host="127.0.0.1", port=0)
        async with GbtListener(
            settings=settings, store=store, clock_ms=lambda: time.time_ns() // 1_000_000
        ) as listener:
            host, port = listener.address

            async def terminal(sent: list[bytes]) -> None:
                reader, writer = await asyncio.open_connection(host, port)
                for frame in sent:
                    writer.write(frame)
                    await writer.drain()
                    header = await reader.readexactly(24)
                    answer = header + await reader.readexactly(
                        int.from_bytes(header[22:24], "big") + 1
                    )
                    assert answer[3] == 0x01, answer.hex()
                writer.close()

            # one frame per terminal first: the SM2 pool's processes start and import outside
            # the measurement
            await asyncio.gather(*(terminal(sent[:1]) for sent in frames.values()))
            workers = listener.sm2_worker_pids()
            commits = listener.stats.commits
            cpu, wall = time.process_time() + _cpu_of(workers), time.perf_counter()
            await asyncio.gather(*(terminal(sent[1:]) for sent in frames.values()))
            wall = time.perf_counter() - wall
            cpu = time.process_time() + _cpu_of(workers) - cpu
            commits = listener.stats.commits - commits
        total = sum(len(sent) - 1 for sent in frames.values())
        assert listener.stats.appended == total + len(frames)
    return total / wall, cpu / total * 1e6, total, commits


def _cpu_of(pids: list[int]) -> float:
    """CPU seconds (user + system) the live processes ``pids`` have used so far (Linux)."""
    ticks = 0
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
        fields = stat.rpartition(")")[2].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


async def run_native(folder: Path, fleet: list[FakeDevice], batches: list[list[Incoming]]) -> float:
    """Seconds to process every batch through the native pipeline (devices enrolled at the
    first message's time, so the enrolment-skew check accepts the pre-signed messages)."""
    seed = generate_seed()
    operator = SigningKey(name="operator", seed=seed, public_key=public_key_from_seed(seed))
    first_ms = min(int(decode_message(m.payload).payload["t"]) for b in batches for m in b)
    async with await SqliteStore.open(folder / "native.db") as store:
        registry = Registry(store=store, operator=operator, clock_ms=lambda: first_ms)
        await registry.enroll([d.spec() for d in fleet])
        pipeline = Pipeline(store=store, policy=Policy())
        started = time.perf_counter()
        for batch in batches:
            outcomes = await pipeline.process(batch)
            assert all(o.kind is OutcomeKind.ACCEPTED for o in outcomes), outcomes[0]
        return time.perf_counter() - started


def main() -> None:
    """Run every measurement and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=400, help="frames per edition")
    parser.add_argument("--terminals", type=int, default=8, help="concurrent connections")
    parser.add_argument("--batch", type=int, default=200, help="native pipeline batch")
    args = parser.parse_args()
    key = encode.TerminalKey.generate()
    per_terminal = max(1, args.frames // args.terminals)
    built: dict[int, dict[str, list[bytes]]] = {}
    for edition in (2016, 2025):
        built[edition] = {
            _vin(edition, t): [
                encode.realtime(edition, _vin(edition, t), _values(k), key=key)
                for k in range(per_terminal)
            ]
            for t in range(args.terminals)
        }
    first = {e: next(iter(built[e].values())) for e in built}
    print(f"# GB/T 32960 benchmark ({platform.python_implementation()} "
          f"{platform.python_version()}, {platform.machine()})")  # fmt: skip
    print("\n| per frame (CPU, one thread) | us |\n|---|---|")
    for name, micros in per_frame_costs(first, key).items():
        print(f"| {name} | {micros:,.0f} |")
    print(f"\n| one process, {args.terminals} terminals over TCP | frames/s | CPU us/frame |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for edition in (2016, 2025):
            rate, cpu, total, commits = asyncio.run(
                through_listener(folder, edition, built[edition], key)
            )
            print(f"| GB/T {edition} listener ({total} frames in {commits} group commits) | "
                  f"{rate:,.0f} | {cpu:,.0f} |")  # fmt: skip
        fleet, incoming = make_messages(args.terminals, args.frames)
        batches = [incoming[i : i + args.batch] for i in range(0, len(incoming), args.batch)]
        cpu = time.process_time()
        seconds = asyncio.run(run_native(folder, fleet, batches))
        cpu = time.process_time() - cpu
        print(f"| native COSE pipeline ({len(incoming)} messages x 10 samples, batches of "
              f"{args.batch}) | {len(incoming) / seconds:,.0f} | "
              f"{cpu / len(incoming) * 1e6:,.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
