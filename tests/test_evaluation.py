"""The evaluation seam: every backend answers every question exactly as an independent model says.

Scenario tables (counts of filters, previews of every kind of step with its options, charts, overlap) run against
every backend: memory (snapshot + numpy) and sql, each on SQLite and on PostgreSQL (the `db` fixture; under
CI=true PostgreSQL must be there). The model is plain Python over the contact rows of tests/test_engine_property.py
and knows nothing of SQL or numpy. A hypothesis property then holds memory == sql == model on random contacts and
random filters (the generators and the model of tests/test_filter_property.py and tests/test_fast_eval.py), and
checks that committing the step writes what both previews said.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select

import segcore._engine as engine
from segcore import Database, UsageError
from segcore._engine import apply_action, create_segment, member_ids
from segcore._filter_tree import Node, from_json, to_json
from segcore._models import (
    ActionDelta,
    Contact,
    ContactCode,
    Interaction,
    ProfileAnswer,
    Segment,
    SegmentAction,
    SegmentMember,
    SegmentStatusEvent,
)
from segcore._settings import set_setting
from segcore._snapshot import bump_data_version, drop_cached
from segcore._stats import DIMENSIONS, UNKNOWN
from segcore._steps import ActionOptions, ActionRequest, Preview
from segcore.evaluation import (
    Backend,
    Evaluator,
    FilterCount,
    MemoryStepSets,
    SqlEvaluator,
    backends,
    clear_caches,
    evaluator_for,
    register_backend,
    step_sets,
)
from segcore.fields import fields_of
from tests.factories import add_contacts
from tests.test_engine_property import FILTERS, INFO, ORG, WORLD
from tests.test_fast_eval import model as filter_model
from tests.test_filter_property import TODAYS, insert_population, populations, trees

TODAY = dt.date(2026, 6, 15)
GENDERS = ("female", "male", "other", "unknown")
INDUSTRY = {
    "K1": ("RETAIL",),
    "P11": ("RETAIL", "TECH"),
    "K3": ("TECH",),
    "S3": ("FOOD", "TECH"),
    "P22": ("FOOD",),
}
# Charts the model computes itself (a code, a code with every value, a multi-valued list); the other dimensions are
# held equal across backends.
MODEL_DIMENSIONS = ("country", "gender", "industry_groups")
ROWS = [
    {**r, "gender": GENDERS[i % 4], "email": f"{r['contact_no'].lower()}@example.org"}
    for i, r in enumerate(WORLD)
]
BY_NO = {r["contact_no"]: r for r in ROWS}
START = ("P11", "P22", "S1", "S3", "K3")  # the members of segment BASE before each step
OTHER = ("P12", "S2", "S1")  # the members of segment OTHER (S2 flagged: a reuse keeps it)


# ------------------------------------------------------------------------------------------------ the model


def _filter_set(flt: int) -> set[str]:
    pred = FILTERS[flt][1]
    return {no for no, r in INFO.items() if pred(r)}


def _grown(base: set[str]) -> set[str]:
    """`base` with every contact of the companies it touches."""
    orgs = {ORG[no] for no in base if ORG[no]}
    return base | {no for no in INFO if ORG[no] in orgs}


def _flagged(nos: set[str]) -> set[str]:
    return {no for no in nos if INFO[no].get("exclude_from_segments")}


@dataclass(frozen=True)
class Step:
    """One scenario: a pending step, and the sets the model says it works with."""

    name: str
    request: ActionRequest
    flt: int | None = None

    def model(self, members: set[str]) -> tuple[Preview, set[str], set[str]]:
        """(the counts, who enters, who leaves) by the rules of SPEC §3, from plain sets."""
        r, opts = self.request, self.request.options
        unmatched: tuple[str, ...] = ()
        if r.kind in ("add", "refine", "reduce"):
            assert self.flt is not None
            base = _filter_set(self.flt)
        elif r.kind in ("add_contacts", "remove_contacts"):
            base = set(r.contact_nos)
        elif r.kind == "add_emails":
            by_email = {row["email"]: no for no, row in BY_NO.items()}
            base = {by_email[e] for e in r.emails if e in by_email}
            unmatched = tuple(e for e in r.emails if e not in by_email)
        else:
            base = set(OTHER)
        if r.kind == "add":
            if opts.contact_type is not None:
                base = {no for no in base if INFO[no]["type"] == opts.contact_type}
            wide = set(base)
            if opts.expand_companies:
                wide |= _grown(base)
            if opts.related_companies:
                wide |= {ORG[no] for no in base if INFO[no]["type"] == "person" and ORG[no]}
        elif r.kind in ("refine", "reduce") and opts.entire_companies:
            wide = _grown(base)
        else:
            wide = set(base)
        excluding = r.kind in ("add", "add_contacts", "add_emails") and not opts.ignore_exclusion
        skipped = len(_flagged(wide)) if excluding else 0
        c = wide - _flagged(wide) if excluding else wide
        entering = c - members if r.adds else set()
        if r.kind == "refine":
            leaving = members - c
        elif r.kind in ("reduce", "remove_contacts"):
            leaving = members & c
        else:
            leaving = set()
        matched = len(c & members) if r.kind in ("refine", "reduce") else len(c)
        size_after = len(members) + len(entering) - len(leaving)
        preview = Preview(
            r.kind, len(members), size_after, matched, len(entering), len(leaving), unmatched, skipped
        )
        return preview, entering, leaving


def _f(flt: int) -> Node:
    return from_json(FILTERS[flt][0])


FR, DE, BE, COMPANIES, NAMED, NOBODY, EVERYBODY = range(7)
STEPS = [
    Step("add", ActionRequest("add", _f(FR)), FR),
    Step("add-ignore-exclusion", ActionRequest("add", _f(DE), ActionOptions(ignore_exclusion=True)), DE),
    Step("add-expand", ActionRequest("add", _f(FR), ActionOptions(expand_companies=True)), FR),
    Step("add-related", ActionRequest("add", _f(DE), ActionOptions(related_companies=True)), DE),
    Step(
        "add-persons-related",
        ActionRequest("add", _f(EVERYBODY), ActionOptions(contact_type="person", related_companies=True)),
        EVERYBODY,
    ),
    Step(
        "add-companies", ActionRequest("add", _f(EVERYBODY), ActionOptions(contact_type="company")), EVERYBODY
    ),
    Step("add-nobody", ActionRequest("add", _f(NOBODY)), NOBODY),
    Step("refine", ActionRequest("refine", _f(FR)), FR),
    Step("refine-entire", ActionRequest("refine", _f(FR), ActionOptions(entire_companies=True)), FR),
    Step("refine-everybody", ActionRequest("refine", _f(EVERYBODY)), EVERYBODY),
    Step("reduce", ActionRequest("reduce", _f(BE)), BE),
    Step("reduce-entire", ActionRequest("reduce", _f(NAMED), ActionOptions(entire_companies=True)), NAMED),
    Step("reduce-companies", ActionRequest("reduce", _f(COMPANIES)), COMPANIES),
    Step("add-contacts", ActionRequest("add_contacts", contact_nos=("P21", "S4", "S1"))),
    Step("remove-contacts", ActionRequest("remove_contacts", contact_nos=("S1", "S4"))),
    Step(
        "add-emails", ActionRequest("add_emails", emails=("s4@example.org", "s2@example.org", "nobody@x.io"))
    ),
    Step("reuse-segment", ActionRequest("reuse_segment", source_segment_no="OTHER")),
]


def _distribution_model(nos: set[str], dim: str, labels: Any) -> tuple[dict[str, int], int]:
    """Counts per bucket over `nos`: the row's value (lists: each code), "not set" for none."""
    counts: Counter[str] = Counter()
    for no in nos:
        if dim == "industry_groups":
            codes = INDUSTRY.get(no, ())
            counts.update(labels(c) for c in codes) if codes else counts.update([UNKNOWN])
        else:
            value = BY_NO[no].get(dim)
            counts[labels(value) if value else UNKNOWN] += 1
    return dict(counts), len(nos)


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(params=["memory", "sql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@dataclass
class World:
    db: Database
    ids: dict[str, int]

    @property
    def nos(self) -> dict[int, str]:
        return {i: no for no, i in self.ids.items()}

    def members(self, no: str) -> set[str]:
        return {self.nos[i] for i in member_ids(self.db, no)}

    def labels(self, dim: str) -> Any:
        spec = fields_of(self.db).get(dim)
        assert spec is not None
        return spec.normalize


@pytest.fixture
def world(db: Database) -> Iterator[World]:
    ids = add_contacts(db, ROWS)
    with db.write() as conn:
        conn.execute(
            insert(ContactCode.__table__),
            [
                {"kind": "industry_groups", "code": code, "contact_id": ids[no]}
                for no, codes in INDUSTRY.items()
                for code in codes
            ],
        )
        bump_data_version(conn)
    set_setting(db, "minimum_segment_size", 1)  # nothing masked: every bucket is compared
    clear_caches()
    for no, members in (("BASE", START), ("OTHER", OTHER)):
        create_segment(db, no)
        apply_action(
            db,
            no,
            ActionRequest("add_contacts", contact_nos=members, options=ActionOptions(ignore_exclusion=True)),
        )
    yield World(db, ids)


# ------------------------------------------------------------------------------------------------ scenarios


@pytest.mark.parametrize("flt", range(len(FILTERS)), ids=lambda i: str(FILTERS[i][0]))
def test_count_of_a_filter(world: World, backend: str, flt: int) -> None:
    hit = _filter_set(flt)
    evaluator = evaluator_for(world.db, backend=backend)
    assert evaluator.name == backend
    assert evaluator.count(_f(flt), today=TODAY) == FilterCount(
        len(hit - _flagged(hit)), len(_flagged(hit)), len(INFO)
    )


@pytest.mark.parametrize("step", STEPS, ids=lambda s: s.name)
def test_step_preview_and_commit(world: World, backend: str, step: Step) -> None:
    members = world.members("BASE")
    assert members == set(START)
    expected, entering, leaving = step.model(members)
    evaluator = evaluator_for(world.db, backend=backend)
    got = evaluator.preview_step("BASE", step.request, today=TODAY, dimensions=tuple(DIMENSIONS), sample=100)
    assert got.backend == backend
    assert got.counts == expected
    assert {world.nos[i] for i in got.entering} == entering
    assert {world.nos[i] for i in got.leaving} == leaving
    after = (members | entering) - leaving
    for dim in MODEL_DIMENSIONS:
        assert (got.before[dim].counts, got.before[dim].total) == _distribution_model(
            members, dim, world.labels(dim)
        )
        assert (got.after[dim].counts, got.after[dim].total) == _distribution_model(
            after, dim, world.labels(dim)
        )
    # Every chart, not only those the model computes, is the same on the reference backend.
    reference = SqlEvaluator(world.db).preview_step(
        "BASE", step.request, today=TODAY, dimensions=tuple(DIMENSIONS), sample=100
    )
    assert (got.before, got.after) == (reference.before, reference.after)
    assert SqlEvaluator(world.db).reference_counts("BASE", step.request, today=TODAY) == expected
    # The commit reads its sets through the seam too, and writes what the preview said.
    result = apply_action(world.db, "BASE", step.request, today=TODAY)
    assert (result.matched, result.added, result.removed, result.size_after) == (
        expected.matched,
        expected.added,
        expected.removed,
        expected.size_after,
    )
    assert world.members("BASE") == after


def test_charts_of_a_segment_and_of_everyone(world: World, backend: str) -> None:
    evaluator = evaluator_for(world.db, backend=backend)
    seg = evaluator.segment_distributions("BASE", today=TODAY, dimensions=tuple(DIMENSIONS))
    everyone = evaluator.all_distributions(today=TODAY, dimensions=tuple(DIMENSIONS))
    for dim in MODEL_DIMENSIONS:
        assert (seg[dim].counts, seg[dim].total) == _distribution_model(set(START), dim, world.labels(dim))
        assert (everyone[dim].counts, everyone[dim].total) == _distribution_model(
            set(INFO), dim, world.labels(dim)
        )
    sql = SqlEvaluator(world.db)
    assert seg == sql.segment_distributions("BASE", today=TODAY, dimensions=tuple(DIMENSIONS))
    assert everyone == sql.all_distributions(today=TODAY, dimensions=tuple(DIMENSIONS))


def test_overlap(world: World, backend: str) -> None:
    create_segment(world.db, "EMPTY")
    ids = {}
    with world.db.read() as conn:
        ids = dict(conn.execute(select(Segment.no, Segment.id)).all())
    sets = {"BASE": set(START), "OTHER": set(OTHER), "EMPTY": set()}
    got = evaluator_for(world.db, backend=backend).overlap([ids[n] for n in sets])
    for a, b in itertools.combinations_with_replacement(sets, 2):
        x, y = sorted((ids[a], ids[b]))
        assert got.get((x, y), 0) == len(sets[a] & sets[b]), (a, b)


def test_named_inputs_nothing_matches_are_refused_alike(world: World, backend: str) -> None:
    from segcore import NotFoundError

    with pytest.raises(NotFoundError, match="1 contact number not found: NOPE"):
        evaluator_for(world.db, backend=backend).preview_step(
            "BASE",
            ActionRequest("add_contacts", contact_nos=("S1", "NOPE")),
            today=TODAY,
            dimensions=(),
            sample=5,
        )


# ------------------------------------------------------------------------------------------------ the choice


def test_the_setting_chooses_memory_or_sql_and_a_name_forces_one(world: World) -> None:
    assert backends()[:2] == ("memory", "sql")
    assert evaluator_for(world.db).name == "memory"  # 12 contacts fit the default limit
    set_setting(world.db, "preview_memory_max_contacts", 5)
    # A snapshot already in memory is used whatever its size; a process starting afresh goes by the setting.
    drop_cached()
    assert evaluator_for(world.db).name == "sql"
    assert evaluator_for(world.db, backend="memory").name == "memory"  # forced: builds the snapshot anyway
    with pytest.raises(UsageError, match="unknown evaluation backend 'spark'"):
        evaluator_for(world.db, backend="spark")
    assert isinstance(evaluator_for(world.db), Evaluator)


def test_a_backend_plugs_in_by_name(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """How Spark will plug in: registered under a name, tried first when automatic, forced by name."""
    import segcore.evaluation as evaluation

    monkeypatch.setattr(evaluation, "_BACKENDS", dict(evaluation._BACKENDS))

    class Fake(SqlEvaluator):
        name = "fake"

    register_backend(Backend("fake", lambda db, forced: Fake(db), automatic=False))
    assert evaluator_for(world.db).name == "memory"  # not automatic: only when named
    assert evaluator_for(world.db, backend="fake").name == "fake"
    register_backend(Backend("fake", lambda db, forced: Fake(db) if forced else None), first=True)
    assert backends()[0] == "fake"
    assert evaluator_for(world.db).name == "memory"  # it declined: the next one answers
    register_backend(Backend("fake", lambda db, forced: Fake(db)), first=True)
    pv = evaluation.preview_step(world.db, "BASE", ActionRequest("add", _f(FR)), today=TODAY)
    assert pv.backend == "fake"


def test_the_commit_reads_its_sets_through_the_seam(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def spying(conn: Any, **kw: Any) -> Any:
        sets = step_sets(conn, **kw)
        real = sets.matched_set

        def matched_set(request: ActionRequest, **kw: Any) -> Any:
            asked.append(request.kind)
            return real(request, **kw)

        sets.matched_set = matched_set  # type: ignore[method-assign]
        return sets

    monkeypatch.setattr(engine, "step_sets", spying)
    apply_action(world.db, "BASE", ActionRequest("refine", _f(FR)))
    apply_action(world.db, "BASE", ActionRequest("add", _f(DE), ActionOptions(expand_companies=True)))
    apply_action(world.db, "BASE", ActionRequest("add", _f(BE)))
    assert asked == ["refine", "add", "add"]


def test_the_commit_writes_from_the_snapshot_only_of_the_data_it_sees(world: World) -> None:
    # Only a snapshot already in memory (a write never waits for one to load), and only of the transaction's data.
    drop_cached(world.db)
    with world.db.write() as conn:
        assert isinstance(step_sets(conn), SqlEvaluator)
    evaluator_for(world.db, backend="memory")
    with world.db.write() as conn:
        assert isinstance(step_sets(conn), MemoryStepSets)
        assert isinstance(step_sets(conn, backend="sql"), SqlEvaluator)
    with world.db.write() as conn:
        bump_data_version(conn)  # what an import does
    with world.db.write() as conn:
        assert isinstance(step_sets(conn), SqlEvaluator)
    with world.db.read() as conn:  # not a write transaction: SQL
        assert isinstance(step_sets(conn), SqlEvaluator)


def test_a_commit_from_the_snapshot_keeps_the_new_members_only_once_committed(world: World) -> None:
    from segcore.evaluation import memory

    snap = evaluator_for(world.db, backend="memory").snapshot  # type: ignore[attr-defined]
    before = engine.get_segment(world.db, "BASE")
    request = ActionRequest("add", _f(DE))

    def cached(version: int) -> Any:
        return memory._members_cache.get((world.db.url + "#" + snap.version, before.id, version))

    with pytest.raises(RuntimeError):
        with world.db.write() as conn:
            engine._apply(conn, "BASE", request, user=engine.current_user(), expected_version=None, today=TODAY)
            raise RuntimeError("rolled back after the step")
    # The rolled-back version is not cached: the next commit gives the same version other members.
    assert cached(before.version + 1) is None
    apply_action(world.db, "BASE", ActionRequest("reduce", _f(FR)), today=TODAY)
    after = engine.get_segment(world.db, "BASE")
    assert after.version == before.version + 1
    mask = cached(after.version)
    assert mask is not None
    assert set(snap.ids[mask].tolist()) == set(member_ids(world.db, "BASE"))


# ------------------------------------------------------------------------------------------------ property

_counter = itertools.count()
KINDS = ("add", "refine", "reduce")


def _reset(db: Database, rows: list[dict[str, Any]]) -> None:
    with db.write() as conn:
        for table in (
            ActionDelta,
            SegmentAction,
            SegmentMember,
            SegmentStatusEvent,
            Segment,
            Interaction,
            ProfileAnswer,
            ContactCode,
            Contact,
        ):
            conn.execute(delete(table.__table__))
        insert_population(conn, rows)
        bump_data_version(conn)
    clear_caches()


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
@given(
    rows=populations,
    filters=st.lists(trees, min_size=1, max_size=3),
    today=st.sampled_from(TODAYS),
    picks=st.lists(st.booleans(), min_size=8, max_size=8),
    kind=st.sampled_from(KINDS),
    ignore=st.booleans(),
)
def test_memory_equals_sql_equals_model(
    db: Database,
    rows: list[dict[str, Any]],
    filters: list[Node],
    today: dt.date,
    picks: list[bool],
    kind: str,
    ignore: bool,
) -> None:
    _reset(db, rows)
    flagged = {i for i, r in enumerate(rows, start=1) if r["exclude_from_segments"]}
    start = {i for i, r in enumerate(rows, start=1) if picks[i - 1]}
    no = f"H{next(_counter)}"
    create_segment(db, no)
    if start:
        apply_action(
            db,
            no,
            ActionRequest(
                "add_contacts",
                contact_nos=tuple(f"C{i}" for i in sorted(start)),
                options=ActionOptions(ignore_exclusion=True),
            ),
        )
    memory, sql = evaluator_for(db, backend="memory"), evaluator_for(db, backend="sql")
    for tree in filters:
        hit = {i for i, row in enumerate(rows, start=1) if filter_model(tree, row, today)}
        want = FilterCount(len(hit - flagged), len(hit & flagged), len(rows))
        assert memory.count(tree, today=today) == sql.count(tree, today=today) == want, to_json(tree)

    tree = filters[0]
    hit = {i for i, row in enumerate(rows, start=1) if filter_model(tree, row, today)}
    request = ActionRequest(
        kind, tree, ActionOptions(ignore_exclusion=ignore) if kind == "add" else ActionOptions()
    )
    c = hit - flagged if kind == "add" and not ignore else hit
    entering = c - start if kind == "add" else set()
    leaving = start - c if kind == "refine" else start & c if kind == "reduce" else set()
    expected = Preview(
        kind,
        len(start),
        len(start) + len(entering) - len(leaving),
        len(c & start) if kind != "add" else len(c),
        len(entering),
        len(leaving),
        (),
        len(hit & flagged) if kind == "add" and not ignore else 0,
    )
    dims = ("country", "gender", "age_band", "industry_groups")
    got = [e.preview_step(no, request, today=today, dimensions=dims, sample=10) for e in (memory, sql)]
    assert got[0].counts == got[1].counts == expected, to_json(tree)
    assert (got[0].before, got[0].after) == (got[1].before, got[1].after), to_json(tree)
    for pv in got:
        assert set(pv.entering) <= entering and set(pv.leaving) <= leaving
        assert len(pv.entering) + len(pv.leaving) == min(10, len(entering) + len(leaving))
    apply_action(db, no, request, today=today)
    assert set(member_ids(db, no)) == (start | entering) - leaving, to_json(tree)
