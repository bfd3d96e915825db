"""The campaign lifecycle in the dashboard (AppTest): submit, log with options, cancel, small segments, and a
manager's review of campaign targets. Effects are checked in the database, not only on the page."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update

from segcore._db import Database
from segcore._engine import ActionRequest, apply_action, create_segment, get_segment
from segcore._filter_tree import from_json
from segcore._lifecycle import (
    approve_segment,
    create_campaign,
    get_logged,
    list_campaigns,
    status_history,
    submit_segment,
)
from segcore._models import Interaction, Setting, table_of
from segcore._settings import set_setting
from tests.apptest_paths import assert_right_after
from tests.apptest_support import REVIEW, metrics, new_app, open_builder, run, texts
from ui.format import n

FR = {"field": "country", "op": "eq", "value": "FR"}


def build(db: Database, no: str, flt: dict[str, Any] = FR, *, campaign: str | None = None) -> int:
    create_segment(db, no, description=f"Target {no}", campaign_no=campaign)
    apply_action(db, no, ActionRequest("add", filter=from_json(flt)))
    return get_segment(db, no).size


def interactions_of(db: Database, no: str) -> tuple[int, int]:
    """(written, cancelled) interactions of segment `no`'s log."""
    t = table_of(Interaction)
    with db.read() as conn:
        total = conn.execute(select(func.count()).where(t.c.segment_no == no)).scalar_one()
        cancelled = conn.execute(select(func.count()).where(t.c.segment_no == no, t.c.cancelled)).scalar_one()
    return int(total), int(cancelled)


def open_tab(no: str) -> Any:
    at = open_builder(no)
    at.session_state["bd.tab"] = "Review & log"
    return run(at)


def test_submit_and_withdraw_from_the_builder(app_db: Database) -> None:
    build(app_db, "S1")
    at = open_tab("S1")
    at.text_input(key="bd.review.comment").input("ready for spring")
    at.button(key="bd.review.submit").click()
    run(at)
    assert get_segment(app_db, "S1").status == "submitted"
    [event] = status_history(app_db, "S1")
    assert (event.from_status, event.to_status, event.comment) == ("draft", "submitted", "ready for spring")
    assert any("submitted for review" in s for s in texts(at.success))
    # The history table shows it; then back to draft.
    assert any("To" in d.value.columns and list(d.value["To"]) == ["submitted"] for d in at.dataframe)
    at.button(key="bd.review.withdraw").click()
    run(at)
    assert get_segment(app_db, "S1").status == "draft"
    assert [e.to_status for e in status_history(app_db, "S1")] == ["submitted", "draft"]


def test_submit_needs_members(app_db: Database) -> None:
    create_segment(app_db, "EMPTY", description="Nothing yet")
    at = open_tab("EMPTY")
    assert at.button(key="bd.review.submit").disabled
    assert at.button(key="bd.log.go").disabled


def test_log_with_holdout_and_follow_up_then_cancel(app_db: Database) -> None:
    size = build(app_db, "S1")
    submit_segment(app_db, "S1")
    approve_segment(app_db, "S1")
    at = open_tab("S1")
    at.selectbox(key="bd.log.template").set_value("CALL")
    at.number_input(key="bd.log.holdout").set_value(10)
    run(at)
    at.text_input(key="bd.log.seed").input("42")
    at.checkbox(key="bd.log.fu").check()
    run(at)
    at.button(key="bd.log.go").click()
    run(at)
    # Nothing is written before the confirmation.
    assert get_segment(app_db, "S1").status == "approved" and interactions_of(app_db, "S1") == (0, 0)
    assert any("CALL" in m for m in texts(at.markdown))
    at.button(key="bd.log.confirm").click()
    run(at)
    rec = get_logged(app_db, "S1")
    held = (size * 10 + 50) // 100  # round half up, as SPEC's holdout share
    assert (rec.template, rec.holdout_seed, rec.holdout_count) == ("CALL", 42, held)
    assert rec.follow_up_segment_no == "S1-FU" and get_segment(app_db, "S1-FU").size == size - held  # the treated members only
    assert interactions_of(app_db, "S1") == (size - held, 0)
    assert get_segment(app_db, "S1").status == "logged"
    # The page now shows the record and the interactions it wrote.
    shown = metrics(at)
    assert shown["Interactions"] == n(size - held) and shown["Held out"] == n(held)
    assert any("cancelled" in d.value.columns and len(d.value) == min(50, size - held) for d in at.dataframe)
    # Cancel, with a confirmation.
    at.button(key="bd.cancel.go").click()
    run(at)
    assert interactions_of(app_db, "S1") == (size - held, 0)
    at.button(key="bd.cancel.confirm").click()
    run(at)
    assert interactions_of(app_db, "S1") == (size - held, size - held)
    assert get_logged(app_db, "S1").cancelled
    assert at.button(key="bd.cancel.go").disabled


def test_log_dialog_cancel_writes_nothing(app_db: Database) -> None:
    build(app_db, "S1")
    at = open_tab("S1")
    at.button(key="bd.log.go").click()
    run(at)
    at.button(key="bd.log.back").click()
    run(at)
    assert get_segment(app_db, "S1").status == "draft" and interactions_of(app_db, "S1") == (0, 0)


def test_bad_seed_is_one_line_and_writes_nothing(app_db: Database) -> None:
    build(app_db, "S1")
    at = open_tab("S1")
    at.number_input(key="bd.log.holdout").set_value(20)
    run(at)
    at.text_input(key="bd.log.seed").input("abc")
    at.button(key="bd.log.go").click()
    run(at)
    at.button(key="bd.log.confirm").click()
    run(at)
    assert any("not a whole number" in e for e in texts(at.error))
    assert get_segment(app_db, "S1").status == "draft" and interactions_of(app_db, "S1") == (0, 0)


def test_small_segment_is_flagged_and_cannot_be_logged(app_db: Database) -> None:
    with app_db.write() as conn:
        conn.execute(update(table_of(Setting)).where(Setting.key == "minimum_segment_size").values(value="100000"))
    build(app_db, "S1")
    at = open_tab("S1")
    assert any("Small segment" in w for w in texts(at.warning))
    assert at.button(key="bd.log.go").disabled
    assert any("fewer than the minimum" in c for c in texts(at.caption))


def test_with_approval_required_a_draft_cannot_be_logged_until_approved(app_db: Database) -> None:
    set_setting(app_db, "log_requires_approval", 1)
    build(app_db, "S1")
    at = open_tab("S1")
    assert at.button(key="bd.log.go").disabled
    assert any("needs a manager's approval" in c for c in texts(at.caption))
    submit_segment(app_db, "S1")
    approve_segment(app_db, "S1")
    at = open_tab("S1")
    assert not at.button(key="bd.log.go").disabled


# ------------------------------------------------------------------------------------------------- Review page


def open_review() -> Any:
    at = run(new_app())
    at.switch_page(REVIEW)
    return run(at)


def test_manager_flow_review_approve_log(app_db: Database) -> None:
    create_campaign(app_db, "SPRING", description="Spring sale")
    fr = build(app_db, "FR", campaign="SPRING")
    build(app_db, "FR-F", {"all": [FR, {"field": "gender", "op": "eq", "value": "female"}]}, campaign="SPRING")
    submit_segment(app_db, "FR", comment="please check", user="ann")
    at = open_review()
    # The manager says who she is once; the review history and the log record it.
    at.text_input(key="sx.user.input").input("max")
    run(at)
    # The campaign's targets, the submitted one picked first.
    at.selectbox(key="rv.campaign").set_value("SPRING")
    run(at)
    targets = next(d.value for d in at.dataframe if "Small" in d.value.columns)
    assert sorted(targets["No."]) == ["FR", "FR-F"]
    assert at.selectbox(key="rv.pick").value == "FR"
    assert metrics(at)["Waiting for review"] == "1"
    # Composition charts (one per dimension) and the drift check are there.
    assert len(at.get("plotly_chart")) >= 4
    assert any("same" in s for s in texts(at.success))
    # Overlap: FR-F is inside FR.
    at.session_state["rv.tab"] = "Overlap"
    run(at)
    pairs = next(d.value for d in at.dataframe if "Pair" in d.value.columns)
    ff = get_segment(app_db, "FR-F").size
    assert list(pairs["In both"]) == [ff]
    assert float(pairs["Jaccard"][0]) == round(ff / fr, 3)
    # Approve, then log from the same page.
    at.session_state["rv.tab"] = "Targets"
    run(at)
    at.button(key="rv.approve").click()
    run(at)
    assert get_segment(app_db, "FR").status == "approved"
    assert [(e.to_status, e.user) for e in status_history(app_db, "FR")] == [("submitted", "ann"), ("approved", "max")]
    at.button(key="bd.log.go").click()
    run(at)
    at.button(key="bd.log.confirm").click()
    run(at)
    assert get_segment(app_db, "FR").status == "logged" and interactions_of(app_db, "FR") == (fr, 0)
    # The logged tab lists it with the interactions written.
    at.session_state["rv.tab"] = "Logged"
    run(at)
    logged = next(d.value for d in at.dataframe if "Interactions" in d.value.columns)
    assert list(logged["Segment"]) == ["FR"] and list(logged["Interactions"]) == [fr]
    assert metrics(at)["Interactions"] == n(fr)
    assert get_logged(app_db, "FR").logged_by == "max"
    written = next(d.value for d in at.dataframe if "template" in d.value.columns)
    assert len(written) == min(fr, 50)
    assert set(zip(written["template"], written["campaign_no"], written["segment_no"], written["created_by"],
                   strict=True)) == {("EMAIL", "SPRING", "FR", "max")}


def test_reject_needs_a_comment(app_db: Database) -> None:
    build(app_db, "S1")
    submit_segment(app_db, "S1")
    at = open_review()
    at.button(key="rv.reject").click()
    run(at)
    assert get_segment(app_db, "S1").status == "submitted"
    # The refusal shows right under the Approve / Reject buttons, not at the top of the page.
    error = next(e for e in at.error if "comment" in e.value)
    assert_right_after(at, error, at.button(key="rv.reject"))
    at.text_input(key="rv.comment").input("too broad, add an age range")
    at.button(key="rv.reject").click()
    run(at)
    info = get_segment(app_db, "S1")
    assert (info.status, info.status_comment) == ("rejected", "too broad, add an age range")


def test_campaigns_tab_create_and_edit(app_db: Database) -> None:
    at = open_review()
    at.session_state["rv.tab"] = "Campaigns"
    run(at)
    at.text_input(key="rv.cmp.no").input("AUTUMN")
    at.text_input(key="rv.cmp.desc").input("Autumn mailing")
    at.button(key="FormSubmitter:rv.cmp.form-Create campaign").click()
    run(at)
    assert [(c.no, c.description) for c in list_campaigns(app_db)] == [("AUTUMN", "Autumn mailing")]
    at.selectbox(key="rv.cmpe.status.AUTUMN").set_value("active")
    at.button(key="rv.cmpe.save").click()
    run(at)
    assert list_campaigns(app_db)[0].status == "active"
    at.button(key="rv.cmpe.delete").click()
    run(at)
    assert list_campaigns(app_db) == []
