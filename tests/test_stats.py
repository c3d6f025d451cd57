"""Statistics helpers against values worked out by hand."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reputation.rollups.statistics import (
    Moments,
    ScoreDistribution,
    bayesian_average,
    bounded_mean_interval,
    dispersion,
    rank_probabilities,
    recency_weight,
    shrunk_distribution,
    wilson_interval,
)


def test_wilson_interval_matches_hand_computation() -> None:
    # 8 successes of 10, z = 1.96: centre = (0.8 + 0.19208) / 1.38416 = 0.716738,
    # half = 1.96 / 1.38416 * sqrt(0.016 + 0.009604) = 0.226580 (published: 0.4902 .. 0.9433)
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.490158, abs=2e-5)
    assert high == pytest.approx(0.943318, abs=2e-5)


def test_wilson_interval_edges() -> None:
    assert wilson_interval(0, 0) == (None, None)
    low, high = wilson_interval(0, 5)
    assert low == 0.0
    assert high == pytest.approx(0.434482, abs=1e-5)  # z^2 / (n + z^2) with z = 1.96
    low, high = wilson_interval(5, 5)
    assert high == 1.0
    assert low == pytest.approx(1 - 0.434482, abs=1e-5)


def moments_of(values: list[float], weights: list[float] | None = None) -> Moments:
    m = Moments()
    for x, w in zip(values, weights or [1.0] * len(values), strict=True):
        m.add(Moments(1.0, x, x * x, 1.0, 1), factor=w)
    return m


def test_bounded_interval_worst_case_is_wilson_on_the_half_scale() -> None:
    # all +1 over 5 reviews: rho = 1 (mean at the bound), so Wilson(5 of 5) mapped to -1..1
    low, high = moments_of([1.0] * 5).interval()
    assert high == 1.0
    assert low == pytest.approx(2 * (1 - 0.434482) - 1, abs=1e-5)
    low, high = moments_of([-1.0] * 5).interval()
    assert (low, high) == (-1.0, pytest.approx(2 * 0.434482 - 1, abs=1e-5))


@pytest.mark.parametrize(
    "values",
    [[1.0], [-1.0], [0.0], [0.99], [1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [0.3, 0.3], [0.95, 1.0, 0.98]],
)
def test_tiny_samples_get_an_interval_inside_the_bounds(values: list[float]) -> None:
    m = moments_of(values)
    low, high = m.interval()
    assert low is not None and high is not None
    assert -1.0 <= low <= m.mean <= high <= 1.0  # type: ignore[operator]
    assert high - low > 0.2  # a handful of reviews never claims precision


def test_bounded_interval_narrows_with_agreement_and_n() -> None:
    # values 0.2, 0.4, 0.6: mean 0.4, sd 0.2; bound (1 - 0.4)(0.4 + 1) = 0.84, rho = 0.04 / 0.84,
    # pulled toward 1 with 2 dof: (2 * rho + 1) / 3; trials = 3 / that; Wilson on p = 0.7
    rho = (2 * (0.04 / 0.84) + 1) / 3
    assert dispersion(0.2, 0.4, 3) == pytest.approx(rho)
    trials = 3 / rho
    w_low, w_high = wilson_interval(0.7 * trials, trials)
    low, high = bounded_mean_interval(0.4, 0.2, 3)
    assert (low, high) == (pytest.approx(2 * w_low - 1), pytest.approx(2 * w_high - 1))  # type: ignore[operator]
    spread = moments_of([-1.0, 1.0] * 50).interval()
    tight = moments_of([0.1, -0.1] * 50).interval()
    assert tight[1] - tight[0] < (spread[1] - spread[0]) / 3  # type: ignore[operator]
    # large n, modest spread: close to the normal interval mean +/- 1.96 sd / sqrt(n)
    m = moments_of([0.1, -0.1] * 2000)
    assert m.interval()[1] == pytest.approx(1.959964 * m.sd / math.sqrt(4000), rel=0.05)
    assert bounded_mean_interval(0.5, math.nan, 0) == (None, None)


@given(
    st.lists(st.floats(min_value=-1.0, max_value=1.0), min_size=1, max_size=40),
    st.lists(st.floats(min_value=0.05, max_value=5.0), min_size=40, max_size=40),
)
def test_intervals_never_leave_minus_one_to_one(values: list[float], weights: list[float]) -> None:
    m = moments_of(values, weights[: len(values)])
    low, high = m.interval()
    assert low is not None and high is not None and m.mean is not None
    assert -1.0 <= low <= high <= 1.0
    assert low <= m.mean + 1e-9 and m.mean - 1e-9 <= high
    dist = shrunk_distribution(bayesian_average(m.mean, m.n_eff, 0.0, 20), m.n_eff, m.dispersion, 20)
    assert dist is not None
    s_low, s_high = dist.interval()
    assert -1.0 <= s_low <= dist.mean <= s_high <= 1.0


def test_shrunk_distribution_is_centred_on_the_shrunk_score() -> None:
    shrunk = bayesian_average(0.6, 30, -0.1, 20)
    dist = shrunk_distribution(shrunk, 30, 1.0, 20)
    assert dist is not None
    assert dist.mean == pytest.approx(shrunk)
    assert dist.alpha + dist.beta == pytest.approx(50)  # 30 trials at rho = 1, plus 20 pseudo-reviews
    assert shrunk_distribution(None, 0, 1.0, 20) is None


def test_rank_probabilities_sum_to_one_and_repeat() -> None:
    dists = [ScoreDistribution(80, 20), ScoreDistribution(75, 25), ScoreDistribution(20, 80)]
    best, ahead = rank_probabilities(dists)
    assert sum(best) == pytest.approx(1.0)
    assert best[0] > best[1] > best[2] >= 0.0
    assert ahead[1] == pytest.approx(1.0)  # 0.75 vs 0.2 on the 0..1 scale: never reversed
    assert 0.5 < ahead[0] < 0.95
    assert rank_probabilities(dists) == (best, ahead)  # fixed seed
    assert rank_probabilities([]) == ([], [])


def test_moments_unweighted_equal_plain_statistics() -> None:
    m = Moments()
    for x in (1.0, 2.0, 3.0):
        m.add(Moments(1.0, x, x * x, 1.0, 1))
    assert m.mean == pytest.approx(2.0)
    assert m.n_eff == pytest.approx(3.0)
    assert m.sd == pytest.approx(1.0)


def test_moments_kish_effective_n() -> None:
    # weights 1 and 3: (1 + 3)^2 / (1 + 9) = 1.6
    m = Moments(1.0, 0.0, 0.0, 1.0, 1)
    m.add(Moments(1.0, 1.0, 1.0, 1.0, 1), factor=3.0)
    assert m.n_eff == pytest.approx(1.6)
    assert m.mean == pytest.approx(0.75)


def test_bayesian_average() -> None:
    # 5 reviews averaging 1.0, prior 0.0 with k = 20: 5 / 25
    assert bayesian_average(1.0, 5, 0.0, 20) == pytest.approx(0.2)
    assert bayesian_average(None, 0, 0.3, 20) is None
    assert bayesian_average(0.5, 10, None, 20) == 0.5


def test_recency_weight_halves_each_half_life() -> None:
    assert recency_weight(0, 180) == 1.0
    assert recency_weight(180, 180) == pytest.approx(0.5)
    assert recency_weight(360, 180) == pytest.approx(0.25)
