"""Custom fields: create (by imports), list, rename, retype and delete, each in one transaction.

A custom field's name is what filters use; its values live in custom_values (list fields in contact_codes under
`cf<id>`). Renaming rewrites the saved filters that name it; deleting or retyping is refused while a saved criteria
or a dynamic segment uses it, with the list of who does.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import Connection, delete, func, insert, select, update

from .._errors import NotFoundError, RefusedError, UsageError
from .._models import (
    ContactCode,
    CustomField,
    CustomValue,
    DynamicSegment,
    SavedCriteria,
    SegmentAction,
    table_of,
)
from .._words import plural
from ..auth.audit import record
from ..auth.identity import current_user
from ..auth.roles import require
from .builtin import CONTACT_FIELDS, OPS_BY_TYPE, RELATIONS

if TYPE_CHECKING:
    from .._db import Database

__all__ = [
    "CUSTOM_TYPES",
    "CustomFieldInfo",
    "check_custom_name",
    "create_custom_field",
    "delete_custom_field",
    "field_users",
    "list_custom_fields",
    "rename_custom_field",
    "retype_custom_field",
]

CUSTOM_TYPES = ("number", "date", "code", "text", "boolean", "list")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
# Names a custom field cannot take: the built-in fields, the relations and their prefixes.
_RESERVED = frozenset(CONTACT_FIELDS) | frozenset(RELATIONS) | {"id", "org_id", "attributes", "updated_at"}

fields_t = table_of(CustomField)
values_t = table_of(CustomValue)
codes_t = table_of(ContactCode)


@dataclass(frozen=True)
class CustomFieldInfo:
    """A custom field as lists show it: name, label, type, how many contacts have a value, who uses it."""

    name: str
    label: str
    type: str
    integer: bool
    contacts: int
    used_by: tuple[str, ...]
    created_by: str
    created_at: dt.datetime


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def check_custom_name(name: str) -> str:
    """The name, or a UsageError saying what a custom field name may be."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UsageError(
            f"{name!r} is not a field name: 1 to 40 lower-case letters, digits or '_', starting with a letter"
        )
    if name in _RESERVED:
        raise UsageError(f"{name!r} is a built-in field: choose another name")
    return name


def _check_type(type_: str) -> str:
    if type_ not in CUSTOM_TYPES:
        raise UsageError(f"{type_!r} is not a field type: use {', '.join(CUSTOM_TYPES)}")
    return type_


def _bump(conn: Connection) -> None:
    from .._snapshot import bump_data_version  # the snapshot module reads the registry: import at call time

    bump_data_version(conn)


def create_custom_field(
    conn: Connection, name: str, label: str, type_: str, *, integer: bool = False, user: str = ""
) -> int:
    """Add a custom field inside the caller's transaction (an import's); returns its id."""
    check_custom_name(name)
    _check_type(type_)
    label = (label or name).strip()[:200]
    require(conn, user, "fields.edit")
    if conn.execute(select(fields_t.c.id).where(fields_t.c.name == name)).first() is not None:
        raise RefusedError(f"a custom field {name!r} exists already")
    _bump(conn)
    record(conn, user, "field.create", f"custom field {name}", f"custom field {name} added",
           after=f"{type_}{' (whole numbers)' if integer and type_ == 'number' else ''}, label {label!r}")
    return int(
        conn.execute(
            insert(fields_t)
            .values(
                name=name,
                label=label,
                type=type_,
                integer=bool(integer) and type_ == "number",
                created_by=user,
                created_at=_now(),
            )
            .returning(fields_t.c.id)
        ).scalar_one()
    )


# ------------------------------------------------------------------------------------------- who uses a field


def _fields_in(node: Any) -> Iterator[str]:
    """Contact field names a filter's JSON names (related records' fields are not contact fields)."""
    if isinstance(node, dict):
        if "related" in node:
            return
        if "field" in node and isinstance(node["field"], str):
            yield node["field"]
        for key in ("all", "any"):
            for child in node.get(key) or ():
                yield from _fields_in(child)
        if "not" in node:
            yield from _fields_in(node["not"])


def _renamed(node: Any, old: str, new: str) -> Any:
    if isinstance(node, dict):
        if "related" in node:
            return node
        out = {k: _renamed(v, old, new) for k, v in node.items() if k != "field"}
        if "field" in node:
            out["field"] = new if node["field"] == old else node["field"]
        return {k: out[k] for k in node}  # same key order
    if isinstance(node, list):
        return [_renamed(v, old, new) for v in node]
    return node


def field_users(conn: Connection, name: str) -> tuple[str, ...]:
    """The saved criteria and dynamic segments whose filters name the field ("criteria X", "dynamic segment Y")."""
    users: list[str] = []
    crit = table_of(SavedCriteria)
    for code, steps in conn.execute(select(crit.c.code, crit.c.steps).order_by(crit.c.code)):
        if any(name in _fields_in((s or {}).get("filter")) for s in steps or ()):
            users.append(f"saved criteria {code}")
    dyn = table_of(DynamicSegment)
    for no, flt in conn.execute(select(dyn.c.no, dyn.c.filter_json).order_by(dyn.c.no)):
        if name in _fields_in(flt):
            users.append(f"dynamic segment {no}")
    return tuple(users)


def _row(conn: Connection, name: str) -> Any:
    row = conn.execute(select(fields_t).where(fields_t.c.name == name)).first()
    if row is None:
        raise NotFoundError(f"no custom field {name!r}")
    return row


# ------------------------------------------------------------------------------------------------ public API


def list_custom_fields(db: Database) -> list[CustomFieldInfo]:
    """Every custom field with its number of contacts that have a value and who uses it."""
    with db.read() as conn:
        counts: dict[int, int] = dict(
            conn.execute(select(values_t.c.field_id, func.count()).group_by(values_t.c.field_id)).all()
        )
        list_counts: dict[str, int] = dict(
            conn.execute(
                select(codes_t.c.kind, func.count(func.distinct(codes_t.c.contact_id)))
                .where(codes_t.c.kind.like("cf%"))
                .group_by(codes_t.c.kind)
            ).all()
        )
        out = []
        for r in conn.execute(select(fields_t).order_by(fields_t.c.name)).all():
            n = list_counts.get(f"cf{r.id}", 0) if r.type == "list" else counts.get(r.id, 0)
            out.append(
                CustomFieldInfo(
                    r.name,
                    r.label,
                    r.type,
                    bool(r.integer),
                    int(n),
                    field_users(conn, r.name),
                    r.created_by,
                    r.created_at,
                )
            )
        return out


def rename_custom_field(
    db: Database, name: str, new_name: str | None = None, *, label: str | None = None, user: str | None = None
) -> None:
    """Rename a custom field (saved filters that name it are rewritten) and/or change its label."""
    user = user if user is not None else current_user()
    with db.write() as conn:
        require(conn, user, "fields.edit")
        row = _row(conn, name)
        values: dict[str, Any] = {}
        if label is not None:
            if not label.strip():
                raise UsageError("a label cannot be empty")
            values["label"] = label.strip()[:200]
        if new_name is not None and new_name != name:
            check_custom_name(new_name)
            if conn.execute(select(fields_t.c.id).where(fields_t.c.name == new_name)).first() is not None:
                raise RefusedError(f"a custom field {new_name!r} exists already")
            values["name"] = new_name
            _rewrite_filters(conn, name, new_name)
        if not values:
            return
        conn.execute(update(fields_t).where(fields_t.c.id == row.id).values(**values))
        _bump(conn)
        record(conn, user, "field.rename", f"custom field {name}",
               f"custom field {name} {'renamed' if 'name' in values else 'relabelled'}",
               before=f"{row.name}, label {row.label!r}",
               after=f"{values.get('name', row.name)}, label {values.get('label', row.label)!r}")


def _rewrite_filters(conn: Connection, old: str, new: str) -> None:
    crit = table_of(SavedCriteria)
    for code, steps in conn.execute(select(crit.c.code, crit.c.steps)).all():
        if any(old in _fields_in((s or {}).get("filter")) for s in steps or ()):
            conn.execute(update(crit).where(crit.c.code == code).values(steps=_renamed(steps, old, new)))
    dyn = table_of(DynamicSegment)
    for id_, flt in conn.execute(select(dyn.c.id, dyn.c.filter_json)).all():
        if old in _fields_in(flt):
            conn.execute(update(dyn).where(dyn.c.id == id_).values(filter_json=_renamed(flt, old, new)))
    # The criteria log keeps its steps replayable (drift, reuse): their trees follow the new name; the sentence
    # written at the time stays as it was.
    acts = table_of(SegmentAction)
    for id_, flt in conn.execute(
        select(acts.c.id, acts.c.filter_json).where(acts.c.filter_json.is_not(None))
    ).all():
        if old in _fields_in(flt):
            conn.execute(update(acts).where(acts.c.id == id_).values(filter_json=_renamed(flt, old, new)))


def delete_custom_field(db: Database, name: str, *, user: str | None = None) -> None:
    """Delete a custom field and its values; refused while a saved criteria or dynamic segment uses it."""
    user = user if user is not None else current_user()
    with db.write() as conn:
        require(conn, user, "fields.edit")
        row = _row(conn, name)
        users = field_users(conn, name)
        if users:
            raise RefusedError(f"custom field {name!r} is in use by {', '.join(users)}: change those first")
        conn.execute(delete(values_t).where(values_t.c.field_id == row.id))
        conn.execute(delete(codes_t).where(codes_t.c.kind == f"cf{row.id}"))
        conn.execute(delete(fields_t).where(fields_t.c.id == row.id))
        _bump(conn)
        record(conn, user, "field.delete", f"custom field {name}", f"custom field {name} deleted with its values",
               before=f"{row.type}, label {row.label!r}")


def retype_custom_field(
    db: Database, name: str, new_type: str, *, date_order: str = "auto", user: str | None = None
) -> int:
    """Change a custom field's type when every stored value reads as the new type; returns how many values moved.

    Refused (nothing changed) when a value does not convert, naming a few; or when saved filters use the field
    and the new type takes other operators."""
    from ..imports.values import parse_booleans, parse_dates, parse_decimals  # the import's value rules

    _check_type(new_type)
    user = user if user is not None else current_user()
    with db.write() as conn:
        require(conn, user, "fields.edit")
        row = _row(conn, name)
        old = row.type
        if new_type == old:
            return 0
        if frozenset(OPS_BY_TYPE[old]) != frozenset(OPS_BY_TYPE[new_type]) or "list" in (old, new_type):
            users = field_users(conn, name)
            if users:
                raise RefusedError(
                    f"custom field {name!r} is in use by {', '.join(users)}, whose filters would not fit a "
                    f"{new_type} field: change those first"
                )
        if "list" in (old, new_type):
            moved = _retype_list(conn, row, new_type)
        else:
            stored = pd.DataFrame(
                conn.execute(
                    select(values_t.c.contact_id, values_t.c.num, values_t.c.txt, values_t.c.day).where(
                        values_t.c.field_id == row.id
                    )
                ).all(),
                columns=["contact_id", "num", "txt", "day"],
            )
            text = _as_text(stored, old)
            integer = False
            if new_type in ("text", "code"):
                text = text.str.strip().str.upper() if new_type == "code" else text
                new_values = {"num": None, "day": None, "txt": text.tolist()}
            else:
                parsed = {"number": parse_decimals, "boolean": parse_booleans}.get(new_type)
                result = parse_dates(text, order=date_order) if new_type == "date" else parsed(text)  # type: ignore[misc]
                if result.bad.any():
                    shown = ", ".join(repr(v) for v in text[result.bad].drop_duplicates().head(3))
                    why = (
                        result.ambiguous
                        or f"{plural(int(result.bad.sum()), 'value does', 'values do')} not read as {new_type}: {shown}"
                    )
                    raise RefusedError(f"custom field {name!r} cannot become {new_type}: {why}")
                if new_type == "date":
                    new_values = {
                        "num": None,
                        "txt": None,
                        "day": [dt.date.fromisoformat(v) for v in result.values],
                    }
                else:
                    nums = result.values.astype("float64").tolist()
                    integer = new_type == "number" and all(float(v).is_integer() for v in nums)
                    new_values = {"txt": None, "day": None, "num": nums}
            conn.execute(delete(values_t).where(values_t.c.field_id == row.id))
            _insert_values(conn, row.id, stored["contact_id"].tolist(), new_values)
            moved = len(stored)
            conn.execute(update(fields_t).where(fields_t.c.id == row.id).values(integer=integer))
        conn.execute(update(fields_t).where(fields_t.c.id == row.id).values(type=new_type))
        _bump(conn)
        record(conn, user, "field.retype", f"custom field {name}",
               f"custom field {name} retyped, {plural(moved, 'value')} converted", before=old, after=new_type)
        return moved


def _as_text(stored: pd.DataFrame, type_: str) -> pd.Series:
    if type_ in ("text", "code"):
        return stored["txt"].fillna("").astype(str)
    if type_ == "date":
        return stored["day"].map(lambda d: d.isoformat() if isinstance(d, dt.date) else str(d or ""))
    if type_ == "boolean":
        return stored["num"].map(lambda v: "true" if v == 1 else "false")
    return stored["num"].map(lambda v: str(int(v)) if float(v).is_integer() else repr(float(v)))


def _insert_values(conn: Connection, field_id: int, contact_ids: Sequence[int], cols: dict[str, Any]) -> None:
    if not contact_ids:
        return
    rows = [
        {
            "field_id": field_id,
            "contact_id": int(cid),
            "num": cols["num"][i] if cols["num"] is not None else None,
            "txt": cols["txt"][i] if cols["txt"] is not None else None,
            "day": cols["day"][i] if cols["day"] is not None else None,
        }
        for i, cid in enumerate(contact_ids)
    ]
    conn.execute(insert(values_t), rows)


def _retype_list(conn: Connection, row: Any, new_type: str) -> int:
    kind = f"cf{row.id}"
    if row.type == "list":
        if new_type not in ("text", "code"):
            raise RefusedError(f"a list field can become text or code, not {new_type}")
        pairs = conn.execute(
            select(codes_t.c.contact_id, codes_t.c.code)
            .where(codes_t.c.kind == kind)
            .order_by(codes_t.c.contact_id, codes_t.c.code)
        ).all()
        joined: dict[int, list[str]] = {}
        for cid, code in pairs:
            joined.setdefault(int(cid), []).append(code)
        conn.execute(delete(codes_t).where(codes_t.c.kind == kind))
        ids = list(joined)
        _insert_values(
            conn, row.id, ids, {"num": None, "day": None, "txt": [";".join(joined[i]) for i in ids]}
        )
        return len(ids)
    if row.type not in ("text", "code"):
        raise RefusedError(f"a {row.type} field cannot become a list")
    stored = conn.execute(
        select(values_t.c.contact_id, values_t.c.txt).where(values_t.c.field_id == row.id)
    ).all()
    seen: set[tuple[int, str]] = set()
    for cid, txt in stored:
        for item in (txt or "").split(";"):
            code = item.strip().upper()[:30]
            if code:
                seen.add((int(cid), code))
    conn.execute(delete(values_t).where(values_t.c.field_id == row.id))
    if seen:
        conn.execute(insert(codes_t), [{"kind": kind, "code": c, "contact_id": i} for i, c in sorted(seen)])
    return len(stored)
