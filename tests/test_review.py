"""Review analytics (SPEC §3) on SQLite and PostgreSQL: overlap and Jaccard against a set model, composition and
its index, small-segment masking, drift replayed by the engine, and that drift leaves nothing behind."""

from __future__ import annotations

import datetime as dt
from itertools import combinations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from segcore._db import Database
from segcore._engine import ActionRequest, apply_action, create_segment, delete_segment, get_segment, undo
from segcore._errors import NotFoundError, RefusedError
from segcore._filter_text import parse_text
from segcore._lifecycle import approve_segment, submit_segment
from segcore._models import (
    ActionDelta,
    Contact,
    Segment,
    SegmentAction,
    SegmentMember,
    SegmentStatusEvent,
    Setting,
)
from segcore._preview import preview_step, segment_distributions
from segcore._review import MAX_OVERLAP_SEGMENTS, drift, overlap, segment_composition
from segcore._snapshot import bump_data_version
from tests.factories import add_contacts, person

contacts_t = Contact.__table__
TODAY = dt.date(2026, 6, 1)


def population(db: Database, n: int = 40) -> list[str]:
    nos = [f"P{i:03d}" for i in range(n)]
    add_contacts(db, [person(no, country=("FR", "DE", "NL", "BE")[i % 4], gender=("female", "male")[i % 2])
                      for i, no in enumerate(nos)])
    return nos


def segment(db: Database, no: str, members: list[str] | set[str]) -> None:
    create_segment(db, no, description=f"seg {no}")
    if members:
        apply_action(db, no, ActionRequest("add_contacts", contact_nos=tuple(sorted(members))))


def set_minimum(db: Database, value: int) -> None:
    with db.write() as conn:
        conn.execute(update(Setting.__table__).where(Setting.key == "minimum_segment_size").values(value=str(value)))


def rows_in(db: Database, model: type) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(model.__table__)).scalar_one())


# ------------------------------------------------------------------------------------------------- overlap


def test_overlap_cases(db: Database) -> None:
    nos = population(db)
    sets = {"ALL": set(nos), "HALF": set(nos[:20]), "QUARTER": set(nos[:10]), "OTHER": set(nos[30:]),
            "SAME": set(nos[:20]), "EMPTY": set()}
    for no, members in sets.items():
        segment(db, no, members)
    names = list(sets)
    ov = overlap(db, names)
    assert ov.nos == tuple(names) and ov.sizes == tuple(len(sets[n]) for n in names)
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            both = len(sets[a] & sets[b])
            union = len(sets[a] | sets[b])
            assert ov.counts[i][j] == both
            assert ov.jaccard(i, j) == pytest.approx(both / union if union else 0.0)
    assert ov.jaccard_matrix()[1][4] == 1.0  # HALF and SAME: equal
    assert ov.jaccard(names.index("HALF"), names.index("OTHER")) == 0.0  # disjoint
    with pytest.raises(NotFoundError, match="NOPE"):
        overlap(db, ["ALL", "NOPE"])


def test_overlap_input_edges(db: Database) -> None:
    nos = population(db, 8)
    segment(db, "A", nos[:4])
    segment(db, "B", nos[2:])
    # Duplicates and blanks are dropped, order kept; nothing asked, nothing answered.
    ov = overlap(db, ["B", " A ", "B", ""])
    assert (ov.nos, ov.sizes, ov.counts) == (("B", "A"), (6, 4), ((6, 2), (2, 4)))
    assert ov.jaccard(0, 1) == pytest.approx(2 / 8)
    assert overlap(db, []) == type(ov)((), (), ())
    with pytest.raises(RefusedError, match="at most"):
        overlap(db, [f"X{i}" for i in range(MAX_OVERLAP_SEGMENTS + 1)])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sets(st.integers(min_value=0, max_value=29)), min_size=2, max_size=4))
def test_overlap_equals_the_set_model(db: Database, memberships: list[set[int]]) -> None:
    if not rows_in(db, Contact):
        population(db, 30)
    with db.write() as conn:  # fresh segments per example
        conn.execute(SegmentMember.__table__.delete())
        conn.execute(ActionDelta.__table__.delete())
        conn.execute(SegmentAction.__table__.delete())
        conn.execute(Segment.__table__.delete())
    names = [f"S{k}" for k in range(len(memberships))]
    for name, members in zip(names, memberships, strict=True):
        segment(db, name, {f"P{i:03d}" for i in members})
    ov = overlap(db, names)
    for i, j in combinations(range(len(names)), 2):
        a, b = memberships[i], memberships[j]
        assert ov.counts[i][j] == ov.counts[j][i] == len(a & b)
        assert ov.jaccard(i, j) == pytest.approx(len(a & b) / len(a | b) if a | b else 0.0)


# ------------------------------------------------------------------------------------------------- composition


def test_composition_shares_and_index(db: Database) -> None:
    set_minimum(db, 1)
    nos = population(db)  # 10 per country, 20 per gender
    fr = [no for i, no in enumerate(nos) if i % 4 == 0]
    segment(db, "FR", fr[:8] + [nos[1], nos[2]])  # 8 FR, 1 DE, 1 NL
    comp = segment_composition(db, "FR", today=TODAY)
    country = {r["bucket"]: r for r in comp["country"]}
    assert country["FR"]["segment_count"] == 8 and country["FR"]["all_share"] == 0.25
    assert country["FR"]["index"] == 320.0  # 80 % ÷ 25 % × 100
    assert country["BE"]["segment_count"] == 0 and country["BE"]["index"] == 0.0


def test_small_segment_charts_hide_small_buckets(db: Database) -> None:
    nos = population(db)
    segment(db, "SMALL", nos[:12])  # 3 per country, 6 per gender
    set_minimum(db, 13)
    # Under the minimum, every bucket of a one-value-per-contact dimension is under it too: all hidden.
    dists = segment_distributions(db, "SMALL", today=TODAY)
    assert dists["country"].counts == {} and dists["country"].hidden == 12 and dists["country"].total == 12
    assert dists["gender"].counts == {} and dists["gender"].hidden == 12
    comp = {r["bucket"]: r for r in segment_composition(db, "SMALL", today=TODAY)["country"]}
    assert comp["FR"]["index"] is None and comp["FR"]["segment_count"] is None
    # The preview masks a side under the minimum too; the all-contacts side never is.
    for backend in ("memory", "sql"):
        p = preview_step(db, "SMALL", ActionRequest("add", parse_text(["country=FR"])), today=TODAY, backend=backend)
        assert p.before["country"].hidden == 12, backend
        assert p.after["country"].counts.get("FR") == 10 and p.after["country"].hidden == 0, backend  # 19 after
        p = preview_step(db, "SMALL", ActionRequest("reduce", parse_text(["gender=male"])), today=TODAY,
                         backend=backend)
        assert (p.after["gender"].counts, p.after["gender"].hidden, p.after["gender"].total) == ({}, 6, 6), backend
    set_minimum(db, 1)
    assert segment_distributions(db, "SMALL", today=TODAY)["country"].hidden == 0


# ------------------------------------------------------------------------------------------------- drift


def move(db: Database, contact_no: str, country: str) -> None:
    with db.write() as conn:
        conn.execute(update(contacts_t).where(contacts_t.c.contact_no == contact_no).values(country=country))
        bump_data_version(conn)


def test_drift_shows_who_joins_and_leaves(db: Database) -> None:
    population(db)
    create_segment(db, "FR", description="France")
    apply_action(db, "FR", ActionRequest("add", parse_text(["country=FR"])), today=TODAY)
    apply_action(db, "FR", ActionRequest("add_contacts", contact_nos=("P001",)), today=TODAY)
    apply_action(db, "FR", ActionRequest("reduce", parse_text(["gender=male"])), today=TODAY)
    before = drift(db, "FR", today=TODAY)
    assert before.unchanged and before.steps_replayed == 3 and before.replay_size == before.current_size
    move(db, "P002", "FR")  # female: would join
    move(db, "P000", "DE")  # female, French before: would leave
    d = drift(db, "FR", today=TODAY)
    assert (d.joined, d.left, d.joined_sample, d.left_sample) == (1, 1, ("P002",), ("P000",))
    assert d.reference == "last step" and d.replay_size == d.current_size


def test_drift_of_an_approved_segment_replays_what_was_approved(db: Database) -> None:
    population(db)
    create_segment(db, "FR", description="France")
    apply_action(db, "FR", ActionRequest("add", parse_text(["country=FR"])), today=TODAY)
    submit_segment(db, "FR")
    approve_segment(db, "FR")
    move(db, "P001", "FR")
    d = drift(db, "FR", today=TODAY)
    assert (d.reference, d.joined, d.left, d.joined_sample) == ("approval", 1, 0, ("P001",))
    assert d.reference_at is not None


TABLES = (Segment, SegmentMember, SegmentAction, ActionDelta, SegmentStatusEvent)


def test_drift_leaves_nothing_behind(db: Database) -> None:
    nos = population(db)
    segment(db, "SRC", nos[30:])
    create_segment(db, "FR", description="France")
    apply_action(db, "FR", ActionRequest("add", parse_text(["country=FR"])), today=TODAY)
    apply_action(db, "FR", ActionRequest("add_contacts", contact_nos=("P001",)), today=TODAY)
    apply_action(db, "FR", ActionRequest("reuse_segment", source_segment_no="SRC"), today=TODAY)
    apply_action(db, "FR", ActionRequest("reduce", parse_text(["gender=male"])), today=TODAY)
    submit_segment(db, "FR")
    approve_segment(db, "FR")
    move(db, "P002", "FR")  # so the replay really differs from the members
    counts = {m: rows_in(db, m) for m in TABLES}
    info = get_segment(db, "FR")
    d = drift(db, "FR", today=TODAY)
    assert (d.steps_replayed, d.joined) == (4, 1)
    assert {m: rows_in(db, m) for m in TABLES} == counts
    assert get_segment(db, "FR") == info  # still approved, same version and size
    with db.read() as conn:
        assert conn.execute(select(Segment.no).where(Segment.no.like("~%"))).first() is None
    # A segment created afterwards (it may get the id the scratch row had) starts empty and works normally.
    segment(db, "NEW", nos[:3])
    assert get_segment(db, "NEW").size == 3 and drift(db, "NEW", today=TODAY).unchanged


def test_drift_replays_only_the_applied_steps(db: Database) -> None:
    population(db)
    create_segment(db, "FR", description="France")
    apply_action(db, "FR", ActionRequest("add", parse_text(["country=FR"])), today=TODAY)
    apply_action(db, "FR", ActionRequest("add", parse_text(["country=DE"])), today=TODAY)
    undo(db, "FR")  # the DE step stays in the log, past the head
    d = drift(db, "FR", today=TODAY)
    assert (d.steps_replayed, d.current_size, d.replay_size, d.unchanged) == (1, 10, 10, True)


def test_drift_of_a_reused_segment_brings_its_current_members(db: Database) -> None:
    nos = population(db)
    segment(db, "SRC", nos[:5])
    create_segment(db, "COPY", description="reuses SRC")
    apply_action(db, "COPY", ActionRequest("reuse_segment", source_segment_no="SRC"), today=TODAY)
    apply_action(db, "SRC", ActionRequest("add_contacts", contact_nos=("P010", "P011")), today=TODAY)
    apply_action(db, "SRC", ActionRequest("reduce", parse_text(["contact_no=P000"])), today=TODAY)
    d = drift(db, "COPY", today=TODAY)
    assert (d.joined_sample, d.left_sample, d.replay_size) == (("P010", "P011"), ("P000",), 6)
    # A source deleted since cannot be replayed: a clear refusal, and still nothing written.
    delete_segment(db, "SRC")
    counts = {m: rows_in(db, m) for m in TABLES}
    with pytest.raises(RefusedError, match="step 1 of segment COPY cannot be replayed"):
        drift(db, "COPY", today=TODAY)
    assert {m: rows_in(db, m) for m in TABLES} == counts
    with pytest.raises(NotFoundError):
        drift(db, "NOPE", today=TODAY)
