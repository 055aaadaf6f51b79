"""A simulated year of the demo's accelerated ageing against the published fade law.

Run: ``.venv/bin/python bench/bench_ageing.py [--accel 100000] [--seed 3]``.

The demo ages its packs 100,000 times faster than real time (``voltproof demo``,
``docs/simulation.md``, "Time acceleration"), so a year of ageing takes 5.3 wall-minutes of
samples. This runs the simulator (``firmware_sim.physics``: pack electrics, thermal, BMS and
the BLAST-Lite ageing model) for exactly one year of ageing time on three packs: one in a
bus on its route, one on the shelf (calendar ageing only), and, as the baseline measured in
the same run, the ageing model alone over one real (unaccelerated) year of one equivalent
full cycle a day at 25 degC. Each fade is compared with the published closed form of NREL's
BLAST-Lite law for large-format LFP (``Lfp_Gr_250AhPrismatic``, Gasper et al., J. Energy
Storage 73 (2023) 109042) at the run's own mean stressors: calendar
``kcal(T, soc) * days**0.526``; cycle ``kcyc * EFC**0.828`` with ``kcyc`` the law's rate
averaged over the ageing windows weighted by their throughput (how the model averages it).

Prints, per pack: days and equivalent full cycles seen by the law, simulated fade, the
closed form, and their ratio; the SoH the BMS puts on the wire; and the wall time. Exits 1
when a ratio is outside ``1 +/- --tolerance`` (default 3 %), so the figures in
``docs/benchmarks.md`` are checked each time it runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

from firmware_sim.physics import PackUnit, build_vehicle
from firmware_sim.physics.ageing import (
    PCAL,
    PCYC,
    SECONDS_PER_DAY,
    Ageing,
    calendar_rate,
    cycle_rate,
)
from firmware_sim.physics.pack import PackConfig
from firmware_sim.physics.source import PackSource
from ledger.telemetry import PackSample

T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC, 08:00 in Shenzhen: buses in service
BATCH = 10
MOVING_C = 0.02
"""Below this C-rate a window adds no cycle stress (the model's C/50 threshold)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """One pack's year: what the law saw, what it produced, what the closed form says."""

    name: str
    days: float
    efc: float
    simulated: float
    closed_form: float
    soh_wire: float | None
    wall_s: float

    @property
    def ratio(self) -> float:
        """Simulated fade / closed-form fade."""
        return self.simulated / self.closed_form


def run_pack(
    name: str, source: PackSource, ageing: Ageing, *, accel: float, capacity: float
) -> Result:
    """Sample ``source`` at 1 Hz until its ageing law has seen one year."""
    seconds = round(365 * SECONDS_PER_DAY / accel)
    start = time.perf_counter()
    samples: list[PackSample] = []
    for k in range(0, seconds, BATCH):
        batch = source.next_samples(T0 + k * 1000, min(BATCH, seconds - k))
        samples += [s for s in batch if isinstance(s, PackSample)]
    wall = time.perf_counter() - start
    temp = sum((s.temp_max_c + s.temp_min_c) / 2 for s in samples) / len(samples)
    soc = sum(s.soc for s in samples) / len(samples)
    socs = [s.soc for s in samples]
    dod = max(max(socs) - min(socs), 0.05)
    window = max(10, round(SECONDS_PER_DAY / accel))
    weighted = throughput = 0.0
    for at in range(0, len(samples), window):
        rates = [abs(s.current_a) / capacity for s in samples[at : at + window]]
        moving = [c for c in rates if c > MOVING_C]
        efc = sum(rates) / 3600 / 2
        if moving:
            weighted += cycle_rate(temp, dod, sum(moving) / len(moving)) * efc
            throughput += efc
    kcyc = weighted / throughput if throughput else 0.0
    expected = calendar_rate(temp, soc) * ageing.days**PCAL + kcyc * ageing.efc**PCYC
    return Result(name=name, days=ageing.days, efc=ageing.efc,
                  simulated=ageing.cal_loss + ageing.cyc_loss, closed_form=expected,
                  soh_wire=samples[-1].soh_capacity, wall_s=wall)  # fmt: skip


def run_baseline() -> Result:
    """The ageing law alone, one real year: C/4 discharge, rest, C/4 charge, rest, daily."""
    ageing = Ageing()
    capacity, soc, dt = 280.0, 1.0, 60.0
    socs: list[float] = []
    start = time.perf_counter()
    for _ in range(365):
        for c_rate, span in ((0.25, 4 * 3600), (0.0, 4 * 3600), (-0.25, 4 * 3600),
                             (0.0, 12 * 3600)):  # fmt: skip
            for _ in range(int(span / dt)):
                soc = min(1.0, max(0.0, soc - c_rate * dt / 3600))
                socs.append(soc)
                ageing.accumulate(dt_s=dt, temp_c=25.0, soc=soc, current_a=c_rate * capacity,
                                  capacity_ah=capacity)  # fmt: skip
    ageing.apply()
    wall = time.perf_counter() - start
    kcal = sum(calendar_rate(25.0, s) for s in socs) / len(socs)
    expected = kcal * ageing.days**PCAL + cycle_rate(25.0, 1.0, 0.25) * ageing.efc**PCYC
    return Result(name="baseline: law alone, real year, 1 EFC/day, 25 degC", days=ageing.days,
                  efc=ageing.efc, simulated=ageing.cal_loss + ageing.cyc_loss,
                  closed_form=expected, soh_wire=None, wall_s=wall)  # fmt: skip


def main() -> int:
    """Run the three years, print the table, fail outside the tolerance."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accel", type=float, default=100_000.0)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--tolerance", type=float, default=0.03)
    args = parser.parse_args()
    config = PackConfig(ageing_accel=args.accel)
    vehicle, _, in_bus = build_vehicle(bus_id="bus-1", pack_id="pack-1", seed=args.seed,
                                       start_ms=T0, pack_config=config)  # fmt: skip
    shelf_unit = PackUnit(device_id="pack-2", seed=args.seed + 2, start_ms=T0, config=config)
    results = [
        run_baseline(),
        run_pack(
            "demo: pack in a bus",
            in_bus,
            vehicle.pack.pack.ageing,
            accel=args.accel,
            capacity=config.capacity_ah,
        ),
        run_pack(
            "demo: spare on the shelf",
            PackSource(shelf_unit),
            shelf_unit.pack.ageing,
            accel=args.accel,
            capacity=config.capacity_ah,
        ),
    ]
    print(f"one year of ageing, accel {args.accel:g} (seed {args.seed})")
    print(f"{'pack':<52} {'days':>6} {'EFC':>6} {'fade %':>7} {'law %':>7} {'ratio':>6} "
          f"{'soh_c %':>7} {'wall s':>6}")  # fmt: skip
    failed = False
    for r in results:
        soh = "-" if r.soh_wire is None else f"{r.soh_wire * 100:.2f}"
        print(f"{r.name:<52} {r.days:6.1f} {r.efc:6.1f} {r.simulated * 100:7.3f} "
              f"{r.closed_form * 100:7.3f} {r.ratio:6.3f} {soh:>7} {r.wall_s:6.2f}")  # fmt: skip
        failed |= abs(r.ratio - 1) > args.tolerance
    if failed:
        print(f"a ratio is outside 1 +/- {args.tolerance:g}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
