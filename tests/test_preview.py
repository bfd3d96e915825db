"""Property: a step's preview is the same on the SQL path (pushed down, one pass per step) and the in-memory path,
and both say exactly what applying the step then does: counts, who enters or leaves, and every chart after.

The world of tests/test_engine_property.py (companies, persons, exclusion flags) gets genders, birth dates,
spending and industry codes, so that every chart dimension (one multi-valued) has several buckets.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select, update

from segcore import Database
from segcore._engine import (
    ActionOptions,
    ActionRequest,
    _member_ids_of,
    apply_action,
    create_segment,
    get_segment,
    member_ids,
    preview_sql,
)
from segcore._filter_tree import from_json
from segcore._models import Contact, ContactCode
from segcore._preview import clear_caches, preview_step
from segcore._settings import set_setting
from segcore._snapshot import bump_data_version
from segcore._stats import DIMENSIONS, distribution_sql
from tests.factories import add_contacts
from tests.test_engine_property import FILTERS, INFO, WORLD

TODAY = dt.date(2026, 6, 15)
GENDERS = ("female", "male", "other", "unknown")
BIRTHS = (dt.date(2010, 1, 1), dt.date(1999, 6, 16), dt.date(1980, 3, 3), dt.date(1955, 12, 31), None)
SPENT = (0, 50, 250, 750, 2500, 9000)
INDUSTRY = {"K1": ("RETAIL",), "P11": ("RETAIL", "TECH"), "K3": ("TECH",), "S3": ("FOOD", "TECH"), "P22": ("FOOD",)}
NOS = sorted(INFO)

step = st.one_of(
    st.tuples(st.sampled_from(("add", "refine", "reduce")), st.integers(0, len(FILTERS) - 1),
              st.booleans(), st.booleans(), st.booleans()),
    st.tuples(st.sampled_from(("add_contacts", "remove_contacts")), st.sets(st.sampled_from(NOS), min_size=1, max_size=4)),
)  # fmt: skip
_counter = itertools.count()


@pytest.fixture
def world(db: Database) -> Database:
    rows = [
        {**r, "gender": GENDERS[i % 4], "birth_date": BIRTHS[i % 5], "total_spent": SPENT[i % 6]}
        for i, r in enumerate(WORLD)
    ]
    ids = add_contacts(db, rows)
    with db.write() as conn:
        conn.execute(insert(ContactCode.__table__), [
            {"kind": "industry_groups", "code": code, "contact_id": ids[no]}
            for no, codes in INDUSTRY.items() for code in codes
        ])
        bump_data_version(conn)
    set_setting(db, "minimum_segment_size", 1)  # nothing masked: every bucket is compared
    clear_caches()
    return db


def _request(s: tuple[Any, ...]) -> ActionRequest:
    if s[0] in ("add", "refine", "reduce"):
        kind, flt, a, b, c = s
        opts = (ActionOptions(expand_companies=a, related_companies=b, ignore_exclusion=c) if kind == "add"
                else ActionOptions(entire_companies=a))
        return ActionRequest(kind, from_json(FILTERS[flt][0]), opts)
    return ActionRequest(s[0], contact_nos=tuple(sorted(s[1])))


def _charts_of_members(db: Database, no: str) -> dict[str, Any]:
    seg = get_segment(db, no)
    with db.read() as conn:
        return {d: distribution_sql(conn, _member_ids_of(seg.id), d, today=TODAY) for d in DIMENSIONS}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=6))
def test_sql_and_memory_previews_agree_with_what_the_step_does(world: Database, steps: list[tuple[Any, ...]]) -> None:
    no = f"V{next(_counter)}"
    create_segment(world, no)
    for s in steps:
        request = _request(s)
        sql = preview_step(world, no, request, today=TODAY, backend="sql")
        memory = preview_step(world, no, request, today=TODAY, backend="memory")
        assert sql.counts == memory.counts == preview_sql(world, no, request, today=TODAY), s
        assert sql.before == memory.before == _charts_of_members(world, no), s
        assert sql.after == memory.after, s
        before = set(member_ids(world, no))
        result = apply_action(world, no, request)
        after = set(member_ids(world, no))
        assert (sql.counts.added, sql.counts.removed, sql.counts.size_after) == (
            result.added, result.removed, len(after)), s
        assert set(sql.entering) <= after - before and set(sql.leaving) <= before - after, s
        assert len(sql.entering) + len(sql.leaving) == min(20, result.added + result.removed), s
        assert sql.after == _charts_of_members(world, no), s


def test_no_change_means_no_sample_query_and_empty_deltas(world: Database) -> None:
    create_segment(world, "ALL")
    apply_action(world, "ALL", ActionRequest("add", from_json({"all": []}), ActionOptions(ignore_exclusion=True)))
    pv = preview_step(world, "ALL", ActionRequest("add", from_json({"all": []})), today=TODAY, backend="sql")
    assert (pv.counts.added, pv.entering) == (0, ())
    assert pv.after == pv.before
    with world.write() as conn:  # the members' charts are cached per segment version and data version
        conn.execute(update(Contact.__table__).where(Contact.contact_no == "S1").values(gender="other"))
        bump_data_version(conn)
    again = preview_step(world, "ALL", ActionRequest("reduce", from_json({"any": []})), today=TODAY, backend="sql")
    with world.read() as conn:
        others = conn.execute(select(Contact.id).where(Contact.gender == "other")).all()
    assert again.before["gender"].counts["other"] == len(others)


# ---------------------------------------------------------------------------------------------- issue 13: Add options


def _expected_add(flt: int, opts: ActionOptions) -> tuple[set[str], int]:
    """C' of an Add on WORLD by the rule of SPEC §3, the contact type first: (contacts added, flagged ones left out)."""
    from tests.test_engine_property import ORG

    c = {no for no, r in INFO.items() if FILTERS[flt][1](r)}
    if opts.contact_type is not None:
        c = {no for no in c if INFO[no]["type"] == opts.contact_type}
    wide = set(c)
    if opts.expand_companies:
        orgs = {ORG[no] for no in c if ORG[no]}
        wide |= {no for no in INFO if ORG[no] in orgs}
    if opts.related_companies:
        wide |= {INFO[no]["company_no"] for no in c if INFO[no]["type"] == "person" and INFO[no].get("company_no")}
    flagged = {no for no in wide if INFO[no].get("exclude_from_segments")}
    if opts.ignore_exclusion:
        return wide, 0
    return wide - flagged, len(flagged)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flt=st.integers(0, len(FILTERS) - 1), contact_type=st.sampled_from((None, "person", "company")),
       expand=st.booleans(), related=st.booleans(), ignore=st.booleans())
def test_add_contact_type_and_excluded_count_agree_on_both_paths(
    world: Database, flt: int, contact_type: str | None, expand: bool, related: bool, ignore: bool
) -> None:
    """Persons only / companies only restrict C before the company options; the count of contacts the exclusion
    leaves out is the same on the SQL path, the in-memory path and the reference preview, and matches the rule."""
    no = f"T{next(_counter)}"
    create_segment(world, no)
    opts = ActionOptions(expand_companies=expand, related_companies=related, ignore_exclusion=ignore,
                         contact_type=contact_type)
    request = ActionRequest("add", from_json(FILTERS[flt][0]), opts)
    sql = preview_step(world, no, request, today=TODAY, backend="sql")
    memory = preview_step(world, no, request, today=TODAY, backend="memory")
    assert sql.counts == memory.counts == preview_sql(world, no, request, today=TODAY)
    assert sql.after == memory.after
    expected, left_out = _expected_add(flt, opts)
    assert (sql.counts.matched, sql.counts.skipped_excluded) == (len(expected), left_out)
    apply_action(world, no, request)
    with world.read() as conn:
        by_id = dict(conn.execute(select(Contact.id, Contact.contact_no)).all())
    assert {by_id[i] for i in member_ids(world, no)} == expected


def test_contact_type_is_an_add_option_logged_and_described(world: Database) -> None:
    from segcore import UsageError, criteria_log, save_criteria

    create_segment(world, "CT")
    fr = from_json({"field": "country", "op": "eq", "value": "FR"})
    request = ActionRequest("add", fr, ActionOptions(contact_type="person", related_companies=True))
    assert request.describe() == "Country is FR [persons only, related companies]"
    apply_action(world, "CT", request)
    entry = criteria_log(world, "CT")[-1]
    assert entry.options == {"contact_type": "person", "related_companies": True}
    assert entry.description.endswith("[persons only, related companies]")
    # Saved criteria carry it, and a replayed step keeps it.
    assert ActionRequest.from_step(request.to_step()) == request
    save_criteria(world, "CT", "CT-PERSONS")
    with pytest.raises(UsageError):
        ActionRequest("refine", fr, ActionOptions(contact_type="person"))
    with pytest.raises(UsageError):
        ActionOptions(contact_type="robot")
    with pytest.raises(UsageError):
        ActionOptions.from_dict({"contact_type": 3})
    # "both" (None) keeps Business Central's Add exactly: no option recorded.
    assert ActionOptions(contact_type=None).as_dict() == {}
