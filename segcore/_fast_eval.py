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
from ._parallel import chunks, run_all
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
    """The contacts' columns, all of them or the rows lo..hi (a part of a scan split over threads)."""

    def __init__(self, snap: Snapshot, lo: int = 0, hi: int | None = None) -> None:
        self.snap = snap
        self.lo, self.hi = lo, snap.n if hi is None else hi
        self.whole = self.lo == 0 and self.hi == snap.n

    def text(self, name: str) -> StrColumn:
        col = self.snap.text[name]
        if self.whole:
            return col
        # The same distinct values: a test of the values holds for every part.
        return StrColumn(col.codes[self.lo : self.hi], col.values, col.folded)

    def days(self, name: str) -> np.ndarray:
        return self.snap.dates[name][self.lo : self.hi]

    def number(self, name: str) -> np.ndarray:
        return self.snap.numbers[name][self.lo : self.hi]

    def excluded(self) -> np.ndarray:
        return self.snap.excluded[self.lo : self.hi]

    def part(self, whole: np.ndarray) -> np.ndarray:
        return whole[self.lo : self.hi]

    @property
    def length(self) -> int:
        return self.hi - self.lo


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


def _text_mask(col: StrColumn, op: str, value: Any, predicate: np.ndarray | None = None) -> np.ndarray:
    """The rows whose value passes; `predicate`: the test of each distinct value, when already made."""
    if op == "is_empty":
        return col.codes < 0
    if op == "is_not_empty":
        return col.codes >= 0
    if op in ("ne", "not_in"):
        return ~_text_mask(col, "eq" if op == "ne" else "in", value, predicate)
    return col.value_mask(_text_predicate(col, op, value) if predicate is None else predicate)


def _text_predicate(col: StrColumn, op: str, value: Any) -> np.ndarray:
    """One boolean per distinct value of the column: does it pass `op value` (ne / not_in: eq / in)?"""
    if op in ("ne", "not_in"):
        op = "eq" if op == "ne" else "in"
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
    return np.asarray(pc.fill_null(hit, False).to_numpy(zero_copy_only=False), dtype=bool)


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
                ranges.extend(
                    _age_ranges("ge", lo, today) if hi is None else _age_ranges("between", (lo, hi), today)
                )
            return _birth_in(birth, ranges)
        return _birth_in(birth, _age_ranges(op, value, today))
    if spec.name == "days_since_last_purchase":
        last = frame.days("last_purchase_date")
        valid = last != NULL_DAY
        since = np.where(valid, (today - EPOCH).days - last.astype(np.int64), 0)
        return _ordered_mask(since, valid, op, value, int)
    raise ValueError(spec.name)


def _condition(
    frame: _Frame,
    spec: FieldSpec,
    cond: Condition,
    today: dt.date,
    snap: Snapshot,
    pre: _Prepared | None = None,
) -> np.ndarray:
    op, value = cond.op, cond.value
    if spec.derived:
        assert isinstance(frame, _Contacts)
        return _derived(frame, spec, op, value, today)
    if spec.type in ("text", "code"):
        return _text_mask(frame.text(spec.name), op, value, pre.get(cond) if pre is not None else None)
    if spec.type == "number":
        arr = frame.number(spec.name)
        return _ordered_mask(arr, ~np.isnan(arr), op, value, float)
    if spec.type == "date":
        arr = frame.days(spec.name)
        return _ordered_mask(arr, arr != NULL_DAY, op, value, lambda v: _day(v, today))
    if spec.type == "boolean":
        # Custom booleans are 1/0/NaN numbers; the one built-in boolean is the exclusion flag.
        excluded = frame.excluded() if isinstance(frame, _Contacts) else snap.excluded
        truth = (frame.number(spec.name) == 1) if spec.custom else excluded
        return truth.copy() if op == "is_true" else ~truth
    if spec.type == "list":
        if pre is not None and isinstance(frame, _Contacts):
            return frame.part(pre[cond])
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


def _eval(
    node: Node,
    frame: _Frame,
    fields: Mapping[str, FieldSpec],
    today: dt.date,
    snap: Snapshot,
    pre: _Prepared | None = None,
) -> np.ndarray:
    if isinstance(node, Condition):
        return _condition(frame, fields[node.field], node, today, snap, pre)
    if isinstance(node, Group):
        if not node.children:
            return np.full(frame.length, node.kind == "all", dtype=bool)
        parts = (_eval(c, frame, fields, today, snap, pre) for c in node.children)
        out = next(parts).copy()
        for p in parts:
            if node.kind == "all":
                out &= p
            else:
                out |= p
        return out
    if isinstance(node, Not):
        return ~_eval(node.child, frame, fields, today, snap, pre)
    if isinstance(node, Related):
        if pre is not None and isinstance(frame, _Contacts):
            return frame.part(pre[node])
        pairs = snap.interactions if node.relation == "interactions" else snap.profile
        rows = _eval(node.where, _Rows(pairs), RELATIONS[node.relation], today, snap)
        return _rows_to_contacts(snap.n, pairs.pos, rows, node.min_count)
    raise TypeError(f"not a filter node: {node!r}")


class _Prepared:
    """What a scan split by rows works out once, before the split: the test of each distinct value of a text
    condition (one pass over the values, not one a part) and the full mask of a condition over many rows per
    contact (list fields, related records: their rows are not in contact order). Keyed by the node itself."""

    def __init__(self) -> None:
        self._by_node: dict[int, tuple[Node, np.ndarray]] = {}

    def put(self, node: Node, value: np.ndarray) -> None:
        self._by_node[id(node)] = (node, value)  # the node is kept so its id is not reused meanwhile

    def get(self, node: Node) -> np.ndarray | None:
        hit = self._by_node.get(id(node))
        return hit[1] if hit is not None else None

    def __getitem__(self, node: Node) -> np.ndarray:
        value = self.get(node)
        assert value is not None, node
        return value


def _prepare(
    node: Node, snap: Snapshot, fields: Mapping[str, FieldSpec], today: dt.date, pre: _Prepared
) -> None:
    """Fill `pre` for every contact-level node of the tree that needs it (see _Prepared)."""
    if isinstance(node, Group):
        for child in node.children:
            _prepare(child, snap, fields, today, pre)
    elif isinstance(node, Not):
        _prepare(node.child, snap, fields, today, pre)
    elif isinstance(node, Related):
        pre.put(node, _eval(node, _Contacts(snap), fields, today, snap))
    elif isinstance(node, Condition):
        spec = fields[node.field]
        if spec.derived:
            return
        if spec.type in ("text", "code") and node.op not in ("is_empty", "is_not_empty"):
            pre.put(node, _text_predicate(snap.text[spec.name], node.op, node.value))
        elif spec.type == "list":
            pre.put(node, _condition(_Contacts(snap), spec, node, today, snap))


def evaluate(node: Node, snap: Snapshot, *, today: dt.date | None = None) -> np.ndarray:
    """The contacts (by snapshot position) that the tree matches.

    From `_parallel.MIN_ROWS` contacts the scan is split by rows over the scan threads (numpy's loops release the
    GIL): each thread evaluates the whole tree on its rows, into its part of one result."""
    today = today or dt.date.today()
    fields = snap.fields.contact
    parts = chunks(snap.n)
    if len(parts) == 1:
        return _eval(node, _Contacts(snap), fields, today, snap)
    pre = _Prepared()
    _prepare(node, snap, fields, today, pre)
    out = np.empty(snap.n, dtype=bool)

    def scan(lo: int, hi: int) -> None:
        out[lo:hi] = _eval(node, _Contacts(snap, lo, hi), fields, today, snap, pre)

    run_all([lambda lo=lo, hi=hi: scan(lo, hi) for lo, hi in parts])
    return out
