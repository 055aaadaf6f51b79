"""Reference condition report: one object per sample, every figure as a plain loop.

The per-sample form ``ledger.report`` had before it processed columns; tests check that the
columnar ``compute_report`` gives byte-identical ``to_json()`` on the same payloads.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ledger.report.efficiency import round_trip_figure
from ledger.report.model import (
    ConditionReport,
    DeviceCompleteness,
    Figure,
    PackSwap,
    ReportParams,
    SocBin,
)
from ledger.report.series import (
    Timed,
    events_of,
    onsets,
    per_message_means,
    percentile,
    samples_of,
)
from ledger.report.trend import pack_resolution, trend_figures
from ledger.telemetry import BusSample, PackSample, TelemetryBatch, decode_batch

_HOURS = 3600.0
_NO_RATING = "no rated capacity: none given and no sample with a capacity SoH above 0"


def _completeness(payloads: Sequence[Mapping[str, Any]]) -> tuple[DeviceCompleteness, ...]:
    seqs: dict[str, set[int]] = {}
    for payload in payloads:
        seqs.setdefault(payload["dev"], set()).add(payload["seq"])
    result = []
    for device in sorted(seqs):
        got = sorted(seqs[device])
        missing = []
        for low, high in itertools.pairwise(got):
            if high > low + 1:
                missing.append((low + 1, high - 1))
        result.append(
            DeviceCompleteness(
                device=device,
                first_seq=got[0],
                last_seq=got[-1],
                received=len(got),
                missing=tuple(missing),
            )
        )
    return tuple(result)


def _rated_capacity(
    packs: Sequence[Timed[PackSample]], params: ReportParams
) -> tuple[float | None, str]:
    if params.rated_capacity_ah is not None:
        return params.rated_capacity_ah, "rated capacity from the battery passport"
    implied = [
        t.sample.capacity_ah / t.sample.soh_capacity for t in packs if t.sample.soh_capacity > 0
    ]
    if not implied:
        return None, "no rated capacity"
    return statistics.median(implied), "rated capacity implied by the BMS: median(cap / soh_c)"


def _energy_segments(
    packs: Sequence[Timed[PackSample]], params: ReportParams
) -> list[tuple[int, float, float]]:
    """``(end ms, usable Wh, median V)`` per uninterrupted discharge of >= min_segment_soc."""
    segments: list[tuple[int, float, float]] = []
    run: list[Timed[PackSample]] = []
    for item in [*packs, None]:
        if item is not None and item.sample.current_a > 0 and item.sample.charge_state == 0:
            run.append(item)
            continue
        if len(run) >= 2:
            d_soc = run[0].sample.soc - run[-1].sample.soc
            d_wh = run[-1].sample.energy_out_wh - run[0].sample.energy_out_wh
            if d_soc >= params.min_segment_soc and d_wh > 0:
                volts = statistics.median(t.sample.voltage_v for t in run)
                segments.append((run[-1].t_ms, d_wh / d_soc, volts))
        run = []
    return segments


def _pack_figures(
    packs: list[Timed[PackSample]],
    batches: list[TelemetryBatch],
    params: ReportParams,
    end_ms: int,
) -> tuple[list[Figure], tuple[SocBin, ...], tuple[tuple[int, int], ...]]:
    first, last = packs[0].sample, packs[-1].sample
    c_rated, c_how = _rated_capacity(packs, params)
    figures = [
        Figure(
            key="soh_capacity",
            value=last.soh_capacity * 100,
            unit="%",
            method="capacity SoH reported by the BMS in the last sample (soh_c)",
        ),
        *trend_figures(
            "soh_capacity",
            "capacity SoH",
            [(t, v) for t, v in per_message_means(batches, "soh_capacity")],
            end_ms=end_ms,
            resolution=pack_resolution("soh_capacity"),
            min_span_ms=params.trend_min_span_ms,
        ),
    ]
    segments = _energy_segments(packs, params)
    usable = segments[-1][1] if segments else None
    if params.rated_energy_wh is not None:
        e_rated: float | None = params.rated_energy_wh
        e_how = "certified usable energy from the battery passport"
    elif c_rated is not None and segments:
        e_rated = c_rated * statistics.median(v for _, _, v in segments)
        e_how = "rated energy estimated as rated capacity x median discharge voltage"
    else:
        e_rated, e_how = None, "no rated energy"
    seg_how = (
        f"discharged energy / SoC drop over the last uninterrupted discharge of at least "
        f"{params.min_segment_soc:.0%} SoC"
    )
    no_segment = (
        None
        if segments
        else f"no uninterrupted discharge of at least "
        f"{params.min_segment_soc:.0%} SoC in the period"
    )
    figures.append(
        Figure(
            key="usable_energy",
            value=None if usable is None else usable / 1000,
            unit="kWh",
            method=seg_how,
            reason=no_segment,
        )
    )
    soh_e = [(t, wh / e_rated) for t, wh, _ in segments] if e_rated else []
    figures.append(
        Figure(
            key="soh_energy",
            value=soh_e[-1][1] * 100 if soh_e else None,
            unit="%",
            method=f"usable energy / rated energy ({e_how})",
            reason=no_segment or (None if e_rated else e_how),
        )
    )
    figures += trend_figures(
        "soh_energy",
        "energy SoH",
        soh_e,
        end_ms=end_ms,
        resolution=pack_resolution("soc") / params.min_segment_soc,
        min_span_ms=params.trend_min_span_ms,
    )
    figures.append(
        Figure(
            key="resistance_growth",
            value=(last.resistance_growth - 1) * 100,
            unit="%",
            method="BMS resistance relative to beginning of life "
            "(soh_r) in the last sample, minus 100 %",
        )
    )
    figures += trend_figures(
        "resistance_growth",
        "soh_r per message",
        [(t, v - 1) for t, v in per_message_means(batches, "resistance_growth")],
        end_ms=end_ms,
        resolution=pack_resolution("resistance_growth"),
        min_span_ms=params.trend_min_span_ms,
        targets=(),
    )
    figures.append(
        Figure(
            key="r0",
            value=last.r0_ohm * 1000,
            unit="mOhm",
            method="ohmic pack resistance at 25 degC in the last sample (r0)",
        )
    )
    d_ah_out = last.ah_out - first.ah_out
    figures += [
        Figure(
            key="rated_capacity",
            value=c_rated,
            unit="Ah",
            method=c_how,
            reason=None if c_rated else _NO_RATING,
        ),
        Figure(
            key="equivalent_full_cycles",
            value=d_ah_out / c_rated if c_rated else None,
            unit="1",
            method="charge discharged in the period (ah_out last - first) / rated capacity",
            reason=None if c_rated else _NO_RATING,
        ),
        Figure(
            key="equivalent_full_cycles_lifetime",
            value=last.ah_out / c_rated if c_rated else None,
            unit="1",
            method="lifetime charge discharged (ah_out, last sample) / rated capacity",
            reason=None if c_rated else _NO_RATING,
        ),
        Figure(
            key="energy_discharged",
            value=(last.energy_out_wh - first.energy_out_wh) / 1000,
            unit="kWh",
            method="e_out last - first sample of the period",
        ),
        Figure(
            key="energy_charged",
            value=(last.energy_in_wh - first.energy_in_wh) / 1000,
            unit="kWh",
            method="e_in last - first sample of the period",
        ),
        Figure(
            key="energy_throughput_lifetime",
            value=last.energy_out_wh / 1000,
            unit="kWh",
            method="lifetime energy discharged (e_out, last sample)",
        ),
        Figure(
            key="capacity_throughput_lifetime",
            value=last.ah_out,
            unit="Ah",
            method="lifetime charge discharged (ah_out, last sample)",
        ),
        Figure(
            key="state_of_charge",
            value=last.soc * 100,
            unit="%",
            method="SoC estimated by the BMS in the last sample (soc)",
        ),
        round_trip_figure(
            e_out_wh=last.energy_out_wh,
            e_in_wh=last.energy_in_wh,
            soc=last.soc,
            full_wh=None if c_rated is None else c_rated * last.voltage_v,
        ),
    ]
    figures += _usage_figures(packs, c_rated, params)
    figures += _abuse_figures(packs, params)
    return figures, _soc_histogram(packs, params), _alarm_onsets(packs)


def _usage_figures(
    packs: list[Timed[PackSample]], c_rated: float | None, params: ReportParams
) -> list[Figure]:
    charging = [(t.sample.current_a, t.seconds) for t in packs if t.sample.current_a < 0]
    ah_total = sum(-i * s for i, s in charging) / _HOURS
    fast_limit = None if c_rated is None else params.fast_charge_c * c_rated
    ah_fast = sum(-i * s for i, s in charging if fast_limit and -i >= fast_limit) / _HOURS
    peak_dis = max((t.sample.current_a for t in packs if t.sample.current_a > 0), default=0.0)
    peak_chg = max((-i for i, _ in charging), default=0.0)
    active = sum(t.seconds for t in packs if abs(t.sample.current_a) >= params.idle_current_a)
    no_rating = None if c_rated else _NO_RATING
    return [
        Figure(
            key="fast_charge_share",
            value=ah_fast / ah_total * 100 if ah_total and fast_limit else None,
            unit="%",
            method=f"charge put in at >= {params.fast_charge_c:g} C / all charge put in "
            "(current x sample period over charging samples)",
            reason=no_rating or (None if ah_total else "no charge put in during the period"),
        ),
        Figure(
            key="peak_charge_c_rate",
            value=peak_chg / c_rated if c_rated else None,
            unit="1/h",
            method="largest charging current / rated capacity",
            reason=no_rating,
        ),
        Figure(
            key="peak_discharge_c_rate",
            value=peak_dis / c_rated if c_rated else None,
            unit="1/h",
            method="largest discharging current / rated capacity (0 when the pack never "
            "discharged in the period)",
            reason=no_rating,
        ),
        Figure(
            key="pack_active_hours",
            value=active / _HOURS,
            unit="h",
            method=f"time with |current| >= {params.idle_current_a:g} A",
        ),
    ]


def _abuse_figures(packs: list[Timed[PackSample]], params: ReportParams) -> list[Figure]:
    def minutes(flags: Iterable[tuple[bool, float]]) -> float:
        return sum(seconds for flag, seconds in flags if flag) / 60

    hot = [(t.sample.temp_max_c > params.temp_upper_c, t.seconds, t) for t in packs]
    cold = [(t.sample.temp_min_c < params.temp_lower_c, t.seconds, t) for t in packs]

    def charging(t: Timed[PackSample]) -> bool:
        return t.sample.current_a < 0 or t.sample.charge_state != 0

    spreads = [(t.sample.cell_v_max - t.sample.cell_v_min) * 1000 for t in packs]
    lowest = min(packs, key=lambda t: (t.sample.insulation_ohm, t.t_ms))
    upper, lower = f"{params.temp_upper_c:g} degC", f"{params.temp_lower_c:g} degC"
    return [
        Figure(
            key="minutes_above_temp",
            value=minutes((f, s) for f, s, _ in hot),
            unit="min",
            method=f"time with the hottest probe (tmax) above {upper}",
        ),
        Figure(
            key="minutes_below_temp",
            value=minutes((f, s) for f, s, _ in cold),
            unit="min",
            method=f"time with the coldest probe (tmin) below {lower}",
        ),
        Figure(
            key="minutes_charging_above_temp",
            value=minutes((f and charging(t), s) for f, s, t in hot),
            unit="min",
            method=f"time charging (current < 0 or chg != 0) with tmax above {upper}",
        ),
        Figure(
            key="minutes_charging_below_temp",
            value=minutes((f and charging(t), s) for f, s, t in cold),
            unit="min",
            method=f"time charging (current < 0 or chg != 0) with tmin below {lower}",
        ),
        Figure(
            key="cell_spread_max",
            value=max(spreads),
            unit="mV",
            method="largest ucmax - ucmin over all samples",
        ),
        Figure(
            key="cell_spread_p95",
            value=percentile(spreads, 0.95),
            unit="mV",
            method="95th percentile (nearest rank) of ucmax - ucmin over all samples",
        ),
        Figure(
            key="insulation_min",
            value=lowest.sample.insulation_ohm / 1000,
            unit="kOhm",
            method="lowest riso of all samples (GB/T 32960 saturates at 60 000 kOhm)",
        ),
        Figure(
            key="insulation_min_time",
            value=lowest.t_ms,
            unit="ms",
            method="Unix ms of the first sample with the lowest riso",
        ),
        Figure(
            key="deep_discharge_events",
            value=onsets(t.sample.cell_v_min < params.cell_v_min for t in packs),
            unit="1",
            method=f"runs of samples with ucmin below {params.cell_v_min:g} V",
        ),
        Figure(
            key="overcharge_events",
            value=onsets(t.sample.cell_v_max > params.cell_v_max for t in packs),
            unit="1",
            method=f"runs of samples with ucmax above {params.cell_v_max:g} V",
        ),
    ]


def _soc_histogram(packs: list[Timed[PackSample]], params: ReportParams) -> tuple[SocBin, ...]:
    n = params.soc_bins
    hours = [0.0] * n
    for t in packs:
        hours[min(int(t.sample.soc * n), n - 1)] += t.seconds / _HOURS
    width = 100 / n
    return tuple(SocBin(low=i * width, high=(i + 1) * width, hours=h) for i, h in enumerate(hours))


def _alarm_onsets(packs: list[Timed[PackSample]]) -> tuple[tuple[int, int], ...]:
    counts = dict.fromkeys(range(1, 5), 0)
    before = 0
    for t in packs:
        level = t.sample.alarm_level
        if level > before:
            counts[level] += 1
        before = level
    return tuple(sorted(counts.items()))


def _bus_figures(buses: list[Timed[BusSample]]) -> list[Figure]:
    odo = [t.sample.odometer_m for t in buses]
    started = sum(t.seconds for t in buses if t.sample.vehicle_state == 1)
    return [
        Figure(
            key="distance",
            value=(max(odo) - min(odo)) / 1000,
            unit="km",
            method="largest - smallest odometer reading of the period",
        ),
        Figure(
            key="operating_hours",
            value=started / _HOURS,
            unit="h",
            method="time with vehicle state 1 (started)",
        ),
    ]


def _pack_device(
    ordered: Sequence[Mapping[str, Any]],
    batches: Sequence[TelemetryBatch],
    *,
    asset_id: str,
    asset_kind: str,
) -> str | None:
    """The pack whose BMS data the pack figures use (cumulative counters are per pack)."""
    if asset_kind == "pack":
        return asset_id
    counts: dict[str, int] = {}
    for payload, batch in zip(ordered, batches, strict=True):
        if batch.kind == "pack":
            counts[payload["dev"]] = counts.get(payload["dev"], 0) + len(batch.samples)
    if not counts:
        return None
    return min(counts, key=lambda dev: (-counts[dev], dev))


def compute_report(
    payloads: Iterable[Mapping[str, Any]],
    *,
    asset_id: str,
    asset_kind: str,
    from_ms: int,
    to_ms: int,
    params: ReportParams | None = None,
) -> ConditionReport:
    """The condition report of the messages ``payloads`` (verified telemetry payloads)."""
    params = params or ReportParams()
    ordered = sorted(payloads, key=lambda p: (p["dev"], p["seq"]))
    batches = [decode_batch(p) for p in ordered]
    pack_id = _pack_device(ordered, batches, asset_id=asset_id, asset_kind=asset_kind)
    pack_batches = [
        b for p, b in zip(ordered, batches, strict=True) if b.kind == "pack" and p["dev"] == pack_id
    ]
    packs = samples_of(pack_batches, PackSample)
    buses = samples_of(batches, BusSample)
    figures = [
        Figure(key="messages", value=len(ordered), unit="1", method="messages used"),
        Figure(
            key="samples",
            value=len(packs) + len(buses),
            unit="1",
            method="pack samples of the reported pack and bus samples in those messages",
        ),
        Figure(
            key="pack",
            value=pack_id,
            unit="id",
            method="the pack the pack figures describe: the asset itself, or for a bus the pack "
            "with the most samples in the period",
            reason=None if pack_id else "no pack messages in the period",
        ),
    ]
    histogram: tuple[SocBin, ...] = ()
    alarms: tuple[tuple[int, int], ...] = tuple((level, 0) for level in range(1, 5))
    if packs:
        pack_figures, histogram, alarms = _pack_figures(packs, pack_batches, params, to_ms)
        figures += pack_figures
    if buses:
        figures += _bus_figures(buses)
    events = events_of(batches)
    recal = sum(1 for _, _, e in events if e.kind == "recal")
    figures.append(
        Figure(
            key="soc_recalibrations",
            value=recal,
            unit="1",
            method="recal events (SoC reset at full charge or after rest)",
        )
    )
    swaps = sorted(
        PackSwap(
            t_ms=batch.t_ms + e.at * batch.dt_ms,
            device=payload["dev"],
            pack_out=str(e.data.get("out", "")),
            pack_in=str(e.data.get("in", e.data.get("host", ""))),
        )
        for payload, batch in zip(ordered, batches, strict=True)
        for e in batch.events
        if e.kind in {"pack_swap", "host"}
    )
    return ConditionReport(
        asset_id=asset_id,
        asset_kind=asset_kind,
        from_ms=from_ms,
        to_ms=to_ms,
        figures=tuple(figures),
        soc_histogram=histogram,
        alarms_by_level=alarms,
        pack_swaps=tuple(swaps),
        completeness=_completeness(ordered),
    )
