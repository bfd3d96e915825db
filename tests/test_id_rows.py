"""A list of ids as rows, bound as one parameter: the text numpy writes, and the rows each database expands."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from segcore import Database
from segcore._id_rows import id_rows, id_text, insert_ids
from segcore._models import SegmentMember


@pytest.mark.parametrize(
    ("ids", "text"),
    [
        ([], ""),
        ([0], "0"),
        ([7, 42, 100], "  7, 42,100"),
        ([3, 1, 2], "3,1,2"),  # the order given, not sorted
        ([9, 10], " 9,10"),
        ([-5, 12], "-5,12"),  # negative ids (a source's contacts) the plain way
        ([2**40], str(2**40)),
    ],
)
def test_id_text(ids: list[int], text: str) -> None:
    assert id_text(np.asarray(ids, dtype=np.int64)) == text
    # Valid JSON once bracketed: SQLite's json_each reads it (and PostgreSQL's array input skips the same spaces).
    assert json.loads("[" + text + "]") == ids


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=st.lists(st.integers(-(2**40), 2**40), max_size=200))
def test_the_database_gives_back_the_ids_in_order(db: Database, ids: list[int]) -> None:
    with db.read() as conn:
        got = conn.execute(id_rows(conn, ids)).scalars().all()
        assert [int(v) for v in got] == ids
        rows = id_rows(conn, ids).subquery()
        assert conn.execute(select(func.count()).select_from(rows)).scalar_one() == len(ids)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=st.sets(st.integers(1, 2**31 - 1), max_size=300))
def test_insert_ids_writes_one_row_per_id_with_the_constants(db: Database, ids: set[int]) -> None:
    # PostgreSQL through COPY's binary format, SQLite through json_each: the same rows either way.
    members = SegmentMember.__table__
    with db.scratch() as conn:
        wanted = sorted(ids)
        assert insert_ids(conn, members, "contact_id", np.asarray(wanted), segment_id=7, added_seq=3) == len(wanted)
        rows = conn.execute(select(members).order_by(members.c.contact_id)).all()
        assert [tuple(r) for r in rows] == [(7, i, 3) for i in wanted]
