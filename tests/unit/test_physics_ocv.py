"""The LFP OCV curve and its monotone interpolant."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.physics.ocv import LFP_OCV, OCV_POINTS, SOC_POINTS, Pchip


def test_passes_through_the_measured_points() -> None:
    """The interpolant equals the published table at every breakpoint."""
    for soc, ocv in zip(SOC_POINTS, OCV_POINTS, strict=True):
        assert LFP_OCV(soc) == pytest.approx(ocv, abs=1e-12)


def test_monotone_between_points() -> None:
    """A dense grid never decreases (no spline overshoot on the steep ends)."""
    grid = np.linspace(0.0, 1.0, 20_001)
    values = LFP_OCV.evaluate(grid)
    assert np.all(np.diff(values) >= 0)


def test_scalar_and_vector_agree() -> None:
    """The numpy path gives the scalar path's values, and clamps outside [0, 1]."""
    points = [-0.1, 0.0, 0.01, 0.2, 0.5, 0.99, 1.0, 1.2]
    vector = LFP_OCV.evaluate(np.array(points))
    assert vector.tolist() == pytest.approx([LFP_OCV(p) for p in points], abs=1e-12)
    assert LFP_OCV(-0.1) == OCV_POINTS[0]
    assert LFP_OCV(1.2) == OCV_POINTS[-1]


def test_plateau_is_flat() -> None:
    """30-98 % SoC spans under 80 mV, as the source says (~74 mV)."""
    assert 0.06 < LFP_OCV(0.98) - LFP_OCV(0.30) < 0.08


@given(soc=st.floats(0.0, 1.0))
def test_inverse_round_trips(soc: float) -> None:
    """inverse(ocv(soc)) recovers soc wherever the curve is strictly increasing."""
    assert LFP_OCV(LFP_OCV.inverse(LFP_OCV(soc))) == pytest.approx(LFP_OCV(soc), abs=1e-9)


def test_inverse_clamps() -> None:
    """Voltages beyond the curve map to its ends."""
    assert LFP_OCV.inverse(1.0) == 0.0
    assert LFP_OCV.inverse(5.0) == 1.0


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        ([0.0, 1.0], [0.0, 1.0], "need >= 3 points"),
        ([0.0, 1.0, 2.0], [0.0, 1.0], "need >= 3 points"),
        ([0.0, 1.0, 1.0], [0.0, 1.0, 2.0], "strictly increasing"),
    ],
)
def test_rejects_bad_tables(x: list[float], y: list[float], match: str) -> None:
    """Too few points, unequal counts and non-increasing x are refused."""
    with pytest.raises(ValueError, match=match):
        Pchip(x, y)
