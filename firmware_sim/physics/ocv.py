"""LFP open-circuit voltage: a measured curve and a monotone (PCHIP) interpolant.

The ten breakpoints are the optimal piecewise table of a Lithium Werks APR18650M1B LFP cell's
C/32 pseudo-OCV, published by Sunil, Pattipati and Balasingam, IEEE Transactions on
Instrumentation and Measurement, 2025 (piecewise battery OCV model). Between 30 % and 98 % SoC
the curve spans only ~74 mV: that flatness is why an LFP BMS cannot correct its coulomb count
from voltage except near empty or full.

The interpolant is a piecewise cubic Hermite with Fritsch-Carlson/Butland derivatives
(Fritsch & Carlson, SIAM J. Numer. Anal. 17(2), 1980): monotone data give a monotone curve,
without the overshoot of a cubic spline on the steep ends.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from itertools import pairwise
from typing import Final

import numpy as np
from numpy.typing import NDArray

SOC_POINTS: Final = (0.0, 0.0033, 0.0117, 0.0267, 0.0534, 0.0885, 0.2972, 0.9833, 0.9950, 1.0)
OCV_POINTS: Final = (2.0102, 2.4177, 2.7405, 2.9299, 3.0872, 3.1942, 3.2772, 3.3511, 3.4180,
                     3.5981)  # fmt: skip

FloatArray = NDArray[np.float64]


def _end_slope(h0: float, h1: float, d0: float, d1: float) -> float:
    slope = ((2 * h0 + h1) * d0 - h0 * d1) / (h0 + h1)
    if slope * d0 <= 0:
        return 0.0
    if d0 * d1 <= 0 and abs(slope) > abs(3 * d0):
        return 3 * d0
    return slope


class Pchip:
    """Monotone piecewise cubic through (x, y); clamps outside [x0, xn]."""

    __slots__ = ("_a", "_b", "_c", "_d", "_np", "_x", "_y")

    def __init__(self, x: Sequence[float], y: Sequence[float]) -> None:
        if len(x) != len(y) or len(x) < 3:
            raise ValueError(f"need >= 3 points of equal count, got {len(x)} x and {len(y)} y")
        if any(b <= a for a, b in pairwise(x)):
            raise ValueError("x must be strictly increasing")
        h = [b - a for a, b in pairwise(x)]
        delta = [(y[k + 1] - y[k]) / h[k] for k in range(len(h))]
        slopes = [_end_slope(h[0], h[1], delta[0], delta[1])]
        for k in range(1, len(h)):
            if delta[k - 1] * delta[k] <= 0:
                slopes.append(0.0)
            else:
                w1, w2 = 2 * h[k] + h[k - 1], h[k] + 2 * h[k - 1]
                slopes.append((w1 + w2) / (w1 / delta[k - 1] + w2 / delta[k]))
        slopes.append(_end_slope(h[-1], h[-2], delta[-1], delta[-2]))
        self._x = tuple(x)
        self._y = tuple(y)
        self._a = tuple(y[:-1])
        self._b = tuple(slopes[:-1])
        self._c = tuple(
            (3 * delta[k] - 2 * slopes[k] - slopes[k + 1]) / h[k] for k in range(len(h))
        )
        self._d = tuple(
            (slopes[k] + slopes[k + 1] - 2 * delta[k]) / h[k] ** 2 for k in range(len(h))
        )
        self._np = tuple(
            np.array(v, dtype=np.float64) for v in (x, self._a, self._b, self._c, self._d)
        )

    def __call__(self, x: float) -> float:
        """The interpolant at one point."""
        xs = self._x
        if x <= xs[0]:
            return self._y[0]
        if x >= xs[-1]:
            return self._y[-1]
        k = bisect_right(xs, x) - 1
        t = x - xs[k]
        return self._a[k] + t * (self._b[k] + t * (self._c[k] + t * self._d[k]))

    def evaluate(self, x: FloatArray) -> FloatArray:
        """The interpolant at every element of ``x`` (any shape)."""
        xs, a, b, c, d = self._np
        clipped = np.clip(x, xs[0], xs[-1])
        k = np.clip(np.searchsorted(xs, clipped, side="right") - 1, 0, len(a) - 1)
        t = clipped - xs[k]
        result: FloatArray = a[k] + t * (b[k] + t * (c[k] + t * d[k]))
        return result

    def inverse(self, y: float) -> float:
        """The x where the (increasing) interpolant equals ``y``, by bisection; clamped."""
        lo, hi = self._x[0], self._x[-1]
        if y <= self._y[0]:
            return lo
        if y >= self._y[-1]:
            return hi
        for _ in range(50):
            mid = (lo + hi) / 2
            if self(mid) < y:
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2


LFP_OCV: Final = Pchip(SOC_POINTS, OCV_POINTS)
"""Cell OCV (V) as a function of SoC (0..1)."""
