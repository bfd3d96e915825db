"""Export of a segment's members to CSV and Excel (segcore._export), on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import insert, select, update

from segcore import NotFoundError, RefusedError, UsageError, import_contacts
from segcore._db import Database
from segcore._export import EXPORT_COLUMNS, check_exportable, export_members, export_rows, neutralise
from segcore._models import Contact, ContactCode, ProfileAnswer, Segment, SegmentMember, Setting
from tests.test_browse import add_contacts, company, person

NAMES = select(Contact.contact_no, Contact.name, Contact.phone)
DANGEROUS = ["=1+1", "+33 1 23", "-2", "@SUM(A1)", "\tTAB", "\rCR"]


def _segment(db: Database, no: str, ids: list[int]) -> None:
    now = dt.datetime(2025, 6, 1)
    with db.write() as conn:
        seg_id = conn.execute(
            insert(Segment.__table__)
            .values(no=no, description="", owner="", status="draft", version=1, head_seq=1, size=len(ids),
                    created_at=now, updated_at=now)
            .returning(Segment.__table__.c.id)
        ).scalar_one()
        if ids:
            conn.execute(
                insert(SegmentMember.__table__),
                [{"segment_id": seg_id, "contact_id": i, "added_seq": 1} for i in ids],
            )


def _minimum(db: Database, value: int) -> None:
    with db.write() as conn:
        conn.execute(update(Setting.__table__).where(Setting.key == "minimum_segment_size").values(value=value))


@pytest.fixture
def world(db: Database) -> Database:
    rows = [company("C1", name="Contoso", country="FR", total_spent=1234.5)]
    rows += [person(f"P{i}", "C1", name=DANGEROUS[i], phone="+33 1 00", birth_date=dt.date(1990, 1, 2),
                    mailing_groups=["VIP", "NEWSLETTER"] if i == 0 else [])
             for i in range(len(DANGEROUS))]
    ids = add_contacts(db, rows)
    with db.write() as conn:
        conn.execute(insert(ProfileAnswer.__table__), [
            {"contact_id": ids["P0"], "questionnaire": "INTEREST", "answer": "FOOD"},
            {"contact_id": ids["P0"], "questionnaire": "CUSTSAT", "answer": "HIGH"},
        ])
        conn.execute(insert(ContactCode.__table__), [{"kind": "industry_groups", "code": "RETAIL", "contact_id": ids["C1"]}])
    _segment(db, "S1", sorted(ids.values()))
    _segment(db, "EMPTY", [])
    _minimum(db, 5)
    return db


@pytest.mark.parametrize("value, expected", [
    ("=1+1", "'=1+1"), ("+33", "'+33"), ("-2", "'-2"), ("@x", "'@x"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("plain", "plain"), ("", ""), ("a=b", "a=b"),
])  # fmt: skip
def test_neutralise(value: str, expected: str) -> None:
    assert neutralise(value) == expected


def test_csv_has_import_columns_and_no_formula(world: Database) -> None:
    data = export_members(world, "S1", "csv")
    assert data.startswith(b"\xef\xbb\xbf")  # BOM for Excel
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert tuple(rows[0]) == EXPORT_COLUMNS
    assert [r["contact_no"] for r in rows] == ["C1", *[f"P{i}" for i in range(len(DANGEROUS))]]
    by_no = {r["contact_no"]: r for r in rows}
    assert by_no["C1"]["total_spent"] == "1234.50" and by_no["C1"]["industry_groups"] == "RETAIL"
    assert by_no["P0"]["mailing_groups"] == "NEWSLETTER;VIP"
    assert by_no["P0"]["profile"] == "CUSTSAT=HIGH;INTEREST=FOOD"
    assert by_no["P0"]["birth_date"] == "1990-01-02" and by_no["P0"]["exclude_from_segments"] == "false"
    for r in rows:
        for value in r.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value
    assert [by_no[f"P{i}"]["name"] for i in range(len(DANGEROUS))] == ["'" + d for d in DANGEROUS]


def test_xlsx_has_no_formula_and_typed_cells(world: Database) -> None:
    data = export_members(world, "S1", "xlsx")
    ws = load_workbook(io.BytesIO(data)).active
    assert ws is not None
    header = [c.value for c in ws[1]]
    assert tuple(header) == EXPORT_COLUMNS
    body = list(ws.iter_rows(min_row=2, values_only=True))
    assert len(body) == 1 + len(DANGEROUS)
    for row in ws.iter_rows(min_row=2):
        for cell in row:
            assert cell.data_type != "f"
    assert body[0][header.index("total_spent")] == pytest.approx(1234.5)
    assert isinstance(body[1][header.index("birth_date")], dt.datetime | dt.date)


def test_xlsx_writes_formula_looking_text_as_text_cells(world: Database) -> None:
    # Excel neutralises by cell type, not by a visible apostrophe: `+33 1 00` reads `+33 1 00`, `=1+1` is text.
    ws = load_workbook(io.BytesIO(export_members(world, "S1", "xlsx"))).active
    assert ws is not None
    header = [c.value for c in ws[1]]
    rows = {r[0].value: r for r in ws.iter_rows(min_row=2)}
    names = [rows[f"P{i}"][header.index("name")] for i in range(len(DANGEROUS))]
    for cell, written in zip(names, DANGEROUS, strict=True):
        assert cell.data_type == "s", written
        # Depending on the XML writer (lxml or not) a stored CR may read back as LF.
        assert cell.value.replace("\r", "\n") == written.replace("\r", "\n")
    phone = rows["P0"][header.index("phone")]
    assert (phone.value, phone.data_type) == ("+33 1 00", "s")
    plain = rows["C1"][header.index("name")]
    assert (plain.value, plain.data_type) == ("Contoso", "s")
    # Typed cells stay typed.
    assert rows["C1"][header.index("total_spent")].data_type == "n"
    assert rows["P0"][header.index("birth_date")].data_type == "d"


def test_export_in_chunks_streams_every_member(world: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    import segcore._export as export

    monkeypatch.setattr(export, "_CHUNK", 2)
    seen: list[tuple[int, int]] = []
    rows = list(export_rows(world, "S1", progress=lambda done, total, _stage: seen.append((done, total))))
    assert len(rows) == 1 + len(DANGEROUS)
    assert seen[-1] == (len(rows), len(rows)) and len(seen) == 4
    assert rows[1]["mailing_groups"] == "NEWSLETTER;VIP"


def test_refusals(world: Database) -> None:
    assert check_exportable(world, "S1") == 1 + len(DANGEROUS)
    with pytest.raises(RefusedError, match="no members"):
        export_members(world, "EMPTY", "csv")
    with pytest.raises(NotFoundError):
        export_members(world, "NOPE", "csv")
    with pytest.raises(UsageError):
        export_members(world, "S1", "pdf")
    _minimum(world, 50)
    with pytest.raises(RefusedError, match="fewer than the minimum of 50"):
        export_members(world, "S1", "xlsx")
    with pytest.raises(RefusedError, match="fewer than the minimum of 50"):
        check_exportable(world, "S1")


def test_an_exported_csv_imports_back_as_it_was_stored(world: Database, tmp_path: Path) -> None:
    data = export_members(world, "S1", "csv")
    other = Database.open(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        other.ensure_schema()
        report = import_contacts(other, io.BytesIO(data), strict=True)
        assert report.rows_rejected == 0
        with world.read() as conn:
            before = {r.contact_no: (r.name, r.phone) for r in conn.execute(NAMES)}
        with other.read() as conn:
            after = {r.contact_no: (r.name, r.phone) for r in conn.execute(NAMES)}
    finally:
        other.dispose()
    assert after == before
    assert before["P1"] == ("+33 1 23", "+33 1 00")

