"""Local accounts: add, list, change role, disable, reset a password, sign in, and idle sessions.

Passwords are kept only as argon2id hashes (argon2-cffi: a slow, salted, memory-hard hash in a PHC string that
carries its own parameters). Wrong passwords are counted per account; `lockout_failures` in a row lock it for
`lockout_minutes` (settings). Every change and every sign-in, failed ones included, writes an audit row.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import secrets
from dataclasses import dataclass, replace
from functools import cache
from typing import TYPE_CHECKING, Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection, Row, func, insert, select, update

from .._errors import NotFoundError, RefusedError, UsageError
from .._models import User, table_of
from .._setting_specs import read_setting
from .._words import plural
from .audit import record
from .identity import current_user, fold_name
from .roles import PERMISSIONS, ROLES, account_role, open_mode, permissions_of_role, require

if TYPE_CHECKING:
    from .._db import Database

__all__ = [
    "Account",
    "Session",
    "add_user",
    "authenticate",
    "check_session",
    "disable_user",
    "enable_user",
    "get_user",
    "list_users",
    "may",
    "permissions_of",
    "reset_password",
    "set_role",
    "set_email",
    "sign_in",
    "sso_sign_in",
    "why_not",
]

users_t = table_of(User)
_NAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,59}")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
_hasher = PasswordHasher()
_WRONG = "wrong name or password"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@cache
def _dummy_hash() -> str:
    """A hash of nobody's password: an unknown name is verified against it, so it takes as long as a known one."""
    return _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Account:
    """An account as lists show it; the password hash never leaves this module."""

    name: str
    role: str
    enabled: bool
    email: str | None
    has_password: bool
    locked_until: dt.datetime | None
    last_sign_in_at: dt.datetime | None
    created_by: str
    created_at: dt.datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "role": self.role, "enabled": self.enabled, "email": self.email,
            "has_password": self.has_password,
            "locked_until": self.locked_until.isoformat(timespec="seconds") if self.locked_until else None,
            "last_sign_in_at": self.last_sign_in_at.isoformat(timespec="seconds") if self.last_sign_in_at else None,
            "created_by": self.created_by, "created_at": self.created_at.isoformat(timespec="seconds"),
        }


@dataclass(frozen=True)
class Session:
    """A signed-in person: who, with which role, since when, and when they last did something (UTC)."""

    name: str
    role: str
    signed_in_at: dt.datetime
    last_seen: dt.datetime


def _account(r: Row[Any]) -> Account:
    return Account(r.name, r.role, bool(r.enabled), r.email, r.password_hash is not None, r.locked_until,
                   r.last_sign_in_at, r.created_by, r.created_at)


def _check_name(name: str) -> str:
    folded = fold_name(name)
    if not _NAME.fullmatch(folded):
        raise UsageError(
            f"{name!r} is not an account name: 1 to 60 letters, digits, '.', '_', '-' or '@', starting with a letter "
            "or digit"
        )
    return folded


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise UsageError(f"{role!r} is not a role: use {', '.join(ROLES)}")
    return role


def _hash(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise UsageError(f"a password has at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UsageError(f"a password has at most {MAX_PASSWORD:,} characters")
    if not password.strip():
        raise UsageError("a password cannot be only spaces")
    return _hasher.hash(password)


def _row(conn: Connection, name: str, *, lock: bool = False) -> Row[Any]:
    stmt = select(users_t).where(users_t.c.name == fold_name(name))
    row = conn.execute(stmt.with_for_update() if lock else stmt).first()
    if row is None:
        raise NotFoundError(f"no account {fold_name(name)!r}")
    return row


def _other_admins(conn: Connection, name: str) -> int:
    return int(conn.execute(
        select(func.count()).select_from(users_t).where(
            users_t.c.role == "admin", users_t.c.enabled.is_(True), users_t.c.name != name)
    ).scalar_one())


def _keep_an_admin(conn: Connection, row: Row[Any], doing: str) -> None:
    """Refuse taking away the last enabled administrator: nobody could manage accounts or settings after that."""
    if row.role == "admin" and row.enabled and _other_admins(conn, row.name) == 0:
        raise RefusedError(f"{row.name} is the last administrator: make another account admin before {doing}")


# ------------------------------------------------------------------------------------------------- managing


def add_user(
    db: Database,
    name: str,
    role: str,
    password: str | None = None,
    *,
    email: str | None = None,
    user: str | None = None,
) -> Account:
    """Create an account (an administrator's act); the first account of a database must be an administrator."""
    name = _check_name(name)
    _check_role(role)
    hashed = _hash(password) if password is not None else None
    mail = (email or "").strip().lower() or None
    actor = user if user is not None else current_user()
    with db.write() as conn:
        first = open_mode(conn)
        require(conn, actor, "users")
        if first and role != "admin":
            raise RefusedError(
                "the first account must be an administrator (role admin): it is the one that adds the others"
            )
        if conn.execute(select(users_t.c.id).where(users_t.c.name == name)).first() is not None:
            raise RefusedError(f"account {name} exists already")
        if mail and conn.execute(select(users_t.c.id).where(users_t.c.email == mail)).first() is not None:
            raise RefusedError(f"another account has the e-mail address {mail}")
        conn.execute(insert(users_t).values(
            name=name, role=role, password_hash=hashed, email=mail, enabled=True, failed_sign_ins=0,
            created_by=fold_name(actor) or actor, created_at=_now(),
        ))
        record(conn, actor, "user.add", f"user {name}", f"account {name} added", after=f"role {role}")
        return _account(_row(conn, name))


def list_users(db: Database) -> list[Account]:
    """Every account by name (names and roles are not secret: four-eyes names who else may approve)."""
    with db.read() as conn:
        return [_account(r) for r in conn.execute(select(users_t).order_by(users_t.c.name)).all()]


def permissions_of(db: Database, user: str | None) -> frozenset[str]:
    """What `user` may do, for pages to hide the rest (hiding is never the protection: the writers check)."""
    with db.read() as conn:
        if open_mode(conn):
            return frozenset(PERMISSIONS)
        role = account_role(conn, user)
    return permissions_of_role(role) if role is not None else frozenset()


def why_not(db: Database, user: str | None, permission: str, *, owner: str | None = None) -> str | None:
    """Why `user` may not do `permission` on an object of `owner` (the refusal's message), or None when they may:
    the writers' own check (`require`), asked ahead so a page can hide a control and say why. Hiding is a courtesy;
    the writer checks again in its transaction."""
    with db.read() as conn:
        try:
            require(conn, user, permission, owner=owner)
        except RefusedError as e:
            return str(e)
    return None


def may(db: Database, user: str | None, permission: str, *, owner: str | None = None) -> bool:
    """Whether `user` may do `permission` on an object of `owner` (see `why_not`)."""
    return why_not(db, user, permission, owner=owner) is None


def get_user(db: Database, name: str) -> Account:
    with db.read() as conn:
        return _account(_row(conn, name))


def set_role(db: Database, name: str, role: str, *, user: str | None = None) -> Account:
    """Change an account's role (an administrator's act); the last administrator keeps theirs."""
    _check_role(role)
    actor = user if user is not None else current_user()
    with db.write() as conn:
        require(conn, actor, "users")
        row = _row(conn, name, lock=True)
        if row.role == role:
            return _account(row)
        if role != "admin":
            _keep_an_admin(conn, row, "changing this one's role")
        conn.execute(update(users_t).where(users_t.c.id == row.id).values(role=role))
        record(conn, actor, "user.set_role", f"user {row.name}", f"role of {row.name} changed",
               before=row.role, after=role)
        return _account(_row(conn, row.name))


def _set_enabled(db: Database, name: str, enabled: bool, user: str | None) -> Account:
    actor = user if user is not None else current_user()
    with db.write() as conn:
        require(conn, actor, "users")
        row = _row(conn, name, lock=True)
        if bool(row.enabled) == enabled:
            return _account(row)
        if not enabled:
            _keep_an_admin(conn, row, "disabling this one")
        conn.execute(update(users_t).where(users_t.c.id == row.id).values(enabled=enabled))
        state = ("disabled", "enabled")
        record(conn, actor, "user.enable" if enabled else "user.disable", f"user {row.name}",
               f"account {row.name} {state[enabled]}", before=state[not enabled], after=state[enabled])
        return _account(_row(conn, row.name))


def disable_user(db: Database, name: str, *, user: str | None = None) -> Account:
    """Stop an account from signing in or acting; its name stays on everything it did."""
    return _set_enabled(db, name, False, user)


def enable_user(db: Database, name: str, *, user: str | None = None) -> Account:
    """Let a disabled account sign in and act again."""
    return _set_enabled(db, name, True, user)


def reset_password(db: Database, name: str, password: str, *, user: str | None = None) -> Account:
    """Set a new password (an administrator's act, or the account's own); it also lifts a lock-out."""
    hashed = _hash(password)
    actor = user if user is not None else current_user()
    with db.write() as conn:
        row = _row(conn, name, lock=True)
        # Anyone may change their own password; another person's is an administrator's to reset.
        require(conn, actor, "preferences" if fold_name(actor) == row.name else "users")
        conn.execute(update(users_t).where(users_t.c.id == row.id).values(
            password_hash=hashed, failed_sign_ins=0, locked_until=None))
        record(conn, actor, "user.reset_password", f"user {row.name}", f"password of {row.name} reset")
        return _account(_row(conn, row.name))


# ------------------------------------------------------------------------------------------------- signing in


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def authenticate(db: Database, name: str, password: str, *, now: dt.datetime | None = None) -> Account:
    """Check a name and password; records the sign-in or the failure in the audit trail, and locks the account
    after `lockout_failures` wrong passwords in a row. Refused: RefusedError saying why (never which part was wrong)."""
    folded = fold_name(name)
    now = now or _now()
    with db.read() as conn:
        row = conn.execute(select(users_t).where(users_t.c.name == folded)).first() if folded else None
    locked = row is not None and row.locked_until is not None and row.locked_until > now
    # Verify outside the write transaction: the hash is slow on purpose and must not hold the write lock.
    good = (
        not locked
        and row is not None
        and row.password_hash is not None
        and _verify(row.password_hash, password or "")
    )
    if row is None or row.password_hash is None:
        _verify(_dummy_hash(), password or "")  # the same time as a real check: no hint that the name is unknown
    refusal: str | None = None
    with db.write() as conn:
        current = conn.execute(select(users_t).where(users_t.c.name == folded).with_for_update()).first()
        if current is None:
            refusal = _WRONG
            record(conn, folded, "user.sign_in_failed", f"user {folded}", "unknown account")
        elif locked:
            minutes = max(1, math.ceil((row.locked_until - now).total_seconds() / 60))  # type: ignore[union-attr]
            refusal = (f"account {folded} is locked after too many wrong passwords: try again in "
                       f"{plural(minutes, 'minute')}")
            record(conn, folded, "user.sign_in_failed", f"user {folded}", "account locked")
        elif not good:
            failures = int(current.failed_sign_ins or 0) + 1
            limit = read_setting(conn, "lockout_failures")
            refusal = _WRONG
            if failures >= limit:
                minutes = read_setting(conn, "lockout_minutes")
                conn.execute(update(users_t).where(users_t.c.id == current.id).values(
                    failed_sign_ins=0, locked_until=now + dt.timedelta(minutes=minutes)))
                refusal = f"{_WRONG}: account {folded} is now locked for {plural(minutes, 'minute')}"
                record(conn, folded, "user.sign_in_failed", f"user {folded}",
                       f"wrong password; locked for {plural(minutes, 'minute')} after {plural(failures, 'failure')}")
            else:
                conn.execute(update(users_t).where(users_t.c.id == current.id).values(failed_sign_ins=failures))
                record(conn, folded, "user.sign_in_failed", f"user {folded}", "wrong password")
        elif not current.enabled:
            refusal = f"account {folded} is disabled: ask an administrator"
            record(conn, folded, "user.sign_in_failed", f"user {folded}", "account disabled")
        else:
            values: dict[str, Any] = {"failed_sign_ins": 0, "locked_until": None, "last_sign_in_at": now}
            if _hasher.check_needs_rehash(current.password_hash):
                # Parameters were raised since this hash was made: store a stronger one while we hold the password.
                values["password_hash"] = _hasher.hash(password)
            conn.execute(update(users_t).where(users_t.c.id == current.id).values(**values))
            record(conn, folded, "user.sign_in", f"user {folded}", "signed in")
            account = _account(_row(conn, folded))
    # Raised after the block, so the failure and its audit row are committed, not rolled back.
    if refusal is not None:
        raise RefusedError(refusal)
    return account


def sign_in(db: Database, name: str, password: str, *, now: dt.datetime | None = None) -> Session:
    """Authenticate and open a session for the dashboard."""
    now = now or _now()
    account = authenticate(db, name, password, now=now)
    return Session(account.name, account.role, now, now)


def sso_sign_in(db: Database, email: str | None, *, now: dt.datetime | None = None) -> Session:
    """Open a session for an identity the company's OpenID Connect provider vouched for (the dashboard's
    `st.login`): the enabled account whose e-mail address it is, with that account's role. An administrator maps an
    address to a role by giving an account that address (`user add NAME --role ROLE --email ADDRESS`); an address
    no account has is refused, and the attempt is in the audit trail either way."""
    mail = (email or "").strip().lower()
    now = now or _now()
    if not mail:
        raise RefusedError("the identity provider gave no e-mail address, so no role can be given: ask an administrator")
    refusal: str | None = None
    with db.write() as conn:
        row = conn.execute(select(users_t).where(users_t.c.email == mail).with_for_update()).first()
        if row is None:
            refusal = (f"no account here has the address {mail}, so it has no role: an administrator gives it one "
                       f"with `python -m segcore user add NAME --role ROLE --email {mail} --no-password`")
            record(conn, mail, "user.sign_in_failed", f"user {mail}", "single sign-on: no account has this address")
        elif not row.enabled:
            refusal = f"account {row.name} is disabled: ask an administrator"
            record(conn, row.name, "user.sign_in_failed", f"user {row.name}", "single sign-on: account disabled")
        else:
            conn.execute(update(users_t).where(users_t.c.id == row.id).values(last_sign_in_at=now))
            record(conn, row.name, "user.sign_in", f"user {row.name}", f"signed in through single sign-on as {mail}")
    if refusal is not None:  # raised after the block: the failure's audit row is committed
        raise RefusedError(refusal)
    return Session(row.name, row.role, now, now)  # type: ignore[union-attr]


def set_email(db: Database, name: str, email: str | None, *, user: str | None = None) -> Account:
    """Give an account the e-mail address single sign-on knows it by (None or "" takes it away); an administrator's
    act, and an address belongs to one account only."""
    mail = (email or "").strip().lower() or None
    if mail is not None and ("@" not in mail or len(mail) > 254 or any(c.isspace() for c in mail)):
        raise UsageError(f"{email!r} is not an e-mail address")
    actor = user if user is not None else current_user()
    with db.write() as conn:
        require(conn, actor, "users")
        row = _row(conn, name, lock=True)
        if mail and conn.execute(
            select(users_t.c.id).where(users_t.c.email == mail, users_t.c.id != row.id)
        ).first() is not None:
            raise RefusedError(f"another account has the e-mail address {mail}")
        conn.execute(update(users_t).where(users_t.c.id == row.id).values(email=mail))
        record(conn, actor, "user.set_email", f"user {row.name}", f"e-mail address of {row.name} changed",
               before=row.email, after=mail)
        return _account(_row(conn, row.name))


def check_session(db: Database, session: Session, *, now: dt.datetime | None = None) -> Session:
    """The session with `last_seen` moved to now, or RefusedError when it was idle too long or its account was
    disabled; the role is read again, so a change of role takes effect at once."""
    now = now or _now()
    with db.read() as conn:
        idle = read_setting(conn, "session_idle_minutes")
        row = conn.execute(select(users_t.c.role, users_t.c.enabled).where(users_t.c.name == session.name)).first()
    if now - session.last_seen > dt.timedelta(minutes=idle):
        raise RefusedError(f"your session ended after {plural(idle, 'minute')} without activity: sign in again")
    if row is None or not row.enabled:
        raise RefusedError(f"account {session.name} is no longer enabled: ask an administrator")
    return replace(session, role=row.role, last_seen=now)
