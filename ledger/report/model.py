"""The condition report's value types and its deterministic JSON form.

Every headline number is a :class:`Figure` carrying its unit and how it was computed, so a
reader can redo it from the messages. ``docs/condition-report.md`` explains each figure and
the sources of the default thresholds in :class:`ReportParams`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Final

REPORT_FORMAT: Final = "voltproof-condition-report/1"
FigureValue = float | int | str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportParams:
    """Thresholds and ratings the figures depend on (defaults: LFP traction pack).

    ``rated_capacity_ah`` / ``rated_energy_wh`` come from the battery passport (rated
    capacity, certified usable energy); without them the report uses the rating implied by
    the BMS (capacity / capacity SoH) and says so in the figure's method.
    """

    rated_capacity_ah: float | None = None
    rated_energy_wh: float | None = None
    temp_upper_c: float = 45.0
    temp_lower_c: float = 0.0
    cell_v_max: float = 3.65
    cell_v_min: float = 2.5
    fast_charge_c: float = 1.0
    idle_current_a: float = 1.0
    min_segment_soc: float = 0.2
    soc_bins: int = 10
    trend_min_span_s: float = 60.0
    min_distance_km: float = 1.0
    min_days: float = 1.0

    def __post_init__(self) -> None:
        for name in ("rated_capacity_ah", "rated_energy_wh"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if not self.temp_lower_c < self.temp_upper_c:
            raise ValueError("temp_lower_c must be below temp_upper_c")
        if not 0 < self.min_segment_soc <= 1:
            raise ValueError("min_segment_soc must be in (0, 1]")
        if not 1 <= self.soc_bins <= 100:
            raise ValueError("soc_bins must be 1..100")
        if not 0 <= self.trend_min_span_s <= 1e12:
            raise ValueError("trend_min_span_s must be in [0, 1e12]")
        if not 0 < self.min_distance_km <= 1e9:
            raise ValueError("min_distance_km must be in (0, 1e9]")
        if not 0 < self.min_days <= 1e6:
            raise ValueError("min_days must be in (0, 1e6]")

    @property
    def trend_min_span_ms(self) -> int:
        """The shortest window a trend is fitted over, in ms."""
        return round(self.trend_min_span_s * 1000)


@dataclass(frozen=True, slots=True, kw_only=True)
class Figure:
    """One number of the report: ``value`` in ``unit`` (``None`` when the data cannot give it).

    ``interval`` is a 95 % interval of an estimated value (same unit; a ``None`` bound is
    outside what the figure can state); ``reason`` says why ``value`` is ``None``.
    """

    key: str
    value: FigureValue
    unit: str
    method: str
    interval: tuple[FigureValue, FigureValue] | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SocBin:
    """Time spent with the SoC in ``[low, high)`` percent (the last bin includes 100)."""

    low: float
    high: float
    hours: float


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class PackSwap:
    """A pack left or entered a bus (from a bus ``pack_swap`` or a pack ``host`` event)."""

    t_ms: int
    device: str
    pack_out: str
    pack_in: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PackStint:
    """A pack's time in a bus, as the bus's own messages name it, and the pack's figures.

    ``from_ms`` is the first message naming the pair, ``to_ms`` the end of the last one
    (its last sample time + its sample period); ``figures`` are the pack figures of the
    pack's own samples over that stint (empty, with ``reason``, when the evidence holds none).
    """

    bus: str
    pack: str
    from_ms: int
    to_ms: int
    figures: tuple[Figure, ...]
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceCompleteness:
    """Per device: seqs received between the first and last seq, and the missing ranges."""

    device: str
    first_seq: int
    last_seq: int
    received: int
    missing: tuple[tuple[int, int], ...]

    @property
    def expected(self) -> int:
        """Messages the device produced from the first to the last seq received."""
        return self.last_seq - self.first_seq + 1


@dataclass(frozen=True, slots=True, kw_only=True)
class ConditionReport:
    """The condition report of one asset over one period, computed from messages alone."""

    asset_id: str
    asset_kind: str
    from_ms: int
    to_ms: int
    figures: tuple[Figure, ...]
    soc_histogram: tuple[SocBin, ...]
    alarms_by_level: tuple[tuple[int, int], ...]
    pack_swaps: tuple[PackSwap, ...]
    completeness: tuple[DeviceCompleteness, ...]
    stints: tuple[PackStint, ...] = ()

    def figure(self, key: str) -> Figure:
        """The figure named ``key``."""
        for figure in self.figures:
            if figure.key == key:
                return figure
        raise KeyError(key)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (floats rounded to 6 decimals)."""
        return {
            "format": REPORT_FORMAT,
            "asset": {"id": self.asset_id, "kind": self.asset_kind},
            "period": {"from_ms": self.from_ms, "to_ms": self.to_ms},
            "figures": {f.key: _figure(f) for f in self.figures},
            "soc_histogram": [
                {"low": _num(b.low), "high": _num(b.high), "hours": _num(b.hours)}
                for b in self.soc_histogram
            ],
            "alarms_by_level": {str(level): count for level, count in self.alarms_by_level},
            "pack_swaps": [
                {"t_ms": s.t_ms, "device": s.device, "out": s.pack_out, "in": s.pack_in}
                for s in self.pack_swaps
            ],
            "stints": [_stint(s) for s in self.stints],
            "completeness": [
                {
                    "device": c.device,
                    "first_seq": c.first_seq,
                    "last_seq": c.last_seq,
                    "expected": c.expected,
                    "received": c.received,
                    "missing": [list(r) for r in c.missing],
                }
                for c in self.completeness
            ],
        }

    def to_json(self) -> str:
        """Deterministic JSON: sorted keys, no spaces; equal reports give equal bytes."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))


def _stint(stint: PackStint) -> dict[str, Any]:
    """A stint's JSON: ``reason`` only when it has no figures."""
    result: dict[str, Any] = {
        "bus": stint.bus,
        "pack": stint.pack,
        "from_ms": stint.from_ms,
        "to_ms": stint.to_ms,
        "figures": {f.key: _figure(f) for f in stint.figures},
    }
    if stint.reason is not None:
        result["reason"] = stint.reason
    return result


def _figure(figure: Figure) -> dict[str, Any]:
    """A figure's JSON: ``interval`` and ``reason`` only when the figure has them."""
    result: dict[str, Any] = {
        "value": _num(figure.value),
        "unit": figure.unit,
        "method": figure.method,
    }
    if figure.interval is not None:
        result["interval"] = [_num(bound) for bound in figure.interval]
    if figure.reason is not None:
        result["reason"] = figure.reason
    return result


def _num(value: FigureValue) -> FigureValue:
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        rounded = round(value, 6)
        return 0.0 if rounded == 0 else rounded
    return value
