"""Campaigns, the review workflow and Log segment (SPEC §3), on SQLite and PostgreSQL.

Every effect is checked in the tables: statuses and events, logged snapshots, interactions, holdout flags.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select, update

from segcore._db import Database
from segcore._engine import (
    ActionRequest,
    apply_action,
    create_segment,
    criteria_log,
    delete_segment,
    get_segment,
    member_contact_nos,
    redo,
    reuse_criteria,
    save_criteria,
    undo,
    update_segment,
)
from segcore._errors import ConflictError, NotFoundError, RefusedError, UsageError
from segcore._filter_sql import matching_ids
from segcore._filter_text import parse_text
from segcore._lifecycle import (
    CAMPAIGN_STATUSES,
    approve_segment,
    cancel_logged,
    create_campaign,
    delete_campaign,
    get_campaign,
    get_logged,
    is_small,
    list_campaigns,
    list_logged,
    log_refusal,
    log_segment,
    logged_interactions,
    logged_members,
    reject_segment,
    segment_is_small,
    status_history,
    submit_segment,
    update_campaign,
    withdraw_segment,
)
from segcore._models import (
    Contact,
    Interaction,
    LoggedSegment,
    LoggedSegmentMember,
    Segment,
    SegmentAction,
    SegmentStatusEvent,
)
from segcore._review import drift
from segcore._settings import set_setting
from segcore._snapshot import data_version
from tests.factories import add_contacts, person

interactions = Interaction.__table__
logged_t = LoggedSegment.__table__
logged_mem = LoggedSegmentMember.__table__
segments_t = Segment.__table__
events_t = SegmentStatusEvent.__table__
contacts_t = Contact.__table__

DAY = dt.date(2024, 5, 2)


# ------------------------------------------------------------------------------------------------ helpers


def set_minimum(db: Database, value: int) -> None:
    set_setting(db, "minimum_segment_size", value)


def contacts(db: Database, n: int = 20) -> list[str]:
    nos = [f"P{i:03d}" for i in range(1, n + 1)]
    add_contacts(db, [person(no, email=f"{no.lower()}@example.org", country="FR") for no in nos])
    return nos


def segment(
    db: Database, no: str, contact_nos: list[str], *, description: str = "Spring mailing", campaign: str | None = None
) -> None:
    create_segment(db, no, description=description, campaign_no=campaign, owner="ann")
    if contact_nos:
        apply_action(db, no, ActionRequest("add_contacts", contact_nos=tuple(contact_nos)), user="ann")


def status(db: Database, no: str) -> str:
    with db.read() as conn:
        return str(conn.execute(select(segments_t.c.status).where(segments_t.c.no == no)).scalar_one())


def count(db: Database, table: Any, *where: Any) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def interaction_rows(db: Database) -> list[Any]:
    with db.read() as conn:
        return conn.execute(
            select(interactions, contacts_t.c.contact_no)
            .join(contacts_t, contacts_t.c.id == interactions.c.contact_id)
            .order_by(contacts_t.c.contact_no)
        ).all()


def holdout_nos(db: Database, no: str) -> list[str]:
    with db.read() as conn:
        return list(
            conn.execute(
                select(contacts_t.c.contact_no)
                .join(logged_mem, logged_mem.c.contact_id == contacts_t.c.id)
                .join(logged_t, logged_t.c.id == logged_mem.c.logged_id)
                .where(logged_t.c.segment_no == no, logged_mem.c.holdout.is_(True))
                .order_by(contacts_t.c.contact_no)
            ).scalars()
        )


def bring_to(db: Database, no: str, target: str) -> None:
    """A segment with members and a description, moved to `target` through the workflow."""
    if target in ("submitted", "approved", "rejected"):
        submit_segment(db, no, user="ann")
    if target == "approved":
        approve_segment(db, no, user="max")
    if target == "rejected":
        reject_segment(db, no, comment="too broad", user="max")
    if target == "logged":
        log_segment(db, no, template="EMAIL", date=DAY, user="ann")
    assert status(db, no) == target


# ------------------------------------------------------------------------------------------------ campaigns


def test_campaign_create_get_list_update_delete(db: Database) -> None:
    info = create_campaign(
        db, " C1 ", description="Spring", start_date="2024-03-01", end_date=dt.date(2024, 4, 30), status="active"
    )
    assert (info.no, info.description, info.start_date, info.end_date, info.status) == (
        "C1", "Spring", dt.date(2024, 3, 1), dt.date(2024, 4, 30), "active",
    )
    create_campaign(db, "C2")
    nos = contacts(db, 5)
    segment(db, "S1", nos, campaign="C1")
    segment(db, "S2", nos[:2], campaign="C1")
    set_minimum(db, 1)
    log_segment(db, "S2", template="EMAIL", date=DAY, user="ann")
    listed = {c.no: c for c in list_campaigns(db)}
    assert [c.no for c in list_campaigns(db)] == ["C1", "C2"]
    assert (listed["C1"].segment_count, listed["C1"].logged_count) == (2, 1)
    assert (listed["C2"].segment_count, listed["C2"].logged_count, listed["C2"].status) == (0, 0, "planned")
    assert get_campaign(db, "C1") == listed["C1"]

    updated = update_campaign(db, "C2", description="Autumn", end_date="2024-12-01", status="completed")
    assert (updated.description, updated.end_date, updated.status) == ("Autumn", dt.date(2024, 12, 1), "completed")
    cleared = update_campaign(db, "C2", end_date="")
    assert cleared.end_date is None and cleared.description == "Autumn"

    delete_campaign(db, "C2")
    assert [c.no for c in list_campaigns(db)] == ["C1"]
    with pytest.raises(RefusedError, match="used by 2 segment"):
        delete_campaign(db, "C1")
    assert get_campaign(db, "C1").segment_count == 2


def _dup(db: Database) -> None:
    create_campaign(db, "C1")


def _delete_used(db: Database) -> None:
    delete_campaign(db, "C1")


@pytest.mark.parametrize(
    ("call", "error", "fragment"),
    [
        pytest.param(_dup, RefusedError, "already exists", id="duplicate"),
        pytest.param(lambda db: create_campaign(db, "bad no!"), UsageError, "not valid", id="bad-number"),
        pytest.param(lambda db: create_campaign(db, ""), UsageError, "not valid", id="empty-number"),
        pytest.param(
            lambda db: create_campaign(db, "C3", start_date="2024-05-01", end_date="2024-04-01"),
            UsageError, "before it starts", id="end-before-start",
        ),
        pytest.param(lambda db: create_campaign(db, "C3", start_date="1 May"), UsageError, "YYYY-MM-DD", id="bad-date"),
        pytest.param(lambda db: create_campaign(db, "C3", status="open"), UsageError, "planned", id="bad-status"),
        pytest.param(lambda db: create_campaign(db, "C3", description="x" * 201), UsageError, "200", id="long"),
        pytest.param(
            lambda db: update_campaign(db, "C1", end_date="2023-12-31"), UsageError, "before it starts",
            id="update-end-before-stored-start",
        ),
        pytest.param(lambda db: update_campaign(db, "NOPE", status="active"), NotFoundError, "NOPE", id="update-missing"),
        pytest.param(lambda db: get_campaign(db, "NOPE"), NotFoundError, "NOPE", id="get-missing"),
        pytest.param(lambda db: delete_campaign(db, "NOPE"), NotFoundError, "NOPE", id="delete-missing"),
        pytest.param(_delete_used, RefusedError, "cannot be deleted", id="delete-used-by-segment"),
    ],
)
def test_campaign_refusals(
    db: Database, call: Callable[[Database], Any], error: type[Exception], fragment: str
) -> None:
    contacts(db, 3)
    create_campaign(db, "C1", start_date="2024-01-01")
    segment(db, "S1", [], campaign="C1")
    before = list_campaigns(db)
    with pytest.raises(error, match=fragment):
        call(db)
    assert list_campaigns(db) == before  # nothing written


def test_campaign_used_only_by_a_logged_segment_is_kept(db: Database) -> None:
    set_minimum(db, 1)
    contacts(db, 2)
    create_campaign(db, "C1")
    segment(db, "S1", ["P001"], campaign="C1")
    log_segment(db, "S1", template="EMAIL")
    # The working segment leaves the campaign; the logged record still names it.
    with db.write() as conn:
        conn.execute(update(segments_t).where(segments_t.c.no == "S1").values(campaign_no=None))
    with pytest.raises(RefusedError, match="0 segment.* and 1 logged segment"):
        delete_campaign(db, "C1")
    assert get_campaign(db, "C1").logged_count == 1


def test_campaign_statuses_are_the_four() -> None:
    assert CAMPAIGN_STATUSES == ("planned", "active", "completed", "cancelled")


# ------------------------------------------------------------------------------------------------ review

TRANSITIONS: dict[str, Callable[..., Any]] = {
    "submit": lambda db, no: submit_segment(db, no, user="u"),
    "withdraw": lambda db, no: withdraw_segment(db, no, user="u"),
    "approve": lambda db, no: approve_segment(db, no, user="u"),
    "reject": lambda db, no: reject_segment(db, no, comment="no", user="u"),
}
ALLOWED = {
    ("draft", "submit"): "submitted",
    ("rejected", "submit"): "submitted",
    ("submitted", "withdraw"): "draft",
    ("approved", "withdraw"): "draft",
    ("rejected", "withdraw"): "draft",
    ("submitted", "approve"): "approved",
    ("submitted", "reject"): "rejected",
}
REFUSAL_HINT = {
    ("draft", "approve"): "is draft: submit it first",
    ("draft", "reject"): "is draft: submit it first",
    ("draft", "withdraw"): "is draft",
    ("rejected", "approve"): "is rejected: submit it again first",
    ("submitted", "submit"): "under review",
    ("logged", "submit"): "is logged",
}


@pytest.mark.parametrize("transition", list(TRANSITIONS))
@pytest.mark.parametrize("start", ["draft", "submitted", "approved", "rejected", "logged"])
def test_transition_table(db: Database, start: str, transition: str) -> None:
    set_minimum(db, 1)
    segment(db, "S1", contacts(db, 3))
    bring_to(db, "S1", start)
    before = get_segment(db, "S1")
    n_events = count(db, events_t)
    target = ALLOWED.get((start, transition))
    if target is None:
        with pytest.raises(RefusedError) as err:
            TRANSITIONS[transition](db, "S1")
        assert f"is {start}" in str(err.value) or "under review" in str(err.value)
        assert REFUSAL_HINT.get((start, transition), "") in str(err.value)
        assert get_segment(db, "S1") == before and count(db, events_t) == n_events
        return
    info = TRANSITIONS[transition](db, "S1")
    assert info.status == target == status(db, "S1")
    assert info.version == before.version + 1
    last = status_history(db, "S1")[-1]
    assert (last.from_status, last.to_status, last.user) == (start, target, "u")
    assert count(db, events_t) == n_events + 1


def test_approve_records_head_and_any_action_returns_to_draft(db: Database) -> None:
    nos = contacts(db, 5)
    segment(db, "S1", nos[:3])
    submit_segment(db, "S1", user="ann", comment="please check")
    approve_segment(db, "S1", user="max", comment="fine")
    with db.read() as conn:
        row = conn.execute(select(segments_t).where(segments_t.c.no == "S1")).one()
    assert (row.status, row.approved_head_seq, row.status_comment) == ("approved", 1, "fine")
    apply_action(db, "S1", ActionRequest("add_contacts", contact_nos=(nos[4],)), user="bob")
    assert status(db, "S1") == "draft"
    last = status_history(db, "S1")[-1]
    assert (last.from_status, last.to_status, last.comment, last.user) == ("approved", "draft", "members changed", "bob")


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"description": "Autumn mailing"}, "description changed"),
        ({"campaign_no": "C2"}, "campaign changed"),
        ({"campaign_no": ""}, "campaign changed"),
        ({"description": "Autumn mailing", "campaign_no": "C2"}, "description and campaign changed"),
    ],
)
@pytest.mark.parametrize("reviewed", ["submitted", "approved", "rejected"])
def test_a_header_change_returns_a_reviewed_segment_to_draft(
    db: Database, change: dict[str, str], reason: str, reviewed: str
) -> None:
    create_campaign(db, "C1")
    create_campaign(db, "C2")
    segment(db, "S1", contacts(db, 3))
    update_segment(db, "S1", campaign_no="C1")
    submit_segment(db, "S1", user="ann")
    if reviewed == "approved":
        approve_segment(db, "S1", user="max")
    elif reviewed == "rejected":
        reject_segment(db, "S1", user="max", comment="too broad")
    update_segment(db, "S1", user="bob", **change)
    last = status_history(db, "S1")[-1]
    assert status(db, "S1") == "draft"
    assert (last.from_status, last.to_status, last.comment, last.user) == (reviewed, "draft", reason, "bob")


def test_an_unchanged_header_keeps_the_status_and_version(db: Database) -> None:
    create_campaign(db, "C1")
    segment(db, "S1", contacts(db, 3))
    update_segment(db, "S1", campaign_no="C1")
    submit_segment(db, "S1")
    approve_segment(db, "S1")
    before = get_segment(db, "S1")
    after = update_segment(db, "S1", description=f"  {before.description} ", campaign_no="C1")
    assert (after.status, after.version) == ("approved", before.version)


@pytest.mark.parametrize("comment", ["", "   ", None])
def test_reject_needs_a_comment(db: Database, comment: str | None) -> None:
    segment(db, "S1", contacts(db, 2))
    submit_segment(db, "S1")
    with pytest.raises(UsageError, match="comment"):
        reject_segment(db, "S1", comment=comment)  # type: ignore[arg-type]
    assert status(db, "S1") == "submitted"


def test_reject_comment_is_kept_and_history_is_in_order(db: Database) -> None:
    segment(db, "S1", contacts(db, 2))
    submit_segment(db, "S1", user="ann", comment="first try")
    rejected = reject_segment(db, "S1", comment="  too broad  ", user="max")
    assert rejected.status_comment == "too broad"
    submit_segment(db, "S1", user="ann")
    approve_segment(db, "S1", user="max")
    withdraw_segment(db, "S1", user="ann")
    history = status_history(db, "S1")
    assert [(e.from_status, e.to_status, e.user, e.comment) for e in history] == [
        ("draft", "submitted", "ann", "first try"),
        ("submitted", "rejected", "max", "too broad"),
        ("rejected", "submitted", "ann", None),
        ("submitted", "approved", "max", None),
        ("approved", "draft", "ann", None),
    ]
    assert all(a.at <= b.at for a, b in zip(history, history[1:], strict=False))


@pytest.mark.parametrize(
    ("description", "members", "fragment"),
    [
        pytest.param("", ["P001"], "needs a description", id="no-description"),
        pytest.param("Spring", [], "no members", id="empty"),
    ],
)
def test_submit_preconditions(db: Database, description: str, members: list[str], fragment: str) -> None:
    contacts(db, 2)
    segment(db, "S1", members, description=description)
    with pytest.raises(RefusedError, match=fragment):
        submit_segment(db, "S1")
    assert status(db, "S1") == "draft" and status_history(db, "S1") == []


@pytest.mark.parametrize("name", ["submit", "withdraw_after_submit", "log"])
def test_expected_version_guard(db: Database, name: str) -> None:
    set_minimum(db, 1)
    segment(db, "S1", contacts(db, 2))
    if name == "withdraw_after_submit":
        submit_segment(db, "S1")
    stale = get_segment(db, "S1").version
    update_segment(db, "S1", description="changed by someone else")
    calls = {
        "submit": lambda: submit_segment(db, "S1", expected_version=stale),
        "withdraw_after_submit": lambda: withdraw_segment(db, "S1", expected_version=stale),
        "log": lambda: log_segment(db, "S1", template="EMAIL", expected_version=stale),
    }
    before = get_segment(db, "S1")
    with pytest.raises(ConflictError, match="changed since you looked at it"):
        calls[name]()
    assert get_segment(db, "S1") == before
    assert count(db, interactions) == 0 and count(db, logged_t) == 0


def test_unknown_segment(db: Database) -> None:
    for call in (
        lambda: submit_segment(db, "NOPE"),
        lambda: status_history(db, "NOPE"),
        lambda: log_segment(db, "NOPE", template="EMAIL"),
        lambda: cancel_logged(db, "NOPE"),
        lambda: get_logged(db, "NOPE"),
    ):
        with pytest.raises(NotFoundError, match="NOPE"):
            call()


@pytest.mark.parametrize(("size", "minimum", "small"), [(0, 50, True), (49, 50, True), (50, 50, False), (3, 1, False)])
def test_is_small(size: int, minimum: int, small: bool) -> None:
    assert is_small(size, minimum) is small


def test_segment_is_small_follows_the_setting(db: Database) -> None:
    segment(db, "S1", contacts(db, 5))
    assert segment_is_small(db, "S1") is True  # default minimum 50
    set_minimum(db, 5)
    assert segment_is_small(db, "S1") is False


# ------------------------------------------------------------------------------------------------ log segment


def _precondition(db: Database, case: str) -> None:
    nos = contacts(db, 10)
    set_minimum(db, 5)
    if case == "no-description":
        segment(db, "S1", nos, description="")
    elif case == "empty":
        segment(db, "S1", [])
    elif case == "small":
        segment(db, "S1", nos[:4])
    elif case == "small-default-minimum":
        segment(db, "S1", nos)
        set_minimum(db, 50)
    else:
        segment(db, "S1", nos)
        bring_to(db, "S1", case)


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("no-description", "needs a description"),
        ("empty", "no members"),
        ("small", "4 members, fewer than the minimum of 5"),
        ("small-default-minimum", "minimum of 50"),
        ("logged", "logged already"),
        ("submitted", "under review: approve or withdraw it first"),
        ("rejected", "was rejected"),
    ],
)
def test_log_preconditions(db: Database, case: str, fragment: str) -> None:
    _precondition(db, case)
    n_logged, n_interactions = count(db, logged_t), count(db, interactions)
    before = get_segment(db, "S1")
    with pytest.raises(RefusedError, match=fragment):
        log_segment(db, "S1", template="EMAIL", follow_up=True)
    assert get_segment(db, "S1") == before
    assert (count(db, logged_t), count(db, interactions)) == (n_logged, n_interactions)
    assert count(db, segments_t) == 1


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"template": ""}, "template"),
        ({"template": "E MAIL"}, "template"),
        ({"template": "X" * 21}, "template"),
        ({"template": "EMAIL", "holdout_pct": 0}, "above 0 and below 100"),
        ({"template": "EMAIL", "holdout_pct": 100}, "above 0 and below 100"),
        ({"template": "EMAIL", "holdout_pct": -5}, "above 0 and below 100"),
        ({"template": "EMAIL", "seed": 3}, "give the holdout percentage"),
        ({"template": "EMAIL", "holdout_pct": 10, "seed": -1}, "whole number"),
        ({"template": "EMAIL", "follow_up_no": "F1"}, "ask for the follow-up"),
        ({"template": "EMAIL", "follow_up": True, "follow_up_no": "bad no"}, "not valid"),
        ({"template": "EMAIL", "date": "02/05/2024"}, "YYYY-MM-DD"),
    ],
)
def test_log_usage_errors(db: Database, kwargs: dict[str, Any], fragment: str) -> None:
    set_minimum(db, 1)
    segment(db, "S1", contacts(db, 5))
    with pytest.raises(UsageError, match=fragment):
        log_segment(db, "S1", **kwargs)
    assert status(db, "S1") == "draft" and count(db, logged_t) == 0


def test_holdout_that_keeps_everyone_out_is_refused(db: Database) -> None:
    set_minimum(db, 1)
    segment(db, "S1", contacts(db, 1))
    with pytest.raises(RefusedError, match=r"keeps every member of segment S1 out \(1 member\)"):
        log_segment(db, "S1", template="EMAIL", holdout_pct=60, seed=1)
    assert count(db, logged_t) == 0


@pytest.mark.parametrize("start", ["draft", "approved"])
def test_log_writes_one_interaction_per_member(db: Database, start: str) -> None:
    set_minimum(db, 5)
    create_campaign(db, "C1")
    nos = contacts(db, 8)
    segment(db, "S1", nos[:6], campaign="C1")
    segment(db, "OTHER", nos[6:])
    bring_to(db, "S1", start)
    version_before = data_token(db)
    info = log_segment(db, "S1", template="email", date="2024-05-02", user="ann")
    assert (info.segment_no, info.template, info.date, info.campaign_no, info.description) == (
        "S1", "EMAIL", DAY, "C1", "Spring mailing",
    )
    assert (info.member_count, info.contacted_count, info.holdout_count, info.holdout_pct, info.holdout_seed) == (
        6, 6, 0, None, None,
    )
    assert (info.logged_by, info.cancelled, info.follow_up_segment_no) == ("ann", False, None)
    rows = interaction_rows(db)
    assert [r.contact_no for r in rows] == nos[:6]
    for r in rows:
        assert (r.date, r.template, r.campaign_no, r.segment_no, r.created_by, r.logged_segment_id, r.cancelled) == (
            DAY, "EMAIL", "C1", "S1", "ann", info.id, False,
        )
    assert count(db, logged_mem, logged_mem.c.logged_id == info.id) == 6
    assert count(db, logged_mem, logged_mem.c.holdout.is_(True)) == 0
    seg = get_segment(db, "S1")
    assert seg.status == "logged" and seg.read_only
    last = status_history(db, "S1")[-1]
    assert (last.from_status, last.to_status, last.user) == (start, "logged", "ann")
    assert "6 interaction" in (last.comment or "")
    assert data_token(db) != version_before  # previews rebuild their snapshot of interactions
    assert get_logged(db, "S1") == info
    assert status(db, "OTHER") == "draft"


def data_token(db: Database) -> str:
    with db.read() as conn:
        return data_version(conn)


def expected_holdout(db: Database, no: str, pct: float, seed: int) -> list[str]:
    """The documented draw: member ids ascending, shuffled by default_rng(seed), the first round-half-up(n·pct/100)."""
    with db.read() as conn:
        rows = conn.execute(
            select(contacts_t.c.id, contacts_t.c.contact_no)
            .join(logged_mem, logged_mem.c.contact_id == contacts_t.c.id)
            .join(logged_t, logged_t.c.id == logged_mem.c.logged_id)
            .where(logged_t.c.segment_no == no)
            .order_by(contacts_t.c.id)
        ).all()
    k = int(np.floor(len(rows) * pct / 100 + 0.5))
    picked = np.random.default_rng(seed).permutation(len(rows))[:k]
    return sorted(rows[i].contact_no for i in picked)


def test_holdout_is_seeded_flagged_and_gets_no_interaction(db: Database) -> None:
    set_minimum(db, 10)
    nos = contacts(db, 50)
    for no in ("S1", "S2", "S3"):
        segment(db, no, nos)
    a = log_segment(db, "S1", template="EMAIL", holdout_pct=25, seed=42)
    log_segment(db, "S2", template="EMAIL", holdout_pct=25, seed=42)
    log_segment(db, "S3", template="EMAIL", holdout_pct=25, seed=43)
    assert (a.holdout_count, a.contacted_count, a.holdout_pct, a.holdout_seed) == (13, 37, 25.0, 42)  # 12.5 -> 13
    held_a, held_b, held_c = holdout_nos(db, "S1"), holdout_nos(db, "S2"), holdout_nos(db, "S3")
    assert len(held_a) == 13 and held_a == held_b  # same seed, same members: same control group
    assert held_c != held_a and len(held_c) == 13
    assert held_a == expected_holdout(db, "S1", 25, 42)  # the documented draw, identical on both databases
    with db.read() as conn:
        contacted = set(
            conn.execute(
                select(contacts_t.c.contact_no)
                .join(interactions, interactions.c.contact_id == contacts_t.c.id)
                .where(interactions.c.logged_segment_id == a.id)
            ).scalars()
        )
    assert contacted == set(nos) - set(held_a)
    assert count(db, interactions, interactions.c.logged_segment_id == a.id) == a.contacted_count
    page, total = logged_members(db, "S1", limit=100)
    assert total == 50 and sorted(r["contact_no"] for r in page if r["holdout"]) == held_a


def test_missing_seed_is_drawn_and_stored(db: Database) -> None:
    set_minimum(db, 1)
    nos = contacts(db, 20)
    segment(db, "S1", nos)
    info = log_segment(db, "S1", template="EMAIL", holdout_pct=10)
    assert info.holdout_seed is not None and info.holdout_count == 2
    assert holdout_nos(db, "S1") == expected_holdout(db, "S1", 10, info.holdout_seed)
    with db.read() as conn:
        stored = conn.execute(select(logged_t.c.holdout_seed)).scalar_one()
    assert stored == info.holdout_seed


def test_follow_up_segment(db: Database) -> None:
    set_minimum(db, 3)
    create_campaign(db, "C1")
    nos = contacts(db, 6)
    segment(db, "S1", nos[:4], campaign="C1")
    create_segment(db, "S1-FU", description="taken")
    info = log_segment(db, "S1", template="CALL", follow_up=True, user="ann", holdout_pct=25, seed=5)
    assert info.follow_up_segment_no == "S1-FU2"
    fu = get_segment(db, "S1-FU2")
    assert (fu.status, fu.description, fu.campaign_no, fu.size, fu.owner) == ("draft", "Spring mailing", "C1", 3, "ann")
    [held] = holdout_nos(db, "S1")
    treated = [n for n in nos[:4] if n != held]
    assert member_contact_nos(db, "S1-FU2") == treated  # the treated members only: the control group stays out
    with db.read() as conn:
        steps = conn.execute(
            select(SegmentAction.kind, SegmentAction.payload, SegmentAction.description)
            .join(Segment, Segment.id == SegmentAction.segment_id)
            .where(Segment.no == "S1-FU2")
        ).all()
    assert [tuple(r) for r in steps] == [
        ("add_contacts", {"contact_nos": treated}, "treated members of S1 (control group of 1 left out)")
    ]
    # The step names the treated members, so a replay gives the same members and never brings the control back.
    assert drift(db, "S1-FU2").unchanged
    # The follow-up is an ordinary draft: it can change and be logged in its turn.
    apply_action(db, "S1-FU2", ActionRequest("remove_contacts", contact_nos=(treated[0],)))
    assert get_segment(db, "S1-FU2").size == 2


def test_follow_up_leaves_out_the_control_group_of_a_large_holdout(db: Database) -> None:
    set_minimum(db, 1)
    nos = contacts(db, 40)
    segment(db, "S1", nos)
    # An excluded member is still treated (it was contacted): the follow-up keeps it, as Reuse segment would.
    with db.write() as conn:
        conn.execute(update(contacts_t).values(exclude_from_segments=True))
    info = log_segment(db, "S1", template="EMAIL", follow_up=True, holdout_pct=30, seed=11)
    held = holdout_nos(db, "S1")
    assert len(held) == info.holdout_count == 12
    follow = member_contact_nos(db, "S1-FU")
    assert follow == sorted(set(nos) - set(held)) and not set(follow) & set(held)
    [entry] = criteria_log(db, "S1-FU")
    assert (entry.kind, entry.description, entry.added, entry.size_after) == (
        "add_contacts", "treated members of S1 (control group of 12 left out)", 28, 28,
    )
    # Saved criteria replayed elsewhere give the treated members too.
    save_criteria(db, "S1-FU", "FOLLOW")
    create_segment(db, "COPY", description="copy")
    reuse_criteria(db, "FOLLOW", "COPY")
    assert member_contact_nos(db, "COPY") == follow


def test_follow_up_without_holdout_says_every_member_was_treated(db: Database) -> None:
    set_minimum(db, 1)
    nos = contacts(db, 3)
    segment(db, "S1", nos)
    log_segment(db, "S1", template="EMAIL", follow_up=True)
    assert member_contact_nos(db, "S1-FU") == nos
    [entry] = criteria_log(db, "S1-FU")
    assert (entry.kind, entry.description) == (
        "reuse_segment", "treated members of S1 (all members: logged without a control group)",
    )


def test_follow_up_with_its_own_number(db: Database) -> None:
    set_minimum(db, 1)
    segment(db, "S1", contacts(db, 3))
    info = log_segment(db, "S1", template="EMAIL", follow_up=True, follow_up_no="S1-JUNE")
    assert info.follow_up_segment_no == "S1-JUNE" and get_segment(db, "S1-JUNE").size == 3
    assert [r.follow_up_segment_no for r in list_logged(db)] == ["S1-JUNE"]


def test_deleting_a_follow_up_keeps_the_logged_record(db: Database) -> None:
    set_minimum(db, 1)
    segment(db, "S1", contacts(db, 3))
    log_segment(db, "S1", template="EMAIL", follow_up=True)
    delete_segment(db, "S1-FU")
    [record] = list_logged(db)
    # The link goes; the snapshot, its members and its interactions stay.
    assert record.follow_up_segment_no is None and record.member_count == 3
    assert count(db, logged_mem) == 3 and count(db, interactions) == 3


def test_failure_mid_log_writes_nothing(db: Database) -> None:
    set_minimum(db, 1)
    nos = contacts(db, 5)
    segment(db, "S1", nos)
    segment(db, "TAKEN", nos[:1])
    before = get_segment(db, "S1")
    token = data_token(db)
    with pytest.raises(RefusedError, match="TAKEN already exists"):
        log_segment(db, "S1", template="EMAIL", follow_up=True, follow_up_no="TAKEN", holdout_pct=20, seed=1)
    assert get_segment(db, "S1") == before and status(db, "S1") == "draft"
    assert count(db, interactions) == 0 and count(db, logged_t) == 0 and count(db, logged_mem) == 0
    assert status_history(db, "S1") == [] and data_token(db) == token
    assert get_segment(db, "TAKEN").size == 1
    # And the same log then succeeds with a free number.
    assert log_segment(db, "S1", template="EMAIL", follow_up=True).follow_up_segment_no == "S1-FU"


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda db: apply_action(db, "S1", ActionRequest("add_contacts", contact_nos=("P004",))), id="add"),
        pytest.param(
            lambda db: apply_action(db, "S1", ActionRequest("refine", parse_text(["country=FR"]))), id="refine"
        ),
        pytest.param(lambda db: undo(db, "S1"), id="undo"),
        pytest.param(lambda db: redo(db, "S1"), id="redo"),
        pytest.param(lambda db: delete_segment(db, "S1"), id="delete"),
        pytest.param(lambda db: submit_segment(db, "S1"), id="submit"),
        pytest.param(lambda db: withdraw_segment(db, "S1"), id="withdraw"),
    ],
)
def test_read_only_after_log(db: Database, call: Callable[[Database], Any]) -> None:
    set_minimum(db, 1)
    nos = contacts(db, 4)
    segment(db, "S1", nos[:2])
    apply_action(db, "S1", ActionRequest("add_contacts", contact_nos=(nos[2],)))
    undo(db, "S1")  # leaves a step to redo
    log_segment(db, "S1", template="EMAIL")
    before = get_segment(db, "S1")
    with pytest.raises(RefusedError, match="logged"):
        call(db)
    assert get_segment(db, "S1") == before and member_contact_nos(db, "S1") == nos[:2]


def related_matches(db: Database, segment_no: str) -> list[str]:
    flt = parse_text([f"interactions.segment_no={segment_no}", "interactions.template=EMAIL"])
    with db.read() as conn:
        return sorted(
            conn.execute(
                select(contacts_t.c.contact_no).where(contacts_t.c.id.in_(matching_ids(flt, today=DAY)))
            ).scalars()
        )


def test_cancel_marks_interactions_and_filters_stop_matching(db: Database) -> None:
    set_minimum(db, 1)
    nos = contacts(db, 6)
    segment(db, "S1", nos[:4])
    segment(db, "S2", nos[3:])
    log_segment(db, "S1", template="EMAIL", date=DAY)
    log_segment(db, "S2", template="EMAIL", date=DAY)
    assert related_matches(db, "S1") == nos[:4]
    token = data_token(db)
    info = cancel_logged(db, "S1", user="max")
    assert info.cancelled and info.cancelled_at is not None
    assert count(db, interactions, interactions.c.cancelled.is_(True)) == 4
    assert count(db, interactions, interactions.c.cancelled.is_(False)) == 3  # S2's stay
    assert related_matches(db, "S1") == [] and related_matches(db, "S2") == nos[3:]
    assert data_token(db) != token
    rows, total = logged_interactions(db, "S1")
    assert total == 4 and all(r["cancelled"] for r in rows)
    last = status_history(db, "S1")[-1]
    assert (last.to_status, last.user) == ("logged", "max") and "cancelled" in (last.comment or "")
    assert status(db, "S1") == "logged"
    with pytest.raises(RefusedError, match="cancelled already"):
        cancel_logged(db, "S1")
    with pytest.raises(RefusedError, match="not logged"):
        segment(db, "S3", nos[:1])
        cancel_logged(db, "S3")


def test_reading_logged_segments(db: Database) -> None:
    set_minimum(db, 1)
    create_campaign(db, "C1")
    nos = contacts(db, 12)
    segment(db, "S1", nos, campaign="C1")
    segment(db, "S2", nos[:3])
    first = log_segment(db, "S1", template="EMAIL", date=DAY, holdout_pct=25, seed=9, user="max")
    second = log_segment(db, "S2", template="CALL", date=DAY)
    assert [r.id for r in list_logged(db)] == [second.id, first.id]  # newest first
    assert [r.segment_no for r in list_logged(db, campaign_no="C1")] == ["S1"]
    page, total = logged_members(db, "S1", limit=5, offset=10)
    assert total == 12 and [r["contact_no"] for r in page] == nos[10:]
    assert set(page[0]) == {"contact_no", "name", "email", "holdout"}
    rows, total = logged_interactions(db, "S1", limit=4)
    assert total == 9 and len(rows) == 4
    assert set(rows[0]) == {"contact_no", "name", "date", "template", "campaign_no", "segment_no", "created_by",
                            "cancelled"}
    assert {(r["date"], r["template"], r["campaign_no"], r["segment_no"], r["created_by"]) for r in rows} == {
        (DAY, "EMAIL", "C1", "S1", "max")}
    segment(db, "S3", nos[:1])
    with pytest.raises(NotFoundError, match="not been logged"):
        get_logged(db, "S3")
    with pytest.raises(NotFoundError, match="not been logged"):
        logged_members(db, "S3")


@pytest.mark.parametrize("requires_approval", [0, 1])
@pytest.mark.parametrize(
    "state, fragment",
    [
        ("draft", None),
        ("submitted", "under review"),
        ("approved", None),
        ("rejected", "was rejected"),
        ("logged", "logged already"),
        ("empty", "no members"),
        ("no-description", "needs a description"),
        ("small", "fewer than the minimum of 3"),
    ],
)
def test_log_refusal_says_why_and_log_segment_agrees(
    db: Database, requires_approval: int, state: str, fragment: str | None
) -> None:
    set_minimum(db, 3)
    set_setting(db, "log_requires_approval", requires_approval)
    nos = contacts(db, 4)
    members = {"empty": [], "small": nos[:2]}.get(state, nos)
    segment(db, "S1", members, description="" if state == "no-description" else "Spring mailing")
    if state in ("submitted", "approved", "rejected", "logged"):
        submit_segment(db, "S1")
    if state in ("approved", "logged"):
        approve_segment(db, "S1")
    if state == "rejected":
        reject_segment(db, "S1", comment="no")
    if state == "logged":
        log_segment(db, "S1", template="EMAIL")
    if requires_approval and state in ("draft", "empty", "no-description", "small"):
        fragment = "needs a manager's approval"
    refusal = log_refusal(db, "S1")
    if fragment is None:
        assert refusal is None
        assert log_segment(db, "S1", template="EMAIL").contacted_count == len(members)
    else:
        assert refusal is not None and fragment in refusal
        before = count(db, interactions)
        with pytest.raises(RefusedError) as info:
            log_segment(db, "S1", template="EMAIL")
        assert info.value.message == refusal
        assert count(db, interactions) == before


def test_copying_or_reusing_a_logged_segment_leaves_its_control_group_out(db: Database) -> None:
    from segcore._engine import ActionRequest, apply_action, copy_segment, preview

    set_minimum(db, 1)
    nos = contacts(db, 40)
    segment(db, "S1", nos)
    log_segment(db, "S1", template="EMAIL", holdout_pct=25, seed=3)
    held = set(holdout_nos(db, "S1"))
    treated = sorted(set(nos) - held)
    assert len(held) == 10
    copy_segment(db, "S1", "S1-COPY")
    assert member_contact_nos(db, "S1-COPY") == treated
    create_segment(db, "S2", description="reuse")
    request = ActionRequest("reuse_segment", source_segment_no="S1")
    assert preview(db, "S2", request).added == len(treated)
    apply_action(db, "S2", request)
    assert member_contact_nos(db, "S2") == treated
