"""Ablation statistics on hand-made numbers: mean and std, the t quantile, the paired interval, separability."""

from __future__ import annotations

import math

import pytest

from yolo_fasternet.apps.ablation.stats import mean_std, paired_difference, t_central_probability, t_quantile


def test_mean_std_uses_the_sample_deviation():
    mean, std = mean_std([0.2, 0.3, 0.4])
    assert mean == pytest.approx(0.3, abs=1e-15) and std == pytest.approx(0.1, abs=1e-15)


def test_one_value_has_no_deviation():
    assert mean_std([0.25]) == (0.25, None)


@pytest.mark.parametrize(
    "df, t95",  # two-sided 95% quantiles from statistical tables (5 significant digits and beyond)
    [(1, 12.706204736), (2, 4.302652730), (3, 3.182446305), (4, 2.776445105), (9, 2.262157163), (30, 2.042272456)],
)
def test_t_quantile_matches_the_tables(df, t95):
    assert t_quantile(0.95, df) == pytest.approx(t95, abs=1e-8)


def test_t_distribution_with_one_degree_of_freedom_is_cauchy():
    assert t_central_probability(1.0, 1) == pytest.approx(0.5, abs=1e-15)  # P(|T| < 1) = 2 atan(1) / pi


def test_paired_interval_on_hand_made_numbers():
    # differences 0.10, 0.15, 0.05: mean 0.10, sd 0.05, half width 4.302652730 * 0.05 / sqrt(3)
    d = paired_difference({0: 0.40, 1: 0.50, 2: 0.45}, {0: 0.30, 1: 0.35, 2: 0.40})
    half = 4.302652730 * 0.05 / math.sqrt(3)
    assert d.pairs == 3
    assert (d.mean, d.low, d.high) == pytest.approx((0.10, 0.10 - half, 0.10 + half), abs=1e-9)
    assert not d.separable  # the interval -0.024 .. 0.224 contains 0


def test_consistent_differences_are_separable():
    d = paired_difference({0: 0.40, 1: 0.52, 2: 0.46}, {0: 0.30, 1: 0.40, 2: 0.35})  # 0.10, 0.12, 0.11
    half = 4.302652730 * 0.01 / math.sqrt(3)
    assert (d.low, d.high) == pytest.approx((0.11 - half, 0.11 + half), abs=1e-9)
    assert d.separable


def test_a_model_worse_on_every_seed_is_separable_below_zero():
    d = paired_difference({0: 0.20, 1: 0.21}, {0: 0.30, 1: 0.30})
    assert d.high < 0 and d.separable


def test_pairs_only_seeds_both_models_ran():
    d = paired_difference({0: 0.5, 1: 0.6, 7: 0.9}, {0: 0.4, 1: 0.4, 2: 0.1})
    assert d.pairs == 2 and d.mean == pytest.approx(0.15, abs=1e-15)


def test_a_single_seed_gives_no_interval_and_is_not_separable():
    d = paired_difference({0: 0.9}, {0: 0.1})
    assert (d.low, d.high, d.pairs, d.separable) == (None, None, 1, False)


def test_no_common_seed_gives_no_difference():
    assert paired_difference({0: 0.5}, {1: 0.4}) is None


@pytest.mark.parametrize("confidence", [0.0, 1.0, 1.5, -0.1])
def test_a_confidence_outside_zero_to_one_is_refused_naming_it(confidence):
    with pytest.raises(ValueError, match=rf"^confidence must be in \(0, 1\), got {confidence!r}$"):
        t_quantile(confidence, 3)


@pytest.mark.parametrize("df", [0, 1.5, -2])
def test_degrees_of_freedom_that_are_not_a_positive_integer_are_refused_naming_them(df):
    with pytest.raises(ValueError, match=rf"^degrees of freedom must be an integer >= 1, got {df!r}$"):
        t_central_probability(1.0, df)


def test_t_quantile_below_one_at_low_confidence():
    # the median of |T| for df 10 (tables: t_0.75 = 0.699812), below the bisection's first upper bound of 1
    assert t_quantile(0.5, 10) == pytest.approx(0.699812061, abs=1e-8)


def test_the_difference_keeps_its_mean_and_confidence_with_one_pair_and_with_several():
    single = paired_difference({0: 0.9}, {0: 0.1}, confidence=0.9)
    assert single.mean == pytest.approx(0.8, abs=1e-15) and single.confidence == 0.9
    several = paired_difference({0: 0.40, 1: 0.50, 2: 0.45}, {0: 0.30, 1: 0.35, 2: 0.40}, confidence=0.9)
    half = 2.919985580 * 0.05 / math.sqrt(3)  # t_0.95 for df 2 (a two-sided 90% interval)
    assert (several.low, several.high) == pytest.approx((0.10 - half, 0.10 + half), abs=1e-9)
    assert several.confidence == 0.9
