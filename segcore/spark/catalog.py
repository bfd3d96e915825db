"""The contact sources an application database knows: the `sources` table, and which segments use each.

Adding or removing a source is an administrator's act (the `import` permission), written with its audit row in one
transaction. A source is checked in Spark (schema, mapped columns and their types) BEFORE that transaction opens,
so a bad configuration changes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from .._db import Database
from .._errors import RefusedError, UsageError
from .._models import ContactSource, DynamicSegment, Segment, table_of
from ..auth import current_user, record, require
from ..fields import FieldRegistry, load_fields
from ..imports.mapping import Mapping as ColumnMapping
from .errors import SourceInUse, SourceNotFound
from .source import Location, SourceSpec, SparkSource, open_source, source_fields

__all__ = [
    "SourceInfo",
    "add_source",
    "check_name",
    "fields_for",
    "get_source",
    "list_sources",
    "load_fields_for",
    "open_stored_source",
    "remove_source",
    "read_mappings",
    "segments_using",
    "source_exists",
    "source_info",
    "sources_in_use",
]

sources_t = table_of(ContactSource)
segments_t = table_of(Segment)
dynamic_t = table_of(DynamicSegment)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,59}")


@dataclass(frozen=True)
class SourceInfo:
    """A stored source: its definition, as `source list` and `source show` print it."""

    name: str
    spark_url: str
    contacts: Location
    mapping: dict[str, Any]
    interactions: Location | None
    interactions_mapping: dict[str, Any] | None
    created_by: str
    created_at: dt.datetime

    def spec(self) -> SourceSpec:
        """The definition to open it with (mappings as stored: what was checked when it was added)."""
        return SourceSpec(
            self.name,
            self.spark_url,
            self.contacts,
            ColumnMapping.from_json(self.mapping),
            self.interactions,
            ColumnMapping.from_json(self.interactions_mapping) if self.interactions_mapping else None,
        )

    def fields(self) -> FieldRegistry:
        """The fields a filter over this source may name (its custom fields with their types), without Spark."""
        return source_fields(ColumnMapping.from_json(self.mapping))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "spark": self.spark_url,
            "kind": self.contacts.kind,
            "location": self.contacts.location,
            "format": self.contacts.format or None,
            "interactions": None
            if self.interactions is None
            else {"kind": self.interactions.kind, "location": self.interactions.location,
                  "format": self.interactions.format or None},
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
        }  # fmt: skip


def _info(row: Any) -> SourceInfo:
    inter = (
        Location(row.interactions_kind, row.interactions_location, row.interactions_format or "")
        if row.interactions_kind
        else None
    )
    return SourceInfo(
        row.name,
        row.spark_url,
        Location(row.kind, row.location, row.format or ""),
        row.mapping,
        inter,
        row.interactions_mapping,
        row.created_by,
        row.created_at,
    )


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not _NAME.fullmatch(name):
        raise UsageError(
            f"source name {name!r} is not valid: 1 to 60 letters, digits, '-', '_' or '.', starting with a letter or digit"
        )
    return name


def source_exists(conn: Connection, name: str) -> bool:
    return conn.execute(select(sources_t.c.name).where(sources_t.c.name == name)).first() is not None


def add_source(db: Database, spec: SourceSpec, *, user: str | None = None) -> SparkSource:
    """Check a source in Spark, then store it (admin only, audited); returns the opened source."""
    check_name(spec.name)
    user = user if user is not None else current_user()
    with db.read() as conn:
        # Cheap refusals first: Spark is not started for a name that is taken or a person who may not.
        if source_exists(conn, spec.name):
            raise RefusedError(f"source {spec.name} already exists")
        require(conn, user, "import")
    source = open_source(spec)
    mapping = source.mapping.to_json()
    imapping = source.interactions_mapping.to_json() if source.interactions_mapping else None
    with db.write() as conn:
        require(conn, user, "import")
        if source_exists(conn, spec.name):
            raise RefusedError(f"source {spec.name} already exists")
        inter = spec.interactions
        conn.execute(
            insert(sources_t).values(
                name=spec.name,
                spark_url=spec.spark_url,
                kind=spec.contacts.kind,
                location=spec.contacts.location,
                format=spec.contacts.format or None,
                mapping=mapping,
                interactions_kind=inter.kind if inter else None,
                interactions_location=inter.location if inter else None,
                interactions_format=(inter.format or None) if inter else None,
                interactions_mapping=imapping,
                created_by=user,
            )
        )
        fields = ", ".join(c.field for c in source.mapping.columns if c.field)
        record(conn, user, "source.add", f"source {spec.name}",
               f"source {spec.name} added: {spec.contacts.describe()} on {spec.spark_url}",
               after=f"fields {fields}"[:500])  # fmt: skip
    return source


def list_sources(db: Database) -> list[SourceInfo]:
    with db.read() as conn:
        return [_info(r) for r in conn.execute(select(sources_t).order_by(sources_t.c.name))]


def get_source(db: Database, name: str) -> SourceInfo:
    with db.read() as conn:
        return source_info(conn, name)


def source_info(conn: Connection, name: str) -> SourceInfo:
    """A stored source's definition, read in the caller's transaction. SourceNotFound if none."""
    row = conn.execute(select(sources_t).where(sources_t.c.name == name)).first()
    if row is None:
        raise SourceNotFound(f"no source {name!r} (see: source list)")
    return _info(row)


def load_fields_for(conn: Connection, source: str | None = None) -> FieldRegistry:
    """The field registry a filter is read with, in the caller's transaction: this database's (built-in and custom
    fields), or for a segment or dynamic segment over a `source`, that source's own (its custom fields are not this
    database's). The one place the parser, the descriptions, the compilers, the widgets and the CLI ask."""
    if source is None:
        return load_fields(conn)
    return source_info(conn, source).fields()


def fields_for(db: Database, source: str | None = None) -> FieldRegistry:
    """`load_fields_for` in a read of its own (a page run, a command)."""
    with db.read() as conn:
        return load_fields_for(conn, source)


def read_mappings(text: str | bytes, name: str) -> tuple[ColumnMapping | None, ColumnMapping | None]:
    """The contacts and interactions mappings of a JSON mapping file's text (`source add --mapping`, the Data page's
    upload): a mapping, or `{"contacts": ..., "interactions": ...}`. UsageError, naming the file, if it is not one."""
    try:
        data = json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{name} is not a JSON mapping: {exc}") from None
    if isinstance(data, dict) and "contacts" in data and "columns" not in data:
        contacts = ColumnMapping.from_json({"kind": "contacts", **(data["contacts"] or {})})
        inter = data.get("interactions")
        return contacts, (ColumnMapping.from_json({"kind": "interactions", **inter}) if inter else None)
    return ColumnMapping.from_json(data), None


def sources_in_use(db: Database) -> dict[str, list[str]]:
    """Every source's name with the segments built over it (one read for all)."""
    with db.read() as conn:
        rows = conn.execute(
            select(sources_t.c.name, segments_t.c.no)
            .outerjoin(segments_t, segments_t.c.source == sources_t.c.name)
            .order_by(sources_t.c.name, segments_t.c.no)
        ).all()
    out: dict[str, list[str]] = {}
    for name, no in rows:
        out.setdefault(name, [])
        if no is not None:
            out[name].append(no)
    return out


def segments_using(conn: Connection, name: str) -> list[str]:
    return list(conn.execute(select(segments_t.c.no).where(segments_t.c.source == name).order_by(segments_t.c.no)).scalars())


def remove_source(db: Database, name: str, *, user: str | None = None) -> None:
    """Forget a source (admin only, audited); refused while a segment is built over it."""
    user = user if user is not None else current_user()
    with db.write() as conn:
        require(conn, user, "import")
        if not source_exists(conn, name):
            raise SourceNotFound(f"no source {name!r} (see: source list)")
        using = segments_using(conn, name)
        if using:
            raise SourceInUse(f"source {name} is used by segment{'s' if len(using) > 1 else ''} {', '.join(using)}")
        # A dynamic segment's filter is read with its source's fields: without the source it could not be read.
        counting = list(conn.execute(
            select(dynamic_t.c.no).where(dynamic_t.c.source == name).order_by(dynamic_t.c.no)
        ).scalars())
        if counting:
            many = "s" if len(counting) > 1 else ""
            raise SourceInUse(f"source {name} is counted by dynamic segment{many} {', '.join(counting)}")
        conn.execute(delete(sources_t).where(sources_t.c.name == name))
        record(conn, user, "source.remove", f"source {name}", f"source {name} removed")


def open_stored_source(db: Database, name: str) -> SparkSource:
    """Open a stored source in Spark (its session started or reused)."""
    return open_source(get_source(db, name).spec())

