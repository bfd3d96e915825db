"""Schema step 2 → 3: the outcomes table that campaign results count (hooked into segcore._db.MIGRATIONS[3])."""

from __future__ import annotations

from sqlalchemy import Connection

from .._models import Base

__all__ = ["to_v3"]


def to_v3(conn: Connection) -> None:
    """Outcomes (orders, sign-ups ...) per contact and date, with their indexes; nothing stored changes."""
    # create_all with checkfirst creates the table, its unique constraint and its indexes in the caller's
    # transaction, on SQLite and PostgreSQL alike; a database that has the table already is left as it is.
    Base.metadata.create_all(conn, tables=[Base.metadata.tables["outcomes"]], checkfirst=True)
