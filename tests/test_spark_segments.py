"""Segments over a Spark source == segments over the same contacts in the application database, row for row.

One database holds both: its own contacts, and a source (Parquet written from those contacts). The same steps run on
a segment of each; after every step the previews, the results, the members, their provenance and the charts agree.
Undo and redo restore exactly. Only the contacts a step changes come back from Spark (`source_contacts`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from segcore import (
    ActionOptions,
    ActionRequest,
    apply_action,
    create_segment,
    criteria_log,
    delete_segment,
    get_segment,
    member_contact_nos,
    parse_text,
    preview,
    provenance,
    redo,
    undo,
)
from segcore._db import Database
from segcore._demo import load_demo
from segcore._errors import NotFoundError, RefusedError, SegcoreError, UsageError
from segcore._models import SourceContact
from segcore.evaluation import evaluator_for, preview_step, segment_distributions
from segcore.spark import Location, SourceSpec, add_source, remove_source
from tests import test_filter_sql as scen
from tests.spark_support import SPARK_URL, custom_types, export_source

TODAY = scen.TODAY


def _with_source(db: Database, folder: Path, name: str = "LAKE", *, typed: bool = False, skip: tuple[str, ...] = ()) -> None:
    """The database's contacts as the source `name`; `typed`: its custom fields keep their types (a string column
    is text unless the mapping says code), `skip`: columns the mapping leaves out."""
    contacts_path, interactions_path = export_source(db, folder)
    mapping = None
    if typed or skip:
        import pyarrow.parquet as pq

        from segcore.imports.mapping import suggest_mapping

        header = pq.read_schema(contacts_path).names
        types = custom_types(db)
        mapping = suggest_mapping(header, "contacts", overrides=dict.fromkeys(skip, ""),
                                  new_types={i: types[h] for i, h in enumerate(header) if h in types})  # fmt: skip
    spec = SourceSpec(name, SPARK_URL, Location("path", str(contacts_path), "parquet"), mapping,
                      interactions=Location("path", str(interactions_path), "parquet"))  # fmt: skip
    add_source(db, spec, user="tester")


@pytest.fixture(scope="module")
def world(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """The scenario world of tests/test_filter_sql.py, and the same contacts as the source LAKE."""
    folder = tmp_path_factory.mktemp("spark_segments")
    db = Database.open(f"sqlite:///{folder / 'world.db'}")
    scen._fill(db)
    _with_source(db, folder / "source")
    yield db
    db.dispose()


@pytest.fixture(scope="module")
def demo(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """400 demo contacts (companies, persons, flags, lists, custom fields), and the same contacts as the source LAKE."""
    folder = tmp_path_factory.mktemp("spark_segments_demo")
    db = Database.open(f"sqlite:///{folder / 'demo.db'}")
    load_demo(db, 400, seed=7)
    _with_source(db, folder / "source")
    yield db
    db.dispose()


def _pair(db: Database, name: str) -> tuple[str, str]:
    local, remote = f"{name}-L", f"{name}-S"
    create_segment(db, local, user="tester")
    create_segment(db, remote, user="tester", source="LAKE")
    return local, remote


def _same(db: Database, local: str, remote: str) -> None:
    assert member_contact_nos(db, remote) == member_contact_nos(db, local)
    a, b = get_segment(db, local), get_segment(db, remote)
    assert (b.size, b.head_seq) == (a.size, a.head_seq)
    log_a = [(e.seq, e.kind, e.matched, e.added, e.removed, e.size_after, e.undone) for e in criteria_log(db, local)]
    log_b = [(e.seq, e.kind, e.matched, e.added, e.removed, e.size_after, e.undone) for e in criteria_log(db, remote)]
    assert log_b == log_a


def _step(db: Database, local: str, remote: str, request: ActionRequest) -> None:
    """Preview then apply `request` on both segments: the same counts, the same result, the same members."""
    want = preview(db, local, request, today=TODAY)
    got = preview(db, remote, request, today=TODAY)
    assert got == want
    a = apply_action(db, local, request, today=TODAY, user="tester")
    b = apply_action(db, remote, request, today=TODAY, user="tester")
    assert (b.matched, b.added, b.removed, b.size_after, b.unmatched) == (a.matched, a.added, a.removed, a.size_after, a.unmatched)
    _same(db, local, remote)


def _req(kind: str, text: str | None = None, **options: Any) -> ActionRequest:
    return ActionRequest(kind, parse_text(text) if text else None, ActionOptions(**options))


# Steps in order on one pair of segments: every kind and option of SPEC §3 over the scenario world.
SCENARIO = [
    _req("add", "country=FR"),
    _req("add", "country=BE", contact_type="person"),
    _req("add", "email_domain=contoso.com", expand_companies=True),
    _req("refine", "rating=2.."),
    _req("add", "country=DE|BE", related_companies=True),
    _req("reduce", "city=paris"),
    _req("refine", "type=person", entire_companies=True),
    _req("add", "total_spent=..100000", ignore_exclusion=True),
    _req("reduce", "country=FR", entire_companies=True),
    ActionRequest("add_contacts", contact_nos=("K1", "P3")),
    ActionRequest("remove_contacts", contact_nos=("P2",)),
    ActionRequest("add_emails", emails=("bob@example.org", "nobody@nowhere.io", "BACK@weird.io")),
    _req("refine", "rating=4.."),
]


def test_the_scenario_steps_agree_step_by_step_and_undo_redo_restore_exactly(world: Database) -> None:
    local, remote = _pair(world, "SCEN")
    sizes = []
    for request in SCENARIO:
        _step(world, local, remote, request)
        sizes.append(get_segment(world, remote).size)
    assert len(set(sizes)) > 3  # the steps moved the members, not a no-op run
    history = []
    for _ in range(len(SCENARIO)):
        history.append(member_contact_nos(world, remote))
        undo(world, local, user="tester")
        undo(world, remote, user="tester")
        _same(world, local, remote)
    assert member_contact_nos(world, remote) == []
    for expected in reversed(history):
        redo(world, local, user="tester")
        redo(world, remote, user="tester")
        _same(world, local, remote)
        assert member_contact_nos(world, remote) == expected
    for no in member_contact_nos(world, remote) + ["P2"]:
        a, b = provenance(world, local, no), provenance(world, remote, no)
        assert (b.is_member, b.added_by and b.added_by.seq, b.removed_by and b.removed_by.seq) == (
            a.is_member, a.added_by and a.added_by.seq, a.removed_by and a.removed_by.seq)  # fmt: skip


def test_only_the_contacts_steps_touched_are_kept_and_their_ids_never_name_a_local_contact(
    world: Database, tmp_path: Path
) -> None:
    _with_source(world, tmp_path, "FRESH")
    create_segment(world, "IDS-S", user="tester", source="FRESH")
    apply_action(world, "IDS-S", _req("add", "country=BE"), user="tester")
    apply_action(world, "IDS-S", _req("refine", "rating=2.."), user="tester")
    with world.read() as conn:
        rows = conn.execute(select(SourceContact.id, SourceContact.contact_no).where(SourceContact.source == "FRESH")).all()
    # Added P4 and P5, then took P4 out: two contacts ever touched, out of the source's seven.
    assert sorted(no for _, no in rows) == ["P4", "P5"] and all(i < 0 for i, _ in rows)
    assert member_contact_nos(world, "IDS-S") == ["P5"]
    delete_segment(world, "IDS-S", user="tester")
    remove_source(world, "FRESH", user="tester")
    with world.read() as conn:  # the source's rows go with it
        assert conn.execute(select(SourceContact.id).where(SourceContact.source == "FRESH")).all() == []


def test_preview_charts_and_segment_charts_are_the_local_ones(world: Database) -> None:
    local, remote = _pair(world, "CHARTS")
    _step(world, local, remote, _req("add", "country=FR|DE"))
    dims = ("country", "type", "mailing_groups", "rating")
    request = _req("refine", "rating=4..")
    a = preview_step(world, local, request, today=TODAY, dimensions=dims, backend="sql")
    b = preview_step(world, remote, request, today=TODAY, dimensions=dims)
    assert b.backend == "spark" and b.counts == a.counts
    assert {d: (v.counts, v.total) for d, v in b.before.items()} == {d: (v.counts, v.total) for d, v in a.before.items()}
    assert {d: (v.counts, v.total) for d, v in b.after.items()} == {d: (v.counts, v.total) for d, v in a.after.items()}
    assert set(b.leaving_nos) == set(member_contact_nos(world, local)) - {"K1", "P1"}
    seg_a = segment_distributions(world, local, today=TODAY, dimensions=dims)
    seg_b = segment_distributions(world, remote, today=TODAY, dimensions=dims)
    assert {d: v.counts for d, v in seg_b.items()} == {d: v.counts for d, v in seg_a.items()}


def test_reuse_and_overlap_between_segments_of_one_source(world: Database) -> None:
    first = _pair(world, "R1")
    second = _pair(world, "R2")
    _step(world, *first, _req("add", "country=FR"))
    _step(world, *second, _req("add", "rating=3.."))
    reuse = [ActionRequest("reuse_segment", source_segment_no=no) for no in first]
    assert preview(world, second[1], reuse[1]) == preview(world, second[0], reuse[0])
    a = apply_action(world, second[0], reuse[0], user="tester")
    b = apply_action(world, second[1], reuse[1], user="tester")
    assert (b.matched, b.added, b.size_after) == (a.matched, a.added, a.size_after) and b.added > 0
    _same(world, *second)
    # Reusing a segment over other contacts is refused, in one line, and changes nothing.
    with pytest.raises(UsageError, match="built over this database's contacts"):
        apply_action(world, second[1], reuse[0], user="tester")
    with pytest.raises(UsageError, match="built over the source LAKE"):
        apply_action(world, second[0], reuse[1], user="tester")
    _same(world, *second)
    ids = {no: get_segment(world, no).id for no in (*first, *second)}
    local = evaluator_for(world, backend="sql").overlap([ids[first[0]], ids[second[0]]])
    remote = evaluator_for(world, segment=first[1]).overlap([ids[first[1]], ids[second[1]]])
    assert sorted(remote.values()) == sorted(local.values())


def test_failures_are_one_line_and_change_nothing(world: Database, tmp_path: Path) -> None:
    local, remote = _pair(world, "FAIL")
    _step(world, local, remote, _req("add", "country=FR"))
    before = (member_contact_nos(world, remote), get_segment(world, remote).version)
    with pytest.raises(NotFoundError, match="not found in source LAKE: NOPE"):
        apply_action(world, remote, ActionRequest("add_contacts", contact_nos=("P1", "NOPE")), user="tester")
    with pytest.raises(SegcoreError) as caught:
        apply_action(world, remote, _req("add", "no_such_field=1"), user="tester")
    assert "\n" not in str(caught.value)
    assert (member_contact_nos(world, remote), get_segment(world, remote).version) == before
    # Removing a source in use is refused; an approved segment over a source is read-only like any other.
    with pytest.raises(RefusedError):
        remove_source(world, "LAKE", user="tester")


_FILTERS = [
    "country=FR", "country=DE|BE|NL", "type=company", "type=person", "rating=3..", "rating=..2",
    "total_spent=1000..", "gender=female", "mailing_groups=NEWS", "exclude_from_segments=true",
    "acquisition_source=ads|events", "city=a*", "language=fr|de", "purchase_count=5..",
]  # fmt: skip
_KINDS = st.sampled_from(["add", "refine", "reduce"])


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(_KINDS, st.sampled_from(_FILTERS), st.sampled_from(["", "expand", "related", "entire", "ignore"])),
        min_size=2,
        max_size=4,
    ),
    undos=st.integers(0, 3),
)
def test_random_step_sequences_agree_with_the_local_segment(demo: Database, steps: list[Any], undos: int) -> None:
    local, remote = _pair(demo, f"P{abs(hash((tuple(steps), undos))) % 10**9}")
    for kind, text, option in steps:
        options = {"expand": {"expand_companies": True}, "related": {"related_companies": True},
                   "ignore": {"ignore_exclusion": True}, "entire": {"entire_companies": True}}.get(option, {})  # fmt: skip
        if (kind == "add") != (option in ("expand", "related", "ignore")) and option:
            options = {}
        _step(demo, local, remote, _req(kind, text, **options))
    for _ in range(min(undos, len(steps))):
        undo(demo, local, user="tester")
        undo(demo, remote, user="tester")
        _same(demo, local, remote)
    delete_segment(demo, remote, user="tester")
    delete_segment(demo, local, user="tester")



def test_members_page_copy_and_log_of_a_segment_over_a_source(world: Database) -> None:
    from segcore import copy_segment, segment_members_page

    local, remote = _pair(world, "LOG")
    _step(world, local, remote, _req("add", "country=FR|BE"))
    page = segment_members_page(world, remote, columns=("contact_no", "name", "country"))
    want = segment_members_page(world, local, columns=("contact_no", "name", "country"))
    assert page.total == want.total == 5
    assert sorted((r["contact_no"], r["name"], r["country"], r["added_seq"]) for r in page.rows) == sorted(
        (r["contact_no"], r["name"], r["country"], r["added_seq"]) for r in want.rows
    )
    assert [r["contact_no"] for r in segment_members_page(world, remote, "p4").rows] == ["P4"]

    copy_segment(world, remote, "LOG-C", user="tester")
    assert get_segment(world, "LOG-C").source == "LAKE"
    assert member_contact_nos(world, "LOG-C") == member_contact_nos(world, remote)



def test_drift_of_a_segment_over_a_source_replays_over_the_source(world: Database) -> None:
    from segcore import drift

    local, remote = _pair(world, "DRIFT")
    _step(world, local, remote, _req("add", "country=FR|BE"))
    _step(world, local, remote, _req("refine", "type=person"))
    # Nothing changed since: the replay finds the same members on both sides (over the source, not this database).
    for no in (local, remote):
        d = drift(world, no)
        assert (d.steps_replayed, d.replay_size, d.joined, d.left) == (2, get_segment(world, no).size, 0, 0), no


def test_logging_a_segment_over_a_source_keeps_its_snapshot_and_follow_up(demo: Database) -> None:
    from segcore import log_segment, update_segment

    local, remote = _pair(demo, "LOG")
    _step(demo, local, remote, _req("add", "type=person"))
    size = get_segment(demo, remote).size
    assert size >= 100
    # The interactions stay the source's own: the snapshot records who was contacted and who was held out.
    update_segment(demo, remote, description="Spring mailing", user="tester")
    logged = log_segment(demo, remote, template="MAIL", holdout_pct=20, seed=3, follow_up=True,
                         follow_up_no="LOG-F", user="tester")  # fmt: skip
    held = logged.holdout_count
    assert (logged.member_count, logged.contacted_count) == (size, size - held) and 0 < held < size
    assert get_segment(demo, remote).status == "logged"
    follow = get_segment(demo, "LOG-F")
    assert follow.source == "LAKE" and follow.size == size - held
    assert set(member_contact_nos(demo, "LOG-F")) < set(member_contact_nos(demo, remote))


def test_the_export_of_a_segment_over_a_source_is_the_local_export(demo: Database) -> None:
    from segcore import export_members
    from segcore._export import export_rows

    local, remote = _pair(demo, "EXP")
    _step(demo, local, remote, _req("add", "country=FR|DE|BE"))
    want = sorted(export_rows(demo, local, user="tester"), key=lambda r: r["contact_no"])
    got = sorted(export_rows(demo, remote, user="tester"), key=lambda r: r["contact_no"])
    assert len(got) == get_segment(demo, remote).size >= 50
    assert list(got[0]) == list(want[0])  # the same columns, custom fields included, in the same order
    assert got == want
    # The file imports back: the same CSV bytes whichever side the contacts live on, once rows are in one order.
    a = export_members(demo, local, "csv", user="tester").decode().splitlines()
    b = export_members(demo, remote, "csv", user="tester").decode().splitlines()
    assert a[0] == b[0] and sorted(a[1:]) == sorted(b[1:])


def test_a_dynamic_segment_over_a_source_counts_there_and_freezes_into_a_segment_over_it(world: Database) -> None:
    from segcore import count_filter, create_dynamic, dynamic_count, freeze_dynamic, refresh_dynamic

    node = parse_text("country=FR|BE")
    create_dynamic(world, "DYN-S", node, user="tester", source="LAKE")
    create_dynamic(world, "DYN-L", node, user="tester")
    assert dynamic_count(world, "DYN-S", today=TODAY) == dynamic_count(world, "DYN-L", today=TODAY) == (5, 7)
    assert count_filter(world, node, source="LAKE", today=TODAY) == (5, 7)
    assert refresh_dynamic(world, "DYN-S", today=TODAY, user="tester").count == 5
    frozen = freeze_dynamic(world, "DYN-S", "DYN-F", user="tester", today=TODAY)
    assert frozen.source == "LAKE" and member_contact_nos(world, "DYN-F") == ["K1", "P1", "P4", "P5", "P6"]
    with pytest.raises(NotFoundError, match="no source 'NOPE'"):
        create_dynamic(world, "DYN-X", node, user="tester", source="NOPE")


@pytest.mark.parametrize(
    ("field", "relation"),
    [("country", None), ("city", None), ("mailing_groups", None), ("age_band", None), ("template", "interactions")],
)
def test_the_builders_value_lists_count_the_source(world: Database, field: str, relation: str | None) -> None:
    from segcore import value_counts

    want = value_counts(world, field, relation, today=TODAY)
    assert value_counts(world, field, relation, today=TODAY, source="LAKE") == want and want


def test_the_builders_slider_ends_come_from_the_source(world: Database) -> None:
    from segcore import number_bounds

    for field in ("total_spent", "rating", "age", "days_since_last_purchase"):
        assert number_bounds(world, field, today=TODAY, source="LAKE") == number_bounds(world, field, today=TODAY)


def test_a_source_whose_files_went_away_fails_in_one_line_and_the_segment_stays(world: Database, tmp_path: Path) -> None:
    import shutil

    from segcore.evaluation import clear_caches

    _with_source(world, tmp_path / "gone", "GONE")
    create_segment(world, "GONE-S", user="tester", source="GONE")
    apply_action(world, "GONE-S", _req("add", "country=FR"), user="tester")
    before = (member_contact_nos(world, "GONE-S"), get_segment(world, "GONE-S").version)
    shutil.rmtree(tmp_path / "gone")
    clear_caches()  # a new process: the source is opened again, from files that are not there any more
    for attempt in (
        lambda: apply_action(world, "GONE-S", _req("add", "country=BE"), user="tester"),
        lambda: preview(world, "GONE-S", _req("refine", "rating=2..")),
    ):
        with pytest.raises(SegcoreError) as caught:
            attempt()
        assert "GONE" in str(caught.value) and "\n" not in str(caught.value)
    assert (member_contact_nos(world, "GONE-S"), get_segment(world, "GONE-S").version) == before


def test_charts_by_a_sources_own_custom_fields_are_the_local_ones(spark: Any, tmp_path: Path) -> None:
    from segcore import import_contacts

    db = Database.open(f"sqlite:///{tmp_path / 'custom.db'}")
    scen._fill(db)
    import_contacts(
        db,
        b"contact_no,Score,Joined,Vip\nK1,5,2020-01-01,yes\nP1,12.5,2021-06-30,no\nP2,300,,yes\nP4,,2019-12-31,\n",
        user="tester",
    )
    _with_source(db, tmp_path / "source")
    local, remote = _pair(db, "CF")
    _step(db, local, remote, _req("add", "type=person|company"))
    dims = ("score", "joined", "vip", "country")
    # Unmasked (six members are under the minimum segment size): the evaluators' own charts.
    a = evaluator_for(db, backend="sql").segment_distributions(local, today=TODAY, dimensions=dims)
    b = evaluator_for(db, segment=remote).segment_distributions(remote, today=TODAY, dimensions=dims)
    assert {d: v.counts for d, v in b.items()} == {d: v.counts for d, v in a.items()}
    assert len(a["score"].counts) > 1 and len(a["joined"].counts) > 1  # charted, not one empty bucket each side
    request = _req("refine", "rating=3..")
    pa_ = evaluator_for(db, backend="sql").preview_step(local, request, today=TODAY, dimensions=dims, sample=5)
    pb = evaluator_for(db, segment=remote).preview_step(remote, request, today=TODAY, dimensions=dims, sample=5)
    assert {d: v.counts for d, v in pb.after.items()} == {d: v.counts for d, v in pa_.after.items()}
    db.dispose()


def test_steps_over_a_source_on_both_databases(spark: Any, db: Database, tmp_path: Path) -> None:
    """The application database may be PostgreSQL too: ids are given out under its advisory lock, `least` instead of
    SQLite's two-argument `min`, and the steps still agree with a segment of the same contacts."""
    scen._fill(db)
    _with_source(db, tmp_path / "source")
    local, remote = _pair(db, "BOTH")
    for request in SCENARIO[:6]:
        _step(db, local, remote, request)
    undo(db, local, user="tester")
    undo(db, remote, user="tester")
    _same(db, local, remote)
    with db.read() as conn:
        ids = [i for (i,) in conn.execute(select(SourceContact.id))]
    assert ids and max(ids) < 0 and len(set(ids)) == len(ids)


@pytest.fixture(scope="module")
def custom(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """The scenario world with a code, a number and a date custom field, and the same contacts as the source LAKE
    (its custom fields typed as here) and as LAKE2, whose mapping leaves `joined` out."""
    from segcore import import_contacts
    from segcore.fields.custom import create_custom_field

    folder = tmp_path_factory.mktemp("spark_segments_custom")
    db = Database.open(f"sqlite:///{folder / 'custom.db'}")
    scen._fill(db)
    with db.write() as conn:
        create_custom_field(conn, "tier", "Loyalty tier", "code", user="tester")
    import_contacts(
        db,
        b"contact_no,Tier,Score,Joined\nK1,gold,5,2020-01-01\nP1,SILVER,12.5,2021-06-30\nP2,gold,300,\n"
        b"P4,,,2019-12-31\nP5,bronze,40,2022-03-01\nP6,Silver,7,2023-01-15\n",
        user="tester",
    )
    assert custom_types(db) == {"tier": "code", "score": "number", "joined": "date"}
    _with_source(db, folder / "source", typed=True)
    _with_source(db, folder / "source2", "LAKE2", typed=True, skip=("joined",))
    yield db
    db.dispose()


# Steps on a code, a number and a date custom field (and with a built-in one), each kind.
_CUSTOM_STEPS = [
    ("add", "tier=GOLD|silver"),
    ("add", "score=10..100"),
    ("refine", "joined=<2022-01-01|''"),
    ("add", "tier=<>GOLD\ncountry=DE|BE"),
    ("reduce", "score=>=250"),
    ("add", "joined=2022-01-01..\ntier=''"),
]


def test_filters_on_a_sources_own_custom_fields_agree_with_the_local_ones(custom: Database) -> None:
    from segcore import count_filter, describe, fields_for

    local_fields, source_fields = fields_for(custom), fields_for(custom, "LAKE")
    # The source's own custom fields, typed as its mapping says and labelled by its columns.
    assert {s.name: (s.type, s.label) for s in source_fields.custom} == {
        "tier": ("code", "tier"), "score": ("number", "score"), "joined": ("date", "joined")}  # fmt: skip
    local, remote = _pair(custom, "CFF")
    sizes = []
    for kind, text in _CUSTOM_STEPS:
        node = parse_text(text, source_fields)
        # The tree names fields, not ids: read with either registry, it is the same filter.
        assert node == parse_text(text, local_fields)
        _step(custom, local, remote, ActionRequest(kind, node))
        sizes.append(get_segment(custom, remote).size)
        assert count_filter(custom, node, source="LAKE", today=TODAY) == count_filter(custom, node, today=TODAY)
    assert len(set(sizes)) > 2 and 0 not in sizes[:2]
    # The criteria log describes a source's custom field with the source's label (its column), the local one with
    # this database's.
    log = [e.description for e in criteria_log(custom, remote)]
    assert log[0] == describe(parse_text("tier=GOLD|silver", source_fields), source_fields)
    assert log[0].startswith("Tier is GOLD") and criteria_log(custom, local)[0].description.startswith("Loyalty tier ")
    # The preview's charts break down by them too.
    request = ActionRequest("refine", parse_text("tier=SILVER|BRONZE", source_fields))
    dims = ("tier", "score", "joined")
    a = evaluator_for(custom, backend="sql").preview_step(local, request, today=TODAY, dimensions=dims, sample=5)
    b = evaluator_for(custom, segment=remote).preview_step(remote, request, today=TODAY, dimensions=dims, sample=5)
    assert b.counts == a.counts and {d: v.counts for d, v in b.after.items()} == {d: v.counts for d, v in a.after.items()}


def test_a_dynamic_segment_and_the_cli_over_a_source_read_its_custom_fields(
    custom: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    from segcore import create_dynamic, dynamic_count, fields_for, list_dynamic
    from segcore.cli import main

    node = parse_text("tier=GOLD\nscore=..100", fields_for(custom, "LAKE"))
    create_dynamic(custom, "CF-DYN", node, user="tester", source="LAKE")
    assert dynamic_count(custom, "CF-DYN", today=TODAY) == count_filter_local(custom, node)
    assert [d.expression for d in list_dynamic(custom) if d.no == "CF-DYN"] == ["tier=GOLD\nscore<=100"]
    url = str(custom.engine.url)
    create_segment(custom, "CF-CLI", user="tester", source="LAKE")
    assert main(["--db", url, "segment", "add", "CF-CLI", "--where", "tier=gold"]) == 0
    assert member_contact_nos(custom, "CF-CLI") == ["K1", "P2"]
    capsys.readouterr()
    assert main(["--db", url, "dynamic", "create", "CF-DYN2", "--source", "LAKE", "--where", "joined=2021-01-01.."]) == 0
    # A source a dynamic segment counts stays: without it, its filter could not be read.
    create_dynamic(custom, "CF-DYN3", parse_text("score=1..", fields_for(custom, "LAKE2")), user="tester", source="LAKE2")
    with pytest.raises(RefusedError, match="source LAKE2 is counted by dynamic segment CF-DYN3"):
        remove_source(custom, "LAKE2", user="tester")
    # A name the source does not have is an error with its position, in one line: LAKE2 leaves `joined` out.
    create_segment(custom, "CF-CLI2", user="tester", source="LAKE2")
    capsys.readouterr()
    assert main(["--db", url, "segment", "add", "CF-CLI2", "--where", "joined=2021-01-01.."]) != 0
    err = capsys.readouterr().err.strip()
    assert "unknown field 'joined'" in err and "position" in err and len(err.splitlines()) == 1, err
    with pytest.raises(SegcoreError) as caught:
        parse_text("joined=2021-01-01..", fields_for(custom, "LAKE2"))
    assert "\n" not in str(caught.value)


def count_filter_local(db: Database, node: Any) -> tuple[int, int]:
    from segcore import count_filter

    return count_filter(db, node, today=TODAY)
