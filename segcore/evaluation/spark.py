"""The Spark backend: segments built over a contact source read their contacts in Spark; members stay here.

A source's contacts never enter the application database. A segment over a source keeps its members like any other
segment (`segment_members`, with undo, redo and provenance), under ids of `source_contacts`: one row per contact
number a step ever brought in or took out, with a negative id so it can never be mistaken for one of `contacts`.

    SparkEvaluator   counts, previews (one GROUPING SETS pass), charts: asked of Spark, with the members' numbers
                     sent there through Arrow
    SparkStepSets    what a commit writes from: Spark computes the contacts a step adds or removes, only those
                     come back, get their ids here, and the engine writes them in its own transaction
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Select, delete, func, insert, select

from .._db import Database
from .._errors import UsageError
from .._models import SourceContact, table_of
from .._segment_rows import member_numbers_of, members, segment_row, segments
from .._stats import Distribution
from .._steps import FILTER_KINDS, ActionRequest, Preview
from ..spark import SparkSource, StepOptions, open_source, source_info
from .base import FilterCount, MatchedSet, StepPreview
from .sql import SqlEvaluator, reusable_members

__all__ = ["SparkEvaluator", "SparkStepSets", "source_for"]

source_contacts = table_of(SourceContact)

_scratch_meta = sa.MetaData()
# The contact numbers a step changes, as they come back from Spark, before they get their ids.
_numbers = sa.Table(
    "segcore_source_numbers", _scratch_meta, sa.Column("no", sa.String(200), primary_key=True), prefixes=["TEMPORARY"]
)
# Their ids: what the engine's commit writes from.
_ids = sa.Table("segcore_source_ids", _scratch_meta, sa.Column("id", sa.Integer, primary_key=True), prefixes=["TEMPORARY"])

_lock = threading.Lock()
_open: dict[tuple[str, str], SparkSource] = {}


def source_for(conn: Connection, name: str) -> SparkSource:
    """The opened source `name` (its schema read and views registered once per definition and process)."""
    info = source_info(conn, name)
    key = (name, json.dumps([info.to_json(), info.mapping, info.interactions_mapping], sort_keys=True, default=str))
    with _lock:
        found = _open.get(key)
    if found is None:
        found = open_source(info.spec())
        with _lock:
            _open[key] = found
    return found


def clear_caches() -> None:
    """Forget the opened sources (tests that change a source's files in place)."""
    with _lock:
        _open.clear()


def _options(request: ActionRequest) -> StepOptions:
    o = request.options
    return StepOptions(o.expand_companies, o.related_companies, o.ignore_exclusion, o.entire_companies, o.contact_type)


def _member_numbers(conn: Connection, row: sa.Row[Any]) -> list[str]:
    return [str(n) for n in conn.execute(member_numbers_of(row)).scalars()]


def _ids_for(conn: Connection, source: str, numbers: Iterable[str]) -> sa.Table:
    """A scratch table of the ids of `numbers` in `source`'s numbering, the new ones given an id now."""
    _numbers.create(conn, checkfirst=True)
    _ids.create(conn, checkfirst=True)
    conn.execute(delete(_numbers))
    conn.execute(delete(_ids))
    rows = [{"no": n} for n in dict.fromkeys(numbers)]
    if not rows:
        return _ids
    conn.execute(insert(_numbers), rows)
    if conn.dialect.name == "postgresql":
        # Two commits over sources at once would pick the same new ids: one at a time (released at commit).
        conn.execute(select(func.pg_advisory_xact_lock(0x5E6C0DE)))
    known = sa.and_(source_contacts.c.source == source, source_contacts.c.contact_no == _numbers.c.no)
    lowest = select(func.coalesce(func.min(source_contacts.c.id), 0)).scalar_subquery()
    new = select(
        (func.least(lowest, 0) if conn.dialect.name == "postgresql" else func.min(lowest, 0))
        - func.row_number().over(order_by=_numbers.c.no),
        sa.literal(source),
        _numbers.c.no,
    ).where(~sa.exists().where(known))
    conn.execute(insert(source_contacts).from_select(["id", "source", "contact_no"], new))
    conn.execute(
        insert(_ids).from_select(
            ["id"], select(source_contacts.c.id).join(_numbers, known)
        )
    )
    return _ids


class SparkStepSets:
    """The sets a step's commit writes from, for a segment built over a source: computed in Spark, read back as ids
    in the engine's write transaction. `ids` holds exactly the contacts the step adds or removes, and `count` says
    how many it matched."""

    def __init__(self, conn: Connection, source: str) -> None:
        self._conn = conn
        self._source_name = source

    def matched_set(
        self,
        request: ActionRequest,
        *,
        today: dt.date | None,
        segment_id: int | None = None,
        exclusion: bool = True,
    ) -> MatchedSet:
        conn = self._conn
        if segment_id is None:
            raise UsageError("a step over a source works on a segment")
        row = conn.execute(select(segments).where(segments.c.id == segment_id)).one()
        if request.kind == "reuse_segment":
            assert request.source_segment_no is not None
            other = segment_row(conn, request.source_segment_no)
            if other.source != row.source:
                where = f"the source {other.source}" if other.source else "this database's contacts"
                raise UsageError(f"segment {other.no} is built over {where}, not over the source {row.source}")
            return MatchedSet(reusable_members(other.id))
        source = source_for(conn, self._source_name)
        changes = source.step_changes(
            request.kind,
            _member_numbers(conn, row),
            node=request.filter,
            contact_nos=request.contact_nos,
            emails=request.emails,
            today=today or dt.date.today(),
            options=_options(request),
            exclusion=exclusion,
        )
        ids = _ids_for(conn, self._source_name, changes.changed)
        return MatchedSet(select(ids.c.id), changes.unmatched, count=changes.matched)

    def removal_condition(
        self, segment_id: int, request: ActionRequest, matched: Select[Any]
    ) -> sa.ColumnElement[bool]:
        # `matched` holds the members to take out already (Spark found them), whichever the kind.
        return sa.and_(members.c.segment_id == segment_id, members.c.contact_id.in_(matched))

    def count_ids(self, ids: Select[Any]) -> int:
        return int(self._conn.execute(select(func.count()).select_from(ids.subquery())).scalar_one())


class SparkEvaluator:
    """Answers for a segment built over a source: Spark reads the contacts, this database gives the members."""

    name = "spark"

    def __init__(self, db: Database, source: str) -> None:
        self._db = db
        self._source_name = source

    def _source(self) -> SparkSource:
        with self._db.read() as conn:
            return source_for(conn, self._source_name)

    def count(self, node: Any, *, today: dt.date) -> FilterCount:
        c = self._source().count(node, today=today)
        return FilterCount(c.matched, c.excluded, c.total)

    def preview_step(
        self, no: str, request: ActionRequest, *, today: dt.date, dimensions: Sequence[str], sample: int
    ) -> StepPreview:
        start = time.perf_counter()
        with self._db.read() as conn:
            row = segment_row(conn, no)
            numbers = _member_numbers(conn, row)
            source = source_for(conn, self._source_name)
        size = int(row.size)
        if request.kind in FILTER_KINDS:
            assert request.filter is not None
            step = source.step_pass(
                request.kind, request.filter, numbers, dimensions=dimensions, today=today,
                options=_options(request), sample=sample,
            )  # fmt: skip
            s = step.scan
            changed = s.entering if request.adds else s.leaving
            counts = Preview.of(request, size, s.matched, changed, (), step.skipped_excluded)
            return StepPreview(
                counts, step.before, step.after, (), (), self.name, (time.perf_counter() - start) * 1000,
                entering_nos=step.entering, leaving_nos=step.leaving,
            )  # fmt: skip
        # By hand, by e-mail, reuse: the changed numbers, then the charts of the members before and after.
        if request.kind == "reuse_segment":
            assert request.source_segment_no is not None
            with self._db.read() as conn:
                other = segment_row(conn, request.source_segment_no)
                if other.source != row.source:
                    where = f"the source {other.source}" if other.source else "this database's contacts"
                    raise UsageError(f"segment {other.no} is built over {where}, not over the source {row.source}")
                taken = set(
                    conn.execute(
                        select(source_contacts.c.contact_no).where(source_contacts.c.id.in_(reusable_members(other.id)))
                    ).scalars()
                )
            changed_nos = tuple(sorted(taken - set(numbers)))
            matched, unmatched, skipped = len(taken), (), 0
        else:
            changes = source.step_changes(
                request.kind, numbers, contact_nos=request.contact_nos, emails=request.emails, today=today,
                options=_options(request),
            )  # fmt: skip
            changed_nos, matched, unmatched = changes.changed, changes.matched, changes.unmatched
            skipped = 0
            if request.excluding:
                raw = source.step_changes(
                    request.kind, (), contact_nos=request.contact_nos, emails=request.emails, today=today,
                    options=_options(request), exclusion=False,
                )  # fmt: skip
                skipped = raw.matched - matched
        after = sorted(set(numbers) | set(changed_nos)) if request.adds else sorted(set(numbers) - set(changed_nos))
        before_charts: dict[str, Distribution] = {}
        after_charts: dict[str, Distribution] = {}
        if dimensions:
            before_charts = source.member_distributions(numbers, dimensions=dimensions, today=today)
            after_charts = source.member_distributions(after, dimensions=dimensions, today=today)
        counts = Preview.of(request, size, matched, len(changed_nos), unmatched, skipped)
        sample_nos = tuple(changed_nos[:sample])
        return StepPreview(
            counts, before_charts, after_charts, (), (), self.name, (time.perf_counter() - start) * 1000,
            entering_nos=sample_nos if request.adds else (), leaving_nos=() if request.adds else sample_nos,
        )  # fmt: skip

    def segment_distributions(
        self, no: str, *, today: dt.date, dimensions: Sequence[str]
    ) -> dict[str, Distribution]:
        with self._db.read() as conn:
            numbers = _member_numbers(conn, segment_row(conn, no))
            source = source_for(conn, self._source_name)
        return source.member_distributions(numbers, dimensions=dimensions, today=today)

    def all_distributions(self, *, today: dt.date, dimensions: Sequence[str]) -> dict[str, Distribution]:
        return self._source().distributions(None, dimensions=dimensions, today=today)

    def overlap(self, segment_ids: Sequence[int]) -> dict[tuple[int, int], int]:
        # Members of segments over one source share their ids: the overlap is counted here, as for any segment.
        return SqlEvaluator(self._db).overlap(segment_ids)

