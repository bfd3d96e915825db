"""The Business Central text form: every syntax element, every operator, every error with its position, to_text."""

from __future__ import annotations

from typing import Any

import pytest

from segcore import FilterError, FilterSyntaxError
from segcore._filter_text import parse_text, to_text
from segcore._filter_tree import EMPTY, Condition, Group, Not, Related, from_json, to_json


def c(field: str, op: str, value: Any = None) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value} if value is not None else {"field": field, "op": op}


def rel(relation: str, *where: dict[str, Any]) -> dict[str, Any]:
    return {
        "related": relation,
        "where": where[0] if len(where) == 1 else {"all": list(where)},
        "min_count": 1,
    }


# ------------------------------------------------------------------------------------------------------ parsing

PARSE = [
    # plain values, per type
    pytest.param("country=FR", c("country", "eq", "FR"), id="code-eq"),
    pytest.param("country=fr", c("country", "eq", "FR"), id="code-normalised"),
    pytest.param("name=Smith", c("name", "eq", "Smith"), id="text-eq"),
    pytest.param("city=New York", c("city", "eq", "New York"), id="inner-space-kept"),
    pytest.param("city=  Paris  ", c("city", "eq", "Paris"), id="outer-space-dropped"),
    pytest.param("name=Dubois ", c("name", "eq", "Dubois"), id="trailing-space-dropped"),
    pytest.param(
        "name=Dubois |Martin\t", c("name", "in", ["Dubois", "Martin"]), id="spaces-around-each-value"
    ),
    pytest.param("age=30", c("age", "eq", 30), id="number-eq"),
    pytest.param("total_spent=12.5", c("total_spent", "eq", 12.5), id="decimal"),
    pytest.param("rating=-1", c("rating", "eq", -1), id="negative-number"),
    pytest.param("birth_date=2000-02-29", c("birth_date", "eq", "2000-02-29"), id="date-eq"),
    pytest.param("last_purchase_date=today", c("last_purchase_date", "eq", "today"), id="today"),
    pytest.param("Country = FR", c("country", "eq", "FR"), id="field-case-and-spaces"),
    # or / and
    pytest.param("country=FR|DE|BE", c("country", "in", ["FR", "DE", "BE"]), id="or-to-in"),
    pytest.param("country=FR | DE", c("country", "in", ["FR", "DE"]), id="or-spaces"),
    pytest.param("country=FR|fr", c("country", "eq", "FR"), id="or-duplicates"),
    pytest.param("age=25|30", {"any": [c("age", "eq", 25), c("age", "eq", 30)]}, id="or-numbers"),
    pytest.param("country=<>FR&<>DE", c("country", "not_in", ["FR", "DE"]), id="and-not-to-not-in"),
    pytest.param(
        "name=*a*&*b*", {"all": [c("name", "contains", "a"), c("name", "contains", "b")]}, id="and-patterns"
    ),
    pytest.param(
        "country=FR|DE&<>BE",
        {"any": [c("country", "eq", "FR"), {"all": [c("country", "eq", "DE"), c("country", "ne", "BE")]}]},
        id="and-binds-tighter",
    ),
    pytest.param(
        "country=(FR|DE)&<>BE",
        {"all": [c("country", "in", ["FR", "DE"]), c("country", "ne", "BE")]},
        id="parentheses",
    ),
    pytest.param("country=((FR))", c("country", "eq", "FR"), id="nested-parentheses"),
    # ranges and comparisons
    pytest.param("age=25..44", c("age", "between", [25, 44]), id="range"),
    pytest.param("age=..20", c("age", "le", 20), id="range-open-low"),
    pytest.param("age=10..", c("age", "ge", 10), id="range-open-high"),
    pytest.param("age= 25 .. 44 ", c("age", "between", [25, 44]), id="range-spaces"),
    pytest.param("total_spent=1.5..2.5", c("total_spent", "between", [1.5, 2.5]), id="range-decimals"),
    pytest.param("age=<30", c("age", "lt", 30), id="lt"),
    pytest.param("age=<=30", c("age", "le", 30), id="le"),
    pytest.param("age=>30", c("age", "gt", 30), id="gt"),
    pytest.param("total_spent=>=500", c("total_spent", "ge", 500), id="ge"),
    pytest.param("age=<>30", c("age", "ne", 30), id="ne-number"),
    pytest.param("rating=<-1", c("rating", "lt", -1), id="lt-negative"),
    pytest.param("age=..17|65..", {"any": [c("age", "le", 17), c("age", "ge", 65)]}, id="two-open-ranges"),
    pytest.param("last_purchase_date=>=today-90d", c("last_purchase_date", "ge", "today-90d"), id="relative"),
    pytest.param("birth_date=today-30d..", c("birth_date", "ge", "today-30d"), id="relative-range"),
    pytest.param(
        "birth_date=2024-01-01..today+2w",
        c("birth_date", "between", ["2024-01-01", "today+2w"]),
        id="date-range",
    ),
    pytest.param("birth_date=<today-6m", c("birth_date", "lt", "today-6m"), id="months"),
    pytest.param("birth_date=>TODAY-1Y", c("birth_date", "gt", "today-1y"), id="years-upper-case"),
    # Business Central's dates: t / w (today, the work date), date formulas from today, month boundaries
    pytest.param("birth_date=t", c("birth_date", "eq", "today"), id="bc-t"),
    pytest.param("birth_date=T", c("birth_date", "eq", "today"), id="bc-T"),
    pytest.param("birth_date=w", c("birth_date", "eq", "today"), id="bc-w"),
    pytest.param("birth_date=..t", c("birth_date", "le", "today"), id="bc-up-to-today"),
    pytest.param(
        "birth_date=-30D..T", c("birth_date", "between", ["today-30d", "today"]), id="bc-last-30-days"
    ),
    pytest.param("birth_date=+10D", c("birth_date", "eq", "today+10d"), id="bc-days-ahead"),
    pytest.param("birth_date=-2W..", c("birth_date", "ge", "today-2w"), id="bc-weeks"),
    pytest.param("birth_date=<-6M", c("birth_date", "lt", "today-6m"), id="bc-months"),
    pytest.param("birth_date=>=-1Y", c("birth_date", "ge", "today-1y"), id="bc-years"),
    pytest.param("birth_date=CM", c("birth_date", "eq", "month_end"), id="bc-cm"),
    pytest.param("birth_date=-CM", c("birth_date", "eq", "month_start"), id="bc-minus-cm"),
    pytest.param(
        "birth_date=-CM..CM", c("birth_date", "between", ["month_start", "month_end"]), id="bc-month"
    ),
    pytest.param(
        "interactions.date=-30D..t",
        rel("interactions", c("date", "between", ["today-30d", "today"])),
        id="bc-interaction-date",
    ),
    # short dates, in the default date order DMY; two-digit years 00-29 are 2000s, 30-99 1900s
    pytest.param("birth_date=311225", c("birth_date", "eq", "2025-12-31"), id="short-ddmmyy"),
    pytest.param("birth_date=31122025", c("birth_date", "eq", "2025-12-31"), id="short-ddmmyyyy"),
    pytest.param("birth_date=010129", c("birth_date", "eq", "2029-01-01"), id="pivot-2029"),
    pytest.param("birth_date=010130", c("birth_date", "eq", "1930-01-01"), id="pivot-1930"),
    pytest.param(
        "birth_date=010180..311289",
        c("birth_date", "between", ["1980-01-01", "1989-12-31"]),
        id="short-range",
    ),
    # text ranges (Business Central: values sorting from A to C, both ends included, case-insensitive)
    pytest.param("name=A..C", c("name", "between", ["A", "C"]), id="text-range"),
    pytest.param("name=..C", c("name", "le", "C"), id="text-up-to"),
    pytest.param("name=A..", c("name", "ge", "A"), id="text-from"),
    pytest.param("name=<=C", c("name", "le", "C"), id="text-le"),
    pytest.param("name=>=A", c("name", "ge", "A"), id="text-ge"),
    pytest.param("name=<C", c("name", "lt", "C"), id="text-lt"),
    pytest.param("country=>fr", c("country", "gt", "FR"), id="code-gt"),
    pytest.param("country=a..c", c("country", "between", ["A", "C"]), id="code-range"),
    pytest.param("city=New York..Paris", c("city", "between", ["New York", "Paris"]), id="text-range-spaces"),
    pytest.param("name='a.'..'b|c'", c("name", "between", ["a.", "b|c"]), id="text-range-quoted"),
    pytest.param("name=a..B", c("name", "between", ["a", "B"]), id="text-range-case-insensitive"),
    pytest.param(
        "name=..B|D..", {"any": [c("name", "le", "B"), c("name", "ge", "D")]}, id="text-two-open-ranges"
    ),
    # text operators
    pytest.param("name=<>Smith", c("name", "ne", "Smith"), id="ne-text"),
    pytest.param("email=*@contoso.com", c("email", "ends_with", "@contoso.com"), id="ends-with"),
    pytest.param("name=Sm*", c("name", "starts_with", "Sm"), id="starts-with"),
    pytest.param("name=*mit*", c("name", "contains", "mit"), id="contains"),
    pytest.param("name=S?ith", c("name", "matches", "S?ith"), id="question-mark"),
    pytest.param("name=S*th", c("name", "matches", "S*th"), id="star-inside"),
    pytest.param("name=*", c("name", "matches", "*"), id="star-alone"),
    pytest.param("name=<>*mit*", {"not": c("name", "contains", "mit")}, id="not-contains"),
    pytest.param("country=f*", c("country", "starts_with", "F"), id="pattern-on-code"),
    pytest.param("name=''", c("name", "is_empty"), id="empty"),
    pytest.param("name=<>''", c("name", "is_not_empty"), id="not-empty"),
    pytest.param("age=''", c("age", "is_empty"), id="empty-number"),
    pytest.param(
        "name=''|Bob", {"any": [c("name", "is_empty"), c("name", "eq", "Bob")]}, id="empty-or-value"
    ),
    # quoting
    pytest.param("name='a|b&c'", c("name", "eq", "a|b&c"), id="quoted-specials"),
    pytest.param("name='50%_off'", c("name", "eq", "50%_off"), id="quoted-percent"),
    pytest.param("name='O''Brien'", c("name", "eq", "O'Brien"), id="quote-escape"),
    pytest.param("name=O''Brien", c("name", "eq", "O'Brien"), id="quote-outside-quotes"),
    pytest.param("name=''''", c("name", "eq", "'"), id="just-a-quote"),
    # Exact values are trimmed, quoted or not (stored values never end in white space); patterns keep it.
    pytest.param("name=' padded '", c("name", "eq", "padded"), id="quoted-spaces-trimmed"),
    pytest.param("name=*' van '*", c("name", "contains", " van "), id="quoted-pattern-spaces-kept"),
    # O'Brien: a quote inside a word is an apostrophe
    pytest.param("name=O'Brien", c("name", "eq", "O'Brien"), id="apostrophe"),
    pytest.param("name=*O'Brien*", c("name", "contains", "O'Brien"), id="apostrophe-contains"),
    pytest.param("name=O'Brien*", c("name", "starts_with", "O'Brien"), id="apostrophe-starts-with"),
    pytest.param("name=O'Brien|Dubois", c("name", "in", ["O'Brien", "Dubois"]), id="apostrophe-or"),
    pytest.param("name=D'Arcy|O'Brien", c("name", "in", ["D'Arcy", "O'Brien"]), id="two-apostrophes"),
    pytest.param("name=<>O'Brien", c("name", "ne", "O'Brien"), id="apostrophe-ne"),
    pytest.param("name=Mary O'Brien", c("name", "eq", "Mary O'Brien"), id="apostrophe-after-space"),
    pytest.param("name=Jones'", c("name", "eq", "Jones'"), id="apostrophe-at-the-end"),
    pytest.param("name=@O'Brien", c("name", "eq", "O'Brien"), id="apostrophe-after-at"),
    pytest.param("name=*'O''Brien'*", c("name", "contains", "O'Brien"), id="quoted-after-wildcard"),
    pytest.param("name='a*b'", c("name", "eq", "a*b"), id="quoted-star-literal"),
    pytest.param("name=*'a*b'*", c("name", "contains", "a*b"), id="quoted-inside-pattern"),
    pytest.param("name='(x)'*", c("name", "starts_with", "(x)"), id="quoted-then-wildcard"),
    pytest.param("age='25'..'30'", c("age", "between", [25, 30]), id="quoted-numbers"),
    pytest.param("age_band='<18'", c("age_band", "eq", "<18"), id="quoted-band"),
    # @ is accepted and ignored at the start of a term
    pytest.param("name=@smith", c("name", "eq", "smith"), id="at"),
    pytest.param(
        "name=@*mit*|@Bob", {"any": [c("name", "contains", "mit"), c("name", "eq", "Bob")]}, id="at-twice"
    ),
    pytest.param("email=a@b.com", c("email", "eq", "a@b.com"), id="at-inside-value"),
    pytest.param("name='@x'", c("name", "eq", "@x"), id="at-quoted"),
    # booleans
    *[
        pytest.param(f"exclude_from_segments={v}", c("exclude_from_segments", op), id=f"bool-{v}")
        for v, op in [
            ("true", "is_true"),
            ("yes", "is_true"),
            ("1", "is_true"),
            ("FALSE", "is_false"),
            ("no", "is_false"),
            ("0", "is_false"),
            ("<>true", "is_false"),
            ("<>no", "is_true"),
        ]
    ],  # fmt: skip
    pytest.param(
        "exclude_from_segments=true|false",
        {"any": [c("exclude_from_segments", "is_true"), c("exclude_from_segments", "is_false")]},
        id="bool-either",
    ),
    # list fields
    pytest.param("mailing_groups=NEWS", c("mailing_groups", "has_any", ["NEWS"]), id="list-one"),
    pytest.param(
        "mailing_groups=news|PROMO", c("mailing_groups", "has_any", ["NEWS", "PROMO"]), id="list-any"
    ),
    pytest.param(
        "mailing_groups=NEWS&PROMO", c("mailing_groups", "has_all", ["NEWS", "PROMO"]), id="list-all"
    ),
    pytest.param("mailing_groups=<>NEWS", c("mailing_groups", "has_none", ["NEWS"]), id="list-none"),
    pytest.param(
        "industry_groups=<>IT&<>RETAIL", c("industry_groups", "has_none", ["IT", "RETAIL"]), id="none-2"
    ),
    pytest.param(
        "job_responsibilities=(A|B)&C",
        {
            "all": [
                c("job_responsibilities", "has_any", ["A", "B"]),
                c("job_responsibilities", "has_any", ["C"]),
            ]
        },
        id="list-mixed",
    ),
    # age bands
    pytest.param("age_band=25-34|35-44", c("age_band", "in", ["25-34", "35-44"]), id="bands"),
    pytest.param("age_band=<18|65+", c("age_band", "in", ["<18", "65+"]), id="band-less-than"),
    pytest.param("age_band=<>45-54", c("age_band", "ne", "45-54"), id="band-not"),
    # related records
    pytest.param(
        "interactions.template=EMAIL", rel("interactions", c("template", "eq", "EMAIL")), id="related-one"
    ),
    pytest.param(
        "Profile.Questionnaire=hobby", rel("profile", c("questionnaire", "eq", "HOBBY")), id="related-case"
    ),
]


@pytest.mark.parametrize(("text", "expected"), PARSE)
def test_parse(text: str, expected: dict[str, Any]) -> None:
    assert to_json(parse_text(text)) == expected


def test_several_conditions_are_anded_and_related_ones_grouped() -> None:
    lines = [
        "interactions.template=EMAIL",
        "country=FR|DE",
        "interactions.date=today-30d..",
        "profile.questionnaire=HOBBY",
        "age=25..44",
        "profile.answer=GOLF",
    ]
    expected = {
        "all": [
            rel("interactions", c("template", "eq", "EMAIL"), c("date", "ge", "today-30d")),
            c("country", "in", ["FR", "DE"]),
            rel("profile", c("questionnaire", "eq", "HOBBY"), c("answer", "eq", "GOLF")),
            c("age", "between", [25, 44]),
        ]
    }
    assert to_json(parse_text(lines)) == expected
    assert to_json(parse_text("\n".join(lines) + "\n\n")) == expected
    assert to_json(parse_text("\r\n  \r\n".join(lines))) == expected


def test_blank_text_is_everything() -> None:
    assert parse_text("") == parse_text([]) == parse_text("\n  \n") == EMPTY


def test_sequence_item_is_one_condition_even_with_a_newline_inside_quotes() -> None:
    assert parse_text(["name='a\nb'"]) == Condition("name", "eq", "a\nb")


# ------------------------------------------------------------------------------------------------------- errors

ERRORS = [
    pytest.param("age=25..x", 8, "'x' is not a number", id="spec-example"),
    pytest.param("age=x", 4, "'x' is not a number", id="not-a-number"),
    pytest.param("age=1..2..3", 8, "unexpected '..'", id="double-range"),
    pytest.param("total_spent=>=abc", 14, "'abc' is not a number", id="not-a-number-after-op"),
    pytest.param("age=2*", 4, "'2*' is not a number", id="wildcard-number"),
    pytest.param("age=25.5", 4, "Age takes whole numbers", id="whole-numbers"),
    pytest.param("age=20..999", 8, "Age must be between 0 and 200", id="bounds"),
    pytest.param("age=44..25", 4, "44 is greater than 25", id="reversed-range"),
    pytest.param("country FR", 7, "expected FIELD=EXPRESSION: there is no '='", id="missing-equals"),
    pytest.param("=FR", 0, "a condition starts with a field name", id="missing-field"),
    pytest.param("first name=Bob", 0, "'first name' is not a field name", id="bad-field-name"),
    pytest.param("contry=FR", 0, "unknown field 'contry': did you mean 'country'?", id="unknown-field"),
    pytest.param("  contry=FR", 2, "unknown field 'contry'", id="unknown-field-indented"),
    pytest.param(
        "interactions.tmplate=EMAIL", 13, "unknown field 'tmplate' of interactions", id="unknown-rel-field"
    ),
    pytest.param("interactions.name=x", 13, "'name' is a contact field", id="contact-field-in-related"),
    pytest.param("interaction.date=today", 0, "unknown relation 'interaction'", id="unknown-relation"),
    pytest.param(
        "template=EMAIL", 0, "use it inside a related interactions condition", id="relation-field-bare"
    ),
    pytest.param("age=", 4, "there is no value after '='", id="empty-expression"),
    pytest.param("name=@", 6, "there is no value after '='", id="only-at"),
    pytest.param("country=(FR", 8, "a parenthesis is not closed", id="unclosed-parenthesis"),
    pytest.param("country=(FR|(DE)", 8, "a parenthesis is not closed", id="unclosed-outer"),
    pytest.param("country=FR)", 10, "')' closes a parenthesis that was never opened", id="extra-close"),
    pytest.param("country=()", 8, "empty parentheses", id="empty-parentheses"),
    pytest.param("country=FR|", 10, "'|' is not followed by a value", id="dangling-or"),
    pytest.param("country=FR&", 10, "'&' is not followed by a value", id="dangling-and"),
    pytest.param("country=|FR", 8, "'|' has no value before it", id="leading-or"),
    pytest.param("country=FR||DE", 10, "'|' is not followed by a value", id="double-or"),
    pytest.param("age=<", 4, "'<' is not followed by a value", id="dangling-lt"),
    pytest.param("age=..", 4, "'..' is not followed by a value", id="dangling-range"),
    pytest.param("name=<>", 5, "'<>' is not followed by a value", id="dangling-ne"),
    pytest.param("country=(FR|)", 11, "'|' is not followed by a value", id="dangling-in-parentheses"),
    pytest.param("country=FR (DE)", 11, "unexpected '('", id="value-then-parenthesis"),
    pytest.param("name=C..a", 5, "Name between: 'C' comes after 'a'", id="text-range-reversed"),
    pytest.param("name=A*..C", 5, "wildcards do not fit a range", id="text-range-wildcard"),
    pytest.param("name=A..''", 8, "'' (empty) cannot be compared", id="text-range-empty"),
    pytest.param("mailing_groups=>A", 15, "comparisons fit numbers, dates, text and codes", id="gt-on-list"),
    pytest.param("mailing_groups=A..C", 16, "ranges fit numbers, dates, text and codes", id="range-on-list"),
    pytest.param(
        "mailing_groups=''", 15, "'' (empty) does not fit Mailing groups, a list field", id="empty-list"
    ),
    pytest.param("mailing_groups=NE*", 15, "wildcards do not fit Mailing groups", id="wildcard-list"),
    pytest.param("exclude_from_segments=maybe", 22, "'maybe' is not true or false", id="not-boolean"),
    pytest.param("exclude_from_segments=''", 22, "does not fit Excluded from segments", id="empty-boolean"),
    pytest.param(
        "exclude_from_segments=1..2", 23, "ranges fit numbers, dates, text and codes", id="range-boolean"
    ),
    pytest.param(
        "birth_date=311325", 11, "'311325' is not a date in your date order DMY (DDMMYY)", id="short-bad"
    ),
    pytest.param(
        "birth_date=20251231", 11, "is not a date in your date order DMY (DDMMYYYY)", id="short-iso-dmy"
    ),
    pytest.param("birth_date=3112", 11, "'3112' is not a date", id="short-4-digits"),
    pytest.param("birth_date=30D", 11, "'30D' is not a date", id="bc-formula-without-sign"),
    pytest.param("birth_date=CM..-CM", 11, "comes after", id="bc-month-reversed"),
    pytest.param("birth_date=-999999D", 11, "at most 200 years", id="bc-too-far"),
    pytest.param("birth_date=2024-13-01", 11, "'2024-13-01' is not a date", id="bad-date"),
    pytest.param("birth_date=2024-01-01..tomorrow", 23, "'tomorrow' is not a date", id="bad-date-bound"),
    pytest.param("birth_date=today-90", 11, "is not a date", id="relative-without-unit"),
    pytest.param("gender=femal", 7, "Gender has no value 'femal'", id="not-a-choice"),
    pytest.param("age_band=20-30", 9, "Age band has no value '20-30'", id="not-a-band"),
    pytest.param(
        "age_band=2*", 9, "an age band field: operator 'starts_with' does not fit", id="pattern-on-band"
    ),
    pytest.param("age_band=<17", 9, "'<' comparisons fit numbers, dates, text and codes", id="lt-on-band"),
    pytest.param("age_band=18-24..35-44", 14, "'..' ranges fit", id="range-on-band"),
    pytest.param("age=<''", 5, "'' (empty) cannot be compared", id="compare-empty"),
    pytest.param("name='abc", 5, "a quote ' is not closed", id="unclosed-quote"),
    pytest.param("name='abc", 5, "a quote ' is not closed: write 'abc' or abc", id="unclosed-quote-example"),
    pytest.param(
        "name='O'Brien'",
        7,
        "closes quoted text here but the value goes on: write 'O''Brien' or O'Brien",
        id="quoted-apostrophe",
    ),
    pytest.param(
        "name='O''Brien", 5, "a quote ' is not closed: write 'O''Brien' or O'Brien", id="unclosed-escaped"
    ),
    pytest.param("name=x|'abc", 7, "a quote ' is not closed: write 'abc' or abc", id="unclosed-second-term"),
    pytest.param(
        "name=*'O'Brien*",
        8,
        "closes quoted text here but the value goes on: write 'O''Brien' or O'Brien",
        id="quote-after-wildcard",
    ),
    # Bad input that once crashed: each is a usage error with a position.
    pytest.param(
        "name=" + "(" * 13 + "a" + ")" * 13, 17, "parentheses nest too deeply: at most 12", id="parens-13"
    ),
    pytest.param("name=" + "(" * 1000 + "a" + ")" * 1000, 17, "nest too deeply", id="parens-1000"),
    pytest.param("name=" + "(" * 5000, 17, "nest too deeply", id="parens-unclosed"),
    pytest.param("age=" + "1" * 5000, 4, "is too large", id="over-4300-digits"),
    pytest.param("total_spent=>=" + "9" * 41, 14, "is too large", id="long-number"),
    pytest.param("total_spent=1e999", 12, "is not a number", id="infinite-number"),
    pytest.param("name=?'*'", 5, "a quoted * or ? cannot be mixed with wildcards", id="quoted-wildcard-mix"),
    pytest.param("name=" + "x" * 1001, 5, "longer than 1,000 characters", id="long-value"),
]


@pytest.mark.parametrize(("text", "position", "message"), ERRORS)
def test_errors_point_at_the_fault(text: str, position: int, message: str) -> None:
    with pytest.raises(FilterSyntaxError) as info:
        parse_text(text)
    err = info.value
    assert err.text == text
    assert err.position == position, str(err)
    assert message in err.reason
    assert str(err) == f"{text}: position {position}: {err.reason}"


@pytest.mark.parametrize(
    ("text", "position"),
    [("name=ab\udcffc", 7), ("\udcff=1", 0), ("country=FR|\ud800", 11), ("name='x\udfff'", 7)],
)
def test_text_that_is_not_utf8_is_refused_with_its_position(text: str, position: int) -> None:
    # What a command line makes of bytes that are not UTF-8: lone surrogates, which no database can store.
    with pytest.raises(FilterSyntaxError) as info:
        parse_text(text)
    err = info.value
    assert err.position == position
    assert "not valid text (the filter was not UTF-8)" in err.reason
    str(err).encode("utf-8")  # the message itself can be printed and logged


def test_spec_example_message() -> None:
    with pytest.raises(FilterSyntaxError) as info:
        parse_text("age=25..x")
    assert str(info.value) == "age=25..x: position 8: 'x' is not a number"


def test_error_names_the_line_it_is_on() -> None:
    with pytest.raises(FilterSyntaxError) as info:
        parse_text("country=FR\nage=25..x\n")
    assert str(info.value) == "age=25..x: position 8: 'x' is not a number"


def test_tree_caps_apply_to_text() -> None:
    with pytest.raises(FilterError, match="at most 10,000 values"):
        parse_text("city=" + "|".join(f"C{i}" for i in range(10_001)))
    with pytest.raises(FilterError, match="longer than"):
        parse_text("name=" + "x" * 300_000)


# ------------------------------------------------------------------------------------------------------ to_text

TO_TEXT = [
    pytest.param({"all": []}, [], id="everything"),
    pytest.param(c("country", "in", ["FR", "DE"]), ["country=FR|DE"], id="in"),
    pytest.param(c("country", "not_in", ["FR", "DE"]), ["country=<>FR&<>DE"], id="not-in"),
    pytest.param(c("age", "between", [25, 44]), ["age=25..44"], id="between"),
    pytest.param(c("total_spent", "ge", 12.5), ["total_spent=>=12.5"], id="ge"),
    pytest.param(c("name", "contains", "a|b"), ["name=*'a|b'*"], id="quoted-contains"),
    pytest.param(c("name", "eq", "O'Brien"), ["name='O''Brien'"], id="quote-escaped"),
    pytest.param(c("name", "eq", "a*b"), ["name='a*b'"], id="star-quoted"),
    pytest.param(c("email", "ends_with", "@contoso.com"), ["email=*@contoso.com"], id="ends-with"),
    pytest.param(c("name", "matches", "a?b*"), ["name=a?b*"], id="matches"),
    pytest.param(c("name", "is_empty"), ["name=''"], id="empty"),
    pytest.param(c("exclude_from_segments", "is_true"), ["exclude_from_segments=true"], id="boolean"),
    pytest.param(c("mailing_groups", "has_all", ["A", "B"]), ["mailing_groups=A&B"], id="has-all"),
    pytest.param(c("age_band", "in", ["<18", "65+"]), ["age_band='<18'|65+"], id="bands"),
    pytest.param({"not": c("country", "eq", "FR")}, ["country=<>FR"], id="not-eq"),
    pytest.param({"not": c("name", "contains", "x")}, ["name=<>*x*"], id="not-contains"),
    pytest.param({"not": c("age", "lt", 18)}, ["age=>=18|''"], id="not-lt-keeps-empty"),
    pytest.param({"not": c("age", "between", [1, 2])}, ["age=<1|>2|''"], id="not-between"),
    pytest.param(
        {"not": c("mailing_groups", "has_all", ["A", "B"])}, ["mailing_groups=<>A|<>B"], id="not-has-all"
    ),
    pytest.param(
        {"not": {"any": [c("country", "eq", "FR"), c("age", "gt", 30)]}},
        ["country=<>FR", "age=<=30|''"],
        id="de-morgan-top",
    ),
    pytest.param(
        {
            "any": [
                c("country", "eq", "FR"),
                {"all": [c("country", "eq", "DE"), {"not": c("country", "eq", "BE")}]},
            ]
        },
        ["country=FR|DE&<>BE"],
        id="one-field-nested",
    ),
    pytest.param(
        {"all": [{"any": [c("age", "lt", 5), c("age", "gt", 9)]}, c("age", "ne", 7)]},
        ["age=<5|>9", "age=<>7"],
        id="flattened",
    ),
    pytest.param(
        {
            "all": [
                c("country", "eq", "FR"),
                rel("interactions", c("template", "eq", "EMAIL"), c("date", "ge", "today")),
            ]
        },
        ["country=FR", "interactions.template=EMAIL", "interactions.date=>=today"],
        id="related",
    ),
    pytest.param(c("name", "between", ["A", "C"]), ["name=A..C"], id="text-range"),
    pytest.param(c("name", "le", "C"), ["name=..C"], id="text-up-to"),
    pytest.param(c("country", "ge", "FR"), ["country=FR.."], id="code-from"),
    pytest.param(c("name", "between", [".a", "b."]), ["name='.a'..'b.'"], id="text-range-dots-quoted"),
    pytest.param(c("name", "le", "O'Brien"), ["name=..'O''Brien'"], id="text-range-quote"),
    pytest.param(c("birth_date", "between", ["-CM", "CM"]), ["birth_date=-CM..CM"], id="this-month"),
    pytest.param({"not": c("birth_date", "le", "CM")}, ["birth_date=>CM|''"], id="not-month-end"),
    pytest.param(c("birth_date", "ge", "t"), ["birth_date=>=today"], id="t"),
    pytest.param(c("name", "lt", "C"), ["name=<C"], id="text-lt"),
    pytest.param({"not": c("name", "between", ["A", "C"])}, ["name=<A|>C|''"], id="not-text-range"),
    pytest.param({"not": c("country", "ge", "FR")}, ["country=<FR|''"], id="not-code-range"),
    pytest.param({"not": c("name", "le", "b.")}, ["name=>'b.'|''"], id="not-text-range-dot"),
    # Not representable: None
    pytest.param({"any": [c("country", "eq", "FR"), c("age", "gt", 30)]}, None, id="or-across-fields"),
    pytest.param({"any": []}, None, id="nothing"),
    pytest.param(
        {"related": "interactions", "where": c("template", "eq", "X"), "min_count": 2}, None, id="min-count"
    ),
    pytest.param({"related": "interactions"}, None, id="related-without-where"),
    pytest.param({"not": rel("interactions", c("template", "eq", "X"))}, None, id="not-related"),
    pytest.param(
        {"all": [rel("profile", c("answer", "eq", "A")), rel("profile", c("answer", "eq", "B"))]},
        None,
        id="two-related-same-relation",
    ),
    pytest.param({"all": [c("age", "eq", 1), {"any": []}]}, None, id="false-inside"),
    pytest.param(c("name", "matches", " a"), None, id="exact-pattern-with-outer-space"),
]


@pytest.mark.parametrize(("obj", "expected"), TO_TEXT)
def test_to_text(obj: dict[str, Any], expected: list[str] | None) -> None:
    tree = from_json(obj)
    assert to_text(tree) == expected
    if expected is not None and tree != EMPTY:
        back = parse_text(expected)
        # Same tree, or the same tree with a list condition written as its single value / its parts.
        assert to_text(back) == expected or back == tree


def test_to_text_round_trips_the_parse_table() -> None:
    for param in PARSE:
        text = param.values[0]
        assert isinstance(text, str)
        tree = parse_text(text)
        lines = to_text(tree)
        assert lines is not None, text
        assert parse_text(lines) == tree, (text, lines)


def test_to_text_of_related_groups_back() -> None:
    tree = Group(
        "all",
        (
            Condition("country", "eq", "FR"),
            Related(
                "interactions",
                Group("all", (Condition("template", "eq", "EMAIL"), Not(Condition("date", "lt", "today")))),
            ),
        ),
    )
    lines = to_text(tree)
    assert lines == ["country=FR", "interactions.template=EMAIL", "interactions.date=>=today|''"]
    assert parse_text(lines) == Group(
        "all",
        (
            Condition("country", "eq", "FR"),
            Related(
                "interactions",
                Group(
                    "all",
                    (
                        Condition("template", "eq", "EMAIL"),
                        Group("any", (Condition("date", "ge", "today"), Condition("date", "is_empty"))),
                    ),
                ),
            ),
        ),
    )


DATE_ORDER = [
    pytest.param("311225", "DMY", "2025-12-31", id="dmy"),
    pytest.param("31122025", "DMY", "2025-12-31", id="dmy-wide"),
    pytest.param("122525", "MDY", "2025-12-25", id="mdy"),
    pytest.param("12252025", "mdy", "2025-12-25", id="mdy-wide-lower-case"),
    pytest.param("251231", "YMD", "2025-12-31", id="ymd"),
    pytest.param("20251231", "YMD", "2025-12-31", id="ymd-wide"),
    pytest.param("290229", "DMY", None, id="dmy-no-feb-29-2029"),
    pytest.param("290228", "DMY", "2028-02-29", id="dmy-feb-29-2028"),
    pytest.param("000101", "YMD", "2000-01-01", id="ymd-year-00"),
    pytest.param("991231", "YMD", "1999-12-31", id="ymd-year-99"),
    pytest.param("2025-12-31", "MDY", "2025-12-31", id="iso-in-any-order"),
]


@pytest.mark.parametrize(("value", "order", "expected"), DATE_ORDER)
def test_short_dates_follow_the_date_order(value: str, order: str, expected: str | None) -> None:
    text = f"birth_date={value}"
    if expected is None:
        with pytest.raises(FilterSyntaxError, match="is not a date in your date order"):
            parse_text(text, date_order=order)
        return
    assert parse_text(text, date_order=order) == Condition("birth_date", "eq", expected)


def test_the_same_short_date_reads_per_order() -> None:
    assert parse_text("birth_date=010203", date_order="DMY").value == "2003-02-01"  # type: ignore[union-attr]
    assert parse_text("birth_date=010203", date_order="MDY").value == "2003-01-02"  # type: ignore[union-attr]
    assert parse_text("birth_date=010203", date_order="YMD").value == "2001-02-03"  # type: ignore[union-attr]
    with pytest.raises(FilterSyntaxError, match=r"date order MDY \(MMDDYY\)"):
        parse_text("birth_date=311225", date_order="MDY")


def test_unknown_date_order_is_a_usage_error() -> None:
    with pytest.raises(FilterError, match="unknown date order 'DDMMYY': use DMY, MDY, YMD"):
        parse_text("birth_date=311225", date_order="DDMMYY")


def test_short_dates_are_only_read_on_date_fields() -> None:
    assert parse_text("post_code=311225") == Condition("post_code", "eq", "311225")
    assert parse_text("age=20") == Condition("age", "eq", 20)


def test_relative_dates_stay_relative() -> None:
    # Stored as tokens and resolved each time the filter runs, as `today-90d` always was.
    tree = parse_text(["last_purchase_date=-30D..T", "birth_date=-CM..CM"])
    assert tree == Group(
        "all",
        (
            Condition("last_purchase_date", "between", ("today-30d", "today")),
            Condition("birth_date", "between", ("month_start", "month_end")),
        ),
    )
    assert from_json(to_json(tree)) == tree


# ------------------------------------------------------------------------------------------- compact text form

# Every operator, as the Dynamic page shows it (`to_text(..., compact=True)`): a comparison follows the field name
# (`rating>=4`, never `rating=>=4`); every other expression keeps Business Central's `FIELD=EXPRESSION`.
COMPACT = [
    pytest.param(c("country", "eq", "FR"), "country=FR", id="eq"),
    pytest.param(c("country", "ne", "FR"), "country<>FR", id="ne"),
    pytest.param(c("country", "in", ["FR", "DE"]), "country=FR|DE", id="in"),
    pytest.param(c("country", "not_in", ["FR", "DE"]), "country<>FR&<>DE", id="not-in"),
    pytest.param(c("name", "contains", "mit"), "name=*mit*", id="contains"),
    pytest.param(c("name", "starts_with", "Sm"), "name=Sm*", id="starts-with"),
    pytest.param(c("name", "ends_with", "th"), "name=*th", id="ends-with"),
    pytest.param(c("name", "matches", "S?ith*"), "name=S?ith*", id="matches"),
    pytest.param(c("name", "is_empty"), "name=''", id="is-empty"),
    pytest.param(c("name", "is_not_empty"), "name<>''", id="is-not-empty"),
    pytest.param(c("rating", "lt", 4), "rating<4", id="lt"),
    pytest.param(c("rating", "le", 4), "rating<=4", id="le"),
    pytest.param(c("rating", "gt", 4), "rating>4", id="gt"),
    pytest.param(c("rating", "ge", 4), "rating>=4", id="ge"),
    pytest.param(c("rating", "ne", 4), "rating<>4", id="ne-number"),
    pytest.param(c("rating", "between", [2, 4]), "rating=2..4", id="between"),
    pytest.param(c("total_spent", "ge", 99.5), "total_spent>=99.5", id="ge-decimal"),
    pytest.param(c("birth_date", "lt", "2000-01-01"), "birth_date<2000-01-01", id="lt-date"),
    pytest.param(c("last_purchase_date", "ge", "today-90d"), "last_purchase_date>=today-90d", id="ge-relative"),
    pytest.param(c("birth_date", "le", "month_end"), "birth_date<=CM", id="le-month-end"),
    pytest.param(c("acquisition_date", "between", ["2024-01-01", "2024-12-31"]),
                 "acquisition_date=2024-01-01..2024-12-31", id="between-dates"),  # fmt: skip
    pytest.param(c("name", "le", "C"), "name=..C", id="text-le"),
    pytest.param(c("name", "ge", "A"), "name=A..", id="text-ge"),
    pytest.param(c("name", "between", ["A", "C"]), "name=A..C", id="text-between"),
    pytest.param(c("exclude_from_segments", "is_true"), "exclude_from_segments=true", id="is-true"),
    pytest.param(c("exclude_from_segments", "is_false"), "exclude_from_segments=false", id="is-false"),
    pytest.param(c("mailing_groups", "has_any", ["NEWS", "VIP"]), "mailing_groups=NEWS|VIP", id="has-any"),
    pytest.param(c("mailing_groups", "has_all", ["NEWS", "VIP"]), "mailing_groups=NEWS&VIP", id="has-all"),
    pytest.param(c("mailing_groups", "has_none", ["NEWS"]), "mailing_groups<>NEWS", id="has-none"),
    pytest.param({"not": c("rating", "ge", 4)}, "rating<4|''", id="not-ge"),
    pytest.param({"related": "interactions", "where": c("date", "ge", "today-30d")},
                 "interactions.date>=today-30d", id="related-ge"),  # fmt: skip
]


@pytest.mark.parametrize(("tree", "line"), COMPACT)
def test_the_compact_text_form_of_each_operator(tree: dict[str, Any], line: str) -> None:
    node = from_json(tree)
    assert to_text(node, compact=True) == [line]
    assert "=<" not in line and "=>" not in line
    # It parses to the tree Business Central's form (`FIELD=` before a comparison) parses to.
    assert parse_text(line) == parse_text(to_text(node))


def test_a_comparison_may_follow_the_field_name_without_an_equals_sign() -> None:
    assert parse_text("rating>=4\ncountry<>FR") == parse_text("rating=>=4\ncountry=<>FR")
    with pytest.raises(FilterSyntaxError) as caught:
        parse_text("ratng>=4")
    assert caught.value.position == 0 and caught.value.reason.startswith("unknown field 'ratng': did you mean 'rating'?")
