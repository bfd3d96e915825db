"""Date arithmetic shared by the filter compiler, the fast path and the charts."""

from __future__ import annotations

import calendar
import datetime as dt

__all__ = ["age_on", "month_end", "month_start", "shift_months", "shift_years"]


def shift_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` later (or earlier), clamped to the end of a shorter month."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(day.day, last))


def shift_years(day: dt.date, years: int) -> dt.date:
    """The same day `years` later (or earlier); 29 February becomes 28 February in a common year."""
    return shift_months(day, 12 * years)


def age_on(birth: dt.date, today: dt.date) -> int:
    """Whole years lived at `today`."""
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def month_start(day: dt.date) -> dt.date:
    """The first day of `day`'s month (Business Central's -CM)."""
    return day.replace(day=1)


def month_end(day: dt.date) -> dt.date:
    """The last day of `day`'s month (Business Central's CM)."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])
