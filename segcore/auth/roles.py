"""Roles and permissions, decided in the core: viewer < marketer < manager < admin, and the four-eyes rule.

Every writer calls `require(conn, user, permission)` inside its own transaction, so the dashboard, the command line
and any script obey the same table. A database without any account is in *open mode*: every check passes, as
before accounts existed, so scripts, tests and the demo keep working (`open_mode` is the one place that says so).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, and_, exists, func, select

from .._errors import RefusedError
from .._models import AuditEntry, Segment, SegmentAction, SegmentStatusEvent, User, table_of
from .._setting_specs import read_setting
from .identity import fold_name

__all__ = [
    "PERMISSIONS",
    "ROLES",
    "SEGMENT_CHANGE_KINDS",
    "Permission",
    "account_role",
    "allows",
    "four_eyes_refusal",
    "open_mode",
    "permissions_of_role",
    "require",
    "role_rank",
]

# Lowest first: each role may do everything the roles before it may.
ROLES = ("viewer", "marketer", "manager", "admin")

users_t = table_of(User)
audit_t = table_of(AuditEntry)
segments_t = table_of(Segment)
events_t = table_of(SegmentStatusEvent)
actions_t = table_of(SegmentAction)


@dataclass(frozen=True)
class Permission:
    """One permission: the lowest role that has it, and the action it allows as a refusal names it ("approving")."""

    name: str
    role: str
    doing: str
    # The permission needed to do the same to an object another person owns (a marketer edits their own segments).
    others: str | None = None


PERMISSIONS: dict[str, Permission] = {
    p.name: p
    for p in (
        Permission("segment.edit", "marketer", "building and editing segments", others="segment.edit_any"),
        Permission("segment.edit_any", "manager", "changing another person's segment"),
        Permission("segment.submit", "marketer", "submitting a segment for review", others="segment.edit_any"),
        Permission("segment.approve", "manager", "approving"),
        Permission("segment.reject", "manager", "rejecting"),
        Permission("segment.log", "manager", "logging a segment"),
        Permission("segment.cancel_log", "manager", "cancelling a logged segment"),
        Permission("segment.export", "marketer", "exporting a segment", others="segment.export_any"),
        Permission("segment.export_any", "manager", "exporting another person's segment"),
        Permission("campaign.edit", "manager", "changing campaigns"),
        Permission("dynamic.edit", "marketer", "changing dynamic segments"),
        Permission("group.edit", "marketer", "changing known user groups"),
        Permission("import", "admin", "importing data"),
        Permission("fields.edit", "admin", "changing custom fields"),
        Permission("settings", "admin", "changing settings"),
        Permission("users", "admin", "managing accounts"),
        Permission("audit.read", "manager", "reading the audit trail"),
        Permission("preferences", "viewer", "saving preferences"),
    )
}

# Audit kinds that change a segment's content or header: four-eyes counts them as "changed since its approval".
SEGMENT_CHANGE_KINDS = (
    "segment.create", "segment.copy", "segment.apply", "segment.undo", "segment.redo", "segment.update",
    "segment.submit",
)


def role_rank(role: str) -> int:
    """The role's place in ROLES (viewer 0 ... admin 3)."""
    try:
        return ROLES.index(role)
    except ValueError:
        raise ValueError(f"unknown role {role!r}") from None


def _permission(name: str) -> Permission:
    try:
        return PERMISSIONS[name]
    except KeyError:
        raise ValueError(f"unknown permission {name!r}") from None  # a programming error, not a user's


def allows(role: str, permission: str) -> bool:
    """Whether the role has the permission (by the table, whatever the database holds)."""
    return role_rank(role) >= role_rank(_permission(permission).role)


def permissions_of_role(role: str) -> frozenset[str]:
    """Every permission the role has: what a page may show as enabled."""
    return frozenset(name for name in PERMISSIONS if allows(role, name))


def open_mode(conn: Connection) -> bool:
    """True when the database has no account at all: then every check passes, as before accounts existed."""
    return conn.execute(select(users_t.c.id).limit(1)).first() is None


def account_role(conn: Connection, user: str | None) -> str | None:
    """The role of the enabled account `user`, or None when there is no such enabled account."""
    name = fold_name(user)
    if not name:
        return None
    row = conn.execute(select(users_t.c.role, users_t.c.enabled).where(users_t.c.name == name)).first()
    return row.role if row is not None and row.enabled else None


def require(conn: Connection, user: str | None, permission: str, *, owner: str | None = None) -> None:
    """Refuse (RefusedError) unless `user` may do `permission`; `owner` names whose object it is, if anyone's.

    Call it inside the writer's transaction, before writing: a refusal then rolls back with everything else."""
    perm = _permission(permission)
    if open_mode(conn) or conn.get_execution_options().get("segcore_scratch"):
        # A scratch transaction (a "what if" replay) is always rolled back: it changes nothing, so nobody needs leave.
        return
    name = fold_name(user)
    if not name:
        raise RefusedError("this database has accounts: sign in first (on the command line, name an account with "
                           "--user or SEGCORE_USER)")
    role = account_role(conn, name)
    if role is None:
        raise RefusedError(f"{name!r} is not an enabled account on this database")
    if not allows(role, perm.name):
        raise RefusedError(f"{perm.doing} needs the {perm.role} role; {name} is a {role}")
    if perm.others is not None and owner is not None and fold_name(owner) != name:
        other = _permission(perm.others)
        if not allows(role, other.name):
            raise RefusedError(
                f"{other.doing} needs the {other.role} role; {name} is a {role} and this belongs to {owner or 'nobody'}"
            )


# ----------------------------------------------------------------------------------------------- four-eyes


def _took_part(conn: Connection, seg: Row[Any, Any, Any], user: str, since_event: int, since_at: dt.datetime) -> str | None:
    """How `user` submitted or changed the segment since its last approval ("submitted", "changed"), or None."""
    no, seg_id = seg.no, seg.id
    submitted = conn.execute(
        select(exists().where(
            events_t.c.segment_id == seg_id, events_t.c.id > since_event, events_t.c.to_status == "submitted",
            func.lower(events_t.c.user) == user,
        ))
    ).scalar()
    if submitted:
        return "submitted"
    stepped = conn.execute(
        select(exists().where(
            actions_t.c.segment_id == seg_id, actions_t.c.created_at >= since_at, func.lower(actions_t.c.user) == user,
        ))
    ).scalar()
    # The audit trail also knows the changes the criteria log does not name a user for (undo, redo, header edits).
    audited = conn.execute(
        select(exists().where(
            audit_t.c.object == f"segment {no}", audit_t.c.at >= since_at, func.lower(audit_t.c.user) == user,
            audit_t.c.kind.in_(SEGMENT_CHANGE_KINDS),
        ))
    ).scalar()
    return "changed" if stepped or audited else None


def four_eyes_refusal(conn: Connection, segment_id: int, user: str | None) -> str | None:
    """Why `user` may not approve the segment under four-eyes (naming who else may), or None when they may.

    "Since its last approval": since the last approved event, or since the segment was created. Off in open mode
    and when the setting `four_eyes` is 0."""
    if open_mode(conn) or not read_setting(conn, "four_eyes"):
        return None
    seg = conn.execute(select(segments_t.c.id, segments_t.c.no, segments_t.c.created_at).where(
        segments_t.c.id == segment_id)).first()
    if seg is None:
        return None
    last = conn.execute(
        select(events_t.c.id, events_t.c.at)
        .where(events_t.c.segment_id == segment_id, events_t.c.to_status == "approved")
        .order_by(events_t.c.id.desc())
        .limit(1)
    ).first()
    since_event, since_at = (last.id, last.at) if last is not None else (0, seg.created_at)
    name = fold_name(user)
    how = _took_part(conn, seg, name, since_event, since_at)
    if how is None:
        return None
    approvers = [
        other
        for other in conn.execute(
            select(users_t.c.name)
            .where(and_(users_t.c.enabled.is_(True), users_t.c.role.in_(("manager", "admin")), users_t.c.name != name))
            .order_by(users_t.c.name)
        ).scalars()
        if _took_part(conn, seg, other, since_event, since_at) is None
    ]
    who = (
        f"another manager approves it: {', '.join(approvers)}"
        if approvers
        else "no other manager or administrator can approve it yet: ask an administrator to add one"
    )
    return f"four-eyes: {name} {how} segment {seg.no} since its last approval, so {who}"
