"""One line a marketer reads for any filter tree: `Country is FR or DE and age 25–44`."""

from __future__ import annotations

import re
from typing import Any

from ._filter_tree import MONTH_END, MONTH_START, Condition, Group, Node, Not, Related
from .fields import BUILTIN, FieldRegistry, FieldSpec

__all__ = ["describe"]

# Long lists and long texts are cut so the line stays a line.
MAX_LISTED = 6
MAX_TEXT = 60

_UNITS = {"d": ("day", "days"), "w": ("week", "weeks"), "m": ("month", "months"), "y": ("year", "years")}
_RELATIVE = re.compile(r"today(?:([+-])(\d+)([dwmy]))?")
_SIGNS = {"eq": "=", "ne": "≠", "lt": "<", "le": "≤", "gt": ">", "ge": "≥"}
_RELATED_NOUN = {
    "interactions": ("interaction", "interactions"),
    "profile": ("profile answer", "profile answers"),
}


def _text(value: Any) -> str:
    text = str(value).replace("\n", "\\n").replace("\r", "\\r")
    if len(text) > MAX_TEXT:
        text = text[: MAX_TEXT - 1] + "…"
    return text


def _quoted(value: Any) -> str:
    return f'"{_text(value)}"'


def _value(spec: FieldSpec, value: Any) -> str:
    if spec.type in ("code", "list"):
        return _text(value)
    if spec.type == "date":
        return _date(value)
    if spec.type == "number":
        return f"{value:,}" if isinstance(value, int) and abs(value) >= 10_000 else str(value)
    return _quoted(value)


def _listed(spec: FieldSpec, values: tuple[Any, ...], word: str) -> str:
    shown = [_value(spec, v) for v in values[:MAX_LISTED]]
    if len(values) > MAX_LISTED:
        return ", ".join(shown) + f" {word} {len(values) - MAX_LISTED:,} more"
    if len(shown) == 1:
        return shown[0]
    return ", ".join(shown[:-1]) + f" {word} " + shown[-1]


_MONTH_WORDS = {MONTH_START: "the start of this month", MONTH_END: "the end of this month"}


def _date(value: str) -> str:
    if value in _MONTH_WORDS:
        return _MONTH_WORDS[value]
    m = _RELATIVE.fullmatch(value)
    if m is None:
        return value
    sign, amount, unit = m.groups()
    if sign is None:
        return "today"
    n = int(amount)
    if n == 0:
        return "today"
    noun = _UNITS[unit][0 if n == 1 else 1]
    return f"{n} {noun} ago" if sign == "-" else f"{n} {noun} from now"


def _past_span(value: str) -> str | None:
    """'the last 90 days' for today-90d, else None."""
    m = _RELATIVE.fullmatch(value)
    if m is None or m.group(1) != "-":
        return None
    n = int(m.group(2))
    noun = _UNITS[m.group(3)][0 if n == 1 else 1]
    return f"the last {noun}" if n == 1 else f"the last {n} {noun}"


def _label(spec: FieldSpec) -> str:
    # Mid-sentence built-in labels start lower-case ("country is FR and age ..."); a custom field's label is the
    # user's own header ("Loyalty Tier", "VIP") and stays as written. The line's first letter is raised at the end.
    if spec.custom:
        return spec.label
    return spec.label[0].lower() + spec.label[1:]


def _condition(cond: Condition, relation: str | None, fields: FieldRegistry) -> str:
    spec = fields.get(cond.field, relation)
    if spec is None:  # a tree that was never validated: say what it says
        return f"{cond.field} {cond.op} {cond.value}"
    label, op, v = _label(spec), cond.op, cond.value
    if op == "is_empty":
        return f"{label} is empty"
    if op == "is_not_empty":
        return f"{label} is not empty"
    if op == "is_true":
        return f"{label} is yes"
    if op == "is_false":
        return f"{label} is no"
    if spec.type == "list":
        if op == "has_any":
            return f"{label} include {_listed(spec, v, 'or')}"
        if op == "has_all":
            return f"{label} include {_listed(spec, v, 'and')}"
        if len(v) == 1:
            return f"{label} do not include {_value(spec, v[0])}"
        return f"{label} include none of {_listed(spec, v, 'or')}"
    if op == "eq":
        return f"{label} is {_value(spec, v)}" if spec.type != "number" else f"{label} = {_value(spec, v)}"
    if op == "ne":
        return (
            f"{label} is not {_value(spec, v)}" if spec.type != "number" else f"{label} ≠ {_value(spec, v)}"
        )
    if op == "in":
        return f"{label} is {_listed(spec, v, 'or')}"
    if op == "not_in":
        return f"{label} is not {_listed(spec, v, 'or')}"
    if op in ("contains", "starts_with", "ends_with", "matches"):
        verb = {
            "contains": "contains",
            "starts_with": "starts with",
            "ends_with": "ends with",
            "matches": "matches",
        }
        return f"{label} {verb[op]} {_quoted(v)}"
    if spec.type == "date":
        return f"{label} {_date_phrase(op, v)}"
    if spec.type in ("text", "code"):
        # Business Central's text ranges: both ends included, compared without case or accents.
        if op == "between":
            return f"{label} from {_value(spec, v[0])} to {_value(spec, v[1])}"
        if op == "le":
            return f"{label} up to {_value(spec, v)}"
        if op == "ge":
            return f"{label} from {_value(spec, v)} on"
        if op == "lt":
            return f"{label} before {_value(spec, v)}"
        if op == "gt":
            return f"{label} after {_value(spec, v)}"
    if op == "between":
        return f"{label} {_value(spec, v[0])}–{_value(spec, v[1])}"
    return f"{label} {_SIGNS[op]} {_value(spec, v)}"


def _date_phrase(op: str, v: Any) -> str:
    if op == "between":
        lo, hi = v
        if (lo, hi) == (MONTH_START, MONTH_END):
            return "in this month"
        span = _past_span(lo)
        if span is not None and hi == "today":
            return f"in {span}"
        return f"from {_date(lo)} to {_date(hi)}"
    span = _past_span(v)
    if op == "ge" and span is not None:
        return f"in {span}"
    if op == "lt" and span is not None:
        return f"more than {_date(v)}"
    phrase = {
        "eq": "on",
        "ne": "not on",
        "lt": "before",
        "le": "on or before",
        "gt": "after",
        "ge": "on or after",
    }
    return f"{phrase[op]} {_date(v)}"


def _related(node: Related, nested: bool, fields: FieldRegistry) -> str:
    one, many = _RELATED_NOUN[node.relation]
    head = (
        f"has {'an' if one[0] in 'aeiou' else 'a'} {one}"
        if node.min_count == 1
        else f"at least {node.min_count:,} {many}"
    )
    where = node.where
    if isinstance(where, Group) and where.kind == "all" and not where.children:
        return head
    body = _describe(where, node.relation, False, fields)
    # Where the where-clause ends is plain only when nothing follows it.
    if nested and isinstance(where, Group) and len(where.children) > 1:
        body = f"({body})"
    return f"{head} where {body}"


def _describe(node: Node, relation: str | None, top: bool, fields: FieldRegistry) -> str:
    if isinstance(node, Condition):
        return _condition(node, relation, fields)
    if isinstance(node, Not):
        return f"not ({_describe(node.child, relation, False, fields)})"
    if isinstance(node, Related):
        return _related(node, not top, fields)
    if isinstance(node, Group):
        if not node.children:
            if top:
                return "all contacts" if node.kind == "all" else "no contacts"
            return "anything" if node.kind == "all" else "nothing"
        if len(node.children) == 1:
            return _describe(node.children[0], relation, top, fields)
        parts = []
        for child in node.children:
            text = _describe(child, relation, False, fields)
            if isinstance(child, Group) and len(child.children) > 1:
                text = f"({text})"
            parts.append(text)
        return f" {'and' if node.kind == 'all' else 'or'} ".join(parts)
    return repr(node)  # pragma: no cover


def describe(node: Node, fields: FieldRegistry | None = None) -> str:
    """The tree in one plain sentence, for logs, criteria and previews (custom fields named from `fields`)."""
    text = _describe(node, None, True, fields or BUILTIN)
    return text[:1].upper() + text[1:]
