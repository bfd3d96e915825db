"""The benchmark's filters: each in our filter language and, for the baseline, as an obvious pandas mask.

The pandas side works on a DataFrame loaded from the same import files (see bench/baseline.py); both sides must
match the same contacts, which the benchmark checks and reports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

Mask = Callable[[Any], np.ndarray]


@dataclass(frozen=True)
class BenchFilter:
    """One benchmark filter: a name, our filter (text lines or JSON), and the pandas mask."""

    name: str
    ours: list[str] | dict[str, Any]
    pandas: Mask


def _related(b: Any, frame: str, mask: pd.Series) -> np.ndarray:
    rows = getattr(b, frame)
    hit = np.zeros(len(b.df), dtype=bool)
    hit[rows.loc[mask.to_numpy(), "pos"].to_numpy()] = True
    return hit


def _c(b: Any, col: str) -> pd.Series:
    return b.df[col]


FILTERS: list[BenchFilter] = [
    BenchFilter("country eq", ["country=FR"], lambda b: (_c(b, "country") == "FR").to_numpy()),
    BenchFilter("country in", ["country=FR|DE|BE"], lambda b: _c(b, "country").isin(["FR", "DE", "BE"]).to_numpy()),
    BenchFilter("age range", ["age=25..44"], lambda b: _c(b, "age").between(25, 44).to_numpy()),
    BenchFilter("spend >=", ["total_spent=>=500"], lambda b: (_c(b, "total_spent") >= 500).to_numpy()),
    BenchFilter(
        "email wildcard", ["email=*@contoso.com"],
        lambda b: _c(b, "email").str.lower().str.endswith("@contoso.com").fillna(False).to_numpy(dtype=bool),
    ),
    BenchFilter(
        "recent purchase", ["last_purchase_date=>=today-90d"],
        lambda b: (_c(b, "last_purchase_date") >= b.days_ago(90)).to_numpy(),
    ),
    BenchFilter(
        "churn and purchases", ["churn_risk=high", "purchase_count=>=3"],
        lambda b: ((_c(b, "churn_risk") == "high") & (_c(b, "purchase_count") >= 3)).to_numpy(),
    ),
    BenchFilter(
        "women 25-44 not US", ["gender=female", "age_band=25-34|35-44", "country=<>US"],
        lambda b: (
            (_c(b, "gender") == "female") & _c(b, "age").between(25, 44) & (_c(b, "country") != "US").fillna(True)
        ).to_numpy(dtype=bool),
    ),
    BenchFilter(
        "new from ads/referral", ["acquisition_source=ads|referral", "acquisition_date=>=today-1y"],
        lambda b: (
            _c(b, "acquisition_source").isin(["ads", "referral"]) & (_c(b, "acquisition_date") >= b.years_ago(1))
        ).to_numpy(),
    ),
    BenchFilter(
        "mailing any", ["mailing_groups=NEWSLETTER|PROMO"],
        lambda b: (_c(b, "mg_NEWSLETTER") | _c(b, "mg_PROMO")).to_numpy(),
    ),
    BenchFilter(
        "jobs any", ["job_responsibilities=IT|MARKETING"],
        lambda b: (_c(b, "job_IT") | _c(b, "job_MARKETING")).to_numpy(),
    ),
    BenchFilter(
        "industry all", ["industry_groups=RETAIL&TECH"],
        lambda b: (_c(b, "ind_RETAIL") & _c(b, "ind_TECH")).to_numpy(),
    ),
    BenchFilter(
        "emailed last 30d", ["interactions.template=EMAIL", "interactions.date=today-30d.."],
        lambda b: _related(b, "it", (b.it["template"] == "EMAIL") & (b.it["date"] >= b.days_ago(30))),
    ),
    BenchFilter(
        "good meetings", ["interactions.template=MEETING", "interactions.evaluation=positive|very_positive"],
        lambda b: _related(
            b, "it", (b.it["template"] == "MEETING") & b.it["evaluation"].isin(["positive", "very_positive"])
        ),
    ),
    BenchFilter(
        "profile tech", ["profile.questionnaire=INTEREST", "profile.answer=TECH"],
        lambda b: _related(b, "pf", (b.pf["questionnaire"] == "INTEREST") & (b.pf["answer"] == "TECH")),
    ),
    BenchFilter(
        "name contains", ["name=*son*"],
        lambda b: _c(b, "name").str.contains("son", case=False, regex=False).fillna(False).to_numpy(dtype=bool),
    ),
    BenchFilter(
        "cities", ["city=Paris|Lyon|Berlin"],
        lambda b: _c(b, "city").str.lower().isin(["paris", "lyon", "berlin"]).to_numpy(),
    ),
    BenchFilter(
        "rated persons", ["rating=4..5", "type=person"],
        lambda b: (_c(b, "rating").between(4, 5) & (_c(b, "type") == "person")).to_numpy(),
    ),
    BenchFilter(
        "bought last 30 days", ["days_since_last_purchase=..30"],
        lambda b: (_c(b, "last_purchase_date") >= b.days_ago(30)).to_numpy(),
    ),
    BenchFilter(
        "post code prefix", ["post_code=75*"],
        lambda b: _c(b, "post_code").str.startswith("75").fillna(False).to_numpy(dtype=bool),
    ),
    BenchFilter(
        "nested any/all",
        {
            "any": [
                {"all": [{"field": "country", "op": "eq", "value": "FR"}, {"field": "age", "op": "ge", "value": 50}]},
                {
                    "all": [
                        {"field": "country", "op": "eq", "value": "DE"},
                        {"field": "total_spent", "op": "ge", "value": 1000},
                    ]
                },
            ]
        },
        lambda b: (
            ((_c(b, "country") == "FR") & (_c(b, "age") >= 50))
            | ((_c(b, "country") == "DE") & (_c(b, "total_spent") >= 1000))
        ).to_numpy(),
    ),
    BenchFilter(
        "not + any",
        {
            "all": [
                {"not": {"field": "country", "op": "in", "value": ["FR", "DE"]}},
                {
                    "any": [
                        {"field": "churn_risk", "op": "eq", "value": "high"},
                        {"field": "rating", "op": "le", "value": 2},
                    ]
                },
            ]
        },
        lambda b: (
            ~_c(b, "country").isin(["FR", "DE"]) & ((_c(b, "churn_risk") == "high") | (_c(b, "rating") <= 2))
        ).to_numpy(),
    ),
    BenchFilter(
        "five conditions",
        ["country=FR|DE|BE|NL", "age=25..54", "total_spent=>=100", "gender=female|male", "churn_risk=low|medium"],
        lambda b: (
            _c(b, "country").isin(["FR", "DE", "BE", "NL"])
            & _c(b, "age").between(25, 54)
            & (_c(b, "total_spent") >= 100)
            & _c(b, "gender").isin(["female", "male"])
            & _c(b, "churn_risk").isin(["low", "medium"])
        ).to_numpy(),
    ),
]
