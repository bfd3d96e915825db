"""Spark == SQLite, row for row: the filter scenario tables of tests/test_filter_sql.py and random filters run
against a Parquet source written from the same contacts as an SQLite database.

The scenario tables go through `matched_ids_many` (one Spark job per table); a few cases also through `matched_ids`
and `count` one by one. Every value is a named parameter: none reaches the Spark SQL text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, insert, select

from segcore._db import Database
from segcore._filter_sql import matching_ids
from segcore._filter_tree import Node, from_json, to_json
from segcore._models import Contact, ContactCode
from tests import test_filter_property as prop
from tests import test_filter_sql as scen
from tests.spark_support import SPARK_URL, export_source
from tests.test_filter_sql import text_ranges  # noqa: F401 - the fixture that opens text ranges to text fields

contacts = Contact.__table__
TODAY = scen.TODAY

# Contacts beyond the scenario world, for the random filters: letters that fold to several (ß, æ, œ, ﬁ), Greek and
# Cyrillic capitals, a decomposed accent, and a name with SQL's special characters.
EXTRA = [
    dict(id=20, contact_no="X1", name="Straße Øster", city="Æbeltoft", country="DK", email="s@x.io"),
    dict(id=21, contact_no="X2", name="ΣΟΦΙΑ Ünal", city="Αθήνα", country="GR", gender="female"),
    dict(id=22, contact_no="X3", name="Ёлка Œuvre", city="Mосква", country="UA", email="e@ÿ.org"),
    dict(id=23, contact_no="X4", name="Cafe\u0301 ﬁne", city="Zu\u0308rich", country="CH", total_spent=5),
    dict(id=24, contact_no="X5", name="a%b_c\\d'e", city="*?", country="FR", rating=3),
]


def _domain(email: str | None) -> str | None:
    return email.split("@", 1)[1] if email else None


def _world(folder: Path, extra: bool) -> Database:
    db = Database.open(f"sqlite:///{folder / 'world.db'}")
    scen._fill(db)
    if extra:
        with db.write() as conn:
            # The domain as an import stores it (a source derives it from the e-mail the same way).
            conn.execute(insert(contacts), [{**scen.BASE, **row, "email_domain": _domain(row.get("email"))} for row in EXTRA])
            conn.execute(insert(ContactCode.__table__), [{"kind": "mailing_groups", "code": "NEWS", "contact_id": 20}])
    return db


def _source(spark: Any, db: Database, folder: Path, name: str) -> Any:
    from segcore.spark import Location, SourceSpec, open_source

    contacts_path, interactions_path = export_source(db, folder)
    return open_source(
        SourceSpec(name, SPARK_URL, Location("path", str(contacts_path), "parquet"),
                   interactions=Location("path", str(interactions_path), "parquet"))
    )  # fmt: skip


@pytest.fixture(scope="module")
def world(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Database, Any]]:
    """The scenario world of tests/test_filter_sql.py in SQLite, and the same contacts as a Parquet source."""
    folder = tmp_path_factory.mktemp("spark_world")
    db = _world(folder, extra=False)
    yield db, _source(spark, db, folder / "source", "world")
    db.dispose()


@pytest.fixture(scope="module")
def wider(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Database, Any]]:
    """The scenario world plus contacts whose text folds the hard ways."""
    folder = tmp_path_factory.mktemp("spark_wider")
    db = _world(folder, extra=True)
    yield db, _source(spark, db, folder / "source", "wider")
    db.dispose()


def _sqlite(db: Database, node: Node, today: dt.date) -> list[str]:
    stmt = select(contacts.c.contact_no).where(contacts.c.id.in_(matching_ids(node, today=today)))
    with db.read() as conn:
        return sorted(conn.execute(stmt).scalars())


def _agree(world: tuple[Database, Any], cases: list[tuple[str, dict[str, Any], set[str] | None]],
           today: dt.date = TODAY) -> None:  # fmt: skip
    db, source = world
    nodes = [from_json(obj) for _, obj, _ in cases]
    got = source.matched_ids_many(nodes, today=today)
    wrong = {}
    for (name, _obj, expected), node, spark_ids in zip(cases, nodes, got, strict=True):
        sqlite_ids = _sqlite(db, node, today)
        if spark_ids != sqlite_ids or (expected is not None and set(spark_ids) != expected):
            wrong[name] = {"spark": spark_ids, "sqlite": sqlite_ids, "expected": expected}
    assert wrong == {}


def _table(params: list[Any]) -> list[tuple[str, dict[str, Any], set[str]]]:
    return [(p.id, p.values[0], p.values[1]) for p in params]


def test_scenario_table_matches_sqlite_row_for_row(world: tuple[Database, Any]) -> None:
    _agree(world, _table(scen.CASES))


@pytest.mark.usefixtures("text_ranges")
def test_text_ranges_match_sqlite(world: tuple[Database, Any]) -> None:
    _agree(world, _table(scen.TEXT_RANGE_CASES))


def test_derived_fields_follow_today_as_on_sqlite(world: tuple[Database, Any]) -> None:
    for p in scen.AGES_ON_OTHER_DAYS:
        today, obj, expected = p.values
        _agree(world, [(p.id, obj, expected)], today)


def test_hostile_values_are_data_in_spark(world: tuple[Database, Any]) -> None:
    cases: list[tuple[str, dict[str, Any], set[str] | None]] = []
    for i, value in enumerate(scen.HOSTILE):
        for op in scen.LIKE_OPS:
            cases.append((f"{i}-{op}", scen.c("name", op, value), None))
        cases.append((f"{i}-in", scen.c("city", "in", [value, "nowhere"]), set()))
        if value.strip():
            cases.append((f"{i}-country", scen.c("country", "eq", value), set()))
            cases.append((f"{i}-list", scen.c("mailing_groups", "has_any", [value]), set()))
    _agree(world, cases)
    db, source = world
    assert source.row_count() == len(scen.CONTACTS)


def test_values_never_reach_the_spark_sql_text(world: tuple[Database, Any]) -> None:
    _, source = world
    # Values that our own constant SQL holds anyway ('' in split(x, '')) say nothing: left out.
    baseline = " ".join(source.sql(matching_ids(from_json(n), today=TODAY))[0]
                        for n in (scen.c("name", "contains", "harmless"), scen.c("city", "in", ["harmless"])))  # fmt: skip
    for value in scen.HOSTILE:
        if len(value.strip()) < 2 or value in baseline or scen.fold(value) in baseline:
            continue
        for node in (scen.c("name", "contains", value), scen.c("name", "eq", value), scen.c("city", "in", [value])):
            text, params = source.sql(matching_ids(from_json(node), today=TODAY))
            assert value not in text and scen.fold(value) not in text
            if node["op"] == "eq":
                assert scen.fold(value) in params.values()


ONE_BY_ONE = [
    scen.c("country", "eq", "FR"),
    scen.c("name", "contains", "mü"),
    {"any": [scen.c("city", "eq", "ZURICH"), scen.rel("interactions", scen.c("template", "eq", "EMAIL"), 3)]},
    {"not": scen.c("mailing_groups", "has_any", ["NEWS", "VIP"])},
    scen.c("exclude_from_segments", "is_true"),
]


@pytest.mark.parametrize("obj", ONE_BY_ONE, ids=range(len(ONE_BY_ONE)))
def test_matched_ids_and_count_one_by_one(world: tuple[Database, Any], obj: dict[str, Any]) -> None:
    db, source = world
    node = from_json(obj)
    want = _sqlite(db, node, TODAY)
    assert source.matched_ids(node, today=TODAY) == want
    with db.read() as conn:
        flagged = set(conn.execute(select(contacts.c.contact_no).where(contacts.c.exclude_from_segments)).scalars())
        total = conn.execute(select(func.count()).select_from(contacts)).scalar_one()
    count = source.count(node, today=TODAY)
    assert (count.matched, count.excluded, count.total) == (
        len(set(want) - flagged), len(set(want) & flagged), total,
    )  # fmt: skip
    kept = source.matched_ids(node, today=TODAY, include_excluded=False)
    assert kept == sorted(set(want) - flagged)


def test_folding_the_hard_ways_matches_sqlite(wider: tuple[Database, Any]) -> None:
    cases = [
        ("ss", scen.c("name", "contains", "strasse"), {"X1"}),
        ("oe", scen.c("name", "contains", "OEUVRE"), {"X3"}),
        ("sigma", scen.c("name", "starts_with", "σοφια"), {"X2"}),
        ("greek-city", scen.c("city", "eq", "ΑΘΗΝΑ"), {"X2"}),
        ("decomposed", scen.c("name", "starts_with", "café"), {"X4"}),
        ("ligature", scen.c("name", "ends_with", "fine"), {"X4"}),
        ("zurich", scen.c("city", "eq", "zurich"), {"P4", "P5", "X4"}),
        ("ae", scen.c("city", "starts_with", "AEBEL"), {"X1"}),
        ("specials", scen.c("name", "eq", "A%B_C\\D'E"), {"X5"}),
        ("wildcards", scen.c("city", "matches", "*?"), None),
    ]
    _agree(wider, cases)


# One random filter an example: a Spark query costs a fraction of a second, so few examples.
@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])  # fmt: skip
@given(tree=st.one_of(prop.single_conditions, prop.trees))
def test_random_filters_spark_equals_sqlite(wider: tuple[Database, Any], tree: Node) -> None:
    db, source = wider
    assert source.matched_ids(tree, today=TODAY) == _sqlite(db, tree, TODAY), to_json(tree)
