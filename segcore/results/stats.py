"""The statistics of campaign results, as pure functions over counts and arrays (no database, no pages).

Every interval and test comes from SciPy or statsmodels; this module only picks the method and shapes the answer:

- a response rate: Wilson score interval (`proportion_confint(method="wilson")`), right at 0 and at 100 %;
- the absolute lift (treated − control): Newcombe's hybrid score interval for a difference of two independent
  proportions (`confint_proportions_2indep(method="newcomb")`);
- the relative lift (treated ÷ control − 1): the log-adjusted interval of the ratio (`compare="ratio"`), only when
  both groups have responders;
- the p-value: Fisher's exact test (`scipy.stats.fisher_exact`) when any of the four cells of the 2×2 table is
  under 10, else the two-proportion z-test (`proportions_ztest`, pooled);
- revenue per contact: Welch's unequal-variance t interval and test on the difference of the per-contact means
  (`CompareMeans(...).tconfint_diff(usevar="unequal")`), every contact counting, non-buyers as 0.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.stats import fisher_exact
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportions_ztest,
)
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

__all__ = [
    "ALPHA",
    "FISHER_BELOW",
    "LiftTest",
    "MeanDifference",
    "Rate",
    "compare_proportions",
    "rate_interval",
    "rate_bands",
    "choose_test",
    "welch_difference",
]

ALPHA = 0.05  # 95 % intervals and a two-sided 5 % test everywhere
# Below this many contacts in any cell of the 2×2 table the z-test's normal approximation is poor: Fisher instead.
FISHER_BELOW = 10


@dataclass(frozen=True)
class Rate:
    """A share with its 95 % Wilson interval; rate and bounds are None for a group of no contacts."""

    count: int
    nobs: int
    rate: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class LiftTest:
    """Treated against control: the absolute and relative lift with their intervals, and the p-value of no lift."""

    lift_abs: float
    lift_abs_low: float
    lift_abs_high: float
    lift_rel: float | None  # None when the control group has no responder (no ratio to speak of)
    lift_rel_low: float | None
    lift_rel_high: float | None
    p_value: float
    test: str  # "fisher" | "z"


@dataclass(frozen=True)
class MeanDifference:
    """Treated mean minus control mean with Welch's interval and p-value (None when the data cannot say)."""

    diff: float
    low: float | None
    high: float | None
    p_value: float | None


def _check_counts(count: int, nobs: int) -> None:
    if nobs < 0 or count < 0 or count > nobs:
        raise ValueError(f"a count of {count} out of {nobs} is not a proportion")


def rate_interval(count: int, nobs: int, alpha: float = ALPHA) -> Rate:
    """count/nobs with its Wilson interval."""
    _check_counts(count, nobs)
    if nobs == 0:
        return Rate(count, nobs, None, None, None)
    low, high = proportion_confint(count, nobs, alpha=alpha, method="wilson")
    return Rate(int(count), int(nobs), count / nobs, float(low), float(high))


def rate_bands(
    counts: np.ndarray, nobs: int, alpha: float = ALPHA
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rates and Wilson bounds of many counts out of the same nobs at once (a cumulative curve); NaN when nobs is 0."""
    counts = np.asarray(counts, dtype=np.float64)
    if nobs == 0:
        nan = np.full(len(counts), np.nan)
        return nan, nan.copy(), nan.copy()
    low, high = proportion_confint(counts, nobs, alpha=alpha, method="wilson")
    return counts / nobs, np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)


def choose_test(treated: tuple[int, int], control: tuple[int, int]) -> str:
    """"fisher" when any cell of the 2×2 table (responders, non-responders per group) is under 10, else "z"."""
    cells = (treated[0], treated[1] - treated[0], control[0], control[1] - control[0])
    return "fisher" if min(cells) < FISHER_BELOW else "z"


def compare_proportions(
    treated_count: int, treated_n: int, control_count: int, control_n: int, alpha: float = ALPHA
) -> LiftTest:
    """The lift of the treated rate over the control rate, its intervals and the p-value of "no difference"."""
    _check_counts(treated_count, treated_n)
    _check_counts(control_count, control_n)
    if treated_n == 0 or control_n == 0:
        raise ValueError("a lift needs contacts in both groups")
    p_t, p_c = treated_count / treated_n, control_count / control_n
    low, high = confint_proportions_2indep(
        treated_count, treated_n, control_count, control_n, method="newcomb", compare="diff", alpha=alpha
    )
    rel = rel_low = rel_high = None
    if control_count > 0:
        rel = p_t / p_c - 1
        if treated_count > 0:
            r_low, r_high = confint_proportions_2indep(
                treated_count, treated_n, control_count, control_n,
                method="log-adjusted", compare="ratio", alpha=alpha,
            )
            rel_low, rel_high = float(r_low) - 1, float(r_high) - 1
    test = choose_test((treated_count, treated_n), (control_count, control_n))
    if test == "fisher":
        table = [[treated_count, treated_n - treated_count], [control_count, control_n - control_count]]
        p_value = float(fisher_exact(table, alternative="two-sided").pvalue)
    else:
        _, p = proportions_ztest([treated_count, control_count], [treated_n, control_n], alternative="two-sided")
        p_value = float(p)
    return LiftTest(
        lift_abs=p_t - p_c,
        lift_abs_low=float(low),
        lift_abs_high=float(high),
        lift_rel=rel,
        lift_rel_low=rel_low,
        lift_rel_high=rel_high,
        p_value=min(1.0, p_value),
        test=test,
    )


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def welch_difference(treated: np.ndarray, control: np.ndarray, alpha: float = ALPHA) -> MeanDifference | None:
    """mean(treated) − mean(control) with Welch's t interval and p-value; None when a group is empty.

    With fewer than two values in a group, or no spread in either, there is no interval: low, high and p_value are
    None and only the difference is said."""
    t = np.asarray(treated, dtype=np.float64)
    c = np.asarray(control, dtype=np.float64)
    if len(t) == 0 or len(c) == 0:
        return None
    diff = float(t.mean() - c.mean())
    if len(t) < 2 or len(c) < 2 or (np.ptp(t) == 0 and np.ptp(c) == 0):
        return MeanDifference(diff, None, None, None)
    compare = CompareMeans(DescrStatsW(t), DescrStatsW(c))
    with warnings.catch_warnings():
        # One group without spread divides 0 by a positive sum inside statsmodels: a finite, valid answer.
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = compare.tconfint_diff(alpha=alpha, usevar="unequal")
        _, p_value, _ = compare.ttest_ind(usevar="unequal")
    return MeanDifference(diff, _finite(low), _finite(high), _finite(p_value))
