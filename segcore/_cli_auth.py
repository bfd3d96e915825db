"""The `user` and `audit` commands, and who a command acts as (`--user` or SEGCORE_USER).

Without any account the command line acts as the operating-system user, as before accounts existed. Once accounts
exist, every command must name an enabled one; the permission checks themselves happen in the core's writers.
The command line asks for no password: whoever runs it can open the database file anyway (README, Serving a team).
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import os
import sys
from typing import Any

from ._db import Database
from ._errors import RefusedError, UsageError
from ._words import plural
from .auth import (
    ROLES,
    Account,
    account_role,
    add_user,
    audit_rows,
    current_user,
    disable_user,
    enable_user,
    fold_name,
    list_users,
    open_mode,
    reset_password,
    set_email,
    set_role,
)

__all__ = ["USER_ENV", "add_auth_commands", "cli_user"]

Output = tuple[str, Any]
USER_ENV = "SEGCORE_USER"


def cli_user(db: Database, named: str | None) -> str:
    """Who this command acts as: `--user`, else SEGCORE_USER; without accounts, else the operating-system user."""
    name = (named if named is not None else os.environ.get(USER_ENV, "")).strip()
    with db.read() as conn:
        if open_mode(conn):
            return name or current_user()
        if not name:
            raise UsageError(f"this database has accounts: name yours with --user NAME or {USER_ENV}")
        if account_role(conn, name) is None:
            raise RefusedError(f"{fold_name(name)!r} is not an enabled account on this database")
    return fold_name(name)


def add_auth_commands(sub: Any) -> None:
    """Register `user ...` and `audit` on the top-level sub-parser collection."""
    usr = sub.add_parser("user", help="accounts: add, list, change role, disable, reset a password")
    us = usr.add_subparsers(dest="user_command", metavar="COMMAND", parser_class=type(usr))
    usr.set_defaults(handler=_list)
    p = us.add_parser(
        "add", help="add an account",
        description="Add an account. The first account of a database must be an administrator (--role admin); "
        "after that only an administrator adds accounts.",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("--role", required=True, choices=ROLES, help=", ".join(ROLES))
    p.add_argument("--email", metavar="ADDRESS",
                   help="the account's e-mail address: single sign-on gives whoever signs in with it this account")
    _password_option(p)
    p.add_argument("--no-password", action="store_true",
                   help="no password: the account signs in only through single sign-on (needs --email)")
    p.set_defaults(handler=_add)
    p = us.add_parser("set-email", help="give an account the e-mail address single sign-on knows it by",
                      description="Map an e-mail address to an account (and so to its role) for single sign-on; "
                      "without ADDRESS the account has none.")
    p.add_argument("name", metavar="NAME")
    p.add_argument("email", metavar="ADDRESS", nargs="?")
    p.set_defaults(handler=_set_email)
    us.add_parser("list", help="every account with its role and state").set_defaults(handler=_list)
    p = us.add_parser("set-role", help="change an account's role")
    p.add_argument("name", metavar="NAME")
    p.add_argument("role", choices=ROLES, metavar="ROLE", help=", ".join(ROLES))
    p.set_defaults(handler=_set_role)
    p = us.add_parser("disable", help="stop an account from signing in or acting")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(handler=_disable)
    p = us.add_parser("enable", help="let a disabled account sign in and act again")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(handler=_enable)
    p = us.add_parser("reset-password", help="set a new password (also lifts a lock-out)")
    p.add_argument("name", metavar="NAME")
    _password_option(p)
    p.set_defaults(handler=_reset)

    p = sub.add_parser(
        "audit", help="the audit trail, newest first (managers and administrators)",
        description="Every write appends one audit row: who, when (UTC), what, the object, before and after.",
    )
    p.add_argument("--user", dest="who", metavar="NAME", help="rows written by this account")
    p.add_argument("--since", type=_since, metavar="DATE", help="rows from this date (YYYY-MM-DD) or time on")
    p.add_argument("--until", type=_since, metavar="DATE",
                   help="rows up to this date (YYYY-MM-DD, the whole day) or before this time")
    p.add_argument("--kind", metavar="KIND", help="a kind (segment.apply) or a family (segment)")
    p.add_argument("--object", metavar="OBJECT", help='one object, as the trail names it ("segment SPRING")')
    p.add_argument("--limit", type=int, default=1000, metavar="N", help="at most N rows (default 1000)")
    p.set_defaults(handler=_audit)


def _password_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--password-stdin", action="store_true",
        help="read the password from the first line of standard input (else it is asked for on a terminal)",
    )


def _since(text: str) -> dt.date | dt.datetime:
    text = text.strip()
    try:
        # A bare date stays a date, so that --until includes its whole day.
        return dt.date.fromisoformat(text) if len(text) == 10 else dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date (YYYY-MM-DD) or a time (YYYY-MM-DDTHH:MM)") from None


def _password(args: argparse.Namespace) -> str:
    """The new password, from standard input or asked twice on a terminal; never echoed, never printed."""
    if args.password_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    if not sys.stdin.isatty():
        raise UsageError("no terminal to ask the password on: give it on standard input with --password-stdin")
    first = getpass.getpass("New password: ")
    if getpass.getpass("Again: ") != first:
        raise UsageError("the two passwords differ: nothing changed")
    return first


def _line(a: Account) -> str:
    state = "enabled" if a.enabled else "disabled"
    if a.locked_until is not None and a.locked_until > dt.datetime.now(dt.UTC).replace(tzinfo=None):
        state += f", locked until {a.locked_until:%Y-%m-%d %H:%M} UTC"
    last = f"{a.last_sign_in_at:%Y-%m-%d %H:%M}" if a.last_sign_in_at else "never"
    return f"{a.name:<24} {a.role:<9} {state:<10} last sign-in {last}" + (f"  {a.email}" if a.email else "")


def _add(db: Database, args: argparse.Namespace) -> Output:
    if args.no_password and not args.email:
        raise UsageError("an account without a password signs in through single sign-on: give its --email")
    password = None if args.no_password else _password(args)
    account = add_user(db, args.name, args.role, password, email=args.email)
    return f"account {account.name} added ({account.role})", account.as_dict()


def _set_email(db: Database, args: argparse.Namespace) -> Output:
    account = set_email(db, args.name, args.email)
    text = f"{account.name} signs in through single sign-on as {account.email}" if account.email else (
        f"{account.name} has no e-mail address: single sign-on does not know it")
    return text, account.as_dict()


def _list(db: Database, args: argparse.Namespace) -> Output:
    accounts = list_users(db)
    if not accounts:
        return "no accounts: anyone acts as themselves (add the first administrator with `user add NAME --role admin`)", []
    text = "\n".join([_line(a) for a in accounts] + [plural(len(accounts), "account")])
    return text, [a.as_dict() for a in accounts]


def _set_role(db: Database, args: argparse.Namespace) -> Output:
    account = set_role(db, args.name, args.role)
    return f"{account.name} is now a {account.role}", account.as_dict()


def _disable(db: Database, args: argparse.Namespace) -> Output:
    account = disable_user(db, args.name)
    return f"account {account.name} disabled", account.as_dict()


def _enable(db: Database, args: argparse.Namespace) -> Output:
    account = enable_user(db, args.name)
    return f"account {account.name} enabled", account.as_dict()


def _reset(db: Database, args: argparse.Namespace) -> Output:
    account = reset_password(db, args.name, _password(args))
    return f"password of {account.name} reset", account.as_dict()


def _audit(db: Database, args: argparse.Namespace) -> Output:
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    rows = audit_rows(db, user=args.who, since=args.since, until=args.until, kind=args.kind, object=args.object, limit=args.limit)
    lines = []
    for r in rows:
        change = f"  [{r.before or '-'} -> {r.after or '-'}]" if r.before or r.after else ""
        lines.append(f"{r.at:%Y-%m-%d %H:%M:%S}  {r.user or '-'}  {r.kind}  {r.object}  {r.summary}{change}")
    lines.append(plural(len(rows), "audit row"))
    return "\n".join(lines), [r.as_dict() for r in rows]
