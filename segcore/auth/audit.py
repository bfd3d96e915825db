"""The append-only audit trail: one row per write, in the same transaction as the write it records.

`record` is the only way in; nothing in segcore updates or deletes an audit row. Because the row is written with
the writer's own connection, a change that rolls back takes its audit row with it, and a committed change always
has one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, insert, or_, select

from .._models import AuditEntry, table_of
from .identity import current_user
from .roles import require

if TYPE_CHECKING:
    from .._db import Database

__all__ = ["AuditRow", "audit_rows", "record"]

audit_t = table_of(AuditEntry)
# Short by design: an audit row says what changed, the records it points at keep the whole.
_TEXT = 500


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _cut(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class AuditRow:
    """One audit row as pages and the CLI show it."""

    id: int
    at: dt.datetime
    user: str
    kind: str
    object: str
    summary: str
    before: str | None
    after: str | None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat(timespec="seconds")
        return data


def record(
    conn: Connection,
    user: str | None,
    kind: str,
    object: str,
    summary: str = "",
    *,
    before: str | None = None,
    after: str | None = None,
) -> None:
    """Append one audit row with the writer's connection (so it commits or rolls back with the change)."""
    conn.execute(
        insert(audit_t).values(
            at=_now(),
            user=_cut(user or "", 60),
            kind=_cut(kind, 40),
            object=_cut(object, 200),
            summary=_cut(summary, _TEXT) or "",
            before=_cut(before, _TEXT),
            after=_cut(after, _TEXT),
        )
    )


def _start(since: dt.date | dt.datetime) -> dt.datetime:
    if isinstance(since, dt.datetime):
        return since.replace(tzinfo=None) if since.tzinfo is None else since.astimezone(dt.UTC).replace(tzinfo=None)
    return dt.datetime.combine(since, dt.time())


def audit_rows(
    db: Database,
    *,
    user: str | None = None,
    since: dt.date | dt.datetime | None = None,
    until: dt.date | dt.datetime | None = None,
    kind: str | None = None,
    object: str | None = None,
    limit: int | None = None,
    reader: str | None = None,
) -> list[AuditRow]:
    """Audit rows, newest first: by whom (`user`), from when (`since`, UTC) and until when (`until`: a date
    includes its whole day, a datetime is exclusive), of a kind or kind family
    ("segment" matches "segment.apply"), about an object ("segment SPRING"). `reader` (default: the current user)
    needs the manager role once accounts exist."""
    reader = reader if reader is not None else current_user()
    stmt = select(audit_t).order_by(audit_t.c.id.desc())
    if user:
        stmt = stmt.where(func.lower(audit_t.c.user) == user.strip().lower())
    if since is not None:
        stmt = stmt.where(audit_t.c.at >= _start(since))
    if until is not None:
        end = _start(until) if isinstance(until, dt.datetime) else _start(until + dt.timedelta(days=1))
        stmt = stmt.where(audit_t.c.at < end)
    if kind:
        k = kind.strip()
        stmt = stmt.where(or_(audit_t.c.kind == k, audit_t.c.kind.startswith(k + ".", autoescape=True)))
    if object:
        stmt = stmt.where(func.lower(audit_t.c.object) == object.strip().lower())
    if limit is not None:
        stmt = stmt.limit(max(0, int(limit)))
    with db.read() as conn:
        require(conn, reader, "audit.read")
        rows = conn.execute(stmt).all()
    return [AuditRow(r.id, r.at, r.user, r.kind, r.object, r.summary, r.before, r.after) for r in rows]
