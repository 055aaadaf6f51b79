"""Export a condition report as battery passport dynamic data.

``performance.dynamic`` follows the Eclipse Tractus-X aspect model
``urn:samm:io.catenax.battery.battery_pass:6.1.0`` (each value a ``{"value", "time"}``
record, time in ISO 8601). The dynamic attributes of the Battery Pass longlist (DIN DKE
SPEC 99100, CC-BY-4.0) that this aspect model does not carry as values (time at extreme
temperatures, deep-discharge and overcharge events) go to ``longlist``, keyed by the
longlist's attribute number with its name, in the same ``{value, time}`` form.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from .report.model import ConditionReport, FigureValue

ASPECT_MODEL: Final = "urn:samm:io.catenax.battery.battery_pass:6.1.0"

_LONGLIST: Final = (
    ("87", "Time spent in extreme temperatures above boundary", "minutes_above_temp"),
    ("88", "Time spent in extreme temperatures below boundary", "minutes_below_temp"),
    ("89", "Time spent charging during extreme temperatures above boundary",
     "minutes_charging_above_temp"),
    ("90", "Time spent charging during extreme temperatures below boundary",
     "minutes_charging_below_temp"),
    ("91", "Number of deep discharge events", "deep_discharge_events"),
    ("92", "Number of overcharge events", "overcharge_events"),
)  # fmt: skip


def _iso(t_ms: int) -> str:
    return datetime.fromtimestamp(t_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _scaled(value: FigureValue, factor: float = 1.0, offset: float = 0.0) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return round(offset + factor * value, 6)


def battery_pass_dynamic(report: ConditionReport) -> dict[str, Any]:
    """The report's figures as battery passport dynamic data (values without data are left out).

    Units: capacity in Ah, energy in kWh, fades, SOCE and resistance increase in %, pack
    resistance in Ohm. Every record's time is the end of the report's period.
    """
    time = _iso(report.to_ms)
    figures = {f.key: f.value for f in report.figures}

    def record(value: float | None) -> dict[str, Any] | None:
        return None if value is None else {"value": value, "time": time}

    soh_c = _scaled(figures.get("soh_capacity"))
    rated = _scaled(figures.get("rated_capacity"))
    soh_e = _scaled(figures.get("soh_energy"))
    r0 = _scaled(figures.get("r0"), 0.001)
    dynamic: dict[str, Any] = {
        "capacity": {
            "capacity": record(None if soh_c is None or rated is None else
                               round(rated * soh_c / 100, 6)),
            "fade": record(None if soh_c is None else round(100 - soh_c, 6)),
            "throughput": record(_scaled(figures.get("capacity_throughput_lifetime"))),
        },
        "energy": {
            "remaining": record(_scaled(figures.get("usable_energy"))),
            "soce": record(soh_e),
            "throughput": record(_scaled(figures.get("energy_throughput_lifetime"))),
        },
        "resistance": {
            "increase": {"pack": record(_scaled(figures.get("resistance_growth")))},
            "remaining": {"pack": record(r0)},
        },
        "fullCycles": record(_scaled(figures.get("equivalent_full_cycles_lifetime"))),
    }  # fmt: skip
    longlist = {
        number: {"attribute": name, **(record(_scaled(figures.get(key))) or {})}
        for number, name, key in _LONGLIST
        if _scaled(figures.get(key)) is not None
    }
    return {
        "aspectModel": ASPECT_MODEL,
        "performance": {"dynamic": _prune(dynamic)},
        "longlist": longlist,
    }


def _prune(tree: dict[str, Any]) -> dict[str, Any]:
    """``tree`` without ``None`` leaves and the objects they leave empty."""
    result: dict[str, Any] = {}
    for key, value in tree.items():
        kept = value
        if isinstance(value, dict) and set(value) != {"value", "time"}:
            kept = _prune(value) or None
        if kept is not None:
            result[key] = kept
    return result
