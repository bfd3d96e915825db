"""One of anything reads in the singular on the Segments, Contacts and Data pages ("1 contact", "1 member")."""

from __future__ import annotations

from sqlalchemy import delete, select

from segcore._db import Database
from segcore._engine import ActionRequest, apply_action, create_segment
from segcore._models import Contact
from segcore._snapshot import bump_data_version
from tests.apptest_support import CONTACTS, DATA, SEGMENTS, new_app, run, texts


def open_page(page: str) -> object:
    at = run(new_app())
    at.switch_page(page)
    return run(at)


def keep_one_contact(db: Database) -> str:
    """Every demo contact but the first person is deleted: the database holds one contact."""
    with db.write() as conn:
        first = conn.execute(
            select(Contact.id, Contact.contact_no).where(Contact.type == "person").order_by(Contact.id).limit(1)
        ).one()
        conn.execute(delete(Contact.__table__).where(Contact.id != first[0]))
        bump_data_version(conn)
    return str(first[1])


def test_segments_page_counts_one_contact(app_db: Database) -> None:
    keep_one_contact(app_db)
    create_segment(app_db, "ONE", description="One")
    at = open_page(SEGMENTS)
    assert "1 segment · 1 contact in the database" in texts(at.caption)


def test_contacts_page_shows_one_of_one_contact(app_db: Database) -> None:
    no = keep_one_contact(app_db)
    at = open_page(CONTACTS)
    assert any(c.startswith("1 of 1 contact ·") for c in texts(at.caption)), texts(at.caption)
    at.text_input(key="ct.q").input(no)
    run(at)
    assert any(c.startswith("1 of 1 contact ·") for c in texts(at.caption))


def test_data_export_names_one_member_in_the_singular(app_db: Database) -> None:
    no = keep_one_contact(app_db)
    create_segment(app_db, "ONE", description="One")
    apply_action(app_db, "ONE", ActionRequest("add_contacts", contact_nos=(no,)))
    at = open_page(DATA)
    assert "ONE · One (1 member)" in at.selectbox(key="dt.exp.seg").options
