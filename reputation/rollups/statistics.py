"""Small, exact statistics for the roll-ups: every number ships with its n and an interval.

Aggregation happens in SQL as weighted sufficient statistics (sum of weights, of weight x value,
of weight x value squared, of squared weights); :class:`Moments` turns those into a mean, a Kish
effective sample size and a t interval, and lets several groups be merged with a per-group factor
(the brand balancing of vendor scores). Wilson intervals, Bayesian shrinkage and recency weights
are one-liners kept here so tests can compare them with hand-computed values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from scipy.special import stdtrit

Z_95 = 1.959963984540054  # two-sided 95% normal quantile
CONFIDENCE = 0.95


def wilson_interval(successes: float, n: float, z: float = Z_95) -> tuple[float | None, float | None]:
    """Wilson score interval for a proportion; behaves at p=0, p=1 and small n, unlike p +/- z*se.

    ``n`` may be an effective (non-integer) sample size when the proportion is weighted.
    """
    if n <= 0:
        return None, None
    p = min(max(successes / n, 0.0), 1.0)
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_interval(
    mean: float, sd: float, n_eff: float, confidence: float = CONFIDENCE
) -> tuple[float | None, float | None]:
    """Student-t interval for a mean; ``n_eff`` below 2 has no spread to estimate, so no interval."""
    if n_eff < 2 or math.isnan(sd):
        return None, None
    q = float(stdtrit(n_eff - 1, 0.5 + confidence / 2))
    half = q * sd / math.sqrt(n_eff)
    return mean - half, mean + half


def bayesian_average(mean: float | None, n: float, prior_mean: float | None, k: float) -> float | None:
    """Shrink ``mean`` toward ``prior_mean`` as if ``k`` pseudo-reviews sat at the prior.

    The weighted rating IMDb and review sites use: (n * mean + k * prior) / (n + k). A vendor
    with three glowing reviews no longer outranks one with three hundred good ones.
    """
    if mean is None or n <= 0:
        return None
    if prior_mean is None or k <= 0:
        return mean
    return (n * mean + k * prior_mean) / (n + k)


def recency_weight(age_days: float, half_life_days: float) -> float:
    """Exponential decay: a review ``half_life_days`` old counts half as much as one from today."""
    return 0.5 ** (max(age_days, 0.0) / half_life_days)


@dataclass
class Moments:
    """Weighted sufficient statistics of one value: sum w, sum w*x, sum w*x^2, sum w^2, and n rows."""

    w: float = 0.0
    wx: float = 0.0
    wxx: float = 0.0
    ww: float = 0.0
    n: float = 0.0  # rows behind the sums; fractional for a brand's sums of attribution weights

    def add(self, other: Moments, factor: float = 1.0) -> None:
        """Merge another group whose weights are all multiplied by ``factor``."""
        self.w += factor * other.w
        self.wx += factor * other.wx
        self.wxx += factor * other.wxx
        self.ww += factor * factor * other.ww
        self.n += other.n

    @property
    def mean(self) -> float | None:
        return self.wx / self.w if self.w > 0 else None

    @property
    def n_eff(self) -> float:
        """Kish effective sample size (sum w)^2 / sum w^2; equals n when all weights are equal."""
        return self.w * self.w / self.ww if self.ww > 0 else 0.0

    @property
    def sd(self) -> float:
        """Weighted standard deviation with the reliability-weights correction (n-1 when unweighted)."""
        if self.w <= 0:
            return math.nan
        denom = self.w - self.ww / self.w
        if denom <= 0:
            return math.nan
        ss = max(self.wxx - self.wx * self.wx / self.w, 0.0)
        return math.sqrt(ss / denom)

    def interval(self) -> tuple[float | None, float | None]:
        mean = self.mean
        if mean is None:
            return None, None
        return mean_interval(mean, self.sd, self.n_eff)

    def share_interval(self) -> tuple[float | None, float | None]:
        """Wilson interval when the values are 0/1 indicators (weighted proportion, effective n)."""
        mean = self.mean
        if mean is None:
            return None, None
        n_eff = self.n_eff
        return wilson_interval(mean * n_eff, n_eff)


# Slices of reviews: what the roll-up SQL sums per (brand, vendor, month), merged in Python.
COUNTS = ("reviews", "duplicates", "non_english", "relative", "undated")
# metric -> the metric whose per-brand weight total sets the brand-balancing factor
BALANCE_BASE = {"scored": "scored", "positive": "scored", "negative": "scored", "cs": "cs", "recent": "cs"}


@dataclass
class Group:
    """Counts and weighted moments of one slice of reviews (a brand, a vendor-brand, a month)."""

    counts: dict[str, float] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0.0))
    moments: dict[str, Moments] = field(default_factory=lambda: {m: Moments() for m in BALANCE_BASE})

    @classmethod
    def from_row(cls, row: dict[str, Any], *, brand_level: bool) -> Group:
        """A brand counts each review once; a vendor counts it with its attribution weight.

        The row's sums are weighted by the attribution weight ``a``; a review's weights across
        vendors add up to 1, so summing ``a``-weighted rows gives the brand's unweighted totals
        (fractional per row; round only after summing).
        """
        group = cls()
        for name in COUNTS:
            group.counts[name] = row[f"w_{name}"] if brand_level else row[f"n_{name}"]
        scored = (row["s_w"], row["s_w"]) if brand_level else (row["s_ww"], row["s_n"])
        cs = (row["c_w"], row["c_w"]) if brand_level else (row["c_ww"], row["c_n"])
        recent = (row["r_wwb"], row["r_a"]) if brand_level else (row["r_ww"], row["r_n"])
        m = group.moments
        m["scored"] = Moments(row["s_w"], row["s_wx"], row["s_wxx"], *scored)
        m["positive"] = Moments(row["s_w"], row["p_wx"], row["p_wx"], *scored)
        m["negative"] = Moments(row["s_w"], row["q_wx"], row["q_wx"], *scored)
        m["cs"] = Moments(row["c_w"], row["c_wx"], row["c_wxx"], *cs)
        m["recent"] = Moments(row["r_w"], row["r_wx"], row["r_wxx"], *recent)
        return group

    def add(self, other: Group, factors: dict[str, float] | None = None) -> None:
        for name in COUNTS:
            self.counts[name] += other.counts[name]
        for metric, moments in self.moments.items():
            moments.add(other.moments[metric], factors[metric] if factors else 1.0)


def merge_balanced(parts: Iterable[Group]) -> Group:
    """Merge brands so each weighs sqrt(its n) in every metric: each review gets 1/sqrt(n_brand).

    A vendor's score is then brand-balanced: a client with 10,000 reviews outweighs one with 100
    by 10x rather than 100x, so one huge client cannot hide the others.
    """
    merged = Group()
    for part in parts:
        factors = {}
        for metric, base in BALANCE_BASE.items():
            total = part.moments[base].w
            factors[metric] = 1.0 / math.sqrt(total) if total > 0 else 0.0
        merged.add(part, factors)
    return merged


def brand_weights(parts: dict[str, Group]) -> dict[str, float]:
    """Each brand's share of a vendor's CS score under sqrt balancing (0 when it has no CS review)."""
    roots = {b: math.sqrt(g.moments["cs"].w) if g.moments["cs"].w > 0 else 0.0 for b, g in parts.items()}
    total = sum(roots.values())
    return {b: (r / total if total > 0 else 0.0) for b, r in roots.items()}
