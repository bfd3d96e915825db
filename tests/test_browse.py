"""The dashboard's read queries (segcore._browse) on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from segcore import FilterError, NotFoundError
from segcore._browse import (
    contact_count,
    contact_detail,
    contacts_by_ids,
    minimum_segment_size,
    number_bounds,
    search_contacts,
    segment_members_page,
    split_values,
    value_counts,
)
from segcore._db import Database
from segcore._models import (
    Contact,
    ContactCode,
    Interaction,
    ProfileAnswer,
    Segment,
    SegmentAction,
    SegmentMember,
)

TODAY = dt.date(2025, 6, 15)
_DEFAULTS: dict[str, Any] = {"gender": "unknown", "total_spent": 0, "purchase_count": 0, "exclude_from_segments": False}


def company(no: str, **kw: Any) -> dict[str, Any]:
    return {"contact_no": no, "type": "company", "name": f"Company {no}", **kw}


def person(no: str, company_no: str | None = None, **kw: Any) -> dict[str, Any]:
    return {"contact_no": no, "type": "person", "name": f"Person {no}", "company_no": company_no, **kw}


def add_contacts(db: Database, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Contacts written straight to the tables (org_id resolved, e-mails lower-cased); contact_no -> id."""
    table = Contact.__table__
    with db.write() as conn:
        for row in rows:
            values = {**_DEFAULTS, **{k: v for k, v in row.items() if k != "mailing_groups"}}
            if values.get("email"):
                values["email"] = values["email"].lower()
                values["email_domain"] = values["email"].split("@", 1)[1]
            conn.execute(insert(table).values(**values))
        ids = {no: i for no, i in conn.execute(select(table.c.contact_no, table.c.id)).all()}
        codes = []
        for row in rows:
            cid = ids[row["contact_no"]]
            org = cid if row["type"] == "company" else ids.get(row.get("company_no") or "")
            conn.execute(update(table).where(table.c.id == cid).values(org_id=org))
            codes += [{"kind": "mailing_groups", "code": c, "contact_id": cid} for c in row.get("mailing_groups", ())]
        if codes:
            conn.execute(insert(ContactCode.__table__), codes)
    return ids


def _segment(db: Database, no: str, member_ids: list[int], *, seq: int = 1) -> int:
    """A segment written straight to the tables, with one logged step that brought every member in."""
    now = dt.datetime(2025, 6, 1, 12, 0)
    with db.write() as conn:
        seg_id = conn.execute(
            insert(Segment.__table__)
            .values(no=no, description=f"Segment {no}", owner="ann", status="draft", version=1, head_seq=seq,
                    size=len(member_ids), created_at=now, updated_at=now)
            .returning(Segment.__table__.c.id)
        ).scalar_one()
        conn.execute(
            insert(SegmentAction.__table__).values(
                segment_id=seg_id, seq=seq, kind="add", description="Country is FR", options={}, matched=3,
                added=len(member_ids), removed=0, size_after=len(member_ids), user="ann", created_at=now,
            )
        )
        if member_ids:
            conn.execute(
                insert(SegmentMember.__table__),
                [{"segment_id": seg_id, "contact_id": i, "added_seq": seq} for i in member_ids],
            )
    return int(seg_id)


@pytest.fixture
def world(db: Database) -> tuple[Database, dict[str, int]]:
    ids = add_contacts(
        db,
        [
            company("C1", name="Contoso SAS", country="FR", city="Paris", email="info@contoso.com",
                    acquisition_source="partner"),
            person("P1", "C1", name="Léa Martin", country="FR", gender="female", email="Lea@Contoso.com",
                   birth_date=dt.date(1990, 3, 1), mailing_groups=["NEWSLETTER", "VIP"], acquisition_source="ads"),
            person("P2", "C1", name="Hugo Dubois", country="FR", gender="male", birth_date=dt.date(1960, 1, 1),
                   mailing_groups=["NEWSLETTER"], acquisition_source="ads"),
            person("P3", name="Anna Müller", country="DE", gender="female", city="Berlin",
                   email="anna_m@fabrikam.com", acquisition_source="organic"),
            person("P4", name="100% Pure_Name", country="DE", gender="other", acquisition_source=None),
        ],
    )
    with db.write() as conn:
        conn.execute(
            insert(ProfileAnswer.__table__),
            [
                {"contact_id": ids["P1"], "questionnaire": "INTEREST", "answer": "TRAVEL"},
                {"contact_id": ids["P1"], "questionnaire": "INTEREST", "answer": "FOOD"},
                {"contact_id": ids["P2"], "questionnaire": "INTEREST", "answer": "TRAVEL"},
                {"contact_id": ids["P2"], "questionnaire": "CUSTSAT", "answer": "HIGH"},
            ],
        )
        conn.execute(
            insert(Interaction.__table__),
            [
                {"contact_id": ids["P1"], "date": dt.date(2025, 5, 1), "template": "EMAIL", "campaign_no": "CP1",
                 "evaluation": "positive", "cancelled": False},
                {"contact_id": ids["P1"], "date": dt.date(2025, 6, 1), "template": "CALL", "campaign_no": None,
                 "evaluation": None, "cancelled": False},
                {"contact_id": ids["P2"], "date": dt.date(2025, 6, 2), "template": "EMAIL", "campaign_no": None,
                 "evaluation": None, "cancelled": False},
                {"contact_id": ids["P3"], "date": dt.date(2025, 6, 3), "template": "EMAIL", "campaign_no": None,
                 "evaluation": None, "cancelled": True},
            ],
        )
        conn.execute(
            insert(ContactCode.__table__),
            [{"kind": "industry_groups", "code": "RETAIL", "contact_id": ids["C1"]}],
        )
    return db, ids


def test_contact_count_and_search_pages(world: tuple[Database, dict[str, int]]) -> None:
    db, _ids = world
    assert contact_count(db) == 5
    page = search_contacts(db, limit=2)
    assert page.total == 5 and page.pages == 3
    assert [r["contact_no"] for r in page.rows] == ["C1", "P1"]
    assert [r["contact_no"] for r in search_contacts(db, offset=4, limit=2).rows] == ["P4"]
    # Case-insensitive, over number, name, e-mail and city, Unicode included.
    assert [r["contact_no"] for r in search_contacts(db, "LÉA").rows] == ["P1"]
    assert [r["contact_no"] for r in search_contacts(db, "contoso").rows] == ["C1", "P1"]
    assert [r["contact_no"] for r in search_contacts(db, "berlin").rows] == ["P3"]
    assert search_contacts(db, "contoso", contact_type="company").total == 1


@pytest.mark.parametrize("query, expected", [("100%", ["P4"]), ("%", ["P4"]), ("_", ["P3", "P4"]), ("a_m", ["P3"])])
def test_search_wildcards_are_literal(world: tuple[Database, dict[str, int]], query: str, expected: list[str]) -> None:
    db, _ids = world
    assert [r["contact_no"] for r in search_contacts(db, query).rows] == expected


def test_search_refuses_unknown_columns(world: tuple[Database, dict[str, int]]) -> None:
    db, _ids = world
    with pytest.raises(FilterError):
        search_contacts(db, columns=("contact_no", "password"))


def test_contacts_by_ids_keeps_order_and_skips_unknown(world: tuple[Database, dict[str, int]]) -> None:
    db, ids = world
    rows = contacts_by_ids(db, [ids["P3"], 999_999, ids["C1"]], columns=("contact_no", "name"))
    assert rows == [{"contact_no": "P3", "name": "Anna Müller"}, {"contact_no": "C1", "name": "Contoso SAS"}]
    assert contacts_by_ids(db, []) == []


def test_contact_detail(world: tuple[Database, dict[str, int]]) -> None:
    db, ids = world
    _segment(db, "S1", [ids["P1"], ids["P2"]])
    _segment(db, "S2", [ids["P2"]])
    d = contact_detail(db, "P1", today=TODAY)
    assert d.fields["name"] == "Léa Martin" and d.fields["email"] == "lea@contoso.com"
    assert d.age == 35
    assert d.lists["mailing_groups"] == ["NEWSLETTER", "VIP"] and d.lists["industry_groups"] == []
    assert d.profile == [{"questionnaire": "INTEREST", "answer": "FOOD"}, {"questionnaire": "INTEREST", "answer": "TRAVEL"}]
    assert [(m["segment_no"], m["step"], m["step_kind"]) for m in d.memberships] == [("S1", 1, "add")]
    assert [i["template"] for i in d.interactions] == ["CALL", "EMAIL"]  # latest first
    assert d.interactions_total == 2
    assert [m["segment_no"] for m in contact_detail(db, "P2").memberships] == ["S1", "S2"]
    with pytest.raises(NotFoundError):
        contact_detail(db, "NOPE")


def test_members_page(world: tuple[Database, dict[str, int]]) -> None:
    db, ids = world
    _segment(db, "S1", [ids["P2"], ids["P1"], ids["P3"]])
    page = segment_members_page(db, "S1", limit=2)
    assert page.total == 3
    assert [r["contact_no"] for r in page.rows] == ["P1", "P2"]
    assert all(r["added_seq"] == 1 for r in page.rows)
    assert [r["contact_no"] for r in segment_members_page(db, "S1", offset=2, limit=2).rows] == ["P3"]
    found = segment_members_page(db, "S1", "MÜLLER")
    assert found.total == 1 and found.rows[0]["contact_no"] == "P3"
    assert segment_members_page(db, "S1", "nobody").total == 0
    _segment(db, "EMPTY", [])
    assert segment_members_page(db, "EMPTY").rows == []
    with pytest.raises(NotFoundError):
        segment_members_page(db, "NOPE")


def test_value_counts(world: tuple[Database, dict[str, int]]) -> None:
    db, _ids = world
    assert value_counts(db, "country") == [("FR", 3), ("DE", 2)]
    # Fixed choices keep their order and show 0 too.
    assert value_counts(db, "gender") == [("female", 2), ("male", 1), ("other", 1), ("unknown", 1)]
    assert value_counts(db, "acquisition_source") == [("ads", 2), ("organic", 1), ("partner", 1)]
    assert value_counts(db, "mailing_groups") == [("NEWSLETTER", 2), ("VIP", 1)]
    # Cancelled interactions do not count, as filters ignore them.
    assert value_counts(db, "template", "interactions") == [("EMAIL", 2), ("CALL", 1)]
    assert value_counts(db, "questionnaire", "profile") == [("INTEREST", 2), ("CUSTSAT", 1)]
    assert value_counts(db, "answer", "profile", questionnaire="interest") == [("TRAVEL", 2), ("FOOD", 1)]
    bands: dict[str, Any] = dict(value_counts(db, "age_band", today=TODAY))
    assert bands["35-44"] == 1 and bands["65+"] == 1 and bands["<18"] == 0


@pytest.mark.parametrize("name, relation", [("password", None), ("age", None), ("nope", "interactions")])
def test_value_counts_refuses_unknown_or_numeric_fields(
    world: tuple[Database, dict[str, int]], name: str, relation: str | None
) -> None:
    db, _ids = world
    with pytest.raises(FilterError):
        value_counts(db, name, relation)


def test_minimum_segment_size_default(db: Database) -> None:
    assert minimum_segment_size(db) == 50


def test_number_bounds(world: tuple[Database, dict[str, int]]) -> None:
    db, _ids = world
    assert number_bounds(db, "age", today=TODAY) == (35.0, 65.0)
    assert number_bounds(db, "total_spent") == (0.0, 0.0)
    assert number_bounds(db, "rating") is None
    assert number_bounds(db, "days_since_last_purchase") is None
    with pytest.raises(FilterError):
        number_bounds(db, "country")


def test_split_values() -> None:
    assert split_values(" CT1, CT2;ct3\nCT1  ") == ("CT1", "CT2", "ct3")
    assert split_values("") == ()


@pytest.mark.parametrize("cap", [1, 2, 1000])
def test_search_counts_up_to_a_cap(world: tuple[Database, dict[str, int]], monkeypatch: pytest.MonkeyPatch, cap: int) -> None:
    import segcore._browse as browse

    db, ids = world
    _segment(db, "S1", sorted(ids.values()))
    monkeypatch.setattr(browse, "SEARCH_COUNT_CAP", cap)
    for page_of in (lambda **kw: search_contacts(db, "contoso", **kw),
                    lambda **kw: segment_members_page(db, "S1", "contoso", **kw)):
        first = page_of(limit=1)
        assert [r["contact_no"] for r in first.rows] == ["C1"]
        assert (first.total, first.capped) == ((1, True) if cap == 1 else (2, False))
        second = page_of(offset=1, limit=1)
        assert [r["contact_no"] for r in second.rows] == ["P1"]
        assert page_of(offset=5, limit=1).rows == []


# ----------------------------------------------------------------------------------------------- accents, look-ups


@pytest.fixture
def accented(db: Database) -> Database:
    add_contacts(
        db,
        [
            person("CT-0001", name="Élise Lefèvre", city="Zürich", email="Elise.Lefevre@Example.com"),
            person("ct-0002", name="François Dupont", city="Paris", email="fd@example.com"),
            person("CT-0003", name="Jean Lefebvre", city="ZURICH", email="jean@lefebvre.fr"),
            person("ANN", name="Zed Zulu", email="zed@x.com"),
            person("C5", name="Ann Ärger", email="ann@x.com"),
            person("C6", name="Anne Ånström", email="other@x.com"),
            person("C7", name="Bob Straße", email="bob@ann.org"),
        ],
    )
    return db


@pytest.mark.parametrize(
    "query, expected",
    [
        ("Lefevre", ["CT-0001"]),  # finds Lefèvre, not Lefebvre
        ("LEFÈVRE", ["CT-0001"]),
        ("  lefevre  ", ["CT-0001"]),  # the query is trimmed
        ("zurich", ["CT-0001", "CT-0003"]),  # Zürich and ZURICH
        ("Francois", ["ct-0002"]),
        ("francois dupont", ["ct-0002"]),
        ("strasse", ["C7"]),
        ("anstrom", ["C6"]),
        ("elise.lefevre@", ["CT-0001"]),  # e-mails: case-insensitive
        ("CT-000", ["CT-0001", "CT-0003", "ct-0002"]),
    ],
)  # fmt: skip
def test_search_ignores_accents_and_case(accented: Database, query: str, expected: list[str]) -> None:
    assert [r["contact_no"] for r in search_contacts(accented, query).rows] == expected


def test_members_search_ignores_accents(accented: Database) -> None:
    with accented.read() as conn:
        ids = dict(conn.execute(select(Contact.__table__.c.contact_no, Contact.__table__.c.id)).all())
    _segment(accented, "S1", [ids["CT-0001"], ids["ct-0002"]])
    assert [r["contact_no"] for r in segment_members_page(accented, "S1", " LEFEVRE ").rows] == ["CT-0001"]
    assert [r["contact_no"] for r in segment_members_page(accented, "S1", "françois").rows] == ["ct-0002"]


@pytest.mark.parametrize(
    "query, expected",
    [
        ("ct-0001", ["CT-0001"]),  # a number in any case
        ("CT-0002", ["ct-0002"]),
        ("  ct-0003 ", ["CT-0003"]),
        # The number itself first, then the e-mail itself, then names, e-mails and numbers that contain it, by name.
        ("ann", ["ANN", "C5", "C6", "C7"]),
        ("ANN@X.COM", ["C5"]),
        ("lefevre", ["CT-0001"]),  # name without accents; Lefebvre is another name
        ("Élise Lefèvre", ["CT-0001"]),
        ("jean@lefebvre.fr", ["CT-0003"]),
        ("@example.com", ["CT-0001", "ct-0002"]),  # by name, folded: "elise ..." before "francois ..."
        ("nobody", []),
        ("", []),
        ("   ", []),
        ("%", []),  # LIKE characters are plain text
    ],
)  # fmt: skip
def test_find_contacts(accented: Database, query: str, expected: list[str]) -> None:
    from segcore._browse import find_contacts

    found = find_contacts(accented, query)
    assert [r["contact_no"] for r in found] == expected
    assert all(set(r) == {"contact_no", "name", "email", "type", "city"} for r in found)


def test_find_contacts_returns_the_fields_and_respects_the_limit(accented: Database) -> None:
    from segcore._browse import find_contacts

    [row] = find_contacts(accented, "CT-0001")
    assert row == {"contact_no": "CT-0001", "name": "Élise Lefèvre", "email": "elise.lefevre@example.com",
                   "type": "person", "city": "Zürich"}  # fmt: skip
    assert [r["contact_no"] for r in find_contacts(accented, "ann", limit=2)] == ["ANN", "C5"]


def test_excluded_count_is_the_gap_between_a_value_count_and_an_add_preview(db: Database) -> None:
    from segcore._browse import excluded_count
    from segcore._engine import ActionRequest, create_segment
    from segcore._filter_tree import from_json
    from segcore._preview import preview_step

    add_contacts(
        db,
        [
            company("K1", country="FR", exclude_from_segments=True),
            person("P1", "K1", country="FR", name="Éva Lefèvre", exclude_from_segments=True),
            person("P2", country="FR", name="Eva Lefevre"),
            person("P3", country="FR"),
            person("P4", country="DE", exclude_from_segments=True),
        ],
    )
    fr = from_json({"field": "country", "op": "eq", "value": "FR"})
    assert excluded_count(db, fr) == 2
    assert excluded_count(db, from_json({"field": "name", "op": "contains", "value": "lefevre"})) == 1
    assert excluded_count(db, from_json({"field": "country", "op": "eq", "value": "BE"})) == 0
    assert excluded_count(db, from_json({"all": []})) == 3
    create_segment(db, "S1")
    for backend in ("memory", "sql"):
        preview = preview_step(db, "S1", ActionRequest("add", fr), backend=backend)
        # "FR (4)" in the Builder, "2 match": the 2 excluded from segments are left out.
        assert dict(value_counts(db, "country"))["FR"] - excluded_count(db, fr) == preview.counts.matched == 2
