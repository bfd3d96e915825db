"""Local accounts (issue 15): hashes never passwords, the first administrator, lock-out, idle sessions."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest
from sqlalchemy import select

from segcore import (
    add_user,
    audit_rows,
    authenticate,
    check_session,
    disable_user,
    enable_user,
    get_user,
    list_users,
    reset_password,
    set_email,
    set_role,
    set_settings,
    sign_in,
    sso_sign_in,
)
from segcore._db import Database
from segcore._errors import NotFoundError, RefusedError, UsageError
from segcore._models import AuditEntry, User, table_of
from segcore.auth import acting_as, current_user

PASSWORD = "Tr0ub4dor&3-horse"
users_t = table_of(User)
audit_t = table_of(AuditEntry)
NOW = dt.datetime(2026, 3, 1, 9, 0)


def admin_with_password(db: Database) -> None:
    add_user(db, "ada", "admin", PASSWORD)


def kinds(db: Database, user: str) -> list[tuple[str, str]]:
    """(kind, summary) of the user's audit rows, oldest first."""
    return [(r.kind, r.summary) for r in reversed(audit_rows(db, user=user, reader="ada"))]


def test_the_first_account_must_be_an_administrator(db: Database) -> None:
    with pytest.raises(RefusedError, match="the first account must be an administrator"):
        add_user(db, "mark", "marketer", PASSWORD)
    assert list_users(db) == []
    account = add_user(db, "Ada", "admin", PASSWORD, email="Ada@Example.org")
    assert (account.name, account.role, account.enabled, account.email, account.has_password) == (
        "ada", "admin", True, "ada@example.org", True)
    with pytest.raises(RefusedError, match="account ada exists already"):
        add_user(db, "ada", "viewer", user="ada")


@pytest.mark.parametrize("name, role, password, message", [
    ("", "viewer", PASSWORD, "not an account name"),
    ("has space", "viewer", PASSWORD, "not an account name"),
    ("x" * 61, "viewer", PASSWORD, "not an account name"),
    ("bob", "root", PASSWORD, "'root' is not a role"),
    ("bob", "viewer", "short", "at least 8 characters"),
    ("bob", "viewer", " " * 12, "only spaces"),
])
def test_bad_accounts_are_usage_errors(db: Database, name: str, role: str, password: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        add_user(db, name, role, password)


def test_passwords_are_never_stored_or_logged_in_clear(
    db: Database, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    admin_with_password(db)
    add_user(db, "bob", "viewer", "bob's own secret 99", user="ada")
    authenticate(db, "ada", PASSWORD)
    with pytest.raises(RefusedError):
        authenticate(db, "ada", PASSWORD + "x")
    reset_password(db, "bob", PASSWORD[::-1], user="ada")
    with db.read() as conn:
        stored = conn.execute(select(users_t.c.password_hash)).scalars().all()
        every_row = repr(conn.execute(select(users_t)).all()) + repr(conn.execute(select(audit_t)).all())
    assert all(h.startswith("$argon2id$") for h in stored)
    secrets = (PASSWORD, PASSWORD + "x", PASSWORD[::-1], "bob's own secret 99")
    for secret in secrets:
        assert secret not in every_row
        assert secret not in caplog.text
    out = capsys.readouterr()
    assert not any(s in out.out + out.err for s in secrets)
    if db.dialect == "sqlite":
        db.dispose()  # checkpoint the write-ahead log into the file
        path = Path(db.url.removeprefix("sqlite:///"))
        raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        for secret in secrets:
            assert secret.encode() not in raw
        assert b"$argon2id$" in raw  # the search looked at the right bytes


def test_sign_in_records_success_and_failure(db: Database) -> None:
    admin_with_password(db)
    account = authenticate(db, " ADA ", PASSWORD)
    assert account.name == "ada" and account.last_sign_in_at is not None
    with pytest.raises(RefusedError, match="^wrong name or password$"):
        authenticate(db, "ada", "not it at all")
    with pytest.raises(RefusedError, match="^wrong name or password$"):
        authenticate(db, "nobody", PASSWORD)
    # The account was added by whoever acted then (no account yet: the OS user); the sign-ins are ada's.
    assert kinds(db, "ada") == [("user.sign_in", "signed in"), ("user.sign_in_failed", "wrong password")]
    assert kinds(db, "nobody") == [("user.sign_in_failed", "unknown account")]


def test_five_wrong_passwords_lock_the_account_for_a_while(db: Database) -> None:
    admin_with_password(db)
    for _ in range(4):
        with pytest.raises(RefusedError, match="^wrong name or password$"):
            authenticate(db, "ada", "wrong password", now=NOW)
    with pytest.raises(RefusedError, match="now locked for 15 minutes"):
        authenticate(db, "ada", "wrong password", now=NOW)
    # Locked: even the right password is refused, and says for how long.
    with pytest.raises(RefusedError, match="locked after too many wrong passwords: try again in 10 minutes"):
        authenticate(db, "ada", PASSWORD, now=NOW + dt.timedelta(minutes=5))
    assert get_user(db, "ada").locked_until == NOW + dt.timedelta(minutes=15)
    assert authenticate(db, "ada", PASSWORD, now=NOW + dt.timedelta(minutes=16)).locked_until is None
    failed = [s for k, s in kinds(db, "ada") if k == "user.sign_in_failed"]
    assert failed == ["wrong password"] * 4 + ["wrong password; locked for 15 minutes after 5 failures",
                                               "account locked"]


def test_a_sign_in_resets_the_count_and_the_limits_are_settings(db: Database) -> None:
    admin_with_password(db)
    set_settings(db, {"lockout_failures": 2, "lockout_minutes": 1}, user="ada")
    with pytest.raises(RefusedError, match="^wrong name or password$"):
        authenticate(db, "ada", "wrong password", now=NOW)
    authenticate(db, "ada", PASSWORD, now=NOW)  # the count starts again
    with pytest.raises(RefusedError, match="^wrong name or password$"):
        authenticate(db, "ada", "wrong password", now=NOW)
    with pytest.raises(RefusedError, match="now locked for 1 minute$"):
        authenticate(db, "ada", "wrong password", now=NOW)


def test_reset_password_lifts_a_lock_and_is_an_administrators_or_ones_own(db: Database) -> None:
    admin_with_password(db)
    add_user(db, "mark", "marketer", PASSWORD, user="ada")
    add_user(db, "vic", "viewer", PASSWORD, user="ada")
    set_settings(db, {"lockout_failures": 1}, user="ada")
    with pytest.raises(RefusedError, match="now locked"):
        authenticate(db, "mark", "wrong password")
    reset_password(db, "mark", "a brand new one", user="ada")
    assert authenticate(db, "mark", "a brand new one").name == "mark"
    reset_password(db, "mark", "mine to change", user="mark")
    assert authenticate(db, "mark", "mine to change").name == "mark"
    with pytest.raises(RefusedError, match="managing accounts needs the admin role"):
        reset_password(db, "vic", "not yours to set", user="mark")
    with pytest.raises(NotFoundError, match="no account 'ghost'"):
        reset_password(db, "ghost", "whatever it is", user="ada")


def test_a_disabled_account_cannot_sign_in(db: Database) -> None:
    admin_with_password(db)
    add_user(db, "bob", "viewer", PASSWORD, user="ada")
    disable_user(db, "bob", user="ada")
    with pytest.raises(RefusedError, match="account bob is disabled"):
        authenticate(db, "bob", PASSWORD)
    enable_user(db, "bob", user="ada")
    assert authenticate(db, "bob", PASSWORD).enabled


def test_an_account_without_password_cannot_sign_in_with_one(db: Database) -> None:
    add_user(db, "ada", "admin")
    with pytest.raises(RefusedError, match="^wrong name or password$"):
        authenticate(db, "ada", "")


def test_the_last_administrator_stays(db: Database) -> None:
    add_user(db, "ada", "admin")
    with pytest.raises(RefusedError, match="ada is the last administrator"):
        set_role(db, "ada", "manager", user="ada")
    with pytest.raises(RefusedError, match="ada is the last administrator"):
        disable_user(db, "ada", user="ada")
    add_user(db, "ben", "admin", user="ada")
    assert set_role(db, "ada", "manager", user="ben").role == "manager"
    with pytest.raises(RefusedError, match="ben is the last administrator"):
        disable_user(db, "ben", user="ben")
    assert [(r.kind, r.before, r.after) for r in audit_rows(db, object="user ada", kind="user.set_role",
                                                             reader="ben")] == [
        ("user.set_role", "admin", "manager")]


def test_sessions_expire_when_idle_and_follow_the_account(db: Database) -> None:
    admin_with_password(db)
    add_user(db, "bob", "viewer", PASSWORD, user="ada")
    session = sign_in(db, "bob", PASSWORD, now=NOW)
    assert (session.name, session.role, session.last_seen) == ("bob", "viewer", NOW)
    later = check_session(db, session, now=NOW + dt.timedelta(minutes=59))
    assert later.last_seen == NOW + dt.timedelta(minutes=59) and later.signed_in_at == NOW
    set_role(db, "bob", "marketer", user="ada")
    assert check_session(db, later, now=NOW + dt.timedelta(minutes=100)).role == "marketer"
    with pytest.raises(RefusedError, match="ended after 60 minutes without activity"):
        check_session(db, later, now=NOW + dt.timedelta(minutes=120))
    set_settings(db, {"session_idle_minutes": 5}, user="ada")
    with pytest.raises(RefusedError, match="ended after 5 minutes"):
        check_session(db, session, now=NOW + dt.timedelta(minutes=6))
    disable_user(db, "bob", user="ada")
    with pytest.raises(RefusedError, match="no longer enabled"):
        check_session(db, session, now=NOW + dt.timedelta(minutes=1))


def test_acting_as_names_who_acts_when_no_user_is_given(db: Database) -> None:
    from segcore import create_segment

    outside = current_user()
    with acting_as("mark"):
        assert current_user() == "mark"
        assert create_segment(db, "S").owner == "mark"
    assert current_user() == outside


# ---------------------------------------------------------------------------------------------- single sign-on


def test_single_sign_on_opens_the_session_of_the_account_with_that_address(db: Database) -> None:
    admin_with_password(db)
    add_user(db, "carol", "marketer", email="Carol@Example.com", user="ada")
    session = sso_sign_in(db, " carol@EXAMPLE.com ", now=NOW)
    assert (session.name, session.role, session.signed_in_at) == ("carol", "marketer", NOW)
    assert get_user(db, "carol").last_sign_in_at == NOW
    assert kinds(db, "carol") == [("user.sign_in", "signed in through single sign-on as carol@example.com")]
    # The session then lives like a password one: the role is read again on every check.
    set_role(db, "carol", "manager", user="ada")
    assert check_session(db, session, now=NOW).role == "manager"


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("stranger@example.com", "no account here has the address stranger@example.com, so it has no role"),
        ("", "the identity provider gave no e-mail address"),
        (None, "the identity provider gave no e-mail address"),
    ],
)
def test_single_sign_on_refuses_an_address_no_account_has(db: Database, email: str | None, message: str) -> None:
    admin_with_password(db)
    with pytest.raises(RefusedError, match=message):
        sso_sign_in(db, email)
    if email:
        assert kinds(db, email) == [("user.sign_in_failed", "single sign-on: no account has this address")]


def test_single_sign_on_refuses_a_disabled_account(db: Database) -> None:
    admin_with_password(db)
    add_user(db, "carol", "marketer", email="carol@example.com", user="ada")
    disable_user(db, "carol", user="ada")
    with pytest.raises(RefusedError, match="account carol is disabled"):
        sso_sign_in(db, "carol@example.com")


def test_set_email_maps_an_address_to_one_account_only(db: Database) -> None:
    admin_with_password(db)
    add_user(db, "bob", "viewer", PASSWORD, user="ada")
    add_user(db, "carol", "viewer", PASSWORD, user="ada")
    assert set_email(db, "bob", " Bob@Example.com ", user="ada").email == "bob@example.com"
    with pytest.raises(RefusedError, match="another account has the e-mail address bob@example.com"):
        set_email(db, "carol", "bob@example.com", user="ada")
    with pytest.raises(UsageError, match="is not an e-mail address"):
        set_email(db, "carol", "not an address", user="ada")
    assert sso_sign_in(db, "bob@example.com").name == "bob"
    assert set_email(db, "bob", None, user="ada").email is None
    with pytest.raises(RefusedError, match="no account here has the address"):
        sso_sign_in(db, "bob@example.com")
    rows = audit_rows(db, kind="user.set_email", reader="ada")
    assert [(r.before, r.after) for r in reversed(rows)] == [(None, "bob@example.com"), ("bob@example.com", None)]
