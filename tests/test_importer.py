"""Contact and interaction import (SPEC §1): every rule, every bad input, re-import, encodings, atomicity."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select, text

import segcore.imports.write as importer
from segcore import Database, ImportRejected, UsageError
from segcore._models import Contact, ContactCode, Interaction, ProfileAnswer
from segcore.imports import (
    MAX_ERRORS_KEPT,
    ImportReport,
    RowError,
    import_contacts,
    import_interactions,
    validate_contacts,
    validate_interactions,
)
from segcore.imports.check import COUNTRY_CODES, LANGUAGE_CODES

DATA = Path(__file__).parent / "data"


def csv_bytes(header: str, *rows: str) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode("utf-8")


def contact(db: Database, no: str) -> dict[str, Any]:
    with db.read() as conn:
        row = conn.execute(select(Contact.__table__).where(Contact.contact_no == no)).mappings().one()
    return dict(row)


def codes(db: Database, no: str) -> set[tuple[str, str]]:
    with db.read() as conn:
        rows = conn.execute(
            select(ContactCode.kind, ContactCode.code)
            .join(Contact, Contact.id == ContactCode.contact_id)
            .where(Contact.contact_no == no)
        ).all()
    return {(r[0], r[1]) for r in rows}


def answers(db: Database, no: str) -> set[tuple[str, str]]:
    with db.read() as conn:
        rows = conn.execute(
            select(ProfileAnswer.questionnaire, ProfileAnswer.answer)
            .join(Contact, Contact.id == ProfileAnswer.contact_id)
            .where(Contact.contact_no == no)
        ).all()
    return {(r[0], r[1]) for r in rows}


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tables an import writes, in a stable order."""
    out = {}
    with db.read() as conn:
        for table in ("contacts", "contact_codes", "profile_answers", "interactions"):
            rows = conn.execute(text(f"SELECT * FROM {table}")).all()  # noqa: S608 - our own table names
            out[table] = sorted(tuple(str(v) for v in r) for r in rows)
    return out


# ----------------------------------------------------------------------------------------------------------------
# One rule at a time: a good value imports (stored normalised), a bad value is one RowError on line 2.

GOOD = [
    pytest.param("type", "Company", "type", "company", id="type-case-insensitive"),
    pytest.param("email", " Bob@Example.COM ", "email", "bob@example.com", id="email-lowered-trimmed"),
    pytest.param("email", "Bob@Example.COM", "email_domain", "example.com", id="email-domain"),
    pytest.param("email", "", "email", None, id="email-empty-is-null"),
    pytest.param("country", "fr", "country", "FR", id="country-upper"),
    pytest.param("language", "DE", "language", "de", id="language-lower"),
    pytest.param("gender", "Female", "gender", "female", id="gender-lower"),
    pytest.param("gender", "", "gender", "unknown", id="gender-empty-unknown"),
    pytest.param("birth_date", "1980-02-29", "birth_date", "1980-02-29", id="date-leap-day"),
    pytest.param("rating", "5", "rating", 5, id="rating-5"),
    pytest.param("rating", "", "rating", None, id="rating-empty"),
    pytest.param("churn_risk", "HIGH", "churn_risk", "high", id="churn-lower"),
    pytest.param("total_spent", "12.5", "total_spent", 12.5, id="spent-decimal"),
    pytest.param("total_spent", "", "total_spent", None, id="spent-not-set"),
    pytest.param("total_spent", "€ 12.50", "total_spent", 12.5, id="spent-currency"),
    pytest.param("total_spent", "1 234.50", "total_spent", 1234.5, id="spent-space-thousands"),
    pytest.param("country", "FRA", "country", "FR", id="country-alpha3"),
    pytest.param("country", "Allemagne", "country", "DE", id="country-french-name"),
    pytest.param("language", "fra", "language", "fr", id="language-alpha3"),
    pytest.param("gender", "f", "gender", "female", id="gender-abbrev"),
    pytest.param("gender", "Mme", "gender", "female", id="gender-title"),
    pytest.param("birth_date", "1980-1-2", "birth_date", "1980-01-02", id="date-short-iso"),
    pytest.param("birth_date", "31/12/1980", "birth_date", "1980-12-31", id="date-dmy"),
    pytest.param("exclude_from_segments", "oui", "exclude_from_segments", True, id="exclude-oui"),
    pytest.param("purchase_count", "3", "purchase_count", 3, id="purchases"),
    pytest.param("purchase_count", "", "purchase_count", None, id="purchases-not-set"),
    pytest.param("exclude_from_segments", "Yes", "exclude_from_segments", True, id="exclude-yes"),
    pytest.param("exclude_from_segments", "0", "exclude_from_segments", False, id="exclude-0"),
    pytest.param("exclude_from_segments", "TRUE", "exclude_from_segments", True, id="exclude-TRUE"),
    pytest.param("exclude_from_segments", "", "exclude_from_segments", False, id="exclude-default"),
    pytest.param("territory", "west-eu", "territory", "WEST-EU", id="territory-upper"),
    pytest.param("salesperson", "anna", "salesperson", "ANNA", id="salesperson-upper"),
    pytest.param("acquisition_source", "Ads", "acquisition_source", "ads", id="source-lower"),
    pytest.param("city", "  Lyon ", "city", "Lyon", id="text-trimmed"),
    pytest.param("phone", "", "phone", None, id="text-empty-null"),
]


@pytest.mark.parametrize(("column", "value", "stored_column", "expected"), GOOD)
def test_a_good_value_is_stored_normalised(
    sqlite_db: Database, column: str, value: str, stored_column: str, expected: Any
) -> None:
    type_ = value if column == "type" else "person"
    header = "contact_no,type,name" + ("" if column == "type" else f",{column}")
    row = f"C1,{type_},Ann{'' if column == 'type' else f',{value}'}"
    report = import_contacts(sqlite_db, csv_bytes(header, row))
    assert (report.rows_valid, report.rows_rejected, report.errors) == (1, 0, ())
    stored = contact(sqlite_db, "C1")[stored_column]
    assert (str(stored) if stored_column.endswith("date") and stored else stored) == expected


BAD = [
    pytest.param("contact_no", "", "a value is required", id="contact_no-required"),
    pytest.param("contact_no", "X" * 51, "longer than 50", id="contact_no-too-long"),
    pytest.param("type", "robot", "is not one of company, person", id="type-unknown"),
    pytest.param("type", "", "a value is required", id="type-required"),
    pytest.param("name", "", "a value is required", id="name-required"),
    pytest.param("email", "bob@", "is not an e-mail address", id="email-no-domain"),
    pytest.param("email", "bob", "is not an e-mail address", id="email-no-at"),
    pytest.param("email", "bob smith@x.com", "is not an e-mail address", id="email-space"),
    pytest.param("email", "bob@@x.com", "is not an e-mail address", id="email-double-at"),
    pytest.param("email", "bob@x", "is not an e-mail address", id="email-no-dot"),
    pytest.param("country", "XX", "is not a country", id="country-unassigned"),
    pytest.param("country", "F1", "is not a country", id="country-digit"),
    pytest.param("language", "xx", "is not a language", id="language-unknown"),
    pytest.param("gender", "robot", "is not a gender", id="gender-unknown"),
    pytest.param("birth_date", "1981-02-29", "is not a real date", id="date-not-leap"),
    pytest.param("acquisition_date", "2024-13-01", "is not a real date", id="date-month-13"),
    pytest.param("last_purchase_date", "yesterday", "is not a date", id="date-words"),
    pytest.param("birth_date", "31/02/2020", "is not a real date", id="date-dmy-not-real"),
    pytest.param("birth_date", "0000-01-01", "year", id="date-year-0"),
    pytest.param("rating", "0", "from 1 to 5", id="rating-0"),
    pytest.param("rating", "6", "from 1 to 5", id="rating-6"),
    pytest.param("rating", "3.5", "is not a whole number", id="rating-decimal"),
    pytest.param("rating", "good", "is not a number", id="rating-text"),
    pytest.param("churn_risk", "extreme", "is not one of high, low, medium", id="churn-unknown"),
    pytest.param("total_spent", "-1", "must be 0 or more", id="spent-negative"),
    pytest.param("total_spent", "abc", "is not a number", id="spent-text"),
    pytest.param("total_spent", "1e3", "is not a number", id="spent-exponent"),
    pytest.param("total_spent", "9999999999999", "is too large", id="spent-too-large"),
    pytest.param("purchase_count", "-1", "from 0 to", id="purchases-negative"),
    pytest.param("purchase_count", "2.5", "is not a whole number", id="purchases-decimal"),
    pytest.param("exclude_from_segments", "maybe", "is not yes or no", id="exclude-unknown"),
    pytest.param("mailing_groups", "NEWS;" + "X" * 31, "longer than 30", id="list-code-too-long"),
    pytest.param("profile", "CUSTSAT", "is not QUESTIONNAIRE=ANSWER", id="profile-no-equals"),
    pytest.param("profile", "=HIGH", "is not QUESTIONNAIRE=ANSWER", id="profile-no-questionnaire"),
    pytest.param("profile", "CUSTSAT=", "is not QUESTIONNAIRE=ANSWER", id="profile-no-answer"),
    pytest.param("territory", "T" * 31, "longer than 30", id="territory-too-long"),
    pytest.param("company_no", "NOPE", "is not a known company", id="company-missing"),
]


@pytest.mark.parametrize(("column", "value", "reason"), BAD)
def test_a_bad_value_is_one_row_error(sqlite_db: Database, column: str, value: str, reason: str) -> None:
    cells = {"contact_no": "C1", "type": "person", "name": "Ann", column: value}
    header = ",".join(cells)
    row = ",".join(f'"{v}"' if "," in v else v for v in cells.values())
    report = validate_contacts(sqlite_db, csv_bytes(header, row))
    assert (report.rows_total, report.rows_valid, report.rows_rejected) == (1, 0, 1)
    assert len(report.errors) == 1, report.errors
    error = report.errors[0]
    assert (error.line, error.column) == (2, column)
    assert reason in error.reason
    assert error.message.startswith(f"line 2, column {column}: ")


def test_message_reads_like_the_spec(sqlite_db: Database) -> None:
    body = csv_bytes(
        "contact_no,type,name,email", *[f"C{i},person,N{i}," for i in range(12)], "C14,person,Bob,bob@"
    )
    report = validate_contacts(sqlite_db, body)
    assert [e.message for e in report.errors] == ["line 14, column email: 'bob@' is not an e-mail address"]


def test_code_lists_are_trimmed_upper_deduplicated(sqlite_db: Database) -> None:
    body = csv_bytes(
        "contact_no,type,name,mailing_groups,industry_groups,job_responsibilities,profile",
        'C1,person,Ann, news ; promo;;NEWS,retail,it;Sales,"custsat=high; interest = tech ;INTEREST=OUTDOOR"',
    )
    import_contacts(sqlite_db, body)
    assert codes(sqlite_db, "C1") == {
        ("mailing_groups", "NEWS"),
        ("mailing_groups", "PROMO"),
        ("industry_groups", "RETAIL"),
        ("job_responsibilities", "IT"),
        ("job_responsibilities", "SALES"),
    }
    assert answers(sqlite_db, "C1") == {("CUSTSAT", "HIGH"), ("INTEREST", "TECH"), ("INTEREST", "OUTDOOR")}


def test_embedded_code_lists_have_every_iso_code() -> None:
    assert len(COUNTRY_CODES) == 249 and {"FR", "DE", "GB", "US", "AX", "SS"} <= COUNTRY_CODES
    assert len(LANGUAGE_CODES) == 184 and {"fr", "de", "en", "nl", "zh"} <= LANGUAGE_CODES


def test_header_names_are_case_insensitive_trimmed_in_any_order(sqlite_db: Database) -> None:
    body = csv_bytes(" NAME ,Email, Contact_No ,TYPE", "Ann,ann@example.com,C1,person")
    report = import_contacts(sqlite_db, body)
    assert report.rows_valid == 1 and report.unknown_columns == ()
    assert contact(sqlite_db, "C1")["email"] == "ann@example.com"


def test_quoted_values_with_commas_quotes_and_line_breaks(sqlite_db: Database) -> None:
    body = csv_bytes(
        "contact_no,type,name,city",
        'C1,company,"Fabrikam, Inc.",Boston',
        'C2,person,"Grace ""Gigi""\nEvans",Boston',
        "C3,person,Bob,Paris",
        "C4,person,,Paris",
    )
    report = import_contacts(sqlite_db, body)
    assert contact(sqlite_db, "C1")["name"] == "Fabrikam, Inc."
    assert contact(sqlite_db, "C2")["name"] == 'Grace "Gigi"\nEvans'
    # C2 takes lines 3 and 4, so C4 (no name) is on line 6.
    assert [(e.line, e.column) for e in report.errors] == [(6, "name")]


def test_blank_lines_are_skipped_and_lines_still_counted(sqlite_db: Database) -> None:
    body = b"contact_no,type,name\n\nC1,person,Ann\n,,\n\nC2,person,\n"
    report = validate_contacts(sqlite_db, body)
    assert report.rows_total == 2
    assert [(e.line, e.column) for e in report.errors] == [(6, "name")]


def test_ragged_rows_are_rejected_with_their_line(sqlite_db: Database) -> None:
    body = csv_bytes(
        "contact_no,type,name",
        "C1,person,Ann",
        "C2,person",
        'C3,person,"multi\nline"',
        "C4,person,Bob,extra",
        "C5,person,Eve",
        "C6,person,",
    )
    report = import_contacts(sqlite_db, body)
    assert (report.rows_total, report.rows_valid, report.rows_rejected) == (6, 3, 3)
    got = [(e.line, e.column, e.reason) for e in report.errors]
    assert got == [
        (3, "", "has 2 values where the header has 3 columns"),
        (6, "", "has 4 values where the header has 3 columns"),
        (8, "name", "a value is required"),
    ]
    assert report.errors[1].value == "C4,person,Bob,extra"
    assert contact(sqlite_db, "C5")["name"] == "Eve"


def test_duplicate_contact_numbers_reject_every_later_line(sqlite_db: Database) -> None:
    body = csv_bytes(
        "contact_no,type,name", "C1,person,First", "C2,person,Other", "C1,person,Second", "C1,person,Third"
    )
    report = import_contacts(sqlite_db, body)
    assert [(e.line, e.reason) for e in report.errors] == [
        (4, "already appears on line 2"),
        (5, "already appears on line 2"),
    ]
    assert contact(sqlite_db, "C1")["name"] == "First"


def test_the_bad_file_reports_each_row(sqlite_db: Database) -> None:
    report = import_contacts(sqlite_db, DATA / "contacts_bad.csv")
    got = {(e.line, e.column) for e in report.errors}
    assert got == {
        (4, "email"),
        (5, "type"),
        (6, "company_no"),
        (7, "country"),
        (8, "birth_date"),
        (9, "rating"),
        (10, "total_spent"),
        (11, "profile"),
        (12, "contact_no"),
        (13, ""),
        (14, "contact_no"),
    }
    assert (report.rows_total, report.rows_valid, report.rows_rejected) == (13, 2, 11)
    assert contact(sqlite_db, "B002")["org_id"] == contact(sqlite_db, "B001")["id"]


# ----------------------------------------------------------------------------------------------------------------
# Companies and persons


def test_company_rules(db: Database) -> None:
    body = csv_bytes(
        "contact_no,type,company_no,name",
        "P1,person,CO1,Person before its company",
        "CO1,company,,Company",
        "CO2,company,CO1,Company with a company",
        "P2,person,P1,Person of a person",
        "P3,person,CO2,Person of a rejected company",
        "P4,person,,Alone",
    )
    report = import_contacts(db, body)
    assert {(e.line, e.column, e.reason) for e in report.errors} == {
        (4, "company_no", "must be empty for a company"),
        (5, "company_no", "is a person, not a company"),
        (6, "company_no", "is the company on line 4, which is rejected"),
    }
    co1 = contact(db, "CO1")
    assert co1["org_id"] == co1["id"]
    assert contact(db, "P1")["org_id"] == co1["id"]
    assert contact(db, "P4")["org_id"] is None
    # A stored company is a valid target for a later file.
    report = import_contacts(db, csv_bytes("contact_no,type,company_no,name", "P5,person,CO1,Later"))
    assert report.errors == () and contact(db, "P5")["org_id"] == co1["id"]


def test_a_company_with_persons_cannot_become_a_person(db: Database) -> None:
    import_contacts(db, csv_bytes("contact_no,type,company_no,name", "CO1,company,,Co", "P1,person,CO1,Ann"))
    change = csv_bytes("contact_no,type,company_no,name", "CO1,person,,Now a person")
    report = validate_contacts(db, change)
    assert [(e.line, e.column) for e in report.errors] == [(2, "type")]
    assert "still has persons (e.g. P1)" in report.errors[0].reason
    with pytest.raises(ImportRejected, match="none of the 1 rows"):
        import_contacts(db, change)
    assert contact(db, "CO1")["type"] == "company"
    # Once its person moves away in the same file, it can.
    body = csv_bytes("contact_no,type,company_no,name", "CO1,person,,Now a person", "P1,person,,Ann alone")
    report = import_contacts(db, body)
    assert report.errors == ()
    assert contact(db, "CO1")["type"] == "person" and contact(db, "CO1")["org_id"] is None
    assert contact(db, "P1")["org_id"] is None


def test_reimport_updates_every_column_codes_and_answers(db: Database) -> None:
    first = csv_bytes(
        "contact_no,type,company_no,name,email,city,rating,mailing_groups,profile",
        "CO1,company,,Co,,Lyon,5,NEWS,CUSTSAT=HIGH",
        "CO2,company,,Other Co,,,,,",
        "P1,person,CO1,Ann,ann@x.com,Lyon,4,NEWS;PROMO,INTEREST=TECH",
        "P2,person,CO1,Bob,,,,,",
    )
    report = import_contacts(db, first)
    assert (report.inserted, report.updated, report.applied) == (4, 0, True)
    before = {no: contact(db, no)["id"] for no in ("CO1", "CO2", "P1", "P2")}
    second = csv_bytes(
        "contact_no,type,company_no,name,city,mailing_groups,profile",
        "P1,person,CO2,Ann Moved,Paris,EVENTS,CUSTSAT=LOW",
        "CO1,company,,Co Renamed,,,",
        "P3,person,CO1,New,,,",
    )
    report = import_contacts(db, second)
    assert (report.inserted, report.updated) == (1, 2)
    p1 = contact(db, "P1")
    assert p1["id"] == before["P1"]
    # The second file maps no email or rating: those stay as stored.
    assert (p1["name"], p1["city"], p1["email"], p1["rating"], p1["company_no"]) == (
        "Ann Moved", "Paris", "ann@x.com", 4, "CO2",
    )  # fmt: skip
    assert p1["org_id"] == before["CO2"]
    assert codes(db, "P1") == {("mailing_groups", "EVENTS")}
    assert answers(db, "P1") == {("CUSTSAT", "LOW")}
    # CO1's cells for the lists are empty: its stored codes and answers stay.
    assert codes(db, "CO1") == {("mailing_groups", "NEWS")} and answers(db, "CO1") == {("CUSTSAT", "HIGH")}
    assert contact(db, "CO1")["city"] == "Lyon"
    assert contact(db, "CO1")["org_id"] == before["CO1"] and contact(db, "CO1")["name"] == "Co Renamed"
    # P2 was not in the second file: still CO1's.
    assert contact(db, "P2")["org_id"] == before["CO1"]
    assert contact(db, "P3")["org_id"] == before["CO1"]


def test_other_columns_become_custom_fields(db: Database) -> None:
    report = import_contacts(db, DATA / "contacts_good.csv")
    assert report.unknown_columns == () and report.new_fields == ("loyalty_tier",)
    assert "Loyalty Tier → loyalty_tier (new text field)" in report.mapping
    assert report.rows_valid == 6 and report.errors == ()
    with db.read() as conn:
        stored = conn.execute(
            text("SELECT c.contact_no, v.txt FROM custom_values v JOIN contacts c ON c.id = v.contact_id")
        ).all()
    assert dict(stored) == {"CO001": "gold", "CT002": "silver"}
    elodie = contact(db, "CT001")
    assert (elodie["name"], elodie["email_domain"], elodie["exclude_from_segments"]) == (
        "Élodie Martin", "contoso.com", False,
    )  # fmt: skip
    assert contact(db, "CO002")["name"] == "Fabrikam, Inc."
    assert contact(db, "CO002")["post_code"] == "02108"


# ----------------------------------------------------------------------------------------------------------------
# Encodings and sources


@pytest.mark.parametrize(
    ("name", "encoding"),
    [("contacts_good.csv", "utf-8"), ("contacts_bom.csv", "utf-8-sig"), ("contacts_cp1252.csv", "cp1252")],
)
def test_encodings_are_found_and_reported(sqlite_db: Database, name: str, encoding: str) -> None:
    report = import_contacts(sqlite_db, DATA / name)
    assert report.encoding == encoding and report.errors == ()
    if name != "contacts_good.csv":
        assert contact(sqlite_db, "CW001")["name"] == "Société Générale Café"
        assert contact(sqlite_db, "CW002")["name"] == "Zoë Müller-Lüdenscheidt"
        assert contact(sqlite_db, "CW003")["name"] == "François Dœuf – 25€"
        # The BOM is not part of the first column's name.
        assert report.unknown_columns == ()


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda p: p, id="path"),
        pytest.param(lambda p: str(p), id="str"),
        pytest.param(lambda p: p.read_bytes(), id="bytes"),
        pytest.param(lambda p: io.BytesIO(p.read_bytes()), id="binary-file"),
    ],
)
def test_sources(sqlite_db: Database, make: Any) -> None:
    source = make(DATA / "contacts_good.csv")
    assert validate_contacts(sqlite_db, source).rows_valid == 6
    # An uploaded file read once by validate is read again from its start by import.
    assert import_contacts(sqlite_db, source).inserted == 6


def test_a_missing_file_is_a_usage_error(sqlite_db: Database, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="file not found"):
        import_contacts(sqlite_db, tmp_path / "nope.csv")
    with pytest.raises(UsageError, match="is a folder"):
        validate_contacts(sqlite_db, tmp_path)


# ----------------------------------------------------------------------------------------------------------------
# Whole-file problems: refused with one clear message, nothing written.

WHOLE_FILE = [
    pytest.param(b"", "is empty", id="empty"),
    pytest.param(b" \n\r\n \n", "is empty", id="whitespace"),
    pytest.param(b"contact_no,type,name\n", "has a header but no rows", id="header-only"),
    pytest.param(b"contact_no,type,name\n\n,,\n", "has a header but no rows", id="header-and-blank-lines"),
    pytest.param(bytes(range(256)) * 4, "binary", id="binary-garbage"),
    pytest.param(b"PK\x03\x04\x14\x00\x06\x00" + b"x" * 50, "binary", id="broken-xlsx"),
    pytest.param(b"hello world\nthis is not csv\n", "no column for the contact number", id="prose"),
    pytest.param(b"contact_no,type,name,Email,EMAIL\n", "names column 'EMAIL' twice", id="duplicate-column"),
    pytest.param(
        b'contact_no,type,name\nC1,person,"never closed\n', "cannot be read as CSV", id="open-quote"
    ),
]


@pytest.mark.parametrize(("body", "message"), WHOLE_FILE)
def test_whole_file_problems_are_refused(db: Database, body: bytes, message: str) -> None:
    import_contacts(db, csv_bytes("contact_no,type,name", "KEEP,person,Kept"))
    before = snapshot(db)
    for run in (validate_contacts, import_contacts):
        with pytest.raises(ImportRejected, match=message) as caught:
            run(db, body)
        assert "\n" not in str(caught.value)
        assert isinstance(caught.value.report, ImportReport)
    assert snapshot(db) == before


def test_all_rows_invalid_is_refused(db: Database) -> None:
    with pytest.raises(ImportRejected, match="none of the 2 rows") as caught:
        import_contacts(db, csv_bytes("contact_no,type,name", "C1,robot,A", "C2,person,"))
    assert caught.value.report.rows_rejected == 2
    assert snapshot(db)["contacts"] == []


# ----------------------------------------------------------------------------------------------------------------
# Strict or valid-only; atomicity


def test_valid_only_writes_the_valid_rows(db: Database) -> None:
    report = import_contacts(db, DATA / "contacts_bad.csv")
    assert report.applied and report.inserted == 2
    with db.read() as conn:
        assert sorted(conn.execute(select(Contact.contact_no)).scalars()) == ["B001", "B002"]


def test_strict_writes_nothing_and_reports_everything(db: Database) -> None:
    with pytest.raises(ImportRejected, match="11 of 13 rows have errors") as caught:
        import_contacts(db, DATA / "contacts_bad.csv", strict=True)
    report = caught.value.report
    assert isinstance(report, ImportReport) and not report.applied and report.errors_total == 11
    assert snapshot(db)["contacts"] == []
    assert import_contacts(db, DATA / "contacts_good.csv", strict=True).inserted == 6


def test_a_failed_import_changes_nothing_already_stored(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_contacts(db, DATA / "contacts_good.csv")
    import_interactions(db, DATA / "interactions_good.csv")
    before = snapshot(db)
    update = csv_bytes(
        "contact_no,type,company_no,name,mailing_groups,profile",
        "CT001,person,CO002,Changed,VIP,CUSTSAT=LOW",
        "CO001,company,,Changed Co,,",
        "NEW1,person,CO001,New,EVENTS,",
        "BAD,person,,Bad,,CUSTSAT",
    )
    with pytest.raises(ImportRejected):
        import_contacts(db, update, strict=True)
    assert snapshot(db) == before

    # A failure in the middle of writing (after contacts, during the codes) rolls everything back, also with the
    # bulk path that rebuilds SQLite's indexes.
    monkeypatch.setattr(importer, "_BULK_INDEX_ROWS", 1)
    real = importer._insert_rows

    def failing(conn: Any, table: Any, *args: Any, **kwargs: Any) -> None:
        if table.name == "profile_answers":
            raise RuntimeError("disk full")
        real(conn, table, *args, **kwargs)

    monkeypatch.setattr(importer, "_insert_rows", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        import_contacts(db, update)
    assert snapshot(db) == before
    with db.read() as conn:
        names = {ix["name"] for ix in inspect(conn).get_indexes("contacts")}
        if db.dialect == "sqlite":
            # The bulk path writes without per-row reference checks; the pooled connection has them back.
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    assert {"ix_contacts_email", "ix_contacts_org_id", "ix_contacts_company_no"} <= names


def test_errors_are_capped(sqlite_db: Database) -> None:
    rows = [f"C{i},person,Ann,bad-mail-{i}" for i in range(MAX_ERRORS_KEPT + 200)]
    report = validate_contacts(sqlite_db, csv_bytes("contact_no,type,name,email", *rows))
    assert len(report.errors) == MAX_ERRORS_KEPT
    assert report.errors_total == MAX_ERRORS_KEPT + 200 and report.errors_truncated
    assert report.errors[0].line == 2 and report.errors[-1].line == MAX_ERRORS_KEPT + 1


def test_validate_says_what_import_would_do(db: Database) -> None:
    import_contacts(db, csv_bytes("contact_no,type,name", "C1,person,Ann"))
    before = snapshot(db)
    report = validate_contacts(db, csv_bytes("contact_no,type,name", "C1,person,Ann B", "C2,person,Bob"))
    assert (report.inserted, report.updated, report.applied) == (1, 1, False)
    assert snapshot(db) == before


def test_report_helpers(sqlite_db: Database) -> None:
    report = validate_contacts(sqlite_db, DATA / "contacts_bad.csv")
    frame = report.to_frame()
    assert list(frame.columns) == ["line", "column", "value", "reason", "message"]
    assert len(frame) == len(report.errors)
    data = json.loads(json.dumps(report.as_dict()))
    assert data["rows_rejected"] == 11 and data["errors"][0]["line"] == 4
    assert "13 rows read (CSV, ',' separated, UTF-8), 2 valid, 11 rejected" in report.summary()
    assert RowError(3, "", "has 2 values where the header has 3 columns", "a,b").message == (
        "line 3: 'a,b' has 2 values where the header has 3 columns"
    )


def test_progress_is_reported(sqlite_db: Database) -> None:
    seen: list[tuple[int, int, str]] = []
    import_contacts(sqlite_db, DATA / "contacts_good.csv", progress=lambda d, t, s: seen.append((d, t, s)))
    stages = [s for _d, _t, s in seen]
    assert stages[0] == "reading" and "writing contacts" in stages
    assert all(0 <= d <= t for d, t, _s in seen)


# ----------------------------------------------------------------------------------------------------------------
# Interactions


def test_interactions_import(db: Database) -> None:
    import_contacts(db, DATA / "contacts_good.csv")
    report = import_interactions(db, DATA / "interactions_good.csv")
    assert (report.rows_valid, report.inserted, report.errors) == (4, 4, ())
    with db.read() as conn:
        rows = conn.execute(
            select(Contact.contact_no, Interaction.template, Interaction.evaluation, Interaction.salesperson,
                   Interaction.cost, Interaction.duration_min, Interaction.segment_no, Interaction.cancelled)
            .join(Contact, Contact.id == Interaction.contact_id).order_by(Interaction.date)
        ).all()  # fmt: skip
    assert [tuple(r) for r in rows] == [
        ("CT001", "EMAIL", "positive", None, 0.05, None, None, False),
        ("CT001", "CALL", "very_positive", "ANNA", 4.5, 12, None, False),
        ("CO001", "MEETING", "neutral", "ANNA", 120.0, 90, "SEG-001", False),
        ("CT003", "LETTER", None, None, 1.2, None, None, False),
    ]


def test_interaction_rules(db: Database) -> None:
    import_contacts(db, DATA / "contacts_good.csv")
    # Line 9 writes 02/05/2025 among ISO dates: day-first or month-first is the user's call, never a guess.
    with pytest.raises(UsageError, match="choose the date order"):
        validate_interactions(db, DATA / "interactions_bad.csv")
    report = validate_interactions(db, DATA / "interactions_bad.csv", date_format="DMY")
    assert {(e.line, e.column) for e in report.errors} == {
        (3, "contact_no"),
        (4, "date"),
        (5, "template"),
        (6, "evaluation"),
        (7, "cost"),
        (8, "duration_min"),
    }
    assert report.rows_valid == 2
    before = snapshot(db)
    with pytest.raises(ImportRejected, match="6 of 8 rows have errors"):
        import_interactions(db, DATA / "interactions_bad.csv", strict=True, date_format="DMY")
    assert snapshot(db) == before
    assert import_interactions(db, DATA / "interactions_bad.csv", date_format="DMY").inserted == 2


def test_interactions_need_their_required_columns(sqlite_db: Database) -> None:
    with pytest.raises(ImportRejected, match="maps no column to template"):
        import_interactions(sqlite_db, csv_bytes("contact_no,date", "C1,2025-01-01"))


def test_the_bulk_path_gives_every_index_back(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    with db.read() as conn:
        before = {
            t: {ix["name"] for ix in inspect(conn).get_indexes(t)} for t in importer.Base.metadata.tables
        }
    monkeypatch.setattr(importer, "_BULK_INDEX_ROWS", 1)
    assert import_contacts(db, DATA / "contacts_good.csv").inserted == 6
    assert import_interactions(db, DATA / "interactions_good.csv").inserted == 4
    with db.read() as conn:
        after = {
            t: {ix["name"] for ix in inspect(conn).get_indexes(t)} for t in importer.Base.metadata.tables
        }
    assert after == before
    assert contact(db, "CT001")["org_id"] == contact(db, "CO001")["id"]


def test_import_changes_the_data_version_so_previews_see_new_contacts(db) -> None:
    """The in-memory preview snapshot is keyed by the data version; every import must move it."""
    from segcore._engine import ActionRequest, create_segment
    from segcore._filter_text import parse_text
    from segcore._preview import preview_step
    from segcore._snapshot import data_version

    import_contacts(db, b"contact_no,type,name,country\nA1,person,Ann,FR\n")
    create_segment(db, "S1")
    request = ActionRequest("add", parse_text(["country=FR"]))
    assert preview_step(db, "S1", request, backend="memory").counts.added == 1
    with db.read() as conn:
        before = data_version(conn)
    import_contacts(db, b"contact_no,type,name,country\nA2,person,Bob,FR\n")
    with db.read() as conn:
        assert data_version(conn) != before
    assert preview_step(db, "S1", request, backend="memory").counts.added == 2
    import_interactions(db, b"contact_no,date,template\nA1,2026-01-02,EMAIL\n")
    with db.read() as conn:
        assert data_version(conn) != before
