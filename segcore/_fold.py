"""The one rule for matching text regardless of case and accents, in Python, in SQL and on Arrow arrays.

`fold(text)` is what filters on text fields and the contact search compare (`Lefèvre`, `LEFEVRE` and `lefevre` are
one value): the text in compatibility-decomposed form (NFKD), a few letters that do not decompose spelled out
(`ß` -> `ss`, `æ` -> `ae`, `œ` -> `oe`, `ø` -> `o`, `ł` -> `l`, `đ` / `ð` -> `d`, `þ` -> `th`, `ı` -> `i`,
`ħ` -> `h`, `ŧ` -> `t`), the
combining diacritical marks removed (U+0300-036F, U+1AB0-1AFF, U+1DC0-1DFF, U+20D0-20FF, U+FE20-FE2F), recomposed
(NFC, so Hangul and kana stay one character each) and lower-cased. Both Greek sigmas become `σ`, so no lower-casing
depends on a letter's place in a word. Marks of other scripts (Hebrew points, Indic vowel signs, the kana voicing
mark) are letters there, not accents: they are kept.

The same rule runs in three places, and tests hold them equal:
- Python: `fold` (also registered as the SQLite function `segcore_fold`, so SQLite runs this very code);
- PostgreSQL: `folded(col)` compiles to `normalize`, `replace`, `regexp_replace` and `lower` with the rule's
  characters as bound parameters (pure-ASCII values take a plain `lower`, accented Latin ones skip the spelling and
  the recomposition: the same result, much cheaper);
- Arrow: `fold_array` folds a whole array of distinct values with NumPy on the UTF-8 bytes, through a per-character
  table made by `fold` itself; values with characters outside that table go through `fold`.

On PostgreSQL, `lower` follows the database's character type: with a UTF-8 one (`C.UTF-8`, `en_US.UTF-8`...) it
agrees with Python; under plain `C` it changes ASCII only, which is still enough for every Latin letter (they are
ASCII once their accents are gone), but Greek or Cyrillic capitals then keep their case. `in_code_point_order`
makes a comparison sort by code point on every database (PostgreSQL: `COLLATE "C"`), as Python's `str` does.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

__all__ = ["SQLITE_FUNCTION", "fold", "fold_array", "fold_or_none", "folded", "in_code_point_order"]

SQLITE_FUNCTION = "segcore_fold"

# Letters that no decomposition takes apart, spelled as a reader without them would type them. Both cases are listed:
# PostgreSQL's lower() may fold ASCII only, so none of these may be left for lower() to handle.
SPELLED: dict[str, str] = {
    "ß": "ss", "ẞ": "ss", "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe", "ø": "o", "Ø": "o", "ł": "l", "Ł": "l",
    "đ": "d", "Đ": "d", "ð": "d", "Ð": "d", "þ": "th", "Þ": "th", "ı": "i", "ħ": "h", "Ħ": "h", "ŧ": "t", "Ŧ": "t",
    # Python lower-cases a capital sigma to the final form at the end of a word, PostgreSQL never: one sigma.
    "Σ": "σ", "ς": "σ",
}  # fmt: skip
# The combining diacritical mark blocks: what "accents" are for Latin, Greek and Cyrillic letters.
MARK_RANGES: tuple[tuple[int, int], ...] = (
    (0x0300, 0x036F), (0x1AB0, 0x1AFF), (0x1DC0, 0x1DFF), (0x20D0, 0x20FF), (0xFE20, 0xFE2F),
)  # fmt: skip

_MARK_CLASS = "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in MARK_RANGES)
_TABLE: dict[int, str | None] = {ord(k): v for k, v in SPELLED.items()}
_TABLE.update({cp: None for lo, hi in MARK_RANGES for cp in range(lo, hi + 1)})
# After NFKD, a value made of ASCII and marks only needs nothing but the marks dropped.
_NOT_ASCII_OR_MARK = re.compile(f"[^\x00-\x7f{_MARK_CLASS}]")
_normalize = unicodedata.normalize


def _latin1_table() -> bytes:
    """Each Latin-1 byte mapped to its fold when that is one ASCII character (`É` -> `e`), else to itself."""
    table = bytearray(range(256))
    for byte in range(256):
        out = _full_fold(chr(byte))
        if len(out) == 1 and out.isascii():
            table[byte] = ord(out)
    return bytes(table)


def _full_fold(text: str) -> str:
    """The rule itself, for any text (after NFKD, ASCII plus marks is the common case: drop the marks)."""
    decomposed = _normalize("NFKD", text)
    if _NOT_ASCII_OR_MARK.search(decomposed) is None:
        return decomposed.encode("ascii", "ignore").decode("ascii").lower()
    return _normalize("NFC", decomposed.translate(_TABLE)).lower()


_LATIN1 = _latin1_table()


def fold(text: str) -> str:
    """`text` lower-cased with its accents removed, by the rule in this module's docstring."""
    if text.isascii():
        return text.lower()
    # Most accented names are Latin-1 (Lefèvre, Zürich, François): one byte table does them, no Unicode tables.
    # Exact, because each character folds on its own when every one folds to a single ASCII letter.
    try:
        latin = text.encode("latin-1")
    except UnicodeEncodeError:
        pass
    else:
        spelled = latin.translate(_LATIN1)
        if spelled.isascii():
            return spelled.decode("ascii")
    return _full_fold(text)


def fold_or_none(value: Any) -> Any:
    """`fold` for SQL: NULL (and any non-text value) passes through unchanged."""
    return fold(value) if isinstance(value, str) else value


# ----------------------------------------------------------------------------------------------------------- SQL


class folded(FunctionElement[str]):  # noqa: N801 - named like SQLAlchemy's own SQL functions
    """`fold(expr)` in SQL: the SQLite function `segcore_fold`, or the same rule spelled in PostgreSQL functions."""

    type = sa.String()
    name = SQLITE_FUNCTION
    inherit_cache = True


@compiles(folded)
def _folded_default(element: folded, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{SQLITE_FUNCTION}({compiler.process(element.clauses, **kw)})"


@cache
def _latin_class() -> str:
    """A regex class of the characters a Latin value may hold for the short PostgreSQL fold (see below)."""
    marks = {cp for lo, hi in MARK_RANGES for cp in range(lo, hi + 1)}
    latin = set(range(0x01, 0x250)) | set(range(0x1E00, 0x1F00)) | marks
    # Letters whose decomposition holds a letter to spell out (`ǣ` is `æ` with a macron) need the full rule.
    latin -= {cp for cp in latin if any(k in _normalize("NFKD", chr(cp)) for k in SPELLED)}
    runs: list[list[int]] = []
    for cp in sorted(latin):
        if runs and cp == runs[-1][1] + 1:
            runs[-1][1] = cp
        else:
            runs.append([cp, cp])
    return "".join(chr(lo) if lo == hi else f"{chr(lo)}-{chr(hi)}" for lo, hi in runs)


@compiles(folded, "postgresql")
def _folded_postgresql(element: folded, compiler: SQLCompiler, **kw: Any) -> str:
    (arg,) = element.clauses.clauses
    marks = sa.literal(f"[{_MARK_CLASS}]")
    spelled: ColumnElement[str] = sa.func.normalize(arg, sa.literal_column("NFKD"))
    for letter, spelling in SPELLED.items():
        spelled = sa.func.replace(spelled, sa.literal(letter), sa.literal(spelling))
    stripped = sa.func.regexp_replace(spelled, marks, sa.literal(""), sa.literal("g"))
    full = sa.func.lower(sa.func.normalize(stripped, sa.literal_column("NFC")))
    # Cheaper spellings of the same rule, where they give the same result. One byte per character means ASCII:
    # lower() alone. A value of Latin letters (accented or not) and marks, none with a letter to spell out:
    # decompose and drop the marks; recomposing changes nothing, as no mark is left.
    ascii_only = sa.func.octet_length(arg) == sa.func.length(arg)
    latin_only = sa.not_(arg.regexp_match(sa.literal(f"[^{_latin_class()}]")))
    latin = sa.func.lower(
        sa.func.regexp_replace(sa.func.normalize(arg, sa.literal_column("NFKD")), marks, sa.literal(""), sa.literal("g"))
    )
    return compiler.process(sa.case((ascii_only, sa.func.lower(arg)), (latin_only, latin), else_=full), **kw)


class in_code_point_order(FunctionElement[str]):  # noqa: N801 - a SQL construct, named like one
    """`expr` compared by code point (Python's str order): PostgreSQL's `COLLATE "C"`; SQLite's default already."""

    type = sa.String()
    name = "in_code_point_order"
    inherit_cache = True


@compiles(in_code_point_order)
def _order_default(element: in_code_point_order, compiler: SQLCompiler, **kw: Any) -> str:
    (arg,) = element.clauses.clauses
    return compiler.process(arg, **kw)


@compiles(in_code_point_order, "postgresql")
def _order_postgresql(element: in_code_point_order, compiler: SQLCompiler, **kw: Any) -> str:
    (arg,) = element.clauses.clauses
    return f'({compiler.process(arg, **kw)}) COLLATE "C"'


# --------------------------------------------------------------------------------------------------------- Arrow

_BMP = 0x10000
# The longest ASCII fold of one character kept in the table (`ﬃ` -> `ffi`, `⑽` -> `(10)`); longer ones go through
# `fold` whole.
_MAX_SPELLING = 4
# Values are folded in slices of about this many bytes, so the NumPy work arrays stay small.
_SLICE_BYTES = 1 << 22


@cache
def _char_table() -> tuple[np.ndarray, np.ndarray]:
    """For every BMP character, its fold when that is ASCII: (its length, or -1 when not ASCII; its bytes).

    Folding a value whose characters all have an ASCII fold is folding each character on its own: NFKD and the
    spelled letters work per character, every mark they leave is dropped (so reordering marks changes nothing),
    and NFC and lower() leave ASCII as it is. Any other value goes through `fold` whole."""
    lengths = np.full(_BMP, -1, dtype=np.int8)
    spelled = np.zeros((_BMP, _MAX_SPELLING), dtype=np.uint8)
    for cp in range(_BMP):
        if 0xD800 <= cp <= 0xDFFF:
            continue  # surrogates never occur in UTF-8
        out = fold(chr(cp))
        if out.isascii() and len(out) <= _MAX_SPELLING:
            lengths[cp] = len(out)
            spelled[cp, : len(out)] = np.frombuffer(out.encode("ascii"), dtype=np.uint8)
    return lengths, spelled


def fold_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """`fold` of every string of an Arrow array (nulls stay null), vectorised over the UTF-8 bytes."""
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if not pa.types.is_string(arr.type):
        arr = pc.cast(arr, pa.string())
    if len(arr) == 0:
        return arr
    valid = None if arr.null_count == 0 else arr.is_valid()
    if valid is not None:
        arr = pc.fill_null(arr, "")
    if pc.all(pc.string_is_ascii(arr)).as_py():
        out = pc.ascii_lower(arr)
    else:
        offsets = _offsets(arr)
        parts, first = [], 0
        while first < len(arr):
            # Whole values, about _SLICE_BYTES of them (at least one).
            last = int(np.searchsorted(offsets, offsets[first] + _SLICE_BYTES, side="right")) - 1
            last = min(max(last, first + 1), len(arr))
            parts.append(_fold_slice(arr.slice(first, last - first)))
            first = last
        out = parts[0] if len(parts) == 1 else pa.concat_arrays(parts)
    if valid is not None:
        out = pc.if_else(valid, out, pa.scalar(None, pa.string()))
    return out


def _offsets(arr: pa.Array) -> np.ndarray:
    """The value offsets of a string array (len + 1 of them), relative to its first value."""
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + len(arr) + 1]
    return offsets - offsets[0]


def _fold_slice(arr: pa.Array) -> pa.Array:
    """`fold` of a string array without nulls: per character through the table, whole values through `fold`."""
    n = len(arr)
    offsets = _offsets(arr)
    start = int(np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset])
    data = arr.buffers()[2]
    raw = np.zeros(0, np.uint8) if data is None else np.frombuffer(data, dtype=np.uint8)
    raw = raw[start : start + int(offsets[-1])]
    lengths, spelled = _char_table()
    # ASCII bytes fold by themselves (A-Z to a-z); continuation bytes are >= 0x80, so they are never touched.
    buf = raw.copy()
    upper = (buf >= 0x41) & (buf <= 0x5A)
    buf[upper] += 0x20
    # Each other character is replaced in place by its ASCII fold when that is no longer than its UTF-8 bytes; the
    # bytes it no longer needs are dropped below. Any other character sends its whole value to `fold`.
    pos = np.flatnonzero(raw >= 0xC0)
    padded = np.concatenate([raw, np.zeros(3, dtype=np.uint8)]).astype(np.int32)
    lead, b1, b2 = padded[pos], padded[pos + 1], padded[pos + 2]
    size = np.where(lead < 0xE0, 2, np.where(lead < 0xF0, 3, 4))
    two = ((lead & 0x1F) << 6) | (b1 & 0x3F)
    three = ((lead & 0x0F) << 12) | ((b1 & 0x3F) << 6) | (b2 & 0x3F)
    cp = np.where(size == 2, two, three)
    out_len = np.where(size == 4, -1, lengths[np.minimum(cp, _BMP - 1)]).astype(np.int32)
    bad = (out_len < 0) | (out_len > size)
    out_len = np.where(bad, size, out_len)  # left as they are; their values are folded whole below
    dropped = np.zeros(len(buf), dtype=bool)
    for k in range(_MAX_SPELLING):
        write = ~bad & (out_len > k)
        buf[pos[write] + k] = spelled[cp[write], k]
        drop = ~bad & (out_len <= k) & (size > k)
        dropped[pos[drop] + k] = True
    out = buf[~dropped]
    # The values shrink by the bytes dropped inside them.
    row = np.searchsorted(offsets, pos, side="right") - 1
    shrink = np.bincount(row, weights=size - out_len, minlength=n).astype(np.int64)
    out_offsets = (offsets - np.concatenate([[0], np.cumsum(shrink)])).astype(np.int32)
    result = pa.StringArray.from_buffers(n, pa.py_buffer(out_offsets), pa.py_buffer(out))
    if bad.any():
        rows = np.unique(row[bad])
        mask = np.zeros(n, dtype=bool)
        mask[rows] = True
        others = arr.take(pa.array(rows)).to_pylist()
        result = pc.replace_with_mask(result, pa.array(mask), pa.array([fold(v) for v in others], pa.string()))
    return result
