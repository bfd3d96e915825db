"""The statistics of campaign results against SciPy/statsmodels: hand-computed tables, edge cases, random tables."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import fisher_exact, ttest_ind
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint, proportions_ztest

from segcore._errors import UsageError
from segcore.results import (
    FISHER_BELOW,
    choose_test,
    compare_proportions,
    detectable_lift,
    rate_bands,
    rate_interval,
    welch_difference,
)


def test_wilson_by_hand() -> None:
    # 30 of 150: centre (30 + 1.96²/2) / (150 + 1.96²), half-width from the score formula (Wilson 1927).
    z = 1.959963984540054
    n, p = 150, 0.2
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    r = rate_interval(30, 150)
    assert (r.rate, r.low, r.high) == pytest.approx((0.2, centre - half, centre + half))


def test_zero_and_all_responders_and_empty_groups() -> None:
    zero = rate_interval(0, 40)
    assert zero.rate == 0 and zero.low == 0 and 0 < zero.high < 0.1
    full = rate_interval(40, 40)
    assert full.rate == 1 and full.high == pytest.approx(1) and 0.9 < full.low < 1
    assert rate_interval(0, 0).rate is None
    with pytest.raises(ValueError):
        rate_interval(5, 4)
    # Nobody responds in either group: no lift, an interval around 0, p = 1 (Fisher: a zero cell).
    none = compare_proportions(0, 100, 0, 20)
    assert none.lift_abs == 0 and none.lift_abs_low < 0 < none.lift_abs_high and none.test == "fisher"
    assert none.p_value == pytest.approx(1) and none.lift_rel is None
    # Everybody responds in both.
    every = compare_proportions(100, 100, 20, 20)
    assert every.lift_abs == 0 and every.test == "fisher" and every.p_value == pytest.approx(1)
    assert every.lift_rel == pytest.approx(0)
    # Control without responders: no relative lift, the absolute one still has its interval.
    some = compare_proportions(12, 100, 0, 20)
    assert some.lift_rel is None and some.lift_abs_low < 0.12 < some.lift_abs_high
    with pytest.raises(ValueError):
        compare_proportions(1, 10, 0, 0)


def test_tiny_groups() -> None:
    r = compare_proportions(1, 2, 0, 1)
    lo, hi = confint_proportions_2indep(1, 2, 0, 1, method="newcomb", compare="diff")
    assert (r.lift_abs, r.lift_abs_low, r.lift_abs_high) == pytest.approx((0.5, lo, hi))
    assert r.test == "fisher" and r.p_value == pytest.approx(1)


def test_the_test_follows_the_smallest_cell() -> None:
    assert choose_test((10, 20), (10, 20)) == "z"
    assert choose_test((10, 19), (10, 20)) == "fisher"  # 9 non-responders
    assert choose_test((9, 100), (50, 100)) == "fisher"
    assert FISHER_BELOW == 10


@settings(max_examples=150, deadline=None)
@given(
    n_t=st.integers(1, 3000),
    n_c=st.integers(1, 800),
    f_t=st.floats(0, 1),
    f_c=st.floats(0, 1),
)
def test_random_tables_agree_with_scipy_and_statsmodels(n_t: int, n_c: int, f_t: float, f_c: float) -> None:
    x_t, x_c = round(n_t * f_t), round(n_c * f_c)
    r = compare_proportions(x_t, n_t, x_c, n_c)
    lo, hi = confint_proportions_2indep(x_t, n_t, x_c, n_c, method="newcomb", compare="diff")
    assert (r.lift_abs_low, r.lift_abs_high) == pytest.approx((lo, hi))
    assert r.lift_abs_low <= r.lift_abs + 1e-12 and r.lift_abs <= r.lift_abs_high + 1e-12
    assert -1 <= r.lift_abs_low and r.lift_abs_high <= 1
    if min(x_t, n_t - x_t, x_c, n_c - x_c) < 10:
        assert r.test == "fisher"
        assert r.p_value == pytest.approx(fisher_exact([[x_t, n_t - x_t], [x_c, n_c - x_c]]).pvalue)
    else:
        assert r.test == "z"
        assert r.p_value == pytest.approx(proportions_ztest([x_t, x_c], [n_t, n_c])[1])
    assert 0 <= r.p_value <= 1
    w = rate_interval(x_t, n_t)
    assert (w.low, w.high) == pytest.approx(proportion_confint(x_t, n_t, method="wilson"))


def test_bands_are_the_wilson_intervals_of_each_count() -> None:
    counts = np.array([0, 3, 10, 50])
    rate, low, high = rate_bands(counts, 50)
    for c, lo, hi in zip(counts, low, high, strict=True):
        assert (lo, hi) == pytest.approx(proportion_confint(int(c), 50, method="wilson"))
    assert list(rate) == pytest.approx([0, 0.06, 0.2, 1])
    assert np.isnan(rate_bands(counts, 0)[0]).all()


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 400), st.integers(2, 200))
def test_welch_matches_scipy(seed: int, n_t: int, n_c: int) -> None:
    rng = np.random.default_rng(seed)
    t = np.where(rng.random(n_t) < 0.2, rng.lognormal(3, 1, n_t), 0.0)
    c = np.where(rng.random(n_c) < 0.15, rng.lognormal(3, 1, n_c), 0.0)
    d = welch_difference(t, c)
    assert d is not None and d.diff == pytest.approx(t.mean() - c.mean())
    if np.ptp(t) == 0 and np.ptp(c) == 0:
        assert d.low is None and d.p_value is None
        return
    ref = ttest_ind(t, c, equal_var=False)
    lo, hi = ref.confidence_interval(0.95)
    assert (d.low, d.high, d.p_value) == pytest.approx((lo, hi, ref.pvalue), rel=1e-6, abs=1e-9)


def test_welch_edges() -> None:
    assert welch_difference(np.zeros(0), np.ones(3)) is None
    flat = welch_difference(np.zeros(10), np.zeros(5))
    assert flat is not None and flat.diff == 0 and flat.low is None
    one = welch_difference(np.array([3.0]), np.array([1.0, 2.0]))
    assert one is not None and one.diff == pytest.approx(1.5) and one.low is None


def test_power_hint_grows_with_the_control_group() -> None:
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    small = detectable_lift(10_000, 5, 0.05)
    large = detectable_lift(10_000, 50, 0.05)
    assert (small.treated, small.control) == (9_500, 500)
    assert small.min_lift_abs > large.min_lift_abs > 0
    # The lift found has exactly the power asked for, by statsmodels' own power function.
    h = proportion_effectsize(small.detectable_rate, 0.05)
    power = NormalIndPower().power(h, nobs1=9_500, alpha=0.05, ratio=500 / 9_500)
    assert power == pytest.approx(0.8, abs=1e-6)
    assert small.min_lift_rel == pytest.approx(small.min_lift_abs / 0.05)
    # A zero base rate has no relative lift; no holdout or a tiny group says why there is no answer.
    assert detectable_lift(10_000, 10, 0).min_lift_rel is None and detectable_lift(10_000, 10, 0).min_lift_abs > 0
    assert detectable_lift(10_000, 0, 0.05).reason.startswith("no control group")
    tiny = detectable_lift(3, 34, 0.5)
    assert tiny.min_lift_abs is None and "too small" in tiny.reason
    with pytest.raises(UsageError):
        detectable_lift(100, 100, 0.1)
    with pytest.raises(UsageError):
        detectable_lift(100, 10, 1.5)
