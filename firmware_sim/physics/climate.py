"""Ambient temperature from the date and hour (a humid subtropical city, UTC+8).

Seasonal mean 23 degC +- 6 K (coldest mid-January) and a diurnal swing of +- 4 K (warmest
15:00 local), the shape of Shenzhen's climate normals; pure function of Unix time.
"""

from __future__ import annotations

import math

UTC_OFFSET_S = 8 * 3600
DAY_S = 86_400.0
YEAR_S = 365.25 * DAY_S


def local_seconds_of_day(t_s: float) -> float:
    """Seconds since local (UTC+8) midnight."""
    return (t_s + UTC_OFFSET_S) % DAY_S


def ambient_c(t_s: float, *, annual_mean_c: float = 23.0) -> float:
    """Ambient air temperature at Unix time ``t_s``."""
    day_of_year = ((t_s + UTC_OFFSET_S) % YEAR_S) / DAY_S
    seasonal = -6.0 * math.cos(2 * math.pi * (day_of_year - 15) / 365.25)
    hour = local_seconds_of_day(t_s) / 3600.0
    diurnal = 4.0 * math.cos(2 * math.pi * (hour - 15) / 24)
    return annual_mean_c + seasonal + diurnal
