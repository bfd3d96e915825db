"""Property: the in-memory fast path matches exactly the contacts the independent model (and so SQL) matches.

The populations, trees and the pure-Python model come from test_filter_property.py, which holds SQL equal to the
same model; together they hold the fast path equal to SQL. The snapshot is built from each database, so the
PostgreSQL loading path (dates as objects) is covered as well as SQLite's (dates as text).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from segcore import Database
from segcore._fast_eval import evaluate as fast_evaluate
from segcore._filter_sql import matching_ids
from segcore._filter_tree import Node, to_json
from segcore._models import Contact, ContactCode, Interaction, ProfileAnswer
from segcore._snapshot import _build, bump_data_version, data_version
from tests.test_filter_property import TODAYS, evaluate, insert_population, populations, trees


def _reset(db: Database, rows: list[dict[str, Any]]) -> None:
    with db.write() as conn:
        for table in (Interaction, ProfileAnswer, ContactCode, Contact):
            conn.execute(delete(table.__table__))
        insert_population(conn, rows)
        bump_data_version(conn)


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(rows=populations, filters=st.lists(trees, min_size=1, max_size=6), today=st.sampled_from(TODAYS))
def test_fast_path_agrees_with_model_and_sql(
    db: Database, rows: list[dict[str, Any]], filters: list[Node], today: dt.date
) -> None:
    _reset(db, rows)
    with db.read() as conn:
        snap = _build(conn, data_version(conn))
        for tree in filters:
            mask = fast_evaluate(tree, snap, today=today)
            got = {int(i) for i in snap.ids[mask]}
            want = {i for i, row in enumerate(rows, start=1) if evaluate(tree, row, today)}
            assert got == want, to_json(tree)
            assert got == set(conn.execute(matching_ids(tree, today=today)).scalars()), to_json(tree)
