"""Number, date and label formatting: one place, so every page shows the same thing the same way."""

from __future__ import annotations

import datetime as dt
from typing import Any

STATUS_COLORS = {
    "draft": "gray",
    "submitted": "blue",
    "approved": "green",
    "rejected": "red",
    "logged": "violet",
}


def n(value: int | float | None) -> str:
    """Thousands separators, no decimals: 12,345."""
    if value is None:
        return "–"
    return f"{value:,.0f}"


def signed(value: int | float) -> str:
    """A change with its sign: +1,234 / −56 / 0."""
    if value > 0:
        return f"+{value:,.0f}"
    if value < 0:
        return f"−{-value:,.0f}"
    return "0"


def pct(value: float | None, digits: int = 1) -> str:
    """A share (0..1) as a percentage: 42.5%."""
    if value is None:
        return "–"
    return f"{value * 100:.{digits}f}%"


def money(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.2f}"


def when(value: dt.datetime | dt.date | None) -> str:
    """Stored times are UTC without a zone; shown to the minute, dates as ISO."""
    if value is None:
        return "–"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return value.isoformat()


def with_count(value: str, count: int) -> str:
    """A multiselect option with its number of contacts: FR (4,210)."""
    return f"{value} ({count:,})"


def plural(count: int, word: str, words: str | None = None) -> str:
    """A count with its noun, singular for exactly one: 1 contact, 2 contacts, 0 contacts, 1 address, 3 addresses."""
    return f"{count:,} {word if count == 1 else (words or word + 's')}"


def shown_range(offset: int, shown: int, total: int, word: str, words: str | None = None, *,
                capped: bool = False) -> str:
    """Which rows of a paged table are on screen: "1–25 of 1,234 contacts", "1 of 1 contact", "26–50 of 1,000+
    contacts" (`capped`: the count stopped at `total`)."""
    first, last = offset + 1, offset + shown
    where = f"{first:,}" if last <= first else f"{first:,}–{last:,}"
    if capped:
        return f"{where} of {total:,}+ {words or word + 's'}"
    return f"{where} of {plural(total, word, words)}"


def cell(value: Any) -> Any:
    """A value as a table cell: None as empty, the rest unchanged."""
    return "" if value is None else value


def sentence(message: object) -> str:
    """A core message as a sentence: first letter up, one full stop. Not str.capitalize(), which lowers the rest
    ("NAME", "FR", "Ada" must stay as the core wrote them)."""
    text = str(message).strip()
    text = text[:1].upper() + text[1:]
    return text if not text or text.endswith((".", "!", "?")) else text + "."
