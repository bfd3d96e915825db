"""What happens after a segment is built (SPEC §3): campaigns, the review workflow and Log segment.

Review: draft → submitted → approved / rejected (with a comment) → logged. Every transition locks the segment row,
checks the caller's `expected_version`, bumps the version and writes a `segment_status_events` row, in one
transaction. Any change to the members of a reviewed segment sends it back to draft (the engine's `_bump` does that).

Log segment writes, in one transaction, an immutable snapshot (`logged_segments` + `logged_segment_members`), one
interaction per member that is not held out, the status change, and optionally a follow-up draft segment. The
follow-up takes the treated members only (the control group must stay uncontacted, or the test is void): with a
holdout its one step names those members and says "treated members of <NO> (control group of N left out)". The
holdout (control group) is drawn from a stored seed: shuffle the member ids in ascending order with
`numpy.random.default_rng(seed).permutation`, keep the first round(size × pct / 100). Same seed and members, same
control group, on every database.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import secrets
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy import Connection, delete, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError

from ._db import Database
from ._engine import (
    _SEGMENT_NO,
    MAX_MANUAL_VALUES,
    ActionOptions,
    ActionRequest,
    SegmentInfo,
    _apply,
    _conflict,
    _info,
    _now,
    _segment_row,
    current_user,
)
from ._errors import NotFoundError, RefusedError, UsageError
from ._models import (
    Campaign,
    Contact,
    Interaction,
    LoggedSegment,
    LoggedSegmentMember,
    Segment,
    SegmentAction,
    SegmentMember,
    SegmentStatusEvent,
    SourceContact,
    table_of,
)
from ._settings import read_setting
from ._snapshot import bump_data_version
from ._words import plural
from .auth.audit import record
from .auth.roles import four_eyes_refusal, require

__all__ = [
    "CAMPAIGN_STATUSES",
    "CampaignInfo",
    "LoggedInfo",
    "MAX_HOLDOUT_SEED",
    "StatusEvent",
    "approve_segment",
    "cancel_logged",
    "create_campaign",
    "delete_campaign",
    "get_campaign",
    "get_logged",
    "is_small",
    "list_campaigns",
    "list_logged",
    "log_refusal",
    "log_segment",
    "logged_interactions",
    "logged_members",
    "reject_segment",
    "segment_is_small",
    "status_history",
    "submit_segment",
    "update_campaign",
    "withdraw_segment",
]

campaigns = table_of(Campaign)
segments = table_of(Segment)
members = table_of(SegmentMember)
events = table_of(SegmentStatusEvent)
logged = table_of(LoggedSegment)
logged_mem = table_of(LoggedSegmentMember)
interactions = table_of(Interaction)
contacts = table_of(Contact)
actions = table_of(SegmentAction)

CAMPAIGN_STATUSES = ("planned", "active", "completed", "cancelled")
# The seed is stored in an INTEGER column: keep it inside 32 bits so PostgreSQL takes it.
MAX_HOLDOUT_SEED = 2**31 - 1
_TEMPLATE = re.compile(r"^[A-Z0-9][A-Z0-9_.\-]{0,19}$")
_MAX_PAGE = 1000

# Per-connection scratch table for the control group: loaded as rows and joined, never an IN list of literals.
_scratch_meta = sa.MetaData()
_holdout_ids = sa.Table(
    "segcore_holdout_ids",
    _scratch_meta,
    sa.Column("id", sa.Integer, primary_key=True),
    prefixes=["TEMPORARY"],
)


# --------------------------------------------------------------------------------------------------- values


@dataclass(frozen=True)
class CampaignInfo:
    """A campaign with how many segments and logged segments refer to it."""

    no: str
    description: str
    start_date: dt.date | None
    end_date: dt.date | None
    status: str
    created_at: dt.datetime
    segment_count: int
    logged_count: int


@dataclass(frozen=True)
class StatusEvent:
    """One move of a segment between review states: who, when, why."""

    from_status: str
    to_status: str
    comment: str | None
    user: str
    at: dt.datetime


@dataclass(frozen=True)
class LoggedInfo:
    """A logged segment: the immutable record of who was contacted, who was held out, and when."""

    id: int
    segment_no: str
    description: str
    campaign_no: str | None
    template: str
    date: dt.date
    member_count: int
    contacted_count: int
    holdout_count: int
    holdout_pct: float | None
    holdout_seed: int | None
    follow_up_segment_no: str | None
    logged_by: str
    logged_at: dt.datetime
    cancelled: bool
    cancelled_at: dt.datetime | None


# --------------------------------------------------------------------------------------------------- helpers


def _as_date(value: dt.date | str | None, what: str) -> dt.date | None:
    """A date from a date or an ISO text; None or blank text is no date."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"the {what} {text!r} is not a date in the form YYYY-MM-DD") from None


def _minimum_size(conn: Connection) -> int:
    # Read in the caller's transaction (not _browse.minimum_segment_size, which opens its own).
    return read_setting(conn, "minimum_segment_size")


def _page(limit: int, offset: int) -> tuple[int, int]:
    return max(1, min(int(limit), _MAX_PAGE)), max(0, int(offset))


# --------------------------------------------------------------------------------------------------- campaigns


def _campaign_select() -> sa.Select[Any]:
    # One statement with both counts as correlated sub-selects: a list of campaigns is one query, not N+1.
    seg_count = (
        select(func.count()).select_from(segments).where(segments.c.campaign_no == campaigns.c.no).scalar_subquery()
    )
    log_count = (
        select(func.count()).select_from(logged).where(logged.c.campaign_no == campaigns.c.no).scalar_subquery()
    )
    return select(campaigns, seg_count.label("segment_count"), log_count.label("logged_count"))


def _campaign_info(r: sa.Row[Any]) -> CampaignInfo:
    return CampaignInfo(
        no=r.no,
        description=r.description,
        start_date=r.start_date,
        end_date=r.end_date,
        status=r.status,
        created_at=r.created_at,
        segment_count=int(r.segment_count),
        logged_count=int(r.logged_count),
    )


def _campaign(conn: Connection, no: str) -> CampaignInfo:
    row = conn.execute(_campaign_select().where(campaigns.c.no == no)).first()
    if row is None:
        raise NotFoundError(f"no campaign {no!r}")
    return _campaign_info(row)


def _check_campaign_values(
    description: str | None, start: dt.date | None, end: dt.date | None, status: str | None
) -> None:
    if description is not None and len(description) > 200:
        raise UsageError("the description is longer than 200 characters")
    if start is not None and end is not None and end < start:
        raise UsageError(f"the campaign ends ({end.isoformat()}) before it starts ({start.isoformat()})")
    if status is not None and status not in CAMPAIGN_STATUSES:
        raise UsageError(f"campaign status {status!r} is not valid; use one of {', '.join(CAMPAIGN_STATUSES)}")


def _campaign_text(info: CampaignInfo) -> str:
    """A campaign in a few words, for audit rows."""
    start = info.start_date.isoformat() if info.start_date else "-"
    end = info.end_date.isoformat() if info.end_date else "-"
    return f"description {info.description!r}, {start} to {end}, {info.status}"


def create_campaign(
    db: Database,
    no: str,
    *,
    description: str = "",
    start_date: dt.date | str | None = None,
    end_date: dt.date | str | None = None,
    status: str = "planned",
    user: str | None = None,
) -> CampaignInfo:
    """Create a campaign; its number follows the segment number rules. `user` (default: the current user) needs
    the manager role once accounts exist."""
    no = (no or "").strip()
    if not _SEGMENT_NO.match(no):
        raise UsageError(
            f"campaign number {no!r} is not valid: 1 to 30 letters, digits, '-', '_' or '.', "
            "starting with a letter or digit"
        )
    description = (description or "").strip()
    start, end = _as_date(start_date, "start date"), _as_date(end_date, "end date")
    status = (status or "planned").strip().lower()
    _check_campaign_values(description, start, end, status)
    user = user if user is not None else current_user()
    with db.write() as conn:
        require(conn, user, "campaign.edit")
        if conn.execute(select(campaigns.c.no).where(campaigns.c.no == no)).first() is not None:
            raise RefusedError(f"campaign {no} already exists")
        try:
            conn.execute(
                insert(campaigns).values(
                    no=no, description=description, start_date=start, end_date=end, status=status,
                    created_at=_now(),
                )
            )
        except IntegrityError:
            # Another writer created the same number between our check and our insert.
            raise RefusedError(f"campaign {no} already exists") from None
        info = _campaign(conn, no)
        record(conn, user, "campaign.create", f"campaign {no}", f"campaign {no} created", after=_campaign_text(info))
        return info


def update_campaign(
    db: Database,
    no: str,
    *,
    description: str | None = None,
    start_date: dt.date | str | None = None,
    end_date: dt.date | str | None = None,
    status: str | None = None,
    user: str | None = None,
) -> CampaignInfo:
    """Change a campaign; None leaves a field as it is, an empty text clears a date. `user` (default: the current
    user) needs the manager role once accounts exist."""
    user = user if user is not None else current_user()
    with db.write() as conn:
        require(conn, user, "campaign.edit")
        row = conn.execute(select(campaigns).where(campaigns.c.no == no).with_for_update()).first()
        if row is None:
            raise NotFoundError(f"no campaign {no!r}")
        before = _campaign(conn, no)
        values: dict[str, Any] = {}
        if description is not None:
            values["description"] = description.strip()
        if start_date is not None:
            values["start_date"] = _as_date(start_date, "start date")
        if end_date is not None:
            values["end_date"] = _as_date(end_date, "end date")
        if status is not None:
            values["status"] = status.strip().lower()
        _check_campaign_values(
            values.get("description"),
            values.get("start_date", row.start_date),
            values.get("end_date", row.end_date),
            values.get("status"),
        )
        if values:
            conn.execute(update(campaigns).where(campaigns.c.no == no).values(**values))
        info = _campaign(conn, no)
        if values:
            record(conn, user, "campaign.update", f"campaign {no}", f"campaign {no} changed",
                   before=_campaign_text(before), after=_campaign_text(info))
        return info


def get_campaign(db: Database, no: str) -> CampaignInfo:
    """One campaign with its counts."""
    with db.read() as conn:
        return _campaign(conn, no)


def list_campaigns(db: Database) -> list[CampaignInfo]:
    """Every campaign by number, with its segment and logged-segment counts (one query)."""
    with db.read() as conn:
        rows = conn.execute(_campaign_select().order_by(campaigns.c.no)).all()
    return [_campaign_info(r) for r in rows]


def delete_campaign(db: Database, no: str, *, user: str | None = None) -> None:
    """Delete a campaign that no segment and no logged segment refers to. `user` (default: the current user) needs
    the manager role once accounts exist."""
    user = user if user is not None else current_user()
    with db.write() as conn:
        require(conn, user, "campaign.edit")
        # The row lock makes a concurrent "create segment in this campaign" wait for us (its FK check locks it).
        row = conn.execute(select(campaigns.c.no).where(campaigns.c.no == no).with_for_update()).first()
        if row is None:
            raise NotFoundError(f"no campaign {no!r}")
        info = _campaign(conn, no)
        if info.segment_count or info.logged_count:
            raise RefusedError(
                f"campaign {no} is used by {plural(info.segment_count, 'segment')} and "
                f"{plural(info.logged_count, 'logged segment')}: it cannot be deleted"
            )
        conn.execute(delete(campaigns).where(campaigns.c.no == no))
        record(conn, user, "campaign.delete", f"campaign {no}", f"campaign {no} deleted", before=_campaign_text(info))


# --------------------------------------------------------------------------------------------------- review

# Which statuses each transition leaves from, and where it goes.
_TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "submit": (("draft", "rejected"), "submitted"),
    "withdraw": (("submitted", "approved", "rejected"), "draft"),
    "approve": (("submitted",), "approved"),
    "reject": (("submitted",), "rejected"),
}

# Why a transition is refused from a status, and what to do instead: (transition, current status) -> hint.
_HINTS: dict[tuple[str, str], str] = {
    ("submit", "submitted"): "it is under review already: a manager approves or rejects it",
    ("submit", "approved"): "it is approved already: log it, or withdraw it to change it",
    ("withdraw", "draft"): "it is a draft already: nothing to withdraw",
    ("approve", "draft"): "submit it first",
    ("approve", "rejected"): "submit it again first",
    ("approve", "approved"): "it is approved already",
    ("reject", "draft"): "submit it first",
    ("reject", "rejected"): "it is rejected already",
    ("reject", "approved"): "it is approved already: withdraw it to draft to change it",
}


# The permission each transition needs; withdrawing is the submitter's (or a manager's) undoing of a submit.
_TRANSITION_PERMISSIONS = {
    "submit": "segment.submit",
    "withdraw": "segment.submit",
    "approve": "segment.approve",
    "reject": "segment.reject",
}


def _transition_refused(no: str, transition: str, status: str) -> RefusedError:
    if status == "logged":
        return RefusedError(f"segment {no} is logged: its record is kept and its status cannot change")
    allowed = " or ".join(_TRANSITIONS[transition][0])
    hint = _HINTS.get((transition, status), f"only a {allowed} segment can be {transition}ed")
    return RefusedError(f"segment {no} is {status}: {hint}")


def _add_event(
    conn: Connection, segment_id: int, from_status: str, to_status: str, *, user: str, comment: str | None
) -> None:
    conn.execute(
        insert(events).values(
            segment_id=segment_id, from_status=from_status, to_status=to_status, comment=comment, user=user,
            at=_now(),
        )
    )


def _set_header(conn: Connection, row: sa.Row[Any], **values: Any) -> None:
    """Write the segment header with a version bump; the version guard catches a writer that slipped in."""
    result = conn.execute(
        update(segments)
        .where(segments.c.id == row.id, segments.c.version == row.version)
        .values(version=row.version + 1, updated_at=_now(), **values)
    )
    if result.rowcount != 1:
        raise _conflict(row.no)


def _locked(conn: Connection, no: str, expected_version: int | None) -> sa.Row[Any]:
    row = _segment_row(conn, no, lock=True)
    if expected_version is not None and row.version != expected_version:
        raise _conflict(no)
    return row


def _clean_comment(comment: str | None) -> str | None:
    text = (comment or "").strip()
    return text or None


def _transition(
    db: Database,
    no: str,
    transition: str,
    *,
    user: str | None,
    comment: str | None,
    expected_version: int | None,
) -> SegmentInfo:
    user = user if user is not None else current_user()
    sources, target = _TRANSITIONS[transition]
    with db.write() as conn:
        row = _locked(conn, no, expected_version)
        require(conn, user, _TRANSITION_PERMISSIONS[transition], owner=row.owner)
        if row.status not in sources:
            raise _transition_refused(no, transition, row.status)
        if transition == "approve" and (why := four_eyes_refusal(conn, row.id, user)):
            raise RefusedError(why)
        if transition == "submit":
            if not (row.description or "").strip():
                raise RefusedError(f"segment {no} needs a description before it is submitted")
            if row.size == 0:
                raise RefusedError(f"segment {no} has no members: add some before submitting it")
        values: dict[str, Any] = {"status": target, "status_comment": comment}
        if transition == "approve":
            # What was approved: drift compares the criteria up to this step with a replay today.
            values["approved_head_seq"] = row.head_seq
        _set_header(conn, row, **values)
        _add_event(conn, row.id, row.status, target, user=user, comment=comment)
        record(conn, user, f"segment.{transition}", f"segment {no}", comment or "", before=row.status, after=target)
        return _info(conn, _segment_row(conn, no))


def submit_segment(
    db: Database, no: str, *, user: str | None = None, comment: str | None = None, expected_version: int | None = None
) -> SegmentInfo:
    """Send a draft (or rejected) segment for review; it needs a description and at least one member."""
    return _transition(
        db, no, "submit", user=user, comment=_clean_comment(comment), expected_version=expected_version
    )


def withdraw_segment(
    db: Database, no: str, *, user: str | None = None, comment: str | None = None, expected_version: int | None = None
) -> SegmentInfo:
    """Take a submitted, approved or rejected segment back to draft."""
    return _transition(
        db, no, "withdraw", user=user, comment=_clean_comment(comment), expected_version=expected_version
    )


def approve_segment(
    db: Database, no: str, *, user: str | None = None, comment: str | None = None, expected_version: int | None = None
) -> SegmentInfo:
    """Approve a submitted segment; remembers which step was approved."""
    return _transition(
        db, no, "approve", user=user, comment=_clean_comment(comment), expected_version=expected_version
    )


def reject_segment(
    db: Database, no: str, *, comment: str, user: str | None = None, expected_version: int | None = None
) -> SegmentInfo:
    """Reject a submitted segment; the comment (required) says why."""
    text = _clean_comment(comment)
    if text is None:
        raise UsageError("a rejection needs a comment saying why")
    return _transition(db, no, "reject", user=user, comment=text, expected_version=expected_version)


def status_history(db: Database, no: str) -> list[StatusEvent]:
    """Every status change of the segment, oldest first (members changes that sent it back to draft included)."""
    with db.read() as conn:
        row = _segment_row(conn, no)
        rows = conn.execute(select(events).where(events.c.segment_id == row.id).order_by(events.c.id)).all()
    return [StatusEvent(r.from_status, r.to_status, r.comment, r.user, r.at) for r in rows]


def is_small(size: int, minimum: int) -> bool:
    """A segment under the minimum size is small: it cannot be exported or logged."""
    return size < minimum


def segment_is_small(db: Database, no: str) -> bool:
    """Whether the segment is under the `minimum_segment_size` setting."""
    with db.read() as conn:
        return is_small(int(_segment_row(conn, no).size), _minimum_size(conn))


# --------------------------------------------------------------------------------------------------- log segment


def _check_log_inputs(
    template: str, holdout_pct: float | None, seed: int | None, follow_up: bool, follow_up_no: str | None
) -> tuple[str, float | None, int | None, str | None]:
    code = (template or "").strip().upper()
    if not _TEMPLATE.match(code):
        raise UsageError(
            f"template {template!r} is not valid: 1 to 20 letters, digits, '-', '_' or '.' (for example EMAIL)"
        )
    pct: float | None = None
    if holdout_pct is not None:
        pct = float(holdout_pct)
        if not (0 < pct < 100) or math.isnan(pct):
            raise UsageError(f"the holdout is a share of the members above 0 and below 100 %, not {holdout_pct}")
    if seed is not None:
        if pct is None:
            raise UsageError("a seed is for a holdout: give the holdout percentage too")
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_HOLDOUT_SEED:
            raise UsageError(f"the seed is a whole number from 0 to {MAX_HOLDOUT_SEED:,}, not {seed}")
    fu_no: str | None = None
    if follow_up_no is not None:
        if not follow_up:
            raise UsageError("a follow-up number is for a follow-up segment: ask for the follow-up too")
        fu_no = follow_up_no.strip()
        if not _SEGMENT_NO.match(fu_no):
            raise UsageError(
                f"segment number {fu_no!r} is not valid: 1 to 30 letters, digits, '-', '_' or '.', "
                "starting with a letter or digit"
            )
    return code, pct, seed, fu_no


def _holdout_positions(n: int, count: int, seed: int) -> np.ndarray:
    """Which of n members (ids in ascending order) are held out: the first `count` of a seeded shuffle."""
    return np.random.default_rng(seed).permutation(n)[:count]


def _holdout_count(size: int, pct: float) -> int:
    # Round half up (not Python's half-to-even): 5 % of 50 members holds 3 out, as a person would count.
    return int(math.floor(size * pct / 100 + 0.5))


def _free_follow_up_no(conn: Connection, no: str) -> str:
    """`<no>-FU`, else `<no>-FU2`, `-FU3` ...; the number is shortened to keep within 30 characters."""
    for n in range(1, 1000):
        suffix = "-FU" if n == 1 else f"-FU{n}"
        candidate = no[: 30 - len(suffix)] + suffix
        if conn.execute(select(segments.c.id).where(segments.c.no == candidate)).first() is None:
            return candidate
    raise RefusedError(f"no free follow-up number for segment {no}: give one")


def _create_follow_up(
    conn: Connection, source: sa.Row[Any], fu_no: str, *, user: str, logged_id: int, n_holdout: int
) -> int:
    """A draft with the source's campaign and its treated members only: the control group is left out.

    Without a holdout every member was contacted: one Reuse segment step. With one, the step names the treated
    members (Add contacts, exclusion ignored as Reuse segment ignores it), so a replay (drift, saved criteria)
    gives the same members and never brings the control group back; its log line says so."""
    if conn.execute(select(segments.c.id).where(segments.c.no == fu_no)).first() is not None:
        raise RefusedError(f"segment {fu_no} already exists: choose another follow-up number")
    treated: tuple[str, ...] = ()
    # The members' numbers: the application database's contacts, or the source's for a segment over one.
    numbers = contacts if source.source is None else table_of(SourceContact)
    if n_holdout:
        treated = tuple(
            conn.execute(
                select(numbers.c.contact_no)
                .join(logged_mem, logged_mem.c.contact_id == numbers.c.id)
                .where(logged_mem.c.logged_id == logged_id, logged_mem.c.holdout.is_(False))
                .order_by(numbers.c.contact_no)
            ).scalars()
        )
        if len(treated) > MAX_MANUAL_VALUES:
            raise RefusedError(
                f"a follow-up of segment {source.no} would name {plural(len(treated), 'treated member')}, more than "
                f"{MAX_MANUAL_VALUES:,} in one step: log it without a follow-up"
            )
    now = _now()
    try:
        seg_id = conn.execute(
            insert(segments)
            .values(
                no=fu_no, description=source.description, campaign_no=source.campaign_no, owner=user,
                status="draft", version=0, head_seq=0, size=0, created_at=now, updated_at=now, source=source.source,
            )
            .returning(segments.c.id)
        ).scalar_one()
    except IntegrityError:
        raise RefusedError(f"segment {fu_no} already exists: choose another follow-up number") from None
    if n_holdout:
        request = ActionRequest(
            "add_contacts", contact_nos=treated, options=ActionOptions(ignore_exclusion=True)
        )
        text = f"treated members of {source.no} (control group of {n_holdout:,} left out)"
    else:
        request = ActionRequest("reuse_segment", source_segment_no=source.no)
        text = f"treated members of {source.no} (all members: logged without a control group)"
    result = _apply(conn, fu_no, request, user=user, expected_version=None, today=None)
    # The criteria log says which group the follow-up took, not "N named contacts".
    conn.execute(
        update(actions).where(actions.c.segment_id == seg_id, actions.c.seq == result.seq).values(description=text)
    )
    return int(seg_id)


def _log_refusal(conn: Connection, row: sa.Row[Any]) -> str | None:
    # SPEC §3's preconditions of Log segment, plus the review rules; the one place they are written.
    no = row.no
    if row.status == "logged":
        return f"segment {no} is logged already: a segment is logged once"
    if row.status == "submitted":
        return f"segment {no} is under review: approve or withdraw it first"
    if row.status == "rejected":
        return f"segment {no} was rejected: withdraw it to draft and change it first"
    if row.status != "approved" and read_setting(conn, "log_requires_approval"):
        return f"segment {no} is a draft: logging needs a manager's approval first (submit it for review)"
    if not (row.description or "").strip():
        return f"segment {no} needs a description before it is logged"
    if row.size == 0:
        return f"segment {no} has no members to log"
    minimum = _minimum_size(conn)
    if is_small(row.size, minimum):
        return f"segment {no} has {plural(row.size, 'member')}, fewer than the minimum of {minimum:,}: it cannot be logged"
    return None


def log_refusal(db: Database, no: str) -> str | None:
    """Why segment `no` cannot be logged now (one sentence), or None when it can."""
    with db.read() as conn:
        return _log_refusal(conn, _segment_row(conn, no))


def log_segment(
    db: Database,
    no: str,
    *,
    template: str,
    date: dt.date | str | None = None,
    user: str | None = None,
    follow_up: bool = False,
    follow_up_no: str | None = None,
    holdout_pct: float | None = None,
    seed: int | None = None,
    expected_version: int | None = None,
) -> LoggedInfo:
    """Log a segment: one interaction per member not held out, an immutable snapshot, the segment read-only.

    All in one transaction; with `follow_up`, a new draft segment with the same campaign and the treated members
    only (the control group is left out; its criteria log says "treated members of <NO> (control group of N left
    out)")."""
    code, pct, seed, fu_no = _check_log_inputs(template, holdout_pct, seed, follow_up, follow_up_no)
    day = _as_date(date, "date") or dt.date.today()
    user = user if user is not None else current_user()
    if pct is not None and seed is None:
        # Drawn here and stored, so the same control group can be drawn again.
        seed = secrets.randbelow(MAX_HOLDOUT_SEED + 1)
    with db.write() as conn:
        row = _locked(conn, no, expected_version)
        require(conn, user, "segment.log", owner=row.owner)
        refusal = _log_refusal(conn, row)
        if refusal:
            raise RefusedError(refusal)
        n_holdout = _holdout_count(row.size, pct) if pct is not None else 0
        if n_holdout >= row.size:
            raise RefusedError(
                f"a holdout of {pct:g} % keeps every member of segment {no} out ({plural(row.size, 'member')}): lower it"
            )

        now = _now()
        logged_id = int(
            conn.execute(
                insert(logged)
                .values(
                    segment_id=row.id, segment_no=row.no, description=row.description,
                    campaign_no=row.campaign_no, template=code, date=day, member_count=row.size,
                    holdout_count=n_holdout, holdout_pct=pct, holdout_seed=seed, logged_by=user, logged_at=now,
                    cancelled=False,
                )
                .returning(logged.c.id)
            ).scalar_one()
        )

        seg_members = select(members.c.contact_id).where(members.c.segment_id == row.id)
        if n_holdout:
            assert seed is not None
            ids = np.fromiter(conn.execute(seg_members.order_by(members.c.contact_id)).scalars(), dtype=np.int64)
            chosen = ids[_holdout_positions(len(ids), n_holdout, seed)]
            _holdout_ids.create(conn, checkfirst=True)
            conn.execute(delete(_holdout_ids))
            conn.execute(insert(_holdout_ids), [{"id": int(i)} for i in chosen])
            flag: sa.ColumnElement[Any] = sa.exists().where(_holdout_ids.c.id == members.c.contact_id)
        else:
            flag = literal(False, sa.Boolean)
        conn.execute(
            insert(logged_mem).from_select(
                ["logged_id", "contact_id", "holdout"],
                select(literal(logged_id), members.c.contact_id, flag).where(members.c.segment_id == row.id),
            )
        )
        # A segment over a source: its contacts are not in this database, so no interaction can be written here
        # (the source keeps its own); the snapshot above records who was contacted and who was held out.
        contacted = row.size - n_holdout if row.source is not None else conn.execute(
            insert(interactions).from_select(
                [
                    "contact_id", "date", "template", "campaign_no", "segment_no", "created_by",
                    "logged_segment_id", "cancelled",
                ],
                select(
                    logged_mem.c.contact_id,
                    literal(day, sa.Date),
                    literal(code, sa.String),
                    literal(row.campaign_no, sa.String),
                    literal(row.no, sa.String),
                    literal(user, sa.String),
                    literal(logged_id),
                    literal(False, sa.Boolean),
                ).where(logged_mem.c.logged_id == logged_id, logged_mem.c.holdout.is_(False)),
            )
        ).rowcount
        if contacted != row.size - n_holdout:  # pragma: no cover - a broken invariant must not be committed
            raise RefusedError(f"segment {no} changed while it was being logged: review and retry")

        _set_header(conn, row, status="logged")
        held = f", {n_holdout:,} held out" if n_holdout else ""
        _add_event(
            conn, row.id, row.status, "logged", user=user,
            comment=f"logged as {code} on {day.isoformat()}: {plural(contacted, 'interaction')}{held}",
        )
        bump_data_version(conn)

        if follow_up:
            fu_id = _create_follow_up(
                conn, row, fu_no or _free_follow_up_no(conn, row.no), user=user, logged_id=logged_id,
                n_holdout=n_holdout,
            )
            conn.execute(update(logged).where(logged.c.id == logged_id).values(follow_up_segment_id=fu_id))
        info = _logged(conn, no)
        follow = f", follow-up {info.follow_up_segment_no}" if info.follow_up_segment_no else ""
        record(
            conn, user, "segment.log", f"segment {no}",
            f"logged as {code} on {day.isoformat()}: {plural(contacted, 'interaction')}{held}{follow}",
            before=row.status, after="logged",
        )
        return info


def cancel_logged(db: Database, no: str, *, user: str | None = None) -> LoggedInfo:
    """Cancel a logged segment: its interactions are marked cancelled (filters stop counting them)."""
    user = user if user is not None else current_user()
    with db.write() as conn:
        row = _segment_row(conn, no, lock=True)
        require(conn, user, "segment.cancel_log", owner=row.owner)
        rec = conn.execute(select(logged).where(logged.c.segment_id == row.id)).first()
        if rec is None:
            raise RefusedError(f"segment {no} is {row.status}, not logged: there is no log to cancel")
        if rec.cancelled:
            when = f" on {rec.cancelled_at:%Y-%m-%d %H:%M}" if rec.cancelled_at else ""
            raise RefusedError(f"the log of segment {no} was cancelled already{when}")
        n = conn.execute(
            update(interactions).where(interactions.c.logged_segment_id == rec.id).values(cancelled=True)
        ).rowcount
        conn.execute(update(logged).where(logged.c.id == rec.id).values(cancelled=True, cancelled_at=_now()))
        # The segment stays logged; the event keeps who cancelled and when (logged_segments has no user column).
        _set_header(conn, row)
        _add_event(
            conn, row.id, row.status, row.status, user=user,
            comment=f"log cancelled: {plural(n, 'interaction')} marked cancelled",
        )
        bump_data_version(conn)
        record(
            conn, user, "segment.cancel_log", f"segment {no}",
            f"log of segment {no} cancelled: {plural(n, 'interaction')} marked cancelled",
            before="log active", after="log cancelled",
        )
        return _logged(conn, no)


# --------------------------------------------------------------------------------------------------- reading logs


def _logged_select() -> sa.Select[Any]:
    follow = segments.alias("follow_up")
    return select(logged, follow.c.no.label("follow_up_no")).select_from(
        logged.outerjoin(follow, follow.c.id == logged.c.follow_up_segment_id)
    )


def _logged_info(r: sa.Row[Any]) -> LoggedInfo:
    return LoggedInfo(
        id=r.id,
        segment_no=r.segment_no,
        description=r.description,
        campaign_no=r.campaign_no,
        template=r.template,
        date=r.date,
        member_count=r.member_count,
        # Every member not held out got exactly one interaction (log_segment checks it before committing).
        contacted_count=r.member_count - r.holdout_count,
        holdout_count=r.holdout_count,
        holdout_pct=r.holdout_pct,
        holdout_seed=r.holdout_seed,
        follow_up_segment_no=r.follow_up_no,
        logged_by=r.logged_by,
        logged_at=r.logged_at,
        cancelled=bool(r.cancelled),
        cancelled_at=r.cancelled_at,
    )


def _logged(conn: Connection, no: str) -> LoggedInfo:
    row = conn.execute(_logged_select().where(logged.c.segment_no == no)).first()
    if row is None:
        seg = _segment_row(conn, no)  # NotFoundError when there is no such segment at all
        raise NotFoundError(f"segment {no} is {seg.status}: it has not been logged")
    return _logged_info(row)


def _logged_id(conn: Connection, no: str) -> int:
    return _logged(conn, no).id


def get_logged(db: Database, no: str) -> LoggedInfo:
    """The logged record of segment `no`."""
    with db.read() as conn:
        return _logged(conn, no)


def list_logged(db: Database, *, campaign_no: str | None = None) -> list[LoggedInfo]:
    """Logged segments, newest first; only one campaign's when `campaign_no` is given."""
    stmt = _logged_select().order_by(logged.c.logged_at.desc(), logged.c.id.desc())
    if campaign_no is not None:
        stmt = stmt.where(logged.c.campaign_no == campaign_no)
    with db.read() as conn:
        return [_logged_info(r) for r in conn.execute(stmt).all()]


def logged_members(
    db: Database, no: str, *, limit: int = 100, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """A page of the logged snapshot's members (contact_no, name, email, holdout) by number, and the total."""
    limit, offset = _page(limit, offset)
    with db.read() as conn:
        lid = _logged_id(conn, no)
        total = conn.execute(
            select(func.count()).select_from(logged_mem).where(logged_mem.c.logged_id == lid)
        ).scalar_one()
        rows = conn.execute(
            select(contacts.c.contact_no, contacts.c.name, contacts.c.email, logged_mem.c.holdout)
            .join(contacts, contacts.c.id == logged_mem.c.contact_id)
            .where(logged_mem.c.logged_id == lid)
            .order_by(contacts.c.contact_no)
            .limit(limit)
            .offset(offset)
        ).mappings().all()
    return [{**r, "holdout": bool(r["holdout"])} for r in rows], int(total)


def logged_interactions(
    db: Database, no: str, *, limit: int = 100, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """A page of the interactions the log wrote (contact_no, name, date, template, campaign_no, segment_no,
    created_by, cancelled)."""
    limit, offset = _page(limit, offset)
    with db.read() as conn:
        lid = _logged_id(conn, no)
        total = conn.execute(
            select(func.count()).select_from(interactions).where(interactions.c.logged_segment_id == lid)
        ).scalar_one()
        rows = conn.execute(
            select(
                contacts.c.contact_no, contacts.c.name, interactions.c.date, interactions.c.template,
                interactions.c.campaign_no, interactions.c.segment_no, interactions.c.created_by,
                interactions.c.cancelled,
            )
            .join(contacts, contacts.c.id == interactions.c.contact_id)
            .where(interactions.c.logged_segment_id == lid)
            .order_by(contacts.c.contact_no, interactions.c.id)
            .limit(limit)
            .offset(offset)
        ).mappings().all()
    return [{**r, "cancelled": bool(r["cancelled"])} for r in rows], int(total)
