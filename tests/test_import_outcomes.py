"""The third import kind, outcomes: mapping synonyms, the checks with line and column, all-or-nothing, references
counted once, the CLI; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from segcore._db import Database
from segcore._errors import ImportRejected, UsageError
from segcore._models import Outcome
from segcore.cli import main
from segcore.imports import OUTCOME_TARGETS, import_outcomes, plan_import, suggest_mapping, validate_outcomes
from segcore.imports.check import OUTCOME_COLUMNS
from segcore.imports.mapping import _OUTCOME_COLUMNS
from tests.factories import add_contacts, person


@pytest.fixture
def stored(db: Database) -> Database:
    add_contacts(db, [person(no) for no in ("C1", "C2", "C3")])
    return db


def _rows(db: Database) -> list[tuple]:
    with db.read() as conn:
        return [tuple(r) for r in conn.execute(
            select(Outcome.kind, Outcome.reference, Outcome.amount, Outcome.date).order_by(Outcome.kind, Outcome.reference)
        ).all()]


def test_headers_in_english_french_and_german_are_mapped() -> None:
    assert OUTCOME_COLUMNS == _OUTCOME_COLUMNS and set(OUTCOME_TARGETS) == set(OUTCOME_COLUMNS)
    for header in (
        ["Customer Id", "Order date", "Type", "Montant", "Bestellnummer"],
        ["N° client", "Date de commande", "Événement", "Montant TTC", "N° commande"],
        ["Kundennummer", "Bestelldatum", "Ereignis", "Betrag", "Rechnungsnummer"],
    ):
        fields = [c.field for c in suggest_mapping(header, "outcomes").columns]
        assert fields == ["contact_no", "date", "kind", "amount", "reference"], header


def test_valid_rows_are_stored_and_every_bad_row_named_by_line_and_column(stored: Database) -> None:
    body = (
        "Customer Id;Order date;Type;Montant;Bestellnummer\n"
        "C1;02/06/2025;order;12,50;A1\n"          # line 2: ok, day-first, decimal comma, kind upper-cased
        "C2;03/06/2025;SIGNUP;;\n"                # line 3: ok, no amount, no reference
        "C9;03/06/2025;ORDER;3;A3\n"              # line 4: unknown contact
        "C3;03/06/2025;ORDER;-4;A4\n"             # line 5: negative amount
        "C3;03/06/2025;no way;1;A5\n"             # line 6: not a code
        "C3;03/06/2025;ORDER;2;A1\n"              # line 7: A1 again in the file
        ";03/06/2025;ORDER;2;A7\n"                # line 8: no contact
    )
    report = import_outcomes(stored, body.encode("utf-8"), date_format="DMY")
    assert (report.rows_total, report.rows_valid, report.inserted, report.updated) == (7, 2, 2, 0)
    where = {(e.line, e.column) for e in report.errors}
    assert {(4, "Customer Id"), (5, "Montant"), (6, "Type"), (7, "Bestellnummer"), (8, "Customer Id")} <= where
    assert "already appears on line 2" in next(e.reason for e in report.errors if e.line == 7)
    rows = _rows(stored)
    assert [(k, r, a) for k, r, a, _ in rows] == [("ORDER", "A1", 12.5), ("SIGNUP", None, None)]
    assert str(rows[0][3]) == "2025-06-02"
    assert "outcomes:" in report.summary() and "updated" in report.summary()


def test_strict_imports_nothing_and_a_file_without_a_kind_column_is_refused(stored: Database) -> None:
    body = b"contact_no,date,kind\nC1,2025-06-02,ORDER\nC9,2025-06-02,ORDER\n"
    with pytest.raises(ImportRejected) as info:
        import_outcomes(stored, body, strict=True)
    assert info.value.report.rows_rejected == 1 and _rows(stored) == []
    with pytest.raises(ImportRejected, match="maps no column to kind"):
        import_outcomes(stored, b"contact_no,date\nC1,2025-06-02\n")
    with pytest.raises(UsageError):
        plan_import(stored, body, "orders")


def test_a_reference_counts_once_and_a_new_file_corrects_it(stored: Database) -> None:
    first = b"contact_no,date,kind,amount,reference\nC1,2025-06-02,ORDER,10,R1\nC2,2025-06-02,ORDER,5,R2\n"
    assert (import_outcomes(stored, first).inserted, len(_rows(stored))) == (2, 2)
    dry = validate_outcomes(stored, first)
    assert (dry.inserted, dry.updated, dry.applied) == (0, 2, False)
    again = b"contact_no,date,kind,amount,reference\nC1,2025-06-03,ORDER,12,R1\nC3,2025-06-02,SIGNUP,,R1\n"
    report = import_outcomes(stored, again)
    # R1 of kind ORDER is updated; R1 of kind SIGNUP is another outcome.
    assert (report.inserted, report.updated) == (1, 1)
    rows = _rows(stored)
    assert [(k, r, a) for k, r, a, _ in rows] == [("ORDER", "R1", 12.0), ("ORDER", "R2", 5.0), ("SIGNUP", "R1", None)]
    # Without a reference every row is its own outcome.
    import_outcomes(stored, b"contact_no,date,kind\nC1,2025-06-02,REPLY\nC1,2025-06-02,REPLY\n")
    with stored.read() as conn:
        assert conn.execute(select(func.count()).select_from(Outcome).where(Outcome.kind == "REPLY")).scalar_one() == 2


def test_cli_import_outcomes(stored: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("Kunde,Datum,Art,Wert,Bestellnr\nC1,2025-06-02,ORDER,9.90,B1\nC9,2025-06-02,ORDER,1,B2\n")
    assert main(["--db", stored.url, "--json", "import", "outcomes", str(path), "--dry-run"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["kind"], data["rows_valid"], data["applied"]) == ("outcomes", 1, False)
    assert main(["--db", stored.url, "import", "outcomes", str(path), "--map", "Kunde=contact_no", "--strict"]) == 1
    assert _rows(stored) == []
    assert main(["--db", stored.url, "import", "outcomes", str(path), "--map", "Kunde=contact_no"]) == 0
    out = capsys.readouterr().out
    assert "1 inserted" in out and "line 3, column Kunde" in out
    assert [r[1] for r in _rows(stored)] == ["B1"]
