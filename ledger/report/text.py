"""The condition report as readable text (``voltproof report BUNDLE``)."""

from __future__ import annotations

from .model import ConditionReport, Figure, FigureValue
from .series import iso_date


def _value(value: FigureValue, unit: str) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        text = f"{value:.4g}" if abs(value) < 1e6 else f"{value:.0f}"
    else:
        text = str(value)
    return text if unit in {"1", "date", "ms"} else f"{text} {unit}"


def _figure(figure: Figure) -> str:
    if figure.value is None:
        return f"n/a ({figure.reason})" if figure.reason else "n/a"
    text = _value(figure.value, figure.unit)
    if figure.interval is not None:
        low, high = (_value(bound, "1") for bound in figure.interval)
        text += f" (95 % interval {low} .. {high})"
    return text


def render_text(report: ConditionReport) -> str:
    """A summary: the period, every figure with its unit, the histogram, alarms, completeness."""
    lines = [
        f"Condition report: {report.asset_kind} {report.asset_id}",
        f"period: {iso_date(report.from_ms)} .. {iso_date(report.to_ms)} (Unix ms "
        f"{report.from_ms}..{report.to_ms})",
        "",
    ]
    width = max((len(f.key) for f in report.figures), default=0)
    lines += [f"  {f.key:<{width}}  {_figure(f)}" for f in report.figures]
    if report.soc_histogram:
        lines += ["", "SoC residence (hours):"]
        lines += [f"  {b.low:>5.1f}-{b.high:<5.1f} %  {b.hours:.3f}" for b in report.soc_histogram]
    alarms = ", ".join(f"level {level}: {count}" for level, count in report.alarms_by_level)
    lines += ["", f"alarm onsets: {alarms}"]
    for swap in report.pack_swaps:
        lines.append(f"pack change at {swap.t_ms} on {swap.device}: out {swap.pack_out!r} "
                     f"in {swap.pack_in!r}")  # fmt: skip
    key_figures = ("samples", "soh_capacity", "energy_discharged", "energy_charged",
                    "equivalent_full_cycles")  # fmt: skip
    if report.stints:
        lines += ["", "packs in buses (stints):"]
    for stint in report.stints:
        lines.append(f"  {stint.pack} in {stint.bus}: Unix ms {stint.from_ms}..{stint.to_ms}")
        if stint.reason is not None:
            lines.append(f"    n/a ({stint.reason})")
        for figure in stint.figures:
            if figure.key in key_figures:
                lines.append(f"    {figure.key:<24}  {_figure(figure)}")
    lines += ["", "completeness (from seq numbers):"]
    for c in report.completeness:
        missing = ", ".join(f"{a}..{b}" for a, b in c.missing) or "none"
        lines.append(f"  {c.device}: {c.received}/{c.expected} messages, missing {missing}")
    lines += ["", "Each figure's method: voltproof report BUNDLE --json (figures.*.method)."]
    return "\n".join(lines)
