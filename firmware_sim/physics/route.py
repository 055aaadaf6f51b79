"""A bus line as a WGS-84 polyline; positions by distance along it.

Distances use the equirectangular approximation (error well under 0.1 % over a city line).
The default line is an illustrative 9 km east-west corridor in central Shenzhen (coordinates
chosen by hand, not a real timetable).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import pairwise

EARTH_RADIUS_M = 6_371_000.0


def _distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat = math.radians((a[0] + b[0]) / 2)
    dx = math.radians(b[1] - a[1]) * math.cos(lat)
    dy = math.radians(b[0] - a[0])
    return EARTH_RADIUS_M * math.hypot(dx, dy)


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """A line from its first to its last point; buses run it back and forth."""

    name: str
    points: tuple[tuple[float, float], ...]
    _cumulative: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.points) < 2:
            raise ValueError(f"route {self.name!r} needs at least two points")
        cumulative = [0.0]
        for a, b in pairwise(self.points):
            cumulative.append(cumulative[-1] + _distance_m(a, b))
        object.__setattr__(self, "_cumulative", tuple(cumulative))

    @property
    def length_m(self) -> float:
        """Length of one direction."""
        return self._cumulative[-1]

    def position(self, distance_m: float) -> tuple[float, float]:
        """(lat, lon) at ``distance_m`` from the first point (clamped to the line)."""
        d = min(max(distance_m, 0.0), self.length_m)
        k = min(bisect_right(self._cumulative, d) - 1, len(self.points) - 2)
        span = self._cumulative[k + 1] - self._cumulative[k]
        f = (d - self._cumulative[k]) / span if span > 0 else 0.0
        (lat0, lon0), (lat1, lon1) = self.points[k], self.points[k + 1]
        return lat0 + f * (lat1 - lat0), lon0 + f * (lon1 - lon0)


SHENNAN_LINE = Route(
    name="shennan",
    points=((22.5405, 114.0250), (22.5422, 114.0450), (22.5430, 114.0580),
            (22.5436, 114.0720), (22.5440, 114.0850), (22.5452, 114.1100)),
)  # fmt: skip
