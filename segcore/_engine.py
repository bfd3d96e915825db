"""Static segments (SPEC §3): actions, preview, undo/redo, criteria log, provenance, saved criteria.

Every membership change is set-based SQL inside one transaction. How undo stays cheap:
- a member row carries `added_seq`, the action that brought it in, so an applied action's additions need no copy;
- an action that removes members copies them (with their `added_seq`) into `action_deltas` with sign -1;
- undoing an addition moves its members into `action_deltas` with sign +1, so redo can put them back.
Concurrency: every write bumps `segments.version` under a row lock (BEGIN IMMEDIATE on SQLite, SELECT ... FOR
UPDATE on PostgreSQL); a caller that passes the version it looked at is refused if another write came first.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Select, delete, exists, func, insert, literal, select, update

from ._db import Database
from ._errors import ConflictError, NotFoundError, RefusedError, UsageError
from ._filter_tree import to_json
from ._id_rows import insert_ids
from ._models import (
    ActionDelta,
    Campaign,
    Contact,
    ContactSource,
    LoggedSegment,
    SavedCriteria,
    Segment,
    SegmentAction,
    SegmentMember,
    SegmentStatusEvent,
    table_of,
)
from ._segment_rows import contact_id_of, member_numbers_of
from ._segment_rows import member_ids_of as _member_ids_of
from ._segment_rows import segment_row as _segment_row
from ._steps import (
    ACTION_KINDS,
    CONTACT_TYPES,
    KIND_LABELS,
    MAX_MANUAL_VALUES,
    ActionOptions,
    ActionRequest,
    Preview,
)
from ._words import plural
from .auth.audit import record
from .auth.identity import current_user
from .auth.roles import require
from .evaluation import MatchedSet, StepSets, evaluator_for, step_sets
from .evaluation.sql import SqlEvaluator
from .spark.catalog import load_fields_for

__all__ = [
    "ACTION_KINDS",
    "CONTACT_TYPES",
    "MAX_MANUAL_VALUES",
    "ActionOptions",
    "ActionRequest",
    "ActionResult",
    "LogEntry",
    "Preview",
    "Provenance",
    "SegmentInfo",
    "apply_action",
    "copy_segment",
    "create_segment",
    "criteria_log",
    "current_user",
    "delete_segment",
    "get_segment",
    "list_criteria",
    "list_segments",
    "member_contact_nos",
    "member_ids",
    "preview",
    "provenance",
    "redo",
    "reuse_criteria",
    "save_criteria",
    "preview_sql",
    "split_emails",
    "undo",
    "update_segment",
    "REVIEWED_STATUSES",
]

contacts = table_of(Contact)
members = table_of(SegmentMember)
actions = table_of(SegmentAction)
deltas = table_of(ActionDelta)
segments = table_of(Segment)

_EDITABLE_STATUSES = ("draft", "submitted", "approved", "rejected")
# Statuses a change of members or header sends back to draft (the review must start again).
REVIEWED_STATUSES = ("submitted", "approved", "rejected")
_SEGMENT_NO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,29}$")
_EMAIL_SPLIT = re.compile(r"[\s,;]+")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


# --------------------------------------------------------------------------------------------------- values


@dataclass(frozen=True)
class SegmentInfo:
    """A segment's header as lists and pages show it."""

    id: int
    no: str
    description: str
    campaign_no: str | None
    owner: str
    status: str
    status_comment: str | None
    version: int
    head_seq: int
    last_seq: int
    size: int
    created_at: dt.datetime
    updated_at: dt.datetime
    source: str | None = None  # the contact source its members come from; None: this database's contacts

    @property
    def can_undo(self) -> bool:
        return self.head_seq > 0 and self.status != "logged"

    @property
    def can_redo(self) -> bool:
        return self.last_seq > self.head_seq and self.status != "logged"

    @property
    def read_only(self) -> bool:
        return self.status == "logged"


@dataclass(frozen=True)
class ActionResult:
    """What an applied, undone or redone action did."""

    segment_no: str
    seq: int
    kind: str
    matched: int
    added: int
    removed: int
    size_after: int
    version: int
    unmatched: tuple[str, ...] = ()


@dataclass(frozen=True)
class LogEntry:
    """One line of the criteria log."""

    seq: int
    kind: str
    label: str
    description: str
    filter_json: dict[str, Any] | None
    options: dict[str, Any]
    payload: dict[str, Any] | None
    matched: int
    added: int
    removed: int
    size_after: int
    user: str
    created_at: dt.datetime
    undone: bool


@dataclass(frozen=True)
class Provenance:
    """Why a contact is (or is not) in a segment."""

    contact_no: str
    is_member: bool
    added_by: LogEntry | None
    removed_by: LogEntry | None

    def explain(self) -> str:
        if self.is_member and self.added_by is not None:
            e = self.added_by
            return f"{self.contact_no} came in with step {e.seq} ({e.label}: {e.description})"
        if self.removed_by is not None:
            e = self.removed_by
            return f"{self.contact_no} was taken out by step {e.seq} ({e.label}: {e.description})"
        return f"{self.contact_no} is not in the segment and no step touched it"


# --------------------------------------------------------------------------------------------------- helpers


def split_emails(text: str) -> tuple[str, ...]:
    """Addresses from pasted text (spaces, commas, semicolons, new lines), lower-cased, in order, no repeats."""
    seen: dict[str, None] = {}
    for token in _EMAIL_SPLIT.split(text or ""):
        token = token.strip().strip("<>\"'").lower()
        if token:
            seen.setdefault(token, None)
    return tuple(seen)


# Per-connection scratch table holding the contacts a step matched: the filter is evaluated once, and the count,
# the inserts and the deletes then read a small indexed table instead of scanning the contacts again.
_matched_ids = sa.Table(
    "segcore_matched_ids",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    prefixes=["TEMPORARY"],
)


def _materialize(conn: Connection, stmt: Select[Any]) -> tuple[sa.Table, int]:
    _matched_ids.create(conn, checkfirst=True)
    conn.execute(delete(_matched_ids))
    n = conn.execute(insert(_matched_ids).from_select(["id"], stmt)).rowcount
    return _matched_ids, int(n)


def _info(conn: Connection, row: sa.Row[Any]) -> SegmentInfo:
    last = conn.execute(select(func.coalesce(func.max(actions.c.seq), 0)).where(actions.c.segment_id == row.id))
    return SegmentInfo(
        id=row.id,
        no=row.no,
        description=row.description,
        campaign_no=row.campaign_no,
        owner=row.owner,
        status=row.status,
        status_comment=row.status_comment,
        version=row.version,
        head_seq=row.head_seq,
        last_seq=int(last.scalar_one()),
        size=row.size,
        created_at=row.created_at,
        updated_at=row.updated_at,
        source=row.source,
    )


# --------------------------------------------------------------------------------------------------- segments


def create_segment(
    db: Database,
    no: str,
    *,
    description: str = "",
    campaign_no: str | None = None,
    owner: str | None = None,
    user: str | None = None,
    source: str | None = None,
) -> SegmentInfo:
    """Create an empty draft segment owned by `owner` (default: who acts, `user`, else the owner, else the current user).

    `source` names the contact source its members come from (`source add`); None: the application database."""
    no = (no or "").strip()
    if not _SEGMENT_NO.match(no):
        raise UsageError(
            f"segment number {no!r} is not valid: 1 to 30 letters, digits, '-', '_' or '.', starting with a letter or digit"
        )
    if len(description) > 200:
        raise UsageError("the description is longer than 200 characters")
    actor = _actor(user, owner)
    owner = owner if owner is not None else actor
    with db.write() as conn:
        # Creating a segment for someone else is changing another person's segment.
        require(conn, actor, "segment.edit", owner=owner)
        if conn.execute(select(segments.c.id).where(segments.c.no == no)).first() is not None:
            raise RefusedError(f"segment {no} already exists")
        if campaign_no:
            _require_campaign(conn, campaign_no)
        if source and conn.execute(select(ContactSource.name).where(ContactSource.name == source)).first() is None:
            raise NotFoundError(f"no source {source!r} (see: source list)")
        now = _now()
        conn.execute(
            insert(segments).values(
                no=no,
                description=description.strip(),
                campaign_no=campaign_no or None,
                owner=owner,
                status="draft",
                version=0,
                head_seq=0,
                size=0,
                created_at=now,
                updated_at=now,
                source=source or None,
            )
        )
        record(conn, actor, "segment.create", f"segment {no}", f"segment {no} created", after=_header_text(
            description.strip(), campaign_no or None, owner))
        return _info(conn, _segment_row(conn, no))


def _actor(user: str | None, owner: str | None = None) -> str:
    """Who acts: `user`, else the owner a caller names (pages pass the person working), else the current user."""
    if user is not None:
        return user
    return owner if owner is not None else current_user()


def _header_text(description: str | None, campaign_no: str | None, owner: str | None = None) -> str:
    """A segment header in a few words, for audit rows."""
    parts = [f"description {description!r}", f"campaign {campaign_no or '-'}"]
    if owner is not None:
        parts.append(f"owner {owner or '-'}")
    return ", ".join(parts)


def _require_campaign(conn: Connection, campaign_no: str) -> None:
    if conn.execute(select(Campaign.no).where(Campaign.no == campaign_no)).first() is None:
        raise NotFoundError(f"no campaign {campaign_no!r}")


def update_segment(
    db: Database,
    no: str,
    *,
    description: str | None = None,
    campaign_no: str | None = None,
    expected_version: int | None = None,
    user: str | None = None,
) -> SegmentInfo:
    """Change a segment's description or campaign; a real change sends a reviewed segment back to draft."""
    user = user if user is not None else current_user()
    with db.write() as conn:
        row = _lock_for_write(conn, no, expected_version, user=user)
        values: dict[str, Any] = {}
        if description is not None and description.strip() != (row.description or ""):
            values["description"] = description.strip()
        if campaign_no is not None and (campaign_no or None) != row.campaign_no:
            if campaign_no:
                _require_campaign(conn, campaign_no)
            values["campaign_no"] = campaign_no or None
        if values:
            # What a manager approved is the audience for this campaign under this description: a new one of
            # either needs a new review, as a member change does.
            what = " and ".join(k.replace("_no", "") for k in values)
            _bump(conn, row, user=user, reason=f"{what} changed", **values)
            record(
                conn, user, "segment.update", f"segment {no}", f"{what} changed",
                before=_header_text(row.description, row.campaign_no),
                after=_header_text(values.get("description", row.description),
                                   values.get("campaign_no", row.campaign_no)),
            )
        return _info(conn, _segment_row(conn, no))


def get_segment(db: Database, no: str) -> SegmentInfo:
    with db.read() as conn:
        return _info(conn, _segment_row(conn, no))


def list_segments(db: Database) -> list[SegmentInfo]:
    with db.read() as conn:
        rows = conn.execute(select(segments).order_by(segments.c.no)).all()
        lasts = dict(
            conn.execute(select(actions.c.segment_id, func.max(actions.c.seq)).group_by(actions.c.segment_id)).all()
        )
    return [
        SegmentInfo(
            id=r.id,
            no=r.no,
            description=r.description,
            campaign_no=r.campaign_no,
            owner=r.owner,
            status=r.status,
            status_comment=r.status_comment,
            version=r.version,
            head_seq=r.head_seq,
            last_seq=int(lasts.get(r.id, 0) or 0),
            size=r.size,
            created_at=r.created_at,
            updated_at=r.updated_at,
            source=r.source,
        )
        for r in rows
    ]


def copy_segment(
    db: Database,
    no: str,
    new_no: str,
    *,
    description: str | None = None,
    owner: str | None = None,
    user: str | None = None,
) -> SegmentInfo:
    """A new draft segment with the same members, in one transaction; its log starts with one Reuse segment step."""
    new_no = (new_no or "").strip()
    if not _SEGMENT_NO.match(new_no):
        raise UsageError(
            f"segment number {new_no!r} is not valid: 1 to 30 letters, digits, '-', '_' or '.', starting with a letter or digit"
        )
    if description is not None and len(description) > 200:
        raise UsageError("the description is longer than 200 characters")
    actor = _actor(user, owner)
    owner = owner if owner is not None else actor
    with db.write() as conn:
        require(conn, actor, "segment.edit", owner=owner)
        src = _segment_row(conn, no)
        if conn.execute(select(segments.c.id).where(segments.c.no == new_no)).first() is not None:
            raise RefusedError(f"segment {new_no} already exists")
        now = _now()
        desc = (description if description is not None else src.description).strip()
        conn.execute(insert(segments).values(
            no=new_no, description=desc, campaign_no=src.campaign_no, owner=owner, status="draft",
            version=0, head_seq=0, size=0, created_at=now, updated_at=now, source=src.source,
        ))
        record(conn, actor, "segment.copy", f"segment {new_no}", f"copy of segment {no}",
               after=_header_text(desc, src.campaign_no, owner))
        _apply(conn, new_no, ActionRequest("reuse_segment", source_segment_no=no), user=actor,
               expected_version=None, today=None)
        return _info(conn, _segment_row(conn, new_no))


def delete_segment(
    db: Database, no: str, *, expected_version: int | None = None, user: str | None = None
) -> None:
    """Delete a segment with its members and log; a logged segment cannot be deleted."""
    user = user if user is not None else current_user()
    with db.write() as conn:
        row = _segment_row(conn, no, lock=True)
        require(conn, user, "segment.edit", owner=row.owner)
        if row.status == "logged":
            raise RefusedError(f"segment {no} is logged; its record is kept")
        if expected_version is not None and row.version != expected_version:
            raise _conflict(no)
        seg_actions = select(actions.c.id).where(actions.c.segment_id == row.id)
        conn.execute(delete(deltas).where(deltas.c.action_id.in_(seg_actions)))
        conn.execute(delete(actions).where(actions.c.segment_id == row.id))
        conn.execute(delete(members).where(members.c.segment_id == row.id))
        conn.execute(delete(table_of(SegmentStatusEvent)).where(SegmentStatusEvent.segment_id == row.id))
        # A logged record that pointed at this segment as its follow-up keeps its own
        # snapshot; only the link goes, so deleting a follow-up never touches history.
        logged = table_of(LoggedSegment)
        conn.execute(
            update(logged).where(logged.c.follow_up_segment_id == row.id).values(follow_up_segment_id=None)
        )
        conn.execute(delete(segments).where(segments.c.id == row.id))
        record(conn, user, "segment.delete", f"segment {no}", f"segment {no} deleted",
               before=f"{row.status}, {plural(row.size, 'member')}, owner {row.owner or '-'}")


def _conflict(no: str) -> ConflictError:
    return ConflictError(f"segment {no} changed since you looked at it: review and retry")


def _lock_for_write(conn: Connection, no: str, expected_version: int | None, *, user: str) -> sa.Row[Any]:
    """Lock the segment row for this transaction and check it may change, and that `user` may change it."""
    row = _segment_row(conn, no, lock=True)
    require(conn, user, "segment.edit", owner=row.owner)
    if expected_version is not None and row.version != expected_version:
        raise _conflict(no)
    if row.status not in _EDITABLE_STATUSES:
        raise RefusedError(f"segment {no} is {row.status} and read-only")
    return row


def _bump(conn: Connection, row: sa.Row[Any], *, user: str, reason: str = "members changed", **values: Any) -> int:
    """Write the header in the same transaction; the version guard catches a writer that slipped in."""
    new_status = row.status
    if row.status in REVIEWED_STATUSES:
        # Any change to the members of a reviewed segment sends it back to draft.
        new_status = "draft"
        conn.execute(
            insert(table_of(SegmentStatusEvent)).values(
                segment_id=row.id, from_status=row.status, to_status="draft",
                comment=reason, user=user, at=_now(),
            )
        )
    result = conn.execute(
        update(segments)
        .where(segments.c.id == row.id, segments.c.version == row.version)
        .values(version=row.version + 1, updated_at=_now(), status=new_status, **values)
    )
    if result.rowcount != 1:
        raise _conflict(row.no)
    if "size" in values:
        _refresh_member_stats(conn, abs(int(values["size"]) - int(row.size)))
    return int(row.version + 1)


# A step that moves this many member rows refreshes PostgreSQL's statistics of the member tables.
STATS_REFRESH_ROWS = 10_000


def _refresh_member_stats(conn: Connection, changed: int) -> None:
    """Keep the planner's picture of segment_members and action_deltas current after a large step.

    Measured at 10M contacts: with the statistics of an empty segment_members, PostgreSQL planned the next step's
    NOT EXISTS probe as a nested loop over a table it believed empty, and an Add of 2.8M members crawled at a few
    hundred rows a second. ANALYZE samples (about 30,000 rows) and runs in this transaction; SQLite needs nothing.
    Only while the planner's row count (`pg_class.reltuples`, -1 before any ANALYZE) is below the change: once the
    table is known to be large, autovacuum keeps it current, and the ANALYZE (0.4–0.9 s at ten million contacts)
    stays out of the commit."""
    if changed < STATS_REFRESH_ROWS or conn.dialect.name != "postgresql":
        return
    pg_class = sa.table("pg_class", sa.column("relname"), sa.column("reltuples"))
    known = conn.execute(select(pg_class.c.reltuples).where(pg_class.c.relname == "segment_members")).scalar()
    if known is None or float(known) < changed:
        conn.exec_driver_sql("ANALYZE segment_members, action_deltas")  # constant text: no user input


# --------------------------------------------------------------------------------------------------- preview

def preview(db: Database, no: str, request: ActionRequest, *, today: dt.date | None = None) -> Preview:
    """Size before/after, matched, added and removed for a pending step; writes nothing.

    The counts of the evaluator `segcore.evaluation` picks (in memory or in SQL), without charts."""
    evaluator = evaluator_for(db, segment=no)
    return evaluator.preview_step(no, request, today=today or dt.date.today(), dimensions=(), sample=0).counts


def preview_sql(db: Database, no: str, request: ActionRequest, *, today: dt.date | None = None) -> Preview:
    """The reference preview, computed by the database with one plain set query per number."""
    return SqlEvaluator(db).reference_counts(no, request, today=today)


# --------------------------------------------------------------------------------------------------- actions


def apply_action(
    db: Database,
    no: str,
    request: ActionRequest,
    *,
    user: str | None = None,
    expected_version: int | None = None,
    today: dt.date | None = None,
) -> ActionResult:
    """Apply one step to the segment's members, as one transaction, and log it."""
    user = user if user is not None else current_user()
    with db.write() as conn:
        return _apply(conn, no, request, user=user, expected_version=expected_version, today=today)


def _apply(
    conn: Connection,
    no: str,
    request: ActionRequest,
    *,
    user: str,
    expected_version: int | None,
    today: dt.date | None,
) -> ActionResult:
    row = _lock_for_write(conn, no, expected_version, user=user)
    if request.kind == "reuse_segment" and request.source_segment_no == no:
        raise UsageError("a segment cannot reuse itself")
    result = _apply_locked(conn, row, request, user=user, today=today)
    _audit_step(conn, user, "segment.apply", row, result, "step")
    return result


def _audit_step(conn: Connection, user: str, kind: str, row: sa.Row[Any], result: ActionResult, verb: str) -> None:
    """The audit row of an applied, undone or redone step: which step, what it did, the size before and after."""
    description = conn.execute(
        select(actions.c.description).where(actions.c.segment_id == row.id, actions.c.seq == result.seq)
    ).scalar() or ""
    label = KIND_LABELS.get(result.kind, result.kind)
    record(
        conn, user, kind, f"segment {row.no}",
        f"{verb} {result.seq} {label}: {description} (+{result.added:,} −{result.removed:,})",
        before=plural(int(row.size), "member"), after=plural(result.size_after, "member"),
    )


def _apply_locked(
    conn: Connection, row: sa.Row[Any], request: ActionRequest, *, user: str, today: dt.date | None
) -> ActionResult:
    """The step on a segment row already locked and checked: member rows, criteria log line, header."""
    no = row.no
    seq = row.head_seq + 1
    # A new step ends the redo history.
    tail = select(actions.c.id).where(actions.c.segment_id == row.id, actions.c.seq >= seq)
    conn.execute(delete(deltas).where(deltas.c.action_id.in_(tail)))
    conn.execute(delete(actions).where(actions.c.segment_id == row.id, actions.c.seq >= seq))

    # The commit reads who matches through the evaluation seam, in this write transaction, so the members written
    # are exactly the contacts this transaction sees.
    sets = step_sets(conn, source=row.source)
    found = sets.matched_set(request, today=today, segment_id=row.id)
    matched_stmt, unmatched = found.ids, found.unmatched
    plain_add = request.kind == "add" and found.from_contacts and not (
        request.options.expand_companies or request.options.related_companies
    )
    if found.changed is not None:
        # The backend found exactly who changes (the snapshot, with numpy): one statement from the bound list.
        return _apply_changed(conn, sets, row, request, found, seq=seq, user=user)
    if plain_add:
        # The common first step: one scan inserts straight from the filter, no scratch table.
        return _apply_plain_add(conn, sets, row, request, matched_stmt, seq=seq, user=user)
    tmp, n_matched = _materialize(conn, matched_stmt)
    if found.count is not None:
        n_matched = found.count
    elif request.kind in ("refine", "reduce") and request.options.entire_companies:
        # The log's "matched" for Refine/Reduce counts members, whichever way C was found.
        n_matched = sets.count_ids(_member_ids_of(row.id).where(members.c.contact_id.in_(select(tmp.c.id))))
    matched = select(tmp.c.id)
    action_id = _log_action(conn, row, request, seq=seq, user=user, matched=n_matched)

    added = removed = 0
    if request.adds:
        in_segment = exists().where(members.c.segment_id == row.id, members.c.contact_id == tmp.c.id)
        ins = insert(members).from_select(
            ["segment_id", "contact_id", "added_seq"],
            select(literal(row.id), tmp.c.id, literal(seq)).where(~in_segment),
        )
        added = conn.execute(ins).rowcount
    else:
        conn.execute(
            insert(deltas).from_select(
                ["action_id", "contact_id", "sign", "prev_seq"],
                select(literal(action_id), members.c.contact_id, literal(-1), members.c.added_seq).where(
                    sets.removal_condition(row.id, request, matched)
                ),
            )
        )
        removed = conn.execute(
            delete(members).where(
                members.c.segment_id == row.id,
                members.c.contact_id.in_(
                    select(deltas.c.contact_id).where(deltas.c.action_id == action_id, deltas.c.sign == -1)
                ),
            )
        ).rowcount
    size_after = row.size + added - removed
    conn.execute(
        update(actions).where(actions.c.id == action_id).values(added=added, removed=removed, size_after=size_after)
    )
    version = _bump(conn, row, user=user, size=size_after, head_seq=seq)
    return ActionResult(no, seq, request.kind, n_matched, added, removed, size_after, version, unmatched)


def _log_action(
    conn: Connection, row: sa.Row[Any], request: ActionRequest, *, seq: int, user: str, matched: int
) -> int:
    return int(
        conn.execute(
            insert(actions)
            .values(
                segment_id=row.id,
                seq=seq,
                kind=request.kind,
                filter_json=to_json(request.filter) if request.filter is not None else None,
                description=request.describe(load_fields_for(conn, row.source)),
                options=request.options.as_dict(),
                payload=request.payload(),
                matched=matched,
                user=user,
                created_at=_now(),
            )
            .returning(actions.c.id)
        ).scalar_one()
    )


def _apply_changed(
    conn: Connection,
    sets: StepSets,
    row: sa.Row[Any],
    request: ActionRequest,
    found: MatchedSet,
    *,
    seq: int,
    user: str,
) -> ActionResult:
    """A step whose backend gave the changed contacts themselves (`found.ids` selects exactly who enters or leaves,
    `found.count` how many it matched): the member rows are written from that list, nothing scanned again."""
    assert found.count is not None
    action_id = _log_action(conn, row, request, seq=seq, user=user, matched=found.count)
    added = removed = 0
    if request.adds:
        # The list holds no member (the backend read them in this transaction): a plain insert, no anti-join.
        added = insert_ids(conn, members, "contact_id", found.changed, segment_id=row.id, added_seq=seq)
    else:
        condition = sets.removal_condition(row.id, request, found.ids)
        conn.execute(
            insert(deltas).from_select(
                ["action_id", "contact_id", "sign", "prev_seq"],
                select(literal(action_id), members.c.contact_id, literal(-1), members.c.added_seq).where(condition),
            )
        )
        removed = conn.execute(delete(members).where(condition)).rowcount
    size_after = row.size + added - removed
    conn.execute(
        update(actions).where(actions.c.id == action_id).values(added=added, removed=removed, size_after=size_after)
    )
    version = _bump(conn, row, user=user, size=size_after, head_seq=seq)
    return ActionResult(row.no, seq, request.kind, found.count, added, removed, size_after, version, found.unmatched)


def _apply_plain_add(
    conn: Connection,
    sets: StepSets,
    row: sa.Row[Any],
    request: ActionRequest,
    matched: Select[Any],
    *,
    seq: int,
    user: str,
) -> ActionResult:
    """Add without company options: INSERT ... SELECT straight from the filter.

    `matched` (every contact the filter brings, members or not) is the rows inserted plus the members that
    already matched, which are only counted when the segment was not empty."""
    in_segment = exists().where(members.c.segment_id == row.id, members.c.contact_id == contacts.c.id)
    already = 0
    if row.size:
        already = sets.count_ids(matched.where(in_segment))
    rows = matched.with_only_columns(literal(row.id), contacts.c.id, literal(seq))
    # An empty segment has nothing to skip: no anti-join, which PostgreSQL would plan against a member table it
    # believes empty (and which fills up under it).
    added = conn.execute(
        insert(members).from_select(
            ["segment_id", "contact_id", "added_seq"], rows.where(~in_segment) if row.size else rows
        )
    ).rowcount
    size_after = row.size + added
    action_id = _log_action(conn, row, request, seq=seq, user=user, matched=added + already)
    conn.execute(update(actions).where(actions.c.id == action_id).values(added=added, size_after=size_after))
    version = _bump(conn, row, user=user, size=size_after, head_seq=seq)
    return ActionResult(row.no, seq, request.kind, added + already, added, 0, size_after, version)


def undo(db: Database, no: str, *, user: str | None = None, expected_version: int | None = None) -> ActionResult:
    """Revert the last applied step exactly: members and their provenance."""
    user = user if user is not None else current_user()
    with db.write() as conn:
        row = _lock_for_write(conn, no, expected_version, user=user)
        if row.head_seq == 0:
            raise RefusedError(f"segment {no} has nothing to undo")
        seq = row.head_seq
        act = conn.execute(select(actions).where(actions.c.segment_id == row.id, actions.c.seq == seq)).one()
        # Additions: move the members this step brought in aside, so redo can bring them back.
        conn.execute(
            insert(deltas).from_select(
                ["action_id", "contact_id", "sign", "prev_seq"],
                select(literal(act.id), members.c.contact_id, literal(1), sa.null()).where(
                    members.c.segment_id == row.id, members.c.added_seq == seq
                ),
            )
        )
        added = conn.execute(
            delete(members).where(members.c.segment_id == row.id, members.c.added_seq == seq)
        ).rowcount
        # Removals: put the members back with the provenance they had.
        removed = conn.execute(
            insert(members).from_select(
                ["segment_id", "contact_id", "added_seq"],
                select(literal(row.id), deltas.c.contact_id, deltas.c.prev_seq).where(
                    deltas.c.action_id == act.id, deltas.c.sign == -1
                ),
            )
        ).rowcount
        size_after = row.size - added + removed
        version = _bump(conn, row, user=user, size=size_after, head_seq=seq - 1)
        # Undoing takes members out that the step added, and puts back those it removed.
        result = ActionResult(no, seq, act.kind, act.matched, removed, added, size_after, version)
        _audit_step(conn, user, "segment.undo", row, result, "undid step")
        return ActionResult(no, seq, act.kind, act.matched, added, removed, size_after, version)


def redo(db: Database, no: str, *, user: str | None = None, expected_version: int | None = None) -> ActionResult:
    """Re-apply the step undone last, exactly as it was."""
    user = user if user is not None else current_user()
    with db.write() as conn:
        row = _lock_for_write(conn, no, expected_version, user=user)
        seq = row.head_seq + 1
        act = conn.execute(select(actions).where(actions.c.segment_id == row.id, actions.c.seq == seq)).first()
        if act is None:
            raise RefusedError(f"segment {no} has nothing to redo")
        added = conn.execute(
            insert(members).from_select(
                ["segment_id", "contact_id", "added_seq"],
                select(literal(row.id), deltas.c.contact_id, literal(seq)).where(
                    deltas.c.action_id == act.id, deltas.c.sign == 1
                ),
            )
        ).rowcount
        conn.execute(delete(deltas).where(deltas.c.action_id == act.id, deltas.c.sign == 1))
        removed = conn.execute(
            delete(members).where(
                members.c.segment_id == row.id,
                members.c.contact_id.in_(
                    select(deltas.c.contact_id).where(deltas.c.action_id == act.id, deltas.c.sign == -1)
                ),
            )
        ).rowcount
        size_after = row.size + added - removed
        version = _bump(conn, row, user=user, size=size_after, head_seq=seq)
        result = ActionResult(no, seq, act.kind, act.matched, added, removed, size_after, version)
        _audit_step(conn, user, "segment.redo", row, result, "redid step")
        return result


# --------------------------------------------------------------------------------------------------- log, members


def _entry(r: sa.Row[Any], head_seq: int) -> LogEntry:
    return LogEntry(
        seq=r.seq,
        kind=r.kind,
        label=KIND_LABELS.get(r.kind, r.kind),
        description=r.description,
        filter_json=r.filter_json,
        options=r.options or {},
        payload=r.payload,
        matched=r.matched,
        added=r.added,
        removed=r.removed,
        size_after=r.size_after,
        user=r.user,
        created_at=r.created_at,
        undone=r.seq > head_seq,
    )


def criteria_log(db: Database, no: str) -> list[LogEntry]:
    """Every step of the segment, applied and undone (undone ones can be redone)."""
    with db.read() as conn:
        row = _segment_row(conn, no)
        rows = conn.execute(select(actions).where(actions.c.segment_id == row.id).order_by(actions.c.seq)).all()
    return [_entry(r, row.head_seq) for r in rows]


def member_ids(db: Database, no: str) -> list[int]:
    with db.read() as conn:
        row = _segment_row(conn, no)
        return list(conn.execute(_member_ids_of(row.id).order_by(members.c.contact_id)).scalars())


def member_contact_nos(db: Database, no: str) -> list[str]:
    """The members' contact numbers, sorted."""
    with db.read() as conn:
        stmt = member_numbers_of(_segment_row(conn, no))
        return sorted(str(n) for n in conn.execute(stmt).scalars())


def provenance(db: Database, no: str, contact_no: str) -> Provenance:
    """Which step brought a member in, or which step took a former member out."""
    with db.read() as conn:
        row = _segment_row(conn, no)
        cid = contact_id_of(conn, row, contact_no)
        if cid is None:
            if row.source is not None:  # never brought in nor taken out by a step: not in the segment's history
                return Provenance(contact_no, False, None, None)
            raise NotFoundError(f"no contact {contact_no!r}")
        added_seq = conn.execute(
            select(members.c.added_seq).where(members.c.segment_id == row.id, members.c.contact_id == cid)
        ).scalar()
        if added_seq is not None:
            act = conn.execute(
                select(actions).where(actions.c.segment_id == row.id, actions.c.seq == added_seq)
            ).one()
            return Provenance(contact_no, True, _entry(act, row.head_seq), None)
        gone = conn.execute(
            select(actions)
            .join(deltas, deltas.c.action_id == actions.c.id)
            .where(
                actions.c.segment_id == row.id,
                actions.c.seq <= row.head_seq,
                deltas.c.contact_id == cid,
                deltas.c.sign == -1,
            )
            .order_by(actions.c.seq.desc())
            .limit(1)
        ).first()
        return Provenance(contact_no, False, None, _entry(gone, row.head_seq) if gone is not None else None)


# --------------------------------------------------------------------------------------------------- criteria


def save_criteria(
    db: Database, no: str, code: str, *, description: str = "", user: str | None = None, replace_existing: bool = False
) -> int:
    """Store the segment's applied steps under a code; returns the number of steps saved."""
    code = (code or "").strip().upper()
    if not _SEGMENT_NO.match(code):
        raise UsageError(f"criteria code {code!r} is not valid: 1 to 30 letters, digits, '-', '_' or '.'")
    user = user if user is not None else current_user()
    with db.write() as conn:
        row = _segment_row(conn, no)
        rows = conn.execute(
            select(actions)
            .where(actions.c.segment_id == row.id, actions.c.seq <= row.head_seq)
            .order_by(actions.c.seq)
        ).all()
        if not rows:
            raise RefusedError(f"segment {no} has no steps to save")
        steps = []
        for r in rows:
            step: dict[str, Any] = {"kind": r.kind, "options": r.options or {}}
            if r.filter_json is not None:
                step["filter"] = r.filter_json
            if r.payload:
                step["payload"] = r.payload
            steps.append(step)
        table = table_of(SavedCriteria)
        exists_row = conn.execute(select(table.c.code, table.c.created_by).where(table.c.code == code)).first()
        # Saving is building; replacing criteria someone else saved is changing their work.
        require(conn, user, "segment.edit", owner=exists_row.created_by if exists_row is not None else None)
        if exists_row is not None and not replace_existing:
            raise RefusedError(f"criteria {code} already exist")
        values = dict(
            description=description or row.description, steps=steps, source_segment_no=no,
            created_by=user, created_at=_now(),
        )
        if exists_row is not None:
            conn.execute(update(table).where(table.c.code == code).values(**values))
        else:
            conn.execute(insert(table).values(code=code, **values))
        record(conn, user, "criteria.save", f"criteria {code}",
               f"{plural(len(steps), 'step')} saved from segment {no}",
               before="replaced" if exists_row is not None else None)
        return len(steps)


def list_criteria(db: Database) -> list[dict[str, Any]]:
    table = table_of(SavedCriteria)
    with db.read() as conn:
        rows = conn.execute(select(table).order_by(table.c.code)).mappings().all()
    return [dict(r) for r in rows]


def reuse_criteria(
    db: Database,
    code: str,
    no: str,
    *,
    user: str | None = None,
    expected_version: int | None = None,
    today: dt.date | None = None,
) -> list[ActionResult]:
    """Replay saved steps on a segment: each its own undoable step, all in one transaction."""
    user = user if user is not None else current_user()
    table = table_of(SavedCriteria)
    with db.write() as conn:
        saved = conn.execute(select(table).where(table.c.code == code.strip().upper())).first()
        if saved is None:
            raise NotFoundError(f"no saved criteria {code!r}")
        # Read with the target segment's fields: a source's custom fields are not this database's.
        fields = load_fields_for(conn, _segment_row(conn, no).source)
        requests = [ActionRequest.from_step(s, fields) for s in saved.steps]
        results = []
        version = expected_version
        for request in requests:
            result = _apply(conn, no, request, user=user, expected_version=version, today=today)
            version = result.version
            results.append(result)
        return results
