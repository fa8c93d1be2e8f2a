"""Statistics of an ablation over seeds: mean and spread per model, and the paired difference against the baseline.

Every model trains once per seed with the same data order and augmentation (Ultralytics seeds both from ``seed``),
so the runs of two models under one seed form a pair. The difference ``model - baseline`` per seed removes what the
seed does to both alike; its mean with a Student-t confidence interval says whether the seeds separate the two
models. An interval that contains 0 (or a single seed, which gives no interval) means *not separable*.

Pure Python (no SciPy): the t quantile comes from the closed-form t distribution for integer degrees of freedom.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (n - 1); the deviation is None for a single value."""
    if not values:
        raise ValueError("mean_std() needs at least one value")
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else None)


def t_central_probability(t: float, df: int) -> float:
    """P(|T| < t) for Student's t with ``df`` (an integer >= 1) degrees of freedom.

    The finite series of Abramowitz & Stegun 26.7.3 (odd df) and 26.7.4 (even df), in theta = atan(t / sqrt(df)).
    """
    if df < 1 or int(df) != df:
        raise ValueError(f"degrees of freedom must be an integer >= 1, got {df!r}")
    theta = math.atan(abs(t) / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    if df % 2:  # odd: (2/pi) (theta + sin cos (1 + 2/3 cos^2 + 2*4/(3*5) cos^4 + ...)), df - 2 terms in all
        term, total = 1.0, 1.0 if df > 1 else 0.0
        for k in range(1, (df - 1) // 2):
            term *= c2 * (2 * k) / (2 * k + 1)
            total += term
        return 2 / math.pi * (theta + math.sin(theta) * math.cos(theta) * total)
    term, total = 1.0, 1.0  # even: sin (1 + 1/2 cos^2 + 1*3/(2*4) cos^4 + ...)
    for k in range(1, df // 2):
        term *= c2 * (2 * k - 1) / (2 * k)
        total += term
    return math.sin(theta) * total


def t_quantile(confidence: float, df: int) -> float:
    """The t with P(|T| < t) = ``confidence`` (e.g. 0.95 -> 12.706 for df 1, 4.303 for df 2), by bisection."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    low, high = 0.0, 1.0
    while t_central_probability(high, df) < confidence:
        high *= 2
    for _ in range(200):  # far past float precision; stops early once the bracket cannot shrink
        mid = (low + high) / 2
        if mid in (low, high):
            break
        low, high = (mid, high) if t_central_probability(mid, df) < confidence else (low, mid)
    return (low + high) / 2


@dataclass(frozen=True)
class PairedDifference:
    """``model - baseline`` over the seeds both have: mean and confidence interval (None with a single pair)."""

    mean: float
    low: float | None
    high: float | None
    pairs: int
    confidence: float = 0.95

    @property
    def separable(self) -> bool:
        """Whether the interval excludes 0, i.e. the seeds separate the model from the baseline."""
        return self.low is not None and (self.low > 0 or self.high < 0)


def paired_difference(
    values: dict[int, float], baseline: dict[int, float], confidence: float = 0.95
) -> PairedDifference | None:
    """The paired difference of ``values`` against ``baseline`` (both: seed -> metric); None without common seeds.

    Interval: mean +- t(confidence, n - 1) * sd / sqrt(n) of the per-seed differences.
    """
    seeds = sorted(set(values) & set(baseline))
    if not seeds:
        return None
    diffs = [values[s] - baseline[s] for s in seeds]
    mean, sd = mean_std(diffs)
    if sd is None:
        return PairedDifference(mean, None, None, 1, confidence)
    half = t_quantile(confidence, len(diffs) - 1) * sd / math.sqrt(len(diffs))
    return PairedDifference(mean, mean - half, mean + half, len(diffs), confidence)
