"""A segment's header row and its member ids, as the engine (writes) and the evaluation backends (reads) look them up.

Both sides need them, and neither may import the other for them.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Select, select

from ._errors import NotFoundError
from ._models import Contact, Segment, SegmentMember, SourceContact, table_of

__all__ = ["contact_id_of", "member_ids_of", "member_numbers_of", "segment_row", "segments", "source_contacts"]

segments = table_of(Segment)
members = table_of(SegmentMember)
contacts = table_of(Contact)
source_contacts = table_of(SourceContact)


def segment_row(conn: Connection, no: str, *, lock: bool = False) -> sa.Row[Any]:
    """The segment's header row; `lock` takes the row lock a write transaction needs. NotFoundError if none."""
    stmt = select(segments).where(segments.c.no == no)
    if lock:
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    if row is None:
        raise NotFoundError(f"no segment {no!r}")
    return row


def member_ids_of(segment_id: int) -> Select[Any]:
    """The contact ids of the segment's members, as a SELECT."""
    return select(members.c.contact_id).where(members.c.segment_id == segment_id)


def member_numbers_of(row: sa.Row[Any]) -> Select[Any]:
    """The contact numbers of a segment's members, as a SELECT: from the application database's contacts, or from
    `source_contacts` for a segment built over a source."""
    if row.source is None:
        return (
            select(contacts.c.contact_no)
            .join(members, members.c.contact_id == contacts.c.id)
            .where(members.c.segment_id == row.id)
        )
    return (
        select(source_contacts.c.contact_no)
        .join(members, members.c.contact_id == source_contacts.c.id)
        .where(members.c.segment_id == row.id)
    )


def contact_id_of(conn: Connection, row: sa.Row[Any], contact_no: str) -> int | None:
    """The id a segment's member rows use for `contact_no` (in its source's numbering), or None when unknown."""
    if row.source is None:
        return conn.execute(select(contacts.c.id).where(contacts.c.contact_no == contact_no)).scalar()
    return conn.execute(
        select(source_contacts.c.id).where(
            source_contacts.c.source == row.source, source_contacts.c.contact_no == contact_no
        )
    ).scalar()
