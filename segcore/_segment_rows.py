"""A segment's header row and its member ids, as the engine (writes) and the evaluation backends (reads) look them up.

Both sides need them, and neither may import the other for them.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Select, select

from ._errors import NotFoundError, RefusedError
from ._models import Segment, SegmentMember, table_of

__all__ = ["local_segment", "member_ids_of", "segment_row"]

segments = table_of(Segment)
members = table_of(SegmentMember)


def segment_row(conn: Connection, no: str, *, lock: bool = False) -> sa.Row[Any]:
    """The segment's header row; `lock` takes the row lock a write transaction needs. NotFoundError if none."""
    stmt = select(segments).where(segments.c.no == no)
    if lock:
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    if row is None:
        raise NotFoundError(f"no segment {no!r}")
    return row


def local_segment(conn: Connection, no: str) -> None:
    """Refuse a step or preview on a segment built over a Spark source: the engine and the in-memory and SQL
    evaluators read the application database's contacts, so they would answer for the wrong contacts."""
    row = segment_row(conn, no)
    if row.source is not None:
        raise RefusedError(
            f"segment {no} is built over the Spark source {row.source}: its steps and previews run in Spark, which "
            "the Builder and `segment add` do not reach yet (nothing changed); `source show` counts the source"
        )


def member_ids_of(segment_id: int) -> Select[Any]:
    """The contact ids of the segment's members, as a SELECT."""
    return select(members.c.contact_id).where(members.c.segment_id == segment_id)
