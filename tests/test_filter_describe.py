"""One-line descriptions a marketer reads."""

from __future__ import annotations

from typing import Any

import pytest

from segcore._filter_describe import describe
from segcore._filter_text import parse_text
from segcore._filter_tree import from_json


def c(field: str, op: str, value: Any = None) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value}


CASES = [
    pytest.param(["country=FR|DE", "age=25..44"], "Country is FR or DE and age 25–44", id="spec-example"),
    pytest.param({"all": []}, "All contacts", id="everything"),
    pytest.param({"any": []}, "No contacts", id="nothing"),
    pytest.param("email=*@contoso.com", 'E-mail ends with "@contoso.com"', id="ends-with"),
    pytest.param("total_spent=>=500", "Total spent ≥ 500", id="ge"),
    pytest.param("last_purchase_date=>=today-90d", "Last purchase in the last 90 days", id="last-days"),
    pytest.param("last_purchase_date=<today-6m", "Last purchase more than 6 months ago", id="more-than"),
    pytest.param("last_purchase_date=today-1w..today", "Last purchase in the last week", id="last-week"),
    pytest.param(
        "birth_date=2000-01-01..2000-12-31", "Birth date from 2000-01-01 to 2000-12-31", id="date-span"
    ),
    pytest.param(
        "acquisition_date=<=today+2w", "Acquisition date on or before 2 weeks from now", id="future"
    ),
    pytest.param("acquisition_date=today", "Acquisition date is today", id="date-eq"),
    pytest.param("mailing_groups=NEWS|PROMO", "Mailing groups include NEWS or PROMO", id="has-any"),
    pytest.param("mailing_groups=NEWS&PROMO", "Mailing groups include NEWS and PROMO", id="has-all"),
    pytest.param("mailing_groups=<>NEWS", "Mailing groups do not include NEWS", id="has-none-one"),
    pytest.param("mailing_groups=<>NEWS&<>VIP", "Mailing groups include none of NEWS or VIP", id="has-none"),
    pytest.param(
        {
            "related": "interactions",
            "min_count": 2,
            "where": {"all": [c("template", "eq", "EMAIL"), c("date", "ge", "today-30d")]},
        },
        "At least 2 interactions where template is EMAIL and date in the last 30 days",
        id="related-min-count",
    ),  # fmt: skip
    pytest.param(
        ["interactions.template=EMAIL", "country=FR"],
        "Has an interaction where template is EMAIL and country is FR",
        id="related-one-condition",
    ),
    pytest.param(
        ["country=FR", "profile.questionnaire=HOBBY", "profile.answer=GOLF"],
        "Country is FR and has a profile answer where (questionnaire is HOBBY and answer is GOLF)",
        id="related-nested-parenthesised",
    ),
    pytest.param(
        {"related": "interactions", "min_count": 3}, "At least 3 interactions", id="related-any-record"
    ),
    pytest.param({"not": c("country", "eq", "FR")}, "Not (country is FR)", id="not"),
    pytest.param("name=<>*test*", 'Not (name contains "test")', id="not-contains"),
    pytest.param(
        {"all": [c("country", "eq", "FR"), {"any": [c("age", "lt", 25), c("age", "gt", 60)]}]},
        "Country is FR and (age < 25 or age > 60)",
        id="nested-group",
    ),
    pytest.param("name=''", "Name is empty", id="empty"),
    pytest.param("name=<>''", "Name is not empty", id="not-empty"),
    pytest.param("name=Bob", 'Name is "Bob"', id="text-quoted"),
    pytest.param("name=<>Bob", 'Name is not "Bob"', id="text-ne"),
    pytest.param("country=<>FR&<>DE", "Country is not FR or DE", id="not-in"),
    pytest.param("name=B?b*", 'Name matches "B?b*"', id="matches"),
    pytest.param("name=Bo*", 'Name starts with "Bo"', id="starts-with"),
    pytest.param("exclude_from_segments=no", "Excluded from segments is no", id="boolean"),
    pytest.param("age=30", "Age = 30", id="number-eq"),
    pytest.param("age=<>30", "Age ≠ 30", id="number-ne"),
    pytest.param("total_spent=<=12500", "Total spent ≤ 12,500", id="thousands"),
    pytest.param("age_band=25-34|35-44", "Age band is 25-34 or 35-44", id="age-band"),
    pytest.param("days_since_last_purchase=>90", "Days since last purchase > 90", id="days-since"),
    pytest.param(
        {"field": "country", "op": "in", "value": [f"C{i}" for i in range(10)]},
        "Country is C0, C1, C2, C3, C4, C5 or 4 more",
        id="long-list",
    ),
    pytest.param(c("name", "contains", "x" * 200), 'Name contains "' + "x" * 59 + '…"', id="long-text"),
    pytest.param(c("name", "eq", "a\nb"), 'Name is "a\\nb"', id="one-line"),
    # Business Central's dates and text ranges
    pytest.param("last_purchase_date=-30D..T", "Last purchase in the last 30 days", id="bc-last-30-days"),
    pytest.param("last_purchase_date=..t", "Last purchase on or before today", id="bc-up-to-today"),
    pytest.param("birth_date=-CM..CM", "Birth date in this month", id="bc-this-month"),
    pytest.param("birth_date=-CM..", "Birth date on or after the start of this month", id="bc-month-start"),
    pytest.param("birth_date=<=CM", "Birth date on or before the end of this month", id="bc-month-end"),
    pytest.param(
        "birth_date=-CM..t", "Birth date from the start of this month to today", id="bc-month-to-date"
    ),
    pytest.param("name=A..C", 'Name from "A" to "C"', id="text-range"),
    pytest.param("name=..C", 'Name up to "C"', id="text-up-to"),
    pytest.param("name=M..", 'Name from "M" on', id="text-from"),
    pytest.param("country=A..C", "Country from A to C", id="code-range"),
    pytest.param("name=<C", 'Name before "C"', id="text-lt"),
    pytest.param("name=>C", 'Name after "C"', id="text-gt"),
    pytest.param("birth_date=311225", "Birth date is 2025-12-31", id="short-date"),
    pytest.param("name=O'Brien|Dubois", 'Name is "O\'Brien" or "Dubois"', id="apostrophe"),
    pytest.param("name=Dubois ", 'Name is "Dubois"', id="trimmed"),
]


@pytest.mark.parametrize(("source", "expected"), CASES)
def test_describe(source: Any, expected: str) -> None:
    tree = from_json(source) if isinstance(source, dict) else parse_text(source)
    assert describe(tree) == expected
    assert "\n" not in describe(tree)
