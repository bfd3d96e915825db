"""The command line: exit codes 0/1/2, one-line errors on standard error, JSON that parses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

import segcore._cli_import as _cli_import
import segcore.cli as cli
from segcore import Database
from segcore._models import Contact, Interaction
from segcore.cli import main

DATA = Path(__file__).parent / "data"


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def count(url: str, table: type = Contact) -> int:
    db = Database.open(url)
    try:
        with db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())
    finally:
        db.dispose()


def assert_one_line_error(err: str, fragment: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and fragment in lines[0]
    assert "Traceback" not in err


def test_init_creates_the_schema(capsys: pytest.CaptureFixture[str], url: str) -> None:
    code, out, err = run(capsys, "--db", url, "init")
    assert (code, err) == (0, "")
    assert "database ready" in out and "schema version" in out
    code, out, _ = run(capsys, "--db", url, "--json", "init")
    data = json.loads(out)
    assert code == 0 and data["demo"] is None and data["schema_version"] >= 1


def test_init_with_demo_refuses_a_database_with_contacts(
    capsys: pytest.CaptureFixture[str], url: str
) -> None:
    code, out, _ = run(
        capsys, "--db", url, "--json", "init", "--demo", "150", "--seed", "3", "--today", "2025-06-30"
    )
    data = json.loads(out)
    assert code == 0 and data["demo"]["contacts"] == 150 and data["demo"]["today"] == "2025-06-30"
    assert count(url) == 150 and count(url, Interaction) == data["demo"]["interactions"]
    code, out, err = run(capsys, "--db", url, "init", "--demo", "150")
    assert code == 1 and out == ""
    assert_one_line_error(err, "already holds 150 contacts")
    code, out, err = run(capsys, "--db", url, "init", "--demo", "150", "--seed", "3", "--force")
    assert code == 0 and "150 updated" in out and count(url) == 150


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        pytest.param(["init", "--demo", "0"], "1 to 1,000,000", id="demo-zero"),
        pytest.param(["init", "--demo", "lots"], "is not a whole number", id="demo-text"),
        pytest.param(["init", "--today", "30/06/2025"], "YYYY-MM-DD", id="bad-date"),
        pytest.param(["import", "contacts"], "required", id="no-file"),
        pytest.param(["import", "people", "x.csv"], "invalid choice", id="unknown-what"),
        pytest.param(["import"], "required", id="no-what"),
        pytest.param([], "no command", id="no-command"),
        pytest.param(["frobnicate"], "invalid choice", id="unknown-command"),
        pytest.param(["init", "--bogus"], "unrecognized arguments", id="unknown-option"),
    ],
)
def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], url: str, argv: list[str], fragment: str
) -> None:
    code, out, err = run(capsys, "--db", url, *argv)
    assert code == 2 and out == ""
    assert_one_line_error(err, fragment)


def test_a_missing_file_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path
) -> None:
    code, out, err = run(capsys, "--db", url, "import", "contacts", str(tmp_path / "nope.csv"))
    assert code == 2 and out == ""
    assert_one_line_error(err, "file not found")
    # The database was not even created for it.
    assert not (tmp_path / "cli.db").exists()


def test_a_bad_database_url_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run(capsys, "--db", "nonsense://", "init")
    assert code == 2
    assert_one_line_error(err, "")


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "init" in capsys.readouterr().out
    assert main(["init", "--help"]) == 0
    assert "--force" in capsys.readouterr().out


def test_import_contacts_text_and_json(capsys: pytest.CaptureFixture[str], url: str) -> None:
    code, out, err = run(capsys, "--db", url, "import", "contacts", str(DATA / "contacts_good.csv"))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("contacts: 6 rows read (CSV, ',' separated, UTF-8), 6 valid, 0 rejected; 6 inserted")
    # The mapping used is printed, one line a column.
    assert "mapping:" in lines and "  Loyalty Tier → loyalty_tier (new text field)" in lines
    code, out, err = run(capsys, "--db", url, "--json", "import", "contacts", str(DATA / "contacts_good.csv"))
    report = json.loads(out)
    assert code == 0 and (report["inserted"], report["updated"], report["applied"]) == (0, 6, True)
    code, out, err = run(
        capsys, "--db", url, "--json", "import", "interactions", str(DATA / "interactions_good.csv")
    )
    assert code == 0 and json.loads(out)["inserted"] == 4 and count(url, Interaction) == 4


def test_import_with_errors_imports_the_valid_rows(capsys: pytest.CaptureFixture[str], url: str) -> None:
    code, out, err = run(capsys, "--db", url, "import", "contacts", str(DATA / "contacts_bad.csv"))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert "2 valid, 11 rejected; 2 inserted" in lines[0]
    assert "  line 4, column email: 'bob@' is not an e-mail address" in lines
    assert len(lines) - lines.index("rejected rows:") - 1 == 11 and count(url) == 2


def test_strict_import_with_errors_is_refused(capsys: pytest.CaptureFixture[str], url: str) -> None:
    path = str(DATA / "contacts_bad.csv")
    code, out, err = run(capsys, "--db", url, "import", "contacts", path, "--strict")
    assert code == 1
    assert_one_line_error(err, "nothing imported: 11 of 13 rows have errors")
    assert "line 5, column type" in out and count(url) == 0
    code, out, err = run(capsys, "--db", url, "--json", "import", "contacts", path, "--strict")
    report = json.loads(out)
    assert code == 1 and report["applied"] is False and report["errors_total"] == 11
    assert_one_line_error(err, "strict")


def test_nothing_valid_is_refused(capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("contact_no,type,name\nC1,robot,Ann\n", encoding="utf-8")
    code, _out, err = run(capsys, "--db", url, "import", "contacts", str(path))
    assert code == 1
    assert_one_line_error(err, "none of the 1 rows")


def test_a_file_that_is_not_csv_is_refused(
    capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path
) -> None:
    path = tmp_path / "photo.csv"
    path.write_bytes(bytes(range(256)) * 8)
    code, out, err = run(capsys, "--db", url, "--json", "import", "contacts", str(path))
    assert code == 1 and out == ""
    assert_one_line_error(err, "binary")


def test_long_text_reports_are_capped(capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path) -> None:
    path = tmp_path / "many.csv"
    rows = "".join(f"C{i},person,Ann,bad{i}\n" for i in range(60))
    path.write_text("contact_no,type,name,email\nOK,person,Fine,\n" + rows, encoding="utf-8")
    code, out, _err = run(capsys, "--db", url, "import", "contacts", str(path))
    lines = out.splitlines()
    assert code == 0 and len(lines) - lines.index("rejected rows:") - 1 == cli.TEXT_ERROR_LINES + 1
    assert lines[-1].startswith("  ... and 40 more problems")


def test_progress_goes_to_stderr_not_to_json(
    capsys: pytest.CaptureFixture[str], url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_cli_import, "PROGRESS_MIN_ROWS", 1)
    code, out, err = run(capsys, "--db", url, "--json", "import", "contacts", str(DATA / "contacts_good.csv"))
    assert code == 0 and json.loads(out)["inserted"] == 6
    assert "contacts: writing contacts 100%" in err and "Traceback" not in err


def test_database_url_from_the_environment(
    capsys: pytest.CaptureFixture[str], url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGCORE_DATABASE_URL", url)
    code, out, _err = run(capsys, "--json", "import", "contacts", str(DATA / "contacts_good.csv"))
    assert code == 0 and count(url) == 6


def test_unexpected_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("something broke\nbadly")

    import segcore._cli_import as cli_import

    monkeypatch.setattr(cli_import, "run_import", boom)
    monkeypatch.delenv("SEGCORE_DEBUG", raising=False)
    code, _out, err = run(capsys, "--db", url, "import", "contacts", str(DATA / "contacts_good.csv"))
    assert code == 1
    assert_one_line_error(err, "unexpected RuntimeError: something broke badly")
