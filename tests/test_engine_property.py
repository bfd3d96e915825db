"""Property: any sequence of actions, undos and redos leaves the segment exactly where an independent model says.

The model is plain Python sets over a small world of companies and persons; it knows nothing of SQL, deltas or
provenance columns. After every step the database's members (with the step that brought each in), the size, the
log and the undo/redo position must equal the model's.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from segcore import Database, RefusedError
from segcore._engine import (
    ActionOptions,
    ActionRequest,
    apply_action,
    create_segment,
    criteria_log,
    get_segment,
    redo,
    undo,
)
from segcore._filter_tree import from_json
from segcore._models import Contact, SegmentMember
from segcore._snapshot import load_snapshot
from segcore.evaluation import MemoryStepSets, step_sets
from tests.factories import add_contacts, company, person

WORLD = [
    company("K1", country="FR"),
    person("P11", "K1", country="FR"),
    person("P12", "K1", country="DE"),
    company("K2", country="DE", exclude_from_segments=True),
    person("P21", "K2", country="DE", exclude_from_segments=True),
    person("P22", "K2", country="BE"),
    person("P23", "K2", country="FR"),
    company("K3", country="BE"),
    person("S1", country="FR"),
    person("S2", country="FR", exclude_from_segments=True),
    person("S3", country="BE"),
    person("S4", country="DE"),
]
INFO = {r["contact_no"]: r for r in WORLD}
ORG = {no: (no if r["type"] == "company" else r.get("company_no")) for no, r in INFO.items()}

# (filter JSON, predicate on a world row)
FILTERS: list[tuple[dict[str, Any], Any]] = [
    ({"field": "country", "op": "eq", "value": c}, lambda r, c=c: r.get("country") == c) for c in ("FR", "DE", "BE")
] + [
    ({"field": "type", "op": "eq", "value": "company"}, lambda r: r["type"] == "company"),
    ({"field": "contact_no", "op": "in", "value": ["P12", "S3", "K3"]}, lambda r: r["contact_no"] in ("P12", "S3", "K3")),
    ({"any": []}, lambda r: False),
    ({"all": []}, lambda r: True),
]

FILTER_KINDS = ("add", "refine", "reduce")


def _matched(flt: int, kind: str, opts: ActionOptions) -> set[str]:
    pred = FILTERS[flt][1]
    base = {no for no, r in INFO.items() if pred(r)}
    if kind in ("refine", "reduce"):
        if opts.entire_companies:
            orgs = {ORG[no] for no in base if ORG[no]}
            base |= {no for no in INFO if ORG[no] in orgs}
        return base
    c = set(base)
    if opts.expand_companies:
        orgs = {ORG[no] for no in base if ORG[no]}
        c |= {no for no in INFO if ORG[no] in orgs}
    if opts.related_companies:
        c |= {ORG[no] for no in base if INFO[no]["type"] == "person" and ORG[no]}
    if not opts.ignore_exclusion:
        c = {no for no in c if not INFO[no].get("exclude_from_segments")}
    return c


@dataclass
class Model:
    """States after each step; head says how many are applied."""

    states: list[dict[str, int]] = field(default_factory=lambda: [{}])
    head: int = 0

    def act(self, kind: str, matched: set[str]) -> None:
        cur = self.states[self.head]
        seq = self.head + 1
        if kind in ("add", "add_contacts"):
            new = dict(cur) | {no: seq for no in matched if no not in cur}
        elif kind == "refine":
            new = {no: s for no, s in cur.items() if no in matched}
        else:  # reduce, remove_contacts
            new = {no: s for no, s in cur.items() if no not in matched}
        del self.states[self.head + 1 :]
        self.states.append(new)
        self.head = seq


step = st.one_of(
    st.tuples(
        st.sampled_from(FILTER_KINDS),
        st.integers(0, len(FILTERS) - 1),
        st.booleans(),
        st.booleans(),
        st.booleans(),
    ),
    st.tuples(st.sampled_from(("add_contacts", "remove_contacts")), st.sets(st.sampled_from(sorted(INFO)), min_size=1, max_size=4)),
    st.just(("undo",)),
    st.just(("redo",)),
)

_counter = itertools.count()


@pytest.fixture
def world(db: Database) -> Database:
    add_contacts(db, WORLD)
    return db


def _db_state(db: Database, no: str) -> dict[str, int]:
    seg = get_segment(db, no)
    with db.read() as conn:
        rows = conn.execute(
            select(Contact.contact_no, SegmentMember.added_seq)
            .join(SegmentMember, SegmentMember.contact_id == Contact.id)
            .where(SegmentMember.segment_id == seg.id)
        )
        return {r[0]: r[1] for r in rows}


@pytest.fixture(params=["sql", "memory"])
def commit_sets(request: pytest.FixtureRequest, world: Database) -> str:
    """Which sets the commits write from: SQL, or the snapshot this process holds (loaded here, as a preview would)."""
    if request.param == "memory":
        load_snapshot(world, wait=True)
    with world.write() as conn:
        sets = step_sets(conn)
    assert isinstance(sets, MemoryStepSets) == (request.param == "memory")
    return str(request.param)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=10))
def test_random_sequences_match_the_model(world: Database, commit_sets: str, steps: list[tuple[Any, ...]]) -> None:
    no = f"P{next(_counter)}"
    create_segment(world, no)
    model = Model()
    for s in steps:
        kind = s[0]
        if kind == "undo":
            if model.head == 0:
                with pytest.raises(RefusedError):
                    undo(world, no)
            else:
                undo(world, no)
                model.head -= 1
        elif kind == "redo":
            if model.head == len(model.states) - 1:
                with pytest.raises(RefusedError):
                    redo(world, no)
            else:
                redo(world, no)
                model.head += 1
        elif kind in FILTER_KINDS:
            _, flt, a, b, c = s
            opts = (
                ActionOptions(expand_companies=a, related_companies=b, ignore_exclusion=c)
                if kind == "add"
                else ActionOptions(entire_companies=a)
            )
            result = apply_action(world, no, ActionRequest(kind, from_json(FILTERS[flt][0]), opts))
            matched = _matched(flt, kind, opts)
            # The log's "matched": every contact an Add brings (members included), the members a Refine/Reduce hit.
            assert result.matched == (len(matched) if kind == "add" else len(matched & set(model.states[model.head])))
            model.act(kind, matched)
        else:
            nos = set(s[1])
            apply_action(world, no, ActionRequest(kind, contact_nos=tuple(sorted(nos))))
            if kind == "add_contacts":
                nos = {n for n in nos if not INFO[n].get("exclude_from_segments")}
            model.act(kind, nos)

        expected = model.states[model.head]
        assert _db_state(world, no) == expected
        info = get_segment(world, no)
        assert (info.size, info.head_seq, info.last_seq) == (len(expected), model.head, len(model.states) - 1)
        log = criteria_log(world, no)
        assert [e.seq for e in log] == list(range(1, len(model.states)))
        assert [e.undone for e in log] == [e.seq > model.head for e in log]
        for e in log:
            assert e.size_after == len(model.states[e.seq])
