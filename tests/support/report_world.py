"""A pack scenario and its condition report, shared by the report and battery-passport tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ledger.report import ConditionReport, ReportParams, compute_report
from ledger.telemetry import TelemetryBatch, encode_batch
from tests.support.bundle_world import T0, pack_batch, pack_sample

MIN = 60_000


def payloads(batches: Sequence[TelemetryBatch], *, dev: str = "pack-1") -> list[dict[str, Any]]:
    """Payload dicts (as verified messages give them) with consecutive seqs."""
    return [
        {"v": 1, "dev": dev, "seq": seq, "prev": bytes(32), "t": b.t_ms, **encode_batch(b)}
        for seq, b in enumerate(batches, start=1)
    ]


def scenario() -> list[TelemetryBatch]:
    """A 0.5 C discharge, a 2 C pantograph charge when hot, a 0.5 C depot charge when cold."""
    discharge = [
        pack_sample(current_a=140.0, soc=soc, energy_out_wh=950_000.0 + k * 10_000,
                    ah_out=4800.0 + k, alarm_level=2 if k == 2 else 0,
                    cell_v_min=2.4 if k == 3 else 3.29)
        for k, soc in enumerate([0.8, 0.7, 0.6, 0.5])
    ]  # fmt: skip
    fast = [
        pack_sample(current_a=-560.0, soc=soc, charge_state=2, temp_max_c=50.0,
                    energy_out_wh=980_000.0, ah_out=4803.0, alarm_level=3,
                    cell_v_max=3.7 if soc == 0.6 else 3.3, soh_capacity=0.95)
        for soc in (0.5, 0.6)
    ]  # fmt: skip
    slow = [
        pack_sample(current_a=-140.0, soc=0.6, charge_state=1, temp_min_c=-5.0,
                    energy_out_wh=980_000.0, ah_out=4803.0, soh_capacity=0.949,
                    insulation_ohm=100_000.0 if k == 1 else 5_000_000.0)
        for k in range(2)
    ]  # fmt: skip
    return [
        pack_batch(T0, discharge, dt_ms=MIN),
        pack_batch(T0 + 4 * MIN, fast, dt_ms=MIN),
        pack_batch(T0 + 6 * MIN, slow, dt_ms=MIN),
    ]


def report_of(
    batches: Sequence[TelemetryBatch], *, to_ms: int = T0 + 86_400_000, **params: Any
) -> ConditionReport:
    """The report of ``batches`` over the period from T0 to ``to_ms`` (default: a day)."""
    return compute_report(
        payloads(batches), asset_id="pack-1", asset_kind="pack", from_ms=T0, to_ms=to_ms,
        params=ReportParams(**params),
    )  # fmt: skip


def flat_series_that_crashed() -> list[TelemetryBatch]:
    """20 messages 10 minutes apart, every sample at 94.9 % SoH, with uneven sample counts.

    The per-message means differ from 0.949 in the last bit, so the old least-squares slope
    was float noise (~1e-11 %/year) and its 80 % date lay ~1e10 years away: OverflowError.
    """
    counts = [2, 5, 7, 7, 7, 1, 3, 1, 4, 7, 4, 4, 6, 4, 7, 2, 1, 4, 1, 7]
    return [
        pack_batch(T0 + k * 10 * MIN, [pack_sample(soh_capacity=0.949)] * n, dt_ms=MIN)
        for k, n in enumerate(counts)
    ]
