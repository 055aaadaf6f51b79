"""Compute the condition report of an asset from its decoded message payloads alone.

The caller verifies the messages first (``ledger.verify``); this module only reads them.
Samples are processed as columns (:mod:`.columns`, :mod:`.frame`), never one object each;
every sum over samples still adds in time order, so each figure is the float a per-sample
loop gives.
Pack figures come from ``pack`` messages (the BMS), distance and hours from ``bus``
messages when present. ``docs/condition-report.md`` gives each formula.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .bus import bus_figures
from .columns import Decoded, MessageInfo, decode_all
from .efficiency import round_trip_figure
from .frame import Frame, frame_of, fsum_in_order, median, message_means, onset_count, runs
from .model import (
    ConditionReport,
    DeviceCompleteness,
    Figure,
    PackStint,
    PackSwap,
    ReportParams,
    SocBin,
)
from .trend import pack_resolution, trend_figures

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


def _rated_capacity(packs: Frame, params: ReportParams) -> tuple[float | None, str]:
    if params.rated_capacity_ah is not None:
        return params.rated_capacity_ah, "rated capacity from the battery passport"
    soh = packs["soh_capacity"]
    positive = soh > 0
    if not positive.any():
        return None, "no rated capacity"
    implied = packs["capacity_ah"][positive] / soh[positive]
    return median(implied), "rated capacity implied by the BMS: median(cap / soh_c)"


def _energy_segments(packs: Frame, params: ReportParams) -> list[tuple[int, float, float]]:
    """``(end ms, usable Wh, median V)`` per uninterrupted discharge of >= min_segment_soc."""
    segments: list[tuple[int, float, float]] = []
    soc, e_out = packs["soc"], packs["energy_out_wh"]
    discharging = (packs["current_a"] > 0) & (packs["charge_state"] == 0)
    for start, stop in runs(discharging):
        if stop - start < 2:
            continue
        last = stop - 1
        d_soc = soc[start].item() - soc[last].item()
        d_wh = e_out[last].item() - e_out[start].item()
        if d_soc >= params.min_segment_soc and d_wh > 0:
            volts = median(packs["voltage_v"][start:stop])
            segments.append((int(packs.t_ms[last]), d_wh / d_soc, volts))
    return segments


def _pack_figures(
    packs: Frame,
    means: _Means,
    params: ReportParams,
    end_ms: int,
    increase: Callable[[str], float],
) -> tuple[list[Figure], tuple[SocBin, ...], tuple[tuple[int, int], ...]]:
    """``increase``: how much a cumulative counter grew in the period (:func:`_increase`)."""
    last = packs.last
    c_rated, c_how = _rated_capacity(packs, params)
    figures = [
        Figure(
            key="soh_capacity",
            value=last("soh_capacity") * 100,
            unit="%",
            method="capacity SoH reported by the BMS in the last sample (soh_c)",
        ),
        *trend_figures(
            "soh_capacity",
            "capacity SoH",
            means("soh_capacity"),
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
        e_rated = c_rated * median([v for _, _, v in segments])
        e_how = "rated energy estimated as rated capacity x median discharge voltage"
    else:
        e_rated, e_how = None, "no rated energy"
    seg_how = (
        f"discharged energy / SoC drop over the last uninterrupted discharge of at least "
        f"{params.min_segment_soc:.0%} SoC"
    )
    no_segment = (
        None if segments else f"no uninterrupted discharge of at least "
        f"{params.min_segment_soc:.0%} SoC in the period"
    )  # fmt: skip
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
            value=(last("resistance_growth") - 1) * 100,
            unit="%",
            method="BMS resistance relative to beginning of life "
            "(soh_r) in the last sample, minus 100 %",
        )
    )
    figures += trend_figures(
        "resistance_growth",
        "soh_r per message",
        [(t, v - 1) for t, v in means("resistance_growth")],
        end_ms=end_ms,
        resolution=pack_resolution("resistance_growth"),
        min_span_ms=params.trend_min_span_ms,
        targets=(),
    )
    figures.append(
        Figure(
            key="r0",
            value=last("r0_ohm") * 1000,
            unit="mOhm",
            method="ohmic pack resistance at 25 degC in the last sample (r0)",
        )
    )
    d_ah_out = increase("ah_out")
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
            value=last("ah_out") / c_rated if c_rated else None,
            unit="1",
            method="lifetime charge discharged (ah_out, last sample) / rated capacity",
            reason=None if c_rated else _NO_RATING,
        ),
        Figure(
            key="energy_discharged",
            value=increase("energy_out_wh") / 1000,
            unit="kWh",
            method="e_out last - first sample of the period",
        ),
        Figure(
            key="energy_charged",
            value=increase("energy_in_wh") / 1000,
            unit="kWh",
            method="e_in last - first sample of the period",
        ),
        Figure(
            key="energy_throughput_lifetime",
            value=last("energy_out_wh") / 1000,
            unit="kWh",
            method="lifetime energy discharged (e_out, last sample)",
        ),
        Figure(
            key="capacity_throughput_lifetime",
            value=last("ah_out"),
            unit="Ah",
            method="lifetime charge discharged (ah_out, last sample)",
        ),
        Figure(
            key="state_of_charge",
            value=last("soc") * 100,
            unit="%",
            method="SoC estimated by the BMS in the last sample (soc)",
        ),
        round_trip_figure(
            e_out_wh=last("energy_out_wh"),
            e_in_wh=last("energy_in_wh"),
            soc=last("soc"),
            full_wh=None if c_rated is None else c_rated * last("voltage_v"),
        ),
    ]
    figures += _usage_figures(packs, c_rated, params)
    figures += _abuse_figures(packs, params)
    return figures, _soc_histogram(packs, params), _alarm_onsets(packs)


def _usage_figures(packs: Frame, c_rated: float | None, params: ReportParams) -> list[Figure]:
    current, seconds = packs["current_a"], packs.seconds
    charging = current < 0
    charge_in = -current[charging]
    ah_in = charge_in * seconds[charging]
    ah_total = fsum_in_order(ah_in) / _HOURS
    fast_limit = None if c_rated is None else params.fast_charge_c * c_rated
    fast = ah_in[charge_in >= fast_limit] if fast_limit else ah_in[:0]
    ah_fast = fsum_in_order(fast) / _HOURS
    peak_dis = max(current.max().item(), 0.0) if current.size else 0.0  # 0: no discharge
    peak_chg = charge_in.max().item() if charge_in.size else 0.0
    active = fsum_in_order(seconds[np.abs(current) >= params.idle_current_a])
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


def _abuse_figures(packs: Frame, params: ReportParams) -> list[Figure]:
    seconds = packs.seconds

    def minutes(flags: np.ndarray[Any, Any]) -> float:
        return float(fsum_in_order(seconds[flags]) / 60)

    hot = packs["temp_max_c"] > params.temp_upper_c
    cold = packs["temp_min_c"] < params.temp_lower_c
    charging = (packs["current_a"] < 0) | (packs["charge_state"] != 0)
    spreads = (packs["cell_v_max"] - packs["cell_v_min"]) * 1000
    rank = min(max(1, math.ceil(0.95 * len(spreads))), len(spreads))
    lowest = int(np.argmin(packs["insulation_ohm"]))  # time order: the first is the earliest
    upper, lower = f"{params.temp_upper_c:g} degC", f"{params.temp_lower_c:g} degC"
    return [
        Figure(
            key="minutes_above_temp",
            value=minutes(hot),
            unit="min",
            method=f"time with the hottest probe (tmax) above {upper}",
        ),
        Figure(
            key="minutes_below_temp",
            value=minutes(cold),
            unit="min",
            method=f"time with the coldest probe (tmin) below {lower}",
        ),
        Figure(
            key="minutes_charging_above_temp",
            value=minutes(hot & charging),
            unit="min",
            method=f"time charging (current < 0 or chg != 0) with tmax above {upper}",
        ),
        Figure(
            key="minutes_charging_below_temp",
            value=minutes(cold & charging),
            unit="min",
            method=f"time charging (current < 0 or chg != 0) with tmin below {lower}",
        ),
        Figure(
            key="cell_spread_max",
            value=spreads.max().item(),
            unit="mV",
            method="largest ucmax - ucmin over all samples",
        ),
        Figure(
            key="cell_spread_p95",
            value=np.partition(spreads, rank - 1)[rank - 1].item(),
            unit="mV",
            method="95th percentile (nearest rank) of ucmax - ucmin over all samples",
        ),
        Figure(
            key="insulation_min",
            value=packs["insulation_ohm"][lowest].item() / 1000,
            unit="kOhm",
            method="lowest riso of all samples (GB/T 32960 saturates at 60 000 kOhm)",
        ),
        Figure(
            key="insulation_min_time",
            value=int(packs.t_ms[lowest]),
            unit="ms",
            method="Unix ms of the first sample with the lowest riso",
        ),
        Figure(
            key="deep_discharge_events",
            value=onset_count(packs["cell_v_min"] < params.cell_v_min),
            unit="1",
            method=f"runs of samples with ucmin below {params.cell_v_min:g} V",
        ),
        Figure(
            key="overcharge_events",
            value=onset_count(packs["cell_v_max"] > params.cell_v_max),
            unit="1",
            method=f"runs of samples with ucmax above {params.cell_v_max:g} V",
        ),
    ]


def _soc_histogram(packs: Frame, params: ReportParams) -> tuple[SocBin, ...]:
    n = params.soc_bins
    bins = np.minimum((packs["soc"] * n).astype(np.int64), n - 1)
    order = np.argsort(bins, kind="stable")  # per bin, the samples stay in time order
    counts = np.bincount(bins, minlength=n).tolist()
    shares = (packs.seconds / _HOURS)[order].tolist()
    hours = []
    at = 0
    for count in counts:
        hours.append(sum(shares[at : at + count], 0.0))
        at += count
    width = 100 / n
    return tuple(SocBin(low=i * width, high=(i + 1) * width, hours=h) for i, h in enumerate(hours))


def _alarm_onsets(packs: Frame) -> tuple[tuple[int, int], ...]:
    level = packs["alarm_level"]
    before = np.concatenate(([0], level[:-1]))
    counts = np.bincount(level[level > before], minlength=5).tolist()
    return tuple((lvl, counts[lvl]) for lvl in range(1, 5))


def _pack_device(decoded: Decoded, *, asset_id: str, asset_kind: str) -> str | None:
    """The pack whose BMS data the pack figures use (cumulative counters are per pack)."""
    if asset_kind == "pack":
        return asset_id
    counts: dict[str, int] = {}
    for message in decoded.messages:
        if message.kind == "pack":
            counts[message.dev] = counts.get(message.dev, 0) + message.n
    if not counts:
        return None
    return min(counts, key=lambda dev: (-counts[dev], dev))


_Stint = tuple[str, str, int, int, Frame | None, PackStint]
"""(bus, pack, from ms, to ms, the pack's samples in the stint or None, the stint)."""


def _end_ms(message: MessageInfo) -> int:
    """The end of the time a message's samples stand for (last sample + one period)."""
    return message.t_ms + message.n * message.dt_ms


def _stint_runs(
    messages: Sequence[MessageInfo], *, asset_id: str, asset_kind: str
) -> list[tuple[str, str, int, int]]:
    """``(bus, pack, from ms, to ms)`` per run of the asset's messages naming one pairing.

    A bus's messages name its installed packs (``pack``), a pack's messages its host bus
    (``host``); a run is a maximal sequence of the asset's messages, in time order, that all
    name the same pairing.
    """
    own = sorted((m for m in messages if m.dev == asset_id and m.kind == asset_kind),
                 key=lambda m: (m.t_ms, m.n))  # fmt: skip
    found: list[tuple[str, str, int, int]] = []
    open_runs: dict[str, tuple[int, int]] = {}
    for message in own:
        if asset_kind == "bus":
            partners = set(message.packs)
        else:
            partners = {message.host} if message.host is not None else set()
        for partner in sorted(set(open_runs) - partners):
            start, end = open_runs.pop(partner)
            found.append(_pair(asset_id, asset_kind, partner, start, end))
        for partner in sorted(partners):
            start, _ = open_runs.get(partner, (message.t_ms, 0))
            open_runs[partner] = (start, _end_ms(message))
    for partner, (start, end) in sorted(open_runs.items()):
        found.append(_pair(asset_id, asset_kind, partner, start, end))
    return sorted(found, key=lambda run: (run[2], run[0], run[1]))


def _pair(asset: str, kind: str, partner: str, start: int, end: int) -> tuple[str, str, int, int]:
    return (asset, partner, start, end) if kind == "bus" else (partner, asset, start, end)


def _stints(
    decoded: Decoded, *, asset_id: str, asset_kind: str, params: ReportParams
) -> list[_Stint]:
    """Each stint with the pack figures of the pack's messages that name the bus in it."""
    messages = decoded.messages
    result: list[_Stint] = []
    for bus, pack, start, end in _stint_runs(messages, asset_id=asset_id,
                                             asset_kind=asset_kind):  # fmt: skip
        chosen = [i for i, m in enumerate(messages)
                  if m.kind == "pack" and m.dev == pack and m.host == bus
                  and m.t_ms < end and _end_ms(m) > start]  # fmt: skip
        if not chosen:
            stint = PackStint(bus=bus, pack=pack, from_ms=start, to_ms=end, figures=(),
                              reason=f"the evidence holds no messages of {pack} naming {bus} "
                              "as its host in this stint")  # fmt: skip
            result.append((bus, pack, start, end, None, stint))
            continue
        frame = frame_of(decoded, "pack", chosen)
        figures, _, _ = _pack_figures(frame, _Means(decoded, chosen), params, end,
                                      _increase([frame]))  # fmt: skip
        samples = Figure(
            key="samples",
            value=len(frame),
            unit="1",
            method="samples of the pack's messages naming the bus in the stint",
        )
        stint = PackStint(bus=bus, pack=pack, from_ms=start, to_ms=end,
                          figures=(samples, *figures))  # fmt: skip
        result.append((bus, pack, start, end, frame, stint))
    return result


class _Means:
    """Per-message means of one pack's messages (the trend points)."""

    def __init__(self, decoded: Decoded, chosen: Sequence[int]) -> None:
        self._decoded = decoded
        self._chosen = chosen

    def __call__(self, attr: str) -> list[tuple[int, float]]:
        return message_means(self._decoded, self._chosen, attr)


def _increase(frames: Sequence[Frame]) -> Callable[[str], float]:
    """A cumulative counter's growth in the period: last - first sample of each device's
    samples, summed (an asset with predecessors: each device counts from its own start)."""

    def grew(attr: str) -> float:
        total: float = sum(frame.last(attr) - frame.first(attr) for frame in frames)
        return total

    return grew


def compute_report(
    payloads: Iterable[Mapping[str, Any]],
    *,
    asset_id: str,
    asset_kind: str,
    from_ms: int,
    to_ms: int,
    params: ReportParams | None = None,
    predecessors: Sequence[str] = (),
) -> ConditionReport:
    """The condition report of the messages ``payloads`` (verified telemetry payloads).

    ``predecessors`` are the devices whose history the asset carries on (a v2 bundle's
    ``predecessor`` chains): a pack's figures are those of the asset's and its predecessors'
    samples together, in time order (a bus's already cover every bus message given).
    """
    return _compute(payloads, asset_id=asset_id, asset_kind=asset_kind, from_ms=from_ms,
                    to_ms=to_ms, params=params or ReportParams(),
                    predecessors=frozenset(predecessors))  # fmt: skip


def _compute(
    payloads: Iterable[Mapping[str, Any]],
    *,
    asset_id: str,
    asset_kind: str,
    from_ms: int,
    to_ms: int,
    params: ReportParams,
    predecessors: frozenset[str] = frozenset(),
) -> ConditionReport:
    ordered = sorted(payloads, key=lambda p: (p["dev"], p["seq"]))
    decoded = decode_all(ordered)
    messages = decoded.messages
    pack_id = _pack_device(decoded, asset_id=asset_id, asset_kind=asset_kind)
    history = {pack_id} | (predecessors if asset_kind == "pack" else frozenset())
    pack_chosen = [i for i, m in enumerate(messages) if m.kind == "pack" and m.dev in history]
    packs = frame_of(decoded, "pack", pack_chosen)
    bus_ids = sorted({m.dev for m in messages if m.kind == "bus"})
    buses = [
        (bus, frame_of(decoded, "bus", [i for i, m in enumerate(messages)
                                        if m.kind == "bus" and m.dev == bus]))
        for bus in bus_ids
    ]  # fmt: skip
    # A bus's report describes every pack it carried; a pack's own figures already cover
    # its time in each bus (and a year of them twice would double the report's cost).
    stints = (_stints(decoded, asset_id=asset_id, asset_kind=asset_kind, params=params)
              if asset_kind == "bus" else [])  # fmt: skip
    figures = [
        Figure(key="messages", value=len(ordered), unit="1", method="messages used"),
        Figure(
            key="samples",
            value=len(packs) + sum(len(frame) for _, frame in buses),
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
    if len(packs):
        means = _Means(decoded, pack_chosen)
        devices = sorted({messages[i].dev for i in pack_chosen})
        per_device = [packs] if len(devices) == 1 else [
            frame_of(decoded, "pack", [i for i in pack_chosen if messages[i].dev == device])
            for device in devices
        ]  # fmt: skip
        pack_figures, histogram, alarms = _pack_figures(
            packs, means, params, to_ms, _increase(per_device)
        )
        figures += pack_figures
    if buses:
        installed = [(bus, pack, start, end, frame) for bus, pack, start, end, frame, _ in stints
                     if frame is not None]  # fmt: skip
        figures += bus_figures(buses, installed, params)
    recal = sum(1 for m in messages for e in m.events if e.kind == "recal")
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
            t_ms=m.t_ms + e.at * m.dt_ms,
            device=m.dev,
            pack_out=str(e.data.get("out", "")),
            pack_in=str(e.data.get("in", e.data.get("host", ""))),
        )
        for m in messages
        for e in m.events
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
        stints=tuple(stint for *_, stint in stints),
    )
