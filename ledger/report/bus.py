"""Bus figures: distance, energy per km, km per day, charging sessions, auxiliary share.

All from the bus's own signed samples (vehicle controller: odometer, traction and auxiliary
power at the pack, charging state), except the energy of a charging session, which only the
pack's BMS measures (its cumulative ``e_in``): that figure uses the samples of the pack the bus
named as installed during the session, when the evidence carries them, and says so when it
does not. ``docs/condition-report.md``, "Bus figures", gives each formula.

Every figure either has a value with its method or says why it has none (too short a
distance or period, no energy drawn, no pack samples); nothing here raises on any series the
telemetry codec accepts (``tests/unit/test_report_bus.py`` checks it on random series).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from .frame import Frame, fsum_in_order, runs
from .model import Figure, ReportParams

_HOURS: Final = 3600.0
_MS_PER_DAY: Final = 86_400_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """One charging session of one bus: a run of its samples with ``chg`` != 0."""

    bus: str
    from_ms: int
    to_ms: int
    """The time of the session's last sample."""
    seconds: float
    """The time its samples stand for (sum of their sample periods)."""


def distance_km(buses: Sequence[Frame]) -> float:
    """Sum over buses of (largest - smallest odometer reading) in the period, km."""
    return sum(((b["odometer_m"].max().item() - b["odometer_m"].min().item()) / 1000
                for b in buses if len(b)), 0.0)  # fmt: skip


def sessions(bus: str, frame: Frame) -> list[Session]:
    """The charging sessions of one bus's time-ordered samples."""
    found = []
    for start, stop in runs(frame["charge_state"] != 0):
        found.append(Session(bus=bus, from_ms=int(frame.t_ms[start]),
                             to_ms=int(frame.t_ms[stop - 1]),
                             seconds=fsum_in_order(frame.seconds[start:stop])))  # fmt: skip
    return found


def session_energy_wh(session: Session, packs: Sequence[Frame]) -> float | None:
    """Energy charged into the installed pack(s) during ``session`` (``e_in`` difference).

    Per pack: ``e_in`` of its last sample at or before the session's last sample, minus
    ``e_in`` of its last sample before the session began (or of its first sample in the
    session, when none is earlier). None when no pack has a sample in the session.
    """
    total = 0.0
    seen = False
    for pack in packs:
        t = pack.t_ms
        inside = np.flatnonzero((t >= session.from_ms) & (t <= session.to_ms))
        if not inside.size:
            continue
        seen = True
        before = np.flatnonzero(t < session.from_ms)
        first = int(before[-1]) if before.size else int(inside[0])
        e_in = pack["energy_in_wh"]
        total += e_in[int(inside[-1])].item() - e_in[first].item()
    return total if seen else None


def bus_figures(
    buses: Sequence[tuple[str, Frame]],
    installed: Sequence[tuple[str, str, int, int, Frame]],
    params: ReportParams,
) -> list[Figure]:
    """Figures of the bus samples ``buses`` (per bus device) and their sessions' energy.

    ``installed`` is ``(bus, pack, from ms, to ms, pack samples)`` per stint of a pack in a
    bus whose samples the evidence carries.
    """
    frames = [frame for _, frame in buses if len(frame)]
    km = distance_km(frames)
    started = sum((fsum_in_order(f.seconds[f["vehicle_state"] == 1]) for f in frames), 0.0)
    figures = [
        Figure(key="distance", value=km, unit="km",
               method="per bus, largest - smallest odometer reading of the period; summed"),
        Figure(key="operating_hours", value=started / _HOURS, unit="h",
               method="time with vehicle state 1 (started)"),
    ]  # fmt: skip
    figures += _energy_figures(frames, km, params)
    figures.append(_km_per_day(frames, km, params))
    figures += _session_figures(buses, installed)
    return figures


def _drawn_wh(frames: Sequence[Frame]) -> tuple[float, float]:
    """(traction + auxiliary, auxiliary) energy at the pack while not charging, Wh."""
    total = aux = 0.0
    for frame in frames:
        idle = frame["charge_state"] == 0
        seconds = frame.seconds[idle]
        aux_w = frame["aux_power_w"][idle]
        total += fsum_in_order((frame["traction_power_w"][idle] + aux_w) * seconds) / _HOURS
        aux += fsum_in_order(aux_w * seconds) / _HOURS
    return total, aux


def _energy_figures(frames: Sequence[Frame], km: float, params: ReportParams) -> list[Figure]:
    total, aux = _drawn_wh(frames)
    drawn = "energy at the pack while not charging (ptr + aux, times the sample period)"
    short = None
    if km < params.min_distance_km:
        short = (f"not enough data: {km:.3g} km driven, less than the "
                 f"{params.min_distance_km:g} km a per-km figure needs")  # fmt: skip
    elif not total > 0:
        short = "no net energy drawn from the pack outside charging in the period"
    none_drawn = None if total > 0 else "no net energy drawn from the pack outside charging"
    return [
        Figure(key="energy_per_km", value=None if short else total / 1000 / km, unit="kWh/km",
               method=f"{drawn} / distance", reason=short),
        Figure(key="auxiliary_share", value=None if none_drawn else aux / total * 100,
               unit="%", method=f"auxiliary energy (aux) / {drawn}", reason=none_drawn),
    ]  # fmt: skip


def _km_per_day(frames: Sequence[Frame], km: float, params: ReportParams) -> Figure:
    method = "distance / days from the first to the last bus sample"
    if not frames:
        return Figure(key="km_per_day", value=None, unit="km/d", method=method,
                      reason="no bus samples in the period")  # fmt: skip
    first = min(int(f.t_ms[0]) for f in frames)
    last = max(int(f.t_ms[-1]) for f in frames)
    days = (last - first) / _MS_PER_DAY
    if days < params.min_days:
        return Figure(key="km_per_day", value=None, unit="km/d", method=method,
                      reason=f"not enough data: the bus samples span {days * 24:.3g} h, less "
                      f"than the {params.min_days:g} day(s) a daily figure needs (a shorter "
                      "span would extrapolate one part of the daily plan)")  # fmt: skip
    return Figure(key="km_per_day", value=km / days, unit="km/d", method=method)


def _session_figures(
    buses: Sequence[tuple[str, Frame]],
    installed: Sequence[tuple[str, str, int, int, Frame]],
) -> list[Figure]:
    found = [s for bus, frame in buses if len(frame) for s in sessions(bus, frame)]
    energies = []
    for session in found:
        packs = [
            frame
            for bus, _, start, end, frame in installed
            if bus == session.bus and start <= session.to_ms and session.from_ms <= end
        ]
        energies.append(session_energy_wh(session, packs))  # fmt: skip
    measured = [e for e in energies if e is not None]
    edge = "a session cut by the period's start or end counts with its part in the period"
    figures = [
        Figure(key="charging_sessions", value=len(found), unit="1",
               method=f"runs of bus samples with chg != 0 (depot or pantograph); {edge}"),
        Figure(key="charging_hours", value=sum((s.seconds for s in found), 0.0) / _HOURS,
               unit="h", method="time of the bus samples with chg != 0"),
    ]  # fmt: skip
    method = ("per session, e_in of the installed pack's last sample in the session minus its "
              "last sample before it (BMS counter), summed over sessions")  # fmt: skip
    if not found:
        reason: str | None = "no charging session in the period"
    elif not measured:
        reason = "the evidence holds no samples of the installed pack during any session"
    else:
        reason = None
        if len(measured) < len(found):
            method += f" ({len(measured)} of {len(found)} sessions have pack samples)"
    figures.append(Figure(key="charging_energy", value=sum(measured, 0.0) / 1000 if measured
                          else None, unit="kWh", method=method, reason=reason))  # fmt: skip
    return figures
