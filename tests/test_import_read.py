"""Import stage 1 (segcore.imports.read): any usual CSV dialect or .xlsx read as text cells with their lines."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import numpy as np
import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segcore._errors import ImportRejected, UsageError
from segcore.imports.read import RawTable, load_bytes, read_table

HEADER = ["Nom", "Prénom", "Ville", "Montant"]
ROWS = [
    ["Dupont", "Élodie", "Besançon", "12 €"],
    ["Müller", "Straße", "Köln", "3,5"],
    ["O'Brien", 'Grace "Gigi"', "Zürich; Bern", "a|b"],
]


def written(rows: list[list[str]], delimiter: str, newline: str = "\n") -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator=newline)
    writer.writerows(rows)
    return buf.getvalue()


def cells(table: RawTable) -> list[list[str]]:
    return table.frame.to_numpy().tolist()


# --------------------------------------------------------------------------------------------------------------------
# Dialects: every separator x encoding x line ending reads back the same table


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "cp1252"])
@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"], ids=["comma", "semicolon", "tab", "pipe"])
def test_every_dialect_reads_back_the_same_cells(delimiter: str, encoding: str, newline: str) -> None:
    data = written([HEADER, *ROWS], delimiter, newline).encode(encoding)
    table = read_table(data)
    assert (table.format, table.delimiter, table.encoding) == ("csv", delimiter, encoding)
    assert table.header == tuple(HEADER)
    assert cells(table) == ROWS
    assert table.lines.dtype == np.int64 and table.lines.tolist() == [2, 3, 4]
    assert table.ragged == 0 and len(table.errors) == 0
    assert (table.sheet, table.sheets) == ("", ())


def test_the_frame_is_text_columns_named_by_position() -> None:
    table = read_table(b"a,b\n1,2\n")
    assert list(table.frame.columns) == ["c0", "c1"]
    assert all(isinstance(v, str) for v in table.frame.to_numpy().ravel())
    assert list(table.errors.columns) == ["line", "column", "reason", "value"]


def test_a_french_excel_file() -> None:
    text = "N° client;Nom;Né le;Total dépensé\r\n42;Lefèvre;31/12/1980;1 234,50\r\n43;Hélène Straße;01/02/2000;12,00 €\r\n"
    table = read_table(text.encode("cp1252"))
    assert table.describe() == "CSV, ';' separated, Windows-1252 (cp1252)"
    assert table.header == ("N° client", "Nom", "Né le", "Total dépensé")
    assert cells(table) == [
        ["42", "Lefèvre", "31/12/1980", "1 234,50"],
        ["43", "Hélène Straße", "01/02/2000", "12,00 €"],
    ]


DESCRIBED = [
    pytest.param(b"a,b\n1,2\n", "CSV, ',' separated, UTF-8", id="utf-8"),
    pytest.param(b"\xef\xbb\xbfa\tb\n1\t2\n", "CSV, tab separated, UTF-8 with BOM", id="bom-tab"),
    pytest.param("a|b\n1|2\n".encode("utf-16"), "CSV, '|' separated, UTF-16", id="utf-16"),
    pytest.param(b"name\nSmith, John\n", "CSV, one column, UTF-8", id="one-column"),
]


@pytest.mark.parametrize(("data", "described"), DESCRIBED)
def test_describe(data: bytes, described: str) -> None:
    assert read_table(data).describe() == described


# --------------------------------------------------------------------------------------------------------------------
# Encoding detection beyond the four common ones

FRENCH = "nom;prénom;ville\nLefèvre;Hélène;Besançon\nMüller;Loïc;Orléans\nGarçon;Zoë;Périgueux\n"
EURO = "nom;prix\nœuvre;12 €\n"
LATIN = "a;b\nÉté;ça\n"
DETECTED = [
    pytest.param(FRENCH, "mac_roman", "mac-roman", id="mac-roman"),
    pytest.param(FRENCH, "cp850", "cp850", id="cp850"),
    pytest.param(EURO, "iso8859_15", "iso8859-15", id="iso8859-15-euro"),
    pytest.param(LATIN, "latin-1", "cp1252", id="latin-1-is-read-as-its-superset-cp1252"),
    pytest.param(FRENCH, "utf-16-le", "utf-16-le", id="utf-16-le-without-bom"),
    pytest.param(FRENCH, "utf-16-be", "utf-16-be", id="utf-16-be-without-bom"),
]


@pytest.mark.parametrize(("text", "written_as", "detected"), DETECTED)
def test_other_encodings_are_detected(text: str, written_as: str, detected: str) -> None:
    table = read_table(text.encode(written_as))
    assert table.encoding == detected
    rows = [line.split(";") for line in text.splitlines()]
    assert table.header == tuple(rows[0])
    assert cells(table) == rows[1:]


def test_given_encoding_and_delimiter_are_used_as_they_are() -> None:
    data = "a;b,c\nça;1,5\n".encode("cp850")
    table = read_table(data, encoding="cp850", delimiter=",")
    assert (table.encoding, table.delimiter) == ("cp850", ",")
    assert table.header == ("a;b", "c") and cells(table) == [["ça;1", "5"]]
    assert read_table(data, encoding="CP850", delimiter=";").header == ("a", "b,c")


def test_a_bad_given_encoding_or_delimiter_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown text encoding 'klingon'"):
        read_table(b"a,b\n1,2\n", encoding="klingon")
    with pytest.raises(UsageError, match="one character"):
        read_table(b"a,b\n1,2\n", delimiter=";;")


# --------------------------------------------------------------------------------------------------------------------
# Lines: quoted line breaks, ragged rows, blank lines


def test_quoted_values_with_delimiters_quotes_and_line_breaks() -> None:
    data = b'id;name;city\n1;"Fabrikam; Inc.";Boston\n2;"Grace ""Gigi""\nEvans";"New\r\nYork"\n3;Bob;Paris\n'
    table = read_table(data)
    assert cells(table) == [
        ["1", "Fabrikam; Inc.", "Boston"],
        ["2", 'Grace "Gigi"\nEvans', "New\r\nYork"],
        ["3", "Bob", "Paris"],
    ]
    # Row 2 takes lines 3 to 5 (one LF in the name, one CRLF in the city), so row 3 is on line 6.
    assert table.lines.tolist() == [2, 3, 6]


def test_ragged_rows_are_reported_at_their_line() -> None:
    data = b'id,type,name\nC1,person,Ann\nC2,person\nC3,person,"multi\nline"\nC4,person,Bob,extra\nC5,person,Eve\n'
    table = read_table(data)
    assert cells(table) == [["C1", "person", "Ann"], ["C3", "person", "multi\nline"], ["C5", "person", "Eve"]]
    assert table.lines.tolist() == [2, 4, 7]
    assert table.ragged == 2
    assert table.errors.to_dict("records") == [
        {
            "line": 3,
            "column": "",
            "reason": "has 2 values where the header has 3 columns",
            "value": "C2,person",
        },
        {
            "line": 6,
            "column": "",
            "reason": "has 4 values where the header has 3 columns",
            "value": "C4,person,Bob,extra",
        },
    ]


def test_blank_lines_are_skipped_and_still_counted() -> None:
    data = b"\r\n\r\nid;name\r\n\r\n1;Ann\r\n;\r\n;;;;\r\n   \r\n2;Bob\r\n\r\n"
    table = read_table(data)
    assert table.header == ("id", "name")
    assert cells(table) == [["1", "Ann"], ["2", "Bob"]]
    assert table.lines.tolist() == [5, 9]
    assert table.ragged == 0  # a line of separators only is blank, not a row of the wrong width


def test_old_mac_line_endings() -> None:
    table = read_table(b'a,b\r1,"x\ry"\r2,3\r')
    assert cells(table) == [["1", "x\ry"], ["2", "3"]]
    assert table.lines.tolist() == [2, 4]


def test_values_are_trimmed_and_the_formula_guard_dropped() -> None:
    data = b"a , b,c\n  x  ,'=SUM(A1),'+33 1 23\n'-5,'@me,'plain\n"
    table = read_table(data)
    assert table.header == ("a", "b", "c")
    assert cells(table) == [["x", "=SUM(A1)", "+33 1 23"], ["-5", "@me", "'plain"]]


def test_empty_header_cells_are_named_by_position() -> None:
    table = read_table(b"id,,name,\n1,x,Ann,y\n")
    assert table.header == ("id", "column 2", "name", "column 4")
    assert cells(table) == [["1", "x", "Ann", "y"]]


TRAILING = [
    pytest.param(b"a;b;c\n1;2;3;\n4;5;6;\n", [], id="rows-end-with-a-separator"),
    pytest.param(b"a;b;c;\n1;2;3\n4;5;6\n", [], id="header-ends-with-a-separator"),
    pytest.param(b"a;b;c;;\n1;2;3;;\n4;5;6;;\n", [], id="every-line-ends-with-separators"),
    pytest.param(b"a;b;c\n1;2;3;\n4;5;6\n7;8;9;\n", [], id="most-rows-end-with-a-separator"),
    pytest.param(
        b"a;b;c\n1;2;3;\n4;5;6;x\n7;8;9;\n",
        [(3, "has 4 values where the header has 3 columns", "4;5;6;x")],
        id="a-value-past-the-header-is-too-wide",
    ),
]


@pytest.mark.parametrize(("data", "errors"), TRAILING)
def test_trailing_separators_are_not_columns(data: bytes, errors: list[tuple[int, str, str]]) -> None:
    table = read_table(data)
    assert table.header == ("a", "b", "c")
    kept = [row for row in [["1", "2", "3"], ["4", "5", "6"], ["7", "8", "9"]] if row[0].encode() in data]
    assert cells(table) == [r for r in kept if not errors or r[0] != "4"]
    assert table.errors[["line", "reason", "value"]].to_records(index=False).tolist() == errors
    assert table.ragged == len(errors)


def test_a_one_column_file_keeps_its_commas() -> None:
    table = read_table(b"name\nSmith, John\nDoe | Jane\n")
    assert (table.header, table.delimiter) == (("name",), ",")
    assert cells(table) == [["Smith, John"], ["Doe | Jane"]]


# --------------------------------------------------------------------------------------------------------------------
# Whole-file problems

REFUSED = [
    pytest.param(b"", "is empty", id="empty"),
    pytest.param(b" \n\r\n \n", "is empty", id="whitespace"),
    pytest.param(" \n \n".encode("utf-16"), "is empty", id="utf-16-whitespace"),
    pytest.param(b"id,type,name\n", "has a header but no rows", id="header-only"),
    pytest.param(b"id,type,name\n\n,,\n", "has a header but no rows", id="header-and-blank-lines"),
    pytest.param(
        b"id,Email,name,EMAIL \n1,a,b,c\n", r"names column 'EMAIL' twice \(columns 2 and 4\)", id="dup"
    ),
    pytest.param(b'id,type,name\nC1,person,"never closed\nC2,x,y\n', "never ends", id="open-quote"),
    pytest.param(b'id,"type\nC1,x\n', "never ends", id="open-quote-in-header"),
    pytest.param(b"x" * (2 << 20), "longer than a header can be", id="no-line-break"),
    pytest.param(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, r"old Excel \.xls", id="ole2-xls"),
    pytest.param(b"%PDF-1.7\n%\xe2\xe3\n1 0 obj\n", r"old Excel \.xls \(or binary\)", id="pdf"),
    pytest.param(b"PK\x03\x04\x14\x00\x06\x00" + b"x" * 50, r"save it as \.xlsx or CSV", id="zip-not-xlsx"),
    pytest.param(bytes(range(256)) * 4, "binary", id="binary-garbage"),
    pytest.param(
        b"a,b\n" + bytes(range(128, 256)) * 3 + b"\n", r"known encoding \(byte 6 fits none", id="no-enc"
    ),
]


@pytest.mark.parametrize(("data", "message"), REFUSED)
def test_whole_file_problems_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(ImportRejected, match=message) as caught:
        read_table(data)
    assert "\n" not in str(caught.value)


def test_the_kind_names_the_file_in_messages() -> None:
    with pytest.raises(ImportRejected, match="^the interactions file is empty$"):
        read_table(b"", kind="interactions")


def test_a_given_encoding_that_does_not_fit_is_refused_with_the_byte() -> None:
    with pytest.raises(ImportRejected, match=r"not text in UTF-8 \(byte 5 does not fit\)"):
        read_table("a,b\nçà,1\n".encode("cp1252"), encoding="utf-8")


# --------------------------------------------------------------------------------------------------------------------
# Sources


def test_sources_path_bytes_and_files(tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_bytes(b"a;b\n1;2\n")
    upload = io.BytesIO(path.read_bytes())
    upload.read()  # read once already, as an upload validated before the import
    for source in (path, str(path), path.read_bytes(), bytearray(path.read_bytes()), upload):
        assert cells(read_table(source)) == [["1", "2"]]
    assert load_bytes(io.StringIO("a,b\n")) == b"a,b\n"
    with pytest.raises(UsageError, match="file not found"):
        read_table(tmp_path / "missing.csv")
    with pytest.raises(UsageError, match="is a folder"):
        read_table(tmp_path)
    with pytest.raises(UsageError, match="needs a file path"):
        read_table(42)


# --------------------------------------------------------------------------------------------------------------------
# Excel


def workbook() -> bytes:
    wb = openpyxl.Workbook()
    first = wb.active
    assert first is not None
    first.title = "Read me"
    first.append(["Exported", "2024-01-01"])
    first.append(["ignored", "too"])
    ws = wb.create_sheet("Contacts")
    ws.append([])
    ws.append(["Name", "Born", None, "Count", "Spent", "Opt-in", "Note", None, None])
    ws.append(["  Ann  ", dt.date(1980, 12, 31), "x", 12, 1234.5, True, "'=1+1"])
    ws.append([None, None, None])
    ws.append(["Bob", dt.datetime(2001, 2, 3, 14, 5), None, 7.0, 0.00001, False, None])
    ws.append(["Eve", None, None, None, 1e20, None, None, None, "too wide"])
    ws.append(["Zoë", dt.datetime(2020, 1, 1), None, -3, -2.25, None, "multi\nline"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


@pytest.mark.parametrize("sheet", ["Contacts", 1, " contacts "], ids=["by-name", "by-index", "loose-name"])
def test_an_excel_sheet_reads_as_a_person_sees_it(sheet: str | int) -> None:
    table = read_table(workbook(), sheet=sheet)
    assert (table.format, table.encoding, table.delimiter) == ("xlsx", "", "")
    assert (table.sheet, table.sheets) == ("Contacts", ("Read me", "Contacts"))
    assert table.describe() == "Excel sheet 'Contacts'"
    assert table.header == ("Name", "Born", "column 3", "Count", "Spent", "Opt-in", "Note")
    assert cells(table) == [
        ["Ann", "1980-12-31", "x", "12", "1234.5", "true", "=1+1"],
        ["Bob", "2001-02-03", "", "7", "0.00001", "false", ""],
        ["Zoë", "2020-01-01", "", "-3", "-2.25", "", "multi\nline"],
    ]
    assert table.lines.tolist() == [3, 5, 7]
    assert table.ragged == 1
    assert table.errors[["line", "reason"]].to_dict("records") == [
        {"line": 6, "reason": "has 9 values where the header has 7 columns"}
    ]


def test_the_first_sheet_is_read_by_default() -> None:
    table = read_table(workbook())
    assert table.sheet == "Read me" and table.header == ("Exported", "2024-01-01")
    assert cells(table) == [["ignored", "too"]] and table.lines.tolist() == [2]


@pytest.mark.parametrize("sheet", ["Nope", 2, -1])
def test_an_unknown_sheet_is_a_usage_error_that_lists_the_sheets(sheet: str | int) -> None:
    with pytest.raises(UsageError, match="its sheets are 'Read me', 'Contacts'"):
        read_table(workbook(), sheet=sheet)


def test_a_sheet_without_rows_is_refused() -> None:
    wb = openpyxl.Workbook()
    wb.create_sheet("Header only").append(["a", "b"])
    buf = io.BytesIO()
    wb.save(buf)
    with pytest.raises(ImportRejected, match="is empty"):
        read_table(buf.getvalue())
    with pytest.raises(ImportRejected, match="has a header but no rows"):
        read_table(buf.getvalue(), sheet="Header only")


# --------------------------------------------------------------------------------------------------------------------
# Property: whatever csv.writer writes, in any of the four dialects and encodings, comes back cell for cell

LETTERS = "abcxyzABCXYZéèàçüößÉÀ€ñ0189"
BEYOND_CP1252 = "łőĞ中😀"


@st.composite
def written_tables(draw: st.DrawFn) -> tuple[bytes, str, str, list[str], list[list[str]], list[int]]:
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    letters = LETTERS if encoding == "cp1252" else LETTERS + BEYOND_CP1252
    # csv.writer quotes a value holding a character of its line terminator only: break lines inside values with one.
    inner = newline[-1]
    # Values are trimmed on reading: draw none with spaces or line breaks at either end.
    cell = st.text(alphabet=letters + ' ,"' + inner + delimiter, max_size=10).map(str.strip)
    header = draw(
        st.lists(
            st.text(alphabet=letters + " ", min_size=1, max_size=8).map(str.strip).filter(bool),
            min_size=1,
            max_size=5,
            unique_by=str.lower,
        )
    )
    rows = draw(st.lists(st.lists(cell, min_size=len(header), max_size=len(header)), min_size=1, max_size=8))
    data = written([header, *rows], delimiter, newline).encode(encoding)
    kept, lines, line = [], [], 2
    for row in rows:
        if any(row):  # a row of empty values is a blank line
            kept.append(row)
            lines.append(line)
        line += 1 + sum(v.count(inner) for v in row)
    return data, delimiter, encoding, header, kept, lines


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(written_tables())
def test_property_written_tables_read_back_cell_for_cell(
    case: tuple[bytes, str, str, list[str], list[list[str]], list[int]],
) -> None:
    data, delimiter, encoding, header, rows, lines = case
    if not rows:
        with pytest.raises(ImportRejected, match="has a header but no rows"):
            read_table(data, delimiter=None, encoding=None)
        return
    table = read_table(data, delimiter=None, encoding=None)
    assert table.header == tuple(header)
    assert cells(table) == rows
    assert table.lines.tolist() == lines
    assert table.ragged == 0
    if len(header) > 1:
        assert table.delimiter == delimiter
    ascii_only = data.decode(encoding).isascii()
    assert table.encoding == ("utf-8" if encoding == "cp1252" and ascii_only else encoding)
