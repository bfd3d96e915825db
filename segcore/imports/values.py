"""The value rules of the contact import: one column of text as people write it -> the stored values.

Every parser reads a whole column at once and returns a ColumnValues: the values, which cells could not be read and
why, and the rule that was used (for the import report). A column holds up to a million rows, so nothing loops in
Python per row: text columns are dictionary-encoded (even a big file has few distinct countries, genders or dates),
each distinct value is read once and the result is mapped back with a take; numbers, which may all be distinct, are
read with vectorised pyarrow string kernels.

Input to every parser: a pandas Series of str, already whitespace-trimmed, '' for an empty cell.
"""

from __future__ import annotations

import difflib
import gettext
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pycountry

__all__ = [
    "ColumnValues",
    "Inferred",
    "infer_type",
    "parse_booleans",
    "parse_codes",
    "parse_countries",
    "parse_dates",
    "parse_decimals",
    "parse_genders",
    "parse_integers",
    "parse_languages",
    "parse_list",
]


@dataclass(frozen=True, eq=False)
class ColumnValues:
    """One column read: the stored values, which cells failed and why, and the rule that was used."""

    values: pd.Series  # same index and length as the input; empty cells hold each parser's "empty" value
    bad: np.ndarray  # bool, True where a non-empty cell could not be read
    reasons: np.ndarray  # object, the reason for each bad cell, '' elsewhere
    rule: str  # the rule used, for the report: "dates DD/MM/YYYY", "decimal comma, space as thousands separator"
    ambiguous: str = ""  # set when the column cannot be read without the user's choice (every non-empty cell is bad)
    suggestions: tuple[tuple[str, str], ...] = ()  # (value as written, suggested value) for near misses


@dataclass(frozen=True)
class Inferred:
    """The type a column's values suggest for a new custom field, with why."""

    type: str  # "number" | "date" | "code" | "text" | "boolean" | "list"
    integer: bool  # for numbers: every value whole
    reason: str  # "every value is a date (DD-MM-YYYY)", "12 distinct values", "free text (5,432 distinct values)"
    date_order: str = ""  # "DMY" / "MDY" / "YMD" when type == "date" and decided; "" if ambiguous or Excel serials
    ambiguous: str = ""  # parse_dates' message when the date order must be chosen


# ---------------------------------------------------------------------------------------------------------------
# Shared plumbing: arrow in, dictionary encoding, results out.

_NULL_STR = pa.scalar(None, pa.large_string())


def _arrow(s: pd.Series) -> pa.Array:
    """The column as one pyarrow large_string array; a missing value (not expected) counts as ''."""
    arr = pa.array(s, type=pa.large_string(), from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.null_count:
        arr = pc.fill_null(arr, "")
    return arr


def _np_bool(arr: pa.Array) -> np.ndarray:
    """A boolean arrow array as numpy, null as False."""
    if arr.null_count:
        arr = pc.fill_null(arr, False)
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=bool)


def _str_series(arr: pa.Array, index: pd.Index) -> pd.Series:
    """Arrow strings as a Series of pandas' default string dtype ("str" on pandas 3, object before)."""
    return pd.Series(arr.to_pandas().array, index=index)


@dataclass(frozen=True, eq=False)
class _Distinct:
    """A column dictionary-encoded: each row's position in the distinct values, and the distinct values."""

    codes: np.ndarray
    uniques: pa.Array

    @property
    def counts(self) -> np.ndarray:
        """How many rows hold each distinct value (reports and majorities count rows, not spellings)."""
        return np.bincount(self.codes, minlength=len(self.uniques))

    def take_str(self, per_unique: Sequence[str] | np.ndarray, index: pd.Index) -> pd.Series:
        """One string per distinct value, spread back to the rows."""
        return _str_series(pa.array(per_unique, pa.large_string()).take(pa.array(self.codes)), index)

    def take(self, per_unique: np.ndarray) -> np.ndarray:
        """One numpy value per distinct value, spread back to the rows."""
        return per_unique[self.codes]


def _distinct(arr: pa.Array) -> _Distinct:
    encoded = pc.dictionary_encode(arr)
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    return _Distinct(codes, encoded.dictionary)


def _reasons_array(per_unique: Sequence[str]) -> np.ndarray:
    out = np.empty(len(per_unique), dtype=object)
    out[:] = list(per_unique)
    return out


def _by_distinct(
    s: pd.Series,
    d: _Distinct,
    values: Sequence[str],
    reasons: Sequence[str],
    rule: str,
    suggestions: tuple[tuple[str, str], ...] = (),
) -> ColumnValues:
    """A string column read one distinct value at a time."""
    reason_u = _reasons_array(reasons)
    reasons_rows = d.take(reason_u)
    return ColumnValues(
        values=d.take_str(values, s.index),
        bad=d.take(reason_u != ""),
        reasons=reasons_rows,
        rule=rule,
        suggestions=suggestions,
    )


def _most_frequent(values: Iterable[str], counts: Iterable[int], limit: int = 6) -> list[str]:
    """The most frequent values first, for a rule text that shows what the column held."""
    ranked = sorted(zip(values, counts, strict=True), key=lambda vc: (-vc[1], vc[0]))
    return [v for v, _ in ranked[:limit]]


def _fold(text: str) -> str:
    """Compared form of a name: lower case without accents, punctuation or spaces ('États-Unis' -> 'etatsunis')."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if ch.isalnum())


def _fold_word(text: str) -> str:
    """Compared form of a short word: lower case without accents or a trailing dot, other punctuation kept ('n/a')."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    word = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).strip()
    return word[:-1].rstrip() if word.endswith(".") and len(word) > 1 else word


def _compact(word: str) -> str:
    return word.replace(" ", "").replace("-", "").replace("_", "")


# ---------------------------------------------------------------------------------------------------------------
# Dates.

_DATE_ORDERS = ("auto", "DMY", "MDY", "YMD")
_AMBIGUOUS_DATES = "dates like 03/04/2021 can be day-first or month-first: choose the date order (DMY or MDY)"
# A time of day after the date (exports from CRMs and Excel): hh:mm[:ss[.fff]] [am/pm] [Z / UTC / +hh:mm]. Only
# a well-formed time is removed, so "31/12/2020 foo" still fails as a whole.
_TIME_PART = (
    r"[ T]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?: ?(?i:am|pm))?(?: ?(?:Z|(?i:utc|gmt)|[+-]\d{2}(?::?\d{2})?))?$"
)
_ISO_DATE = r"^(?P<y>\d{4})(?P<s1>[-/])(?P<m>\d{1,2})(?P<s2>[-/])(?P<d>\d{1,2})$"
# The year is captured whatever its length so that "03/04/21" can be told it has a two-digit year.
_DAY_MONTH_DATE = r"^(?P<a>\d{1,2})(?P<s1>[-/.])(?P<b>\d{1,2})(?P<s2>[-/.])(?P<y>\d{1,9})$"
_EXCEL_EPOCH = np.datetime64("1899-12-30", "D")  # Excel's day 0 as used by every modern reader (1900 leap-year bug)
_EXCEL_MAX = 2958465  # 9999-12-31
_EXCEL_FORMAT = "Excel serial dates"

_NO_SHAPE, _ISO_DASH, _ISO_SLASH, _SLASH, _DASH, _DOT, _SERIAL = range(7)
_SEPARATOR_SHAPE = {"/": _SLASH, "-": _DASH, ".": _DOT}
_FORMATS = {
    (_ISO_DASH, "YMD"): "YYYY-MM-DD",
    (_ISO_SLASH, "YMD"): "YYYY/MM/DD",
    (_SLASH, "DMY"): "DD/MM/YYYY",
    (_SLASH, "MDY"): "MM/DD/YYYY",
    (_DASH, "DMY"): "DD-MM-YYYY",
    (_DASH, "MDY"): "MM-DD-YYYY",
    (_DOT, "DMY"): "DD.MM.YYYY",
}
_DEFAULT_FORMAT = {"auto": "DD/MM/YYYY or YYYY-MM-DD", "DMY": "DD/MM/YYYY", "MDY": "MM/DD/YYYY", "YMD": "YYYY-MM-DD"}
_DAYS_IN_MONTH = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


@dataclass(frozen=True, eq=False)
class _Dates:
    """parse_dates' result plus what infer_type wants to know: the order decided and the formats seen."""

    column: ColumnValues
    order: str  # "DMY" / "MDY" / "YMD", or "" when ambiguous, Excel serials or nothing read
    formats: tuple[str, ...]


def _ints(struct: pa.Array, field: str, ok: pa.Array) -> np.ndarray:
    """An all-digit regex group as int64, 0 where the regex did not match."""
    text = pc.if_else(ok, struct.field(field), "0")
    return np.asarray(pc.cast(text, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


def _read_dates(s: pd.Series, order: str) -> _Dates:
    if order not in _DATE_ORDERS:
        raise ValueError(f"date order must be one of {', '.join(_DATE_ORDERS)}, not {order!r}")
    arr = _arrow(s)

    # Drop a time of day first: timestamps are all distinct, their dates are not.
    has_time = pc.match_substring_regex(arr, r"\d[ T]\d{1,2}:\d")
    times_ignored = False
    if pc.any(has_time).as_py():
        with_time = arr.filter(has_time)
        without = pc.replace_substring_regex(with_time, _TIME_PART, "")
        times_ignored = bool(pc.any(pc.not_equal(with_time, without)).as_py())
        arr = pc.replace_with_mask(arr, has_time, without)

    d = _distinct(arr)
    u = d.uniques
    k = len(u)
    counts = d.counts
    nonempty = _np_bool(pc.not_equal(u, ""))

    # The shape of every distinct value, read with vectorised regexes on the values made of digits and separators
    # only (a wrong column mapped to a date may have a million distinct values that are no date at all).
    candidates = np.flatnonzero(_np_bool(pc.match_substring_regex(u, r"^\d[\d./-]*$")))
    cu = u.take(pa.array(candidates))

    def spread(sub: np.ndarray) -> np.ndarray:
        full = np.zeros(k, dtype=sub.dtype)
        full[candidates] = sub
        return full

    shape = np.full(k, _NO_SHAPE, dtype=np.int8)
    iso = pc.extract_regex(cu, _ISO_DATE)
    iso_ok = pc.and_(iso.is_valid(), pc.equal(iso.field("s1"), iso.field("s2")))
    iso_np = spread(_np_bool(iso_ok))
    shape[iso_np & spread(_np_bool(pc.equal(iso.field("s1"), "-")))] = _ISO_DASH
    shape[iso_np & spread(_np_bool(pc.equal(iso.field("s1"), "/")))] = _ISO_SLASH
    dm = pc.extract_regex(cu, _DAY_MONTH_DATE)
    dm_ok = pc.and_(dm.is_valid(), pc.equal(dm.field("s1"), dm.field("s2")))
    dm_np = spread(_np_bool(dm_ok))
    for sep, code in _SEPARATOR_SHAPE.items():
        shape[dm_np & spread(_np_bool(pc.equal(dm.field("s1"), sep)))] = code
    serial_np = spread(_np_bool(pc.ascii_is_decimal(cu))) & (shape == _NO_SHAPE)
    shape[serial_np] = _SERIAL

    iso_y, iso_m, iso_d = (spread(_ints(iso, f, iso_ok)) for f in ("y", "m", "d"))
    part_a, part_b, dm_y = (spread(_ints(dm, f, dm_ok)) for f in ("a", "b", "y"))
    dm_year_digits = spread(np.asarray(pc.binary_length(dm.field("y")).to_numpy(zero_copy_only=False)))

    reasons = np.full(k, "", dtype=object)

    # Excel serial dates: only when every non-empty value is a whole number, else "44197" is just not a date.
    if nonempty.any() and bool((shape[nonempty] == _SERIAL).all()):
        digits = np.asarray(pc.binary_length(u).to_numpy(zero_copy_only=False))
        short = pc.if_else(pa.array(serial_np & (digits <= 9)), u, "0")
        serial = np.asarray(pc.cast(short, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
        ok = nonempty & (digits <= 9) & (serial >= 1) & (serial <= _EXCEL_MAX)
        reasons[nonempty & ~ok] = f"is not an Excel date (a whole number from 1 to {_EXCEL_MAX})"
        text = np.full(k, "", dtype=object)
        text[ok] = np.datetime_as_string(_EXCEL_EPOCH + serial[ok].astype("timedelta64[D]"), unit="D")
        column = _by_distinct(s, d, text.tolist(), reasons.tolist(), _EXCEL_FORMAT)
        return _Dates(column, "", (_EXCEL_FORMAT,))

    day_month = (shape == _SLASH) | (shape == _DASH)  # the shapes whose order is the column's
    minority = np.zeros(k, dtype=bool)
    if order == "auto":
        first_big = day_month & (part_a > 12) & (part_b <= 12)
        second_big = day_month & (part_b > 12) & (part_a <= 12)
        dmy_rows, mdy_rows = int(counts[first_big].sum()), int(counts[second_big].sum())
        if dmy_rows == 0 and mdy_rows == 0:
            # Every part is <= 12: 03/04/2021 is 3 April or 4 March. Never guess; when day == month
            # everywhere the order changes nothing and the column is read.
            if (day_month & (part_a != part_b)).any():
                return _ambiguous_dates(s, d, nonempty, shape, counts)
            column_order = "DMY"
        elif dmy_rows >= mdy_rows:
            column_order, minority = "DMY", second_big
        else:
            column_order, minority = "MDY", first_big
    else:
        column_order = order

    # Day, month and year of every distinct value by its shape and the column's order.
    year = np.where(iso_np, iso_y, dm_y)
    month = iso_m.copy()
    day = iso_d.copy()
    dot = shape == _DOT
    month[dot], day[dot] = part_b[dot], part_a[dot]
    if column_order in ("DMY", "MDY"):
        first_is_day = column_order == "DMY"
        month[day_month] = (part_b if first_is_day else part_a)[day_month]
        day[day_month] = (part_a if first_is_day else part_b)[day_month]
    readable = iso_np | dot | (day_month & (column_order != "YMD"))
    year_digits = np.where(iso_np, 4, dm_year_digits)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_ok = (month >= 1) & (month <= 12)
    last_day = _DAYS_IN_MONTH[np.clip(month, 1, 12) - 1] + ((month == 2) & leap)
    calendar_ok = month_ok & (day >= 1) & (day <= last_day)
    year_ok = (year_digits == 4) & (year >= 1000)
    ok = nonempty & readable & ~minority & year_ok & calendar_ok

    def fmt(shape_code: int, shape_order: str) -> str:
        return _FORMATS[(shape_code, "YMD" if shape_code in (_ISO_DASH, _ISO_SLASH) else shape_order)]

    # The formats read, most rows first: the rule and the "is not a date (...)" reason name them.
    rows_by_format: dict[str, int] = {}
    for shape_code in (_ISO_DASH, _ISO_SLASH, _SLASH, _DASH, _DOT):
        rows = int(counts[ok & (shape == shape_code)].sum())
        if rows:
            name = fmt(shape_code, "DMY" if shape_code == _DOT else column_order)
            rows_by_format[name] = rows_by_format.get(name, 0) + rows
    formats = tuple(sorted(rows_by_format, key=lambda f: -rows_by_format[f]))
    expected = " or ".join(formats[:2]) if formats else _DEFAULT_FORMAT[order]

    # Reasons, the most basic first (a later assignment wins).
    reasons[nonempty & (year_digits == 4) & (year < 1000)] = "has a year before 1000"
    reasons[nonempty & (year_digits == 4) & (year >= 1000) & ~calendar_ok] = "is not a real date"
    reasons[nonempty & (year_digits == 2)] = "has a two-digit year"
    reasons[nonempty & ~np.isin(year_digits, (2, 4))] = f"is not a date ({expected})"
    for shape_code in (_SLASH, _DASH):
        cells = minority & (shape == shape_code)
        if cells.any():
            other = "MDY" if column_order == "DMY" else "DMY"
            reasons[cells] = (
                f"looks {'month' if other == 'MDY' else 'day'}-first ({fmt(shape_code, other)}) but the column is "
                f"{'day' if column_order == 'DMY' else 'month'}-first ({fmt(shape_code, column_order)})"
            )
    reasons[nonempty & ~readable] = f"is not a date ({expected})"
    reasons[ok] = ""

    # Formatting is the slow part: only the dates read (a junk column may have a million distinct values).
    stamps = (
        (year[ok] - 1970).astype("datetime64[Y]").astype("datetime64[M]") + (month[ok] - 1).astype("timedelta64[M]")
    ).astype("datetime64[D]") + (day[ok] - 1).astype("timedelta64[D]")
    text = np.full(k, "", dtype=object)
    text[ok] = np.datetime_as_string(stamps, unit="D")

    rule = "dates " + (", ".join(formats) if formats else _DEFAULT_FORMAT[order])
    if times_ignored:
        rule += " (time of day ignored)"
    column = _by_distinct(s, d, text.tolist(), reasons.tolist(), rule)
    if day_month.any() and column_order != "YMD":
        decided = column_order
    elif dot.any():
        decided = "DMY"
    elif iso_np.any():
        decided = "YMD"
    else:
        decided = ""
    return _Dates(column, decided, formats)


def _ambiguous_dates(
    s: pd.Series, d: _Distinct, nonempty: np.ndarray, shape: np.ndarray, counts: np.ndarray
) -> _Dates:
    """Every non-empty cell bad with the message: the column is read again once the user chose the order."""
    separator_shape = _SLASH if counts[shape == _SLASH].sum() >= counts[shape == _DASH].sum() else _DASH
    rule = f"dates {_FORMATS[(separator_shape, 'DMY')]} or {_FORMATS[(separator_shape, 'MDY')]} (order to choose)"
    reasons = np.where(nonempty, _AMBIGUOUS_DATES, "").astype(object)
    values = [""] * len(d.uniques)
    column = _by_distinct(s, d, values, reasons.tolist(), rule)
    return _Dates(
        ColumnValues(column.values, column.bad, column.reasons, rule, ambiguous=_AMBIGUOUS_DATES), "", ()
    )


def parse_dates(s: pd.Series, order: str = "auto") -> ColumnValues:
    """Dates as 'YYYY-MM-DD' text ('' for empty).

    Accepted per cell: YYYY-MM-DD or YYYY/MM/DD (always year first), DD/MM/YYYY or MM/DD/YYYY and the same with
    dashes (the column's order), DD.MM.YYYY (always day first), single-digit days and months, a time of day after a
    space or 'T' (ignored); or Excel serial dates when every value of the column is a whole number.

    order "auto" decides from the column: a first part above 12 somewhere means day-first, a second part above 12
    month-first (cells of the other kind are then bad); when every part is 12 or less the column is ambiguous and
    nothing is read. "DMY" / "MDY" read slash and dash dates in that order; "YMD" reads only year-first dates.
    """
    return _read_dates(s, order).column


# ---------------------------------------------------------------------------------------------------------------
# Numbers.

# Anything outside digits, signs and separators: a currency to strip, a unicode minus, or not a number at all.
_NOT_NUMBER_CHAR = r"[^0-9 ,.+\-'\x{2019}\x{a0}\x{202f}]"
_CURRENCY = r"(?:€|\$|£|(?i:chf|eur|usd))"
_SPACES = r"[ \x{a0}\x{202f}]*"
# Thousands separators other than the column's non-decimal one of ',' and '.', with their names for the rule.
_GROUP_CHARS = {" ": "space", "\u00a0": "space", "\u202f": "space", "'": "apostrophe", "\u2019": "apostrophe"}
_VOTERS = 100_000
_INT64_EXACT = 2.0**53  # floats are exact integers below this; larger whole numbers are re-read from the text


@dataclass(frozen=True, eq=False)
class _NumberText:
    """A number column reduced to plain '-1234.5' text (null for empty or unreadable cells)."""

    text: pa.Array
    empty: np.ndarray
    bad: np.ndarray  # non-empty and not a number
    decimal: str  # "," or "."
    decimal_seen: bool  # some readable value has a decimal separator (only worked out for whole numbers)
    groups: tuple[str, ...]  # names of the thousands separators seen: "space", "dot", ...
    note: str  # how a look-alike was read, e.g. "1,234 read as 1234"
    currency: bool


def _count_matches(arr: pa.Array, pattern: str) -> int:
    return int(pc.sum(pc.match_substring_regex(arr, pattern)).as_py() or 0) if len(arr) else 0


def _read_number_text(s: pd.Series, whole: bool) -> _NumberText:
    arr = _arrow(s)
    empty = _np_bool(pc.equal(arr, ""))

    # Currencies and unicode minus signs, only on the few rows that have a character outside the number alphabet.
    currency = False
    odd = pc.match_substring_regex(arr, _NOT_NUMBER_CHAR)
    if pc.any(odd).as_py():
        odd_rows = arr.filter(odd)
        if pc.any(pc.match_substring(odd_rows, "\u2212")).as_py():
            odd_rows = pc.replace_substring(odd_rows, "\u2212", "-")
        stripped = pc.replace_substring_regex(odd_rows, rf"^{_SPACES}{_CURRENCY}{_SPACES}", "")
        # An unanchored regex is slow: the currency after the number only where there was none before.
        no_prefix = pc.equal(stripped, odd_rows)
        if pc.any(no_prefix).as_py():
            suffixed = pc.replace_substring_regex(stripped.filter(no_prefix), rf"{_SPACES}{_CURRENCY}$", "")
            stripped = pc.replace_with_mask(stripped, no_prefix, suffixed)
        # "-€ 12": the sign before the currency; a capture group is slow, so only on the rows with a sign.
        signed = pc.or_(pc.starts_with(stripped, "-"), pc.starts_with(stripped, "+"))
        if pc.any(signed).as_py():
            unsigned = pc.replace_substring_regex(
                stripped.filter(signed), rf"^([+-]){_SPACES}{_CURRENCY}{_SPACES}", r"\1"
            )
            stripped = pc.replace_with_mask(stripped, signed, unsigned)
        currency = bool(pc.any(pc.not_equal(stripped, odd_rows)).as_py())
        arr = pc.replace_with_mask(arr, odd, stripped)

    # The decimal separator is decided once for the column, from the values that tell.
    n_comma = np.asarray(pc.count_substring(arr, ",").to_numpy(zero_copy_only=False))
    n_dot = np.asarray(pc.count_substring(arr, ".").to_numpy(zero_copy_only=False))
    has_comma, has_dot = n_comma > 0, n_dot > 0
    both = has_comma & has_dot
    note = ""
    if both.any():
        # "1.234,50" / "1,234.50": the last of the two is the decimal separator; the majority of such rows wins
        # (counted on the first 100,000 of them: a vote, not a check of every row).
        voters = arr.filter(pa.array(both)).slice(0, _VOTERS)
        comma_last = _count_matches(voters, r",[^.]*$")
        decimal = "," if comma_last > len(voters) - comma_last else "."
    else:
        # A separator followed by other than exactly three digits ("12,5", "3.14159") can only be decimal.
        odd_comma = _count_matches(arr.filter(pa.array(has_comma)), r",(?:\d{4}|\d{0,2}(?:\D|$))")
        odd_dot = _count_matches(arr.filter(pa.array(has_dot)), r"\.(?:\d{4}|\d{0,2}(?:\D|$))")
        if odd_comma or odd_dot:
            decimal = "," if odd_comma > odd_dot else "."
        elif has_comma.any():
            # Only "1,234" or "1,234,567": read as thousands (US style), and the rule says so.
            decimal, note = ".", "1,234 read as 1234"
        elif has_dot.any() and (whole or bool((n_dot >= 2).any())):
            # "1.234.567" (or whole numbers): the dot groups thousands (German style).
            decimal, note = ",", "1.234 read as 1234"
        else:
            decimal = "."
    other = "." if decimal == "," else ","
    group_class = "[ \\x{a0}\\x{202f}'\\x{2019}" + re.escape(other) + "]"
    dec = re.escape(decimal)
    grammar = rf"^[+-]?(?:(?:\d{{1,3}}(?:{group_class}\d{{3}})+|\d+)(?:{dec}\d*)?|{dec}\d+)$"
    valid = _np_bool(pc.match_substring_regex(arr, grammar)) & ~empty

    # The thousands separators used (for the rule), removed; one regex pass finds the rows with a space or quote.
    groups: list[str] = []
    grouped = _np_bool(pc.match_substring_regex(arr, "[ \\x{a0}\\x{202f}'\\x{2019}]")) & valid
    candidates = list(_GROUP_CHARS.items()) if grouped.any() else []
    for char, name in [*candidates, (other, "dot" if other == "." else "comma")]:
        present = _np_bool(pc.match_substring(arr, char)) & valid
        if present.any():
            arr = pc.replace_substring(arr, char, "")
            if name not in groups:
                groups.append(name)
    decimal_seen = whole and bool((_np_bool(pc.match_substring(arr, decimal)) & valid).any())  # for the rule
    if decimal == ",":
        arr = pc.replace_substring(arr, ",", ".")
    if note and ("comma" if decimal == "." else "dot") not in groups:
        note = ""
    text = pc.if_else(pa.array(valid), arr, _NULL_STR)
    return _NumberText(text, empty, ~valid & ~empty, decimal, decimal_seen, tuple(groups), note, currency)


def _number_rule(head: str, n: _NumberText) -> str:
    rule = head
    if n.groups:
        plural = "s" if len(n.groups) > 1 else ""
        rule += f", {' and '.join(n.groups)} as thousands separator{plural}"
    if n.note:
        rule += f" ({n.note})"
    if n.currency:
        rule += ", currency signs ignored"
    return rule


def _number_text(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _minimum_reason(minimum: float) -> str:
    return "must be 0 or more" if minimum == 0 else f"must be at least {_number_text(minimum)}"


def parse_decimals(s: pd.Series, *, minimum: float | None = None) -> ColumnValues:
    """Numbers as float64 (NaN for empty): '1234.5', '1 234,50', '1.234,50', '1,234.50', "1'234.50", '€ 12,50'.

    The decimal separator is decided for the whole column: the last of ',' and '.' where a value has both; else the
    one followed by other than three digits somewhere ('12,5'); else a lone '1,234' is a thousands comma and
    '1.234.567' a thousands dot. Spaces (also no-break spaces) and apostrophes group thousands; a sign and a currency
    (€ $ £ CHF EUR USD) before or after are allowed.
    """
    n = _read_number_text(s, whole=False)
    values = np.array(pc.cast(n.text, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    reasons = np.full(len(values), "", dtype=object)
    reasons[n.bad] = "is not a number"
    too_large = ~n.bad & ~n.empty & ~np.isfinite(values)
    reasons[too_large] = "is too large"
    if minimum is not None:
        with np.errstate(invalid="ignore"):
            low = np.isfinite(values) & (values < minimum)
        reasons[low] = _minimum_reason(minimum)
    bad = reasons != ""
    values[bad] = np.nan
    rule = _number_rule("decimal comma" if n.decimal == "," else "decimal point", n)
    return ColumnValues(pd.Series(values, index=s.index, dtype="float64"), bad, reasons, rule)


def parse_integers(s: pd.Series, *, minimum: int | None = None, maximum: int | None = None) -> ColumnValues:
    """Whole numbers as pandas Int64 (NA for empty), read like parse_decimals: '1 234', '1.234', '12,00'."""
    n = _read_number_text(s, whole=True)
    size = len(n.empty)
    reasons = np.full(size, "", dtype=object)
    reasons[n.bad] = "is not a number"
    fraction = _np_bool(pc.match_substring_regex(n.text, r"\.\d*[1-9]"))
    reasons[fraction] = "is not a whole number"
    floats = np.asarray(pc.cast(n.text, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    readable = ~n.empty & (reasons == "")
    ints = np.zeros(size, dtype=np.int64)
    exact = readable & (np.abs(floats) < _INT64_EXACT)
    ints[exact] = floats[exact].astype(np.int64)
    # The rare huge values are read exactly from their text (a float would round them).
    for row in np.flatnonzero(readable & ~exact):
        value = int(str(n.text[int(row)].as_py()).split(".")[0])
        if -(2**63) <= value < 2**63:
            ints[row] = value
        else:
            reasons[row] = "is too large"
    if minimum is not None or maximum is not None:
        checked = ~n.empty & (reasons == "")
        out = np.zeros(size, dtype=bool)
        if minimum is not None:
            out |= ints < minimum
        if maximum is not None:
            out |= ints > maximum
        if minimum is not None and maximum is not None:
            reason = f"must be a whole number from {minimum} to {maximum}"
        elif minimum is not None:
            reason = _minimum_reason(minimum)
        else:
            reason = f"must be at most {maximum}"
        reasons[checked & out] = reason
    bad = reasons != ""
    mask = n.empty | bad
    ints[mask] = 0
    values = pd.Series(pd.arrays.IntegerArray(ints, mask), index=s.index)
    head = "whole numbers" + (", decimal comma" if n.decimal == "," and n.decimal_seen else "")
    return ColumnValues(values, bad, reasons, _number_rule(head, n))


# ---------------------------------------------------------------------------------------------------------------
# Countries and languages: names in several languages and codes, through one folded lookup.

_LANG_ORDER = ("en", "fr", "de", "es", "it", "nl")

# Everyday names pycountry lacks (or spells officially only), with the language they are written in.
_COUNTRY_ALIASES: dict[str, tuple[tuple[str, str], ...]] = {
    "GB": (
        ("UK", "en"), ("U.K.", "en"), ("Great Britain", "en"), ("Britain", "en"), ("England", "en"),
        ("Scotland", "en"), ("Wales", "en"), ("Northern Ireland", "en"), ("Royaume-Uni", "fr"),
        ("Grande-Bretagne", "fr"), ("Angleterre", "fr"), ("Écosse", "fr"), ("Pays de Galles", "fr"),
        ("Großbritannien", "de"), ("Vereinigtes Königreich", "de"), ("Schottland", "de"),
        ("Reino Unido", "es"), ("Gran Bretaña", "es"), ("Inglaterra", "es"),
    ),
    "US": (
        ("USA", "en"), ("U.S.A.", "en"), ("US", "en"), ("U.S.", "en"), ("United States", "en"),
        ("United States of America", "en"), ("America", "en"), ("Etats Unis", "fr"), ("États-Unis", "fr"),
        ("États-Unis d'Amérique", "fr"), ("Amérique", "fr"), ("Amerika", "de"), ("Vereinigte Staaten", "de"),
        ("Estados Unidos", "es"), ("EE. UU.", "es"), ("EEUU", "es"),
    ),
    "NL": (
        ("Holland", "en"), ("the Netherlands", "en"), ("Netherlands", "en"), ("Hollande", "fr"),
        ("Pays-Bas", "fr"), ("Niederlande", "de"), ("Holanda", "es"), ("Países Bajos", "es"), ("Nederland", "nl"),
    ),
    "RU": (("Russia", "en"), ("Russie", "fr"), ("Russland", "de"), ("Rusia", "es")),
    "KR": (
        ("South Korea", "en"), ("Corée du Sud", "fr"), ("Südkorea", "de"), ("Suedkorea", "de"),
        ("Corea del Sur", "es"),
    ),
    "CZ": (
        ("Czech Republic", "en"), ("Czechia", "en"), ("République tchèque", "fr"), ("Tchéquie", "fr"),
        ("Tschechien", "de"), ("Tschechische Republik", "de"), ("República Checa", "es"), ("Chequia", "es"),
    ),
    "CI": (("Ivory Coast", "en"), ("Côte d'Ivoire", "fr"), ("Elfenbeinküste", "de"), ("Costa de Marfil", "es")),
    "VN": (("Vietnam", "en"), ("Viêt Nam", "fr"), ("Viet Nam", "en")),
    "IR": (("Iran", "en"),),
    "SY": (("Syria", "en"), ("Syrie", "fr"), ("Syrien", "de")),
    "BO": (("Bolivia", "en"), ("Bolivie", "fr"), ("Bolivien", "de")),
    "VE": (("Venezuela", "en"), ("Vénézuela", "fr")),
    "TZ": (("Tanzania", "en"), ("Tanzanie", "fr"), ("Tansania", "de")),
    "MD": (("Moldova", "en"), ("Moldavie", "fr"), ("Moldau", "de"), ("Moldawien", "de")),
    "LA": (("Laos", "en"),),
    "TW": (("Taiwan", "en"), ("Taïwan", "fr")),
    "TR": (("Turkey", "en"), ("Turquie", "fr"), ("Türkei", "de"), ("Turquía", "es")),
    "DE": (("Germany", "en"), ("Deutschland", "de"), ("Allemagne", "fr"), ("Alemania", "es")),
    "CH": (("Switzerland", "en"), ("Schweiz", "de"), ("Suisse", "fr"), ("Svizzera", "it"), ("Suiza", "es")),
    "BE": (("Belgium", "en"), ("Belgique", "fr"), ("België", "nl"), ("Belgien", "de"), ("Bélgica", "es")),
    "AT": (("Austria", "en"), ("Österreich", "de"), ("Autriche", "fr")),
    "MK": (("Macedonia", "en"), ("North Macedonia", "en")),
    "PS": (("Palestine", "en"),),
    "VA": (("Vatican", "en"), ("Vatican City", "en")),
}

_LANGUAGE_ALIASES: dict[str, tuple[tuple[str, str], ...]] = {
    "el": (("Greek", "en"), ("Grec", "fr"), ("Griechisch", "de"), ("Ελληνικά", "el")),
    "es": (("Castilian", "en"), ("Castillan", "fr"), ("Kastilisch", "de"), ("Español", "es"), ("Castellano", "es")),
    "fa": (("Farsi", "en"),),
    "nl": (("Flemish", "en"), ("Flamand", "fr"), ("Flämisch", "de"), ("Nederlands", "nl")),
    "zh": (("Mandarin", "en"),),
    "ms": (("Malay", "en"), ("Malais", "fr"), ("Malaiisch", "de")),
    "ne": (("Nepali", "en"), ("Népalais", "fr")),
    "sw": (("Swahili", "en"),),
    "it": (("Italiano", "it"),),
    "pt": (("Português", "pt"),),
    "pl": (("Polski", "pl"),),
    "sv": (("Svenska", "sv"),),
    "da": (("Dansk", "da"),),
    "no": (("Norsk", "no"),),
    "fi": (("Suomi", "fi"),),
    "cs": (("Čeština", "cs"),),
    "hu": (("Magyar", "hu"),),
    "tr": (("Türkçe", "tr"),),
    "en": (("Englisch", "de"),),
    "fr": (("Französisch", "de"),),
    "de": (("Deutsch", "de"), ("Allemand", "fr")),
}


@dataclass(frozen=True)
class _Entry:
    """What a folded spelling stands for."""

    code: str
    is_code: bool
    langs: frozenset[str]


@dataclass(frozen=True, eq=False)
class _Lookup:
    """Folded spellings -> code, the display name of every code, and the spellings to suggest from."""

    entries: dict[str, _Entry]
    display: dict[str, str]
    names: tuple[str, ...]


class _LookupBuilder:
    """Collects spellings; the first code given for a spelling wins (codes, then aliases, then pycountry names)."""

    def __init__(self) -> None:
        self.codes: dict[str, str] = {}
        self.kinds: dict[str, bool] = {}
        self.langs: dict[str, set[str]] = {}

    def add(self, spelling: str, code: str, is_code: bool, lang: str = "") -> None:
        key = _fold(spelling)
        if not key:
            return
        known = self.codes.setdefault(key, code)
        if known != code:
            return
        self.kinds.setdefault(key, is_code)
        if lang:
            self.langs.setdefault(key, set()).add(lang)

    def build(self, display: dict[str, str]) -> _Lookup:
        entries = {k: _Entry(c, self.kinds[k], frozenset(self.langs.get(k, ()))) for k, c in self.codes.items()}
        names = tuple(k for k, e in entries.items() if not e.is_code)
        return _Lookup(entries, display, names)


def _translations(domain: str, langs: Sequence[str]) -> list[tuple[str, Callable[[str], str]]]:
    """English as is, then each language pycountry has a catalogue for."""
    out: list[tuple[str, Callable[[str], str]]] = [("en", lambda text: text)]
    for lang in langs:
        try:
            out.append((lang, gettext.translation(domain, pycountry.LOCALES_DIR, languages=[lang]).gettext))
        except OSError:  # a pycountry build without that catalogue: the names of the others still work
            continue
    return out


@cache
def _country_lookup() -> _Lookup:
    builder = _LookupBuilder()
    countries = list(pycountry.countries)
    for country in countries:
        builder.add(country.alpha_2, country.alpha_2, True)
        builder.add(country.alpha_3, country.alpha_2, True)
    for code, aliases in _COUNTRY_ALIASES.items():
        for alias, lang in aliases:
            builder.add(alias, code, False, lang)
    for lang, translate in _translations("iso3166-1", ("fr", "de", "es")):
        for country in countries:
            for attribute in ("name", "official_name", "common_name"):
                name = getattr(country, attribute, None)
                if name:
                    builder.add(translate(name), country.alpha_2, False, lang)
    display = {c.alpha_2: getattr(c, "common_name", None) or c.name for c in countries}
    return builder.build(display)


@cache
def _language_lookup() -> _Lookup:
    builder = _LookupBuilder()
    languages = [language for language in pycountry.languages if hasattr(language, "alpha_2")]
    for language in languages:
        builder.add(language.alpha_2, language.alpha_2, True)
        builder.add(language.alpha_3, language.alpha_2, True)
        if hasattr(language, "bibliographic"):
            builder.add(language.bibliographic, language.alpha_2, True)
    for code, aliases in _LANGUAGE_ALIASES.items():
        for alias, lang in aliases:
            builder.add(alias, code, False, lang)
    for lang, translate in _translations("iso639-3", ("fr", "de")):
        for language in languages:
            for attribute in ("name", "common_name"):
                name = getattr(language, attribute, None)
                if not name:
                    continue
                translated = translate(name)
                # "Spanisch (Kastilisch)", "Paschtu; Afghanisch": also each part without the bracket.
                for part in [translated, *re.split(r"\s*;\s*", re.sub(r"\s*\(.*?\)", "", translated))]:
                    builder.add(part, language.alpha_2, False, lang)
    display = {language.alpha_2: language.name for language in languages}
    return builder.build(display)


_SUGGEST_AT_MOST = 50  # distinct unknown values given a did-you-mean (difflib is slow; the report shows few anyway)
_LOCALE_TAG = re.compile(r"^([A-Za-z]{2,3})[-_][A-Za-z0-9]{2,8}$")


def _languages_text(langs: set[str]) -> str:
    ordered = [lang for lang in _LANG_ORDER if lang in langs] + sorted(langs - set(_LANG_ORDER))
    return ", ".join(ordered)


def _by_lookup(
    s: pd.Series,
    lookup: _Lookup,
    *,
    what: str,
    unknown: str,
    codes_rule: str,
    names_rule: str,
    accept_locale_tags: bool = False,
) -> ColumnValues:
    """A column of names or codes read through a lookup, with did-you-mean suggestions for near misses."""
    d = _distinct(_arrow(s))
    uniques: list[str] = d.uniques.to_pylist()
    counts = d.counts
    values = [""] * len(uniques)
    reasons = [""] * len(uniques)
    misses: list[int] = []
    matched: list[_Entry] = []
    for i, value in enumerate(uniques):
        if not value:
            continue
        entry = lookup.entries.get(_fold(value))
        if entry is None and accept_locale_tags and (tag := _LOCALE_TAG.match(value)):
            found = lookup.entries.get(_fold(tag.group(1)))
            entry = found if found is not None and found.is_code else None
        if entry is None:
            reasons[i] = unknown
            misses.append(i)
        else:
            values[i] = entry.code
            matched.append(entry)

    suggestions: list[tuple[str, str]] = []
    for i in sorted(misses, key=lambda j: -counts[j])[:_SUGGEST_AT_MOST]:
        key = _fold(uniques[i])
        if len(key) < 3:
            continue
        close = difflib.get_close_matches(key, lookup.names, n=1, cutoff=0.75)
        if close:
            code = lookup.entries[close[0]].code
            suggestions.append((uniques[i], code))
            reasons[i] = f"is not {what}: did you mean {code} ({lookup.display.get(code, code)})?"

    name_entries = [e for e in matched if not e.is_code]
    if not name_entries:
        rule = codes_rule
    else:
        # The fewest languages that cover every name read ("France" is English and French alike).
        langs: set[str] = set()
        for entry in sorted(name_entries, key=lambda e: len(e.langs)):
            if entry.langs and not entry.langs & langs:
                langs.add(min(entry.langs, key=lambda x: _LANG_ORDER.index(x) if x in _LANG_ORDER else 99))
        langs_text = f" ({_languages_text(langs)})" if langs else ""
        codes_text = " and codes" if len(name_entries) < len(matched) else ""
        rule = names_rule.format(langs=langs_text, codes=codes_text)
    return _by_distinct(s, d, values, reasons, rule, tuple(suggestions))


def parse_countries(s: pd.Series) -> ColumnValues:
    """Countries as ISO 3166-1 alpha-2 codes ('' for empty) from codes (alpha-2, alpha-3) or names in en/fr/de/es."""
    return _by_lookup(
        s,
        _country_lookup(),
        what="a country",
        unknown="is not a country (a name or an ISO code, e.g. FR)",
        codes_rule="country codes",
        names_rule="country names{langs}{codes} to ISO codes",
    )


def parse_languages(s: pd.Series) -> ColumnValues:
    """Languages as ISO 639-1 codes ('' for empty) from codes (2 or 3 letters, 'fr-CH') or names in en/fr/de."""
    return _by_lookup(
        s,
        _language_lookup(),
        what="a language",
        unknown="is not a language (a name or an ISO 639-1 code, e.g. fr)",
        codes_rule="language codes",
        names_rule="language names{langs}{codes} to ISO 639-1 codes",
        accept_locale_tags=True,
    )


# ---------------------------------------------------------------------------------------------------------------
# Genders and yes/no.

_GENDER_WORDS: dict[str, tuple[str, ...]] = {
    "female": (
        "female", "f", "woman", "w", "weiblich", "weibl", "frau", "fr", "femme", "feminin", "feminine", "mme",
        "madame", "mlle", "mademoiselle", "mrs", "ms", "miss", "mujer", "senora", "sra", "femenino", "donna",
        "signora", "femminile",
    ),
    "male": (
        "male", "m", "man", "mannlich", "maennlich", "mannl", "herr", "hr", "homme", "h", "masculin", "masculine",
        "mr", "monsieur", "hombre", "senor", "sr", "masculino", "uomo", "signore", "maschile",
    ),
    "other": (
        "other", "o", "divers", "diverse", "d", "x", "non-binary", "nonbinary", "non binaire", "non-binaire",
        "autre", "andere", "anderes", "otro", "otra", "altro",
    ),
    "unknown": ("unknown", "u", "unbekannt", "inconnu", "n/a", "?", "-", "keine angabe", "non renseigne"),
}
# Each word as written ("n/a", "-") and without spaces or hyphens ("non binary" = "non-binary" = "nonbinary").
_GENDERS = {
    key: gender
    for gender, words in _GENDER_WORDS.items()
    for word in words
    for key in (word, _compact(word))
    if key
}


def _gender(value: str) -> str | None:
    word = _fold_word(value)
    return _GENDERS.get(word) or _GENDERS.get(_compact(word) or word)

_YES_NO_WORDS: dict[bool, tuple[str, ...]] = {
    True: ("true", "t", "yes", "y", "1", "oui", "ja", "j", "si", "vrai", "wahr", "x", "on", "✓", "✔"),
    False: ("false", "f", "no", "n", "0", "non", "nein", "falsch", "faux", "off", "✗", "✘"),
}
_YES_NO = {word: flag for flag, words in _YES_NO_WORDS.items() for word in words}
_MARKS = frozenset({"x", "✓", "✔"})  # a column of only marks means "ticked" / "not ticked"


def parse_genders(s: pd.Series) -> ColumnValues:
    """Genders as 'female' / 'male' / 'other' / 'unknown' ('unknown' for empty) from words in en/fr/de/es/it."""
    d = _distinct(_arrow(s))
    uniques: list[str] = d.uniques.to_pylist()
    values, reasons, seen, seen_counts = [], [], [], []
    for value, count in zip(uniques, d.counts.tolist(), strict=True):
        gender = _gender(value) if value else "unknown"
        values.append(gender or "")
        reasons.append("" if gender else "is not a gender (female, male, other or unknown)")
        if gender and value:
            seen.append(value)
            seen_counts.append(count)
    words = ", ".join(_most_frequent(seen, seen_counts))
    rule = f"genders ({words}) to female, male, other, unknown" if words else "genders"
    return _by_distinct(s, d, values, reasons, rule)


def parse_booleans(s: pd.Series) -> ColumnValues:
    """Yes/no as pandas boolean (NA for empty): true/false, yes/no, oui/non, ja/nein, si/no, 1/0, x, on/off, ✓."""
    d = _distinct(_arrow(s))
    uniques: list[str] = d.uniques.to_pylist()
    k = len(uniques)
    flags = np.zeros(k, dtype=bool)
    missing = np.zeros(k, dtype=bool)
    reasons = [""] * k
    seen, seen_counts = [], []
    for i, (value, count) in enumerate(zip(uniques, d.counts.tolist(), strict=True)):
        flag = _YES_NO.get(_fold_word(value)) if value else None
        missing[i] = flag is None
        if flag is None:
            if value:
                reasons[i] = "is not yes or no (true/false, oui/non, ja/nein, 1/0, x)"
        else:
            flags[i] = flag
            seen.append(value)
            seen_counts.append(count)
    reason_u = _reasons_array(reasons)
    values = pd.Series(pd.arrays.BooleanArray(d.take(flags), d.take(missing)), index=s.index)
    if seen and all(_fold_word(v) in _MARKS for v in seen):
        rule = "ticks (x = yes, empty = unknown)"
    else:
        words = ", ".join(_most_frequent(seen, seen_counts))
        rule = f"yes/no ({words})" if words else "yes/no"
    return ColumnValues(values, d.take(reason_u != ""), d.take(reason_u), rule)


# ---------------------------------------------------------------------------------------------------------------
# Codes and lists.

_CASES = ("upper", "lower", "keep")
_ODD_SPACE = r"[\s\x{a0}\x{202f}]{2,}|[\t\n\r\f\v\x{a0}\x{202f}]"


def parse_codes(s: pd.Series, *, case: str = "upper") -> ColumnValues:
    """Codes as written, inner whitespace collapsed to one space, upper-cased (or "lower" / "keep"); never bad."""
    if case not in _CASES:
        raise ValueError(f"case must be one of {', '.join(_CASES)}, not {case!r}")
    arr = _arrow(s)
    # Codes may all be distinct (customer numbers): vectorised, and the regex replace only on the rows that need it.
    odd = pc.match_substring_regex(arr, _ODD_SPACE)
    if pc.any(odd).as_py():
        collapsed = pc.replace_substring_regex(arr.filter(odd), r"[\s\x{a0}\x{202f}]+", " ")
        arr = pc.replace_with_mask(arr, odd, pc.utf8_trim_whitespace(collapsed))
    if case == "upper":
        arr = pc.utf8_upper(arr)
    elif case == "lower":
        arr = pc.utf8_lower(arr)
    size = len(arr)
    rule = {"upper": "codes in upper case", "lower": "codes in lower case", "keep": "codes as written"}[case]
    return ColumnValues(_str_series(arr, s.index), np.zeros(size, dtype=bool), np.full(size, "", dtype=object), rule)


def parse_list(s: pd.Series, *, separator: str = ";") -> tuple[np.ndarray, pd.Series]:
    """A list column split into (row position of each item, item stripped and upper-cased); empty items dropped."""
    positions, items = _split_list(_arrow(s), separator)
    return positions, _str_series(items, pd.RangeIndex(len(positions)))


def _split_list(arr: pa.Array, separator: str) -> tuple[np.ndarray, pa.Array]:
    if not separator:
        raise ValueError("the list separator must not be empty")
    lists = pc.split_pattern(arr, separator)
    parents = pc.list_parent_indices(lists)
    items = pc.utf8_upper(pc.utf8_trim_whitespace(pc.list_flatten(lists)))
    keep = pc.not_equal(items, "")
    return np.array(parents.filter(keep).to_numpy(zero_copy_only=False), dtype=np.int64), items.filter(keep)


# ---------------------------------------------------------------------------------------------------------------
# Type inference for a new custom field.

_SAMPLE = 100_000  # inference reads the first non-empty values only; a million rows tell nothing more
_DATE_HINTS = ("date", "datum", "day", "jour", "_at", "since")
_LIST_SHARE = 0.2
_SHORT = 30  # characters: longer values are text, not codes or list items
_CODE_DISTINCT = 50
_CODE_SHARE = 0.2


def infer_type(s: pd.Series, *, name: str = "") -> Inferred:
    """The field type a column suggests: boolean, number, date, list, code or text (tried in that order)."""
    arr = _arrow(s)
    sample = arr.filter(pc.not_equal(arr, "")).slice(0, _SAMPLE)
    rows = len(sample)
    if rows == 0:
        return Inferred("text", False, "every value is empty")
    series = _str_series(sample, pd.RangeIndex(rows))

    # A yes/no column has a handful of distinct words: only those are worth reading one by one.
    few_words = int(pc.count_distinct(sample).as_py()) <= 12
    yes_no = parse_booleans(series) if few_words else None
    if yes_no is not None and not yes_no.bad.any():
        if all(_fold_word(value) in _MARKS for value in pc.unique(sample).to_pylist()):
            return Inferred("boolean", False, "every value is a tick (x) or empty")
        flags = yes_no.values.to_numpy(dtype=bool, na_value=False)
        if flags.any() and not flags.all():  # "1" alone is a number; both yes and no make a yes/no field
            return Inferred("boolean", False, f"every value is {yes_no.rule}")

    # Whole numbers are numbers, not Excel serial dates, unless the header speaks of a date ("signup_date").
    date_header = any(hint in name.casefold() for hint in _DATE_HINTS)
    numbers = _read_number_text(series, whole=False)
    # "01234" is a postal code or a customer number: a number field would drop the leading zero.
    leading_zero = _count_matches(sample, r"^[+-]?0\d") > 0
    if not numbers.bad.any() and not leading_zero:
        whole = not _np_bool(pc.match_substring_regex(numbers.text, r"\.\d*[1-9]")).any()
        if whole and date_header and not _read_dates(series, "auto").column.bad.any():
            return Inferred("date", False, f"every value is an Excel serial date (the header says {name!r})")
        if whole:
            return Inferred("number", True, "every value is a whole number")
        return Inferred("number", False, "every value is a number")

    dates = _read_dates(series, "auto")
    if dates.column.ambiguous:
        reason = f"every value is a date, {dates.column.rule[len('dates '):]}"
        return Inferred("date", False, reason, date_order="", ambiguous=dates.column.ambiguous)
    excel = dates.formats == (_EXCEL_FORMAT,)
    if not dates.column.bad.any() and (date_header or not excel):
        return Inferred("date", False, f"every value is a date ({', '.join(dates.formats)})", date_order=dates.order)

    with_separator = _count_matches(sample, ";")
    if with_separator >= _LIST_SHARE * rows:
        _, items = _split_list(sample, ";")
        if len(items) and (pc.max(pc.utf8_length(items)).as_py() or 0) <= _SHORT:
            distinct_items = int(pc.count_distinct(items).as_py())
            return Inferred("list", False, f"lists separated by ';' ({distinct_items:,} distinct items)")

    distinct = int(pc.count_distinct(sample).as_py())
    longest = int(pc.max(pc.utf8_length(sample)).as_py() or 0)
    # A code has few values that repeat: at most 50, and at most a fifth of the rows (half of a small sample).
    few = distinct <= _CODE_DISTINCT and distinct <= (rows * _CODE_SHARE if rows >= 250 else max(1, rows // 2))
    if few and longest <= _SHORT:
        return Inferred("code", False, f"{distinct:,} distinct value{'s' if distinct != 1 else ''}")
    return Inferred("text", False, f"free text ({distinct:,} distinct values)")
