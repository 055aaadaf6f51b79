"""A GB/T 32960 bus's pack figures and evidence label, from its frames (the condition report).

A terminal reports the pack's total voltage and current, SoC, cell voltage and temperature
extremes, insulation and alarm level in every real-time frame. The gateway stores them as a
``pack`` sample beside the frame's ``bus`` sample (``columns.pack_telemetry``), for the
dashboard; a condition report is computed from evidence, so :func:`terminal_figures`
recomputes them from the frames themselves (the leaves a bundle carries, or the store's
leaves for the API's report) and says what the frames prove:
``received-only`` when any frame is a 2016 one (signed by no vehicle key), otherwise
``signed-by-terminal``. ``docs/condition-report.md`` lists the figures.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Final, NamedTuple

from ledger.report.model import ConditionReport, Figure

from .leaf import RECEIVED_ONLY, SIGNED_BY_TERMINAL, GbtLeaf
from .units import Realtime

_FROM_FRAMES: Final = "GB/T 32960 real-time / reissued frames in the period"


def with_terminal_figures(report: ConditionReport, leaves: Sequence[GbtLeaf]) -> ConditionReport:
    """``report`` with :func:`terminal_figures` appended (unchanged when there are no frames)."""
    if not leaves:
        return report
    return replace(report, figures=(*report.figures, *terminal_figures(leaves)))


def evidence_label(editions: Sequence[int]) -> str:
    """``received-only`` if any frame is a 2016 (unsigned) one, else ``signed-by-terminal``."""
    return RECEIVED_ONLY if 2016 in editions else SIGNED_BY_TERMINAL


def terminal_figures(leaves: Sequence[GbtLeaf]) -> list[Figure]:
    """The figures of a terminal's frames in the period, in collection-time order.

    Frames whose value is missing, abnormal or invalid are skipped for that figure; a figure
    no frame can give is ``None`` with the reason.
    """
    records = sorted((leaf.record for leaf in leaves), key=lambda r: r.at_ms)
    editions = [leaf.envelope.frame.edition for leaf in leaves]
    unsigned = editions.count(2016)
    label = evidence_label(editions) if leaves else None
    figures = [
        Figure(
            key="terminal_evidence",
            value=label,
            unit="1",
            method="received-only if any frame is a 2016 frame (signed by no vehicle key: it "
            "proves only that the gateway logged it), else signed-by-terminal (2025 frames, "
            "SM2 signatures checked against the enrolled key)",
            reason=None if leaves else "no frames in the period",
        ),
        Figure(key="terminal_frames", value=len(leaves), unit="1", method=_FROM_FRAMES),
        Figure(
            key="terminal_frames_received_only",
            value=unsigned,
            unit="1",
            method="2016 frames (unsigned)",
        ),
        Figure(
            key="terminal_frames_signed",
            value=len(leaves) - unsigned,
            unit="1",
            method="2025 frames (SM2-signed by the terminal)",
        ),
    ]
    figures += [_pick(records, spec) for spec in _SPECS]
    return figures


def _first(values: Sequence[float]) -> float:
    return values[0]


def _last(values: Sequence[float]) -> float:
    return values[-1]


class _Spec(NamedTuple):
    key: str
    unit: str
    what: str
    value: Callable[[Realtime], float | None]
    reduce: Callable[[Sequence[float]], float]


def _pick(records: Sequence[Realtime], spec: _Spec) -> Figure:
    found = [v for v in map(spec.value, records) if v is not None]
    return Figure(
        key=spec.key,
        value=spec.reduce(found) if found else None,
        unit=spec.unit,
        method=f"{spec.what}: {_FROM_FRAMES}",
        reason=None if found else "no frame in the period carries a valid value",
    )


def _scaled(raw: int | None, per_unit: int) -> float | None:
    return None if raw is None else raw / per_unit


def _soc(r: Realtime) -> float | None:
    return None if r.soc_pct is None else float(r.soc_pct)


def _volt(r: Realtime) -> float | None:
    return _scaled(r.voltage_dv, 10)


def _amp(r: Realtime) -> float | None:
    return _scaled(r.current_da, 10)


def _cell_min(r: Realtime) -> float | None:
    return _scaled(r.cell_min_mv, 1000)


def _cell_max(r: Realtime) -> float | None:
    return _scaled(r.cell_max_mv, 1000)


def _temp_min(r: Realtime) -> float | None:
    return None if r.temp_min_c is None else float(r.temp_min_c)


def _temp_max(r: Realtime) -> float | None:
    return None if r.temp_max_c is None else float(r.temp_max_c)


def _riso(r: Realtime) -> float | None:
    return None if r.insulation_kohm is None else float(r.insulation_kohm)


def _alarm(r: Realtime) -> float | None:
    return None if r.alarm_level is None else float(r.alarm_level)


def _km(r: Realtime) -> float | None:
    return _scaled(r.odometer_hm, 10)


_SPECS: Final = (
    _Spec("terminal_soc_first", "%", "SoC of the earliest frame", _soc, _first),
    _Spec("terminal_soc_last", "%", "SoC of the latest frame", _soc, _last),
    _Spec("terminal_soc_min", "%", "lowest SoC", _soc, min),
    _Spec("terminal_soc_max", "%", "highest SoC", _soc, max),
    _Spec("terminal_voltage_min", "V", "lowest pack total voltage", _volt, min),
    _Spec("terminal_voltage_max", "V", "highest pack total voltage", _volt, max),
    _Spec("terminal_current_min", "A", "lowest pack current (most charging)", _amp, min),
    _Spec("terminal_current_max", "A", "highest pack current (most discharging)", _amp, max),
    _Spec("terminal_cell_v_min", "V", "lowest cell voltage of any frame", _cell_min, min),
    _Spec("terminal_cell_v_max", "V", "highest cell voltage of any frame", _cell_max, max),
    _Spec("terminal_temp_min", "Cel", "lowest probe temperature of any frame", _temp_min, min),
    _Spec("terminal_temp_max", "Cel", "highest probe temperature of any frame", _temp_max, max),
    _Spec("terminal_insulation_min", "kOhm", "lowest insulation resistance", _riso, min),
    _Spec("terminal_alarm_max", "1", "highest alarm level (GB/T 32960 0..3)", _alarm, max),
    _Spec("terminal_mileage_first", "km", "accumulated mileage, earliest frame", _km, _first),
    _Spec("terminal_mileage_last", "km", "accumulated mileage, latest frame", _km, _last),
)
"""The pack and vehicle figures, in report order."""
