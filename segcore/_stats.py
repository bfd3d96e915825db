"""Chart aggregations over a set of contacts: the dimensions the Builder and Review pages show.

A dimension turns each contact into one bucket (country, gender, age band, ...) or several (industry groups).
The bucket rules are defined here once; the SQL path below and the in-memory fast path both follow them.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Select, case, func, select

from ._dates import shift_years
from ._models import Contact, ContactCode, CustomValue
from .fields import AGE_BANDS, BUILTIN, FieldRegistry, FieldSpec, load_fields

__all__ = [
    "DIMENSIONS",
    "SPEND_BANDS",
    "Dimension",
    "Distribution",
    "NO",
    "UNKNOWN",
    "YES",
    "chart_dimensions",
    "composition",
    "dimension_of",
    "magnitude_label",
    "distribution_sql",
    "flagged_distributions",
    "mask_small",
]

contacts = Contact.__table__
codes = ContactCode.__table__
custom_values = CustomValue.__table__

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
    """One chart axis: its name, title, and the order of its buckets when that order is fixed.

    `ordered` says whether the buckets have an order of their own (a fixed order, years, number bands, yes/no);
    `arrange` puts buckets in the order every chart draws them. Charts ask these rather than sorting themselves."""

    name: str
    title: str
    order: tuple[str, ...] = ()
    multi: bool = False  # a contact may fall in several buckets (list fields)
    # How a field that is not one of the seven fixed charts buckets its contacts: "value" (its code), "year" (of a
    # date), "magnitude" (a number's power of ten), "boolean" (yes / no).
    rule: str = ""

    @property
    def ordered(self) -> bool:
        """True when the buckets have an order of their own: a fixed order (age bands, spend bands, churn risk,
        yes/no), years, or number bands. False for codes (countries, industries): those are drawn largest first."""
        return bool(self.order) or self.rule in ("year", "magnitude", "boolean")

    def bucket_key(self, bucket: str) -> tuple[int, float, str]:
        """Sort key of a bucket of an ordered dimension: the fixed order, else years and number bands low to high;
        a bucket the order does not know after the known ones, "(none)" always last."""
        if bucket == UNKNOWN:
            return (3, 0.0, bucket)
        if self.order:
            return (0, float(self.order.index(bucket)), bucket) if bucket in self.order else (2, 0.0, bucket)
        if self.rule == "year":
            try:
                return (0, float(int(bucket)), bucket)
            except ValueError:
                return (2, 0.0, bucket)
        if self.rule == "magnitude":
            key = _magnitude_key(bucket)
            return (0, key, bucket) if key != math.inf else (2, 0.0, bucket)
        return (2, 0.0, bucket)

    def arrange(self, buckets: Mapping[str, int] | Iterable[str]) -> list[str]:
        """The buckets in the order a chart draws them: an ordered dimension in its own order; any other largest
        first (by the counts of a mapping; as given for a plain list), ties by name. "(none)" is always last."""
        if self.ordered:
            return sorted(buckets, key=self.bucket_key)
        if isinstance(buckets, Mapping):
            counts = buckets
            return sorted(counts, key=lambda k: (k == UNKNOWN, -counts[k], k))
        given = list(dict.fromkeys(buckets))
        return [k for k in given if k != UNKNOWN] + [k for k in given if k == UNKNOWN]


DIMENSIONS: dict[str, Dimension] = {
    d.name: d
    for d in (
        Dimension("country", "Country"),
        Dimension("gender", "Gender", ("female", "male", "other", "unknown")),
        Dimension("age_band", "Age band", tuple(b[0] for b in AGE_BANDS) + (UNKNOWN,)),
        Dimension("industry_groups", "Industry", multi=True),
        Dimension("acquisition_source", "Acquisition source"),
        Dimension("churn_risk", "Churn risk", ("low", "medium", "high", UNKNOWN)),
        Dimension("spend_band", "Total spent", tuple(b[0] for b in SPEND_BANDS) + (UNKNOWN,)),
    )
}
YES, NO = "yes", "no"
# Built-in fields that chart well besides the seven: codes, whole numbers and dates (free text and derived numbers
# do not: too many distinct values, or already a band).
_CHARTABLE_BUILTINS = (
    "type", "language", "territory", "salesperson", "rating", "purchase_count", "birth_date", "acquisition_date",
    "last_purchase_date", "mailing_groups", "job_responsibilities", "exclude_from_segments",
)  # fmt: skip
_RULES = {"code": "value", "list": "value", "date": "year", "number": "magnitude", "boolean": "boolean"}


def dimension_of(name: str, fields: FieldRegistry | None = None) -> Dimension:
    """The chart dimension of a name: one of the seven fixed ones, or any code, list, number, date or yes/no field of
    the registry (custom fields included). KeyError for anything else."""
    if name in DIMENSIONS:
        return DIMENSIONS[name]
    spec = (fields or BUILTIN).get(name)
    if spec is None or spec.derived or spec.type not in _RULES:
        raise KeyError(name)
    rule = _RULES[spec.type]
    order = (YES, NO, UNKNOWN) if rule == "boolean" else ()
    return Dimension(name, spec.label, order, multi=spec.type == "list", rule=rule)


def chart_dimensions(fields: FieldRegistry | None = None) -> list[Dimension]:
    """Every dimension a chart can break down by: the seven defaults first, then other fields by label."""
    fields = fields or BUILTIN
    extra = [dimension_of(n, fields) for n in _CHARTABLE_BUILTINS]
    extra += [dimension_of(s.name, fields) for s in fields.custom if s.type in _RULES]
    return list(DIMENSIONS.values()) + sorted(extra, key=lambda d: d.title.lower())


def magnitude_label(value: float) -> str:
    """The power-of-ten band of a number: '< 0', '0', '0–1', '1–10', '10–100', '1,000–10,000'…"""
    if value < 0:
        return "< 0"
    if value == 0:
        return "0"
    if value < 1:
        return "0–1"
    k = min(int(math.floor(math.log10(value))), 14)
    return f"{10**k:,}–{10 ** (k + 1):,}"


_MAGNITUDE = re.compile(r"< 0|0|0–1|[0-9,]+–[0-9,]+")


def _magnitude_key(label: str) -> float:
    if label == "< 0":
        return -1.0
    head = label.split("–")[0].replace(",", "")
    try:
        return float(head) + (0.5 if label == "0–1" else 0.0)
    except ValueError:
        return math.inf


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
    # A spend never given is "not set", not 0.
    whens: list[Any] = [(contacts.c.total_spent.is_(None), sa.literal(UNKNOWN))]
    for label, lo, hi in SPEND_BANDS:
        cond = contacts.c.total_spent >= lo if hi is None else sa.and_(contacts.c.total_spent >= lo, contacts.c.total_spent < hi)
        whens.append((cond, sa.literal(label)))
    return case(*whens, else_=sa.literal(SPEND_BANDS[0][0]))


def _bucket_expr(
    dimension: str, today: dt.date, fields: FieldRegistry | None = None, value: Any = None
) -> sa.ColumnElement[Any]:
    """The bucket of `dimension` per contact row; `value` stands for a custom field's value when the caller joined
    its values itself (Spark, which plans a join better than a correlated sub-select)."""
    if dimension == "age_band":
        return _age_band_expr(today)
    if dimension == "spend_band":
        return _spend_expr()
    if dimension in ("country", "gender", "acquisition_source", "churn_risk"):
        # '' is an empty value, as in filters and in the in-memory charts: "not set", not a bucket of its own.
        return func.coalesce(func.nullif(contacts.c[dimension], ""), sa.literal(UNKNOWN))
    spec = (fields or BUILTIN).get(dimension)
    dim = dimension_of(dimension, fields)
    assert spec is not None
    col = value if value is not None else _value_expr(spec)
    if dim.rule == "boolean":
        truth = col == 1 if spec.custom else col.is_(True)
        return case((truth, sa.literal(YES)), else_=sa.literal(NO)) if not spec.custom else case(
            (col.is_(None), sa.literal(UNKNOWN)), (truth, sa.literal(YES)), else_=sa.literal(NO)
        )
    if dim.rule == "year":
        return func.coalesce(sa.cast(sa.extract("year", col), sa.Integer).cast(sa.String), sa.literal(UNKNOWN))
    if dim.rule == "magnitude":
        whens: list[Any] = [(col.is_(None), sa.literal(UNKNOWN)), (col < 0, sa.literal("< 0")),
                            (col == 0, sa.literal("0")), (col < 1, sa.literal("0–1"))]
        for k in range(14):
            whens.append((col < 10 ** (k + 1), sa.literal(f"{10**k:,}–{10 ** (k + 1):,}")))
        return case(*whens, else_=sa.literal(f"{10**14:,}–{10**15:,}"))
    return func.coalesce(func.nullif(col, ""), sa.literal(UNKNOWN))


def _value_expr(spec: FieldSpec) -> Any:
    """A field's value per contact row: its column, or a custom field's value row (a correlated sub-select)."""
    if not spec.custom:
        return contacts.c[spec.name]
    cv = custom_values
    col = {"number": cv.c.num, "boolean": cv.c.num, "date": cv.c.day}.get(spec.type, cv.c.txt)
    return (
        select(col)
        .where(cv.c.field_id == spec.custom_id, cv.c.contact_id == contacts.c.id)
        .scalar_subquery()
    )


def distribution_sql(
    conn: Connection, ids: Select[Any], dimension: str, *, today: dt.date | None = None
) -> Distribution:
    """Bucket counts of `dimension` over the contacts whose ids `ids` selects, computed by the database.

    Two queries per dimension: the plain reference the tests hold `flagged_distributions` (what previews use) to."""
    today = today or dt.date.today()
    fields = load_fields(conn)
    total = int(conn.execute(select(func.count()).select_from(ids.subquery())).scalar_one())
    if dimension_of(dimension, fields).multi:
        kind = _code_kind(dimension, fields)
        stmt = (
            select(codes.c.code, func.count())
            .where(codes.c.kind == kind, codes.c.contact_id.in_(ids))
            .group_by(codes.c.code)
        )
        counts = {str(k): int(v) for k, v in conn.execute(stmt)}
        with_any = int(
            conn.execute(
                select(func.count(sa.distinct(codes.c.contact_id))).where(
                    codes.c.kind == kind, codes.c.contact_id.in_(ids)
                )
            ).scalar_one()
        )
        if total - with_any:
            counts[UNKNOWN] = total - with_any
    else:
        bucket = _bucket_expr(dimension, today, fields).label("bucket")
        stmt = select(bucket, func.count()).where(contacts.c.id.in_(ids)).group_by(bucket)
        counts = {str(k): int(v) for k, v in conn.execute(stmt)}
    return Distribution(dimension, _ordered(dimension, counts, fields), total)


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
    fields = load_fields(conn)
    sums = [func.coalesce(func.sum(f), 0) for f in flags]
    single = [d for d in dimensions if not dimension_of(d, fields).multi]
    counts: list[dict[str, dict[str, int]]] = [{d: {} for d in dimensions} for _ in flags]
    if single:
        exprs = [_bucket_expr(d, today, fields) for d in single]
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
        if not dimension_of(d, fields).multi:
            continue
        # One pass over the contacts' codes: per code the flagged rows, and, marking each contact's first code row,
        # how many flagged contacts have any code at all (the rest are the "(none)" bucket).
        joined = frm.join(codes, sa.and_(codes.c.contact_id == contacts.c.id, codes.c.kind == _code_kind(d, fields)))
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
        (totals[k], {d: Distribution(d, _ordered(d, counts[k][d], fields), totals[k]) for d in dimensions})
        for k in range(len(flags))
    ]


def _code_kind(dimension: str, fields: FieldRegistry) -> str:
    spec = fields.get(dimension)
    return spec.code_kind if spec is not None else dimension


def _ordered(dimension: str, counts: dict[str, int], fields: FieldRegistry | None = None) -> dict[str, int]:
    """Counts in their dimension's chart order (`Dimension.arrange`). Without the registry a custom dimension is
    recognised by its buckets: yes/no, years, number bands; else largest first."""
    try:
        dim = dimension_of(dimension, fields)
    except KeyError:
        dim = _sniffed(dimension, counts)
    return {k: counts[k] for k in dim.arrange(counts)}


def _sniffed(dimension: str, counts: dict[str, int]) -> Dimension:
    """A dimension the registry was not asked about, told from its buckets."""
    labels = [k for k in counts if k != UNKNOWN]
    if labels and set(labels) <= {YES, NO}:
        return Dimension(dimension, dimension, (YES, NO, UNKNOWN), rule="boolean")
    if labels and all(k.isdigit() and len(k) == 4 for k in labels):
        return Dimension(dimension, dimension, rule="year")
    if labels and all(_MAGNITUDE.fullmatch(k) for k in labels):
        return Dimension(dimension, dimension, rule="magnitude")
    return Dimension(dimension, dimension, rule="value")


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
