"""Campaign results: did the contacted members of a logged segment respond better than its held-out control group?

stats (pure statistics over counts and arrays, SciPy/statsmodels) ← compute (reads a log's groups and the window's
outcomes, counts with numpy) ← power (the hint before logging) and cli (`segment results`, `campaign results`).
migration.to_v3 adds the outcomes table to an older database.
"""

from __future__ import annotations

from .compute import (
    DEFAULT_WINDOW_DAYS,
    MAX_WINDOW_DAYS,
    MIN_RESPONDERS,
    POSITIVE_EVALUATIONS,
    RESULT_STATES,
    CurvePoint,
    GroupResult,
    ResponseCurve,
    Results,
    campaign_results,
    normalise_kinds,
    outcome_kinds,
    response_curve,
    results_frame,
    segment_results,
)
from .migration import to_v3
from .power import BASE_RATE_DAYS, BaseRate, PowerHint, base_rate, detectable_lift
from .stats import (
    FISHER_BELOW,
    LiftTest,
    MeanDifference,
    Rate,
    choose_test,
    compare_proportions,
    rate_bands,
    rate_interval,
    welch_difference,
)

__all__ = [
    "BASE_RATE_DAYS",
    "DEFAULT_WINDOW_DAYS",
    "FISHER_BELOW",
    "MAX_WINDOW_DAYS",
    "MIN_RESPONDERS",
    "POSITIVE_EVALUATIONS",
    "RESULT_STATES",
    "BaseRate",
    "CurvePoint",
    "GroupResult",
    "LiftTest",
    "MeanDifference",
    "PowerHint",
    "Rate",
    "ResponseCurve",
    "Results",
    "base_rate",
    "campaign_results",
    "choose_test",
    "compare_proportions",
    "detectable_lift",
    "normalise_kinds",
    "outcome_kinds",
    "rate_bands",
    "rate_interval",
    "response_curve",
    "results_frame",
    "segment_results",
    "to_v3",
    "welch_difference",
]
