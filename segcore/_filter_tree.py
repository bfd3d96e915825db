"""The typed filter tree: nodes, their JSON form, and validation against the field whitelist.

A filter is a tree of frozen (hashable) nodes. `from_json` builds one from the JSON form and validates it, so every
tree downstream (the text form, the SQL compiler, the fast path, the description) can trust field names, operators
and value types. `validate` returns the tree with its values normalised: code values as they are stored, numbers as
int/float, dates as ISO strings or relative tokens (`today-90d`), lists as tuples. The language is described for
users in docs/filters.md.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from ._dates import month_end, month_start, shift_months
from ._errors import FilterError
from ._fold import fold
from .fields import BUILTIN, LIST_VALUE_OPS, NO_VALUE_OPS, RELATIONS, FieldRegistry, FieldSpec

__all__ = [
    "EMPTY",
    "MAX_DEPTH",
    "MAX_LIST_VALUES",
    "MAX_NODES",
    "MAX_NUMBER_CHARS",
    "MAX_STRING",
    "MAX_TOTAL_VALUES",
    "MONTH_END",
    "MONTH_START",
    "TEXT_RANGE_OPS",
    "Condition",
    "Group",
    "Node",
    "Not",
    "Related",
    "allowed_ops",
    "first_surrogate",
    "fold_text",
    "from_json",
    "is_relative_date",
    "kind_of",
    "resolve_date",
    "to_json",
    "unknown_field_error",
    "validate",
    "validate_condition",
]

MAX_NODES = 500
MAX_DEPTH = 12
MAX_LIST_VALUES = 10_000
# All the values of one tree together: each becomes a bound parameter, and databases cap those per statement
# (SQLite builds commonly at 32,766).
MAX_TOTAL_VALUES = 30_000
MAX_STRING = 1_000
MAX_MIN_COUNT = 1_000_000
# Relative dates reach at most about 200 years either way, so that they always resolve to a real date.
_MAX_OFFSET = {"d": 73_000, "w": 10_430, "m": 2_400, "y": 200}

_RELATIVE = re.compile(r"today(?:([+-])(\d{1,6})([dwmy]))?", re.IGNORECASE)
# Month boundaries, stored as these words: Business Central's -CM (first day of this month) and CM (its last day).
MONTH_START, MONTH_END = "month_start", "month_end"
# Business Central's spellings of a relative date, accepted in JSON and text alike: t (today), w (work date, which
# is today here), -30D / +2W / -6M / -1Y (a date formula from today), CM and -CM.
_BC_RELATIVE = re.compile(r"([+-])(\d{1,6})([dwmy])", re.IGNORECASE)
_BC_WORDS = {"t": "today", "w": "today", "cm": MONTH_END, "-cm": MONTH_START}
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


@dataclass(frozen=True)
class Condition:
    """One test on one field: `field op value`."""

    field: str
    op: str
    value: Any = None


@dataclass(frozen=True)
class Group:
    """AND (`all`) or OR (`any`) of child nodes; an empty `all` matches everything, an empty `any` nothing."""

    kind: Literal["all", "any"]
    children: tuple[Node, ...] = ()


@dataclass(frozen=True)
class Not:
    """The exact complement of a node (the logic is two-valued, so there is no third 'unknown' outcome)."""

    child: Node


@dataclass(frozen=True)
class Related:
    """True when at least `min_count` related records of the contact satisfy `where` together."""

    relation: Literal["interactions", "profile"]
    where: Node
    min_count: int = 1


Node = Condition | Group | Not | Related

EMPTY: Node = Group("all", ())


# ------------------------------------------------------------------------------------------------------- dates


def is_relative_date(value: str) -> bool:
    """True for a stored relative date: `today`, `today-90d`, `month_start`, `month_end`."""
    return value in (MONTH_START, MONTH_END) or _RELATIVE.fullmatch(value) is not None


def resolve_date(value: str | dt.date, today: dt.date) -> dt.date:
    """The calendar date of an ISO date or a relative token; months and years clamp to the end of a short month."""
    if isinstance(value, dt.date):
        return value
    text = value.strip()
    if text == MONTH_START:
        return month_start(today)
    if text == MONTH_END:
        return month_end(today)
    m = _RELATIVE.fullmatch(text)
    if m is None:
        return dt.date.fromisoformat(text)
    sign, amount, unit = m.groups()
    if sign is None:
        return today
    n = int(amount) * (1 if sign == "+" else -1)
    unit = unit.lower()
    if unit == "d":
        return today + dt.timedelta(days=n)
    if unit == "w":
        return today + dt.timedelta(weeks=n)
    return shift_months(today, n if unit == "m" else 12 * n)


_DATE_HINT = "write YYYY-MM-DD, t (today), -30D, today-90d, CM or -CM"


def _relative_token(spec: FieldSpec, text: str) -> str | None:
    """The stored token of a relative date as a user may write it, or None when `text` is not one."""
    lower = text.lower()
    if lower in _BC_WORDS:
        return _BC_WORDS[lower]
    if lower in (MONTH_START, MONTH_END):
        return lower
    m = _RELATIVE.fullmatch(text) or _BC_RELATIVE.fullmatch(text)
    if m is None:
        return None
    sign, amount, unit = m.groups()
    if sign is None:
        return "today"
    unit = unit.lower()
    if int(amount) > _MAX_OFFSET[unit]:
        raise FilterError(f"{spec.label}: {text!r} reaches too far; relative dates go at most 200 years")
    return f"today{sign}{int(amount)}{unit}"


def _normalize_date(spec: FieldSpec, value: Any) -> str:
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return value.isoformat()
    if not isinstance(value, str):
        raise FilterError(f"{spec.label}: {_show(value)} is not a date ({_DATE_HINT})")
    text = value.strip()
    token = _relative_token(spec, text)
    if token is not None:
        return token
    if _ISO_DATE.fullmatch(text):
        try:
            return dt.date.fromisoformat(text).isoformat()
        except ValueError:
            pass
    raise FilterError(f"{spec.label}: {_show(value)} is not a date ({_DATE_HINT})")


def _date_order_key(value: str) -> tuple[str, int] | None:
    """A key to compare two dates of the same kind without knowing today, or None when they cannot be compared."""
    if value in (MONTH_START, MONTH_END):
        # The first day of this month never comes after its last day; against today, either can (on the 1st / 31st).
        return ("month", 0 if value == MONTH_START else 1)
    m = _RELATIVE.fullmatch(value)
    if m is None:
        return ("iso", dt.date.fromisoformat(value).toordinal())
    sign, amount, unit = m.groups()
    n = 0 if sign is None else int(amount) * (1 if sign == "+" else -1)
    if unit in (None, "d", "w"):
        return ("days", n * (7 if unit == "w" else 1))
    return ("months", n * (12 if unit == "y" else 1))


def fold_text(value: str) -> str:
    """Lower case without accents (`Élodie` -> `elodie`): how text ranges compare values, in code-point order."""
    return fold(value)


# ------------------------------------------------------------------------------------------------------ values


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_string(spec: FieldSpec, value: str) -> None:
    if len(value) > MAX_STRING:
        raise FilterError(f"{spec.label}: a value is longer than {MAX_STRING:,} characters")
    # PostgreSQL text cannot hold NUL, so no stored value contains one: refuse it rather than fail in the driver.
    if "\x00" in value:
        raise FilterError(f"{spec.label}: a value cannot contain the NUL character")
    # A lone surrogate (bytes that were not UTF-8, as a command line passes them on) cannot be encoded for the
    # database or the in-memory path: refuse it here with a message instead of an encoding error later.
    bad = first_surrogate(value)
    if bad is not None:
        raise FilterError(f"{spec.label}: a value holds a character that is not valid text (position {bad})")


def first_surrogate(text: str) -> int | None:
    """The index of the first lone surrogate in `text` (never valid UTF-8), or None."""
    m = _SURROGATE.search(text)
    return None if m is None else m.start()


_SURROGATE = re.compile("[\ud800-\udfff]")
# Longer numbers than this are far beyond every bound (1e15), and Python refuses to read ints of over 4,300 digits.
MAX_NUMBER_CHARS = 40


def _normalize_number(spec: FieldSpec, value: Any) -> int | float:
    number: int | float
    if isinstance(value, bool):
        raise FilterError(f"{spec.label}: {_show(value)} is not a number")
    if isinstance(value, int | float):
        number = value
    elif (
        isinstance(value, str) and len(value.strip()) > MAX_NUMBER_CHARS and _NUMBER.fullmatch(value.strip())
    ):
        raise FilterError(f"{spec.label}: {_show(value)} is too large")
    elif isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        text = value.strip()
        number = int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
    else:
        raise FilterError(f"{spec.label}: {_show(value)} is not a number")
    if isinstance(number, float):
        if not math.isfinite(number):
            raise FilterError(f"{spec.label}: {_show(value)} is not a number")
        if spec.integer:
            if not number.is_integer():
                raise FilterError(f"{spec.label} takes whole numbers, not {_show(value)}")
            number = int(number)
    if abs(number) > 1e15:
        raise FilterError(f"{spec.label}: {_show(value)} is too large")
    if spec.min_value is not None and number < spec.min_value:
        raise FilterError(f"{spec.label} must be between {spec.min_value} and {spec.max_value}")
    if spec.max_value is not None and number > spec.max_value:
        raise FilterError(f"{spec.label} must be between {spec.min_value} and {spec.max_value}")
    return number


def _normalize_text(spec: FieldSpec, value: Any, op: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise FilterError(f"{spec.label}: {_show(value)} is not text")
    _check_string(spec, value)
    if spec.name == "age_band":
        value = value.strip()
    elif spec.type == "code":
        value = spec.normalize(value)
    elif spec.stored_lower:
        value = value.strip().lower()
    elif op not in _PATTERN_OPS:
        # Stored values carry no white space at their ends, so an exact value with some could never match:
        # `Dubois ` is `Dubois`, whichever form (widget, JSON, text) wrote it. Patterns keep theirs (`*' van '*`).
        value = value.strip()
    if value == "":
        raise FilterError(f"{spec.label}: an empty value matches nothing; use is_empty instead")
    # A fixed set of values is checked for exact tests; patterns may still name a part of a value.
    if spec.choices and op in ("eq", "ne", "in", "not_in") and value not in spec.choices:
        raise FilterError(f"{spec.label} has no value {value!r}; choose from {', '.join(spec.choices)}")
    return value


def _normalize_code(spec: FieldSpec, value: Any) -> str:
    if not isinstance(value, str):
        raise FilterError(f"{spec.label}: {_show(value)} is not a code")
    _check_string(spec, value)
    code = spec.normalize(value)
    if code == "":
        raise FilterError(f"{spec.label}: an empty code matches nothing")
    return code


_PATTERN_OPS = frozenset({"contains", "starts_with", "ends_with", "matches"})
# Text ranges (Business Central's `A..C`, `<C`, `>A`): on text and code fields, compared folded (see fold_text).
TEXT_RANGE_OPS = ("lt", "le", "gt", "ge", "between")


def allowed_ops(spec: FieldSpec) -> tuple[str, ...]:
    """The operators a field takes: its type's, plus the text ranges on text and code fields."""
    ops = spec.allowed_ops()
    if spec.type in ("text", "code") and not spec.ops:  # fields with their own list (age band) keep it
        ops = ops + tuple(op for op in TEXT_RANGE_OPS if op not in ops)
    return ops


def _dedupe(values: list[Any]) -> tuple[Any, ...]:
    seen: dict[Any, None] = {}
    for v in values:
        seen.setdefault(v, None)
    return tuple(seen)


def _normalize_value(spec: FieldSpec, op: str, value: Any, budget: _Budget) -> Any:
    if op in NO_VALUE_OPS:
        if value is not None:
            raise FilterError(f"{spec.label} {op} takes no value")
        return None
    if value is None:
        raise FilterError(f"{spec.label} {op} needs a value")
    if op in LIST_VALUE_OPS:
        items = [value] if isinstance(value, str | int | float) and not isinstance(value, bool) else value
        if not isinstance(items, list | tuple):
            raise FilterError(f"{spec.label} {op} needs a list of values")
        if not items:
            raise FilterError(f"{spec.label} {op} needs at least one value")
        if len(items) > MAX_LIST_VALUES:
            raise FilterError(f"{spec.label} {op}: at most {MAX_LIST_VALUES:,} values in one list")
        budget.values(len(items))
        if spec.type == "list":
            return _dedupe([_normalize_code(spec, v) for v in items])
        return _dedupe([_normalize_text(spec, v, op) for v in items])
    if op == "between":
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise FilterError(f"{spec.label} between needs exactly two values [low, high]")
        budget.values(2)
        lo, hi = (_normalize_scalar(spec, op, v) for v in value)
        if spec.type == "date":
            klo, khi = _date_order_key(lo), _date_order_key(hi)
            if klo is not None and khi is not None and klo[0] == khi[0] and klo[1] > khi[1]:
                raise FilterError(f"{spec.label} between: {lo} comes after {hi}")
        elif spec.type in ("text", "code"):
            if fold_text(lo) > fold_text(hi):
                raise FilterError(f"{spec.label} between: {lo!r} comes after {hi!r}")
        elif lo > hi:
            raise FilterError(f"{spec.label} between: {lo} is greater than {hi}")
        return (lo, hi)
    budget.values(1)
    return _normalize_scalar(spec, op, value)


def _normalize_scalar(spec: FieldSpec, op: str, value: Any) -> Any:
    if spec.type == "number":
        return _normalize_number(spec, value)
    if spec.type == "date":
        return _normalize_date(spec, value)
    return _normalize_text(spec, value, op)


# ------------------------------------------------------------------------------------------------- validation


class _Budget:
    """Counts nodes and values while walking a tree, to enforce the caps."""

    def __init__(self) -> None:
        self.nodes = 0
        self.total_values = 0

    def node(self, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise FilterError(f"the filter is too large: at most {MAX_NODES} conditions and groups")
        if depth > MAX_DEPTH:
            raise FilterError(f"the filter is nested too deeply: at most {MAX_DEPTH} levels")

    def values(self, n: int) -> None:
        self.total_values += n
        if self.total_values > MAX_TOTAL_VALUES:
            raise FilterError(f"the filter holds too many values: at most {MAX_TOTAL_VALUES:,} in all")


def kind_of(spec: FieldSpec) -> str:
    """'a number field', 'an age band field'...: how messages name a field's type."""
    kind = {"age_band": "age band"}.get(spec.name) or {"boolean": "true/false", "list": "list"}.get(
        spec.type, spec.type
    )
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} field"


def _unknown_field(name: str, relation: str | None, fields: FieldRegistry) -> FilterError:
    shown = name if len(name) <= 40 else name[:37] + "..."
    if relation is None:
        owner = fields.relation_of(name)
        if owner is not None:
            return FilterError(
                f"{shown!r} is a field of {owner}: use it inside a related {owner} condition ({owner}.{name})"
            )
    elif name in fields.contact:
        return FilterError(
            f"{shown!r} is a contact field: it cannot be used inside a related {relation} condition"
        )
    names = fields.names(relation)
    close = difflib.get_close_matches(name.lower(), names, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    where = "" if relation is None else f" of {relation}"
    listed = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    return FilterError(f"unknown field {shown!r}{where}: {hint}fields are {listed}")


def _validate_condition(
    node: Condition, relation: str | None, budget: _Budget, fields: FieldRegistry
) -> Condition:
    if not isinstance(node.field, str):
        raise FilterError(f"a field name must be text, not {_show(node.field)}")
    spec = fields.get(node.field, relation)
    if spec is None:
        raise _unknown_field(node.field, relation, fields)
    if not isinstance(node.op, str) or node.op not in allowed_ops(spec):
        ops = ", ".join(allowed_ops(spec))
        raise FilterError(
            f"{spec.label} is {kind_of(spec)}: operator {_show(node.op)} does not fit (use {ops})"
        )
    return Condition(node.field, node.op, _normalize_value(spec, node.op, node.value, budget))


def _validate(node: Any, relation: str | None, depth: int, budget: _Budget, fields: FieldRegistry) -> Node:
    budget.node(depth)
    if isinstance(node, Condition):
        return _validate_condition(node, relation, budget, fields)
    if isinstance(node, Group):
        if node.kind not in ("all", "any"):
            raise FilterError(f"a group is 'all' or 'any', not {_show(node.kind)}")
        children = tuple(_validate(c, relation, depth + 1, budget, fields) for c in node.children)
        return Group(node.kind, children)
    if isinstance(node, Not):
        return Not(_validate(node.child, relation, depth + 1, budget, fields))
    if isinstance(node, Related):
        if relation is not None:
            raise FilterError("a related condition cannot sit inside another related condition")
        if not isinstance(node.relation, str) or node.relation not in RELATIONS:
            raise FilterError(f"unknown relation {_show(node.relation)}: use {' or '.join(RELATIONS)}")
        count = node.min_count
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_MIN_COUNT:
            raise FilterError(
                f"min_count must be a whole number from 1 to {MAX_MIN_COUNT:,}, not {_show(count)}"
            )
        return Related(node.relation, _validate(node.where, node.relation, depth + 1, budget, fields), count)
    raise FilterError(f"not a filter node: {_show(node)}")


def validate(node: Node, fields: FieldRegistry | None = None) -> Node:
    """The same tree with normalised values; FilterError names the first thing that does not fit the language.

    `fields` is the database's registry (built-in fields only when None): a custom field is valid only there."""
    return _validate(node, None, 1, _Budget(), fields or BUILTIN)


def validate_condition(
    node: Condition, relation: str | None = None, fields: FieldRegistry | None = None
) -> Condition:
    """One condition checked and normalised on its own (the text parser uses it to point at the faulty value)."""
    return _validate_condition(node, relation, _Budget(), fields or BUILTIN)


def unknown_field_error(
    name: str, relation: str | None = None, fields: FieldRegistry | None = None
) -> FilterError:
    """The error for a field name that is not in the registry, with a hint."""
    return _unknown_field(name, relation, fields or BUILTIN)


# ------------------------------------------------------------------------------------------------------- JSON

_CONDITION_KEYS = {"field", "op", "value"}
_RELATED_KEYS = {"related", "where", "min_count"}


def _build(obj: Any, depth: int, budget: _Budget) -> Node:
    # Caps are checked while building too, so a huge or deep document fails fast instead of exhausting memory.
    budget.node(depth)
    if not isinstance(obj, dict):
        raise FilterError(f"a filter node must be an object, not {_show(obj)}")
    keys = set(obj)
    for kind in ("all", "any"):
        if kind in keys:
            if keys != {kind}:
                raise FilterError(
                    f"a group {{{kind!r}: [...]}} takes no other keys (found {sorted(keys - {kind})})"
                )
            children = obj[kind]
            if not isinstance(children, list | tuple):
                raise FilterError(f"{kind!r} needs a list of nodes")
            return Group(kind, tuple(_build(c, depth + 1, budget) for c in children))
    if "not" in keys:
        if keys != {"not"}:
            raise FilterError("a {'not': node} takes no other keys")
        return Not(_build(obj["not"], depth + 1, budget))
    if "related" in keys:
        extra = keys - _RELATED_KEYS
        if extra:
            raise FilterError(
                f"a related condition takes related, where and min_count (found {sorted(extra)})"
            )
        where = obj.get("where")
        return Related(
            obj["related"],
            EMPTY if where is None else _build(where, depth + 1, budget),
            obj.get("min_count", 1),
        )
    if "field" in keys:
        extra = keys - _CONDITION_KEYS
        if extra:
            raise FilterError(f"a condition takes field, op and value (found {sorted(extra)})")
        if "op" not in keys:
            raise FilterError(f"the condition on {_show(obj['field'])} has no op")
        value = obj.get("value")
        if isinstance(value, list):
            value = tuple(value)
        return Condition(obj["field"], obj["op"], value)
    raise FilterError(f"not a filter node: {_show(obj)} (expected all, any, not, related, or field/op/value)")


def from_json(obj: Any, fields: FieldRegistry | None = None) -> Node:
    """A validated tree from its JSON form (a dict, or a JSON string), against `fields` (built-ins when None)."""
    if isinstance(obj, str | bytes):
        try:
            obj = json.loads(obj)
        except RecursionError:
            raise FilterError(f"the filter is nested too deeply: at most {MAX_DEPTH} levels") from None
        except ValueError as exc:
            raise FilterError(f"the filter is not valid JSON: {exc}") from None
    try:
        return validate(_build(obj, 1, _Budget()), fields)
    except RecursionError:  # pragma: no cover - the depth cap stops recursion long before this
        raise FilterError(f"the filter is nested too deeply: at most {MAX_DEPTH} levels") from None


def _value_json(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_value_json(v) for v in value]
    return value


def to_json(node: Node) -> dict[str, Any]:
    """The JSON form of a tree; `from_json(to_json(t)) == t` for every validated tree."""
    if isinstance(node, Condition):
        out: dict[str, Any] = {"field": node.field, "op": node.op}
        if node.value is not None:
            out["value"] = _value_json(node.value)
        return out
    if isinstance(node, Group):
        return {node.kind: [to_json(c) for c in node.children]}
    if isinstance(node, Not):
        return {"not": to_json(node.child)}
    if isinstance(node, Related):
        return {"related": node.relation, "where": to_json(node.where), "min_count": node.min_count}
    raise TypeError(f"not a filter node: {node!r}")
