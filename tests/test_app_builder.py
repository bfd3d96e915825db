"""Issue 13 on the Builder (AppTest): a pending step that stays with its segment, text ↔ widgets without losing the
filter, the exclusion gap said, persons/companies as the first choice of an Add, the user's date order and "did you
mean", a rejection's comment in the header, Export, errors by their control, plurals."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from segcore import (
    ActionOptions,
    ActionRequest,
    Database,
    apply_action,
    create_segment,
    criteria_log,
    current_user,
    from_json,
    get_preference,
    preview_step,
    reject_segment,
    set_preference,
    set_setting,
    submit_segment,
)
from tests.apptest_paths import assert_right_after, path_of
from tests.apptest_support import (
    BUILDER,
    add_condition,
    assert_preview_shown,
    metrics,
    open_builder,
    run,
    texts,
)
from ui.format import n

FR = {"field": "country", "op": "eq", "value": "FR"}


def to_text_form(at: AppTest, text: str) -> None:
    at.segmented_control(key="fb.mode").set_value("text")
    run(at)
    at.text_area(key="fb.text").input(text)
    run(at)


def go_to(at: AppTest, no: str) -> AppTest:
    """Open another segment, as the Segments page or a shared link does: the URL names it."""
    at.query_params["segment"] = no
    at.switch_page(BUILDER)
    return run(at)


def filter_infos(at: AppTest) -> list[str]:
    return [i for i in texts(at.info) if i.startswith("**Filter:**")]


# ------------------------------------------------------------------------------------------------- the pending step


def test_another_segment_opens_with_a_clean_pending_step(app_db: Database) -> None:
    create_segment(app_db, "S1")
    create_segment(app_db, "S2")
    at = open_builder("S1")
    at.segmented_control(key="bd.kind").set_value("reduce")
    run(at)
    to_text_form(at, "country=BE")
    assert filter_infos(at)
    go_to(at, "S2")
    assert "S2" in texts(at.header)
    assert at.segmented_control(key="bd.kind").value == "add"
    assert at.text_area(key="fb.text").value == ""
    assert not filter_infos(at) and at.button(key="bd.apply").disabled
    # A faulty filter's error stays with its segment too.
    at.text_area(key="fb.text").input("age=25..x")
    run(at)
    assert any("Position" in e for e in texts(at.error))
    go_to(at, "S1")
    assert not texts(at.error)
    assert at.text_area(key="fb.text").value == ""


def test_use_this_filter_on_another_segment_carries_the_step(app_db: Database) -> None:
    create_segment(app_db, "S1")
    create_segment(app_db, "S2", description="Second")
    at = open_builder("S1")
    at.segmented_control(key="bd.kind").set_value("reduce")
    run(at)
    to_text_form(at, "country=BE")
    at.selectbox(key="bd.carry.to").set_value("S2")
    at.button(key="bd.carry.go").click()
    run(at)
    assert "S2" in texts(at.header)
    assert at.query_params["segment"] in ("S2", ["S2"])
    assert at.segmented_control(key="bd.kind").value == "reduce"
    assert at.text_area(key="fb.text").value == "country=BE"
    assert any("Country is BE" in i for i in filter_infos(at))
    assert any("pending Reduce step from S1" in i for i in texts(at.info))


# ------------------------------------------------------------------------------------------------- text <-> widgets


def test_text_converts_to_widgets_when_they_can_show_it(app_db: Database) -> None:
    create_segment(app_db, "S1")
    at = open_builder("S1")
    to_text_form(at, "country=FR|BE\nage=25..44")
    before = metrics(at)
    at.segmented_control(key="fb.mode").set_value("widgets")
    run(at)
    assert at.segmented_control(key="fb.mode").value == "widgets"
    assert [m.value for m in at.multiselect if m.key.startswith("fb.")] == [["FR", "BE"]]
    assert [s.value for s in at.slider] == [(25, 44)]
    assert metrics(at) == before
    assert any("Country is" in i and "25" in i for i in filter_infos(at))
    # And back: the widgets' filter becomes the text.
    at.segmented_control(key="fb.mode").set_value("text")
    run(at)
    assert at.text_area(key="fb.text").value == "country=FR|BE\nage=25..44"


def test_text_the_widgets_cannot_show_stays_and_says_why(app_db: Database) -> None:
    create_segment(app_db, "S1")
    at = open_builder("S1")
    to_text_form(at, "last_purchase_date=>=today-60d")
    before = metrics(at)
    at.segmented_control(key="fb.mode").set_value("widgets")
    run(at)
    assert at.segmented_control(key="fb.mode").value == "text"
    assert at.text_area(key="fb.text").value == "last_purchase_date=>=today-60d"
    note = next(w for w in at.warning if "widgets cannot show" in w.value)
    assert "stays in the text form" in note.value
    # Said next to the switch: the note follows the switch in the same column.
    assert_right_after(at, note, at.segmented_control(key="fb.mode"))
    assert metrics(at) == before


# ------------------------------------------------------------------------------------------------- counts


def test_the_preview_says_how_many_the_exclusion_leaves_out(app_db: Database) -> None:
    create_segment(app_db, "S1")
    at = open_builder("S1")
    add_condition(at, "g1", "country")
    at.multiselect(key="fb.c2.in.v").set_value(["FR"])
    run(at)
    expected = preview_step(app_db, "S1", ActionRequest("add", filter=from_json(FR)), dimensions=()).counts
    assert expected.skipped_excluded > 0
    shown = next(c for c in texts(at.caption) if "match the filter" in c)
    assert f"{n(expected.matched)} contacts match the filter" in shown
    assert f"{n(expected.skipped_excluded)} excluded from segments are left out" in shown
    # The widget's count is every FR contact: matched + left out.
    option = next(o for o in at.multiselect(key="fb.c2.in.v").options if o.startswith("FR ("))
    assert option == f"FR ({expected.matched + expected.skipped_excluded:,})"
    at.checkbox(key="bd.opt.add.ignore_exclusion").check()
    run(at)
    assert not any("excluded from segments" in c for c in texts(at.caption))


def test_persons_only_is_the_first_choice_of_an_add_and_remembered(app_db: Database) -> None:
    create_segment(app_db, "S1")
    at = open_builder("S1")
    assert at.segmented_control(key="bd.ctype").value == "both"
    to_text_form(at, "total_spent=>=500")
    both = preview_step(app_db, "S1", ActionRequest("add", filter=from_json(
        {"field": "total_spent", "op": "ge", "value": 500})), dimensions=()).counts
    assert_preview_shown(at, both)
    at.segmented_control(key="bd.ctype").set_value("person")
    run(at)
    request = ActionRequest("add", filter=from_json({"field": "total_spent", "op": "ge", "value": 500}),
                            options=ActionOptions(contact_type="person"))
    persons = preview_step(app_db, "S1", request, dimensions=()).counts
    assert persons.added < both.added
    assert_preview_shown(at, persons)
    assert get_preference(app_db, current_user(), "add_contact_type") == "person"
    at.button(key="bd.apply").click()
    run(at)
    entry = criteria_log(app_db, "S1")[-1]
    assert entry.options == {"contact_type": "person"} and "persons only" in entry.description
    # Refine and Reduce have no such choice.
    at.segmented_control(key="bd.kind").set_value("refine")
    run(at)
    assert not [c for c in at.segmented_control if c.key == "bd.ctype"]
    # A new session starts with the user's remembered choice.
    again = open_builder("S1")
    assert again.segmented_control(key="bd.ctype").value == "person"


def test_date_order_and_did_you_mean_in_the_text_form(app_db: Database) -> None:
    create_segment(app_db, "S1")
    at = open_builder("S1")
    to_text_form(at, "birth_date=<123125")
    assert any("Position" in e for e in texts(at.error))  # 12/31/25 is no day-first date
    at.selectbox(key="fb.date_order").set_value("MDY")
    run(at)
    assert not texts(at.error)
    assert any("Birth date" in i for i in filter_infos(at))
    assert get_preference(app_db, current_user(), "date_order") == "MDY"
    at.text_area(key="fb.text").input("country=France")
    run(at)
    assert any("FR" in e and "mean" in e for e in texts(at.error))


# ------------------------------------------------------------------------------------------------- header


def test_a_rejected_segment_shows_the_reviewers_comment_in_the_header(app_db: Database) -> None:
    create_segment(app_db, "S1", description="Spring")
    apply_action(app_db, "S1", ActionRequest("add", filter=from_json(FR)))
    submit_segment(app_db, "S1", user="ann")
    reject_segment(app_db, "S1", comment="too broad, add an age range", user="max")
    at = open_builder("S1")
    note = next(e for e in texts(at.error) if "too broad" in e)
    assert "Rejected by max" in note
    # In the header: before the pending step (the Review & log tab, which said it before, is not open).
    error = next(e for e in at.error if "too broad" in e.value)
    assert path_of(at, error) < path_of(at, at.segmented_control(key="bd.kind"))


def test_export_from_the_builder(app_db: Database) -> None:
    create_segment(app_db, "BIG")
    apply_action(app_db, "BIG", ActionRequest("add", filter=from_json(FR)))
    create_segment(app_db, "TINY")
    apply_action(app_db, "TINY", ActionRequest("add_contacts", contact_nos=("CT000001",)))
    at = open_builder("BIG")
    assert [b.label for b in at.get("download_button")] == ["Download CSV", "Download Excel"]
    at = open_builder("TINY")
    assert not at.get("download_button")
    assert any("fewer than the minimum" in w for w in texts(at.warning))


def test_counts_in_the_singular(app_db: Database) -> None:
    set_setting(app_db, "minimum_segment_size", 1)
    create_segment(app_db, "ONE")
    apply_action(app_db, "ONE", ActionRequest("add_contacts", contact_nos=("CT000001",)))
    at = open_builder("ONE")
    header = texts(at.caption)
    assert any("1 step" in c and "1 member" in c for c in header)
    assert not any("1 members" in c or "1 steps" in c for c in header)
    to_text_form(at, "contact_no=CT000001")
    assert any("1 contact matches the filter" in c for c in texts(at.caption))


# ------------------------------------------------------------------------------------------------- errors


def test_a_refused_apply_shows_by_the_apply_button(app_db: Database) -> None:
    create_segment(app_db, "S1")
    at = open_builder("S1")
    to_text_form(at, "country=FR")
    # Someone else changes the segment after this page was drawn: the conflict shows by the buttons.
    apply_action(app_db, "S1", ActionRequest("add", filter=from_json({"field": "country", "op": "eq", "value": "DE"})))
    at.button(key="bd.apply").click()
    run(at)
    warning = next(w for w in at.warning if "changed since you looked at it" in w.value)
    assert_right_after(at, warning, at.button(key="bd.apply"))


def test_a_preference_for_another_user(app_db: Database) -> None:
    set_preference(app_db, "zoe", "add_contact_type", "company")
    create_segment(app_db, "S1")
    at = open_builder("S1")
    assert at.segmented_control(key="bd.ctype").value == "both"
    at.text_input(key="sx.user.input").input("zoe")
    run(at)
    assert at.segmented_control(key="bd.ctype").value == "company"


# ------------------------------------------------------------------------------------------------- look-ups


def test_why_is_this_contact_here_takes_a_number_in_any_case_a_name_or_an_e_mail(app_db: Database) -> None:
    from sqlalchemy import update

    from segcore._models import Contact

    with app_db.write() as conn:
        conn.execute(update(Contact).where(Contact.contact_no == "CT000001")
                     .values(name="Zéphyrine Quätermaîn", email="z.quatermain@example.com"))
    create_segment(app_db, "S1")
    apply_action(app_db, "S1", ActionRequest("add_contacts", contact_nos=("CT000001",)))
    at = open_builder("S1")
    for query in ("ct000001", "quatermain", "Z.Quatermain@Example.com"):
        at.text_input(key="bd.prov").input(query)
        run(at)
        why = [i for i in texts(at.info) if "CT000001" in i]
        assert why and "step 1" in why[0].lower(), (query, texts(at.info))
    # Several contacts match part of a name: they are listed to choose from, the first explained.
    at.text_input(key="bd.prov").input("e")
    run(at)
    pick = at.selectbox(key="bd.prov.pick")
    assert pick.label.startswith("20 contacts match") and len(pick.options) == 20
    at.text_input(key="bd.prov").input("nobody-by-that-name")
    run(at)
    assert any("No contact matches" in w for w in texts(at.warning))


def test_export_of_a_logged_segment_leaves_the_control_group_out_unless_asked(app_db: Database) -> None:
    from segcore import export_scope, log_segment

    create_segment(app_db, "LOGGED", description="Logged with a holdout")
    apply_action(app_db, "LOGGED", ActionRequest("add", filter=from_json(FR)))
    log_segment(app_db, "LOGGED", template="EMAIL", holdout_pct=20, seed=5)
    at = open_builder("LOGGED")
    group = at.radio(key="bd.export.group")
    assert group.value == "treated" and list(group.options)[0].lower().startswith("contacted")
    treated = export_scope(app_db, "LOGGED", "treated")
    assert any(f"{treated.count:,} members (contacted members only)" in c for c in texts(at.caption))
    group.set_value("control")
    run(at)
    control = export_scope(app_db, "LOGGED", "control")
    assert 0 < control.count < treated.count
    assert any(f"{control.count:,} members (control group only)" in c for c in texts(at.caption))
