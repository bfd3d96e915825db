"""The `dynamic` and `group` commands: each command, --json, exit codes 0/1/2 and one-line errors."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from segcore._db import Database
from segcore._dynamic import count_history
from segcore._engine import get_segment
from segcore._groups import get_group
from segcore.cli import main
from tests.factories import add_contacts, person


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    db = Database.open(url)
    add_contacts(db, [person(f"P{i:02d}", country=("FR", "DE")[i % 2], email=f"p{i}@example.org",
                             name="=cmd|' /C calc'!A0" if i == 0 else f"Person {i}") for i in range(20)])
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


def with_db(url: str) -> Database:
    return Database.open(url)


def test_dynamic_commands(capsys: pytest.CaptureFixture[str], url: str) -> None:
    out = ok(capsys, url, "dynamic", "create", "FR", "--where", "country=FR", "--description", "France")
    assert "created dynamic segment FR: country=FR" in out
    ok(capsys, url, "dynamic", "create", "DE", "--where", "country=DE")
    shown = as_json(capsys, url, "dynamic", "show", "FR")
    assert (shown["count"], shown["total"], shown["history"]) == (10, 20, [])
    refreshed = as_json(capsys, url, "dynamic", "refresh", "--all")
    assert {k: (v["count"], v["total"]) for k, v in refreshed.items()} == {"DE": (10, 20), "FR": (10, 20)}
    listed = as_json(capsys, url, "dynamic", "list")
    assert [(d["no"], d["last_count"]) for d in listed] == [("DE", 10), ("FR", 10)]
    frozen = as_json(capsys, url, "dynamic", "freeze", "FR", "FR-NOW")
    assert frozen == {"segment_no": "FR-NOW", "size": 10, "status": "draft"}
    db = with_db(url)
    try:
        assert get_segment(db, "FR-NOW").size == 10 and len(count_history(db, "FR")) == 1
    finally:
        db.dispose()


@pytest.mark.parametrize(
    "argv, code, message",
    [
        (["dynamic", "create", "X"], 2, "give the filter"),
        (["dynamic", "create", "X", "--where", "nope=1"], 2, "nope"),
        (["dynamic", "show", "MISSING"], 1, "no dynamic segment 'MISSING'"),
        (["dynamic", "refresh"], 2, "or --all"),
        (["group", "show", "MISSING"], 1, "no known user group"),
        (["group", "add", "MISSING", "/nonexistent/file.csv"], 2, "cannot read"),
    ],
)
def test_errors_are_one_line(capsys: pytest.CaptureFixture[str], url: str, argv: list[str], code: int,
                             message: str) -> None:
    got, out, err = run(capsys, url, *argv)
    assert got == code and message in err and len(err.strip().splitlines()) == 1 and err.startswith("error: ")


def test_group_commands(capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path) -> None:
    src = tmp_path / "fair.csv"
    src.write_text("Name;E-mail\nP0;p0@example.org\nP1;P1@example.org\nX;stranger@else.example\nY;oops\n",
                   encoding="utf-8-sig")
    created = as_json(capsys, url, "group", "create", "Fair", "--file", str(src))
    assert (created["added"], created["matched"], created["invalid"]) == (3, 2, ["oops"])
    more = tmp_path / "more.txt"
    more.write_text("p2@example.org\np0@example.org\n")
    added = as_json(capsys, url, "group", "add", "Fair", str(more))
    assert (added["added"], added["already_there"], added["addresses"]) == (1, 1, 4)
    out = ok(capsys, url, "group", "show", "Fair", "--unmatched")
    assert "stranger@else.example" in out and "p0@example.org" not in out
    dest = tmp_path / "out.csv"
    ok(capsys, url, "group", "export", "Fair", str(dest))
    rows = list(csv.reader(io.StringIO(dest.read_bytes().decode("utf-8-sig"))))
    assert rows[1] == ["p0@example.org", "yes", "P00", "'=cmd|' /C calc'!A0"]
    assert [g["name"] for g in as_json(capsys, url, "group", "list")] == ["Fair"]
    db = with_db(url)
    try:
        assert get_group(db, "Fair").address_count == 4
    finally:
        db.dispose()


def test_dynamic_create_reads_where_with_the_database(capsys: pytest.CaptureFixture[str], url: str) -> None:
    # "Did you mean" needs the data's values, short dates the user's date order: both come with the database.
    code, _out, err = run(capsys, url, "dynamic", "create", "D1", "--where", "country=France")
    assert code == 2 and "did you mean FR?" in err
    code, _out, err = run(capsys, url, "dynamic", "create", "D2", "--where", "birth_date=..311290",
                          "--date-order", "DMY")
    assert code == 0, err
