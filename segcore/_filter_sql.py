"""Compile a filter tree to a SQLAlchemy Core boolean over the `contacts` table.

Every value travels as a bound parameter; a field name only ever becomes a column through the whitelist in
segcore/_fields.py; LIKE patterns are escaped, so `%`, `_` and the escape character in a value are plain characters.
The output runs unchanged on SQLite and PostgreSQL.

The logic is TWO-VALUED: every compiled condition is TRUE or FALSE, never NULL, so `Not` is an exact complement and
a contact is never silently dropped by SQL's third value. The rule, also in docs/filters.md:

- A text or code value is *empty* when it is NULL or ''; a number, date or derived value when it is NULL.
- `eq`, `in`, `lt`, `le`, `gt`, `ge`, `between`, `contains`, `starts_with`, `ends_with`, `matches`, `has_any`,
  `has_all` are FALSE on an empty value.
- `ne`, `not_in`, `has_none` are TRUE on an empty value (they are the exact complements of `eq`, `in`, `has_any`).
- `is_empty` is TRUE on an empty value, `is_not_empty` is its complement.
- `is_true` is TRUE only on true; `is_false` is its complement.

Free text ignores case and accents: `folded(column)` (segcore/_fold.py, one rule for SQLite, PostgreSQL and the
in-memory path) against the folded value. Code fields (and e-mails) are stored normalised, so equality is plain
`column = :value` and the index serves it; their patterns compare lower-cased. Text ranges (`between`, `lt`, `le`,
`gt`, `ge` on text and code fields) compare folded values in code-point order. Derived fields become ranges on
stored dates, computed in Python at `today`: `age >= a` is `birth_date <= today - a years` (29 February clamped to
28 February), so no dialect needs date functions. Related records (`interactions`, `profile`) are an
`id IN (SELECT contact_id ...)` sub-select; cancelled interactions never count.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ColumnElement, Select, Table

from ._dates import shift_years
from ._filter_tree import Condition, Group, Node, Not, Related, resolve_date, validate
from ._fold import fold, folded, in_code_point_order
from ._models import Contact, ContactCode, CustomValue, Interaction, ProfileAnswer
from .fields import AGE_BANDS, BUILTIN, FieldRegistry, FieldSpec

__all__ = ["LIKE_ESCAPE", "TEXT_RANGE_OPS", "compile_filter", "like_pattern", "matching_ids"]

contacts: Table = Contact.__table__  # type: ignore[assignment]
contact_codes: Table = ContactCode.__table__  # type: ignore[assignment]
interactions: Table = Interaction.__table__  # type: ignore[assignment]
profile_answers: Table = ProfileAnswer.__table__  # type: ignore[assignment]
custom_values: Table = CustomValue.__table__  # type: ignore[assignment]

RELATION_TABLES: dict[str, Table] = {"interactions": interactions, "profile": profile_answers}

# '/' rather than '\\': its SQL literal is the same under every dialect and every string setting.
LIKE_ESCAPE = "/"

Bool = ColumnElement[bool]


def _escape_like(text: str) -> str:
    return (
        text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )


def like_pattern(op: str, value: str) -> str:
    """The LIKE pattern of a text operator; only `matches` turns `*` / `?` into wildcards."""
    if op == "matches":
        return "".join("%" if ch == "*" else "_" if ch == "?" else _escape_like(ch) for ch in value)
    text = _escape_like(value)
    return {"contains": f"%{text}%", "starts_with": f"{text}%", "ends_with": f"%{text}"}[op]


class _Compiler:
    """Compiles one tree at one `today`."""

    def __init__(self, today: dt.date, fields: FieldRegistry = BUILTIN) -> None:
        self.today = today
        self.fields = fields

    # -- structure

    def node(self, node: Node, table: Table, relation: str | None) -> Bool:
        if isinstance(node, Condition):
            spec = self.fields.get(node.field, relation)
            if spec is None:  # pragma: no cover - validate() refused it already
                raise ValueError(f"unknown field {node.field!r}")
            return self.condition(spec, node, table)
        if isinstance(node, Group):
            if not node.children:
                return sa.true() if node.kind == "all" else sa.false()
            parts = [self.node(c, table, relation) for c in node.children]
            if len(parts) == 1:
                return parts[0]
            return sa.and_(*parts) if node.kind == "all" else sa.or_(*parts)
        if isinstance(node, Not):
            return sa.not_(self.node(node.child, table, relation))
        if isinstance(node, Related):
            return self.related(node)
        raise TypeError(f"not a filter node: {node!r}")  # pragma: no cover

    def related(self, node: Related) -> Bool:
        rel = RELATION_TABLES[node.relation]
        where = [self.node(node.where, rel, node.relation)]
        if "cancelled" in rel.c:
            # A cancelled logged segment's interactions never happened, as far as segments are concerned.
            where.append(rel.c.cancelled == sa.false())
        sub = sa.select(rel.c.contact_id).where(*where)
        if node.min_count > 1:
            sub = sub.group_by(rel.c.contact_id).having(sa.func.count() >= node.min_count)
        else:
            sub = sub.distinct()
        return contacts.c.id.in_(sub)

    # -- conditions

    def condition(self, spec: FieldSpec, cond: Condition, table: Table) -> Bool:
        op, value = cond.op, cond.value
        if spec.derived:
            return self.derived(spec, op, value)
        if spec.type == "list":
            return self.list_field(spec, op, value)
        if spec.custom:
            return self.custom(spec, op, value)
        return self.scalar(spec, table.c[spec.name], op, value)

    def text(self, spec: FieldSpec, col: Any, op: str, value: Any) -> Bool:
        if op == "is_empty":
            return sa.or_(col.is_(None), col == "")
        if op == "is_not_empty":
            return sa.and_(col.is_not(None), col != "")
        if op in ("ne", "not_in"):
            return sa.not_(self.text(spec, col, "eq" if op == "ne" else "in", value))
        if op in TEXT_RANGE_OPS:
            return _text_range(col, op, value)
        if spec.type == "text" and not spec.stored_lower:
            # Free text ignores case and accents: the column and the value go through the one folding rule.
            target = folded(col)
            if op == "eq":
                test: Bool = target == fold(value)
            elif op == "in":
                test = target.in_([fold(v) for v in value])
            else:
                test = target.like(like_pattern(op, fold(value)), escape=LIKE_ESCAPE)
            # A value of accents alone folds to '', as does an empty column: empty values never match.
            return sa.and_(col.is_not(None), col != "", test)
        if op in ("eq", "in"):
            # Code fields and e-mails are stored normalised and the value was normalised the same way: the column
            # is compared as it is, so its index serves the lookup.
            test = col == value if op == "eq" else col.in_(list(value))
        else:
            # LIKE folds both sides: code values are normalised to upper or lower case, patterns are not.
            like_col = col if spec.stored_lower else sa.func.lower(col)
            test = like_col.like(like_pattern(op, value.lower()), escape=LIKE_ESCAPE)
        if op == "matches":
            # '*' alone would match '': empty values never match.
            return sa.and_(col.is_not(None), col != "", test)
        return sa.and_(col.is_not(None), test)

    def scalar(self, spec: FieldSpec, col: Any, op: str, value: Any) -> Bool:
        """A condition on a value column (built-in or custom), two-valued."""
        if spec.type == "boolean":
            if spec.custom:
                return sa.and_(col.is_not(None), col == 1) if op == "is_true" else sa.not_(self.scalar(spec, col, "is_true", None))
            return col.is_(True) if op == "is_true" else col.is_not(True)
        if spec.type in ("text", "code"):
            return self.text(spec, col, op, value)
        conv: Callable[[Any], Any] = (
            (lambda v: resolve_date(v, self.today)) if spec.type == "date" else _number
        )
        return _ordered(col, op, value, conv)

    def custom(self, spec: FieldSpec, op: str, value: Any) -> Bool:
        """A custom field: `id IN (its value rows that pass)`; a contact with no row has an empty value.

        The operators that are true on an empty value (ne, not_in, is_empty, is_false) are the exact complements of
        eq, in, is_not_empty, is_true, so they compile as NOT of those: the sub-select only ever looks for values."""
        positive = _COMPLEMENT.get(op)
        if positive is not None:
            return sa.not_(self.custom(spec, positive, value))
        cv = custom_values
        col = {"number": cv.c.num, "boolean": cv.c.num, "date": cv.c.day}.get(spec.type, cv.c.txt)
        sub = sa.select(cv.c.contact_id).where(cv.c.field_id == spec.custom_id, self.scalar(spec, col, op, value))
        return contacts.c.id.in_(sub)

    def list_field(self, spec: FieldSpec, op: str, values: tuple[str, ...]) -> Bool:
        cc = contact_codes
        sub = sa.select(cc.c.contact_id).where(cc.c.kind == spec.code_kind)
        sub = sub.where(cc.c.code == values[0]) if len(values) == 1 else sub.where(cc.c.code.in_(values))
        if op == "has_all" and len(values) > 1:
            sub = sub.group_by(cc.c.contact_id).having(sa.func.count(sa.distinct(cc.c.code)) == len(values))
        hit = contacts.c.id.in_(sub)
        return sa.not_(hit) if op == "has_none" else hit

    def derived(self, spec: FieldSpec, op: str, value: Any) -> Bool:
        if spec.name == "days_since_last_purchase":
            col = contacts.c.last_purchase_date
            if op in ("is_empty", "is_not_empty"):
                return col.is_(None) if op == "is_empty" else col.is_not(None)
            if op == "ne":
                return sa.not_(self.derived(spec, "eq", value))
            # days >= n  <=>  last_purchase_date <= today - n: ranges on the stored date, flipped.
            return _ranges(col, [self.days_span(op, value)])
        col = contacts.c.birth_date
        if op in ("is_empty", "is_not_empty"):
            return col.is_(None) if op == "is_empty" else col.is_not(None)
        if op in ("ne", "not_in"):
            return sa.not_(self.derived(spec, "eq" if op == "ne" else "in", value))
        if spec.name == "age_band":
            bands = {label: (lo, hi) for label, lo, hi in AGE_BANDS}
            labels = [value] if op == "eq" else list(value)
            return _ranges(col, [self.age_span(*bands[label]) for label in labels])
        lo, hi = _number_span(op, value)
        return _ranges(col, [self.age_span(lo, hi)])

    def years_ago(self, years: int) -> dt.date:
        """The latest birth date of someone at least `years` old today."""
        return shift_years(self.today, -years)

    def age_span(self, lo: int | None, hi: int | None) -> tuple[dt.date | None, dt.date | None, bool]:
        """Ages lo..hi (inclusive) as birth dates (after, up to]: (exclusive lower, inclusive upper, True)."""
        upper = self.years_ago(lo) if lo is not None else None
        lower = self.years_ago(hi + 1) if hi is not None else None
        return lower, upper, True

    def days_span(self, op: str, value: Any) -> tuple[dt.date | None, dt.date | None, bool]:
        lo, hi = _number_span(op, value)
        upper = self.today - dt.timedelta(days=lo) if lo is not None else None
        lower = self.today - dt.timedelta(days=hi) if hi is not None else None
        return lower, upper, False


# The operators true on an empty value, each the exact complement of one that is false on it.
_COMPLEMENT = {"ne": "eq", "not_in": "in", "is_empty": "is_not_empty", "is_false": "is_true"}


def _number(value: int | float) -> Any:
    # Typed explicitly: compared with a NUMERIC(14, 2) column, PostgreSQL would otherwise cast a whole number to
    # 4-byte INTEGER (too small for large amounts) or round a decimal to the column's scale.
    return sa.literal(value, sa.BigInteger() if isinstance(value, int) else sa.Numeric(asdecimal=False))


def _number_span(op: str, value: Any) -> tuple[int | None, int | None]:
    """A whole-number operator as an inclusive range lo..hi (None = unbounded)."""
    if op == "eq":
        return value, value
    if op == "lt":
        return None, value - 1
    if op == "le":
        return None, value
    if op == "gt":
        return value + 1, None
    if op == "ge":
        return value, None
    if op == "between":
        return value[0], value[1]
    raise ValueError(f"operator {op} on a derived number")  # pragma: no cover - validate() refused it


def _ranges(col: Any, spans: list[tuple[dt.date | None, dt.date | None, bool]]) -> Bool:
    """col within any of the spans; a span's lower bound is exclusive when its flag says so."""
    parts: list[Bool] = []
    for lower, upper, lower_open in spans:
        tests: list[Bool] = [col.is_not(None)]
        if lower is not None:
            tests.append(col > lower if lower_open else col >= lower)
        if upper is not None:
            tests.append(col <= upper)
        parts.append(sa.and_(*tests))
    return parts[0] if len(parts) == 1 else sa.or_(*parts)


def _ordered(col: Any, op: str, value: Any, conv: Callable[[Any], Any]) -> Bool:
    if op == "is_empty":
        return col.is_(None)
    if op == "is_not_empty":
        return col.is_not(None)
    if op == "ne":
        return sa.not_(_ordered(col, "eq", value, conv))
    if op == "between":
        test: Bool = col.between(conv(value[0]), conv(value[1]))
    else:
        v = conv(value)
        test = {"eq": col == v, "lt": col < v, "le": col <= v, "gt": col > v, "ge": col >= v}[op]
    return sa.and_(col.is_not(None), test)


# Business Central's text ranges (`A..C`, `..C`, `A..`): on text and code fields, folded values compared in code-point
# order (PostgreSQL: COLLATE "C"), so `C` is within A..C and `CA` is not, as with Python's str.
TEXT_RANGE_OPS = frozenset({"lt", "le", "gt", "ge", "between"})


def _text_range(col: Any, op: str, value: Any) -> Bool:
    key = in_code_point_order(folded(col))
    if op == "between":
        test: Bool = sa.and_(key >= fold(value[0]), key <= fold(value[1]))
    else:
        v = fold(value)
        test = {"lt": key < v, "le": key <= v, "gt": key > v, "ge": key >= v}[op]
    # '' sorts before everything: an empty value must be refused explicitly (two-valued rule).
    return sa.and_(col.is_not(None), col != "", test)


def compile_filter(
    node: Node, *, today: dt.date | None = None, fields: FieldRegistry | None = None
) -> ColumnElement[bool]:
    """A boolean over `contacts` that is TRUE exactly for the contacts the tree matches.

    `fields` is the database's registry: a custom field compiles only through it (built-ins when None)."""
    fields = fields or BUILTIN
    # Validated again (cheap): a tree built by hand in Python gets the same whitelist as one from JSON or text.
    return _Compiler(today or dt.date.today(), fields).node(validate(node, fields), contacts, None)


def matching_ids(
    node: Node, *, today: dt.date | None = None, fields: FieldRegistry | None = None
) -> Select[Any]:
    """SELECT contacts.id of the contacts the tree matches."""
    return sa.select(contacts.c.id).where(compile_filter(node, today=today, fields=fields))
