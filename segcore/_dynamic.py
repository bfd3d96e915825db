"""Dynamic segments (SPEC §3): a saved filter evaluated against the current data, with its count over time.

Nothing is stored per member: the count is computed when asked (from the in-memory snapshot when it fits, in SQL
otherwise, the same routing as previews) and a refresh records it. Freeze turns today's members into a static
segment through the engine, so the new segment has an ordinary, undoable criteria log.

Decision: a dynamic segment leaves out contacts flagged "exclude from segments", exactly as a plain Add does, so
the count shown is the size a freeze gives.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, delete, func, insert, select, update

from ._db import Database
from ._engine import (
    _SEGMENT_NO,
    ActionRequest,
    SegmentInfo,
    _apply,
    _info,
    _now,
    _require_campaign,
    _segment_row,
    current_user,
)
from ._errors import NotFoundError, RefusedError, UsageError
from ._filter_describe import describe
from ._filter_text import to_text
from ._filter_tree import EMPTY, Node, from_json, to_json, validate
from ._models import Contact, ContactSource, DynamicSegment, DynamicSegmentCount, Segment, table_of
from ._words import plural
from .auth.audit import record
from .auth.roles import require
from .evaluation import evaluator_for
from .fields import FieldRegistry
from .spark.catalog import fields_for, load_fields_for

__all__ = [
    "DynamicCountPoint",
    "DynamicInfo",
    "count_filter",
    "count_history",
    "create_dynamic",
    "delete_dynamic",
    "dynamic_count",
    "freeze_dynamic",
    "get_dynamic",
    "list_dynamic",
    "refresh_dynamic",
    "update_dynamic",
]

dynamic = table_of(DynamicSegment)
counts = table_of(DynamicSegmentCount)
contacts = table_of(Contact)
segments = table_of(Segment)
sources_t = table_of(ContactSource)
_NO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,29}$")


@dataclass(frozen=True)
class DynamicCountPoint:
    """One refresh: how many contacts were in the dynamic segment, out of all contacts, at that time."""

    at: dt.datetime
    count: int
    total: int


@dataclass(frozen=True)
class DynamicInfo:
    """A dynamic segment as lists and pages show it, with its last recorded count."""

    id: int
    no: str
    description: str
    filter: Node
    expression: str  # the text form, one condition per line, or the plain-language description
    owner: str
    created_at: dt.datetime
    updated_at: dt.datetime
    last_count: int | None
    last_total: int | None
    last_refreshed_at: dt.datetime | None
    source: str | None = None  # the contact source it counts; None: this database's contacts


def _expression(node: Node, fields: FieldRegistry) -> str:
    # Compact (`rating>=4`, not `rating=>=4`): read on the Dynamic page and in `dynamic list`, and parsed back as it is
    # when loaded into the builder.
    lines = to_text(node, fields, compact=True)
    return "\n".join(lines) if lines is not None else describe(node, fields)


def _checked_filter(node: Node, fields: FieldRegistry) -> Node:
    node = validate(node, fields)
    if node == EMPTY:
        raise UsageError("the filter is empty: it matches everybody; add at least one condition")
    return node


def _last_counts() -> sa.Select[Any]:
    """The latest recorded count of every dynamic segment, in one query (no query per segment)."""
    latest = select(counts.c.dynamic_id, func.max(counts.c.id).label("id")).group_by(counts.c.dynamic_id).subquery()
    return select(counts).join(latest, latest.c.id == counts.c.id)


def _infos(conn: Connection, where: Any = None) -> list[DynamicInfo]:
    last = _last_counts().subquery()
    stmt = (
        select(dynamic, last.c.count.label("last_count"), last.c.total.label("last_total"),
               last.c.at.label("last_at"))
        .outerjoin(last, last.c.dynamic_id == dynamic.c.id)
        .order_by(dynamic.c.no)
    )
    if where is not None:
        stmt = stmt.where(where)
    out = []
    # Each filter is read with the fields of the contacts it counts: a source's custom fields are its own.
    registries: dict[str | None, FieldRegistry] = {}
    for r in conn.execute(stmt).all():
        if r.source not in registries:
            registries[r.source] = load_fields_for(conn, r.source)
        fields = registries[r.source]
        node = from_json(r.filter_json, fields)
        out.append(DynamicInfo(
            id=r.id, no=r.no, description=r.description, filter=node, expression=_expression(node, fields),
            owner=r.owner,
            created_at=r.created_at, updated_at=r.updated_at, last_count=r.last_count, last_total=r.last_total,
            last_refreshed_at=r.last_at, source=r.source,
        ))
    return out


def _get(conn: Connection, no: str) -> DynamicInfo:
    found = _infos(conn, dynamic.c.no == no)
    if not found:
        raise NotFoundError(f"no dynamic segment {no!r}")
    return found[0]


def create_dynamic(
    db: Database,
    no: str,
    filter: Node,
    *,
    description: str = "",
    owner: str | None = None,
    user: str | None = None,
    source: str | None = None,
) -> DynamicInfo:
    """Save a filter as a dynamic segment (who acts: `user`, else the owner named, else the current user).

    `source` names the contact source it counts (`source add`); None: the application database's contacts."""
    no = (no or "").strip()
    if not _NO.match(no):
        raise UsageError(f"dynamic segment number {no!r} is not valid: 1 to 30 letters, digits, '-', '_' or '.'")
    if len(description) > 200:
        raise UsageError("the description is longer than 200 characters")
    actor = user if user is not None else (owner if owner is not None else current_user())
    with db.write() as conn:
        require(conn, actor, "dynamic.edit")
        if source and conn.execute(select(sources_t.c.name).where(sources_t.c.name == source)).first() is None:
            raise NotFoundError(f"no source {source!r} (see: source list)")
        fields = load_fields_for(conn, source or None)
        node = _checked_filter(filter, fields)
        if conn.execute(select(dynamic.c.id).where(dynamic.c.no == no)).first() is not None:
            raise RefusedError(f"dynamic segment {no} already exists")
        now = _now()
        conn.execute(insert(dynamic).values(
            no=no, description=description.strip(), filter_json=to_json(node),
            owner=owner if owner is not None else actor, created_at=now, updated_at=now, source=source or None,
        ))
        record(conn, actor, "dynamic.create", f"dynamic segment {no}", f"dynamic segment {no} created",
               after=describe(node, fields))
        return _get(conn, no)


def update_dynamic(
    db: Database,
    no: str,
    *,
    filter: Node | None = None,
    description: str | None = None,
    user: str | None = None,
) -> DynamicInfo:
    """Change a dynamic segment's filter or description; its recorded counts stay as history."""
    user = user if user is not None else current_user()
    values: dict[str, Any] = {}
    if filter is not None:
        values["filter_json"] = to_json(_checked_filter(filter, fields_for(db, get_dynamic(db, no).source)))
    if description is not None:
        if len(description) > 200:
            raise UsageError("the description is longer than 200 characters")
        values["description"] = description.strip()
    with db.write() as conn:
        require(conn, user, "dynamic.edit")
        old = _get(conn, no)
        if values:
            conn.execute(update(dynamic).where(dynamic.c.no == no).values(updated_at=_now(), **values))
            new = _get(conn, no)
            fields = load_fields_for(conn, new.source)
            what = " and ".join(k.replace("_json", "") for k in values)
            record(conn, user, "dynamic.update", f"dynamic segment {no}", f"{what} changed",
                   before=f"{old.description!r}: {describe(old.filter, fields)}",
                   after=f"{new.description!r}: {describe(new.filter, fields)}")
        return _get(conn, no)


def get_dynamic(db: Database, no: str) -> DynamicInfo:
    with db.read() as conn:
        return _get(conn, no)


def list_dynamic(db: Database) -> list[DynamicInfo]:
    """All dynamic segments by number, each with its last recorded count."""
    with db.read() as conn:
        return _infos(conn)


def delete_dynamic(db: Database, no: str, *, user: str | None = None) -> None:
    """Delete a dynamic segment and its count history (static segments frozen from it stay)."""
    user = user if user is not None else current_user()
    with db.write() as conn:
        require(conn, user, "dynamic.edit")
        info = _get(conn, no)
        conn.execute(delete(counts).where(counts.c.dynamic_id == info.id))
        conn.execute(delete(dynamic).where(dynamic.c.id == info.id))
        record(conn, user, "dynamic.delete", f"dynamic segment {no}", f"dynamic segment {no} deleted",
               before=describe(info.filter, load_fields_for(conn, info.source)))


# --------------------------------------------------------------------------------------------------- counting


def count_filter(
    db: Database,
    node: Node,
    *,
    today: dt.date | None = None,
    backend: str | None = None,
    source: str | None = None,
) -> tuple[int, int]:
    """(contacts the filter puts in a dynamic segment, all contacts), computed now without writing.

    The evaluation seam picks the backend (Spark for a `source`; else in memory when the snapshot fits, else SQL);
    `backend` forces one by name for tests. Contacts flagged "exclude from segments" are left out of the count."""
    node = _checked_filter(node, fields_for(db, source))
    counted = evaluator_for(db, backend=backend, source=source).count(node, today=today or dt.date.today())
    return counted.matched, counted.total


def dynamic_count(db: Database, no: str, *, today: dt.date | None = None) -> tuple[int, int]:
    """(contacts in the dynamic segment, all contacts) as of now."""
    info = get_dynamic(db, no)
    return count_filter(db, info.filter, today=today, source=info.source)


def refresh_dynamic(
    db: Database, no: str, *, today: dt.date | None = None, user: str | None = None
) -> DynamicCountPoint:
    """Count now and record the count, so the page can show how the segment moves over time."""
    user = user if user is not None else current_user()
    with db.read() as conn:
        # Refused before the count, which may take a while on a large database.
        require(conn, user, "dynamic.edit")
    info = get_dynamic(db, no)
    n, total = count_filter(db, info.filter, today=today, source=info.source)
    at = _now()
    with db.write() as conn:
        require(conn, user, "dynamic.edit")
        # Deleted meanwhile? Then there is nothing to record the count against.
        _get(conn, no)
        conn.execute(insert(counts).values(dynamic_id=info.id, at=at, count=n, total=total))
        before = f"{plural(info.last_count, 'contact')}" if info.last_count is not None else None
        record(conn, user, "dynamic.refresh", f"dynamic segment {no}", f"counted {n:,} of {plural(total, 'contact')}",
               before=before, after=plural(n, "contact"))
    return DynamicCountPoint(at, n, total)


def count_history(db: Database, no: str) -> list[DynamicCountPoint]:
    """Every recorded count, oldest first."""
    with db.read() as conn:
        info = _get(conn, no)
        rows = conn.execute(
            select(counts.c.at, counts.c.count, counts.c.total)
            .where(counts.c.dynamic_id == info.id)
            .order_by(counts.c.at, counts.c.id)
        ).all()
    return [DynamicCountPoint(at, int(n), int(total)) for at, n, total in rows]


# --------------------------------------------------------------------------------------------------- freeze


def freeze_dynamic(
    db: Database,
    no: str,
    new_segment_no: str,
    *,
    description: str | None = None,
    campaign_no: str | None = None,
    user: str | None = None,
    today: dt.date | None = None,
) -> SegmentInfo:
    """Copy the dynamic segment's current members into a new static draft segment, in one transaction.

    The new segment's log starts with one Add step carrying the filter (plain Add: flagged contacts stay out, as
    in the count), so it can be undone, replayed and reviewed like any step."""
    user = user if user is not None else current_user()
    new_no = (new_segment_no or "").strip()
    info = get_dynamic(db, no)
    desc = description if description is not None else (info.description or f"Frozen from dynamic segment {no}")
    # The same checks as create_segment, which cannot be called here: it commits its own transaction.
    _check_new_segment(new_no, desc)
    with db.write() as conn:
        require(conn, user, "segment.edit")
        if conn.execute(select(segments.c.id).where(segments.c.no == new_no)).first() is not None:
            raise RefusedError(f"segment {new_no} already exists")
        if campaign_no:
            _require_campaign(conn, campaign_no)
        now = _now()
        conn.execute(insert(segments).values(
            no=new_no, description=desc.strip()[:200], campaign_no=campaign_no or None, owner=user, status="draft",
            version=0, head_seq=0, size=0, created_at=now, updated_at=now, source=info.source,
        ))
        record(conn, user, "segment.create", f"segment {new_no}", f"frozen from dynamic segment {no}",
               after=f"description {desc.strip()[:200]!r}, campaign {campaign_no or '-'}, owner {user or '-'}")
        _apply(conn, new_no, ActionRequest("add", filter=info.filter), user=user, expected_version=None, today=today)
        record(conn, user, "dynamic.freeze", f"dynamic segment {no}", f"frozen into segment {new_no}")
        return _info(conn, _segment_row(conn, new_no))


def _check_new_segment(no: str, description: str) -> None:
    if not _SEGMENT_NO.match(no):
        raise UsageError(
            f"segment number {no!r} is not valid: 1 to 30 letters, digits, '-', '_' or '.', starting with a letter or digit"
        )
    if len(description) > 200:
        raise UsageError("the description is longer than 200 characters")
