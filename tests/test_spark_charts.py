"""Charts and steps over a Spark source equal the application database's: the distributions of every chart dimension
(one GROUPING SETS pass) against segcore's own `distribution_sql`, and the counts of Add, Refine and Reduce against
the sets computed from SQLite."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from segcore._db import Database
from segcore._demo import load_demo
from segcore._filter_sql import matching_ids
from segcore._filter_tree import Node, from_json
from segcore._models import Contact
from segcore._stats import DIMENSIONS, distribution_sql
from segcore.spark.source import StepOptions
from tests.spark_support import SPARK_URL, export_source

contacts = Contact.__table__
TODAY = dt.date(2024, 6, 30)
PEOPLE = {"field": "type", "op": "eq", "value": "person"}
A = {"any": [{"field": "country", "op": "in", "value": ["FR", "DE"]}, {"field": "age", "op": "lt", "value": 30}]}
B = {"all": [{"field": "total_spent", "op": "ge", "value": 500}, {"not": {"field": "churn_risk", "op": "eq", "value": "high"}}]}


@pytest.fixture(scope="module")
def demo(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Database, Any]]:
    """400 generated demo contacts in SQLite, and the same contacts as a Parquet source."""
    from segcore.spark import Location, SourceSpec, open_source

    folder = tmp_path_factory.mktemp("spark_demo")
    db = Database.open(f"sqlite:///{folder / 'demo.db'}")
    load_demo(db, 400, seed=11, today=TODAY)
    contacts_path, interactions_path = export_source(db, folder / "source")
    source = open_source(
        SourceSpec("demo", SPARK_URL, Location("path", str(contacts_path), "parquet"),
                   interactions=Location("path", str(interactions_path), "parquet"))
    )  # fmt: skip
    yield db, source
    db.dispose()


def _ids(db: Database, node: Node) -> set[str]:
    stmt = select(contacts.c.contact_no).where(contacts.c.id.in_(matching_ids(node, today=TODAY)))
    with db.read() as conn:
        return set(conn.execute(stmt).scalars())


def _sql_charts(db: Database, numbers: set[str]) -> dict[str, tuple[int, dict[str, int]]]:
    ids = select(contacts.c.id).where(contacts.c.contact_no.in_(sorted(numbers)))
    with db.read() as conn:
        out = {}
        for d in DIMENSIONS:
            dist = distribution_sql(conn, ids, d, today=TODAY)
            out[d] = (dist.total, dist.counts)
    return out


def _charts(dists: dict[str, Any]) -> dict[str, tuple[int, dict[str, int]]]:
    return {d: (dist.total, dist.counts) for d, dist in dists.items()}


@pytest.mark.parametrize("obj", [None, PEOPLE, A], ids=["everyone", "people", "filter"])
def test_distributions_equal_segcore_in_one_pass(demo: tuple[Database, Any], obj: dict[str, Any] | None) -> None:
    db, source = demo
    node = from_json(obj) if obj is not None else None
    with db.read() as conn:
        everyone = set(conn.execute(select(contacts.c.contact_no)).scalars())
    numbers = _ids(db, node) if node is not None else everyone
    got = _charts(source.distributions(node, today=TODAY))
    want = _sql_charts(db, numbers)
    assert got == want
    # In each dimension's chart order, as the SQL path gives it.
    assert {d: list(c) for d, (_, c) in got.items()} == {d: list(c) for d, (_, c) in want.items()}


def test_the_single_valued_charts_are_one_grouping_sets_query(demo: tuple[Database, Any]) -> None:
    import sqlalchemy as sa

    from segcore._stats import _bucket_expr

    _, source = demo
    exprs = [_bucket_expr(d, TODAY) for d in ("country", "gender", "spend_band")]
    text, _ = source.sql(sa.select(*exprs).select_from(contacts).group_by(sa.func.grouping_sets(*exprs)))
    assert "GROUPING SETS ((" in text and text.count("GROUP BY") == 1


def _flagged(db: Database) -> set[str]:
    with db.read() as conn:
        return set(conn.execute(select(contacts.c.contact_no).where(contacts.c.exclude_from_segments)).scalars())


@pytest.mark.parametrize("kind", ["add", "refine", "reduce"])
def test_step_scan_and_its_charts_equal_the_sets(demo: tuple[Database, Any], kind: str) -> None:
    db, source = demo
    members = _ids(db, from_json(A)) | {"GONE-1", "GONE-2"}  # two members the source no longer holds
    matched = _ids(db, from_json(B))
    if kind == "add":
        matched -= _flagged(db)
        after = members | matched
    elif kind == "refine":
        after = members & matched
    else:
        after = members - matched
    scan = source.step_scan(kind, from_json(B), members, today=TODAY)
    assert (scan.matched, scan.before, scan.after, scan.entering, scan.leaving) == (
        len(matched), len(members), len(after), len(after - members), len(members - after),
    )  # fmt: skip
    before_charts, after_charts = source.step_distributions(kind, from_json(B), members, today=TODAY)
    held = {n for n in members if not n.startswith("GONE")}
    assert _charts(before_charts) == _sql_charts(db, held)
    assert _charts(source.member_distributions(members, today=TODAY)) == _sql_charts(db, held)
    assert _charts(after_charts) == _sql_charts(db, after - {"GONE-1", "GONE-2"})


def test_add_ignoring_the_exclusion_takes_flagged_contacts_too(demo: tuple[Database, Any]) -> None:
    db, source = demo
    matched = _ids(db, from_json(PEOPLE))
    assert matched & _flagged(db), "the demo should flag some of these contacts"
    scan = source.step_scan("add", from_json(PEOPLE), [], today=TODAY, options=StepOptions(ignore_exclusion=True))
    assert (scan.entering, scan.after) == (len(matched), len(matched))
    scan = source.step_scan("add", from_json(PEOPLE), [], today=TODAY)
    assert scan.entering == len(matched - _flagged(db))


def _orgs(db: Database) -> dict[str, tuple[str, str | None]]:
    """contact_no → (type, the company it is or belongs to)."""
    with db.read() as conn:
        rows = conn.execute(select(contacts.c.contact_no, contacts.c.type, contacts.c.company_no)).all()
    return {no: (t, no if t == "company" else company) for no, t, company in rows}


COMPANY_OPTIONS = [
    pytest.param("add", StepOptions(expand_companies=True), id="add-expand"),
    pytest.param("add", StepOptions(related_companies=True), id="add-related"),
    pytest.param("add", StepOptions(contact_type="person", expand_companies=True), id="add-persons-expand"),
    pytest.param("refine", StepOptions(entire_companies=True), id="refine-entire"),
    pytest.param("reduce", StepOptions(entire_companies=True), id="reduce-entire"),
]


@pytest.mark.parametrize(("kind", "options"), COMPANY_OPTIONS)
def test_company_options_grow_the_matched_set_as_the_engine_does(
    demo: tuple[Database, Any], kind: str, options: StepOptions
) -> None:
    db, source = demo
    orgs = _orgs(db)
    node = from_json({"field": "country", "op": "eq", "value": "FR"})
    members = _ids(db, from_json(A))
    base = {n for n in _ids(db, node) if options.contact_type is None or orgs[n][0] == options.contact_type}
    matched = set(base)
    if options.expand_companies or options.entire_companies:
        touched = {orgs[n][1] for n in base} - {None}
        matched |= {n for n, (_, org) in orgs.items() if org in touched}
    if options.related_companies:
        matched |= {orgs[n][1] for n in base if orgs[n][0] == "person" and orgs[n][1]}  # type: ignore[misc]
    assert matched > base, "the demo should have companies to grow into"
    if kind == "add":
        matched -= _flagged(db)
    after = {"add": members | matched, "refine": members & matched, "reduce": members - matched}[kind]
    scan = source.step_scan(kind, node, members, today=TODAY, options=options)
    assert (scan.matched, scan.after, scan.entering, scan.leaving) == (
        len(matched), len(after), len(after - members), len(members - after),
    )  # fmt: skip


def test_options_that_do_not_fit_the_step_are_refused(demo: tuple[Database, Any]) -> None:
    from segcore import UsageError

    _, source = demo
    with pytest.raises(UsageError, match="expand_companies goes with add only, not refine"):
        source.step_scan("refine", from_json(PEOPLE), [], options=StepOptions(expand_companies=True))
    with pytest.raises(UsageError, match="entire_companies goes with refine or reduce only"):
        source.step_scan("add", from_json(PEOPLE), [], options=StepOptions(entire_companies=True))
