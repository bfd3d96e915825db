"""The import's value rules: every accepted spelling of every parser, the bad cells and their reasons, the ambiguous
date column, the did-you-mean suggestions, type inference, and round trips of random dates and decimals."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segcore.imports.values import (
    ColumnValues,
    infer_type,
    parse_booleans,
    parse_codes,
    parse_countries,
    parse_dates,
    parse_decimals,
    parse_genders,
    parse_integers,
    parse_languages,
    parse_list,
)

STR = str(pd.Series(["a"]).dtype)  # pandas' default string dtype: "str" on pandas 3, "object" before
AMBIGUOUS = "dates like 03/04/2021 can be day-first or month-first: choose the date order (DMY or MDY)"


def col(*values: str) -> pd.Series:
    return pd.Series(list(values), dtype="str")


def read(column: ColumnValues) -> list[object]:
    """The values as plain Python objects (NaN and NA as None) for comparisons."""
    out: list[object] = []
    for value in column.values.tolist():
        if value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            out.append(None)
        elif isinstance(value, np.generic):
            out.append(value.item())
        else:
            out.append(value)
    return out


def assert_clean(column: ColumnValues) -> None:
    assert not column.bad.any(), list(column.reasons)
    assert set(column.reasons.tolist()) <= {""}


def bad_reasons(column: ColumnValues) -> dict[int, str]:
    return {int(i): column.reasons[i] for i in np.flatnonzero(column.bad)}


# ---------------------------------------------------------------------------------------------------------------
# The shape of every result.


@pytest.mark.parametrize(
    ("parse", "dtype"),
    [
        (parse_dates, STR),
        (parse_decimals, "float64"),
        (parse_integers, "Int64"),
        (parse_countries, STR),
        (parse_languages, STR),
        (parse_genders, STR),
        (parse_booleans, "boolean"),
        (parse_codes, STR),
    ],
)
def test_every_parser_keeps_the_index_and_length(parse, dtype):
    s = pd.Series(["", "??", ""], index=[10, 7, 3], dtype="str")
    column = parse(s)
    assert list(column.values.index) == [10, 7, 3]
    assert str(column.values.dtype) == dtype
    assert column.bad.dtype == bool and len(column.bad) == 3
    assert column.reasons.dtype == object and len(column.reasons) == 3
    assert not column.bad[0] and not column.bad[2]
    assert column.rule


@pytest.mark.parametrize(
    "parse", [parse_dates, parse_decimals, parse_integers, parse_countries, parse_languages, parse_genders,
              parse_booleans, parse_codes]
)
def test_every_parser_reads_an_empty_column(parse):
    column = parse(pd.Series([], dtype="str"))
    assert len(column.values) == 0 and len(column.bad) == 0 and len(column.reasons) == 0


# ---------------------------------------------------------------------------------------------------------------
# Dates.


@pytest.mark.parametrize(
    ("values", "order", "expected", "rule"),
    [
        (["26-08-2020"], "auto", ["2020-08-26"], "dates DD-MM-YYYY"),
        (["31/12/1980"], "auto", ["1980-12-31"], "dates DD/MM/YYYY"),
        (["12/31/1980"], "auto", ["1980-12-31"], "dates MM/DD/YYYY"),
        (["12-31-1980"], "auto", ["1980-12-31"], "dates MM-DD-YYYY"),
        (["31.12.1980"], "auto", ["1980-12-31"], "dates DD.MM.YYYY"),
        (["1.2.2021"], "auto", ["2021-02-01"], "dates DD.MM.YYYY"),
        (["2020-08-26"], "auto", ["2020-08-26"], "dates YYYY-MM-DD"),
        (["2020/08/26"], "auto", ["2020-08-26"], "dates YYYY/MM/DD"),
        (["2021-3-4"], "auto", ["2021-03-04"], "dates YYYY-MM-DD"),
        (["13/5/2021", "1/2/2021"], "auto", ["2021-05-13", "2021-02-01"], "dates DD/MM/YYYY"),
        (["5/13/2021", "1/2/2021"], "auto", ["2021-05-13", "2021-01-02"], "dates MM/DD/YYYY"),
        (["29/02/2020"], "auto", ["2020-02-29"], "dates DD/MM/YYYY"),
        (["05/05/2021"], "auto", ["2021-05-05"], "dates DD/MM/YYYY"),  # day == month: the order changes nothing
        (["44197"], "auto", ["2021-01-01"], "Excel serial dates"),
        (["44197", "", "61", "2958465"], "auto", ["2021-01-01", "", "1900-03-01", "9999-12-31"], "Excel serial dates"),
        (["2020-08-26T10:30:00"], "auto", ["2020-08-26"], "dates YYYY-MM-DD (time of day ignored)"),
        (["2020-08-26 10:30:00.123+02:00"], "auto", ["2020-08-26"], "dates YYYY-MM-DD (time of day ignored)"),
        (["26/08/2020 10:30"], "auto", ["2020-08-26"], "dates DD/MM/YYYY (time of day ignored)"),
        (["8/26/2020 3:05 PM"], "auto", ["2020-08-26"], "dates MM/DD/YYYY (time of day ignored)"),
        (["2020-08-26", "31/12/1980", "2021-01-02"], "auto", ["2020-08-26", "1980-12-31", "2021-01-02"],
         "dates YYYY-MM-DD, DD/MM/YYYY"),
        (["03/04/2021"], "DMY", ["2021-04-03"], "dates DD/MM/YYYY"),
        (["03/04/2021"], "MDY", ["2021-03-04"], "dates MM/DD/YYYY"),
        (["3-4-2021"], "MDY", ["2021-03-04"], "dates MM-DD-YYYY"),
        (["03.04.2021"], "MDY", ["2021-04-03"], "dates DD.MM.YYYY"),  # dots are always day-first
        (["2021-03-04"], "YMD", ["2021-03-04"], "dates YYYY-MM-DD"),
        (["2021-03-04"], "DMY", ["2021-03-04"], "dates YYYY-MM-DD"),  # ISO is year-first whatever the order
        (["", "31/12/1980", ""], "auto", ["", "1980-12-31", ""], "dates DD/MM/YYYY"),
    ],
)
def test_dates_accepted(values, order, expected, rule):
    column = parse_dates(col(*values), order=order)
    assert_clean(column)
    assert read(column) == expected
    assert column.rule == rule
    assert column.ambiguous == ""


@pytest.mark.parametrize(
    ("values", "order", "bad"),
    [
        (["31/02/2021", "13/01/2021"], "auto", {0: "is not a real date"}),
        (["29/02/2021", "13/01/2021"], "auto", {0: "is not a real date"}),
        (["2021-13-01"], "auto", {0: "is not a real date"}),
        (["13/13/2021", "13/01/2021"], "auto", {0: "is not a real date"}),
        (["00/01/2021", "13/01/2021"], "auto", {0: "is not a real date"}),
        (["01/02/21", "13/01/2021"], "auto", {0: "has a two-digit year"}),
        (["0999-01-01"], "auto", {0: "has a year before 1000"}),
        (["13/01/20211"], "auto", {0: "is not a date (DD/MM/YYYY or YYYY-MM-DD)"}),
        (["foo", "31/12/2020"], "auto", {0: "is not a date (DD/MM/YYYY)"}),
        (["31/12/2020 lunch", "31/12/2020"], "auto", {0: "is not a date (DD/MM/YYYY)"}),
        (["31/12-2020", "31/12/2020"], "auto", {0: "is not a date (DD/MM/YYYY)"}),
        (["12345", "31/12/2020"], "auto", {0: "is not a date (DD/MM/YYYY)"}),  # a serial only in an all-number column
        (["2020-08-26", "31/12/1980", "soon"], "auto", {2: "is not a date (YYYY-MM-DD or DD/MM/YYYY)"}),
        (["44197", "0", "2958466"], "auto", {
            1: "is not an Excel date (a whole number from 1 to 2958465)",
            2: "is not an Excel date (a whole number from 1 to 2958465)",
        }),
        (["31/12/2021", "13/01/2020", "12/31/2020"], "auto", {
            2: "looks month-first (MM/DD/YYYY) but the column is day-first (DD/MM/YYYY)",
        }),
        (["12-31-2021", "01-13-2020", "31-12-2020"], "auto", {
            2: "looks day-first (DD-MM-YYYY) but the column is month-first (MM-DD-YYYY)",
        }),
        (["12/31/2021"], "DMY", {0: "is not a real date"}),
        (["31/12/2021"], "YMD", {0: "is not a date (YYYY-MM-DD)"}),
        (["nope"], "MDY", {0: "is not a date (MM/DD/YYYY)"}),
    ],
)
def test_dates_bad_cells(values, order, bad):
    column = parse_dates(col(*values), order=order)
    assert bad_reasons(column) == bad
    for i in bad:
        assert column.values.iloc[i] == ""


def test_dates_ambiguous_column_is_reported_then_read_with_the_chosen_order():
    s = col("03/04/2021", "05/06/2020", "", "2021-01-02", "7/8/1999")
    column = parse_dates(s)
    assert column.ambiguous == AMBIGUOUS
    assert column.bad.tolist() == [True, True, False, True, True]
    assert column.reasons.tolist() == [AMBIGUOUS, AMBIGUOUS, "", AMBIGUOUS, AMBIGUOUS]
    assert read(column) == ["", "", "", "", ""]
    assert "order to choose" in column.rule

    day_first = parse_dates(s, order="DMY")
    assert_clean(day_first)
    assert read(day_first) == ["2021-04-03", "2020-06-05", "", "2021-01-02", "1999-08-07"]
    assert day_first.rule == "dates DD/MM/YYYY, YYYY-MM-DD"

    month_first = parse_dates(s, order="MDY")
    assert_clean(month_first)
    assert read(month_first) == ["2021-03-04", "2020-05-06", "", "2021-01-02", "1999-07-08"]
    assert month_first.rule == "dates MM/DD/YYYY, YYYY-MM-DD"


def test_dates_dashes_are_ambiguous_too_but_dots_are_not():
    assert parse_dates(col("03-04-2021")).ambiguous == AMBIGUOUS
    assert read(parse_dates(col("03.04.2021"))) == ["2021-04-03"]


def test_dates_unknown_order_is_refused():
    with pytest.raises(ValueError, match="date order"):
        parse_dates(col("2021-01-01"), order="YDM")


# ---------------------------------------------------------------------------------------------------------------
# Decimals and whole numbers.


@pytest.mark.parametrize(
    ("values", "expected", "rule"),
    [
        (["1234.5"], [1234.5], "decimal point"),
        (["1234,5"], [1234.5], "decimal comma"),
        (["1 234,50"], [1234.5], "decimal comma, space as thousands separator"),
        (["1\u00a0234,50"], [1234.5], "decimal comma, space as thousands separator"),
        (["1\u202f234,50"], [1234.5], "decimal comma, space as thousands separator"),
        (["1.234,50"], [1234.5], "decimal comma, dot as thousands separator"),
        (["1,234.50"], [1234.5], "decimal point, comma as thousands separator"),
        (["1'234.50"], [1234.5], "decimal point, apostrophe as thousands separator"),
        (["1\u2019234.50"], [1234.5], "decimal point, apostrophe as thousands separator"),
        (["1 234 567,5", "1.234,5"], [1234567.5, 1234.5], "decimal comma, space and dot as thousands separators"),
        (["€ 12,50"], [12.5], "decimal comma, currency signs ignored"),
        (["12,50 €"], [12.5], "decimal comma, currency signs ignored"),
        (["12,50\u00a0€"], [12.5], "decimal comma, currency signs ignored"),
        (["12.50€"], [12.5], "decimal point, currency signs ignored"),
        (["$12"], [12.0], "decimal point, currency signs ignored"),
        (["£3.5"], [3.5], "decimal point, currency signs ignored"),
        (["CHF 1'234.50"], [1234.5], "decimal point, apostrophe as thousands separator, currency signs ignored"),
        (["EUR 12", "12 USD", "eur 3"], [12.0, 12.0, 3.0], "decimal point, currency signs ignored"),
        (["-€12", "€-12", "-12 €"], [-12.0, -12.0, -12.0], "decimal point, currency signs ignored"),
        (["-3", "+3.5"], [-3.0, 3.5], "decimal point"),
        (["-1 234,5", "\u22124,5"], [-1234.5, -4.5], "decimal comma, space as thousands separator"),
        ([".5", "5."], [0.5, 5.0], "decimal point"),
        (["1,234", "12,345,678"], [1234.0, 12345678.0],
         "decimal point, comma as thousands separator (1,234 read as 1234)"),
        (["1,234"], [1234.0], "decimal point, comma as thousands separator (1,234 read as 1234)"),
        (["1,234", "12,5"], [1.234, 12.5], "decimal comma"),
        (["1.234.567", "3.500"], [1234567.0, 3500.0], "decimal comma, dot as thousands separator (1.234 read as 1234)"),
        (["1.234"], [1.234], "decimal point"),
        (["1,234", "1.5"], [1234.0, 1.5], "decimal point, comma as thousands separator"),
        (["", "1.5", ""], [None, 1.5, None], "decimal point"),
    ],
)
def test_decimals_accepted(values, expected, rule):
    column = parse_decimals(col(*values))
    assert_clean(column)
    got = read(column)
    assert [g is None for g in got] == [e is None for e in expected]
    assert [g for g in got if g is not None] == pytest.approx([e for e in expected if e is not None])
    assert column.rule == rule


@pytest.mark.parametrize(
    ("values", "minimum", "bad"),
    [
        (["abc", "1.5"], None, {0: "is not a number"}),
        (["1.5", "1.2.3"], None, {1: "is not a number"}),
        (["12 34", "1"], None, {0: "is not a number"}),
        (["1,234.50", "1,5"], None, {1: "is not a number"}),
        (["1.234,50", "1.5"], None, {1: "is not a number"}),
        (["12,5 %"], None, {0: "is not a number"}),
        (["1e5"], None, {0: "is not a number"}),
        (["nan", "inf", "-"], None, {0: "is not a number", 1: "is not a number", 2: "is not a number"}),
        (["€"], None, {0: "is not a number"}),
        (["-1", "0", "2"], 0, {0: "must be 0 or more"}),
        (["1", "2.5", "3"], 2.5, {0: "must be at least 2.5"}),
        (["1", "5"], 2, {0: "must be at least 2"}),
        (["1" * 400], None, {0: "is too large"}),
    ],
)
def test_decimals_bad_cells(values, minimum, bad):
    column = parse_decimals(col(*values), minimum=minimum)
    assert bad_reasons(column) == bad
    assert all(math.isnan(column.values.iloc[i]) for i in bad)


@pytest.mark.parametrize(
    ("values", "expected", "rule"),
    [
        (["1 234"], [1234], "whole numbers, space as thousands separator"),
        (["1.234"], [1234], "whole numbers, dot as thousands separator (1.234 read as 1234)"),
        (["1,234"], [1234], "whole numbers, comma as thousands separator (1,234 read as 1234)"),
        (["1.234.567", "12"], [1234567, 12], "whole numbers, dot as thousands separator (1.234 read as 1234)"),
        (["12,00", "3"], [12, 3], "whole numbers, decimal comma"),
        (["12.0", "3"], [12, 3], "whole numbers"),
        (["-4", "+7", "0"], [-4, 7, 0], "whole numbers"),
        (["", "3", ""], [None, 3, None], "whole numbers"),
        (["€ 1.500"], [1500], "whole numbers, dot as thousands separator (1.234 read as 1234), currency signs ignored"),
        (["9007199254740993"], [9007199254740993], "whole numbers"),  # above 2**53: read exactly, not via a float
    ],
)
def test_integers_accepted(values, expected, rule):
    column = parse_integers(col(*values))
    assert_clean(column)
    assert read(column) == expected
    assert column.rule == rule


@pytest.mark.parametrize(
    ("values", "bounds", "bad"),
    [
        (["2,5", "3"], {}, {0: "is not a whole number"}),
        (["1.5", "2"], {}, {0: "is not a whole number"}),
        (["abc"], {}, {0: "is not a number"}),
        (["99999999999999999999"], {}, {0: "is too large"}),
        (["0", "6", "3", "1", "5"], {"minimum": 1, "maximum": 5},
         {0: "must be a whole number from 1 to 5", 1: "must be a whole number from 1 to 5"}),
        (["-1", "0"], {"minimum": 0}, {0: "must be 0 or more"}),
        (["2", "3"], {"minimum": 3}, {0: "must be at least 3"}),
        (["11", "10"], {"maximum": 10}, {0: "must be at most 10"}),
    ],
)
def test_integers_bad_cells(values, bounds, bad):
    column = parse_integers(col(*values), **bounds)
    assert bad_reasons(column) == bad
    assert all(column.values.iloc[i] is pd.NA for i in bad)


# ---------------------------------------------------------------------------------------------------------------
# Countries and languages.


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("France", "FR"), ("Allemagne", "DE"), ("Deutschland", "DE"), ("Germany", "DE"), ("Alemania", "DE"),
        ("UK", "GB"), ("U.K.", "GB"), ("Great Britain", "GB"), ("Britain", "GB"), ("England", "GB"),
        ("Scotland", "GB"), ("Wales", "GB"), ("Northern Ireland", "GB"), ("United Kingdom", "GB"),
        ("Royaume-Uni", "GB"), ("Großbritannien", "GB"),
        ("United States", "US"), ("USA", "US"), ("U.S.A.", "US"), ("US", "US"), ("America", "US"),
        ("Amerika", "US"), ("Etats-Unis", "US"), ("États-Unis", "US"), ("Etats Unis", "US"), ("etats-unis", "US"),
        ("Estados Unidos", "US"),
        ("Espagne", "ES"), ("España", "ES"), ("Espana", "ES"), ("Spain", "ES"), ("Spanien", "ES"),
        ("Holland", "NL"), ("Hollande", "NL"), ("the Netherlands", "NL"), ("Pays-Bas", "NL"), ("Niederlande", "NL"),
        ("Russia", "RU"), ("Russie", "RU"), ("Russland", "RU"),
        ("South Korea", "KR"), ("Corée du Sud", "KR"), ("Südkorea", "KR"),
        ("Czech Republic", "CZ"), ("République tchèque", "CZ"), ("Tschechien", "CZ"),
        ("Ivory Coast", "CI"), ("Côte d'Ivoire", "CI"), ("Cote d Ivoire", "CI"),
        ("Vietnam", "VN"), ("Iran", "IR"), ("Syria", "SY"), ("Bolivia", "BO"), ("Venezuela", "VE"),
        ("Tanzania", "TZ"), ("Moldova", "MD"), ("Laos", "LA"), ("Taiwan", "TW"),
        ("Schweiz", "CH"), ("Suisse", "CH"), ("Svizzera", "CH"),
        ("Belgique", "BE"), ("België", "BE"), ("Belgien", "BE"),
        ("Österreich", "AT"), ("Osterreich", "AT"), ("Autriche", "AT"),
        ("FR", "FR"), ("fr", "FR"), ("FRA", "FR"), ("deu", "DE"), ("gb", "GB"),
    ],
)
def test_countries_accepted(value, code):
    column = parse_countries(col(value, ""))
    assert_clean(column)
    assert read(column) == [code, ""]


@pytest.mark.parametrize(
    ("values", "rule"),
    [
        (["FR", "de", "USA"], "country codes"),
        (["Allemagne", "France"], "country names (fr) to ISO codes"),
        (["Deutschland", "Spain"], "country names (en, de) to ISO codes"),
        (["France", "DE"], "country names (en) and codes to ISO codes"),
    ],
)
def test_countries_rule(values, rule):
    assert parse_countries(col(*values)).rule == rule


def test_countries_unknown_and_a_typo_with_its_suggestion():
    column = parse_countries(col("Frnace", "Atlantis", "France", "", "xx", "Germny"))
    assert bad_reasons(column) == {
        0: "is not a country: did you mean FR (France)?",
        1: "is not a country (a name or an ISO code, e.g. FR)",
        4: "is not a country (a name or an ISO code, e.g. FR)",
        5: "is not a country: did you mean DE (Germany)?",
    }
    assert set(column.suggestions) == {("Frnace", "FR"), ("Germny", "DE")}
    assert read(column) == ["", "", "FR", "", "", ""]


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("French", "fr"), ("Français", "fr"), ("francais", "fr"), ("Französisch", "fr"),
        ("English", "en"), ("anglais", "en"), ("Englisch", "en"),
        ("German", "de"), ("Deutsch", "de"), ("Allemand", "de"),
        ("Spanish", "es"), ("Espagnol", "es"), ("Spanisch", "es"), ("Español", "es"),
        ("Italian", "it"), ("Italien", "it"), ("Italienisch", "it"),
        ("Dutch", "nl"), ("Néerlandais", "nl"), ("Niederländisch", "nl"),
        ("Greek", "el"), ("Malay", "ms"),
        ("fr", "fr"), ("FR", "fr"), ("fra", "fr"), ("fre", "fr"), ("deu", "de"), ("ger", "de"), ("eng", "en"),
        ("en-GB", "en"), ("pt_BR", "pt"), ("fr-CH", "fr"),
    ],
)
def test_languages_accepted(value, code):
    column = parse_languages(col(value, ""))
    assert_clean(column)
    assert read(column) == [code, ""]


def test_languages_bad_cells_and_rule():
    column = parse_languages(col("Klingon", "zz", "Frnech", "fr", "Deutsch"))
    assert bad_reasons(column) == {
        0: "is not a language (a name or an ISO 639-1 code, e.g. fr)",
        1: "is not a language (a name or an ISO 639-1 code, e.g. fr)",
        2: "is not a language: did you mean fr (French)?",
    }
    assert column.suggestions == (("Frnech", "fr"),)
    assert column.rule == "language names (de) and codes to ISO 639-1 codes"
    assert parse_languages(col("fr", "de")).rule == "language codes"


# ---------------------------------------------------------------------------------------------------------------
# Genders and yes/no.

FEMALE = ["female", "F", "f", "Woman", "w", "W", "weiblich", "Frau", "Fr", "Fr.", "Femme", "feminin", "Féminin",
          "Mme", "Mme.", "Madame", "Mlle", "Mademoiselle", "Mrs", "Mrs.", "Ms", "Miss", "Mujer", "Señora", "Sra",
          "Sra.", "Donna"]
MALE = ["male", "M", "m", "Man", "männlich", "mannlich", "Herr", "Hr", "Hr.", "Homme", "H", "masculin", "M.",
        "Mr", "Mr.", "Monsieur", "Hombre", "Señor", "Sr", "Sr.", "Uomo"]
OTHER = ["other", "O", "divers", "D", "X", "non-binary", "nonbinary", "Non binary", "non binaire", "Autre",
         "andere", "otro"]
UNKNOWN = ["unknown", "U", "unbekannt", "inconnu", "n/a", "N/A", "?", "-"]


@pytest.mark.parametrize(
    ("value", "gender"),
    [(v, "female") for v in FEMALE] + [(v, "male") for v in MALE] + [(v, "other") for v in OTHER]
    + [(v, "unknown") for v in UNKNOWN] + [("", "unknown")],
)
def test_genders_accepted(value, gender):
    column = parse_genders(col(value))
    assert_clean(column)
    assert read(column) == [gender]


def test_genders_bad_cell():
    column = parse_genders(col("robot", "F", ""))
    assert bad_reasons(column) == {0: "is not a gender (female, male, other or unknown)"}
    assert read(column) == ["", "female", "unknown"]
    assert column.rule.startswith("genders (F")


TRUE = ["true", "TRUE", "t", "yes", "Yes", "y", "1", "oui", "Oui", "ja", "j", "si", "sí", "Sí", "vrai", "VRAI", "wahr",
        "x", "X", "on", "✓", "✔"]
FALSE = ["false", "FALSE", "f", "no", "No", "n", "0", "non", "Non", "nein", "faux", "FAUX", "falsch", "off"]


@pytest.mark.parametrize(("value", "flag"), [(v, True) for v in TRUE] + [(v, False) for v in FALSE])
def test_booleans_accepted(value, flag):
    column = parse_booleans(col(value, ""))
    assert_clean(column)
    assert read(column) == [flag, None]


def test_booleans_bad_cells_and_rules():
    column = parse_booleans(col("maybe", "o", "oui", "non", ""))
    assert bad_reasons(column) == {
        0: "is not yes or no (true/false, oui/non, ja/nein, 1/0, x)",
        1: "is not yes or no (true/false, oui/non, ja/nein, 1/0, x)",  # 'o' could be oui or ok: refused
    }
    assert read(column) == [None, None, True, False, None]
    assert column.rule == "yes/no (non, oui)"
    ticks = parse_booleans(col("x", "", "X"))
    assert read(ticks) == [True, None, True]  # an x column's empty cells stay unknown
    assert ticks.rule == "ticks (x = yes, empty = unknown)"


# ---------------------------------------------------------------------------------------------------------------
# Codes and lists.


@pytest.mark.parametrize(
    ("case", "expected", "rule"),
    [
        ("upper", ["AB C", "X Y", "D-1", ""], "codes in upper case"),
        ("lower", ["ab c", "x y", "d-1", ""], "codes in lower case"),
        ("keep", ["ab c", "x Y", "d-1", ""], "codes as written"),
    ],
)
def test_codes(case, expected, rule):
    column = parse_codes(col("ab  c", "x\u00a0Y", "d-1", ""), case=case)
    assert_clean(column)
    assert read(column) == expected
    assert column.rule == rule


def test_codes_unknown_case_is_refused():
    with pytest.raises(ValueError, match="case"):
        parse_codes(col("a"), case="title")


def test_list_split():
    positions, items = parse_list(col("a; b;", "", " c ;; d", "e"))
    assert positions.tolist() == [0, 0, 2, 2, 3]
    assert items.tolist() == ["A", "B", "C", "D", "E"]
    positions, items = parse_list(col("x, y", "z"), separator=",")
    assert positions.tolist() == [0, 0, 1]
    assert items.tolist() == ["X", "Y", "Z"]
    with pytest.raises(ValueError, match="separator"):
        parse_list(col("a"), separator="")


# ---------------------------------------------------------------------------------------------------------------
# Type inference.


@pytest.mark.parametrize(
    ("values", "name", "type_", "integer", "date_order", "reason"),
    [
        (["oui", "non", ""], "", "boolean", False, "", "every value is yes/no (non, oui)"),
        (["0", "1", "1"], "", "boolean", False, "", "every value is yes/no (1, 0)"),
        (["x", "", "X"], "", "boolean", False, "", "every value is a tick (x) or empty"),
        (["1", "2", "3"], "", "number", True, "", "every value is a whole number"),
        (["1", "1"], "", "number", True, "", "every value is a whole number"),  # only "1": not a yes/no field
        (["1,5", "2"], "", "number", False, "", "every value is a number"),
        (["1 234,50", "12"], "", "number", False, "", "every value is a number"),
        (["44197", "44198"], "", "number", True, "", "every value is a whole number"),
        (["44197", "44198"], "signup_date", "date", False, "",
         "every value is an Excel serial date (the header says 'signup_date')"),
        (["26-08-2020", "31-12-1980"], "", "date", False, "DMY", "every value is a date (DD-MM-YYYY)"),
        (["12/31/1980"], "", "date", False, "MDY", "every value is a date (MM/DD/YYYY)"),
        (["2020-08-26", ""], "", "date", False, "YMD", "every value is a date (YYYY-MM-DD)"),
        (["31.12.1980"], "", "date", False, "DMY", "every value is a date (DD.MM.YYYY)"),
        (["a;b", "c; d", "e"], "", "list", False, "", "lists separated by ';' (5 distinct items)"),
        (["FR", "DE"] * 50, "", "code", False, "", "2 distinct values"),
        (["01234", "02345"] * 10, "", "code", False, "", "2 distinct values"),  # leading zeros: not a number
        ([f"note {i}" for i in range(300)], "", "text", False, "", "free text (300 distinct values)"),
        ([f"c{i % 60}" for i in range(600)], "", "text", False, "", "free text (60 distinct values)"),
        (["a", "b", "c"], "", "text", False, "", "free text (3 distinct values)"),  # small column: half the rows
        (["x" * 31, "x" * 31, "y"], "", "text", False, "", "free text (2 distinct values)"),  # too long for a code
        (["", ""], "", "text", False, "", "every value is empty"),
    ],
)
def test_infer_type(values, name, type_, integer, date_order, reason):
    inferred = infer_type(col(*values), name=name)
    assert (inferred.type, inferred.integer, inferred.date_order, inferred.reason) == (
        type_, integer, date_order, reason
    )
    assert inferred.ambiguous == ""


def test_infer_type_ambiguous_dates_are_dates_whose_order_is_to_choose():
    inferred = infer_type(col("03/04/2021", "05/06/2021"))
    assert inferred.type == "date"
    assert inferred.date_order == ""
    assert inferred.ambiguous == AMBIGUOUS


def test_infer_type_long_list_items_are_text():
    inferred = infer_type(col("a much longer item than thirty characters; b", "c; d"))
    assert inferred.type == "text"


# ---------------------------------------------------------------------------------------------------------------
# Round trips.

DATE_FORMATS = [("DMY", "/"), ("DMY", "-"), ("DMY", "."), ("MDY", "/"), ("YMD", "-")]


def write_date(day: dt.date, order: str, sep: str, pad: bool) -> str:
    d, m = (f"{day.day:02d}", f"{day.month:02d}") if pad else (str(day.day), str(day.month))
    if order == "YMD":
        return f"{day.year:04d}{sep}{m}{sep}{d}"
    first, second = (d, m) if order == "DMY" else (m, d)
    return f"{first}{sep}{second}{sep}{day.year:04d}"


@settings(deadline=None)
@given(
    days=st.lists(st.dates(min_value=dt.date(1000, 1, 1), max_value=dt.date(9999, 12, 31)), min_size=1, max_size=30),
    style=st.sampled_from(DATE_FORMATS),
    pad=st.booleans(),
    empties=st.lists(st.booleans(), min_size=30, max_size=30),
)
def test_dates_round_trip(days, style, pad, empties):
    order, sep = style
    written = ["" if empty else write_date(day, order, sep, pad) for day, empty in zip(days, empties, strict=False)]
    column = parse_dates(col(*written), order=order)
    assert_clean(column)
    expected = ["" if text == "" else day.isoformat() for day, text in zip(days, written, strict=True)]
    assert read(column) == expected


NUMBER_STYLES = [(".", ""), (",", ""), (",", " "), (",", "\u00a0"), (",", "\u202f"), (",", "."), (".", ","),
                 (".", "'"), (".", " ")]


def write_number(cents: int, decimal: str, thousands: str, currency: str) -> str:
    whole, fraction = divmod(abs(cents), 100)
    grouped = f"{whole:,}".replace(",", thousands)
    text = f"{'-' if cents < 0 else ''}{grouped}{decimal}{fraction:02d}"
    return currency.replace("#", text) if currency else text


@settings(deadline=None)
@given(
    amounts=st.lists(st.integers(min_value=-10**13, max_value=10**13), min_size=1, max_size=30),
    style=st.sampled_from(NUMBER_STYLES),
    currency=st.sampled_from(["", "€ #", "# €", "#\u00a0€", "$#", "CHF #", "# EUR"]),
)
def test_decimals_round_trip(amounts, style, currency):
    decimal, thousands = style
    column = parse_decimals(col(*(write_number(a, decimal, thousands, currency) for a in amounts)))
    assert_clean(column)
    assert np.round(column.values.to_numpy(), 2).tolist() == [a / 100 for a in amounts]
