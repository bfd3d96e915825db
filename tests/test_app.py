"""The dashboard through Streamlit's AppTest: every page, and a marketer's whole flow on demo data.

The demo database is generated once per test session into a template SQLite file and copied for each test; the app
finds its copy through SEGCORE_DATABASE_URL. ui/state.py caches one engine per URL, so no test sees another's data.
AppTest cannot look inside Plotly charts and runs fragments as whole scripts; the numbers are checked on the
metrics, the log and the members table instead.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from segcore._browse import contact_count, segment_members_page
from segcore._db import Database
from segcore._engine import (
    ActionOptions,
    ActionRequest,
    apply_action,
    create_segment,
    criteria_log,
    get_segment,
    list_criteria,
    member_contact_nos,
)
from segcore._filter_tree import from_json
from segcore._lifecycle import approve_segment, create_campaign, submit_segment
from segcore._models import Contact
from segcore._preview import preview_step
from segcore._settings import settings_of
from tests.apptest_support import (
    BUILDER,
    CONTACTS,
    DATA,
    DEMO_N,
    REVIEW,
    ROOT,
    SEGMENTS,
    add_condition,
    assert_preview_shown,
    button,
    engine_preview,
    metrics,
    new_app,
    open_builder,
    run,
    table_with,
    texts,
)
from ui.format import n

# ------------------------------------------------------------------------------------------------- pages


def test_first_start_of_an_empty_database_creates_demo_contacts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    monkeypatch.setenv("SEGCORE_DATABASE_URL", url)
    monkeypatch.setenv("SEGCORE_DEMO_CONTACTS", "150")
    at = run(new_app())
    db = Database.open(url)
    try:
        assert contact_count(db) == 150
    finally:
        db.dispose()
    # The Segments page then says what to do next.
    assert any("No segments yet" in i for i in texts(at.info))
    assert "Create and open" in [b.label for b in at.button]


@pytest.mark.parametrize(
    "page, title",
    [(SEGMENTS, "Segments"), ("pages/dynamic.py", "Dynamic segments"), ("pages/groups.py", "Known user groups"),
     (CONTACTS, "Contacts"), (REVIEW, "Review"), (DATA, "Data")],
)
def test_every_page_renders(app_db: Database, page: str, title: str) -> None:
    create_segment(app_db, "S1", description="First")
    at = run(new_app())
    at.switch_page(page)
    run(at)
    assert title in texts(at.header)


def test_each_database_url_gets_its_own_handle(demo_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    seen = []
    for name in ("a", "b"):
        path = tmp_path / f"{name}.db"
        shutil.copyfile(demo_template, path)
        db = Database.open(f"sqlite:///{path}")
        create_segment(db, f"ONLY-{name.upper()}")
        db.dispose()
        monkeypatch.setenv("SEGCORE_DATABASE_URL", f"sqlite:///{path}")
        at = run(new_app())
        seen.append(list(at.dataframe[0].value["No."]))
    assert seen == [["ONLY-A"], ["ONLY-B"]]


def test_builder_without_a_segment_says_what_to_do(app_db: Database) -> None:
    at = run(new_app())
    at.switch_page(BUILDER)
    run(at)
    assert any("No segment is open" in i for i in texts(at.info))


def test_unknown_segment_in_the_url_is_forgotten(app_db: Database) -> None:
    at = open_builder("NOPE")
    assert any("No segment is open" in i for i in texts(at.info))


def test_segments_list_create_open(app_db: Database) -> None:
    at = run(new_app())
    at.text_input(key="seg.new.no").input("SPRING-FR")
    at.text_input(key="seg.new.desc").input("Spring newsletter")
    button(at, "Create and open").click()
    run(at)
    # Creating opens the Builder, and the URL carries the segment.
    assert at.query_params["segment"] in ("SPRING-FR", ["SPRING-FR"])
    assert "SPRING-FR" in texts(at.header)
    assert get_segment(app_db, "SPRING-FR").description == "Spring newsletter"
    at.switch_page(SEGMENTS)
    run(at)
    table = at.dataframe[0].value
    assert list(table["No."]) == ["SPRING-FR"] and list(table["Members"]) == [0]


def test_create_refusal_is_one_line(app_db: Database) -> None:
    at = run(new_app())
    at.text_input(key="seg.new.no").input("bad number!")
    button(at, "Create and open").click()
    run(at)
    assert any("is not valid" in e for e in texts(at.error))


def test_copy_and_delete_with_confirmation(app_db: Database) -> None:
    create_segment(app_db, "S1", description="First")
    apply_action(app_db, "S1", ActionRequest("add", filter=from_json({"field": "country", "op": "eq", "value": "FR"})))
    at = run(new_app())
    at.switch_page(SEGMENTS)
    run(at)
    button(at, "Copy").click()
    run(at)
    at.text_input(key="seg.copy.no").input("S1-B")
    button(at, "Copy segment").click()
    run(at)
    assert get_segment(app_db, "S1-B").size == get_segment(app_db, "S1").size
    at.selectbox(key="seg.pick").set_value("S1-B")
    run(at)
    button(at, "Delete").click()
    run(at)
    assert any("cannot be undone" in m for m in texts(at.markdown))
    button(at, "Delete segment").click()
    run(at)
    assert [s for s in at.dataframe[0].value["No."]] == ["S1"]
    assert any("deleted" in s for s in texts(at.success))


def test_edit_description_and_campaign_sends_an_approved_segment_back_to_draft(app_db: Database) -> None:
    create_campaign(app_db, "SPRING", description="Spring sale")
    create_segment(app_db, "S1", description="First")
    apply_action(app_db, "S1", ActionRequest("add", filter=from_json({"field": "country", "op": "eq", "value": "FR"})))
    submit_segment(app_db, "S1")
    approve_segment(app_db, "S1")
    at = run(new_app())
    at.switch_page(SEGMENTS)
    run(at)
    button(at, "Edit").click()
    run(at)
    assert any("sends it back to draft" in w for w in texts(at.warning))
    version = get_segment(app_db, "S1").version
    at.text_input(key=f"seg.edit.desc.S1.{version}").input("First, France")
    at.selectbox(key=f"seg.edit.campaign.S1.{version}").set_value("SPRING")
    button(at, "Save").click()
    run(at)
    info = get_segment(app_db, "S1")
    assert (info.description, info.campaign_no, info.status) == ("First, France", "SPRING", "draft")
    assert any("saved (draft)" in s for s in texts(at.success))


# ------------------------------------------------------------------------------------------------- the whole flow


def test_marketer_flow_add_refine_undo_redo(app_db: Database) -> None:
    at = run(new_app())
    at.text_input(key="seg.new.no").input("FLOW")
    at.text_input(key="seg.new.desc").input("Whole flow")
    button(at, "Create and open").click()
    run(at)

    # Add: country is FR or DE, through the widgets (a multiselect whose options carry their counts).
    add_condition(at, "g1", "country")
    countries = at.multiselect(key="fb.c2.in.v")
    assert any(o.startswith("FR (") for o in countries.options)
    countries.set_value(["FR", "DE"])
    run(at)
    add_filter = {"field": "country", "op": "in", "value": ["FR", "DE"]}
    expected = engine_preview(app_db, "FLOW", "add", add_filter)
    assert expected.added > 0
    assert_preview_shown(at, expected)
    assert any("Country is" in i for i in texts(at.info))
    at.button(key="bd.apply").click()
    run(at)
    after_add = get_segment(app_db, "FLOW")
    assert after_add.size == expected.size_after
    assert metrics(at)["Members now"] == n(expected.size_after)

    # Refine: keep the 25-44 year olds, with a second condition in the same group.
    at.segmented_control(key="bd.kind").set_value("refine")
    run(at)
    add_condition(at, "g1", "age")
    at.slider(key="fb.c3.between.v").set_value((25, 44))
    run(at)
    refine_filter = {"all": [add_filter, {"field": "age", "op": "between", "value": [25, 44]}]}
    expected = engine_preview(app_db, "FLOW", "refine", refine_filter)
    assert expected.removed > 0
    assert_preview_shown(at, expected)
    at.button(key="bd.apply").click()
    run(at)
    refined = set(member_contact_nos(app_db, "FLOW"))
    assert len(refined) == expected.size_after

    # Undo brings the Add's members back, Redo takes them out again.
    at.button(key="bd.undo").click()
    run(at)
    assert get_segment(app_db, "FLOW").size == after_add.size
    log = criteria_log(app_db, "FLOW")
    assert [(e.kind, e.undone) for e in log] == [("add", False), ("refine", True)]
    shown_log = table_with(at, "State")
    assert list(shown_log["State"]) == ["applied", "undone"]
    at.button(key="bd.redo").click()
    run(at)
    assert set(member_contact_nos(app_db, "FLOW")) == refined

    shown_log = table_with(at, "State")
    log = criteria_log(app_db, "FLOW")
    assert list(shown_log["Step"]) == [1, 2]
    assert list(shown_log["Action"]) == ["Add", "Refine"]
    assert list(shown_log["Size after"]) == [e.size_after for e in log]
    assert list(shown_log["State"]) == ["applied", "applied"]

    # The members tab pages the members in SQL and shows the right first page.
    at.session_state["bd.tab"] = "Members"
    run(at)
    first_page = segment_members_page(app_db, "FLOW", limit=50)
    table = table_with(at, "step")
    assert list(table["contact_no"]) == [r["contact_no"] for r in first_page.rows]
    assert any(f"of {n(len(refined))} members" in c for c in texts(at.caption))


def test_text_form_parse_error_shows_the_position(app_db: Database) -> None:
    create_segment(app_db, "S1")
    at = open_builder("S1")
    at.segmented_control(key="fb.mode").set_value("text")
    run(at)
    at.text_area(key="fb.text").input("age=25..x")
    run(at)
    error = next(e for e in texts(at.error) if "Position" in e)
    assert "age=25..x" in error and "^" in error
    caret_line = error.split("```")[1].strip("\n").split("\n")[1]
    assert caret_line.index("^") + 1 == int(error.split("Position ")[1].split(":")[0])
    # On a later line, the line is named too.
    at.text_area(key="fb.text").input("country=FR\nage=25..x")
    run(at)
    assert any(e.startswith("Line 2, position 8:") for e in texts(at.error))
    # A valid text gives a description and an enabled button.
    at.text_area(key="fb.text").input("country=FR|BE\nage=25..44")
    run(at)
    assert any("Country is" in i for i in texts(at.info))
    assert not at.button(key="bd.apply").disabled


def test_pending_filter_survives_a_page_switch(app_db: Database) -> None:
    create_segment(app_db, "S1")
    at = open_builder("S1")
    add_condition(at, "g1", "country")
    at.multiselect(key="fb.c2.in.v").set_value(["BE"])
    run(at)
    at.segmented_control(key="bd.kind").set_value("reduce")
    run(at)
    at.switch_page(CONTACTS)
    run(at)
    at.switch_page(BUILDER)
    run(at)
    assert at.multiselect(key="fb.c2.in.v").value == ["BE"]
    assert at.segmented_control(key="bd.kind").value == "reduce"
    assert any("Country is BE" in i for i in texts(at.info))


def test_edit_widgets_as_text(app_db: Database) -> None:
    create_segment(app_db, "S1")
    at = open_builder("S1")
    add_condition(at, "g1", "country")
    at.multiselect(key="fb.c2.in.v").set_value(["FR", "BE"])
    run(at)
    before = metrics(at)
    button(at, ":material/edit_note: Edit as text").click()
    run(at)
    assert at.segmented_control(key="fb.mode").value == "text"
    assert at.text_area(key="fb.text").value == "country=FR|BE"
    assert metrics(at) == before


def test_conflict_is_reported_and_nothing_is_lost(app_db: Database) -> None:
    create_segment(app_db, "S1")
    at = open_builder("S1")
    at.segmented_control(key="fb.mode").set_value("text")
    run(at)
    at.text_area(key="fb.text").input("country=FR")
    run(at)
    # Someone else changes the segment after this page was drawn.
    other = apply_action(app_db, "S1", ActionRequest("add", filter=from_json({"field": "country", "op": "eq", "value": "DE"})))
    at.button(key="bd.apply").click()
    run(at)
    assert any("changed since you looked at it" in w for w in texts(at.warning))
    assert get_segment(app_db, "S1").size == other.size_after
    assert len(criteria_log(app_db, "S1")) == 1
    # The page now shows the current version: a retry goes through.
    at.button(key="bd.apply").click()
    run(at)
    assert len(criteria_log(app_db, "S1")) == 2


def test_add_options_and_related_condition(app_db: Database) -> None:
    create_segment(app_db, "S1")
    at = open_builder("S1")
    add_condition(at, "g1", "@interactions")
    at.multiselect(key="fb.c2.tpl").set_value(["EMAIL"])
    at.number_input(key="fb.c2.min").set_value(2)
    run(at)
    flt = {"related": "interactions", "where": {"all": [{"field": "template", "op": "in", "value": ["EMAIL"]}]},
           "min_count": 2}
    at.checkbox(key="bd.opt.add.expand_companies").check()
    run(at)
    request = ActionRequest("add", filter=from_json(flt), options=ActionOptions(expand_companies=True))
    expected = preview_step(app_db, "S1", request, dimensions=()).counts
    assert_preview_shown(at, expected)
    at.button(key="bd.apply").click()
    run(at)
    assert get_segment(app_db, "S1").size == expected.size_after
    assert criteria_log(app_db, "S1")[0].options == {"expand_companies": True}


def test_nested_groups(app_db: Database) -> None:
    create_segment(app_db, "S1")
    at = open_builder("S1")
    add_condition(at, "g1", "country")
    at.multiselect(key="fb.c2.in.v").set_value(["FR"])
    add_condition(at, "g1", "gender")
    at.multiselect(key="fb.c3.in.v").set_value(["female"])
    button(at, ":material/add: Add group").click()
    run(at)
    add_condition(at, "g4", "churn_risk")
    at.multiselect(key="fb.c5.in.v").set_value(["high"])
    at.segmented_control(key="fb.combine").set_value("any")
    run(at)
    flt = {"any": [{"all": [{"field": "country", "op": "in", "value": ["FR"]},
                            {"field": "gender", "op": "in", "value": ["female"]}]},
                   {"field": "churn_risk", "op": "in", "value": ["high"]}]}
    assert_preview_shown(at, engine_preview(app_db, "S1", "add", flt))
    # Exclude (NOT) the second group.
    at.toggle(key="fb.g4.neg").set_value(True)
    run(at)
    flt["any"][1] = {"not": flt["any"][1]}
    assert_preview_shown(at, engine_preview(app_db, "S1", "add", flt))


def test_widgets_per_field_type(app_db: Database) -> None:
    create_segment(app_db, "S1")
    at = open_builder("S1")
    at.segmented_control(key="fb.g1.kind").set_value("any")
    add_condition(at, "g1", "last_purchase_date")
    at.selectbox(key="fb.c2.op").set_value("last_90")
    add_condition(at, "g1", "mailing_groups")
    at.selectbox(key="fb.c3.op").set_value("has_all")
    run(at)
    groups = at.multiselect(key="fb.c3.has_all.v")
    assert all(re.match(r"^[A-Z0-9-]+ \([\d,]+\)$", o) for o in groups.options)
    groups.set_value(["NEWSLETTER", "PROMO"])
    add_condition(at, "g1", "email")
    at.selectbox(key="fb.c4.op").set_value("matches")
    run(at)
    at.text_input(key="fb.c4.matches.v").input("*@contoso.com")
    add_condition(at, "g1", "exclude_from_segments")
    at.selectbox(key="fb.c5.op").set_value("is_true")
    add_condition(at, "g1", "@profile")
    at.selectbox(key="fb.c6.q").set_value("INTEREST")
    run(at)
    answers = at.multiselect(key="fb.c6.INTEREST.a")
    answer = answers.options[0].split(" (")[0]
    answers.set_value([answer])
    add_condition(at, "g1", "total_spent")
    at.selectbox(key="fb.c7.op").set_value("ge")
    run(at)
    at.number_input(key="fb.c7.ge.v").set_value(500.0)
    run(at)
    flt = {"any": [
        {"field": "last_purchase_date", "op": "ge", "value": "today-90d"},
        {"field": "mailing_groups", "op": "has_all", "value": ["NEWSLETTER", "PROMO"]},
        {"field": "email", "op": "matches", "value": "*@contoso.com"},
        {"field": "exclude_from_segments", "op": "is_true"},
        {"related": "profile", "where": {"all": [{"field": "questionnaire", "op": "eq", "value": "INTEREST"},
                                                 {"field": "answer", "op": "in", "value": [answer]}]}},
        {"field": "total_spent", "op": "ge", "value": 500},
    ]}  # fmt: skip
    expected = engine_preview(app_db, "S1", "add", flt)
    assert 0 < expected.added < DEMO_N
    assert_preview_shown(at, expected)
    description = next(i for i in texts(at.info) if i.startswith("**Filter:**"))
    assert "contoso.com" in description
    # "Edit as text" copies the same filter into the text form when it has one.
    if any(b.label.endswith("Edit as text") for b in at.button):
        button(at, next(b.label for b in at.button if b.label.endswith("Edit as text"))).click()
        run(at)
        assert at.segmented_control(key="fb.mode").value == "text"
        assert_preview_shown(at, expected)


def test_by_hand_contacts_and_emails(app_db: Database) -> None:
    create_segment(app_db, "S1")
    at = open_builder("S1")
    at.session_state["bd.tab"] = "Add by hand"
    run(at)
    at.text_area(key="bd.hand.nos").input("CT000001, CT000002\nCT000003")
    run(at)
    at.button(key="bd.hand.add_contacts").click()
    run(at)
    assert member_contact_nos(app_db, "S1") == ["CT000001", "CT000002", "CT000003"]
    at.text_area(key="bd.hand.nos").input("CT000002")
    run(at)
    at.button(key="bd.hand.remove_contacts").click()
    run(at)
    assert member_contact_nos(app_db, "S1") == ["CT000001", "CT000003"]
    at.text_area(key="bd.hand.nos").input("CT999999")
    run(at)
    at.button(key="bd.hand.add_contacts").click()
    run(at)
    assert any("not found" in e for e in texts(at.error))
    table = Contact.__table__
    with app_db.read() as conn:
        contact_no, email = conn.execute(
            select(table.c.contact_no, table.c.email)
            .where(table.c.email.is_not(None), table.c.exclude_from_segments.is_(False))
            .where(table.c.contact_no.not_in(["CT000001", "CT000003"]))
            .order_by(table.c.id)
            .limit(1)
        ).one()
    # Case does not matter; an unknown address is reported back.
    at.text_area(key="bd.hand.emails").input(f"{email.upper()}; ghost@nowhere.example")
    run(at)
    at.button(key="bd.hand.add_emails").click()
    run(at)
    assert contact_no in member_contact_nos(app_db, "S1")
    assert any("matched no contact" in e.label for e in at.expander)
    assert any("ghost@nowhere.example" in c for c in texts(at.code))


def test_provenance_and_criteria(app_db: Database) -> None:
    create_segment(app_db, "S1")
    create_segment(app_db, "S2")
    apply_action(app_db, "S1", ActionRequest("add", filter=from_json({"field": "country", "op": "eq", "value": "NL"})))
    member = member_contact_nos(app_db, "S1")[0]
    at = open_builder("S1")
    at.text_input(key="bd.prov").input(member)
    run(at)
    assert any("came in with step 1" in i for i in texts(at.info))
    at.session_state["bd.tab"] = "Save & reuse"
    run(at)
    at.text_input(key="bd.crit.code").input("nl-all")
    run(at)
    at.button(key="bd.crit.save").click()
    run(at)
    assert [c["code"] for c in list_criteria(app_db)] == ["NL-ALL"]
    # Replay on S2, then reuse S1's members on S2.
    at = open_builder("S2")
    at.session_state["bd.tab"] = "Save & reuse"
    run(at)
    at.button(key="bd.crit.reuse").click()
    run(at)
    assert get_segment(app_db, "S2").size == get_segment(app_db, "S1").size
    at.button(key="bd.reuse.go").click()
    run(at)
    assert [e.kind for e in criteria_log(app_db, "S2")] == ["add", "reuse_segment"]


def test_load_a_logged_step_back_into_the_builder(app_db: Database) -> None:
    create_segment(app_db, "S1")
    apply_action(app_db, "S1", ActionRequest("reduce", filter=from_json({"field": "country", "op": "in", "value": ["FR", "BE"]})))
    at = open_builder("S1")
    at.button(key="bd.loadbtn").click()
    run(at)
    assert at.segmented_control(key="fb.mode").value == "text"
    assert at.segmented_control(key="bd.kind").value == "reduce"
    assert "country=" in at.text_area(key="fb.text").value


# ------------------------------------------------------------------------------------------------- contacts, data


def test_contacts_search_and_detail(app_db: Database) -> None:
    create_segment(app_db, "S1")
    apply_action(app_db, "S1", ActionRequest("add_contacts", contact_nos=("CT000005",)))
    at = run(new_app())
    at.switch_page(CONTACTS)
    run(at)
    assert len(at.dataframe[0].value) == 50
    assert any(f"of {n(DEMO_N)} contacts" in c for c in texts(at.caption))
    at.text_input(key="ct.q").input("CT000005")
    run(at)
    assert list(at.dataframe[0].value["contact_no"]) == ["CT000005"]
    at.text_input(key="ct.lookup").input("CT000005")
    run(at)
    assert any("CT000005" in s for s in texts(at.subheader))
    assert any("came in with step 1" in c for c in texts(at.caption))
    at.text_input(key="ct.lookup").input("NOPE")
    run(at)
    assert any("no contact" in e for e in texts(at.error))


CSV_OK = (
    b"contact_no,type,name,country,email\n"
    b"NEW1,person,Ada Lovelace,GB,ada@example.com\n"
    b"NEW2,company,Analytical Engines,GB,\n"
    b"NEW3,alien,Zorg,XX,not-an-email\n"
)


@pytest.mark.parametrize("choice, inserted", [("valid", 2), ("nothing", 0)])
def test_import_with_validation_report(app_db: Database, choice: str, inserted: int) -> None:
    at = run(new_app())
    at.switch_page(DATA)
    run(at)
    at.file_uploader(key="dt.up.contacts.0").upload("contacts.csv", CSV_OK, "text/csv")
    run(at)
    # The file is mapped and previewed first; the check is asked for.
    button(at, "Check the file").click()
    run(at)
    shown = metrics(at)
    assert (shown["Rows read"], shown["Valid"], shown["Rejected"]) == ("3", "2", "1")
    report = table_with(at, "reason")
    assert set(report["line"]) == {4} and "type" in set(report["column"])
    at.radio(key="dt.choice.contacts").set_value(choice)
    button(at, "Go").click()
    run(at)
    assert contact_count(app_db) == DEMO_N + inserted
    if inserted:
        assert any("2 inserted" in s for s in texts(at.success))
    else:
        assert any("Nothing was imported" in i for i in texts(at.info))
        assert at.file_uploader(key="dt.up.contacts.1").value is None


def test_import_interactions(app_db: Database) -> None:
    at = run(new_app())
    at.switch_page(DATA)
    run(at)
    at.segmented_control(key="dt.kind").set_value("interactions")
    run(at)
    data = f"contact_no,date,template\nCT000001,{dt.date.today().isoformat()},EMAIL\nNOPE,2024-01-01,CALL\n".encode()
    at.file_uploader(key="dt.up.interactions.0").upload("interactions.csv", data, "text/csv")
    run(at)
    button(at, "Check the file").click()
    run(at)
    assert metrics(at)["Rejected"] == "1"
    button(at, "Go").click()
    run(at)
    assert any("1 inserted" in s for s in texts(at.success))


def test_export_downloads(app_db: Database) -> None:
    create_segment(app_db, "BIG")
    create_segment(app_db, "TINY")
    apply_action(app_db, "BIG", ActionRequest("add", filter=from_json({"field": "country", "op": "eq", "value": "FR"})))
    apply_action(app_db, "TINY", ActionRequest("add_contacts", contact_nos=("CT000001",)))
    at = run(new_app())
    at.switch_page(DATA)
    run(at)
    at.selectbox(key="dt.exp.seg").set_value("TINY")
    run(at)
    assert any("fewer than the minimum" in e for e in texts(at.warning))  # ui/export.py shows a refusal as a warning
    at.selectbox(key="dt.exp.seg").set_value("BIG")
    run(at)
    at.button(key="dt.exp.prepare.csv").click()
    run(at)
    assert [b.label.split(" (")[0] for b in at.get("download_button")] == ["Download CSV"]
    at.button(key="dt.exp.prepare.xlsx").click()
    run(at)
    assert [b.label.split(" (")[0] for b in at.get("download_button")] == ["Download CSV", "Download Excel"]


def test_settings_change_the_small_flag(app_db: Database) -> None:
    create_segment(app_db, "TINY")
    apply_action(app_db, "TINY", ActionRequest("add_contacts", contact_nos=("CT000001",)))
    at = run(new_app())
    at.switch_page(DATA)
    run(at)
    assert at.number_input(key="dt.set.minimum_segment_size").value == 50
    at.number_input(key="dt.set.minimum_segment_size").set_value(1)
    next(b for b in at.button if b.label == "Save settings").click()
    run(at)
    assert settings_of(app_db)["minimum_segment_size"] == 1
    assert any("minimum segment size 1" in s for s in texts(at.success))
    at.selectbox(key="dt.exp.seg").set_value("TINY")
    run(at)
    assert not any("fewer than the minimum" in e for e in texts(at.warning))
    assert at.button(key="dt.exp.prepare.csv") is not None


def test_working_as_is_kept_across_pages_and_recorded(app_db: Database) -> None:
    create_segment(app_db, "S1")
    at = open_builder("S1")
    at.text_input(key="sx.user.input").input("ann")
    run(at)
    at.switch_page(DATA)
    run(at)
    assert at.text_input(key="sx.user.input").value == "ann"
    at.switch_page(BUILDER)
    run(at)
    assert at.text_input(key="sx.user.input").value == "ann"
