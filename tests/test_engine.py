from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import select, update

from segcore import ConflictError, Database, NotFoundError, RefusedError, UsageError
from segcore._engine import (
    ActionOptions,
    ActionRequest,
    apply_action,
    copy_segment,
    create_segment,
    criteria_log,
    delete_segment,
    get_segment,
    list_segments,
    member_contact_nos,
    preview,
    preview_sql,
    provenance,
    redo,
    reuse_criteria,
    save_criteria,
    split_emails,
    undo,
)
from segcore._filter_tree import from_json
from segcore._models import Segment, SegmentMember
from tests.factories import add_contacts, company, person

ALL = {"K1", "P11", "P12", "K2", "P21", "P22", "S1", "S2", "S3"}


@pytest.fixture
def world(db: Database) -> Database:
    """Two companies with persons, standalone persons, two of them excluded from segments."""
    add_contacts(
        db,
        [
            company("K1", country="FR"),
            person("P11", "K1", country="FR", email="P11@Contoso.com"),
            person("P12", "K1", country="DE", email="p12@fabrikam.com"),
            company("K2", country="DE"),
            person("P21", "K2", country="DE", exclude_from_segments=True),
            person("P22", "K2", country="BE"),
            person("S1", country="FR", email="s1@example.org"),
            person("S2", country="FR", exclude_from_segments=True, email="s2@example.org"),
            person("S3", country="BE"),
        ],
    )
    create_segment(db, "SEG1", description="Spring mailing", owner="ann")
    return db


def f(field: str, op: str, value: Any = None) -> Any:
    return from_json({"field": field, "op": op, "value": value})


def members(db: Database, no: str = "SEG1") -> set[str]:
    return set(member_contact_nos(db, no))


def fill_all(db: Database, no: str = "SEG1") -> None:
    apply_action(db, no, ActionRequest("add", f("name", "is_not_empty"), ActionOptions(ignore_exclusion=True)))


ADD_CASES = [
    pytest.param(f("country", "eq", "FR"), ActionOptions(), {"K1", "P11", "S1"}, id="plain-excludes-flagged"),
    pytest.param(f("country", "eq", "FR"), ActionOptions(ignore_exclusion=True), {"K1", "P11", "S1", "S2"}, id="ignore-exclusion"),
    pytest.param(f("country", "eq", "BE"), ActionOptions(expand_companies=True), {"K2", "P22", "S3"}, id="expand"),
    pytest.param(f("country", "eq", "BE"), ActionOptions(related_companies=True), {"K2", "P22", "S3"}, id="related"),
    pytest.param(f("contact_no", "eq", "P12"), ActionOptions(related_companies=True), {"K1", "P12"}, id="related-person"),
    pytest.param(f("contact_no", "eq", "P12"), ActionOptions(expand_companies=True), {"K1", "P11", "P12"}, id="expand-person"),
    pytest.param(
        f("type", "eq", "company"), ActionOptions(expand_companies=True, ignore_exclusion=True),
        {"K1", "P11", "P12", "K2", "P21", "P22"}, id="expand-companies-ignore",
    ),
    pytest.param(f("contact_no", "eq", "S3"), ActionOptions(related_companies=True), {"S3"}, id="related-standalone"),
]


@pytest.mark.parametrize(("flt", "opts", "expected"), ADD_CASES)
def test_add(world: Database, flt: Any, opts: ActionOptions, expected: set[str]) -> None:
    request = ActionRequest("add", flt, opts)
    pv = preview(world, "SEG1", request)
    result = apply_action(world, "SEG1", request, user="ann")
    assert members(world) == expected
    assert (pv.added, pv.size_after) == (result.added, result.size_after) == (len(expected), len(expected))
    assert pv.matched == result.matched == preview_sql(world, "SEG1", request).matched
    assert get_segment(world, "SEG1").size == len(expected)


REMOVE_CASES = [
    pytest.param("refine", f("country", "eq", "FR"), False, {"K1", "P11", "S1", "S2"}, id="refine"),
    pytest.param("refine", f("country", "eq", "FR"), True, {"K1", "P11", "P12", "S1", "S2"}, id="refine-entire"),
    pytest.param("reduce", f("country", "eq", "DE"), False, {"K1", "P11", "P22", "S1", "S2", "S3"}, id="reduce"),
    pytest.param("reduce", f("country", "eq", "DE"), True, {"S1", "S2", "S3"}, id="reduce-entire"),
    pytest.param("refine", from_json({"all": []}), False, ALL, id="refine-everything-keeps-all"),
    pytest.param("reduce", from_json({"any": []}), False, ALL, id="reduce-nothing"),
]


@pytest.mark.parametrize(("kind", "flt", "entire", "expected"), REMOVE_CASES)
def test_refine_reduce(world: Database, kind: str, flt: Any, entire: bool, expected: set[str]) -> None:
    fill_all(world)
    request = ActionRequest(kind, flt, ActionOptions(entire_companies=entire))
    pv = preview(world, "SEG1", request)
    result = apply_action(world, "SEG1", request)
    assert members(world) == expected
    assert pv.removed == result.removed == len(ALL) - len(expected)
    # Refine/Reduce count the members the filter matched, in the preview and in the log alike.
    assert pv.matched == result.matched
    assert pv.size_after == result.size_after == len(expected)


def test_undo_redo_restore_members_and_provenance(world: Database) -> None:
    apply_action(world, "SEG1", ActionRequest("add", f("country", "eq", "FR")))  # K1 P11 S1
    apply_action(world, "SEG1", ActionRequest("add", f("country", "eq", "BE")))  # P22 S3
    before = _state(world)
    apply_action(world, "SEG1", ActionRequest("reduce", f("type", "eq", "company")))
    assert members(world) == {"P11", "S1", "P22", "S3"}
    undone = undo(world, "SEG1")
    assert undone.removed == 1 and _state(world) == before
    redone = redo(world, "SEG1")
    assert redone.removed == 1 and members(world) == {"P11", "S1", "P22", "S3"}
    undo(world, "SEG1")
    undo(world, "SEG1")
    assert members(world) == {"K1", "P11", "S1"}
    undo(world, "SEG1")
    assert members(world) == set() and get_segment(world, "SEG1").size == 0
    with pytest.raises(RefusedError, match="nothing to undo"):
        undo(world, "SEG1")
    redo(world, "SEG1")
    redo(world, "SEG1")
    assert _state(world) == before


def test_new_step_after_undo_ends_redo(world: Database) -> None:
    apply_action(world, "SEG1", ActionRequest("add", f("country", "eq", "FR")))
    apply_action(world, "SEG1", ActionRequest("add", f("country", "eq", "BE")))
    undo(world, "SEG1")
    apply_action(world, "SEG1", ActionRequest("add", f("country", "eq", "DE")))
    log = criteria_log(world, "SEG1")
    assert [e.seq for e in log] == [1, 2] and not any(e.undone for e in log)
    assert "DE" in log[1].description
    with pytest.raises(RefusedError, match="nothing to redo"):
        redo(world, "SEG1")


def test_criteria_log_and_provenance(world: Database) -> None:
    apply_action(world, "SEG1", ActionRequest("add", f("country", "eq", "FR")), user="ann")
    apply_action(world, "SEG1", ActionRequest("reduce", f("contact_no", "eq", "S1")), user="bob")
    log = criteria_log(world, "SEG1")
    assert [(e.seq, e.kind, e.matched, e.added, e.removed, e.size_after, e.user) for e in log] == [
        (1, "add", 3, 3, 0, 3, "ann"),
        (2, "reduce", 1, 0, 1, 2, "bob"),
    ]
    assert log[0].filter_json == {"field": "country", "op": "eq", "value": "FR"}
    p = provenance(world, "SEG1", "P11")
    assert p.is_member and p.added_by is not None and p.added_by.seq == 1
    gone = provenance(world, "SEG1", "S1")
    assert not gone.is_member and gone.removed_by is not None and gone.removed_by.seq == 2
    assert "step 2" in gone.explain()
    never = provenance(world, "SEG1", "S3")
    assert never.added_by is None and never.removed_by is None
    undo(world, "SEG1")
    assert criteria_log(world, "SEG1")[1].undone
    assert provenance(world, "SEG1", "S1").is_member
    with pytest.raises(NotFoundError):
        provenance(world, "SEG1", "NOPE")


def test_add_and_remove_named_contacts(world: Database) -> None:
    r = apply_action(world, "SEG1", ActionRequest("add_contacts", contact_nos=("P11", "S2", "S3")))
    assert members(world) == {"P11", "S3"}  # S2 is excluded from segments
    assert r.added == 2
    apply_action(
        world, "SEG1", ActionRequest("add_contacts", contact_nos=("S2",), options=ActionOptions(ignore_exclusion=True))
    )
    apply_action(world, "SEG1", ActionRequest("remove_contacts", contact_nos=("P11",)))
    assert members(world) == {"S2", "S3"}
    with pytest.raises(NotFoundError, match="NOPE"):
        apply_action(world, "SEG1", ActionRequest("add_contacts", contact_nos=("S1", "NOPE")))
    assert members(world) == {"S2", "S3"}  # refused whole
    undo(world, "SEG1")
    assert members(world) == {"P11", "S2", "S3"}


def test_add_emails_case_insensitive_and_reports_unmatched(world: Database) -> None:
    emails = split_emails("P11@CONTOSO.com, s1@example.org;\nnobody@nowhere.net  s2@example.org")
    pv = preview(world, "SEG1", ActionRequest("add_emails", emails=emails))
    assert pv.unmatched == ("nobody@nowhere.net",) and pv.added == 2 and pv.skipped_excluded == 1
    r = apply_action(world, "SEG1", ActionRequest("add_emails", emails=emails))
    assert members(world) == {"P11", "S1"} and r.unmatched == ("nobody@nowhere.net",)


def test_add_emails_takes_ten_thousand_at_once(world: Database) -> None:
    emails = tuple(f"user{i}@bulk.example" for i in range(12_000)) + ("p12@fabrikam.com",)
    r = apply_action(world, "SEG1", ActionRequest("add_emails", emails=emails))
    assert r.added == 1 and len(r.unmatched) == 12_000


def test_split_emails() -> None:
    assert split_emails(" A@x.com,,b@y.org ; a@X.com\n\tc@z.net ") == ("a@x.com", "b@y.org", "c@z.net")
    assert split_emails("") == ()


def test_reuse_segment_and_copy(world: Database) -> None:
    apply_action(world, "SEG1", ActionRequest("add", f("country", "eq", "FR")))
    create_segment(world, "SEG2")
    apply_action(world, "SEG2", ActionRequest("add", f("country", "eq", "BE")))
    apply_action(world, "SEG2", ActionRequest("reuse_segment", source_segment_no="SEG1"))
    assert members(world, "SEG2") == {"K1", "P11", "S1", "P22", "S3"}
    copy_segment(world, "SEG2", "SEG3")
    assert members(world, "SEG3") == members(world, "SEG2")
    with pytest.raises(UsageError):
        apply_action(world, "SEG1", ActionRequest("reuse_segment", source_segment_no="SEG1"))
    with pytest.raises(NotFoundError):
        apply_action(world, "SEG1", ActionRequest("reuse_segment", source_segment_no="NOPE"))


def test_save_and_reuse_criteria_replays_each_step(world: Database) -> None:
    apply_action(world, "SEG1", ActionRequest("add", f("country", "eq", "FR"), ActionOptions(ignore_exclusion=True)))
    apply_action(world, "SEG1", ActionRequest("reduce", f("type", "eq", "company")))
    apply_action(world, "SEG1", ActionRequest("add", f("country", "eq", "BE")))
    undo(world, "SEG1")  # the undone step is not part of the saved criteria
    assert save_criteria(world, "SEG1", "fr-persons") == 2
    with pytest.raises(RefusedError, match="already exist"):
        save_criteria(world, "SEG1", "FR-PERSONS")
    create_segment(world, "SEG2")
    results = reuse_criteria(world, "fr-persons", "SEG2")
    assert [r.seq for r in results] == [1, 2]
    assert members(world, "SEG2") == members(world, "SEG1") == {"P11", "S1", "S2"}
    log = criteria_log(world, "SEG2")
    assert log[0].options == {"ignore_exclusion": True}
    undo(world, "SEG2")
    assert members(world, "SEG2") == {"K1", "P11", "S1", "S2"}
    with pytest.raises(NotFoundError):
        reuse_criteria(world, "NOPE", "SEG2")


def test_stale_version_is_refused_and_nothing_lost(world: Database) -> None:
    seen = get_segment(world, "SEG1")
    apply_action(world, "SEG1", ActionRequest("add", f("country", "eq", "FR")), expected_version=seen.version)
    with pytest.raises(ConflictError, match="changed"):
        apply_action(world, "SEG1", ActionRequest("add", f("country", "eq", "BE")), expected_version=seen.version)
    with pytest.raises(ConflictError):
        undo(world, "SEG1", expected_version=seen.version)
    assert members(world) == {"K1", "P11", "S1"}
    assert len(criteria_log(world, "SEG1")) == 1


def test_two_writers_at_once_one_wins(world: Database) -> None:
    """Two users act on the same version at the same moment: exactly one commits, the other is told to retry."""
    seen = get_segment(world, "SEG1").version
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def act(country: str) -> None:
        barrier.wait()
        try:
            apply_action(world, "SEG1", ActionRequest("add", f("country", "eq", country)), expected_version=seen)
            outcomes.append("ok")
        except ConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=act, args=(c,)) for c in ("FR", "BE")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict", "ok"]
    log = criteria_log(world, "SEG1")
    assert len(log) == 1 and get_segment(world, "SEG1").size == len(members(world)) == log[0].size_after


def test_concurrent_writers_without_version_both_apply_in_turn(world: Database) -> None:
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def act(country: str) -> None:
        barrier.wait()
        try:
            apply_action(world, "SEG1", ActionRequest("add", f("country", "eq", country)))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=act, args=(c,)) for c in ("FR", "BE")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert members(world) == {"K1", "P11", "S1", "P22", "S3"}
    assert [e.seq for e in criteria_log(world, "SEG1")] == [1, 2]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        pytest.param({"no": "SEG1"}, RefusedError, id="duplicate"),
        pytest.param({"no": ""}, UsageError, id="empty"),
        pytest.param({"no": "bad no"}, UsageError, id="space"),
        pytest.param({"no": "X" * 31}, UsageError, id="too-long"),
        pytest.param({"no": "SEG9", "campaign_no": "NOPE"}, NotFoundError, id="unknown-campaign"),
    ],
)
def test_create_segment_refusals(world: Database, kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        create_segment(world, **kwargs)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        pytest.param(lambda: ActionRequest("add"), "needs a filter", id="no-filter"),
        pytest.param(lambda: ActionRequest("nope"), "unknown action", id="unknown-kind"),
        pytest.param(
            lambda: ActionRequest("refine", f("country", "eq", "FR"), ActionOptions(expand_companies=True)),
            "takes no expand", id="refine-expand",
        ),
        pytest.param(
            lambda: ActionRequest("add", f("country", "eq", "FR"), ActionOptions(entire_companies=True)),
            "entire-companies", id="add-entire",
        ),
        pytest.param(lambda: ActionRequest("add_emails"), "at least one address", id="no-emails"),
    ],
)
def test_bad_requests(build: Any, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        build()


def test_unknown_segment(world: Database) -> None:
    with pytest.raises(NotFoundError):
        apply_action(world, "NOPE", ActionRequest("add", f("country", "eq", "FR")))


def test_action_on_approved_segment_returns_it_to_draft(world: Database) -> None:
    with world.write() as conn:
        conn.execute(Segment.__table__.update().values(status="approved"))
    apply_action(world, "SEG1", ActionRequest("add", f("country", "eq", "FR")))
    assert get_segment(world, "SEG1").status == "draft"


def test_logged_segment_is_read_only(world: Database) -> None:
    apply_action(world, "SEG1", ActionRequest("add", f("country", "eq", "FR")))
    with world.write() as conn:
        conn.execute(Segment.__table__.update().values(status="logged"))
    with pytest.raises(RefusedError, match="read-only"):
        apply_action(world, "SEG1", ActionRequest("add", f("country", "eq", "BE")))
    with pytest.raises(RefusedError, match="read-only"):
        undo(world, "SEG1")
    with pytest.raises(RefusedError):
        delete_segment(world, "SEG1")


def test_list_and_delete(world: Database) -> None:
    create_segment(world, "SEG2", description="other")
    apply_action(world, "SEG2", ActionRequest("add", f("country", "eq", "FR")))
    apply_action(world, "SEG2", ActionRequest("reduce", f("type", "eq", "company")))
    undo(world, "SEG2")
    infos = {s.no: s for s in list_segments(world)}
    assert infos["SEG2"].size == 3 and infos["SEG2"].can_undo and infos["SEG2"].can_redo
    delete_segment(world, "SEG2")
    assert [s.no for s in list_segments(world)] == ["SEG1"]
    with world.read() as conn:
        assert conn.execute(select(SegmentMember.contact_id)).first() is None


def _state(db: Database, no: str = "SEG1") -> tuple[set[tuple[str, int]], int]:
    """Members with their provenance, and the recorded size: what undo must restore exactly."""
    from segcore._models import Contact

    seg = get_segment(db, no)
    with db.read() as conn:
        rows = conn.execute(
            select(Contact.contact_no, SegmentMember.added_seq)
            .join(SegmentMember, SegmentMember.contact_id == Contact.id)
            .where(SegmentMember.segment_id == seg.id)
        )
        return {(r[0], r[1]) for r in rows}, seg.size


def test_segment_distributions_same_in_memory_and_sql(world: Database) -> None:
    from segcore._engine import _member_ids_of
    from segcore._models import Setting
    from segcore._preview import segment_distributions
    from segcore._stats import distribution_sql

    # Nine members: under the default minimum every bucket would be hidden; this test compares the two paths.
    with world.write() as conn:
        conn.execute(update(Setting.__table__).where(Setting.key == "minimum_segment_size").values(value="1"))
    apply_action(world, "SEG1", ActionRequest("add", f("name", "is_not_empty"), ActionOptions(ignore_exclusion=True)))
    memory = segment_distributions(world, "SEG1")
    seg = get_segment(world, "SEG1")
    with world.read() as conn:
        sql = {d: distribution_sql(conn, _member_ids_of(seg.id), d) for d in memory}
    assert memory == sql
    assert memory["country"].counts == {"FR": 4, "DE": 3, "BE": 2}


def test_large_snapshot_builds_in_background_while_previews_use_sql(world: Database, monkeypatch) -> None:
    import segcore._snapshot as snapshot
    from segcore._preview import preview_step

    monkeypatch.setattr(snapshot, "SYNC_BUILD_MAX", 3)  # the world has 9 contacts: "large" here
    snapshot.drop_cached()
    request = ActionRequest("add", f("country", "eq", "FR"))
    first = preview_step(world, "SEG1", request)
    assert first.backend == "sql" and first.counts.added == 3
    for thread in list(snapshot._building.values()):
        thread.join(timeout=30)
    second = preview_step(world, "SEG1", request)
    assert second.backend == "memory" and second.counts == first.counts


def test_large_steps_refresh_postgresql_member_statistics(db: Database, monkeypatch) -> None:
    """After a step that moves many members, PostgreSQL's planner knows segment_members' size (see _bump)."""
    import segcore._engine as engine

    monkeypatch.setattr(engine, "STATS_REFRESH_ROWS", 3)
    add_contacts(db, [person(f"S{i}", country="FR") for i in range(5)])
    create_segment(db, "BIG")
    apply_action(db, "BIG", ActionRequest("add", f("country", "eq", "FR")))
    if db.engine.dialect.name != "postgresql":
        return
    with db.read() as conn:
        reltuples = conn.execute(
            select(sa.column("reltuples")).select_from(sa.table("pg_class")).where(sa.column("relname") == "segment_members")
        ).scalar_one()
    assert reltuples == 5
    # Known to be large now: a change smaller than what the planner knows leaves the statistics to autovacuum.
    analyzed: list[str] = []
    sa.event.listen(db.engine, "before_cursor_execute", lambda *a: analyzed.append(a[2]) if "ANALYZE" in a[2] else None)
    create_segment(db, "SMALL")
    apply_action(db, "SMALL", ActionRequest("add", f("country", "eq", "FR")))
    assert analyzed == []
    add_contacts(db, [person(f"T{i}", country="DE") for i in range(12)])
    create_segment(db, "BIGGER")
    apply_action(db, "BIGGER", ActionRequest("add", f("country", "eq", "DE")))  # 12 more than the 5 it knows
    assert len(analyzed) == 1
