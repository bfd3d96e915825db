"""Known user groups (SPEC §3) on SQLite and PostgreSQL: parsing, 10,000+ addresses at once, matched and
unmatched, CSV export with formula-looking cells neutralised, and a group added to a segment."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import func, select

from segcore._db import Database
from segcore._engine import create_segment, criteria_log, member_contact_nos
from segcore._errors import NotFoundError, RefusedError, UsageError
from segcore._groups import (
    add_emails,
    create_group,
    delete_group,
    export_group_csv,
    get_group,
    group_addresses,
    group_to_segment,
    list_groups,
    parse_email_csv,
    parse_emails,
    remove_emails,
    update_group,
)
from segcore._models import KnownUserGroup, KnownUserGroupEmail
from tests.factories import add_contacts, person


def people(db: Database) -> None:
    add_contacts(db, [
        person("P001", email="ann@example.org", name="Ann"),
        person("P002", email="bob@example.org", name="=HYPERLINK(\"http://x\",\"Bob\")"),
        person("P003", email="cy@example.org", name="Cy"),
    ])


def stored(db: Database) -> list[str]:
    t = KnownUserGroupEmail.__table__
    with db.read() as conn:
        return list(conn.execute(select(t.c.email).order_by(t.c.group_id, t.c.position)).scalars())


@pytest.mark.parametrize(
    "text, valid, invalid",
    [
        ("a@x.org b@x.org", ("a@x.org", "b@x.org"), ()),
        ("a@x.org,b@x.org;c@x.org\nd@x.org", ("a@x.org", "b@x.org", "c@x.org", "d@x.org"), ()),
        ("A@X.org a@x.org", ("a@x.org",), ()),
        ("  <a@x.org> ; ;; \n\n", ("a@x.org",), ()),
        ("a@x.org nope @x.org a@b", ("a@x.org",), ("nope", "@x.org", "a@b")),
        ("", (), ()),
    ],
)
def test_parse_emails(text: str, valid: tuple[str, ...], invalid: tuple[str, ...]) -> None:
    assert parse_emails(text) == (valid, invalid)


@pytest.mark.parametrize(
    "data, expected",
    [
        (b"email\r\nann@example.org\r\nbob@example.org\r\n", ("ann@example.org", "bob@example.org")),
        ("\ufeffName;E-mail\r\nAnn;ann@example.org\r\nBéa;bea@example.org\r\n".encode(),
         ("ann@example.org", "bea@example.org")),
        ("Nom;Courriel\r\nBéa;bea@example.org\r\n".encode("cp1252"), ("bea@example.org",)),
        (b"id,contact\n1,ann@example.org\n2,bob@example.org\n", ("ann@example.org", "bob@example.org")),
        (b"ann@example.org\nbob@example.org\n", ("ann@example.org", "bob@example.org")),
        (b"ann@example.org, bob@example.org, cy@example.org", ("ann@example.org", "bob@example.org", "cy@example.org")),
        (b"a@example.org;b@example.org\nc@example.org;d@example.org\n",
         ("a@example.org", "b@example.org", "c@example.org", "d@example.org")),
        (b"Ann,ann@example.org\nBob,bob@example.org\n", ("ann@example.org", "bob@example.org")),
    ],
    ids=["header", "bom-semicolon", "cp1252", "column-by-content", "plain-lines", "one-row-list", "rows-of-addresses",
         "no-header-table"],
)
def test_parse_email_csv(data: bytes, expected: tuple[str, ...]) -> None:
    assert parse_email_csv(data) == expected


def test_ragged_rows_of_addresses_lose_nothing() -> None:
    # The sniffer finds no delimiter in ragged rows: the lines come back whole and parse_emails splits them.
    cells = parse_email_csv(b"a@example.org;b@example.org\nc@example.org;d@example.org;oops\n")
    assert parse_emails(cells) == (("a@example.org", "b@example.org", "c@example.org", "d@example.org"), ("oops",))


def test_parse_email_csv_unreadable_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="not readable as CSV"):
        parse_email_csv(b'a,"' + b"x" * 200_000 + b'"\n1,2\n')


def test_parse_email_csv_without_addresses_says_so() -> None:
    with pytest.raises(UsageError, match="no e-mail column"):
        parse_email_csv(b"a,b\n1,2\n3,4\n")


def test_create_add_remove_rename_delete(db: Database) -> None:
    people(db)
    info, change = create_group(db, "Fair 2026", description="Booth visitors",
                                emails="ann@example.org, nobody@example.org; bad")
    assert (change.added, change.already_there, change.invalid) == (2, 0, ("bad",))
    assert (info.address_count, info.matched_count, info.unmatched_count) == (2, 1, 1)
    change = add_emails(db, "Fair 2026", ["BOB@example.org", "ann@example.org"])
    assert (change.added, change.already_there) == (1, 1)
    assert stored(db) == ["ann@example.org", "nobody@example.org", "bob@example.org"]
    assert remove_emails(db, "Fair 2026", "nobody@example.org other@example.org") == 1
    update_group(db, "Fair 2026", new_name="Fair", description="Visitors")
    assert [(g.name, g.description, g.address_count, g.matched_count) for g in list_groups(db)] == [
        ("Fair", "Visitors", 2, 2)]
    with pytest.raises(RefusedError, match="already exists"):
        create_group(db, "Fair")
    delete_group(db, "Fair")
    assert list_groups(db) == [] and stored(db) == []
    with pytest.raises(NotFoundError):
        get_group(db, "Fair")


def test_twelve_thousand_addresses_at_once(db: Database) -> None:
    people(db)
    addresses = [f"user{i}@bulk.example" for i in range(12_000)] + ["ann@example.org", "cy@example.org"]
    info, change = create_group(db, "Bulk", emails="\n".join(addresses))
    assert change.added == 12_002 and (info.address_count, info.matched_count) == (12_002, 2)
    rows, total = group_addresses(db, "Bulk", status="matched")
    assert total == 2 and [(r["email"], r["contact_no"]) for r in rows] == [
        ("ann@example.org", "P001"), ("cy@example.org", "P003")]
    rows, total = group_addresses(db, "Bulk", status="unmatched", limit=5, offset=10)
    assert total == 12_000 and [r["email"] for r in rows] == [f"user{i}@bulk.example" for i in range(10, 15)]
    assert all(r["contact_no"] is None for r in rows)
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(KnownUserGroupEmail.__table__)).scalar_one() == 12_002


def test_export_csv_neutralises_formulas(db: Database) -> None:
    people(db)
    create_group(db, "G", emails="bob@example.org ann@example.org zed@example.org")
    data = export_group_csv(db, "G")
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["email", "matched", "contact_no", "name"]
    assert rows[1] == ["bob@example.org", "yes", "P002", "'=HYPERLINK(\"http://x\",\"Bob\")"]
    assert rows[2] == ["ann@example.org", "yes", "P001", "Ann"]
    assert rows[3] == ["zed@example.org", "no", "", ""]


def test_group_to_segment_is_one_undoable_step(db: Database) -> None:
    people(db)
    create_group(db, "G", emails="ann@example.org cy@example.org zed@example.org")
    create_segment(db, "S1", description="From the fair")
    result = group_to_segment(db, "G", "S1", user="ann")
    assert (result.added, result.unmatched) == (2, ("zed@example.org",))
    assert sorted(member_contact_nos(db, "S1")) == ["P001", "P003"]
    assert [e.kind for e in criteria_log(db, "S1")] == ["add_emails"]


def test_bad_group_name_writes_nothing(db: Database) -> None:
    for name in ("", "x" * 101):
        with pytest.raises(UsageError):
            create_group(db, name, emails="a@x.org")
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(KnownUserGroup.__table__)).scalar_one() == 0
