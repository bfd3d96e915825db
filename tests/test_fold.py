"""The folding rule (segcore._fold): Python, Arrow, SQLite and PostgreSQL give the same folded text.

The reference below is the rule as docs/filters.md states it, written the slow, obvious way; `fold` (with its ASCII
and "accents only" shortcuts), `fold_array` (NumPy on UTF-8 bytes) and the SQL of both databases must all equal it.
"""

from __future__ import annotations

import unicodedata

import pyarrow as pa
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import segcore._fold as fold_module
from segcore._db import Database
from segcore._fold import fold, fold_array, folded, in_code_point_order

SPELLED = {
    "ß": "ss", "ẞ": "ss", "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe", "ø": "o", "Ø": "o", "ł": "l", "Ł": "l",
    "đ": "d", "Đ": "d", "ð": "d", "Ð": "d", "þ": "th", "Þ": "th", "ı": "i", "ħ": "h", "Ħ": "h", "ŧ": "t", "Ŧ": "t",
    "Σ": "σ", "ς": "σ",
}  # fmt: skip
MARKS = [(0x0300, 0x036F), (0x1AB0, 0x1AFF), (0x1DC0, 0x1DFF), (0x20D0, 0x20FF), (0xFE20, 0xFE2F)]


def reference(text: str) -> str:
    """NFKD, spell the letters that do not decompose, drop the diacritical marks, NFC, lower case."""
    out = []
    for ch in unicodedata.normalize("NFKD", text):
        if any(lo <= ord(ch) <= hi for lo, hi in MARKS):
            continue
        out.append(SPELLED.get(ch, ch))
    return unicodedata.normalize("NFC", "".join(out)).lower()


# Accented and special Latin letters, decomposed input, other scripts (whose marks are kept), compatibility forms,
# characters beyond the BMP, and the characters the filter language and SQL treat specially.
ALPHABET = (
    "aAzZ09 éÉèÈüÜöÖçÇñÑåÅøØßẞæÆœŒłŁđĐðÐþÞıİǅǄ"  # Latin
    "µª×÷¹º\xa0\x85ÿŸ½¨"  # the rest of Latin-1 (folded by a byte table), with its capital Ÿ outside it
    "ǣǾŉĳĿſƁɓẚẞħŦ"  # Latin Extended: letters holding a letter to spell out, compatibility forms, no decomposition
    "\u0301\u0308\u0327\u1ab0\u1dc0\u20d7\ufe20"  # combining marks of the stripped blocks
    "ΑΣσςάΆΐ"  # Greek, both sigmas, tonos
    "ДдЁёЙй"  # Cyrillic
    "\u05d0\u05b0\u0915\u094dがか\u3099한글"  # Hebrew point, Devanagari virama, kana voicing, Hangul
    "ﬁﬃＺ①⑽²ℌ"  # compatibility forms
    "😀\U0001d400"  # beyond the BMP
    "%_*?/\\'-.@"
)  # fmt: skip
texts = st.text(ALPHABET, max_size=12)
# Values of Latin letters and marks only: PostgreSQL folds them by a shorter route, which must agree.
latin_texts = st.text(
    st.one_of(
        st.characters(min_codepoint=0x01, max_codepoint=0x24F),
        st.characters(min_codepoint=0x1E00, max_codepoint=0x1EFF),
        st.characters(min_codepoint=0x300, max_codepoint=0x36F),
    ),
    max_size=12,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Lefèvre", "lefevre"), ("ZÜRICH", "zurich"), ("François", "francois"), ("Müller", "muller"),
        ("Straße", "strasse"), ("STRASSE", "strasse"), ("ẞ", "ss"), ("Œuvre", "oeuvre"), ("Ærø", "aero"),
        ("Łódź", "lodz"), ("Đorđe", "dorde"), ("Þór", "thor"), ("Yıldız", "yildiz"), ("Ħamrun", "hamrun"), ("İstanbul", "istanbul"),
        ("ΟΔΟΣ", "οδοσ"), ("οδός", "οδοσ"), ("Ёлка", "елка"), ("ﬁne", "fine"), ("Ｚürich", "zurich"),
        ("Lefe\u0300vre", "lefevre"),  # decomposed input
        ("\u0301", ""),  # a lone accent folds to nothing
        ("한국", "한국"), ("が", "が"), ("\u05d0\u05b0", "\u05d0\u05b0"),  # not accents: kept, recomposed
        ("50%_off", "50%_off"), ("", ""),
    ],
)  # fmt: skip
def test_fold_examples(text: str, expected: str) -> None:
    assert fold(text) == expected == reference(text)


@settings(max_examples=500, deadline=None)
@given(texts)
def test_fold_is_the_reference_rule(text: str) -> None:
    assert fold(text) == reference(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=8))
def test_fold_is_the_reference_rule_on_any_text(text: str) -> None:
    assert fold(text) == reference(text)


@settings(max_examples=300, deadline=None)
@given(st.one_of(texts, st.text(max_size=8)))
def test_folding_lower_cased_text_changes_nothing(text: str) -> None:
    # The snapshot keeps codes and e-mails lower-cased and folds them for text ranges: that must be the fold of the
    # stored value.
    assert fold(text.lower()) == fold(text)
    assert fold(fold(text)) == fold(text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.none(), texts), max_size=40), st.integers(0, 5))
def test_fold_array_equals_fold(values: list[str | None], skip: int) -> None:
    arr = pa.array(values, pa.string())
    want = [None if v is None else fold(v) for v in values]
    assert fold_array(arr).to_pylist() == want
    # A slice (non-zero offset) and a chunked array fold the same.
    assert fold_array(arr.slice(skip)).to_pylist() == want[skip:]
    half = len(values) // 2
    chunked = pa.chunked_array([arr.slice(0, half), arr.slice(half)], pa.string())
    assert fold_array(chunked).to_pylist() == want


def test_fold_array_in_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    # Many values are folded in slices of whole values; tiny slices must give the same result.
    values = [f"Prénom{i} Nom{i}" if i % 3 else f"ΣΟΦΊΑ {i}" for i in range(500)] + ["", "É", "a" * 50]
    want = [fold(v) for v in values]
    assert fold_array(pa.array(values)).to_pylist() == want
    monkeypatch.setattr(fold_module, "_SLICE_BYTES", 7)
    assert fold_array(pa.array(values)).to_pylist() == want
    assert fold_array(pa.array(["ABC", None, "def"])).to_pylist() == ["abc", None, "def"]
    assert fold_array(pa.array([], pa.string())).to_pylist() == []


def _sql_folds(db: Database, values: list[str]) -> list[str]:
    with db.read() as conn:
        row = conn.execute(sa.select(*[folded(sa.literal(v, sa.String)) for v in values])).one()
    return list(row)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(texts, latin_texts), min_size=1, max_size=30))
def test_sql_folds_like_python(db: Database, values: list[str]) -> None:
    assert _sql_folds(db, values) == [fold(v) for v in values]


def test_sql_fold_examples(db: Database) -> None:
    values = ["Lefèvre", "ZÜRICH", "François", "Straße", "ΟΔΟΣ", "Łódź", "Lefe\u0300vre", "한국", "ASCII Only"]
    assert _sql_folds(db, values) == [fold(v) for v in values]
    with db.read() as conn:
        assert conn.execute(sa.select(folded(sa.null()))).scalar() is None


def test_code_point_order_on_every_database(db: Database) -> None:
    # '~' sorts after 'z' by code point (Python's order); a linguistic collation puts symbols before letters.
    with db.read() as conn:
        key = in_code_point_order(folded(sa.literal("A~", sa.String)))
        assert conn.execute(sa.select(key > "az", key <= "a~")).one() == (True, True)
        if db.dialect == "postgresql":
            icu = folded(sa.literal("A~", sa.String).collate("und-x-icu"))
            assert conn.execute(sa.select(icu > "az")).scalar() is False  # what COLLATE "C" is there for
            assert conn.execute(sa.select(in_code_point_order(icu) > "az")).scalar() is True
