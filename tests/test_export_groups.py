"""The holdout never leaks (issue 14): exporting a logged segment gives its contacted (treated) members unless the
control group is asked for by name, in the core and in `segment export --group`, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from segcore._db import Database
from segcore._engine import ActionRequest, apply_action, create_segment
from segcore._errors import RefusedError, UsageError
from segcore._export import (
    EXPORT_COLUMNS,
    EXPORT_GROUP_LABELS,
    GROUP_COLUMN,
    check_exportable,
    export_members,
    export_rows,
    export_scope,
)
from segcore._lifecycle import cancel_logged, log_segment, logged_members
from segcore._settings import set_setting
from segcore.cli import main
from tests.factories import add_contacts, person

NOS = [f"P{i:02d}" for i in range(1, 21)]


def csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def xlsx_rows(data: bytes) -> tuple[str, list[dict[str, Any]]]:
    ws = load_workbook(io.BytesIO(data), read_only=True).active
    assert ws is not None
    rows = list(ws.iter_rows(values_only=True))
    header = [str(h) for h in rows[0]]
    return ws.title, [dict(zip(header, r, strict=True)) for r in rows[1:]]


def groups_of(db: Database, no: str) -> tuple[list[str], list[str]]:
    """(treated, control) contact numbers of a logged segment, from its snapshot."""
    rows, _ = logged_members(db, no, limit=1000)
    return sorted(r["contact_no"] for r in rows if not r["holdout"]), sorted(r["contact_no"] for r in rows if r["holdout"])


@pytest.fixture
def world(db: Database) -> Database:
    """S1: 20 members logged with a 25 % holdout (15 contacted, 5 held out); OPEN: 4 members, never logged;
    PLAIN: 6 members logged without a holdout. Minimum segment size 3."""
    set_setting(db, "minimum_segment_size", 3)
    add_contacts(db, [person(no, email=f"{no.lower()}@example.org", country="FR") for no in NOS])
    for no, members in (("S1", NOS), ("OPEN", NOS[:4]), ("PLAIN", NOS[:6])):
        create_segment(db, no, description="Spring mailing")
        apply_action(db, no, ActionRequest("add_contacts", contact_nos=tuple(members)))
    log_segment(db, "S1", template="EMAIL", holdout_pct=25, seed=3)
    log_segment(db, "PLAIN", template="EMAIL")
    return db


def test_a_logged_segment_exports_its_contacted_members_by_default(world: Database) -> None:
    treated, control = groups_of(world, "S1")
    assert (len(treated), len(control)) == (15, 5)
    rows = csv_rows(export_members(world, "S1", "csv"))
    assert [r["contact_no"] for r in rows] == treated  # the control group is not in the file
    assert tuple(rows[0]) == EXPORT_COLUMNS  # no group column: the file imports back as it is
    assert csv_rows(export_members(world, "S1", "csv", group="treated")) == rows
    assert check_exportable(world, "S1") == 15


def test_the_control_group_is_its_own_named_choice(world: Database) -> None:
    _, control = groups_of(world, "S1")
    rows = csv_rows(export_members(world, "S1", "csv", group="control"))
    assert [r["contact_no"] for r in rows] == control
    title, body = xlsx_rows(export_members(world, "S1", "xlsx", group="control"))
    assert title == "Segment S1 control" and [r["contact_no"] for r in body] == control
    assert check_exportable(world, "S1", "control") == 5


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_all_members_with_a_group_column(world: Database, fmt: str) -> None:
    treated, control = groups_of(world, "S1")
    data = export_members(world, "S1", fmt, group="all")
    rows = csv_rows(data) if fmt == "csv" else xlsx_rows(data)[1]
    assert list(rows[0]) == [*EXPORT_COLUMNS, GROUP_COLUMN]
    assert {r["contact_no"]: r[GROUP_COLUMN] for r in rows} == {
        **{no: "treated" for no in treated}, **{no: "control" for no in control}
    }
    assert [r["contact_no"] for r in rows] == NOS  # contact order, every member once


def test_export_scope_names_the_group_and_a_file_name(world: Database) -> None:
    scope = export_scope(world, "S1")
    assert (scope.group, scope.count, scope.logged, scope.holdout_count) == ("treated", 15, True, 5)
    assert (scope.label, scope.file_name("csv")) == ("contacted members only", "segment-S1-treated.csv")
    control = export_scope(world, "S1", "Control")  # case does not matter
    assert (control.group, control.count, control.file_name(".XLSX")) == ("control", 5, "segment-S1-control.xlsx")
    both = export_scope(world, "S1", "all")
    assert (both.count, both.label, both.file_name("csv")) == (20, "all with a group column", "segment-S1-all-groups.csv")
    assert set(EXPORT_GROUP_LABELS) == {"treated", "control", "all"}
    plain = export_scope(world, "OPEN")
    assert (plain.group, plain.count, plain.logged, plain.label, plain.file_name("csv")) == (
        None, 4, False, "all members", "segment-OPEN.csv",
    )


def test_a_segment_that_is_not_logged_has_no_groups(world: Database) -> None:
    rows = csv_rows(export_members(world, "OPEN", "csv"))
    assert [r["contact_no"] for r in rows] == NOS[:4] and GROUP_COLUMN not in rows[0]
    for group in ("treated", "control", "all"):
        with pytest.raises(UsageError, match="OPEN is draft, not logged: it has no treated or control group"):
            export_members(world, "OPEN", "csv", group=group)
        with pytest.raises(UsageError, match="not logged"):
            check_exportable(world, "OPEN", group)


def test_a_log_without_holdout_has_no_control_group(world: Database) -> None:
    assert [r["contact_no"] for r in csv_rows(export_members(world, "PLAIN", "csv"))] == NOS[:6]
    with pytest.raises(RefusedError, match="PLAIN was logged without a holdout: it has no control group"):
        export_members(world, "PLAIN", "csv", group="control")
    rows = csv_rows(export_members(world, "PLAIN", "csv", group="all"))
    assert {r[GROUP_COLUMN] for r in rows} == {"treated"} and len(rows) == 6


def test_unknown_group_is_a_usage_error(world: Database) -> None:
    with pytest.raises(UsageError, match="unknown export group 'holdout'; use treated, control or all"):
        export_members(world, "S1", "csv", group="holdout")


def test_the_minimum_size_applies_to_the_group_exported(world: Database) -> None:
    set_setting(world, "minimum_segment_size", 6)
    with pytest.raises(RefusedError, match="the control group of segment S1 has 5 members, fewer than the minimum of 6"):
        export_members(world, "S1", "csv", group="control")
    with pytest.raises(RefusedError, match="fewer than the minimum of 6"):
        check_exportable(world, "S1", "control")
    assert check_exportable(world, "S1") == 15 and check_exportable(world, "S1", "all") == 20
    set_setting(world, "minimum_segment_size", 16)
    with pytest.raises(RefusedError, match="segment S1 has 15 contacted members, fewer than the minimum of 16"):
        export_members(world, "S1", "csv")


def test_one_member_is_counted_in_words(world: Database) -> None:
    create_segment(world, "ONE", description="one")
    apply_action(world, "ONE", ActionRequest("add_contacts", contact_nos=("P01",)))
    with pytest.raises(RefusedError, match="segment ONE has 1 member, fewer than the minimum of 3"):
        export_members(world, "ONE", "csv")


def test_rows_and_progress_follow_the_group(world: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    import segcore._export as export

    monkeypatch.setattr(export, "_CHUNK", 4)
    treated, control = groups_of(world, "S1")
    seen: list[tuple[int, int]] = []
    rows = list(export_rows(world, "S1", progress=lambda done, total, _stage: seen.append((done, total))))
    assert [r["contact_no"] for r in rows] == treated and seen[-1] == (15, 15) and len(seen) == 4
    rows = list(export_rows(world, "S1", group="all"))
    assert [r["contact_no"] for r in rows if r[GROUP_COLUMN] == "control"] == control


def test_a_cancelled_log_keeps_its_control_group_out(world: Database) -> None:
    treated, _ = groups_of(world, "S1")
    cancel_logged(world, "S1")
    assert [r["contact_no"] for r in csv_rows(export_members(world, "S1", "csv"))] == treated


# ------------------------------------------------------------------------------------------------ command line


def cli(capsys: pytest.CaptureFixture[str], db: Database, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["--db", db.url, *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_export_defaults_to_the_contacted_members(
    capsys: pytest.CaptureFixture[str], world: Database, tmp_path: Path
) -> None:
    treated, _ = groups_of(world, "S1")
    target = tmp_path / "s1.csv"
    code, out, err = cli(capsys, world, "--json", "segment", "export", "S1", str(target))
    assert code == 0, err
    data = json.loads(out)
    assert (data["group"], data["members"], data["suggested_file_name"]) == ("treated", 15, "segment-S1-treated.csv")
    assert [r["contact_no"] for r in csv_rows(target.read_bytes())] == treated
    code, out, _ = cli(capsys, world, "segment", "export", "S1", str(target))
    assert code == 0 and out.strip() == f"exported 15 members (treated: contacted members only) of segment S1 to {target}"


def test_cli_export_control_and_all(capsys: pytest.CaptureFixture[str], world: Database, tmp_path: Path) -> None:
    treated, control = groups_of(world, "S1")
    target = tmp_path / "control.xlsx"
    code, out, err = cli(capsys, world, "segment", "export", "S1", str(target), "--group", "control")
    assert code == 0, err
    assert "exported 5 members (control: control group only) of segment S1" in out
    assert [r["contact_no"] for r in xlsx_rows(target.read_bytes())[1]] == control
    target = tmp_path / "all.csv"
    code, out, err = cli(capsys, world, "--json", "segment", "export", "S1", str(target), "--group", "ALL")
    assert code == 0, err
    assert (json.loads(out)["group"], json.loads(out)["members"]) == ("all", 20)
    rows = csv_rows(target.read_bytes())
    assert sorted(r["contact_no"] for r in rows if r[GROUP_COLUMN] == "treated") == treated


def test_cli_export_of_a_segment_that_is_not_logged(
    capsys: pytest.CaptureFixture[str], world: Database, tmp_path: Path
) -> None:
    target = tmp_path / "open.csv"
    code, out, err = cli(capsys, world, "--json", "segment", "export", "OPEN", str(target))
    assert code == 0, err
    assert (json.loads(out)["group"], json.loads(out)["members"]) == (None, 4)
    code, out, _ = cli(capsys, world, "segment", "export", "OPEN", str(target))
    assert out.strip() == f"exported 4 members of segment OPEN to {target}"
    target.unlink()
    code, out, err = cli(capsys, world, "segment", "export", "OPEN", str(target), "--group", "control")
    assert (code, out) == (2, "") and "not logged" in err and len(err.strip().splitlines()) == 1
    assert not target.exists()
    code, _, err = cli(capsys, world, "segment", "export", "S1", str(target), "--group", "holdout")
    assert code == 2 and "invalid choice" in err and not target.exists()


def test_cli_refused_group_leaves_no_file(capsys: pytest.CaptureFixture[str], world: Database, tmp_path: Path) -> None:
    set_setting(world, "minimum_segment_size", 6)
    folder = tmp_path / "exports"
    folder.mkdir()
    code, out, err = cli(capsys, world, "segment", "export", "S1", str(folder / "control.csv"), "--group", "control")
    assert (code, out) == (1, "") and "control group of segment S1 has 5 members" in err
    assert list(folder.iterdir()) == []
