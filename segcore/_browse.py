"""Read-only queries the dashboard pages need: contacts, one contact, a segment's members, value counts.

Everything here reads, pages in SQL and binds every user value: a page never loads a whole table to show fifty
rows, and never builds SQL from text. Field names come from the whitelist in `_fields`, never from the user.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, func, select

from ._dates import age_on
from ._db import Database
from ._errors import FilterError, NotFoundError
from ._filter_tree import Node
from ._fold import fold, folded, in_code_point_order
from ._models import (
    Contact,
    ContactCode,
    CustomValue,
    Interaction,
    ProfileAnswer,
    Segment,
    SegmentAction,
    SegmentMember,
    SourceContact,
    table_of,
)
from ._segment_rows import segment_row
from ._settings import read_setting
from ._snapshot import data_version
from ._stats import UNKNOWN, _bucket_expr
from .evaluation import StepPreview, evaluator_for, source_for
from .fields import LIST_FIELDS, load_fields

__all__ = [
    "BROWSE_COLUMNS",
    "ContactDetail",
    "Page",
    "SEARCH_COUNT_CAP",
    "contact_count",
    "contact_detail",
    "contacts_by_ids",
    "data_token",
    "excluded_count",
    "find_contacts",
    "minimum_segment_size",
    "number_bounds",
    "search_contacts",
    "segment_members_page",
    "split_values",
    "value_counts",
]

contacts = Contact.__table__
members = SegmentMember.__table__
segments = Segment.__table__
actions = SegmentAction.__table__
codes = ContactCode.__table__
answers = ProfileAnswer.__table__
interactions = Interaction.__table__
custom_values = CustomValue.__table__

# The columns a contacts table shows, in order: enough to recognise a contact at a glance.
BROWSE_COLUMNS = (
    "contact_no", "type", "name", "company_no", "email", "city", "country", "gender", "birth_date",
    "acquisition_source", "churn_risk", "total_spent",
)  # fmt: skip
MAX_PAGE = 500
# A search counts its matches up to this many: past it the page says "1,000+" and asks for a narrower search.
# Counting every match of a common word over a million contacts costs seconds; this keeps a search well under one.
SEARCH_COUNT_CAP = 1_000
# Columns searched by the free-text box of the contacts and members tables.
_SEARCHED = ("contact_no", "name", "email", "city")
_VALUE_SPLIT = re.compile(r"[\s,;]+")


@dataclass(frozen=True)
class Page:
    """One page of rows (dicts keyed by column) out of `total` matching rows."""

    rows: list[dict[str, Any]]
    total: int
    offset: int
    limit: int
    capped: bool = False  # True when a search found more than SEARCH_COUNT_CAP matches: `total` is the cap

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.limit)) if self.limit else 1


@dataclass(frozen=True)
class ContactDetail:
    """One contact as the Contacts page shows it."""

    fields: dict[str, Any]
    lists: dict[str, list[str]]
    profile: list[dict[str, str]]
    memberships: list[dict[str, Any]]
    interactions: list[dict[str, Any]]
    interactions_total: int
    age: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------- helpers


def _limit(limit: int) -> int:
    return max(1, min(int(limit), MAX_PAGE))


def _search_cond(query: str) -> sa.ColumnElement[bool] | None:
    """A match anywhere in the searched columns, ignoring case and accents (e-mails: case); `%`, `_` are literal."""
    q = (query or "").strip()
    if not q:
        return None
    # E-mails are stored lower-case and matched as such (an address is not a name: no accent folding).
    parts = [contacts.c.email.contains(q.lower(), autoescape=True)]
    parts += [folded(contacts.c[c]).contains(fold(q), autoescape=True) for c in _SEARCHED if c != "email"]
    return sa.or_(*parts)


def _cols(columns: Sequence[str]) -> list[sa.ColumnElement[Any]]:
    unknown = [c for c in columns if c not in contacts.c]
    if unknown:
        raise FilterError(f"unknown contact column: {', '.join(unknown)}")
    return [contacts.c[c] for c in columns]


def _rows(conn: Connection, stmt: sa.Select[Any]) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(stmt).mappings()]


def _segment_id(conn: Connection, no: str) -> tuple[int, int]:
    row = conn.execute(select(segments.c.id, segments.c.size).where(segments.c.no == no)).first()
    if row is None:
        raise NotFoundError(f"no segment {no!r}")
    return int(row.id), int(row.size)


def _search_page(
    conn: Connection,
    ids: sa.Select[Any],
    full: sa.Select[Any],
    rows_of: Any,
    offset: int,
    limit: int,
) -> Page:
    """One page of a search, counting matches only up to SEARCH_COUNT_CAP.

    One pass collects the ids of up to cap+1 matches in display order. Few matches: they are the count and the page
    is cut from them (a rare word costs one scan, not a count and a page). Many: the page comes straight from an
    OFFSET/LIMIT query, which stops early because matches are frequent, and the total is reported as capped."""
    found = list(conn.execute(ids.limit(SEARCH_COUNT_CAP + 1)).scalars())
    if len(found) <= SEARCH_COUNT_CAP:
        page_ids = found[offset : offset + limit]
        rows = _rows(conn, rows_of(page_ids)) if page_ids else []
        return Page(rows, len(found), offset, limit)
    return Page(_rows(conn, full.offset(offset).limit(limit)), SEARCH_COUNT_CAP, offset, limit, capped=True)


# ----------------------------------------------------------------------------------------------- small reads


def data_token(db: Database) -> str:
    """Changes whenever contacts, codes, answers or interactions change: a cache key for value counts."""
    with db.read() as conn:
        return data_version(conn)


def contact_count(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(contacts)).scalar_one())


def minimum_segment_size(db: Database) -> int:
    """The setting under which a segment is flagged small (SPEC §3; default 50)."""
    with db.read() as conn:
        return read_setting(conn, "minimum_segment_size")


# ----------------------------------------------------------------------------------------------- contacts


def search_contacts(
    db: Database,
    query: str = "",
    *,
    offset: int = 0,
    limit: int = 50,
    contact_type: str | None = None,
    columns: Sequence[str] = BROWSE_COLUMNS,
) -> Page:
    """A page of contacts, sorted by number, whose number, name, e-mail or city contains `query`."""
    limit = _limit(limit)
    offset = max(0, int(offset))
    conds = [c for c in (_search_cond(query),) if c is not None]
    if contact_type:
        conds.append(contacts.c.type == contact_type)
    cols = _cols(columns)
    with db.read() as conn:
        if not (query or "").strip():
            total = int(conn.execute(select(func.count()).select_from(contacts).where(*conds)).scalar_one())
            stmt = select(*cols).where(*conds).order_by(contacts.c.contact_no).offset(offset).limit(limit)
            return Page(_rows(conn, stmt), total, offset, limit)
        ids = select(contacts.c.id).where(*conds).order_by(contacts.c.contact_no)
        full = select(*cols).where(*conds).order_by(contacts.c.contact_no)
        return _search_page(conn, ids, full, lambda page_ids: select(*cols).where(contacts.c.id.in_(page_ids))
                            .order_by(contacts.c.contact_no), offset, limit)


def contacts_by_ids(db: Database, ids: Sequence[int], columns: Sequence[str] = BROWSE_COLUMNS) -> list[dict[str, Any]]:
    """The contacts with these row ids, in the order given (preview samples); unknown ids are skipped."""
    wanted = [int(i) for i in ids][:MAX_PAGE]
    if not wanted:
        return []
    with db.read() as conn:
        rows = conn.execute(select(contacts.c.id, *_cols(columns)).where(contacts.c.id.in_(wanted))).mappings()
        by_id = {r["id"]: {c: r[c] for c in columns} for r in rows}
    return [by_id[i] for i in wanted if i in by_id]


def preview_samples(
    db: Database, no: str, preview: StepPreview, columns: Sequence[str] = BROWSE_COLUMNS
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows of who would enter and who would leave in a step's preview: contacts of this database, or of the
    segment's source (read from Spark in one small job)."""
    if not (preview.entering_nos or preview.leaving_nos):
        return contacts_by_ids(db, preview.entering, columns), contacts_by_ids(db, preview.leaving, columns)
    with db.read() as conn:
        source = source_for(conn, segment_row(conn, no).source)
    found = source.contact_rows([*preview.entering_nos, *preview.leaving_nos], columns)

    def rows(numbers: Sequence[str]) -> list[dict[str, Any]]:
        return [{c: found.get(n, {}).get(c) for c in columns} | {"contact_no": n} for n in numbers]

    return rows(preview.entering_nos), rows(preview.leaving_nos)


FIND_COLUMNS = ("contact_no", "name", "email", "type", "city")
MAX_FOUND = 200


def find_contacts(db: Database, query: str, *, limit: int = 20) -> list[dict[str, Any]]:
    """Contacts a person means by `query`: a contact number (any case), a name or an e-mail, best matches first.

    Matches, in this order: the number itself (case-insensitive), the e-mail itself, then every contact whose name
    contains the query (case and accents ignored), whose e-mail contains it, or whose number contains it, by name.
    Each match is a dict of FIND_COLUMNS. For "why is this contact here?", where a user types what they know."""
    q = (query or "").strip()
    if not q:
        return []
    limit = max(1, min(int(limit), MAX_FOUND))
    key = fold(q)
    email = q.lower()
    number_exact = folded(contacts.c.contact_no) == key
    email_exact = contacts.c.email == email
    rank = sa.case((number_exact, 0), (email_exact, 1), else_=2)
    stmt = (
        select(*_cols(FIND_COLUMNS))
        .where(
            sa.or_(
                number_exact,
                email_exact,
                folded(contacts.c.name).contains(key, autoescape=True),
                contacts.c.email.contains(email, autoescape=True),
                folded(contacts.c.contact_no).contains(key, autoescape=True),
            )
        )
        # Code-point order of the folded name: the same order on every database, whatever its collation.
        .order_by(
            rank, in_code_point_order(folded(contacts.c.name)), in_code_point_order(contacts.c.contact_no)
        )
        .limit(limit)
    )
    with db.read() as conn:
        return _rows(conn, stmt)


def excluded_count(db: Database, node: Node, *, today: dt.date | None = None) -> int:
    """How many contacts the filter matches that are flagged `exclude_from_segments`.

    An Add (without "ignore exclusion") leaves them out, so they are the gap between a value's count in the Builder
    ("FR (4,339)", every contact) and the preview's match count ("4,265 match")."""
    return evaluator_for(db).count(node, today=today or dt.date.today()).excluded


def contact_detail(db: Database, contact_no: str, *, today: dt.date | None = None, max_interactions: int = 200) -> ContactDetail:
    """One contact's fields, list codes, profile answers, segment memberships and latest interactions."""
    today = today or dt.date.today()
    with db.read() as conn:
        row = conn.execute(select(contacts).where(contacts.c.contact_no == (contact_no or "").strip())).mappings().first()
        if row is None:
            raise NotFoundError(f"no contact {contact_no!r}")
        cid = row["id"]
        fields = {k: v for k, v in row.items() if k not in ("id", "org_id", "attributes")}
        registry = load_fields(conn)
        # Custom fields by their name, like the built-in ones: values as typed, lists under the field name.
        by_kind = {s.code_kind: s.name for s in registry.custom if s.type == "list"}
        by_id = {s.custom_id: s for s in registry.custom if s.type != "list"}
        cv = custom_values
        for fid, num, txt, day in conn.execute(
            select(cv.c.field_id, cv.c.num, cv.c.txt, cv.c.day).where(cv.c.contact_id == cid)
        ).all():
            spec = by_id.get(fid)
            if spec is None:
                continue
            if spec.type == "date":
                fields[spec.name] = _as_date(day) if day is not None else None
            elif spec.type == "boolean":
                fields[spec.name] = None if num is None else num == 1
            elif spec.type == "number":
                fields[spec.name] = int(num) if spec.integer and num is not None else num
            else:
                fields[spec.name] = txt
        lists: dict[str, list[str]] = {k: [] for k in LIST_FIELDS}
        for kind, code in conn.execute(
            select(codes.c.kind, codes.c.code).where(codes.c.contact_id == cid).order_by(codes.c.kind, codes.c.code)
        ).all():
            lists.setdefault(by_kind.get(kind, kind), []).append(code)
        profile = _rows(
            conn,
            select(answers.c.questionnaire, answers.c.answer)
            .where(answers.c.contact_id == cid)
            .order_by(answers.c.questionnaire, answers.c.answer),
        )
        memberships = _rows(
            conn,
            select(
                segments.c.no.label("segment_no"),
                segments.c.description,
                segments.c.status,
                members.c.added_seq.label("step"),
                actions.c.kind.label("step_kind"),
                actions.c.description.label("step_description"),
            )
            .join(members, members.c.segment_id == segments.c.id)
            .outerjoin(actions, sa.and_(actions.c.segment_id == segments.c.id, actions.c.seq == members.c.added_seq))
            .where(members.c.contact_id == cid)
            .order_by(segments.c.no),
        )
        inter_cols = [interactions.c[c] for c in (
            "date", "template", "campaign_no", "segment_no", "evaluation", "salesperson", "cost", "duration_min",
            "cancelled",
        )]  # fmt: skip
        inter = _rows(
            conn,
            select(*inter_cols)
            .where(interactions.c.contact_id == cid)
            .order_by(interactions.c.date.desc(), interactions.c.id.desc())
            .limit(max(1, int(max_interactions))),
        )
        n_inter = int(
            conn.execute(select(func.count()).select_from(interactions).where(interactions.c.contact_id == cid)).scalar_one()
        )
    birth = fields.get("birth_date")
    age = _age(birth, today) if birth is not None else None
    return ContactDetail(
        fields=fields,
        lists=lists,
        profile=profile,
        memberships=memberships,
        interactions=inter,
        interactions_total=n_inter,
        age=age,
        extra=dict(row["attributes"] or {}),
    )


# ----------------------------------------------------------------------------------------------- members


def segment_members_page(
    db: Database,
    no: str,
    query: str = "",
    *,
    offset: int = 0,
    limit: int = 50,
    columns: Sequence[str] = BROWSE_COLUMNS,
) -> Page:
    """A page of a segment's members with their contact fields and the step that brought each in (`added_seq`).

    Ordered by contact row id, which is the members table's own key order: the database walks the index and stops
    after the page, instead of sorting hundreds of thousands of members for every page."""
    limit = _limit(limit)
    offset = max(0, int(offset))
    search = _search_cond(query)
    with db.read() as conn:
        row = segment_row(conn, no)
        if row.source is not None:
            return _source_members_page(conn, row, query, offset, limit, columns)
        seg_id, size = int(row.id), int(row.size)
        base = select(*_cols(columns), members.c.added_seq).join(members, members.c.contact_id == contacts.c.id)
        base = base.where(members.c.segment_id == seg_id)
        if search is None:
            # The engine keeps `size` in the same transaction as the members: no COUNT(*) over 300k rows.
            stmt = base.order_by(members.c.contact_id).offset(offset).limit(limit)
            return Page(_rows(conn, stmt), size, offset, limit)
        ids = (
            select(members.c.contact_id)
            .join(contacts, members.c.contact_id == contacts.c.id)
            .where(members.c.segment_id == seg_id, search)
            .order_by(members.c.contact_id)
        )
        full = base.where(search).order_by(members.c.contact_id)
        return _search_page(conn, ids, full, lambda page_ids: base.where(members.c.contact_id.in_(page_ids))
                            .order_by(members.c.contact_id), offset, limit)


def _source_members_page(
    conn: Connection, row: sa.Row[Any], query: str, offset: int, limit: int, columns: Sequence[str]
) -> Page:
    """A page of the members of a segment over a source: numbers and steps from here, their fields from Spark (one
    small job for the page). A search looks for the text in the contact numbers."""
    numbers = table_of(SourceContact)
    base = (
        select(numbers.c.contact_no, members.c.added_seq)
        .join(numbers, numbers.c.id == members.c.contact_id)
        .where(members.c.segment_id == row.id)
    )
    q = (query or "").strip()
    total = int(row.size)
    if q:
        base = base.where(folded(numbers.c.contact_no).contains(fold(q), autoescape=True))
        total = int(conn.execute(select(func.count()).select_from(base.subquery())).scalar_one())
    page = conn.execute(base.order_by(members.c.contact_id.desc()).offset(offset).limit(limit)).all()
    fields = source_for(conn, row.source).contact_rows([p.contact_no for p in page], columns)
    rows = [
        {**{c: None for c in columns}, **fields.get(p.contact_no, {}), "contact_no": p.contact_no, "added_seq": p.added_seq}
        for p in page
    ]
    return Page([{k: r[k] for k in (*columns, "added_seq")} for r in rows], total, offset, limit)


# ----------------------------------------------------------------------------------------------- value counts


def value_counts(
    db: Database,
    field_name: str,
    relation: str | None = None,
    *,
    questionnaire: str | None = None,
    limit: int = 200,
    today: dt.date | None = None,
    source: str | None = None,
) -> list[tuple[str, int]]:
    """Each stored value of a code or list field with its number of contacts (or related records), largest first.

    For the Builder's multiselects (`FR (4,210)`). Interactions count records (cancelled ones excluded, as filters
    ignore them); profile answers count contacts, optionally of one questionnaire. Fixed choices with no contact
    are listed with 0. With `source`, the values of that contact source, counted in Spark."""
    limit = max(1, min(int(limit), 10_000))
    with db.read() as conn:
        fields, run = _reader(conn, source)
        spec = fields.get(field_name, relation)
        if spec is None:
            where = f"{relation}." if relation else ""
            raise FilterError(f"unknown field {where}{field_name}")
        if spec.type not in ("code", "list", "text"):
            raise FilterError(f"{spec.label} has no list of values")
        if relation is None and field_name == "age_band":
            # The band rule lives once, in _stats; only the grouping is done here.
            band = _bucket_expr("age_band", today or dt.date.today()).label("band")
            rows = run(select(band, func.count()).group_by(band))
            counts = [(str(k), int(v)) for k, v in rows if k != UNKNOWN]
            return _with_choices(counts, spec.choices)
        if relation is None and spec.type == "list":
            n = func.count().label("n")
            stmt = select(codes.c.code, n).where(codes.c.kind == spec.code_kind).group_by(codes.c.code)
        elif relation is None and spec.custom:
            col = custom_values.c.txt
            n = func.count().label("n")
            stmt = (
                select(col, n)
                .where(custom_values.c.field_id == spec.custom_id, col.is_not(None), col != "")
                .group_by(col)
            )
        elif relation is None:
            col = contacts.c[field_name]
            n = func.count().label("n")
            stmt = select(col, n).where(col.is_not(None), col != "").group_by(col)
        elif relation == "interactions":
            col = interactions.c[field_name]
            n = func.count().label("n")
            stmt = (
                select(col, n)
                .where(col.is_not(None), col != "", interactions.c.cancelled.is_(False))
                .group_by(col)
            )
        elif relation == "profile":
            col = answers.c[field_name]
            n = func.count(sa.distinct(answers.c.contact_id)).label("n")
            stmt = select(col, n).group_by(col)
            if questionnaire:
                stmt = stmt.where(answers.c.questionnaire == questionnaire.strip().upper())
        else:  # pragma: no cover - get_field already refused other relations
            raise FilterError(f"unknown relation {relation}")
        stmt = stmt.order_by(n.desc(), stmt.selected_columns[0]).limit(limit)
        counts = [(str(k), int(v)) for k, v in run(stmt)]
    return _with_choices(counts, spec.choices)


def _with_choices(counts: list[tuple[str, int]], choices: Sequence[str]) -> list[tuple[str, int]]:
    """Fixed choices keep their order (gender, churn risk, age band) and show up even at 0."""
    if not choices:
        return counts
    found = dict(counts)
    return [(c, found.get(c, 0)) for c in choices] + [(k, v) for k, v in counts if k not in choices]



def number_bounds(
    db: Database, field_name: str, *, today: dt.date | None = None, source: str | None = None
) -> tuple[float, float] | None:
    """The smallest and largest value of a number field over all contacts (slider ends), or None when all are empty;
    of the contacts of `source` (in Spark) when one is named.

    `age` and `days_since_last_purchase` are derived from their dates here, with the same whole-year and whole-day
    arithmetic the filters use."""
    today = today or dt.date.today()
    with db.read() as conn:
        fields, run = _reader(conn, source)
        spec = fields.get(field_name)
        if spec is None or spec.type != "number":
            raise FilterError(f"{field_name} is not a number field")
        if spec.custom:
            cv = custom_values
            [(lo, hi)] = run(select(func.min(cv.c.num), func.max(cv.c.num)).where(cv.c.field_id == spec.custom_id))
            return None if lo is None else (float(lo), float(hi))
        if field_name == "age":
            [(lo_d, hi_d)] = run(select(func.min(contacts.c.birth_date), func.max(contacts.c.birth_date)))
            if lo_d is None:
                return None
            # The oldest contact has the earliest birth date.
            return float(_age(hi_d, today)), float(_age(lo_d, today))
        if field_name == "days_since_last_purchase":
            [(lo_d, hi_d)] = run(
                select(func.min(contacts.c.last_purchase_date), func.max(contacts.c.last_purchase_date))
            )
            if lo_d is None:
                return None
            return float((today - _as_date(hi_d)).days), float((today - _as_date(lo_d)).days)
        col = contacts.c[field_name]
        [(lo, hi)] = run(select(func.min(col), func.max(col)))
    if lo is None:
        return None
    return float(lo), float(hi)


def _reader(conn: Connection, source: str | None) -> tuple[Any, Callable[[sa.Select[Any]], Sequence[Any]]]:
    """The field registry and a way to run a statement: this database's, or the contact source's (in Spark)."""
    if source is None:
        return load_fields(conn), lambda stmt: conn.execute(stmt).all()
    spark = source_for(conn, source)
    return spark.fields, spark.rows


def _as_date(value: Any) -> dt.date:
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


def _age(birth: Any, today: dt.date) -> int:
    return age_on(_as_date(birth), today)


def split_values(text: str) -> tuple[str, ...]:
    """Contact numbers as typed or pasted (spaces, commas, semicolons, new lines), in order, no repeats.

    Numbers keep their case: unlike e-mail addresses, contact numbers are exact keys."""
    return tuple(dict.fromkeys(t for t in _VALUE_SPLIT.split(text or "") if t))
