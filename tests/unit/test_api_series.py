"""Chart series: buckets on one axis, gaps as nulls, a per-sample cell spread, query times."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from api.series import bucket_size, bucketed, bucketed_blocks, source_columns
from api.times import TimeFormatError, parse_time
from gateway.store.samples import BlockGroup, block_dtype
from ledger.telemetry import FIELDS


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


def _groups(seed: int) -> list[BlockGroup]:
    """Random pack blocks of three sizes, with silences, as the store hands them out."""
    rng = np.random.default_rng(seed)
    groups = []
    start = 1_767_225_600_000
    for n, blocks, dt_ms in ((4, 50, 1000), (10, 30, 1000), (60, 40, 60_000)):
        dtype = block_dtype("pack", n)
        data = np.zeros(blocks, dtype=dtype)
        for name in dtype.names or ():
            info = np.iinfo(dtype[name].base)
            data[name] = rng.integers(max(info.min, -1000), min(info.max, 30_000),
                                      size=(blocks, n), endpoint=True)  # fmt: skip
        steps = rng.integers(1, 4, size=blocks) * n * dt_ms
        steps[rng.integers(0, blocks)] += 40 * n * dt_ms  # an outage
        t_ms = start + np.cumsum(steps)
        start = int(t_ms[-1]) + n * dt_ms
        names = ["soc", "temp_max_c", "cell_v_max", "cell_v_min", "alarm_level"]
        groups.append(BlockGroup(
            n=n, t_ms=t_ms.astype(np.int64), dt_ms=np.full(blocks, dt_ms, np.int64),
            leaf_index=np.arange(blocks, dtype=np.int64) + 1000 * n,
            wire={name: data[name] for name in names},
            per_unit={name: float(spec.per_unit) for spec in FIELDS["pack"]
                      for name in names if spec.attr == name},
            integral={name: spec.integral for spec in FIELDS["pack"]
                      for name in names if spec.attr == name},
        ))  # fmt: skip
    return groups


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("cut", [(0, 0), (1500, -2500), (7, -70_001)])
@pytest.mark.parametrize("points", [7, 120, 800, 5000])
def test_block_reduction_equals_the_sample_by_sample_one(
    seed: int, cut: tuple[int, int], points: int
) -> None:
    """Whole blocks reduced along their rows give the buckets (min, max, mean, gaps, axis)
    the flattened samples give, with periods and buckets that cut blocks."""
    groups = _groups(seed)
    names = ["soc", "temp_max_c", "cell_spread_v", "alarm_level"]
    first = int(groups[0].t_ms[0])
    last = int(groups[-1].t_ms[-1]) + groups[-1].n * int(groups[-1].dt_ms[-1])
    from_ms, to_ms = first + cut[0], last + cut[1]
    bucket_ms = bucket_size(to_ms - from_ms, points)
    flat = [g.samples(from_ms=from_ms, to_ms=to_ms) for g in groups]
    t_ms = np.concatenate([f.t_ms for f in flat])
    values = {n: np.concatenate([f.values[n] for f in flat]) for n in source_columns(names)}
    expected = bucketed(t_ms, values, names, from_ms=from_ms, bucket_ms=bucket_ms)
    got = bucketed_blocks(groups, names, from_ms=from_ms, to_ms=to_ms, bucket_ms=bucket_ms)
    assert got.t_ms == expected.t_ms
    assert got.bucket_ms == expected.bucket_ms
    for name in names:
        for stat in ("min", "max", "avg"):
            mine, theirs = getattr(got.columns[name], stat), getattr(expected.columns[name], stat)
            assert [v is None for v in mine] == [v is None for v in theirs], (name, stat)
            kept = [v for v in mine if v is not None], [v for v in theirs if v is not None]
            assert np.allclose(*kept, rtol=1e-12, atol=1e-9), (name, stat)


def test_block_reduction_of_nothing_is_empty() -> None:
    """No block, or none in the period: no bucket."""
    assert bucketed_blocks([], ["soc"], from_ms=0, to_ms=10, bucket_ms=1).t_ms == []
    late = bucketed_blocks(_groups(1), ["soc"], from_ms=0, to_ms=10, bucket_ms=1)
    assert late.t_ms == []
    with pytest.raises(ValueError, match="bucket_ms"):
        bucketed_blocks([], ["soc"], from_ms=0, to_ms=10, bucket_ms=0)
