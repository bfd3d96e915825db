"""The lifecycle commands: campaign, segment log / cancel-log / export / submit / withdraw / approve / reject / history.

Exit codes 0/1/2 with one-line errors, --json output, and exports whose formula-looking cells read back neutralised.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select, update

from segcore._db import Database
from segcore._lifecycle import logged_members
from segcore._models import Interaction, LoggedSegmentMember, Setting
from segcore.cli import main
from tests.factories import add_contacts, person

DANGEROUS = ["=SUM(A1)", "+1", "-2", "@x", "\tTab", "\rCR"]


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    db = Database.open(url)
    # Straight into the table: the importer trims values, and these must keep their leading tab and CR.
    rows = [person(f"D{i}", name=name, city=name) for i, name in enumerate(DANGEROUS)]
    rows += [person(f"P{i:02d}", country="FR") for i in range(1, 15)]
    add_contacts(db, rows)
    with db.write() as conn:
        conn.execute(update(Setting.__table__).where(Setting.key == "minimum_segment_size").values(value=5))
    db.dispose()
    yield url


def run(capsys: pytest.CaptureFixture[str], url: str, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["--db", url, *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def ok(capsys: pytest.CaptureFixture[str], url: str, *argv: str) -> str:
    code, out, err = run(capsys, url, *argv)
    assert code == 0, err
    return out


def as_json(capsys: pytest.CaptureFixture[str], url: str, *argv: str) -> Any:
    return json.loads(ok(capsys, url, "--json", *argv))


def table_count(url: str, table: Any, *where: Any) -> int:
    db = Database.open(url)
    try:
        with db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())
    finally:
        db.dispose()


def make_segment(capsys: pytest.CaptureFixture[str], url: str, no: str = "S1", where: str = "country=FR") -> None:
    ok(capsys, url, "segment", "create", no, "--description", "Spring mailing")
    ok(capsys, url, "segment", "add", no, "--where", where)


def test_campaign_create_and_list(capsys: pytest.CaptureFixture[str], url: str) -> None:
    out = ok(capsys, url, "campaign", "create", "C1", "--description", "Spring", "--start", "2024-03-01",
             "--end", "2024-04-30", "--status", "active")
    assert "created campaign C1" in out
    ok(capsys, url, "segment", "create", "S1", "--description", "x", "--campaign", "C1")
    data = as_json(capsys, url, "campaign", "list")
    assert data == [{
        "no": "C1", "description": "Spring", "start_date": "2024-03-01", "end_date": "2024-04-30",
        "status": "active", "created_at": data[0]["created_at"], "segment_count": 1, "logged_count": 0,
    }]
    out = ok(capsys, url, "campaign", "list")
    assert "C1" in out and "active" in out and "Spring" in out


def test_campaign_update(capsys: pytest.CaptureFixture[str], url: str) -> None:
    ok(capsys, url, "campaign", "create", "C1", "--description", "Spring", "--start", "2024-03-01")
    out = ok(capsys, url, "campaign", "update", "C1", "--status", "active", "--end", "2024-04-30")
    assert "updated campaign C1: active, 2024-03-01 to 2024-04-30" in out
    data = as_json(capsys, url, "campaign", "update", "C1", "--start", "", "--description", "Spring sale")
    assert (data["start_date"], data["end_date"], data["description"]) == (None, "2024-04-30", "Spring sale")
    code, _, err = run(capsys, url, "campaign", "update", "C1", "--start", "2024-05-01")
    assert code == 2 and err.count("\n") == 1 and "before it starts" in err
    code, _, err = run(capsys, url, "campaign", "update", "NOPE", "--status", "active")
    assert code == 1 and "no campaign" in err


def test_settings_show_and_set(capsys: pytest.CaptureFixture[str], url: str) -> None:
    assert as_json(capsys, url, "settings") == {
        "minimum_segment_size": 5, "preview_memory_max_contacts": 10_000_000, "log_requires_approval": 0,
        "four_eyes": 1, "lockout_failures": 5, "lockout_minutes": 15, "session_idle_minutes": 60}
    assert "minimum_segment_size = 20" in ok(capsys, url, "settings", "set", "minimum_segment_size", "20")
    out = ok(capsys, url, "settings", "show")
    assert "minimum_segment_size" in out and " 20 " in out and "flagged small" in out
    make_segment(capsys, url)  # 14 French contacts: now under the minimum
    code, _, err = run(capsys, url, "segment", "export", "S1", str(Path(url.removeprefix("sqlite:///")).parent / "x.csv"))
    assert code == 1 and "fewer than the minimum of 20" in err
    for bad, fragment in (("0", "between 1 and"), ("lots", "whole number")):
        code, _, err = run(capsys, url, "settings", "set", "minimum_segment_size", bad)
        assert code == 2 and err.startswith("error: ") and fragment in err and err.count("\n") == 1
    code, _, err = run(capsys, url, "settings", "set", "colour", "3")
    assert code == 2 and "invalid choice" in err
    assert as_json(capsys, url, "settings")["minimum_segment_size"] == 20


def test_log_can_require_approval(capsys: pytest.CaptureFixture[str], url: str) -> None:
    ok(capsys, url, "settings", "set", "log_requires_approval", "yes")
    make_segment(capsys, url)
    code, _, err = run(capsys, url, "segment", "log", "S1", "--template", "EMAIL")
    assert code == 1 and "needs a manager's approval" in err and err.count("\n") == 1
    assert table_count(url, Interaction) == 0
    ok(capsys, url, "segment", "submit", "S1")
    ok(capsys, url, "segment", "approve", "S1")
    assert "14" in ok(capsys, url, "segment", "log", "S1", "--template", "EMAIL")
    assert table_count(url, Interaction) == 14


def test_segment_update_sends_an_approved_segment_back_to_draft(capsys: pytest.CaptureFixture[str], url: str) -> None:
    ok(capsys, url, "campaign", "create", "C1")
    make_segment(capsys, url)
    ok(capsys, url, "segment", "submit", "S1")
    ok(capsys, url, "segment", "approve", "S1")
    assert "nothing changed" in ok(capsys, url, "segment", "update", "S1", "--description", "Spring mailing")
    data = as_json(capsys, url, "segment", "update", "S1", "--campaign", "C1")
    assert data == {"segment": "S1", "description": "Spring mailing", "campaign": "C1", "status": "draft"}
    code, _, err = run(capsys, url, "segment", "update", "S1")
    assert code == 2 and "nothing to change" in err
    code, _, err = run(capsys, url, "segment", "update", "S1", "--campaign", "NOPE")
    assert code == 1 and "NOPE" in err and err.count("\n") == 1


def test_review_flow_and_history(capsys: pytest.CaptureFixture[str], url: str) -> None:
    make_segment(capsys, url)
    assert "now submitted" in ok(capsys, url, "segment", "submit", "S1", "--comment", "please check")
    data = as_json(capsys, url, "segment", "reject", "S1", "--comment", "too broad")
    assert (data["status"], data["comment"]) == ("rejected", "too broad")
    ok(capsys, url, "segment", "submit", "S1")
    assert as_json(capsys, url, "segment", "approve", "S1")["status"] == "approved"
    assert as_json(capsys, url, "segment", "withdraw", "S1")["status"] == "draft"
    history = as_json(capsys, url, "segment", "history", "S1")
    assert [(h["from"], h["to"], h["comment"]) for h in history] == [
        ("draft", "submitted", "please check"),
        ("submitted", "rejected", "too broad"),
        ("rejected", "submitted", None),
        ("submitted", "approved", None),
        ("approved", "draft", None),
    ]
    out = ok(capsys, url, "segment", "history", "S1")
    assert len(out.strip().splitlines()) == 5 and "submitted -> rejected" in out and "too broad" in out


def test_log_with_holdout_and_follow_up(capsys: pytest.CaptureFixture[str], url: str) -> None:
    ok(capsys, url, "campaign", "create", "C1")
    ok(capsys, url, "segment", "create", "S1", "--description", "Spring mailing", "--campaign", "C1")
    ok(capsys, url, "segment", "add", "S1", "--where", "country=FR")
    out = ok(capsys, url, "segment", "log", "S1", "--template", "email", "--date", "2024-05-02",
             "--holdout", "25", "--seed", "7", "--follow-up")
    assert "10 interactions" in out and "4 members held out" in out and "seed 7" in out and "S1-FU" in out
    assert table_count(url, Interaction.__table__) == 10
    assert table_count(url, LoggedSegmentMember.__table__, LoggedSegmentMember.holdout.is_(True)) == 4
    show = as_json(capsys, url, "segment", "show", "S1")
    assert show["status"] == "logged" and show["small"] is False
    logged = show["logged"]
    assert (logged["template"], logged["date"], logged["member_count"], logged["contacted_count"]) == (
        "EMAIL", "2024-05-02", 14, 10,
    )
    assert (logged["holdout_seed"], logged["follow_up_segment_no"], logged["campaign_no"]) == (7, "S1-FU", "C1")
    assert "logged as EMAIL on 2024-05-02" in ok(capsys, url, "segment", "show", "S1")
    # The follow-up takes the 10 contacted members: the control group stays out of the next mailing too.
    follow = ok(capsys, url, "segment", "members", "S1-FU").split()
    held = {r["contact_no"] for r in _logged_members(url, "S1") if r["holdout"]}
    assert len(follow) == 10 and len(held) == 4 and not held & set(follow)
    [step] = as_json(capsys, url, "segment", "show", "S1-FU")["log"]
    assert step["description"] == "treated members of S1 (control group of 4 left out)"
    # Read-only now, and logged once.
    code, _, err = run(capsys, url, "segment", "add", "S1", "--where", "country=FR")
    assert code == 1 and "logged" in err
    code, _, err = run(capsys, url, "segment", "log", "S1", "--template", "EMAIL")
    assert code == 1 and "logged already" in err
    data = as_json(capsys, url, "segment", "cancel-log", "S1")
    assert data["cancelled"] is True
    assert table_count(url, Interaction.__table__, Interaction.cancelled.is_(True)) == 10
    code, _, err = run(capsys, url, "segment", "cancel-log", "S1")
    assert code == 1 and "cancelled already" in err


def _logged_members(url: str, no: str) -> list[dict[str, Any]]:
    db = Database.open(url)
    try:
        return logged_members(db, no, limit=1000)[0]
    finally:
        db.dispose()


def test_log_and_cancel_texts_count_in_words(capsys: pytest.CaptureFixture[str], url: str) -> None:
    make_segment(capsys, url, "S1", "contact_no=P01|P02|P03|P04|P05|P06")
    out = ok(capsys, url, "segment", "log", "S1", "--template", "EMAIL", "--holdout", "10", "--seed", "1")
    assert "5 interactions, 1 member held out" in out and "(s)" not in out
    out = ok(capsys, url, "segment", "cancel-log", "S1")
    assert "5 interactions marked cancelled" in out and "(s)" not in out


def test_step_texts_count_in_words(capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path) -> None:
    ok(capsys, url, "segment", "create", "S1", "--description", "one")
    out = ok(capsys, url, "segment", "add", "S1", "--where", "contact_no=P01")
    assert out.strip() == "add on S1: step 1, +1 / -0, 1 member"
    assert "saved 1 step of S1 as criteria ONE" in ok(capsys, url, "criteria", "save", "S1", "one")
    emails = tmp_path / "emails.txt"
    emails.write_text("nobody@example.org\n")
    out = ok(capsys, url, "segment", "add-emails", "S1", str(emails))
    assert "1 address matched no contact" in out and "(es)" not in out
    assert ok(capsys, url, "segment", "undo", "S1").strip() == "undid step 2 (add_emails) on S1: 1 member"


def test_log_without_seed_prints_the_drawn_seed(capsys: pytest.CaptureFixture[str], url: str) -> None:
    make_segment(capsys, url)
    data = as_json(capsys, url, "segment", "log", "S1", "--template", "CALL", "--holdout", "10%")
    assert isinstance(data["holdout_seed"], int) and data["holdout_count"] == 1 and data["holdout_pct"] == 10.0


@pytest.mark.parametrize(
    ("argv", "exit_code", "fragment"),
    [
        pytest.param(["segment", "log", "S1"], 2, "--template", id="no-template"),
        pytest.param(["segment", "log", "S1", "--template", "E MAIL"], 2, "template", id="bad-template"),
        pytest.param(["segment", "log", "S1", "--template", "X", "--date", "2/5/24"], 2, "YYYY-MM-DD",
                     id="bad-date"),
        pytest.param(["segment", "log", "S1", "--template", "X", "--seed", "3"], 2, "--holdout", id="seed-alone"),
        pytest.param(["segment", "log", "S1", "--template", "X", "--holdout", "100"], 2, "below 100",
                     id="holdout-100"),
        pytest.param(["segment", "log", "S1", "--template", "X", "--holdout", "abc"], 2, "percentage",
                     id="holdout-text"),
        pytest.param(["segment", "log", "S1", "--template", "X", "--follow-up-no", "F"], 2, "--follow-up",
                     id="follow-up-no-alone"),
        pytest.param(["segment", "log", "S1", "--template", "X", "--follow-up", "--follow-up-no", "S1"], 1,
                     "already exists", id="follow-up-taken"),
        pytest.param(["segment", "log", "S2", "--template", "X"], 1, "fewer than the minimum", id="small"),
        pytest.param(["segment", "log", "NOPE", "--template", "X"], 1, "NOPE", id="unknown-segment"),
        pytest.param(["segment", "reject", "S1"], 2, "--comment", id="reject-without-comment"),
        pytest.param(["segment", "approve", "S1"], 1, "is draft: submit it first", id="approve-draft"),
        pytest.param(["segment", "withdraw", "S1"], 1, "draft already", id="withdraw-draft"),
        pytest.param(["segment", "cancel-log", "S1"], 1, "not logged", id="cancel-unlogged"),
        pytest.param(["campaign", "create", "C1", "--start", "2024-05-01", "--end", "2024-04-01"], 2,
                     "before it starts", id="campaign-dates"),
        pytest.param(["campaign", "create", "C1", "--status", "open"], 2, "open", id="campaign-status"),
        pytest.param(["campaign", "create", "bad no"], 2, "not valid", id="campaign-number"),
    ],
)
def test_errors_are_one_line_with_exit_codes(
    capsys: pytest.CaptureFixture[str], url: str, argv: list[str], exit_code: int, fragment: str
) -> None:
    make_segment(capsys, url)
    make_segment(capsys, url, "S2", "contact_no=P01")
    code, out, err = run(capsys, url, *argv)
    assert code == exit_code
    lines = err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in err
    assert table_count(url, Interaction.__table__) == 0  # nothing logged


def test_duplicate_campaign_is_refused(capsys: pytest.CaptureFixture[str], url: str) -> None:
    ok(capsys, url, "campaign", "create", "C1")
    code, _, err = run(capsys, url, "campaign", "create", "C1")
    assert code == 1 and "already exists" in err


# ------------------------------------------------------------------------------------------------ export


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline="")))


def read_xlsx(path: Path) -> list[dict[str, Any]]:
    ws = load_workbook(path, read_only=True).active
    assert ws is not None
    rows = list(ws.iter_rows(values_only=True))
    header = [str(h) for h in rows[0]]
    return [dict(zip(header, r, strict=True)) for r in rows[1:]]


def _same(value: str) -> str:
    # openpyxl's XML writer may turn a stored CR into LF; the leading quote is what neutralises it.
    return value.replace("\r", "\n")


@pytest.mark.parametrize(("ext", "reader"), [("csv", read_csv), ("xlsx", read_xlsx)])
def test_export_neutralises_formulas(
    capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path, ext: str, reader: Any
) -> None:
    make_segment(capsys, url, "S1", "contact_no=D*")
    target = tmp_path / f"members.{ext}"
    data = as_json(capsys, url, "segment", "export", "S1", str(target))
    assert (data["members"], data["format"]) == (6, ext)
    rows = {r["contact_no"]: r for r in reader(target)}
    assert sorted(rows) == [f"D{i}" for i in range(6)]
    # CSV guards with a leading quote; Excel keeps the value as written, in a text cell that is never a formula.
    guard = "'" if ext == "csv" else ""
    for i, dangerous in enumerate(DANGEROUS):
        for column in ("name", "city"):
            value = rows[f"D{i}"][column]
            assert _same(value) == _same(guard + dangerous), (column, value)
    if ext == "xlsx":
        ws = load_workbook(target).active
        assert ws is not None
        assert {c.data_type for row in ws.iter_rows(min_row=2) for c in row if isinstance(c.value, str)} == {"s"}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


@pytest.mark.parametrize(
    ("no", "name", "exit_code", "fragment"),
    [
        pytest.param("SMALL", "out.csv", 1, "fewer than the minimum", id="small"),
        pytest.param("EMPTY", "out.xlsx", 1, "no members", id="empty"),
        pytest.param("S1", "out.txt", 2, ".csv or .xlsx", id="bad-extension"),
        pytest.param("S1", "missing/out.csv", 2, "does not exist", id="missing-folder"),
        pytest.param("NOPE", "out.csv", 1, "NOPE", id="unknown-segment"),
    ],
)
def test_refused_export_leaves_no_file(
    capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path, no: str, name: str, exit_code: int, fragment: str
) -> None:
    make_segment(capsys, url)
    make_segment(capsys, url, "SMALL", "contact_no=P01|P02")
    ok(capsys, url, "segment", "create", "EMPTY", "--description", "nothing")
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    before = sorted(p.name for p in tmp_path.rglob("*"))
    code, out, err = run(capsys, url, "segment", "export", no, str(out_dir / name))
    assert code == exit_code and out == ""
    assert len(err.strip().splitlines()) == 1 and fragment in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_export_replaces_an_existing_file_whole(capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path) -> None:
    make_segment(capsys, url)
    target = tmp_path / "members.csv"
    target.write_text("old content")
    ok(capsys, url, "segment", "export", "S1", str(target))
    assert len(read_csv(target)) == 14
    # A refused export keeps the previous file as it was.
    make_segment(capsys, url, "SMALL", "contact_no=P01")
    code, _, _ = run(capsys, url, "segment", "export", "SMALL", str(target))
    assert code == 1 and len(read_csv(target)) == 14
