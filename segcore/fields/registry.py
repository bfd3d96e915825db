"""The field registry: built-in and custom fields together, the one place a field name is looked up.

The filter language, the SQL compiler, the fast path, the charts, the widgets, imports and exports ask a
`FieldRegistry`. `BUILTIN` knows the built-in fields only; `load_fields(conn)` adds the custom fields stored in the
database. A name in neither is an error, never a column.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Connection, select

from .._models import CustomField, table_of
from .builtin import CONTACT_FIELDS, RELATIONS, FieldSpec, custom_spec

if TYPE_CHECKING:
    from .._db import Database

__all__ = ["BUILTIN", "FieldRegistry", "fields_of", "load_fields"]


@dataclass(frozen=True, eq=False)
class FieldRegistry:
    """The contact fields a database knows (built-in first, then custom by name), and the related records' fields."""

    contact: Mapping[str, FieldSpec]
    custom: tuple[FieldSpec, ...] = field(default=())

    @classmethod
    def of(cls, custom: tuple[FieldSpec, ...] = ()) -> FieldRegistry:
        merged = dict(CONTACT_FIELDS)
        for spec in custom:
            merged[spec.name] = spec
        return cls(merged, custom)

    def get(self, name: str, relation: str | None = None) -> FieldSpec | None:
        """The spec of a field, or None when the name is not in the registry."""
        if relation is None:
            return self.contact.get(name)
        return RELATIONS.get(relation, {}).get(name)

    def names(self, relation: str | None = None) -> list[str]:
        return list(self.contact if relation is None else RELATIONS.get(relation, {}))

    def relation_of(self, name: str) -> str | None:
        """The relation a name belongs to when it is not a contact field (for error messages), else None."""
        for relation, fields in RELATIONS.items():
            if name in fields and name not in self.contact:
                return relation
        return None

    def custom_named(self, name: str) -> FieldSpec | None:
        spec = self.contact.get(name)
        return spec if spec is not None and spec.custom else None

    @property
    def key(self) -> tuple[tuple[int, str, str, bool], ...]:
        """What identifies this set of custom fields (for caches)."""
        return tuple((s.custom_id or 0, s.name, s.type, s.integer) for s in self.custom)


BUILTIN = FieldRegistry.of()


def load_fields(conn: Connection) -> FieldRegistry:
    """The registry of this database: built-in fields plus its custom fields, read in the caller's transaction."""
    t = table_of(CustomField)
    rows = conn.execute(select(t.c.id, t.c.name, t.c.label, t.c.type, t.c.integer).order_by(t.c.name)).all()
    if not rows:
        return BUILTIN
    return FieldRegistry.of(tuple(custom_spec(r.id, r.name, r.label, r.type, bool(r.integer)) for r in rows))


def fields_of(db: Database) -> FieldRegistry:
    """The registry of a database (one small read)."""
    with db.read() as conn:
        return load_fields(conn)
