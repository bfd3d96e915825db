"""Dynamic segments (SPEC §3) on SQLite and PostgreSQL: saved filter, count now and over time, freeze."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from segcore._db import Database
from segcore._dynamic import (
    count_filter,
    count_history,
    create_dynamic,
    delete_dynamic,
    dynamic_count,
    freeze_dynamic,
    get_dynamic,
    list_dynamic,
    refresh_dynamic,
    update_dynamic,
)
from segcore._engine import criteria_log, get_segment, member_contact_nos, undo
from segcore._errors import NotFoundError, RefusedError, UsageError
from segcore._filter_sql import matching_ids
from segcore._filter_text import parse_text
from segcore._filter_tree import EMPTY
from segcore._models import Contact, DynamicSegment, DynamicSegmentCount, Segment, SegmentAction
from segcore._snapshot import bump_data_version
from tests.factories import add_contacts, person

contacts_t = Contact.__table__
TODAY = dt.date(2026, 6, 1)
COUNTRIES = ("FR", "DE", "NL", "BE")


def population(db: Database) -> None:
    rows = []
    for i in range(40):
        rows.append(person(
            f"P{i:03d}", country=COUNTRIES[i % 4], gender=("female", "male")[i % 2], total_spent=i * 25,
            exclude_from_segments=(i % 10 == 0), email=f"p{i}@example.org",
        ))
    add_contacts(db, rows)


def expected(db: Database, lines: list[str]) -> set[str]:
    """Independent evaluation: the SQL matching set, without the contacts flagged 'exclude from segments'."""
    with db.read() as conn:
        ids = matching_ids(parse_text(lines), today=TODAY).subquery()
        return set(conn.execute(
            select(contacts_t.c.contact_no).where(contacts_t.c.id.in_(select(ids.c.id)),
                                                   contacts_t.c.exclude_from_segments.is_(False))
        ).scalars())


def count_rows(db: Database, model: type) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(model.__table__)).scalar_one())


@pytest.mark.parametrize(
    "lines",
    [["country=FR"], ["country=FR|DE", "gender=female"], ["total_spent=>=500"], ["country=NL", "total_spent=<100"]],
)
@pytest.mark.parametrize("backend", ["memory", "sql"])
def test_count_equals_an_independent_evaluation(db: Database, lines: list[str], backend: str) -> None:
    population(db)
    n, total = count_filter(db, parse_text(lines), today=TODAY, backend=backend)
    assert (n, total) == (len(expected(db, lines)), 40)


def test_create_list_get_update_delete(db: Database) -> None:
    population(db)
    info = create_dynamic(db, "FR-NOW", parse_text(["country=FR"]), description="France, live", owner="ann")
    assert (info.no, info.description, info.owner, info.expression) == ("FR-NOW", "France, live", "ann", "country=FR")
    assert info.last_count is None and info.last_refreshed_at is None
    create_dynamic(db, "DE-NOW", parse_text(["country=DE"]))
    assert [d.no for d in list_dynamic(db)] == ["DE-NOW", "FR-NOW"]
    updated = update_dynamic(db, "FR-NOW", filter=parse_text(["country=FR|BE"]), description="FR and BE")
    assert updated.expression == "country=FR|BE" and get_dynamic(db, "FR-NOW").description == "FR and BE"
    delete_dynamic(db, "DE-NOW")
    assert [d.no for d in list_dynamic(db)] == ["FR-NOW"]
    with pytest.raises(NotFoundError):
        get_dynamic(db, "DE-NOW")


@pytest.mark.parametrize(
    "no, filt, error, match",
    [
        ("bad no", ["country=FR"], UsageError, "not valid"),
        ("X", None, UsageError, "matches everybody"),
        ("TAKEN", ["country=FR"], RefusedError, "already exists"),
    ],
)
def test_create_refusals_write_nothing(db: Database, no: str, filt: list[str] | None, error: type, match: str) -> None:
    create_dynamic(db, "TAKEN", parse_text(["country=DE"]))
    with pytest.raises(error, match=match):
        create_dynamic(db, no, parse_text(filt) if filt else EMPTY)
    assert count_rows(db, DynamicSegment) == 1


def test_refresh_records_counts_that_follow_the_data(db: Database) -> None:
    population(db)
    create_dynamic(db, "FR-NOW", parse_text(["country=FR"]))
    first = refresh_dynamic(db, "FR-NOW", today=TODAY)
    assert (first.count, first.total) == (len(expected(db, ["country=FR"])), 40)
    # A new French contact, and one moves away: the count follows.
    add_contacts(db, [person("P100", country="FR")])
    with db.write() as conn:
        conn.execute(update(contacts_t).where(contacts_t.c.contact_no == "P004").values(country="DE"))
        bump_data_version(conn)
    assert dynamic_count(db, "FR-NOW", today=TODAY) == (first.count, 41)
    second = refresh_dynamic(db, "FR-NOW", today=TODAY)
    assert [(p.count, p.total) for p in count_history(db, "FR-NOW")] == [(first.count, 40), (first.count, 41)]
    assert get_dynamic(db, "FR-NOW").last_count == second.count
    assert count_rows(db, DynamicSegmentCount) == 2


def test_freeze_makes_an_undoable_static_segment_of_exactly_the_count(db: Database) -> None:
    population(db)
    create_dynamic(db, "LIVE", parse_text(["country=FR|DE"]), description="FR and DE")
    n, _ = dynamic_count(db, "LIVE", today=TODAY)
    info = freeze_dynamic(db, "LIVE", "FROZEN", user="ann", today=TODAY)
    assert (info.no, info.size, info.status, info.description) == ("FROZEN", n, "draft", "FR and DE")
    assert set(member_contact_nos(db, "FROZEN")) == expected(db, ["country=FR|DE"])
    [step] = criteria_log(db, "FROZEN")
    assert (step.kind, step.added) == ("add", n)
    undo(db, "FROZEN")
    assert get_segment(db, "FROZEN").size == 0


def test_freeze_refused_writes_nothing(db: Database) -> None:
    population(db)
    create_dynamic(db, "LIVE", parse_text(["country=FR"]))
    freeze_dynamic(db, "LIVE", "TAKEN", today=TODAY)
    segments_before, actions_before = count_rows(db, Segment), count_rows(db, SegmentAction)
    for new_no, match in (("TAKEN", "already exists"), ("no good", "not valid")):
        with pytest.raises((RefusedError, UsageError), match=match):
            freeze_dynamic(db, "LIVE", new_no, today=TODAY)
    with pytest.raises(NotFoundError):
        freeze_dynamic(db, "LIVE", "OTHER", campaign_no="NOPE", today=TODAY)
    assert (count_rows(db, Segment), count_rows(db, SegmentAction)) == (segments_before, actions_before)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    countries=st.lists(st.sampled_from(COUNTRIES), min_size=1, max_size=3, unique=True),
    spent=st.integers(min_value=0, max_value=1000),
)
def test_memory_and_sql_counts_agree(sqlite_db: Database, countries: list[str], spent: int) -> None:
    if not count_rows(sqlite_db, Contact):
        population(sqlite_db)
    node = parse_text([f"country={'|'.join(countries)}", f"total_spent=>={spent}"])
    assert count_filter(sqlite_db, node, today=TODAY, backend="memory") == count_filter(
        sqlite_db, node, today=TODAY, backend="sql"
    )
