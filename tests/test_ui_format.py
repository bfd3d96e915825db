"""Counts as a reader reads them: one contact, two contacts; which rows of a paged table are shown."""

from __future__ import annotations

import pytest

from ui.format import plural, shown_range


@pytest.mark.parametrize(
    ("count", "word", "words", "text"),
    [
        (0, "contact", None, "0 contacts"),
        (1, "contact", None, "1 contact"),
        (2, "contact", None, "2 contacts"),
        (1, "address", "addresses", "1 address"),
        (12_345, "address", "addresses", "12,345 addresses"),
        (1, "row", None, "1 row"),
        (1, "segment", None, "1 segment"),
    ],
)
def test_plural(count: int, word: str, words: str | None, text: str) -> None:
    assert plural(count, word, words) == text


@pytest.mark.parametrize(
    ("offset", "shown", "total", "capped", "text"),
    [
        (0, 1, 1, False, "1 of 1 contact"),
        (0, 25, 1_234, False, "1–25 of 1,234 contacts"),
        (1_225, 9, 1_234, False, "1,226–1,234 of 1,234 contacts"),
        (25, 1, 26, False, "26 of 26 contacts"),
        (0, 25, 1_000, True, "1–25 of 1,000+ contacts"),
    ],
)
def test_shown_range(offset: int, shown: int, total: int, capped: bool, text: str) -> None:
    assert shown_range(offset, shown, total, "contact", capped=capped) == text


def test_shown_range_of_addresses() -> None:
    assert shown_range(0, 1, 1, "matched address", "matched addresses") == "1 of 1 matched address"
    assert shown_range(0, 2, 2, "address", "addresses") == "1–2 of 2 addresses"
