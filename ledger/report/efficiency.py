"""Lifetime round trip efficiency from the cumulative energy counters, with its bounds.

``e_out / e_in`` over a pack's life is its round trip efficiency only if the pack holds as
much energy now as at delivery, and the delivery state of charge is not in the data. With
``E`` the energy of a full pack and ``soc`` the present state of charge, the stored energy
changed by ``E (soc - soc0)`` for some ``soc0`` in [0, 1], so the efficiency ``r`` with
``e_out = r (e_in - E (soc - soc0))`` lies in
``[e_out / (e_in + E (1 - soc)), e_out / (e_in - E soc)]``. The figure is ``e_out / e_in``
(``soc0 = soc``) with that interval, and only when the interval is at most
:data:`MAX_WIDTH` points wide: early in life it is not, and the figure says so.
"""

from __future__ import annotations

from typing import Final

from .model import Figure

MAX_WIDTH: Final = 5.0
"""Widest interval (percentage points) the round trip efficiency is reported with."""

_METHOD: Final = (
    "lifetime energy discharged / charged (e_out / e_in, last sample); interval: the "
    "unknown state of charge at delivery, 0..100 % of a full pack's energy (rated capacity x "
    "pack voltage of the last sample)"
)


def round_trip_figure(
    *, e_out_wh: float, e_in_wh: float, soc: float, full_wh: float | None
) -> Figure:
    """``round_trip_efficiency_lifetime`` (%), or why the counters cannot give it yet."""
    key, unit = "round_trip_efficiency_lifetime", "%"
    if full_wh is None or not full_wh > 0:
        return Figure(key=key, value=None, unit=unit, method=_METHOD,
                      reason="no rated capacity to bound the stored energy")  # fmt: skip
    floor = full_wh * soc
    if not e_in_wh > floor:
        return Figure(key=key, value=None, unit=unit, method=_METHOD,
                      reason="not enough data: less energy charged than the pack may hold "
                      "from delivery")  # fmt: skip
    low = e_out_wh / (e_in_wh + full_wh * (1 - soc)) * 100
    high = e_out_wh / (e_in_wh - floor) * 100
    if high - low > MAX_WIDTH:
        return Figure(key=key, value=None, unit=unit, method=_METHOD,
                      reason=f"not enough data: the energy charged so far leaves the "
                      f"efficiency between {low:.3g} and {high:.3g} %, wider than "
                      f"{MAX_WIDTH:g} points")  # fmt: skip
    return Figure(key=key, value=e_out_wh / e_in_wh * 100, unit=unit, method=_METHOD,
                  interval=(low, high))  # fmt: skip
