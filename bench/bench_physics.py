"""Cost of the device physics per simulated device-second.

Run: ``.venv/bin/python bench/bench_physics.py [--seconds 3600]``. Prints microseconds per
device-second for a bus + pack vehicle (two devices), a pack on a shelf and a pack with
per-cell voltages, each as a ratio to encoding the same samples with
``ledger.telemetry.encode_batch`` (the work an agent does on them anyway), measured in the
same run. The fleet simulator's budget is ~100 us per device-second.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from firmware_sim.physics.pack import PackConfig
from firmware_sim.physics.source import PackSource, PackUnit, build_vehicle
from ledger.telemetry import TelemetryBatch, encode_batch

T0 = 1_767_225_600_000  # 08:00 local: buses in service
BATCH = 10


def timed(run: Callable[[], None]) -> float:
    """Seconds taken by ``run``."""
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=3600)
    seconds = parser.parse_args().seconds
    steps = seconds // BATCH
    batches: list[TelemetryBatch] = []

    def vehicle() -> None:
        _, bus, pack = build_vehicle(bus_id="bus-1", pack_id="pack-1", seed=1, start_ms=T0)
        for k in range(steps):
            batches.append(bus.next_batch(T0 + k * BATCH * 1000, BATCH))
            batches.append(pack.next_batch(T0 + k * BATCH * 1000, BATCH))

    def shelf(cells: bool) -> Callable[[], None]:
        def run() -> None:
            unit = PackUnit(device_id="p", seed=2, start_ms=T0, config=PackConfig(), cells=cells)
            source = PackSource(unit)
            for k in range(steps):
                source.next_batch(T0 + k * BATCH * 1000, BATCH)

        return run

    def encode() -> None:
        for batch in batches:
            encode_batch(batch)

    vehicle_s = timed(vehicle)
    encode_s = timed(encode)
    shelf_s = timed(shelf(cells=False))
    cells_s = timed(shelf(cells=True))
    device_seconds = steps * BATCH
    baseline = encode_s / (2 * device_seconds) * 1e6
    rows = [
        ("bus + pack vehicle (per device)", vehicle_s / (2 * device_seconds) * 1e6),
        ("pack on a shelf", shelf_s / device_seconds * 1e6),
        ("pack with 192 cell voltages", cells_s / device_seconds * 1e6),
        ("baseline: encode_batch (per device)", baseline),
    ]
    for name, micros in rows:
        print(f"{name:40s} {micros:8.1f} us/device-s   x{micros / baseline:5.1f} baseline")


if __name__ == "__main__":
    main()
