"""Dynamic segments and known user groups in the dashboard (AppTest); effects checked in the database."""

from __future__ import annotations

from typing import Any

from segcore._db import Database
from segcore._dynamic import count_filter, count_history, create_dynamic, get_dynamic, list_dynamic
from segcore._engine import create_segment, criteria_log, get_segment
from segcore._filter_text import parse_text
from segcore._groups import create_group, get_group, group_addresses, list_groups
from tests.apptest_support import metrics, new_app, run, texts
from ui.format import n

DYNAMIC, GROUPS = "pages/dynamic.py", "pages/groups.py"


def open_page(page: str) -> Any:
    at = run(new_app())
    at.switch_page(page)
    return run(at)


def demo_emails(db: Database, k: int) -> list[str]:
    from sqlalchemy import select

    from segcore._models import Contact

    with db.read() as conn:
        return list(conn.execute(select(Contact.email).where(Contact.email.is_not(None)).order_by(Contact.id).limit(k)).scalars())


def test_dynamic_create_with_a_live_count_then_freeze(app_db: Database) -> None:
    at = open_page(DYNAMIC)
    assert any("No dynamic segment yet" in i for i in texts(at.info))
    at.segmented_control(key="fb.mode").set_value("text")
    run(at)
    at.text_area(key="fb.text").input("country=FR\ntotal_spent=>=100")
    run(at)
    expected, total = count_filter(app_db, parse_text(["country=FR", "total_spent=>=100"]))
    assert any(f"**{n(expected)}** of {n(total)}" in c for c in texts(at.caption))  # before saving
    at.text_input(key="dy.new.no").input("FR-100")
    at.text_input(key="dy.new.desc").input("French, 100+")
    at.button(key="dy.create").click()
    run(at)
    info = get_dynamic(app_db, "FR-100")
    assert (info.description, info.last_count) == ("French, 100+", expected)
    shown = metrics(at)
    assert shown["Contacts in segment"] == n(expected) and shown["All contacts"] == n(total)
    at.button(key="dy.refresh").click()
    run(at)
    assert len(count_history(app_db, "FR-100")) == 2
    at.text_input(key="dy.fz.no.FR-100").input("FR-100-FROZEN")
    at.button(key="dy.freeze").click()
    run(at)
    frozen = get_segment(app_db, "FR-100-FROZEN")
    assert frozen.size == expected and [e.kind for e in criteria_log(app_db, "FR-100-FROZEN")] == ["add"]
    assert any("FR-100-FROZEN created" in s for s in texts(at.success))


def test_dynamic_refusal_is_one_line(app_db: Database) -> None:
    create_dynamic(app_db, "TAKEN", parse_text(["country=DE"]))
    at = open_page(DYNAMIC)
    at.segmented_control(key="fb.mode").set_value("text")
    run(at)
    at.text_area(key="fb.text").input("country=FR")
    run(at)
    at.text_input(key="dy.new.no").input("TAKEN")
    at.button(key="dy.create").click()
    run(at)
    assert any("already exists" in e for e in texts(at.error))
    assert [d.no for d in list_dynamic(app_db)] == ["TAKEN"]


def test_group_paste_matched_unmatched_and_add_to_segment(app_db: Database) -> None:
    known = demo_emails(app_db, 3)
    at = open_page(GROUPS)
    at.text_input(key="gr.new.name").input("Fair")
    at.text_area(key="gr.new.text").input("; ".join([*known, "nobody@nowhere.example", "not-an-address"]))
    run(at)
    assert any("4 addresses read" in c and "not-an-address" in c for c in texts(at.caption))
    at.button(key="gr.create").click()
    run(at)
    info = get_group(app_db, "Fair")
    assert (info.address_count, info.matched_count) == (4, 3)
    assert metrics(at)["Matched"] == "3" and metrics(at)["Unmatched"] == "1"
    at.segmented_control(key="gr.status").set_value("unmatched")
    run(at)
    table = next(d.value for d in at.dataframe if "email" in d.value.columns)
    assert list(table["email"]) == ["nobody@nowhere.example"]
    create_segment(app_db, "FAIR", description="Fair visitors")
    at = open_page(GROUPS)
    at.selectbox(key="gr.seg").set_value("FAIR")
    at.button(key="gr.toseg").click()
    run(at)
    assert get_segment(app_db, "FAIR").size == 3
    assert [e.kind for e in criteria_log(app_db, "FAIR")] == ["add_emails"]


def test_group_add_more_and_delete(app_db: Database) -> None:
    create_group(app_db, "G", emails=demo_emails(app_db, 2))
    at = open_page(GROUPS)
    at.text_area(key="gr.add.text").input("extra@nowhere.example")
    at.button(key="gr.addbtn").click()
    run(at)
    rows, total = group_addresses(app_db, "G")
    assert total == 3 and rows[-1]["email"] == "extra@nowhere.example"
    at.button(key="gr.delete").click()
    run(at)
    assert list_groups(app_db) == []


# ------------------------------------------------------------------------------------------------- plurals


def first_contact(db: Database) -> tuple[str, str]:
    from sqlalchemy import select

    from segcore._models import Contact

    with db.read() as conn:
        row = conn.execute(
            select(Contact.contact_no, Contact.email)
            .where(Contact.email.is_not(None), Contact.exclude_from_segments.is_(False))
            .order_by(Contact.id)
            .limit(1)
        ).one()
    return str(row[0]), str(row[1])


def test_one_contact_reads_in_the_singular_on_the_dynamic_page(app_db: Database) -> None:
    no, _ = first_contact(app_db)
    create_dynamic(app_db, "ONE", parse_text([f"contact_no={no}"]))
    at = open_page(DYNAMIC)
    assert at.button(key="dy.freeze").label == "Freeze 1 contact"
    at.segmented_control(key="fb.mode").set_value("text")
    run(at)
    at.text_area(key="fb.text").input(f"contact_no={no}")
    run(at)
    _, total = count_filter(app_db, parse_text([f"contact_no={no}"]))
    assert f"**1** of {n(total)} contacts matches today." in texts(at.caption)


def test_one_address_and_one_member_read_in_the_singular_on_the_groups_page(app_db: Database) -> None:
    _, email = first_contact(app_db)
    at = open_page(GROUPS)
    at.text_input(key="gr.new.name").input("Solo")
    at.text_area(key="gr.new.text").input(email)
    run(at)
    at.button(key="gr.create").click()
    run(at)
    assert any(s.endswith("1 matches a contact.") for s in texts(at.success))
    assert "1 of 1 address" in texts(at.caption)
    at.segmented_control(key="gr.status").set_value("matched")
    run(at)
    assert "1 of 1 matched address" in texts(at.caption)
    create_segment(app_db, "SOLO", description="One visitor")
    at = open_page(GROUPS)
    at.selectbox(key="gr.seg").set_value("SOLO")
    assert at.button(key="gr.toseg").label == "Add 1 matched contact"
    at.button(key="gr.toseg").click()
    run(at)
    assert any(s.endswith("→ 1 member.") for s in texts(at.success)), texts(at.success)
