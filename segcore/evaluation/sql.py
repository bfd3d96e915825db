"""The SQL backend: every question answered by the application database through SQLAlchemy (SQLite, PostgreSQL).

It is the reference the other backends are held to, the fallback when the contacts do not fit in memory, and the
one the engine's commit reads through (`StepSets`), inside its write transaction. All SQL here is SQLAlchemy
expressions with bound parameters.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Select, and_, delete, exists, func, insert, select

from .._db import Database
from .._errors import NotFoundError, UsageError
from .._filter_sql import compile_filter
from .._filter_tree import Node
from .._models import Contact, LoggedSegment, LoggedSegmentMember, SegmentMember, table_of
from .._segment_rows import member_ids_of, segment_row
from .._snapshot import data_version
from .._stats import Distribution, _ordered, flagged_distributions
from .._steps import FILTER_KINDS, ActionRequest, Preview
from .._words import plural
from ..fields import FieldRegistry, load_fields
from .base import FilterCount, MatchedSet, StepPreview

__all__ = ["SqlEvaluator", "StepScan", "clear_caches"]

contacts = table_of(Contact)
members = table_of(SegmentMember)

_values_meta = sa.MetaData()
# Per-connection scratch table for long value lists (10,000+ e-mails): binding them one by one in an IN list
# would hit parameter limits, so they are inserted as rows and joined.
_input_values = sa.Table(
    "segcore_input_values",
    _values_meta,
    sa.Column("v", sa.String(254), primary_key=True),
    prefixes=["TEMPORARY"],
)

_cache_lock = threading.Lock()
_members_cache: dict[tuple[str, int, int, str, dt.date, tuple[str, ...]], dict[str, Distribution]] = {}


def clear_caches() -> None:
    """Forget the cached member charts (tests that reset a database in place)."""
    with _cache_lock:
        _members_cache.clear()


@dataclass(frozen=True)
class StepScan:
    """The rows one step looks at, for one pass: `frm` WHERE `where`, with 0/1 columns `hit` (the filter matched)
    and `chg` (the step would add or remove the row's contact).

    An adding step scans its matched contacts (an outer join finds the members among them); a removing step scans
    the members (joined to their contacts) and tests the match per row. The sets are those of `changed_set`."""

    frm: sa.FromClause
    where: sa.ColumnElement[bool]
    hit: sa.ColumnElement[int]
    chg: sa.ColumnElement[int]


def _load_values(conn: Connection, values: Iterable[str]) -> sa.Table:
    _input_values.create(conn, checkfirst=True)
    conn.execute(delete(_input_values))
    rows = [{"v": v} for v in dict.fromkeys(values)]
    if rows:
        conn.execute(insert(_input_values), rows)
    return _input_values


def _org_grown(ids: Select[Any]) -> Select[Any]:
    """Every contact of the companies that `ids` touch, plus `ids` themselves (a contact with no company stands alone)."""
    orgs = select(contacts.c.org_id).where(contacts.c.id.in_(ids), contacts.c.org_id.is_not(None))
    return select(contacts.c.id).where(sa.or_(contacts.c.id.in_(ids), contacts.c.org_id.in_(orgs)))


def _count(conn: Connection, stmt: Select[Any]) -> int:
    return int(conn.execute(select(func.count()).select_from(stmt.subquery())).scalar_one())


def removal_condition(seg_id: int, request: ActionRequest, matched: Select[Any]) -> sa.ColumnElement[bool]:
    """Which member rows a removing step takes out: Refine keeps the matched, Reduce drops them."""
    cond = (
        members.c.contact_id.not_in(matched)
        if request.kind == "refine"
        else members.c.contact_id.in_(matched)
    )
    return and_(members.c.segment_id == seg_id, cond)


def changed_set(seg_id: int, request: ActionRequest, matched: Select[Any]) -> Select[Any]:
    """The contact ids the action would add (for adding kinds: matched, not yet members) or remove."""
    if request.adds:
        in_segment = exists().where(members.c.segment_id == seg_id, members.c.contact_id == contacts.c.id)
        return select(contacts.c.id).where(contacts.c.id.in_(matched), ~in_segment)
    return select(members.c.contact_id).where(removal_condition(seg_id, request, matched))


def step_scan(seg_id: int, request: ActionRequest, matched: Select[Any]) -> StepScan:
    """One pass over the rows a step looks at (see `StepScan`)."""
    if request.adds:
        # Every adding `matched` selects contacts.id FROM contacts (see matched_set): its WHERE is the match.
        m = members.alias("m")
        frm = contacts.outerjoin(m, and_(m.c.segment_id == seg_id, m.c.contact_id == contacts.c.id))
        where = matched.whereclause if matched.whereclause is not None else sa.true()
        return StepScan(frm, where, sa.literal(1), sa.case((m.c.contact_id.is_(None), 1), else_=0))
    frm = members.join(contacts, contacts.c.id == members.c.contact_id)
    if request.options.entire_companies or matched.whereclause is None:
        hit = sa.case((members.c.contact_id.in_(matched), 1), else_=0)
    else:
        # Scoped to the members already (see matched_set): its WHERE tests each member row in this same pass.
        hit = sa.case((matched.whereclause, 1), else_=0)
    return StepScan(frm, members.c.segment_id == seg_id, hit, 1 - hit if request.kind == "refine" else hit)


def _shifted(
    before: dict[str, Distribution], change: dict[str, Distribution], sign: int, fields: FieldRegistry
) -> dict[str, Distribution]:
    """Charts after a step: the members' charts plus (sign 1) or minus (-1) the charts of who enters or leaves."""
    out = {}
    for d, b in before.items():
        c = change[d]
        counts = {
            k: b.counts.get(k, 0) + sign * c.counts.get(k, 0) for k in dict.fromkeys([*b.counts, *c.counts])
        }
        out[d] = Distribution(
            d, _ordered(d, {k: v for k, v in counts.items() if v}, fields), b.total + sign * c.total
        )
    return out


class SqlEvaluator:
    """Answers in the application database: opens its own read transactions, or works in a caller's connection.

    Bound to a connection (the engine's write transaction, a drift replay's scratch), it reads what that
    transaction sees and caches nothing, since what it sees may be rolled back."""

    name = "sql"

    def __init__(self, db: Database | None = None, *, conn: Connection | None = None) -> None:
        if (db is None) == (conn is None):
            raise ValueError("give a database or a connection, not both")
        self._db = db
        self._conn = conn

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        if self._conn is not None:
            yield self._conn
        else:
            assert self._db is not None
            with self._db.read() as conn:
                yield conn

    # ------------------------------------------------------------------------------------------- step sets

    def matched_set(
        self,
        request: ActionRequest,
        *,
        today: dt.date | None,
        segment_id: int | None = None,
        exclusion: bool = True,
    ) -> MatchedSet:
        with self._reading() as conn:
            return _matched_set(conn, request, today=today, segment_id=segment_id, exclusion=exclusion)

    def removal_condition(
        self, segment_id: int, request: ActionRequest, matched: Select[Any]
    ) -> sa.ColumnElement[bool]:
        return removal_condition(segment_id, request, matched)

    def count_ids(self, ids: Select[Any]) -> int:
        with self._reading() as conn:
            return _count(conn, ids)

    # ------------------------------------------------------------------------------------------- reads

    def count(self, node: Node, *, today: dt.date) -> FilterCount:
        with self._reading() as conn:
            where = compile_filter(node, today=today, fields=load_fields(conn))
            flag = contacts.c.exclude_from_segments
            # The filter stays in WHERE, where the planner can turn related-record tests into semi-joins (inside a
            # CASE they would run once per contact); the flag is tallied over the rows it keeps.
            flagged = func.coalesce(func.sum(sa.case((flag.is_(True), 1), else_=0)), 0)
            kept, excluded = conn.execute(
                select(func.count() - flagged, flagged).select_from(contacts).where(where)
            ).one()
            total = conn.execute(select(func.count()).select_from(contacts)).scalar_one()
        return FilterCount(int(kept), int(excluded), int(total))

    def preview_step(
        self, no: str, request: ActionRequest, *, today: dt.date, dimensions: Sequence[str], sample: int
    ) -> StepPreview:
        start = time.perf_counter()
        with self._reading() as conn:
            row = segment_row(conn, no)
            excluding = request.kind == "add" and request.excluding
            # An Add scans C' taken without the exclusion and flags the excluded rows, so the same pass counts who
            # the exclusion leaves out (the gap between a value's count and the preview) at no extra scan.
            found = _matched_set(conn, request, today=today, segment_id=row.id, exclusion=not excluding)
            matched = found.ids
            scan = step_scan(row.id, request, matched)
            left_out: sa.ColumnElement[int] = sa.literal(0)
            if excluding:
                left_out = sa.case((contacts.c.exclude_from_segments.is_(True), 1), else_=0)
                scan = replace(scan, hit=scan.hit * (1 - left_out), chg=scan.chg * (1 - left_out))
            # One pass gives the counts and the charts of who enters or leaves (and, for a removing step, of the
            # members too, since it scans them).
            (_, rows), (n_hit, _), (n_chg, chg), (n_left_out, _) = flagged_distributions(
                conn,
                scan.frm,
                scan.where,
                [sa.literal(1), scan.hit, scan.chg, left_out],
                dimensions,
                today=today,
            )
            fields = load_fields(conn)
            if request.adds:
                before = self._members_charts(conn, row.id, row.version, dimensions, today)
                after = _shifted(before, chg, 1, fields)
            else:
                before = rows
                after = _shifted(before, chg, -1, fields)
            # A sample of who changes; with no one changing there is nothing to look for (and no scan to wait on).
            sample_ids = (
                tuple(
                    int(i)
                    for i in conn.execute(
                        select(contacts.c.id)
                        .select_from(scan.frm)
                        .where(scan.where, scan.chg == 1)
                        .limit(sample)
                    ).scalars()
                )
                if n_chg and sample
                else ()
            )
            if not request.adds and request.kind not in ("refine", "reduce"):
                # Remove contacts: "matched" counts the named contacts, members or not.
                n_hit = _count(conn, matched)
            skipped = n_left_out if excluding else _skipped_excluded(conn, request, today, n_hit)
        return StepPreview(
            counts=Preview.of(request, int(row.size), n_hit, n_chg, found.unmatched, skipped),
            before=before,
            after=after,
            entering=sample_ids if request.adds else (),
            leaving=() if request.adds else sample_ids,
            backend=self.name,
            elapsed_ms=(time.perf_counter() - start) * 1000,
        )

    def reference_counts(self, no: str, request: ActionRequest, *, today: dt.date | None) -> Preview:
        """The counts of a pending step by plain set queries, one per number: the reference the one-pass preview
        (and every other backend) is tested against."""
        with self._reading() as conn:
            row = segment_row(conn, no)
            found = _matched_set(conn, request, today=today, segment_id=row.id)
            matched = found.ids
            if request.kind in ("refine", "reduce"):
                n_matched = _count(conn, member_ids_of(row.id).where(members.c.contact_id.in_(matched)))
            else:
                n_matched = _count(conn, matched)
            n_change = _count(conn, changed_set(row.id, request, matched))
            skipped = _skipped_excluded(conn, request, today, n_matched)
        return Preview.of(request, int(row.size), n_matched, n_change, found.unmatched, skipped)

    def segment_distributions(
        self, no: str, *, today: dt.date, dimensions: Sequence[str]
    ) -> dict[str, Distribution]:
        with self._reading() as conn:
            row = segment_row(conn, no)
            return self._members_charts(conn, row.id, row.version, dimensions, today)

    def all_distributions(self, *, today: dt.date, dimensions: Sequence[str]) -> dict[str, Distribution]:
        with self._reading() as conn:
            [(_, dists)] = flagged_distributions(
                conn, contacts, sa.true(), [sa.literal(1)], tuple(dimensions), today=today
            )
        return dists

    def overlap(self, segment_ids: Sequence[int]) -> dict[tuple[int, int], int]:
        ids = list(dict.fromkeys(segment_ids))
        if not ids:
            return {}
        a, b = members.alias("a"), members.alias("b")
        # Each unordered pair once (a.segment_id <= b.segment_id), in one statement; the diagonal is the size.
        stmt = (
            select(a.c.segment_id, b.c.segment_id, func.count())
            .select_from(a.join(b, a.c.contact_id == b.c.contact_id))
            .where(a.c.segment_id.in_(ids), b.c.segment_id.in_(ids), a.c.segment_id <= b.c.segment_id)
            .group_by(a.c.segment_id, b.c.segment_id)
        )
        with self._reading() as conn:
            return {(int(x), int(y)): int(c) for x, y, c in conn.execute(stmt)}

    def _members_charts(
        self, conn: Connection, seg_id: int, version: int, dims: Sequence[str], today: dt.date
    ) -> dict[str, Distribution]:
        """The charts of a segment's members, computed by the database once per segment and data version."""
        if not dims:
            return {}
        key = (self._db.url, seg_id, version, data_version(conn), today, tuple(dims)) if self._db else None
        hit = _members_cache.get(key) if key is not None else None
        if hit is None:
            frm = members.join(contacts, contacts.c.id == members.c.contact_id)
            [(_, hit)] = flagged_distributions(
                conn, frm, members.c.segment_id == seg_id, [sa.literal(1)], dims, today=today
            )
            if key is not None:
                with _cache_lock:
                    if len(_members_cache) > 256:
                        _members_cache.clear()
                    _members_cache[key] = hit
        return hit


# ------------------------------------------------------------------------------------------------ C' of a step


def _matched_set(
    conn: Connection,
    request: ActionRequest,
    *,
    today: dt.date | None,
    exclusion: bool = True,
    segment_id: int | None = None,
) -> MatchedSet:
    """The contacts C' the action works with, as a SELECT of contact ids, and the inputs nothing matched.

    For Refine and Reduce, C' is taken among the members of `segment_id` (only they can leave), unless entire
    companies are asked for: then a non-member colleague's match counts too. `exclusion=False` leaves flagged
    contacts in (to count how many the exclusion skipped)."""
    unmatched: tuple[str, ...] = ()
    opts = request.options
    if request.kind in ("refine", "reduce") and segment_id is not None and not opts.entire_companies:
        assert request.filter is not None
        scoped = (
            select(members.c.contact_id)
            .join(contacts, contacts.c.id == members.c.contact_id)
            .where(
                members.c.segment_id == segment_id,
                compile_filter(request.filter, today=today, fields=load_fields(conn)),
            )
        )
        return MatchedSet(scoped)
    if request.kind in FILTER_KINDS:
        assert request.filter is not None
        base = select(contacts.c.id).where(
            compile_filter(request.filter, today=today, fields=load_fields(conn))
        )
    elif request.kind in ("add_contacts", "remove_contacts"):
        vals = _load_values(conn, request.contact_nos)
        base = select(contacts.c.id).where(contacts.c.contact_no.in_(select(vals.c.v)))
        found = set(
            conn.execute(
                select(contacts.c.contact_no).where(contacts.c.contact_no.in_(select(vals.c.v)))
            ).scalars()
        )
        missing = tuple(n for n in dict.fromkeys(request.contact_nos) if n not in found)
        if missing:
            shown = ", ".join(missing[:10]) + (" …" if len(missing) > 10 else "")
            raise NotFoundError(f"{plural(len(missing), 'contact number')} not found: {shown}")
    elif request.kind == "add_emails":
        emails = tuple(dict.fromkeys(e.strip().lower() for e in request.emails if e.strip()))
        vals = _load_values(conn, emails)
        base = select(contacts.c.id).where(contacts.c.email.in_(select(vals.c.v)))
        found = set(
            conn.execute(select(contacts.c.email).where(contacts.c.email.in_(select(vals.c.v)))).scalars()
        )
        unmatched = tuple(e for e in emails if e not in found)
    else:  # reuse_segment
        assert request.source_segment_no is not None
        source = segment_row(conn, request.source_segment_no)
        if source.source is not None:
            raise UsageError(
                f"segment {source.no} is built over the source {source.source}, not over this database's contacts"
            )
        base = select(contacts.c.id).where(contacts.c.id.in_(reusable_members(source.id)))

    if request.kind in ("refine", "reduce"):
        return MatchedSet(_org_grown(base) if opts.entire_companies else base, unmatched, from_contacts=True)

    if request.kind == "add":
        if opts.contact_type is not None:
            # Persons only / companies only restrict C itself, before the company options widen it.
            base = base.where(contacts.c.type == opts.contact_type)
        parts = [base]
        if opts.expand_companies:
            parts.append(_org_grown(base))
        if opts.related_companies:
            person_orgs = select(contacts.c.org_id).where(
                contacts.c.id.in_(base), contacts.c.type == "person", contacts.c.org_id.is_not(None)
            )
            parts.append(select(contacts.c.id).where(contacts.c.id.in_(person_orgs)))
        if len(parts) > 1:
            union = sa.union(*parts).subquery()
            base = select(contacts.c.id).where(contacts.c.id.in_(select(union.c.id)))
    if request.excluding and exclusion:
        # Every adding base above selects contacts.id FROM contacts, so the exclusion is one more WHERE term.
        base = base.where(contacts.c.exclude_from_segments.is_(False))
    return MatchedSet(base, unmatched, from_contacts=True)


def reusable_members(segment_id: int) -> Select[Any]:
    """The member ids of a segment that Reuse segment (and copy) may take: all but a logged control group.

    A logged segment's control group was not contacted: reusing (or copying) its members takes the contacted ones
    only, or the control group would be mailed by the next campaign and the test would be void."""
    logged_t, logged_mem = table_of(LoggedSegment), table_of(LoggedSegmentMember)
    held_out = (
        select(logged_mem.c.contact_id)
        .join(logged_t, logged_t.c.id == logged_mem.c.logged_id)
        .where(logged_t.c.segment_id == segment_id, logged_mem.c.holdout.is_(True))
    )
    return member_ids_of(segment_id).where(members.c.contact_id.not_in(held_out))


def _skipped_excluded(conn: Connection, request: ActionRequest, today: dt.date | None, n_matched: int) -> int:
    """How many contacts the exclusion flag kept out of an adding step (Add, add contacts, add e-mails): C' taken
    without the exclusion, less C' with it. It is the gap between a value's count on the Builder and the preview."""
    if request.excluding:
        raw = _matched_set(conn, request, today=today, exclusion=False)
        return _count(conn, raw.ids) - n_matched
    return 0
