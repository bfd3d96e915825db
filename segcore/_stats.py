"""Chart aggregations over a set of contacts: the dimensions the Builder and Review pages show.

A dimension turns each contact into one bucket (country, gender, age band, ...) or several (industry groups).
The bucket rules are defined here once; the SQL path below and the in-memory fast path both follow them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Select, case, func, select

from ._dates import shift_years
from .fields import AGE_BANDS
from ._models import Contact, ContactCode

__all__ = [
    "DIMENSIONS",
    "SPEND_BANDS",
    "Dimension",
    "Distribution",
    "UNKNOWN",
    "composition",
    "distribution_sql",
    "flagged_distributions",
    "mask_small",
]

contacts = Contact.__table__
codes = ContactCode.__table__

UNKNOWN = "(none)"
# Spend buckets: lower bound inclusive, upper exclusive; the last is open.
SPEND_BANDS: tuple[tuple[str, float, float | None], ...] = (
    ("0", 0.0, 0.01),
    ("1–99", 0.01, 100.0),
    ("100–499", 100.0, 500.0),
    ("500–999", 500.0, 1000.0),
    ("1,000–4,999", 1000.0, 5000.0),
    ("5,000+", 5000.0, None),
)


@dataclass(frozen=True)
class Dimension:
    """One chart axis: its name, title, and the order of its buckets when that order is fixed."""

    name: str
    title: str
    order: tuple[str, ...] = ()
    multi: bool = False  # a contact may fall in several buckets (list fields)


DIMENSIONS: dict[str, Dimension] = {
    d.name: d
    for d in (
        Dimension("country", "Country"),
        Dimension("gender", "Gender", ("female", "male", "other", "unknown")),
        Dimension("age_band", "Age band", tuple(b[0] for b in AGE_BANDS) + (UNKNOWN,)),
        Dimension("industry_groups", "Industry", multi=True),
        Dimension("acquisition_source", "Acquisition source"),
        Dimension("churn_risk", "Churn risk", ("low", "medium", "high", UNKNOWN)),
        Dimension("spend_band", "Total spent", tuple(b[0] for b in SPEND_BANDS)),
    )
}


@dataclass(frozen=True)
class Distribution:
    """Counts per bucket of one dimension over one set of contacts."""

    dimension: str
    counts: dict[str, int]
    total: int
    # Counts taken out by mask_small (bucket memberships, so a multi-valued dimension may count a contact twice).
    hidden: int = 0

    def share(self, bucket: str) -> float:
        return self.counts.get(bucket, 0) / self.total if self.total else 0.0


def mask_small(dist: Distribution, minimum: int) -> Distribution:
    """Take out the buckets holding fewer than `minimum` contacts, so a small segment never shows a tiny group.

    `total` stays the true number of contacts: the shares of the buckets still shown stay honest, and `hidden`
    says how much was taken out (a page prints it rather than letting the bars silently not add up)."""
    kept = {k: v for k, v in dist.counts.items() if v >= minimum}
    return Distribution(dist.dimension, kept, dist.total, dist.hidden + sum(dist.counts.values()) - sum(kept.values()))


def _age_band_expr(today: dt.date) -> sa.ColumnElement[Any]:
    whens = []
    for label, lo, hi in AGE_BANDS:
        # age >= lo  <=> birth_date <= today - lo years; age <= hi <=> birth_date > today - (hi+1) years
        conds = [contacts.c.birth_date <= shift_years(today, -lo)]
        if hi is not None:
            conds.append(contacts.c.birth_date > shift_years(today, -(hi + 1)))
        whens.append((sa.and_(*conds), sa.literal(label)))
    return case(*whens, else_=sa.literal(UNKNOWN))


def _spend_expr() -> sa.ColumnElement[Any]:
    whens = []
    for label, lo, hi in SPEND_BANDS:
        cond = contacts.c.total_spent >= lo if hi is None else sa.and_(contacts.c.total_spent >= lo, contacts.c.total_spent < hi)
        whens.append((cond, sa.literal(label)))
    return case(*whens, else_=sa.literal(SPEND_BANDS[0][0]))


def _bucket_expr(dimension: str, today: dt.date) -> sa.ColumnElement[Any]:
    if dimension == "age_band":
        return _age_band_expr(today)
    if dimension == "spend_band":
        return _spend_expr()
    if dimension in ("country", "gender", "acquisition_source", "churn_risk"):
        return func.coalesce(contacts.c[dimension], sa.literal(UNKNOWN))
    raise KeyError(dimension)


def distribution_sql(
    conn: Connection, ids: Select[Any], dimension: str, *, today: dt.date | None = None
) -> Distribution:
    """Bucket counts of `dimension` over the contacts whose ids `ids` selects, computed by the database.

    Two queries per dimension: the plain reference the tests hold `flagged_distributions` (what previews use) to."""
    today = today or dt.date.today()
    total = int(conn.execute(select(func.count()).select_from(ids.subquery())).scalar_one())
    if DIMENSIONS[dimension].multi:
        stmt = (
            select(codes.c.code, func.count())
            .where(codes.c.kind == dimension, codes.c.contact_id.in_(ids))
            .group_by(codes.c.code)
        )
        counts = {str(k): int(v) for k, v in conn.execute(stmt)}
        with_any = int(
            conn.execute(
                select(func.count(sa.distinct(codes.c.contact_id))).where(
                    codes.c.kind == dimension, codes.c.contact_id.in_(ids)
                )
            ).scalar_one()
        )
        if total - with_any:
            counts[UNKNOWN] = total - with_any
    else:
        bucket = _bucket_expr(dimension, today).label("bucket")
        stmt = select(bucket, func.count()).where(contacts.c.id.in_(ids)).group_by(bucket)
        counts = {str(k): int(v) for k, v in conn.execute(stmt)}
    return Distribution(dimension, _ordered(dimension, counts), total)


def flagged_distributions(
    conn: Connection,
    frm: sa.FromClause,
    where: sa.ColumnElement[bool],
    flags: Sequence[sa.ColumnElement[int]],
    dimensions: Sequence[str],
    *,
    today: dt.date | None = None,
) -> list[tuple[int, dict[str, Distribution]]]:
    """For each 0/1 flag over the contact rows of `frm` WHERE `where`: how many rows it marks, and their
    distributions. Every single-valued dimension comes out of one pass (GROUPING SETS on PostgreSQL, one combined
    GROUP BY elsewhere), each multi-valued one out of a join with its codes: a large database is scanned a few
    times per preview, not twice per chart."""
    today = today or dt.date.today()
    sums = [func.coalesce(func.sum(f), 0) for f in flags]
    single = [d for d in dimensions if not DIMENSIONS[d].multi]
    counts: list[dict[str, dict[str, int]]] = [{d: {} for d in dimensions} for _ in flags]
    if single:
        exprs = [_bucket_expr(d, today) for d in single]
        stmt = select(*[e.label(f"b{i}") for i, e in enumerate(exprs)], *sums).select_from(frm).where(where)
        if conn.dialect.name == "postgresql":
            # One row per bucket of each dimension; the other dimensions' columns are NULL on it.
            stmt = stmt.group_by(func.grouping_sets(*exprs))
        else:
            stmt = stmt.group_by(*exprs)  # one row per combination, summed per dimension below
        for r in conn.execute(stmt):
            for i, d in enumerate(single):
                bucket = r[i]
                if bucket is None:  # bucket expressions never give NULL: this row belongs to another set
                    continue
                for k in range(len(flags)):
                    v = int(r[len(single) + k])
                    if v:
                        counts[k][d][str(bucket)] = counts[k][d].get(str(bucket), 0) + v
        totals = [sum(counts[k][single[0]].values()) for k in range(len(flags))]
    else:
        totals = [int(v) for v in conn.execute(select(*sums).select_from(frm).where(where)).one()]
    for d in dimensions:
        if not DIMENSIONS[d].multi:
            continue
        # One pass over the contacts' codes: per code the flagged rows, and, marking each contact's first code row,
        # how many flagged contacts have any code at all (the rest are the "(none)" bucket).
        joined = frm.join(codes, sa.and_(codes.c.contact_id == contacts.c.id, codes.c.kind == d))
        first = case((func.row_number().over(partition_by=codes.c.contact_id, order_by=codes.c.code) == 1, 1), else_=0)
        rows = (
            select(codes.c.code.label("code"), first.label("first"), *[f.label(f"f{k}") for k, f in enumerate(flags)])
            .select_from(joined)
            .where(where)
            .subquery()
        )
        fcols = [rows.c[f"f{k}"] for k in range(len(flags))]
        stmt = select(rows.c.code, *[func.sum(c) for c in fcols], *[func.sum(c * rows.c.first) for c in fcols])
        with_any = [0] * len(flags)
        for code, *vals in conn.execute(stmt.group_by(rows.c.code)):
            for k in range(len(flags)):
                if int(vals[k]):
                    counts[k][d][str(code)] = int(vals[k])
                with_any[k] += int(vals[len(flags) + k])
        for k in range(len(flags)):
            if totals[k] - with_any[k]:
                counts[k][d][UNKNOWN] = totals[k] - with_any[k]
    return [
        (totals[k], {d: Distribution(d, _ordered(d, counts[k][d]), totals[k]) for d in dimensions})
        for k in range(len(flags))
    ]


def _ordered(dimension: str, counts: dict[str, int]) -> dict[str, int]:
    order = DIMENSIONS[dimension].order
    if order:
        return {k: counts[k] for k in order if counts.get(k)} | {k: v for k, v in counts.items() if k not in order}
    # Free dimensions: largest first, "(none)" last.
    items = sorted(counts.items(), key=lambda kv: (kv[0] == UNKNOWN, -kv[1], kv[0]))
    return dict(items)


def composition(segment: Distribution, everyone: Distribution) -> list[dict[str, Any]]:
    """Share in segment, share in all contacts, and index (= share in segment ÷ share in all × 100) per bucket."""
    rows = []
    for bucket in dict.fromkeys([*everyone.counts, *segment.counts]):
        s, a = segment.share(bucket), everyone.share(bucket)
        rows.append(
            {
                "bucket": bucket,
                "segment_count": segment.counts.get(bucket, 0),
                "segment_share": s,
                "all_share": a,
                "index": round(s / a * 100, 1) if a else None,
            }
        )
    return rows
