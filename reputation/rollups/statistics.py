"""Small, exact statistics for the roll-ups: every number ships with its n and an interval.

Aggregation happens in SQL as weighted sufficient statistics (sum of weights, of weight x value,
of weight x value squared, of squared weights); :class:`Moments` turns those into a mean, a Kish
effective sample size and a bounded interval, and lets several groups be merged with a per-group
factor (the brand balancing of vendor scores). Wilson intervals, Bayesian shrinkage and recency
weights are one-liners kept here so tests can compare them with hand-computed values.

Why bounded intervals: every score lives in -1..1, and a t interval (mean +/- t * sd / sqrt(n))
runs past the bounds on small n (-1.12, +1.18 were published) and claims zero width when a few
values agree. :func:`bounded_mean_interval` maps the score to 0..1 and uses the Wilson score
interval with an effective number of trials taken from the moments already kept: a value in 0..1
with mean p has variance at most p(1 - p) (Bhatia-Davis), so the observed variance is a share rho
of that bound and the mean is as precise as a proportion over n / rho trials. rho is pulled toward
the worst case 1 by one pseudo-observation, so a handful of equal values cannot claim certainty,
and it is 1 where it cannot be estimated (n < 2, or every value at one bound). The interval stays
inside the bounds by construction, exists from n = 1, and tends to the usual normal interval on
large n. The same rho turns the shrunk score into a Beta distribution (:func:`shrunk_distribution`)
whose quantiles give its interval and whose draws give P(best) (:func:`rank_probabilities`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import betaincinv

Z_95 = 1.959963984540054  # two-sided 95% normal quantile
CONFIDENCE = 0.95
# A vendor is ranked only with at least this many customer-service reviews. Under 30, a vendor
# with mixed reviews has a 95% interval wider than +/-0.36 on the -1..1 scale (1.96 / sqrt(30)),
# more than the whole gap between a good and an average vendor in the data we have seen; 30 is
# also where the normal approximation that Wilson intervals refine is commonly trusted.
MIN_RANK_N = 30
# A period (quarter) is drawn in a trend only with at least this many customer-service reviews;
# below it the interval covers most of -1..1 and the point says nothing (shown as a gap).
MIN_PERIOD_N = 20
# P(best) and P(ahead of the next) come from this many draws per vendor with a fixed seed, so a
# rebuild on the same data publishes the same probabilities (Monte Carlo error about +/-0.004).
RANK_DRAWS = 20_000
RANK_SEED = 20_240_613


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


def dispersion(sd: float, mean: float, n_eff: float, lo: float = -1.0, hi: float = 1.0) -> float:
    """Observed variance as a share of the largest possible at this mean, pulled toward 1.

    Bhatia-Davis: a value in lo..hi with mean m has variance at most (hi - m)(m - lo). The share
    rho of that bound is shrunk toward 1 with one pseudo-observation (weight 1 against n_eff - 1
    degrees of freedom), and is 1 when it cannot be estimated (n_eff < 2, or the mean at a bound).
    """
    bound = (hi - mean) * (mean - lo)
    if n_eff < 2 or math.isnan(sd) or bound <= 0:
        return 1.0
    rho = min(sd * sd / bound, 1.0)
    dof = n_eff - 1
    return (dof * rho + 1.0) / (dof + 1.0)


def bounded_mean_interval(
    mean: float, sd: float, n_eff: float, lo: float = -1.0, hi: float = 1.0, z: float = Z_95
) -> tuple[float | None, float | None]:
    """95% interval for a mean of values in lo..hi that never leaves lo..hi (see the module doc).

    The mean is mapped to p in 0..1 and given the Wilson interval over n_eff / rho trials,
    rho being :func:`dispersion`; ``sd`` may be NaN (n = 1, no spread to estimate: rho = 1).
    """
    if n_eff <= 0:
        return None, None
    span = hi - lo
    p = min(max((mean - lo) / span, 0.0), 1.0)
    trials = n_eff / dispersion(sd, mean, n_eff, lo, hi)
    low, high = wilson_interval(p * trials, trials, z)
    if low is None or high is None:
        return None, None
    return lo + span * low, lo + span * high


@dataclass(frozen=True)
class ScoreDistribution:
    """Beta(alpha, beta) on 0..1 standing for a score on -1..1 (score = 2x - 1)."""

    alpha: float
    beta: float

    @property
    def mean(self) -> float:
        return 2 * self.alpha / (self.alpha + self.beta) - 1

    def interval(self, confidence: float = CONFIDENCE) -> tuple[float, float]:
        """Equal-tailed interval; inside -1..1 because a Beta lives on 0..1."""
        tail = (1 - confidence) / 2
        low, high = betaincinv(self.alpha, self.beta, [tail, 1 - tail])
        return 2 * float(low) - 1, 2 * float(high) - 1


def shrunk_distribution(
    shrunk: float | None, n_eff: float, rho: float, prior_strength: float
) -> ScoreDistribution | None:
    """The uncertainty of a shrunk (Bayesian-average) score, as a Beta with that score as its mean.

    Reviews are n_eff / rho trials as in :func:`bounded_mean_interval`, the prior is
    ``prior_strength`` pseudo-reviews: the conjugate Beta-binomial posterior with concentration
    n_eff / rho + k, centred on the published shrunk score so the interval and P(best) describe
    the very number that decides the rank.
    """
    if shrunk is None or n_eff <= 0:
        return None
    concentration = n_eff / rho + max(prior_strength, 0.0)
    p = min(max((shrunk + 1) / 2, 1e-9), 1 - 1e-9)
    return ScoreDistribution(p * concentration, (1 - p) * concentration)


def rank_probabilities(
    dists: list[ScoreDistribution], draws: int = RANK_DRAWS, seed: int = RANK_SEED
) -> tuple[list[float], list[float]]:
    """P(best) of each distribution, and P(each beats the next one in the list), by Monte Carlo.

    Draws are made in list order from one seeded generator, so equal inputs give equal outputs.
    The P(best) values sum to 1 (ties between continuous draws have probability 0).
    """
    if not dists:
        return [], []
    rng = np.random.default_rng(seed)
    sample = np.stack([rng.beta(d.alpha, d.beta, size=draws) for d in dists])
    best = np.bincount(np.argmax(sample, axis=0), minlength=len(dists)) / draws
    ahead = [float(np.mean(sample[i] > sample[i + 1])) for i in range(len(dists) - 1)]
    return [float(b) for b in best], ahead


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
        """Bounded 95% interval of a score in -1..1 (:func:`bounded_mean_interval`)."""
        mean = self.mean
        if mean is None:
            return None, None
        return bounded_mean_interval(mean, self.sd, self.n_eff)

    @property
    def dispersion(self) -> float:
        """Variance share rho of a score in -1..1 (:func:`dispersion`); 1 when there is no mean."""
        mean = self.mean
        return 1.0 if mean is None else dispersion(self.sd, mean, self.n_eff)

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
BALANCE_BASE = {
    "scored": "scored",
    "positive": "scored",
    "negative": "scored",
    "cs": "cs",
    "recent": "cs",
    "other": "other",
}


@dataclass
class Group:
    """Counts and weighted moments of one slice of reviews (a brand, a vendor-brand, a month)."""

    counts: dict[str, float] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0.0))
    moments: dict[str, Moments] = field(default_factory=lambda: {m: Moments() for m in BALANCE_BASE})
    first_day: str | None = None  # earliest and latest dated review behind the slice
    last_day: str | None = None

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
        other = (row["o_w"], row["o_w"]) if brand_level else (row["o_ww"], row["o_n"])
        m["other"] = Moments(row["o_w"], row["o_wx"], row["o_wxx"], *other)
        group.first_day, group.last_day = row["first_day"], row["last_day"]
        return group

    def add(self, other: Group, factors: dict[str, float] | None = None) -> None:
        for name in COUNTS:
            self.counts[name] += other.counts[name]
        for metric, moments in self.moments.items():
            moments.add(other.moments[metric], factors[metric] if factors else 1.0)
        if other.first_day is not None and (self.first_day is None or other.first_day < self.first_day):
            self.first_day = other.first_day
        if other.last_day is not None and (self.last_day is None or other.last_day > self.last_day):
            self.last_day = other.last_day


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
