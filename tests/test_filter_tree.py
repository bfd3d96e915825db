"""The typed filter tree: JSON form, round trips, normalisation, every validation error, caps, relative dates."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from segcore import FilterError
from segcore._filter_tree import (
    EMPTY,
    MAX_DEPTH,
    MAX_LIST_VALUES,
    MAX_NODES,
    MAX_STRING,
    Condition,
    Group,
    Not,
    Related,
    allowed_ops,
    fold_text,
    from_json,
    is_relative_date,
    resolve_date,
    to_json,
    validate,
)
from segcore.fields import BUILTIN


def c(field: str, op: str, value: Any = None) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value} if value is not None else {"field": field, "op": op}


# ------------------------------------------------------------------------------------------------ the JSON form

FORMS = [
    pytest.param(c("country", "eq", "FR"), Condition("country", "eq", "FR"), id="condition"),
    pytest.param({"all": []}, EMPTY, id="empty-all"),
    pytest.param({"any": []}, Group("any", ()), id="empty-any"),
    pytest.param(
        {"all": [c("country", "eq", "FR"), c("age", "ge", 18)]},
        Group("all", (Condition("country", "eq", "FR"), Condition("age", "ge", 18))),
        id="all",
    ),
    pytest.param(
        {"any": [c("country", "eq", "FR"), {"not": c("rating", "lt", 3)}]},
        Group("any", (Condition("country", "eq", "FR"), Not(Condition("rating", "lt", 3)))),
        id="any-not",
    ),
    pytest.param(
        {"related": "interactions", "where": c("template", "eq", "EMAIL"), "min_count": 2},
        Related("interactions", Condition("template", "eq", "EMAIL"), 2),
        id="related",
    ),
    pytest.param(
        {"related": "profile", "where": c("questionnaire", "eq", "HOBBY")},
        Related("profile", Condition("questionnaire", "eq", "HOBBY"), 1),
        id="related-default-min-count",
    ),
    pytest.param({"related": "interactions"}, Related("interactions", EMPTY, 1), id="related-any-record"),
    pytest.param(
        {"field": "phone", "op": "is_empty", "value": None}, Condition("phone", "is_empty"), id="null-value"
    ),
]


@pytest.mark.parametrize(("obj", "expected"), FORMS)
def test_from_json_builds_the_tree(obj: Any, expected: Any) -> None:
    assert from_json(obj) == expected
    assert from_json(json.dumps(obj)) == expected
    assert from_json(to_json(expected)) == expected


def test_to_json_round_trips_exactly() -> None:
    obj = {
        "all": [
            c("country", "in", ["FR", "DE"]),
            {"not": c("name", "contains", "test")},
            c("age", "between", [25, 44]),
            c("exclude_from_segments", "is_false"),
            c("mailing_groups", "has_all", ["NEWS", "PROMO"]),
            {"related": "interactions", "where": {"all": [c("date", "ge", "today-30d")]}, "min_count": 3},
            {"any": []},
        ]
    }
    tree = from_json(obj)
    assert to_json(tree) == obj
    assert from_json(to_json(tree)) == tree
    assert json.loads(json.dumps(to_json(tree))) == obj


def test_trees_are_hashable() -> None:
    a = from_json({"all": [c("country", "in", ["FR", "DE"]), c("age", "between", [1, 2])]})
    b = from_json({"all": [c("country", "in", ["fr", "de"]), c("age", "between", [1, 2])]})
    assert a == b and hash(a) == hash(b) and len({a, b, EMPTY}) == 2


# --------------------------------------------------------------------------------------------- normalisation

NORMALISED = [
    pytest.param(c("country", "eq", " fr "), "FR", id="code-upper-stripped"),
    pytest.param(c("gender", "eq", "Female"), "female", id="code-lower"),
    pytest.param(c("country", "in", ["fr", "DE", "Fr"]), ("FR", "DE"), id="list-to-tuple-deduplicated"),
    pytest.param(c("email", "eq", "Ann@Contoso.COM"), "ann@contoso.com", id="email-lower"),
    # Exact values are trimmed (stored values never start or end with white space: `Dubois ` is `Dubois`);
    # patterns keep theirs, where a space is a real character (`contains " van "`).
    pytest.param(c("name", "eq", "  Ann "), "Ann", id="free-text-trimmed"),
    pytest.param(c("name", "in", [" Ann", "Bob ", "Ann"]), ("Ann", "Bob"), id="free-text-list-trimmed"),
    pytest.param(c("city", "ne", "Paris\t"), "Paris", id="free-text-ne-trimmed"),
    pytest.param(c("name", "contains", " van "), " van ", id="pattern-keeps-spaces"),
    pytest.param(c("name", "starts_with", "van "), "van ", id="starts-with-keeps-spaces"),
    # Business Central's relative dates, in JSON as in text; stored as tokens resolved each time the filter runs.
    pytest.param(c("birth_date", "eq", "t"), "today", id="bc-t"),
    pytest.param(c("birth_date", "eq", "T"), "today", id="bc-T"),
    pytest.param(c("birth_date", "eq", "w"), "today", id="bc-work-date"),
    pytest.param(c("birth_date", "ge", "-30D"), "today-30d", id="bc-days"),
    pytest.param(c("birth_date", "le", "+10d"), "today+10d", id="bc-days-ahead"),
    pytest.param(c("birth_date", "ge", "-2W"), "today-2w", id="bc-weeks"),
    pytest.param(c("birth_date", "ge", "-6M"), "today-6m", id="bc-months"),
    pytest.param(c("birth_date", "ge", " -1Y "), "today-1y", id="bc-years"),
    pytest.param(c("birth_date", "le", "CM"), "month_end", id="bc-cm"),
    pytest.param(c("birth_date", "ge", "-cm"), "month_start", id="bc-minus-cm"),
    pytest.param(c("birth_date", "ge", "Month_Start"), "month_start", id="month-start-token"),
    pytest.param(c("birth_date", "between", ["-CM", "CM"]), ("month_start", "month_end"), id="bc-this-month"),
    # Text ranges on text and code fields, compared without case or accents.
    pytest.param(c("name", "between", [" a", "C "]), ("a", "C"), id="text-range"),
    pytest.param(c("name", "between", ["é", "E"]), ("é", "E"), id="text-range-folded-equal"),
    pytest.param(c("country", "le", "fr"), "FR", id="code-range-normalised"),
    pytest.param(c("gender", "ge", "f"), "f", id="range-on-choices-is-not-a-choice"),
    pytest.param(c("name", "lt", " C"), "C", id="text-lt"),
    pytest.param(c("territory", "gt", "north"), "NORTH", id="code-gt"),
    pytest.param(c("post_code", "eq", 75001), "75001", id="number-as-text"),
    pytest.param(c("age", "eq", "30"), 30, id="number-from-text"),
    pytest.param(c("age", "eq", 30.0), 30, id="whole-float-to-int"),
    pytest.param(c("total_spent", "ge", "12.5"), 12.5, id="decimal"),
    pytest.param(c("total_spent", "between", ["1", 2]), (1, 2), id="between-tuple"),
    pytest.param(c("birth_date", "eq", dt.date(2000, 2, 29)), "2000-02-29", id="date-object"),
    pytest.param(c("birth_date", "ge", "TODAY-90D"), "today-90d", id="relative-lower"),
    pytest.param(c("birth_date", "ge", "today"), "today", id="today"),
    pytest.param(c("birth_date", "le", "today+002w"), "today+2w", id="relative-leading-zeros"),
    pytest.param(c("age_band", "in", [" 25-34", "<18"]), ("25-34", "<18"), id="age-band"),
    pytest.param(c("mailing_groups", "has_any", "news"), ("NEWS",), id="list-field-single-value"),
    pytest.param(c("mailing_groups", "has_all", ["news", "Promo"]), ("NEWS", "PROMO"), id="list-field-upper"),
]


@pytest.mark.parametrize(("obj", "value"), NORMALISED)
def test_values_are_normalised(obj: dict[str, Any], value: Any) -> None:
    cond = from_json(obj)
    assert isinstance(cond, Condition)
    assert cond.value == value and type(cond.value) is type(value)
    assert validate(cond) == cond  # normalising twice changes nothing


def test_validate_normalises_hand_built_trees() -> None:
    tree = Group("all", (Condition("country", "in", ["fr", "de"]), Not(Condition("age", "between", [1, 2]))))  # type: ignore[arg-type]
    assert validate(tree) == Group(
        "all", (Condition("country", "in", ("FR", "DE")), Not(Condition("age", "between", (1, 2))))
    )


# ------------------------------------------------------------------------------------------------------ errors

ERRORS = [
    pytest.param(
        c("contry", "eq", "FR"), "unknown field 'contry': did you mean 'country'?", id="unknown-field-hint"
    ),
    pytest.param(
        c("zzz", "eq", "FR"), "unknown field 'zzz': fields are contact_no, type", id="unknown-field-list"
    ),
    pytest.param(c("template", "eq", "EMAIL"), "is a field of interactions", id="relation-field-outside"),
    pytest.param(
        c("country", "has_any", ["FR"]),
        "Country is a code field: operator 'has_any' does not fit",
        id="op-on-code",
    ),
    pytest.param(c("age", "contains", "3"), "Age is a number field: operator 'contains'", id="op-on-number"),
    pytest.param(c("exclude_from_segments", "eq", True), "true/false field", id="op-on-boolean"),
    pytest.param(c("mailing_groups", "eq", "NEWS"), "list field", id="op-on-list"),
    pytest.param(c("age_band", "contains", "2"), "an age band field", id="op-on-age-band"),
    pytest.param(c("country", "like", "FR"), "operator 'like' does not fit", id="unknown-op"),
    pytest.param(c("country", "eq"), "Country eq needs a value", id="missing-value"),
    pytest.param(c("phone", "is_empty", "x"), "Phone is_empty takes no value", id="extra-value"),
    pytest.param(c("exclude_from_segments", "is_true", True), "takes no value", id="extra-value-boolean"),
    pytest.param(c("age", "eq", "abc"), "Age: 'abc' is not a number", id="age-abc"),
    pytest.param(c("age", "eq", True), "is not a number", id="bool-is-not-a-number"),
    pytest.param(c("total_spent", "eq", "NaN"), "is not a number", id="nan"),
    pytest.param(c("age", "eq", 25.5), "Age takes whole numbers", id="whole-numbers"),
    pytest.param(c("age", "ge", 250), "Age must be between 0 and 200", id="age-bounds"),
    pytest.param(c("days_since_last_purchase", "ge", 10**6), "between -100000 and 100000", id="days-bounds"),
    pytest.param(c("total_spent", "ge", 10**16), "too large", id="huge-number"),
    pytest.param(c("age", "between", [25]), "between needs exactly two values", id="between-one"),
    pytest.param(c("age", "between", [1, 2, 3]), "between needs exactly two values", id="between-three"),
    pytest.param(c("age", "between", 5), "between needs exactly two values", id="between-scalar"),
    pytest.param(c("age", "between", [44, 25]), "Age between: 44 is greater than 25", id="between-reversed"),
    pytest.param(
        c("birth_date", "between", ["2024-02-01", "2024-01-01"]), "comes after", id="dates-reversed"
    ),
    pytest.param(c("birth_date", "between", ["today", "today-1d"]), "comes after", id="relative-reversed"),
    pytest.param(c("birth_date", "eq", "2024-02-30"), "'2024-02-30' is not a date", id="no-such-day"),
    pytest.param(
        c("birth_date", "eq", "yesterday"),
        "is not a date (write YYYY-MM-DD, t (today), -30D, today-90d, CM or -CM)",
        id="word-date",
    ),
    pytest.param(c("birth_date", "eq", "30D"), "is not a date", id="bc-formula-without-sign"),
    pytest.param(c("birth_date", "eq", "+CM"), "is not a date", id="bc-plus-cm"),
    pytest.param(c("birth_date", "eq", "CM+1D"), "is not a date", id="bc-cm-arithmetic"),
    pytest.param(c("birth_date", "eq", "311225"), "is not a date", id="short-date-is-text-form-only"),
    pytest.param(c("birth_date", "ge", "-99999D"), "at most 200 years", id="bc-too-far"),
    pytest.param(c("birth_date", "between", ["CM", "-CM"]), "comes after", id="month-reversed"),
    pytest.param(c("name", "between", ["C", "a"]), "Name between: 'C' comes after 'a'", id="text-reversed"),
    pytest.param(c("name", "between", ["É", "a"]), "comes after", id="text-reversed-accent"),
    pytest.param(
        c("mailing_groups", "between", ["A", "C"]), "operator 'between' does not fit", id="list-range"
    ),
    pytest.param(c("age_band", "ge", "25-34"), "operator 'ge' does not fit", id="band-range"),
    pytest.param(c("name", "eq", "a\udcffb"), "not valid text", id="lone-surrogate"),
    pytest.param(c("mailing_groups", "has_any", ["\ud800"]), "not valid text", id="lone-surrogate-code"),
    pytest.param(c("age", "eq", "1" * 5000), "Age: '1111", id="over-4300-digits"),
    pytest.param(c("total_spent", "eq", "9" * 41), "too large", id="long-number-text"),
    pytest.param(c("birth_date", "eq", "2024-2-1"), "is not a date", id="short-date"),
    pytest.param(c("birth_date", "eq", "today-90x"), "is not a date", id="bad-unit"),
    pytest.param(c("birth_date", "eq", 20240101), "is not a date", id="number-date"),
    pytest.param(c("birth_date", "ge", "today-500y"), "at most 200 years", id="relative-too-far"),
    pytest.param(c("country", "in", []), "Country in needs at least one value", id="in-empty"),
    pytest.param(c("country", "in", {"a": 1}), "needs a list of values", id="in-not-list"),
    pytest.param(c("country", "in", ["FR", 3.5]), "is not text", id="in-wrong-item"),
    pytest.param(c("country", "eq", ["FR"]), "is not text", id="list-for-scalar"),
    pytest.param(c("name", "eq", ""), "use is_empty instead", id="empty-text"),
    pytest.param(c("country", "eq", "  "), "use is_empty instead", id="blank-code"),
    pytest.param(
        c("gender", "eq", "femal"), "Gender has no value 'femal'; choose from female", id="not-a-choice"
    ),
    pytest.param(c("age_band", "eq", "20-30"), "Age band has no value '20-30'", id="not-a-band"),
    pytest.param(c("mailing_groups", "has_any", [""]), "an empty code", id="empty-code"),
    pytest.param(c("mailing_groups", "has_any", []), "needs at least one value", id="has-any-empty"),
    pytest.param(
        {"related": "interactions", "where": c("country", "eq", "FR")},
        "'country' is a contact field: it cannot be used inside a related interactions condition",
        id="contact-field-in-related",
    ),
    pytest.param(
        {"related": "profile", "where": c("template", "eq", "X")},
        "unknown field 'template' of profile",
        id="wrong-rel",
    ),
    pytest.param(
        {"related": "interactions", "where": {"related": "profile"}},
        "cannot sit inside another related condition",
        id="nested-related",
    ),
    pytest.param({"related": "orders"}, "unknown relation 'orders'", id="unknown-relation"),
    pytest.param({"related": ["x"]}, "unknown relation", id="relation-not-text"),
    pytest.param(
        {"related": "interactions", "min_count": 0}, "min_count must be a whole number", id="min-count-0"
    ),
    pytest.param({"related": "interactions", "min_count": "2"}, "min_count must be", id="min-count-text"),
    pytest.param({"related": "interactions", "min_count": True}, "min_count must be", id="min-count-bool"),
    pytest.param(
        {"related": "interactions", "whre": {}}, "takes related, where and min_count", id="related-extra"
    ),
    pytest.param({"all": [], "any": []}, "takes no other keys", id="two-groups"),
    pytest.param({"all": {}}, "'all' needs a list of nodes", id="group-not-list"),
    pytest.param({"not": c("age", "eq", 1), "x": 1}, "takes no other keys", id="not-extra"),
    pytest.param(
        {"field": "age", "op": "eq", "value": 1, "x": 2}, "takes field, op and value", id="condition-extra"
    ),
    pytest.param({"field": "age", "value": 1}, "has no op", id="condition-no-op"),
    pytest.param({"field": 3, "op": "eq", "value": 1}, "a field name must be text", id="field-not-text"),
    pytest.param({"foo": 1}, "not a filter node", id="unknown-node"),
    pytest.param([1, 2], "a filter node must be an object", id="not-an-object"),
    pytest.param("{not json", "not valid JSON", id="bad-json-string"),
    pytest.param(c("name", "eq", "x" * (MAX_STRING + 1)), "longer than 1,000 characters", id="long-string"),
]


@pytest.mark.parametrize(("obj", "message"), ERRORS)
def test_errors_are_clear(obj: Any, message: str) -> None:
    with pytest.raises(FilterError) as info:
        from_json(obj)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_string_at_the_cap_is_fine() -> None:
    assert from_json(c("name", "eq", "x" * MAX_STRING)) == Condition("name", "eq", "x" * MAX_STRING)


def _chain(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = c("age", "eq", 1)
    for _ in range(depth - 1):
        node = {"not": node}
    return node


def test_depth_cap() -> None:
    assert from_json(_chain(MAX_DEPTH))
    with pytest.raises(FilterError, match="nested too deeply: at most 12 levels"):
        from_json(_chain(MAX_DEPTH + 1))
    with pytest.raises(FilterError, match="nested too deeply"):
        from_json('{"not": ' * 5000 + json.dumps(c("age", "eq", 1)) + "}" * 5000)
    with pytest.raises(FilterError, match="nested too deeply"):
        from_json('{"not": ' * 100_000 + "}" * 100_000)  # deeper than the JSON parser itself goes


def test_node_cap() -> None:
    assert from_json({"any": [c("total_spent", "eq", i) for i in range(MAX_NODES - 1)]})
    with pytest.raises(FilterError, match="at most 500 conditions and groups"):
        from_json({"any": [c("total_spent", "eq", i) for i in range(MAX_NODES)]})
    hand_built = Group("any", tuple(Condition("age", "eq", 1) for _ in range(MAX_NODES)))
    with pytest.raises(FilterError, match="too large"):
        validate(hand_built)


def test_list_caps() -> None:
    values = [f"C{i}" for i in range(MAX_LIST_VALUES)]
    assert len(from_json(c("city", "in", values)).value) == MAX_LIST_VALUES  # type: ignore[union-attr]
    with pytest.raises(FilterError, match="at most 10,000 values in one list"):
        from_json(c("city", "in", [*values, "one more"]))
    with pytest.raises(FilterError, match="too many values: at most 30,000 in all"):
        from_json({"any": [c("city", "in", values) for _ in range(4)]})


def test_empty_group_and_constant() -> None:
    assert EMPTY == Group("all", ()) == from_json({"all": []})
    assert to_json(EMPTY) == {"all": []}


def test_bad_group_kind_in_hand_built_tree() -> None:
    with pytest.raises(FilterError, match="a group is 'all' or 'any'"):
        validate(Group("some", ()))  # type: ignore[arg-type]
    with pytest.raises(FilterError, match="not a filter node"):
        validate("country=FR")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------------- dates

DATES = [
    pytest.param("2024-02-29", dt.date(2024, 3, 31), dt.date(2024, 2, 29), id="iso"),
    pytest.param("today", dt.date(2024, 3, 31), dt.date(2024, 3, 31), id="today"),
    pytest.param("today-90d", dt.date(2024, 3, 31), dt.date(2024, 1, 1), id="days-back"),
    pytest.param("today+2w", dt.date(2024, 2, 20), dt.date(2024, 3, 5), id="weeks-ahead"),
    pytest.param("today-1m", dt.date(2024, 3, 31), dt.date(2024, 2, 29), id="month-clamped-leap"),
    pytest.param("today-1m", dt.date(2023, 3, 31), dt.date(2023, 2, 28), id="month-clamped"),
    pytest.param("today-6m", dt.date(2024, 8, 31), dt.date(2024, 2, 29), id="six-months"),
    pytest.param("today+13m", dt.date(2023, 12, 15), dt.date(2025, 1, 15), id="across-years"),
    pytest.param("today-1y", dt.date(2024, 2, 29), dt.date(2023, 2, 28), id="year-from-feb-29"),
    pytest.param("today+4y", dt.date(2024, 2, 29), dt.date(2028, 2, 29), id="leap-to-leap"),
    pytest.param("today+0d", dt.date(2024, 2, 29), dt.date(2024, 2, 29), id="zero"),
    pytest.param("TODAY-1D", dt.date(2024, 3, 1), dt.date(2024, 2, 29), id="upper-case"),
    pytest.param("month_start", dt.date(2024, 2, 29), dt.date(2024, 2, 1), id="month-start"),
    pytest.param("month_end", dt.date(2024, 2, 1), dt.date(2024, 2, 29), id="month-end-leap"),
    pytest.param("month_end", dt.date(2023, 2, 14), dt.date(2023, 2, 28), id="month-end"),
    pytest.param("month_end", dt.date(2024, 12, 31), dt.date(2024, 12, 31), id="month-end-on-it"),
    pytest.param("month_start", dt.date(2021, 1, 1), dt.date(2021, 1, 1), id="month-start-on-it"),
]


@pytest.mark.parametrize(("value", "today", "expected"), DATES)
def test_resolve_date(value: str, today: dt.date, expected: dt.date) -> None:
    assert resolve_date(value, today) == expected


def test_relative_tokens_are_recognised() -> None:
    for token in ("today", "today-90d", "today+2w", "month_start", "month_end"):
        assert is_relative_date(token), token
    for value in ("2024-01-01", "CM", "t", "-30D", "month"):
        assert not is_relative_date(value), value


def test_text_ranges_are_operators_of_text_and_code_fields_only() -> None:
    spec = BUILTIN.get
    for name in ("name", "email", "country", "gender"):
        assert {"lt", "le", "gt", "ge", "between"} <= set(allowed_ops(spec(name))), name  # type: ignore[arg-type]
    for name in ("mailing_groups", "age_band", "exclude_from_segments"):
        assert not {"lt", "le", "gt", "ge", "between"} & set(allowed_ops(spec(name))), name  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "folded"), [("Élodie", "elodie"), ("MÜLLER", "muller"), ("abc", "abc"), ("Øre", "ore")]
)
def test_fold_text(text: str, folded: str) -> None:
    assert fold_text(text) == folded
