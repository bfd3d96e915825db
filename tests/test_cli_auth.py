"""The command line with accounts (issue 15): `user ...`, `audit`, and who a command acts as."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest

from segcore import Database, get_segment, list_users
from segcore.cli import main

PASSWORD = "correct horse battery"


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("SEGCORE_USER", raising=False)
    return f"sqlite:///{tmp_path / 'cli.db'}"


def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *argv: str,
        stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line_error(err: str, fragment: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], err


@pytest.fixture
def team(url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    """A database with ada (admin), max (manager), mark (marketer) and vic (viewer)."""
    assert run(capsys, monkeypatch, "--db", url, "user", "add", "ada", "--role", "admin", "--password-stdin",
               stdin=PASSWORD + "\n")[0] == 0
    for name, role in (("max", "manager"), ("mark", "marketer"), ("vic", "viewer")):
        code, _, err = run(capsys, monkeypatch, "--db", url, "--user", "ada", "user", "add", name, "--role", role,
                           "--password-stdin", stdin=PASSWORD + "\n")
        assert (code, err) == (0, "")
    return url


def test_without_accounts_the_cli_acts_as_before(
    url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run(capsys, monkeypatch, "--db", url, "segment", "create", "S", "--description", "D")
    assert (code, err) == (0, "")
    code, out, _ = run(capsys, monkeypatch, "--db", url, "user", "list")
    assert code == 0 and out.startswith("no accounts")
    code, _, _ = run(capsys, monkeypatch, "--db", url, "--user", "someone", "segment", "create", "T", "--description", "D")
    db = Database.open(url)
    assert get_segment(db, "T").owner == "someone"
    db.dispose()


def test_the_first_account_is_an_administrator(
    url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(capsys, monkeypatch, "--db", url, "user", "add", "mark", "--role", "marketer",
                       "--password-stdin", stdin=PASSWORD + "\n")
    assert code == 1
    one_line_error(err, "the first account must be an administrator")
    code, out, err = run(capsys, monkeypatch, "--db", url, "--json", "user", "add", "ada", "--role", "admin",
                         "--password-stdin", stdin=PASSWORD + "\n")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert (data["name"], data["role"], data["has_password"]) == ("ada", "admin", True)
    assert PASSWORD not in out


def test_once_accounts_exist_a_command_names_one(
    team: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(capsys, monkeypatch, "--db", team, "settings", "show")
    assert code == 2
    one_line_error(err, "this database has accounts: name yours with --user NAME or SEGCORE_USER")
    code, _, err = run(capsys, monkeypatch, "--db", team, "--user", "ghost", "settings", "show")
    assert code == 1
    one_line_error(err, "'ghost' is not an enabled account")
    monkeypatch.setenv("SEGCORE_USER", "Mark")
    code, _, err = run(capsys, monkeypatch, "--db", team, "segment", "create", "S", "--description", "Mine")
    assert (code, err) == (0, "")
    db = Database.open(team)
    assert get_segment(db, "S").owner == "mark"
    db.dispose()


def test_roles_are_enforced_through_the_cli(
    team: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(capsys, monkeypatch, "--db", team, "--user", "mark", "settings", "set", "four_eyes", "no")
    assert code == 1
    one_line_error(err, "changing settings needs the admin role; mark is a marketer")
    code, _, err = run(capsys, monkeypatch, "--db", team, "--user", "vic", "segment", "create", "V", "--description", "D")
    assert code == 1
    one_line_error(err, "needs the marketer role; vic is a viewer")
    code, _, err = run(capsys, monkeypatch, "--db", team, "--user", "mark", "user", "add", "eve", "--role",
                       "admin", "--password-stdin", stdin=PASSWORD + "\n")
    assert code == 1
    one_line_error(err, "managing accounts needs the admin role")
    assert run(capsys, monkeypatch, "--db", team, "--user", "ada", "settings", "set", "four_eyes", "no")[0] == 0


def test_user_commands_manage_accounts(
    team: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run(capsys, monkeypatch, "--db", team, "--user", "vic", "user", "list")
    assert code == 0 and out.strip().endswith("4 accounts") and "mark" in out and "marketer" in out
    assert run(capsys, monkeypatch, "--db", team, "--user", "ada", "user", "set-role", "mark", "manager")[0] == 0
    assert run(capsys, monkeypatch, "--db", team, "--user", "ada", "user", "disable", "vic")[0] == 0
    code, out, err = run(capsys, monkeypatch, "--db", team, "--user", "ada", "user", "reset-password", "max",
                         "--password-stdin", stdin="a new secret phrase\n")
    assert (code, err) == (0, "") and "a new secret phrase" not in out
    db = Database.open(team)
    accounts = {a.name: a for a in list_users(db)}
    assert accounts["mark"].role == "manager" and not accounts["vic"].enabled
    from segcore import authenticate

    assert authenticate(db, "max", "a new secret phrase").name == "max"
    db.dispose()
    code, _, err = run(capsys, monkeypatch, "--db", team, "--user", "vic", "user", "list")
    assert code == 1
    one_line_error(err, "'vic' is not an enabled account")
    assert run(capsys, monkeypatch, "--db", team, "--user", "ada", "user", "enable", "vic")[0] == 0


def test_a_password_needs_standard_input_or_a_terminal(
    team: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(capsys, monkeypatch, "--db", team, "--user", "ada", "user", "add", "eve", "--role", "viewer")
    assert code == 2
    one_line_error(err, "give it on standard input with --password-stdin")
    code, _, err = run(capsys, monkeypatch, "--db", team, "--user", "ada", "user", "add", "eve", "--role",
                       "viewer", "--password-stdin", stdin="short\n")
    assert code == 2
    one_line_error(err, "at least 8 characters")


def test_audit_lists_and_filters_the_trail(
    team: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(capsys, monkeypatch, "--db", team, "--user", "mark", "segment", "create", "S", "--description", "D")[0] == 0
    code, out, err = run(capsys, monkeypatch, "--db", team, "--user", "max", "--json", "audit", "--user", "mark")
    assert (code, err) == (0, "")
    rows = json.loads(out)
    assert [(r["user"], r["kind"], r["object"]) for r in rows] == [("mark", "segment.create", "segment S")]
    code, out, _ = run(capsys, monkeypatch, "--db", team, "--user", "ada", "audit", "--kind", "user",
                       "--since", "2000-01-01")
    assert code == 0 and out.strip().endswith("4 audit rows") and "user.add" in out
    code, out, _ = run(capsys, monkeypatch, "--db", team, "--user", "ada", "audit", "--since", "2999-01-01")
    assert code == 0 and out.strip() == "0 audit rows"
    code, out, _ = run(capsys, monkeypatch, "--db", team, "--user", "ada", "audit", "--until", "2000-01-01")
    assert code == 0 and out.strip() == "0 audit rows"
    today = dt.date.today().isoformat()
    code, out, _ = run(capsys, monkeypatch, "--db", team, "--user", "ada", "audit", "--kind", "user",
                       "--until", today)
    assert code == 0 and out.strip().endswith("4 audit rows")
    code, _, err = run(capsys, monkeypatch, "--db", team, "--user", "mark", "audit")
    assert code == 1
    one_line_error(err, "reading the audit trail needs the manager role")
    code, _, err = run(capsys, monkeypatch, "--db", team, "--user", "ada", "audit", "--since", "yesterday")
    assert code == 2
    one_line_error(err, "'yesterday' is not a date")


def test_demo_data_is_an_administrators_import(
    team: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(capsys, monkeypatch, "--db", team, "--user", "max", "init", "--demo", "50")
    assert code == 1
    one_line_error(err, "importing data needs the admin role")


def test_single_sign_on_accounts_from_the_command_line(
    team: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run(capsys, monkeypatch, "--db", team, "--user", "ada", "--json", "user", "add", "carol",
                         "--role", "marketer", "--email", "Carol@Example.com", "--no-password")
    assert (code, err) == (0, "")
    assert json.loads(out) | {"created_at": None} == json.loads(out) | {
        "name": "carol", "role": "marketer", "email": "carol@example.com", "has_password": False, "created_at": None}
    code, _, err = run(capsys, monkeypatch, "--db", team, "--user", "ada", "user", "add", "dave", "--role", "viewer",
                       "--no-password")
    assert code == 2
    one_line_error(err, "give its --email")
    code, out, _ = run(capsys, monkeypatch, "--db", team, "--user", "ada", "user", "set-email", "mark",
                       "mark@example.com")
    assert code == 0 and out.strip() == "mark signs in through single sign-on as mark@example.com"
    code, out, _ = run(capsys, monkeypatch, "--db", team, "--user", "ada", "user", "list")
    assert "mark@example.com" in out and "carol@example.com" in out
    code, _, err = run(capsys, monkeypatch, "--db", team, "--user", "mark", "user", "set-email", "mark")
    assert code == 1
    one_line_error(err, "managing accounts needs the admin role")
    code, out, _ = run(capsys, monkeypatch, "--db", team, "--user", "ada", "user", "set-email", "mark")
    assert code == 0 and "has no e-mail address" in out
