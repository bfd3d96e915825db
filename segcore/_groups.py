"""Known user groups (SPEC §3): lists of e-mail addresses matched to contacts, typed, pasted or read from CSV.

Addresses are stored lower-cased (contacts.email is too) and matched by a join, never one query per address, so a
paste of tens of thousands of addresses is a handful of statements. Invalid addresses are reported, not stored.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, delete, func, insert, select, update

from ._db import Database
from ._engine import ActionRequest, ActionResult, _now, apply_action, split_emails
from ._errors import NotFoundError, RefusedError, UsageError
from ._export import neutralise
from ._models import Contact, KnownUserGroup, KnownUserGroupEmail, table_of
from ._words import plural
from .auth.audit import record
from .auth.identity import current_user
from .auth.roles import require
from .imports.check import EMAIL_RE as _EMAIL_RE

__all__ = [
    "ADDRESS_STATUSES",
    "GroupChange",
    "GroupInfo",
    "add_emails",
    "create_group",
    "delete_group",
    "export_group_csv",
    "get_group",
    "group_addresses",
    "group_to_segment",
    "list_groups",
    "parse_email_csv",
    "parse_emails",
    "remove_emails",
    "update_group",
]

groups = table_of(KnownUserGroup)
emails_t = table_of(KnownUserGroupEmail)
contacts = table_of(Contact)
ADDRESS_STATUSES = ("all", "matched", "unmatched")
_VALID = re.compile(_EMAIL_RE)
_HEADER = re.compile(r"^\s*(e[-_ ]?mail(\s*address)?|mail|courriel|adresse(\s*e?-?mail)?)\s*$", re.IGNORECASE)
_MAX_NAME = 100


@dataclass(frozen=True)
class GroupInfo:
    """A known user group with how many of its addresses match a contact."""

    id: int
    name: str
    description: str
    created_at: Any
    address_count: int
    matched_count: int

    @property
    def unmatched_count(self) -> int:
        return self.address_count - self.matched_count


@dataclass(frozen=True)
class GroupChange:
    """What adding addresses did: how many were new, how many the group had already, which were not addresses."""

    added: int
    already_there: int
    invalid: tuple[str, ...]


# --------------------------------------------------------------------------------------------------- parsing


def parse_emails(values: str | Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(valid addresses, invalid entries) from text or a list: any of spaces, commas, semicolons, new lines;
    lower-cased, in first-seen order, without repeats."""
    text = values if isinstance(values, str) else "\n".join(values)
    valid: list[str] = []
    invalid: list[str] = []
    for token in split_emails(text):
        (valid if _VALID.fullmatch(token) else invalid).append(token)
    return tuple(valid), tuple(invalid)


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # Spreadsheets on Windows save CSV in cp1252.
        return data.decode("cp1252", errors="replace")


def parse_email_csv(data: bytes) -> tuple[str, ...]:
    """The addresses of a CSV file, as raw cells: the column headed e-mail / mail / courriel, else the one column
    that holds addresses; a file whose addresses stand in several columns (a list laid out in rows) gives every
    cell, and a file without separators is read as plain addresses."""
    text = _decode(data)
    sample = text[:20_000]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        # One column (nothing to sniff): the lines are the addresses, after a header if there is one.
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return tuple(lines[1:] if lines and _HEADER.match(lines[0]) else lines)
    try:
        rows = [r for r in csv.reader(io.StringIO(text), dialect) if any(c.strip() for c in r)]
    except csv.Error as exc:
        raise UsageError(f"the file is not readable as CSV: {exc}") from None
    if not rows:
        return ()
    header = rows[0]
    col = next((i for i, h in enumerate(header) if _HEADER.match(h or "")), None)
    if col is not None:
        return tuple(r[col].strip() for r in rows[1:] if col < len(r) and r[col].strip())
    width = max(len(r) for r in rows)
    looks = [sum(1 for r in rows[:200] if i < len(r) and "@" in r[i]) for i in range(width)]
    if not any(looks):
        raise UsageError("no e-mail column found: name a column 'email' or put the addresses in one column")
    if sum(1 for n in looks if n) > 1:
        # Addresses in several columns: a list laid out in rows, not a table. Every cell counts, so nothing is
        # dropped silently; what is not an address is reported back as invalid by parse_emails.
        return tuple(c.strip() for r in rows for c in r if c.strip())
    col = looks.index(max(looks))
    body = rows if "@" in (header[col] if col < len(header) else "") else rows[1:]  # else a header by another name
    return tuple(r[col].strip() for r in body if col < len(r) and r[col].strip())


# --------------------------------------------------------------------------------------------------- reading


def _matched() -> sa.ColumnElement[bool]:
    # An alias of contacts, so the test stays correlated to the address even in a query that joins contacts.
    c = contacts.alias("matching_contact")
    return sa.exists().where(c.c.email == emails_t.c.email).correlate(emails_t)


def _infos(conn: Connection, where: Any = None) -> list[GroupInfo]:
    per_group = (
        select(
            emails_t.c.group_id,
            func.count().label("n"),
            func.sum(sa.case((_matched(), 1), else_=0)).label("matched"),
        )
        .group_by(emails_t.c.group_id)
        .subquery()
    )
    stmt = (
        select(groups, per_group.c.n, per_group.c.matched)
        .outerjoin(per_group, per_group.c.group_id == groups.c.id)
        .order_by(groups.c.name)
    )
    if where is not None:
        stmt = stmt.where(where)
    return [
        GroupInfo(r.id, r.name, r.description, r.created_at, int(r.n or 0), int(r.matched or 0))
        for r in conn.execute(stmt).all()
    ]


def _group(conn: Connection, name: str) -> GroupInfo:
    found = _infos(conn, groups.c.name == (name or "").strip())
    if not found:
        raise NotFoundError(f"no known user group {name!r}")
    return found[0]


def get_group(db: Database, name: str) -> GroupInfo:
    with db.read() as conn:
        return _group(conn, name)


def list_groups(db: Database) -> list[GroupInfo]:
    """All groups by name with their address and matched counts (one query)."""
    with db.read() as conn:
        return _infos(conn)


def group_addresses(
    db: Database, name: str, *, status: str = "all", limit: int = 100, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """A page of the group's addresses in the order they came, each with its contact (or None), and the total."""
    if status not in ADDRESS_STATUSES:
        raise UsageError(f"status must be one of {', '.join(ADDRESS_STATUSES)}")
    limit, offset = max(1, min(int(limit), 10_000)), max(0, int(offset))
    with db.read() as conn:
        gid = _group(conn, name).id
        cond: Any = emails_t.c.group_id == gid
        if status == "matched":
            cond = sa.and_(cond, _matched())
        elif status == "unmatched":
            cond = sa.and_(cond, ~_matched())
        total = conn.execute(select(func.count()).select_from(emails_t).where(cond)).scalar_one()
        # Two contacts may share an address: show the first by number.
        first = (
            select(contacts.c.email, func.min(contacts.c.contact_no).label("contact_no"))
            .where(contacts.c.email.in_(select(emails_t.c.email).where(emails_t.c.group_id == gid)))
            .group_by(contacts.c.email)
            .subquery()
        )
        rows = conn.execute(
            select(emails_t.c.email, first.c.contact_no, contacts.c.name)
            .select_from(emails_t)
            .outerjoin(first, first.c.email == emails_t.c.email)
            .outerjoin(contacts, contacts.c.contact_no == first.c.contact_no)
            .where(cond)
            .order_by(emails_t.c.position)
            .limit(limit)
            .offset(offset)
        ).all()
    return [{"email": r.email, "contact_no": r.contact_no, "name": r.name} for r in rows], int(total)


# --------------------------------------------------------------------------------------------------- writing


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > _MAX_NAME:
        raise UsageError(f"a group name has 1 to {_MAX_NAME} characters")
    return name


def _add(conn: Connection, gid: int, values: str | Iterable[str]) -> GroupChange:
    valid, invalid = parse_emails(values)
    have = set(conn.execute(select(emails_t.c.email).where(emails_t.c.group_id == gid)).scalars())
    new = [e for e in valid if e not in have]
    start = conn.execute(select(func.coalesce(func.max(emails_t.c.position), 0)).where(emails_t.c.group_id == gid)).scalar_one()
    if new:
        # One executemany: the driver sends the rows in batches, not one statement per address.
        conn.execute(insert(emails_t), [{"group_id": gid, "email": e, "position": start + i + 1} for i, e in enumerate(new)])
    return GroupChange(len(new), len(valid) - len(new), invalid)


def _who(user: str | None) -> str:
    return user if user is not None else current_user()


def _change_text(change: GroupChange) -> str:
    invalid = f", {plural(len(change.invalid), 'invalid entry', 'invalid entries')} left out" if change.invalid else ""
    return f"{plural(change.added, 'address', 'addresses')} added, {change.already_there:,} already there{invalid}"


def create_group(
    db: Database,
    name: str,
    *,
    description: str = "",
    emails: str | Iterable[str] = (),
    user: str | None = None,
) -> tuple[GroupInfo, GroupChange]:
    """Create a group, with its first addresses, in one transaction. `user` (default: the current user) needs the
    marketer role once accounts exist."""
    name = _clean_name(name)
    if len(description) > 200:
        raise UsageError("the description is longer than 200 characters")
    user = _who(user)
    with db.write() as conn:
        require(conn, user, "group.edit")
        if conn.execute(select(groups.c.id).where(groups.c.name == name)).first() is not None:
            raise RefusedError(f"a known user group named {name!r} already exists")
        gid = conn.execute(
            insert(groups).values(name=name, description=description.strip(), created_at=_now()).returning(groups.c.id)
        ).scalar_one()
        change = _add(conn, int(gid), emails)
        info = _group(conn, name)
        record(conn, user, "group.create", f"group {name}", f"group {name} created: {_change_text(change)}",
               after=plural(info.address_count, "address", "addresses"))
        return info, change


def add_emails(db: Database, name: str, emails: str | Iterable[str], *, user: str | None = None) -> GroupChange:
    """Add addresses to a group; those it has already and entries that are not addresses are reported back."""
    user = _who(user)
    with db.write() as conn:
        require(conn, user, "group.edit")
        before = _group(conn, name)
        change = _add(conn, before.id, emails)
        record(conn, user, "group.add_emails", f"group {before.name}", _change_text(change),
               before=plural(before.address_count, "address", "addresses"),
               after=plural(before.address_count + change.added, "address", "addresses"))
        return change


def remove_emails(db: Database, name: str, emails: str | Iterable[str], *, user: str | None = None) -> int:
    """Remove addresses from a group; returns how many were there."""
    valid, _ = parse_emails(emails)
    user = _who(user)
    with db.write() as conn:
        require(conn, user, "group.edit")
        before = _group(conn, name)
        gid = before.id
        removed = 0
        # In slices: an IN list per statement stays under every driver's parameter limit.
        for i in range(0, len(valid), 5_000):
            part = valid[i : i + 5_000]
            removed += conn.execute(
                delete(emails_t).where(emails_t.c.group_id == gid, emails_t.c.email.in_(part))
            ).rowcount
        record(conn, user, "group.remove_emails", f"group {before.name}",
               f"{plural(int(removed), 'address', 'addresses')} removed",
               before=plural(before.address_count, "address", "addresses"),
               after=plural(before.address_count - int(removed), "address", "addresses"))
        return int(removed)


def update_group(
    db: Database,
    name: str,
    *,
    new_name: str | None = None,
    description: str | None = None,
    user: str | None = None,
) -> GroupInfo:
    """Rename a group or change its description."""
    user = _who(user)
    with db.write() as conn:
        require(conn, user, "group.edit")
        before = _group(conn, name)
        gid = before.id
        values: dict[str, Any] = {}
        if new_name is not None and new_name.strip() != name.strip():
            values["name"] = _clean_name(new_name)
            if conn.execute(select(groups.c.id).where(groups.c.name == values["name"])).first() is not None:
                raise RefusedError(f"a known user group named {values['name']!r} already exists")
        if description is not None:
            if len(description) > 200:
                raise UsageError("the description is longer than 200 characters")
            values["description"] = description.strip()
        if values:
            conn.execute(update(groups).where(groups.c.id == gid).values(**values))
        after = _group(conn, values.get("name", name))
        if values:
            record(conn, user, "group.update", f"group {after.name}",
                   f"group {before.name} renamed to {after.name}" if after.name != before.name
                   else f"group {after.name} changed",
                   before=f"{before.name}: {before.description!r}", after=f"{after.name}: {after.description!r}")
        return after


def delete_group(db: Database, name: str, *, user: str | None = None) -> None:
    """Delete a group and its addresses (segments built from it keep their members)."""
    user = _who(user)
    with db.write() as conn:
        require(conn, user, "group.edit")
        before = _group(conn, name)
        gid = before.id
        conn.execute(delete(emails_t).where(emails_t.c.group_id == gid))
        conn.execute(delete(groups).where(groups.c.id == gid))
        record(conn, user, "group.delete", f"group {before.name}", f"group {before.name} deleted",
               before=plural(before.address_count, "address", "addresses"))


# --------------------------------------------------------------------------------------------------- using


def export_group_csv(db: Database, name: str, *, user: str | None = None) -> bytes:
    """The group as CSV (UTF-8 with BOM, for Excel): email, matched, contact_no, name; formula-looking cells
    neutralised so a spreadsheet never evaluates them. `user` (default: the current user) needs the marketer role
    (segment.export) once accounts exist; the export writes one audit row with its row count."""
    user = _who(user)
    with db.read() as conn:
        require(conn, user, "segment.export")  # groups have no owner: any exporter may export any group
    rows, total = group_addresses(db, name, limit=10_000)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["email", "matched", "contact_no", "name"])
    offset = 0
    while True:
        for r in rows:
            writer.writerow([
                neutralise(r["email"]), "yes" if r["contact_no"] else "no",
                neutralise(r["contact_no"] or ""), neutralise(r["name"] or ""),
            ])
        offset += len(rows)
        if offset >= total or not rows:
            break
        rows, total = group_addresses(db, name, limit=10_000, offset=offset)
    with db.write() as conn:
        require(conn, user, "segment.export")
        record(conn, user, "group.export", f"group {name.strip()}", f"{plural(offset, 'row')} as csv")
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def group_to_segment(
    db: Database, name: str, segment_no: str, *, user: str | None = None, expected_version: int | None = None
) -> ActionResult:
    """Add the group's contacts to a static segment as one "Add e-mails" step (undoable; unmatched reported)."""
    with db.read() as conn:
        gid = _group(conn, name).id
        addresses = tuple(
            conn.execute(select(emails_t.c.email).where(emails_t.c.group_id == gid).order_by(emails_t.c.position)).scalars()
        )
    if not addresses:
        raise RefusedError(f"group {name} has no addresses")
    return apply_action(
        db, segment_no, ActionRequest("add_emails", emails=addresses), user=user, expected_version=expected_version
    )
