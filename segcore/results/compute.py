"""Results of a logged segment: did the contacted members respond better than the held-out control group?

The metric, precisely:

- **Response**: a member responded when at least one outcome of the chosen kinds (all kinds when none are chosen) is
  dated inside the window. With `include_positive_interactions`, an interaction evaluated `positive` or
  `very_positive` inside the window counts too, except cancelled ones and the rows this log wrote itself.
- **Window**: the days after the log day, from log day + 1 to log day + `window_days` (default 30), and only the
  days up to `today` count. The log day itself is left out: the campaign went out that day, and an order placed
  the same morning cannot be told from one placed after the message. `days_observed` says how many window days
  have passed (0 to `window_days`).
- **Revenue**: the sum of `amount` of the counted outcomes in the window (an outcome without an amount adds 0);
  revenue per contact divides by every member of the group, buyers or not.
- **Groups**: treated = the members not held out (they got the campaign's interaction), control = the holdout.

States, in this order: `cancelled` (a cancelled log shows no result), `too_early` (no window day has passed yet),
`no_control` (logged without a holdout: the treated rate with its interval, no lift), `too_few_responders` (fewer
than MIN_RESPONDERS responders in both groups together: the numbers are shown with their intervals, but no lift is
claimed), `ok`.

Speed: the members' (contact_id, holdout) and the window's outcomes are read as two column sets from the driver's
cursor into Arrow and counted with numpy (dense arrays indexed by contact id), never row by row in Python objects
beyond the fetch; bench/results.py measures a million members and five million outcomes against the 2 s target.
"""

from __future__ import annotations

import datetime as dt
import gc
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy import Connection, select

from .._db import Database
from .._errors import NotFoundError, UsageError
from .._models import Campaign, Interaction, LoggedSegment, LoggedSegmentMember, Outcome, table_of
from .._snapshot import NULL_DAY, _days
from .stats import compare_proportions, rate_bands, rate_interval, welch_difference

__all__ = [
    "DEFAULT_WINDOW_DAYS",
    "MAX_WINDOW_DAYS",
    "MIN_RESPONDERS",
    "POSITIVE_EVALUATIONS",
    "RESULT_STATES",
    "CurvePoint",
    "GroupResult",
    "ResponseCurve",
    "Results",
    "campaign_results",
    "normalise_kinds",
    "outcome_kinds",
    "response_curve",
    "results_frame",
    "segment_results",
]

DEFAULT_WINDOW_DAYS = 30
MAX_WINDOW_DAYS = 365
# Fewer responders than this in both groups together: any lift would be noise, so the state says so.
MIN_RESPONDERS = 10
POSITIVE_EVALUATIONS = ("positive", "very_positive")
RESULT_STATES = ("cancelled", "too_early", "no_control", "too_few_responders", "ok")
_KIND = re.compile(r"^[A-Z0-9][A-Z0-9_.\-]{0,19}$")

_logged = table_of(LoggedSegment)
_members = table_of(LoggedSegmentMember)
_outcomes = table_of(Outcome)
_interactions = table_of(Interaction)
_campaigns = table_of(Campaign)
_EPOCH = dt.date(1970, 1, 1)


# --------------------------------------------------------------------------------------------------- values


@dataclass(frozen=True)
class GroupResult:
    """One group (treated or control): its size, responders, rate with its 95 % Wilson interval, and revenue."""

    contacts: int
    responders: int | None
    rate: float | None
    rate_low: float | None
    rate_high: float | None
    revenue: float | None
    revenue_per_contact: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "contacts": self.contacts,
            "responders": self.responders,
            "rate": self.rate,
            "rate_low": self.rate_low,
            "rate_high": self.rate_high,
            "revenue": self.revenue,
            "revenue_per_contact": self.revenue_per_contact,
        }


def _empty_group(contacts: int) -> GroupResult:
    return GroupResult(contacts, None, None, None, None, None, None)


@dataclass(frozen=True)
class Results:
    """The result of one logged segment for one metric and window; `state` says how far the numbers can be read."""

    segment_no: str
    description: str
    campaign_no: str | None
    log_date: dt.date
    kinds: tuple[str, ...] | None  # None: every kind of outcome counts
    include_positive_interactions: bool
    window_days: int
    window_start: dt.date  # the first day counted (the day after the log)
    window_end: dt.date  # the last day of the window (counted once it has passed)
    days_observed: int
    state: str
    treated: GroupResult
    control: GroupResult
    lift_abs: float | None = None
    lift_abs_low: float | None = None
    lift_abs_high: float | None = None
    lift_rel: float | None = None
    lift_rel_low: float | None = None
    lift_rel_high: float | None = None
    p_value: float | None = None
    test: str | None = None  # "fisher" | "z"
    revenue_lift: float | None = None  # revenue per contact, treated − control
    revenue_lift_low: float | None = None
    revenue_lift_high: float | None = None
    revenue_p_value: float | None = None
    incremental_responders: float | None = None  # lift_abs × treated contacts
    incremental_responders_low: float | None = None
    incremental_responders_high: float | None = None
    incremental_revenue: float | None = None  # revenue_lift × treated contacts
    incremental_revenue_low: float | None = None
    incremental_revenue_high: float | None = None

    @property
    def message(self) -> str:
        """What the state means, in one sentence for a person."""
        if self.state == "cancelled":
            return f"the log of segment {self.segment_no} was cancelled: it shows no result"
        if self.state == "too_early":
            return (
                f"too early: the {self.window_days}-day window starts on {self.window_start.isoformat()}, "
                "the day after the log"
            )
        if self.state == "no_control":
            return "no control group: the segment was logged without a holdout, so there is no lift to measure"
        if self.state == "too_few_responders":
            return (
                f"not enough responders to say: {self._responders()} in both groups together, fewer than "
                f"{MIN_RESPONDERS}"
            )
        if self.p_value is not None and self.p_value < 0.05:
            return "the treated group responded differently from the control group (p < 0.05)"
        return "no difference shown between treated and control at the 5 % level"

    def _responders(self) -> int:
        return (self.treated.responders or 0) + (self.control.responders or 0)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (`segment results --json`)."""
        return {
            "segment_no": self.segment_no,
            "description": self.description,
            "campaign_no": self.campaign_no,
            "log_date": self.log_date.isoformat(),
            "kinds": list(self.kinds) if self.kinds is not None else None,
            "include_positive_interactions": self.include_positive_interactions,
            "window_days": self.window_days,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "days_observed": self.days_observed,
            "state": self.state,
            "message": self.message,
            "treated": self.treated.as_dict(),
            "control": self.control.as_dict(),
            "lift_abs": self.lift_abs,
            "lift_abs_low": self.lift_abs_low,
            "lift_abs_high": self.lift_abs_high,
            "lift_rel": self.lift_rel,
            "lift_rel_low": self.lift_rel_low,
            "lift_rel_high": self.lift_rel_high,
            "p_value": self.p_value,
            "test": self.test,
            "revenue_lift": self.revenue_lift,
            "revenue_lift_low": self.revenue_lift_low,
            "revenue_lift_high": self.revenue_lift_high,
            "revenue_p_value": self.revenue_p_value,
            "incremental_responders": self.incremental_responders,
            "incremental_responders_low": self.incremental_responders_low,
            "incremental_responders_high": self.incremental_responders_high,
            "incremental_revenue": self.incremental_revenue,
            "incremental_revenue_low": self.incremental_revenue_low,
            "incremental_revenue_high": self.incremental_revenue_high,
        }


@dataclass(frozen=True)
class CurvePoint:
    """Day d after the log: the share of each group that has responded by then, with Wilson bounds."""

    day: int
    date: dt.date
    treated_responders: int
    treated_rate: float | None
    treated_low: float | None
    treated_high: float | None
    control_responders: int | None
    control_rate: float | None
    control_low: float | None
    control_high: float | None


@dataclass(frozen=True)
class ResponseCurve:
    """The cumulative response rate by day since the log, treated against control (empty until a day has passed)."""

    segment_no: str
    log_date: dt.date
    window_days: int
    days_observed: int
    state: str
    points: tuple[CurvePoint, ...] = field(default=())

    def frame(self) -> pd.DataFrame:
        """One row a day: day, date, then responders, rate, low and high of treated and control."""
        columns = [f.name for f in CurvePoint.__dataclass_fields__.values()]
        return pd.DataFrame([p.__dict__ for p in self.points], columns=columns)


# --------------------------------------------------------------------------------------------------- inputs


def normalise_kinds(kinds: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """Outcome kinds as stored (upper-case codes, sorted, no repeats); None or nothing given means every kind."""
    if kinds is None:
        return None
    items = kinds.split(",") if isinstance(kinds, str) else list(kinds)
    codes = sorted({str(k).strip().upper() for k in items if str(k).strip()})
    for code in codes:
        if not _KIND.match(code):
            raise UsageError(
                f"outcome kind {code!r} is not valid: 1 to 20 letters, digits, '-', '_' or '.' (for example ORDER)"
            )
    return tuple(codes) or None


def _window(window_days: int) -> int:
    if isinstance(window_days, bool) or not isinstance(window_days, int | np.integer):
        raise UsageError(f"the window is a whole number of days, not {window_days!r}")
    if not 1 <= int(window_days) <= MAX_WINDOW_DAYS:
        raise UsageError(f"the window is 1 to {MAX_WINDOW_DAYS} days, not {window_days}")
    return int(window_days)


def _today(today: dt.date | str | None) -> dt.date:
    if today is None:
        return dt.date.today()
    if isinstance(today, dt.datetime):
        return today.date()
    if isinstance(today, dt.date):
        return today
    try:
        return dt.date.fromisoformat(str(today).strip())
    except ValueError:
        raise UsageError(f"today {today!r} is not a date in the form YYYY-MM-DD") from None


def outcome_kinds(db: Database) -> tuple[str, ...]:
    """The outcome kinds stored (ORDER, SIGNUP ...), sorted: what a page offers as the metric's choices."""
    with db.read() as conn:
        # DISTINCT over the (kind, reference) unique index: the kinds come from the index, not the table.
        return tuple(conn.execute(select(_outcomes.c.kind).distinct().order_by(_outcomes.c.kind)).scalars())


# --------------------------------------------------------------------------------------------------- reading


def _read(conn: Connection, stmt: sa.Select[Any]) -> pa.Table:
    """Run a read statement (bound parameters, compiled by SQLAlchemy) and return its columns as an Arrow table.

    The rows are taken from the driver's cursor as plain tuples, skipping SQLAlchemy's row objects: at a million
    members that is most of the time. Not the ADBC reader: a second SQLite library in the process does not see the
    pooled connections' recent WAL commits (it read stale rows in a test), so the one driver reads everything."""
    # Hundreds of thousands of fresh tuples would set off the cyclic garbage collector again and again (each pass
    # walks every live object); tuples of numbers and text hold no cycles, so it rests for the fetch.
    collecting = gc.isenabled()
    gc.disable()
    try:
        result = conn.execute(stmt)
        try:
            rows = result.cursor.fetchall() if result.cursor is not None else []
        finally:
            result.close()
        names = [c.name for c in stmt.selected_columns]
        cols = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        del rows
        return pa.table({n: pa.array(c, from_pandas=True) for n, c in zip(names, cols, strict=True)})
    finally:
        if collecting:
            gc.enable()


def _ints(table: pa.Table, name: str) -> np.ndarray:
    col = table.column(name)
    if len(col) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(col.to_numpy(), dtype=np.int64)


def _floats(table: pa.Table, name: str) -> np.ndarray:
    col = table.column(name)
    if len(col) == 0:
        return np.zeros(0, dtype=np.float64)
    if col.null_count == len(col):
        return np.zeros(len(col), dtype=np.float64)
    values = col.to_pandas().astype("float64").to_numpy()
    return np.nan_to_num(values, nan=0.0)  # an outcome without an amount adds nothing to revenue


def _day_numbers(table: pa.Table, name: str) -> np.ndarray:
    if table.num_rows == 0:
        return np.zeros(0, dtype=np.int32)
    return _days(table.column(name))


def _raw_date(col: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    # As the driver gives it (ISO text on SQLite): a million dates parse in one Arrow call, not one Python call each.
    return sa.type_coerce(col, sa.String).label("date")


@dataclass(frozen=True, eq=False)
class _Observation:
    """A log's two group sizes and, for each member with a counted row in the window, its group, the first day
    (1 .. days observed) it responded on, and its revenue; members without one are only counted in the sizes."""

    treated_n: int
    control_n: int
    holdout: np.ndarray  # bool per responding member
    first_day: np.ndarray  # int per responding member
    revenue: np.ndarray  # float per responding member

    def revenues(self, control: bool) -> np.ndarray:
        """Revenue per contact of a whole group, non-responders as 0 (the Welch comparison needs every contact)."""
        own = self.revenue[self.holdout == control]
        out = np.zeros(self.control_n if control else self.treated_n, dtype=np.float64)
        out[: len(own)] = own
        return out


def _observe(
    conn: Connection,
    rec: sa.Row[Any],
    kinds: tuple[str, ...] | None,
    include_positive: bool,
    days: int,
) -> _Observation:
    treated_n, control_n = int(rec.member_count - rec.holdout_count), int(rec.holdout_count)
    empty = np.zeros(0, dtype=np.int64)
    if days == 0:
        return _Observation(treated_n, control_n, empty.astype(bool), empty, empty.astype(np.float64))
    start = rec.date + dt.timedelta(days=1)
    end = rec.date + dt.timedelta(days=days)
    # Only the members' rows: each row of the window is checked with one seek in the log's key (logged_id,
    # contact_id). A correlated EXISTS keeps the plan "scan the window, probe the key": as an IN list, SQLite chose
    # to walk every member and probe the outcomes instead, 20 times slower. The treated members (most of a log) are
    # never read one by one; the group sizes come from the log's record.
    def member(contact_id: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
        # Selecting a key column (not SELECT *) keeps the probe inside the index.
        return (
            select(_members.c.contact_id)
            .where(_members.c.logged_id == rec.id, _members.c.contact_id == contact_id)
            .exists()
        )

    stmt = select(_outcomes.c.contact_id, _raw_date(_outcomes.c.date), _outcomes.c.amount).where(
        _outcomes.c.date >= start, _outcomes.c.date <= end, member(_outcomes.c.contact_id)
    )
    if kinds is not None:
        stmt = stmt.where(_outcomes.c.kind.in_(kinds))
    found = _read(conn, stmt)
    o_ids, o_days, o_amount = _ints(found, "contact_id"), _day_numbers(found, "date"), _floats(found, "amount")
    if include_positive:
        positive = _read(
            conn,
            select(_interactions.c.contact_id, _raw_date(_interactions.c.date)).where(
                _interactions.c.date >= start,
                _interactions.c.date <= end,
                _interactions.c.evaluation.in_(POSITIVE_EVALUATIONS),
                _interactions.c.cancelled.is_(False),
                # The campaign's own contact rows are the treatment, not a response to it.
                sa.or_(_interactions.c.logged_segment_id.is_(None), _interactions.c.logged_segment_id != rec.id),
                member(_interactions.c.contact_id),
            ),
        )
        o_ids = np.concatenate([o_ids, _ints(positive, "contact_id")])
        o_days = np.concatenate([o_days, _day_numbers(positive, "date")])
        o_amount = np.concatenate([o_amount, np.zeros(positive.num_rows)])
    log_day = (rec.date - _EPOCH).days
    offset = o_days.astype(np.int64) - log_day
    ok = (o_days != NULL_DAY) & (offset >= 1) & (offset <= days)
    o_ids, offset, o_amount = o_ids[ok], offset[ok], o_amount[ok]
    # One entry per responding member: its earliest day and its summed amounts (factorised ids, numpy reductions).
    ids, inverse = np.unique(o_ids, return_inverse=True)
    first = np.full(len(ids), days + 1, dtype=np.int64)
    np.minimum.at(first, inverse, offset)
    revenue = np.bincount(inverse, weights=o_amount, minlength=len(ids))
    control = np.zeros(len(ids), dtype=bool)
    if control_n and len(ids):
        held = _ints(
            _read(
                conn,
                select(_members.c.contact_id).where(_members.c.logged_id == rec.id, _members.c.holdout.is_(True)),
            ),
            "contact_id",
        )
        control = np.isin(ids, held, assume_unique=True)
    return _Observation(treated_n, control_n, control, first, revenue)


# --------------------------------------------------------------------------------------------------- results


def _logged_row(conn: Connection, no: str) -> sa.Row[Any]:
    row = conn.execute(select(_logged).where(_logged.c.segment_no == no)).first()
    if row is None:
        raise NotFoundError(f"segment {no} has not been logged: there are no results to show")
    return row


def _group(obs: _Observation, control: bool) -> GroupResult:
    contacts = obs.control_n if control else obs.treated_n
    mine = obs.holdout == control
    responders = int(np.count_nonzero(mine))
    rate = rate_interval(responders, contacts)
    revenue = float(obs.revenue[mine].sum())
    return GroupResult(
        contacts=contacts,
        responders=responders,
        rate=rate.rate,
        rate_low=rate.low,
        rate_high=rate.high,
        revenue=round(revenue, 2),
        revenue_per_contact=revenue / contacts if contacts else None,
    )


def _times(value: float | None, n: int) -> float | None:
    return None if value is None else value * n


def _results(
    conn: Connection,
    rec: sa.Row[Any],
    kinds: tuple[str, ...] | None,
    include_positive: bool,
    window: int,
    today: dt.date,
) -> Results:
    days = max(0, min(window, (today - rec.date).days))
    common: dict[str, Any] = {
        "segment_no": rec.segment_no,
        "description": rec.description,
        "campaign_no": rec.campaign_no,
        "log_date": rec.date,
        "kinds": kinds,
        "include_positive_interactions": include_positive,
        "window_days": window,
        "window_start": rec.date + dt.timedelta(days=1),
        "window_end": rec.date + dt.timedelta(days=window),
        "days_observed": days,
    }
    treated_n = int(rec.member_count - rec.holdout_count)
    control_n = int(rec.holdout_count)
    if rec.cancelled:
        return Results(**common, state="cancelled", treated=_empty_group(treated_n), control=_empty_group(control_n))
    if days == 0:
        return Results(**common, state="too_early", treated=_empty_group(treated_n), control=_empty_group(control_n))
    obs = _observe(conn, rec, kinds, include_positive, days)
    treated = _group(obs, control=False)
    control = _group(obs, control=True)
    if control.contacts == 0:
        return Results(**common, state="no_control", treated=treated, control=control)
    responders = (treated.responders or 0) + (control.responders or 0)
    state = "too_few_responders" if responders < MIN_RESPONDERS else "ok"
    lift = compare_proportions(treated.responders or 0, treated.contacts, control.responders or 0, control.contacts)
    money = welch_difference(obs.revenues(control=False), obs.revenues(control=True))
    n = treated.contacts
    return Results(
        **common,
        state=state,
        treated=treated,
        control=control,
        lift_abs=lift.lift_abs,
        lift_abs_low=lift.lift_abs_low,
        lift_abs_high=lift.lift_abs_high,
        lift_rel=lift.lift_rel,
        lift_rel_low=lift.lift_rel_low,
        lift_rel_high=lift.lift_rel_high,
        p_value=lift.p_value,
        test=lift.test,
        revenue_lift=money.diff if money else None,
        revenue_lift_low=money.low if money else None,
        revenue_lift_high=money.high if money else None,
        revenue_p_value=money.p_value if money else None,
        incremental_responders=lift.lift_abs * n,
        incremental_responders_low=lift.lift_abs_low * n,
        incremental_responders_high=lift.lift_abs_high * n,
        incremental_revenue=_times(money.diff if money else None, n),
        incremental_revenue_low=_times(money.low if money else None, n),
        incremental_revenue_high=_times(money.high if money else None, n),
    )


def segment_results(
    db: Database,
    no: str,
    *,
    kinds: str | Sequence[str] | None = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
    include_positive_interactions: bool = False,
    today: dt.date | str | None = None,
) -> Results:
    """Treated against control for logged segment `no`: response rate, lift, p-value and revenue (see the module)."""
    codes = normalise_kinds(kinds)
    window = _window(window_days)
    day = _today(today)
    with db.read() as conn:
        rec = _logged_row(conn, no)
        return _results(conn, rec, codes, bool(include_positive_interactions), window, day)


def campaign_results(
    db: Database,
    campaign_no: str,
    *,
    kinds: str | Sequence[str] | None = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
    include_positive_interactions: bool = False,
    today: dt.date | str | None = None,
) -> tuple[Results, ...]:
    """The results of every logged segment of a campaign, side by side (by log date, then number)."""
    codes = normalise_kinds(kinds)
    window = _window(window_days)
    day = _today(today)
    with db.read() as conn:
        rows = conn.execute(
            select(_logged)
            .where(_logged.c.campaign_no == campaign_no)
            .order_by(_logged.c.date, _logged.c.segment_no)
        ).all()
        if not rows and conn.execute(select(_campaigns.c.no).where(_campaigns.c.no == campaign_no)).first() is None:
            raise NotFoundError(f"no campaign {campaign_no!r}")
        return tuple(
            _results(conn, rec, codes, bool(include_positive_interactions), window, day) for rec in rows
        )


def results_frame(results: Sequence[Results]) -> pd.DataFrame:
    """Results side by side as a table (one row a logged segment), for a page's grid and its export."""
    rows = []
    for r in results:
        d = r.as_dict()
        row = {k: v for k, v in d.items() if k not in ("treated", "control")}
        row["kinds"] = ", ".join(r.kinds) if r.kinds else "any"
        for group in ("treated", "control"):
            row.update({f"{group}_{k}": v for k, v in d[group].items()})
        rows.append(row)
    columns = list(rows[0]) if rows else []
    return pd.DataFrame(rows, columns=columns)


def response_curve(
    db: Database,
    no: str,
    *,
    kinds: str | Sequence[str] | None = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
    include_positive_interactions: bool = False,
    today: dt.date | str | None = None,
) -> ResponseCurve:
    """The cumulative response rate by day since the log (day 1 .. days observed), treated and control, with bands."""
    codes = normalise_kinds(kinds)
    window = _window(window_days)
    day = _today(today)
    with db.read() as conn:
        rec = _logged_row(conn, no)
        days = max(0, min(window, (day - rec.date).days))
        state = "cancelled" if rec.cancelled else "too_early" if days == 0 else ""
        if state:
            return ResponseCurve(rec.segment_no, rec.date, window, days, state)
        obs = _observe(conn, rec, codes, bool(include_positive_interactions), days)
    state = "no_control" if obs.control_n == 0 else "ok"
    curves = []
    for control, size in ((False, obs.treated_n), (True, obs.control_n)):
        per_day = np.bincount(obs.first_day[obs.holdout == control], minlength=days + 1)[1:]
        cumulative = np.cumsum(per_day)
        rate, low, high = rate_bands(cumulative, size)
        curves.append((cumulative, rate, low, high))
    (t_n, t_r, t_lo, t_hi), (c_n, c_r, c_lo, c_hi) = curves
    has_control = state != "no_control"

    def num(values: np.ndarray, i: int) -> float | None:
        return float(values[i]) if has_control else None

    points = tuple(
        CurvePoint(
            day=i + 1,
            date=rec.date + dt.timedelta(days=i + 1),
            treated_responders=int(t_n[i]),
            treated_rate=float(t_r[i]),
            treated_low=float(t_lo[i]),
            treated_high=float(t_hi[i]),
            control_responders=int(c_n[i]) if has_control else None,
            control_rate=num(c_r, i),
            control_low=num(c_lo, i),
            control_high=num(c_hi, i),
        )
        for i in range(days)
    )
    return ResponseCurve(rec.segment_no, rec.date, window, days, state, points)
