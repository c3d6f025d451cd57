"""Statistics helpers against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from reputation.rollups.statistics import (
    Moments,
    bayesian_average,
    mean_interval,
    recency_weight,
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


def test_mean_interval_uses_student_t() -> None:
    # values 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.302653
    low, high = mean_interval(2.0, 1.0, 3)
    assert low == pytest.approx(2 - 4.302653 / math.sqrt(3), abs=1e-6)
    assert high == pytest.approx(2 + 4.302653 / math.sqrt(3), abs=1e-6)
    assert mean_interval(2.0, 0.0, 1) == (None, None)


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
