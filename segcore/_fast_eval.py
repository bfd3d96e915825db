"""Evaluate a filter tree on the in-memory snapshot: one boolean per contact, with the SQL path's semantics.

The rules are those of segcore/_filter_sql.py (see docs/filters.md): two-valued logic, comparisons false on an
empty value, `ne` / `not_in` / `has_none` true on it, free text folded (case and accents, segcore/_fold.py),
text ranges on folded values in code-point order, derived fields computed at `today`,
related records counted per contact with cancelled interactions left out. Property tests hold the two equal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._dates import shift_years
from ._filter_sql import TEXT_RANGE_OPS
from ._filter_tree import Condition, Group, Node, Not, Related, resolve_date
from ._fold import fold, fold_array
from ._snapshot import EPOCH, NULL_DAY, Pairs, Snapshot, StrColumn
from .fields import AGE_BANDS, RELATIONS, FieldSpec

__all__ = ["evaluate"]


class _Frame(Protocol):
    def text(self, name: str) -> StrColumn: ...
    def days(self, name: str) -> np.ndarray: ...
    def number(self, name: str) -> np.ndarray: ...
    @property
    def length(self) -> int: ...


class _Contacts:
    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def text(self, name: str) -> StrColumn:
        return self.snap.text[name]

    def days(self, name: str) -> np.ndarray:
        return self.snap.dates[name]

    def number(self, name: str) -> np.ndarray:
        return self.snap.numbers[name]

    @property
    def length(self) -> int:
        return self.snap.n


class _Rows:
    def __init__(self, pairs: Pairs) -> None:
        self.pairs = pairs

    def text(self, name: str) -> StrColumn:
        col = self.pairs.cols[name]
        assert isinstance(col, StrColumn)
        return col

    def days(self, name: str) -> np.ndarray:
        return np.asarray(self.pairs.cols[name])

    def number(self, name: str) -> np.ndarray:
        return np.asarray(self.pairs.cols[name])

    @property
    def length(self) -> int:
        return len(self.pairs.pos)


def _day(value: Any, today: dt.date) -> int:
    day = resolve_date(value, today) if isinstance(value, str) else value
    return (day - EPOCH).days


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_COMPARE = {"lt": pc.less, "le": pc.less_equal, "gt": pc.greater, "ge": pc.greater_equal}


def _lower(value: str) -> str:
    return value.lower()


def _text_mask(col: StrColumn, op: str, value: Any) -> np.ndarray:
    if op == "is_empty":
        return col.codes < 0
    if op == "is_not_empty":
        return col.codes >= 0
    if op in ("ne", "not_in"):
        return ~_text_mask(col, "eq" if op == "ne" else "in", value)
    vals = col.values
    # The value is made like the column's values: folded for free text, lower-cased for codes and e-mails.
    norm = fold if col.folded else _lower
    if op in TEXT_RANGE_OPS:
        # Business Central's text ranges (`A..C`), on text and code fields alike: folded values in code-point order.
        # Arrow compares strings by their UTF-8 bytes, which is code-point order, as Python and the SQL path do.
        keys = vals if col.folded else fold_array(vals)
        if op == "between":
            lo, hi = (pa.scalar(fold(str(v)), pa.string()) for v in value)
            hit = pc.and_(pc.greater_equal(keys, lo), pc.less_equal(keys, hi))
        else:
            hit = _COMPARE[op](keys, pa.scalar(fold(str(value)), pa.string()))
    elif op == "eq":
        hit = pc.equal(vals, pa.scalar(norm(str(value))))
    elif op == "in":
        hit = pc.is_in(vals, value_set=pa.array([norm(str(v)) for v in value], type=pa.string()))
    elif op == "contains":
        hit = pc.match_substring(vals, norm(str(value)))
    elif op == "starts_with":
        hit = pc.starts_with(vals, norm(str(value)))
    elif op == "ends_with":
        hit = pc.ends_with(vals, norm(str(value)))
    elif op == "matches":
        pattern = "".join(
            "%" if ch == "*" else "_" if ch == "?" else _like_escape(ch) for ch in norm(str(value))
        )
        hit = pc.match_like(vals, pattern)
    else:
        raise ValueError(f"operator {op} on text")
    return col.value_mask(np.asarray(pc.fill_null(hit, False).to_numpy(zero_copy_only=False), dtype=bool))


def _ordered_mask(arr: np.ndarray, valid: np.ndarray, op: str, value: Any, conv: Any) -> np.ndarray:
    if op == "is_empty":
        return ~valid
    if op == "is_not_empty":
        return valid.copy()
    if op == "ne":
        return ~_ordered_mask(arr, valid, "eq", value, conv)
    if op == "between":
        lo, hi = conv(value[0]), conv(value[1])
        return valid & (arr >= lo) & (arr <= hi)
    v = conv(value)
    cmp = {"eq": np.equal, "lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal}[op]
    return valid & cmp(arr, v)


def _age_ranges(op: str, value: Any, today: dt.date) -> list[tuple[int | None, int | None]]:
    """Ages as inclusive birth-day ranges: age >= a  <=>  birth <= today - a years."""

    def at_least(a: int) -> int:
        return (shift_years(today, -a) - EPOCH).days

    def span(lo: int | None, hi: int | None) -> tuple[int | None, int | None]:
        # ages lo..hi inclusive -> birth in (shift(hi+1), shift(lo)]
        upper = at_least(lo) if lo is not None else None
        lower = at_least(hi + 1) + 1 if hi is not None else None
        return (lower, upper)

    a = value
    if op == "eq":
        return [span(int(a), int(a))]
    if op == "lt":
        return [span(None, int(a) - 1)]
    if op == "le":
        return [span(None, int(a))]
    if op == "gt":
        return [span(int(a) + 1, None)]
    if op == "ge":
        return [span(int(a), None)]
    if op == "between":
        return [span(int(value[0]), int(value[1]))]
    raise ValueError(op)


def _birth_in(days: np.ndarray, ranges: list[tuple[int | None, int | None]]) -> np.ndarray:
    valid = days != NULL_DAY
    out = np.zeros(len(days), dtype=bool)
    for lo, hi in ranges:
        m = valid.copy()
        if lo is not None:
            m &= days >= lo
        if hi is not None:
            m &= days <= hi
        out |= m
    return out


def _derived(frame: _Contacts, spec: FieldSpec, op: str, value: Any, today: dt.date) -> np.ndarray:
    if spec.name in ("age", "age_band"):
        birth = frame.days("birth_date")
        valid = birth != NULL_DAY
        if op == "is_empty":
            return ~valid
        if op == "is_not_empty":
            return valid
        if op in ("ne", "not_in"):
            return ~_derived(frame, spec, "eq" if op == "ne" else "in", value, today)
        if spec.name == "age_band":
            bands = {label: (lo, hi) for label, lo, hi in AGE_BANDS}
            wanted = [value] if op == "eq" else list(value)
            ranges = []
            for label in wanted:
                lo, hi = bands[label]
                ranges.extend(_age_ranges("ge", lo, today) if hi is None else _age_ranges("between", (lo, hi), today))
            return _birth_in(birth, ranges)
        return _birth_in(birth, _age_ranges(op, value, today))
    if spec.name == "days_since_last_purchase":
        last = frame.days("last_purchase_date")
        valid = last != NULL_DAY
        since = np.where(valid, (today - EPOCH).days - last.astype(np.int64), 0)
        return _ordered_mask(since, valid, op, value, int)
    raise ValueError(spec.name)


def _condition(frame: _Frame, spec: FieldSpec, cond: Condition, today: dt.date, snap: Snapshot) -> np.ndarray:
    op, value = cond.op, cond.value
    if spec.derived:
        assert isinstance(frame, _Contacts)
        return _derived(frame, spec, op, value, today)
    if spec.type in ("text", "code"):
        return _text_mask(frame.text(spec.name), op, value)
    if spec.type == "number":
        arr = frame.number(spec.name)
        return _ordered_mask(arr, ~np.isnan(arr), op, value, float)
    if spec.type == "date":
        arr = frame.days(spec.name)
        return _ordered_mask(arr, arr != NULL_DAY, op, value, lambda v: _day(v, today))
    if spec.type == "boolean":
        # Custom booleans are 1/0/NaN numbers; the one built-in boolean is the exclusion flag.
        truth = (frame.number(spec.name) == 1) if spec.custom else snap.excluded
        return truth.copy() if op == "is_true" else ~truth
    if spec.type == "list":
        pairs = snap.lists[spec.name]
        col = pairs.pos
        code = pairs.cols["code"]
        assert isinstance(code, StrColumn)
        if op == "has_all":
            out = np.ones(snap.n, dtype=bool)
            for v in value:
                out &= _rows_to_contacts(snap.n, col, _text_mask(code, "eq", v))
            return out
        anyv = _rows_to_contacts(snap.n, col, _text_mask(code, "in", value))
        return anyv if op == "has_any" else ~anyv
    raise ValueError(spec.type)


def _rows_to_contacts(n: int, pos: np.ndarray, row_mask: np.ndarray, min_count: int = 1) -> np.ndarray:
    if min_count <= 1:
        out = np.zeros(n, dtype=bool)
        out[pos[row_mask]] = True
        return out
    return np.bincount(pos[row_mask], minlength=n) >= min_count


def _eval(node: Node, frame: _Frame, fields: Mapping[str, FieldSpec], today: dt.date, snap: Snapshot) -> np.ndarray:
    if isinstance(node, Condition):
        return _condition(frame, fields[node.field], node, today, snap)
    if isinstance(node, Group):
        if not node.children:
            return np.full(frame.length, node.kind == "all", dtype=bool)
        parts = (_eval(c, frame, fields, today, snap) for c in node.children)
        out = next(parts).copy()
        for p in parts:
            if node.kind == "all":
                out &= p
            else:
                out |= p
        return out
    if isinstance(node, Not):
        return ~_eval(node.child, frame, fields, today, snap)
    if isinstance(node, Related):
        pairs = snap.interactions if node.relation == "interactions" else snap.profile
        rows = _eval(node.where, _Rows(pairs), RELATIONS[node.relation], today, snap)
        return _rows_to_contacts(snap.n, pairs.pos, rows, node.min_count)
    raise TypeError(f"not a filter node: {node!r}")


def evaluate(node: Node, snap: Snapshot, *, today: dt.date | None = None) -> np.ndarray:
    """The contacts (by snapshot position) that the tree matches."""
    return _eval(node, _Contacts(snap), snap.fields.contact, today or dt.date.today(), snap)
