"""Chart series: buckets on one axis, gaps as nulls, a per-sample cell spread, query times."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from api.series import bucket_size, bucketed, source_columns
from api.times import TimeFormatError, parse_time


def _series(
    times: list[int], **columns: list[float]
) -> tuple[npt.NDArray[np.int64], dict[str, npt.NDArray[np.float64]]]:
    return np.array(times, dtype=np.int64), {k: np.array(v) for k, v in columns.items()}


def test_regular_data_has_no_gap() -> None:
    """Samples every bucket: one point per bucket, no null."""
    t, values = _series([0, 1000, 2000, 3000, 4000], soc=[0.5, 0.6, 0.7, 0.8, 0.9])
    found = bucketed(t, values, ["soc"], from_ms=0, bucket_ms=1000)
    assert found.t_ms == [0, 1000, 2000, 3000, 4000]
    assert found.columns["soc"].avg == pytest.approx([0.5, 0.6, 0.7, 0.8, 0.9])


def test_an_outage_is_one_null_point() -> None:
    """A silence of many usual steps puts one null between the two sides."""
    t, values = _series([0, 1000, 2000, 3000, 60_000, 61_000], odo=[1, 2, 3, 4, 1, 2])
    found = bucketed(t, values, ["odo"], from_ms=0, bucket_ms=1000)
    assert found.columns["odo"].avg == [1, 2, 3, 4, None, 1, 2]
    assert found.t_ms == [0, 1000, 2000, 3000, 4000, 60_000, 61_000]
    assert found.columns["odo"].min[4] is None
    assert found.columns["odo"].max[4] is None


def test_hourly_data_is_a_line_not_dots() -> None:
    """Data once an hour in small buckets: the usual step is an hour, so no gap."""
    hours = [h * 3_600_000 for h in range(6)]
    t, values = _series(hours, soc=[0.1] * 6)
    found = bucketed(t, values, ["soc"], from_ms=0, bucket_ms=60_000)
    assert None not in found.columns["soc"].avg


def test_cell_spread_is_of_the_same_sample() -> None:
    """Max of one sample minus min of the same sample; never min of one minus max of another."""
    t, values = _series(
        [0, 500, 1000], cell_v_max=[3.40, 3.30, 3.35], cell_v_min=[3.38, 3.20, 3.35]
    )
    found = bucketed(t, values, ["cell_spread_v"], from_ms=0, bucket_ms=1000)
    spread = found.columns["cell_spread_v"]
    assert spread.min == pytest.approx([0.02, 0.0])
    assert spread.max == pytest.approx([0.10, 0.0])


def test_a_reversed_sample_spreads_zero_not_negative() -> None:
    """A sample claiming max < min is clamped to a zero spread."""
    t, values = _series([0], cell_v_max=[3.1], cell_v_min=[3.2])
    found = bucketed(t, values, ["cell_spread_v"], from_ms=0, bucket_ms=1000)
    assert found.columns["cell_spread_v"].avg == [0.0]


def test_no_samples_no_points() -> None:
    """Empty input: empty columns."""
    t, values = _series([], soc=[])
    found = bucketed(t, values, ["soc"], from_ms=0, bucket_ms=1000)
    assert found.t_ms == []
    assert found.columns["soc"].avg == []


def test_source_columns_expand_derived_ones_once() -> None:
    """cell_spread_v reads cell_v_max and cell_v_min; a column asked twice is read once."""
    assert source_columns(["cell_spread_v", "cell_v_max", "soc"]) == [
        "cell_v_max",
        "cell_v_min",
        "soc",
    ]


def test_bucket_size_fits_the_span() -> None:
    """A day in 600 points is 144 s; anything under a second rounds up to one."""
    assert bucket_size(86_400_000, 600) == 144_000
    assert bucket_size(10, 600) == 1000
    with pytest.raises(ValueError, match="points must be >= 1"):
        bucket_size(1000, 0)


def test_bucketed_refuses_a_zero_bucket() -> None:
    """bucket_ms 0 is a programming error with a clear message."""
    t, values = _series([0], soc=[0.5])
    with pytest.raises(ValueError, match="bucket_ms must be >= 1"):
        bucketed(t, values, ["soc"], from_ms=0, bucket_ms=0)


@pytest.mark.parametrize(
    "text",
    ["1767225600000", "2026-01-01", "2026-01-01T00:00:00Z", "2026-01-01T08:00:00+08:00",
     " 2026-01-01T00:00:00.000+00:00 "],
)  # fmt: skip
def test_times_parse_as_unix_ms_or_iso_8601(text: str) -> None:
    """Every form names 2026-01-01T00:00:00Z; no zone means UTC."""
    assert parse_time(text) == 1_767_225_600_000


@pytest.mark.parametrize("text", ["yesterday", "", "-5", "2026-02-30", "1e12"])
def test_times_refuse_anything_else(text: str) -> None:
    """A clear error naming the value and both forms."""
    with pytest.raises(TimeFormatError, match="neither Unix ms nor an ISO 8601"):
        parse_time(text)
