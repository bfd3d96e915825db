"""Property: the in-memory fast path matches exactly the contacts the independent model (and so SQL) matches.

The populations, trees and the pure-Python model come from test_filter_property.py, which holds SQL equal to the
same model; together they hold the fast path equal to SQL. The snapshot is built from each database, so the
PostgreSQL loading path (dates as objects) is covered as well as SQLite's (dates as text).

Free text ignores accents as well as case (segcore/_fold.py). The model there compares lower-cased text, so it is
given the free text already folded by the reference rule of test_fold.py (a folded value lower-cases to itself).
A second property, on text alone, uses a model of its own over a wide alphabet: accents, spelled letters, other
scripts and every text operator, text ranges included.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select

from segcore import Database, FilterError
from segcore._fast_eval import evaluate as fast_evaluate
from segcore._filter_sql import matching_ids
from segcore._filter_tree import Condition, Group, Node, Not, Related, to_json, validate
from segcore._models import Contact, ContactCode, Interaction, ProfileAnswer
from segcore._parallel import threads
from segcore._snapshot import _build, bump_data_version, data_version
from segcore.fields import OPS_BY_TYPE
from tests.test_filter_property import TODAYS, evaluate, insert_population, populations, trees
from tests.test_fold import reference

# Free-text fields: compared folded. Codes and e-mails are stored normalised and compared lower-cased.
FOLDED = {"contact_no", "company_no", "name", "phone", "city", "post_code", "campaign_no", "segment_no"}
RANGES = ("lt", "le", "gt", "ge", "between")


def _fold_value(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return tuple(_fold_value(v) for v in value)
    return reference(value) if isinstance(value, str) else value


def _folded_tree(node: Node) -> Node:
    """The tree with the values of free-text conditions folded (the model then compares folded with folded)."""
    if isinstance(node, Condition):
        return Condition(node.field, node.op, _fold_value(node.value)) if node.field in FOLDED else node
    if isinstance(node, Group):
        return Group(node.kind, tuple(_folded_tree(c) for c in node.children))
    if isinstance(node, Not):
        return Not(_folded_tree(node.child))
    assert isinstance(node, Related)
    return Related(node.relation, _folded_tree(node.where), node.min_count)


def _folded_row(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: _fold_value(v) if k in FOLDED else v for k, v in row.items()}
    out["interactions"] = [{k: _fold_value(v) if k in FOLDED else v for k, v in r.items()} for r in out["interactions"]]
    return out


def model(tree: Node, row: dict[str, Any], today: dt.date) -> bool:
    return evaluate(_folded_tree(tree), _folded_row(row), today)


def _reset(db: Database, rows: list[dict[str, Any]]) -> None:
    with db.write() as conn:
        for table in (Interaction, ProfileAnswer, ContactCode, Contact):
            conn.execute(delete(table.__table__))
        insert_population(conn, rows)
        bump_data_version(conn)


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(rows=populations, filters=st.lists(trees, min_size=1, max_size=6), today=st.sampled_from(TODAYS))
def test_fast_path_agrees_with_model_and_sql(
    db: Database, rows: list[dict[str, Any]], filters: list[Node], today: dt.date
) -> None:
    _reset(db, rows)
    with db.read() as conn:
        snap = _build(conn, data_version(conn))
        for tree in filters:
            mask = fast_evaluate(tree, snap, today=today)
            # The scan split by rows over threads (as from a million contacts) gives the very same mask.
            with threads(3, min_rows=1):
                assert (fast_evaluate(tree, snap, today=today) == mask).all(), to_json(tree)
            got = {int(i) for i in snap.ids[mask]}
            want = {i for i, row in enumerate(rows, start=1) if model(tree, row, today)}
            assert got == want, to_json(tree)
            assert got == set(conn.execute(matching_ids(tree, today=today)).scalars()), to_json(tree)


# ----------------------------------------------------------------------------------------------- text alone

# Accented, decomposed and spelled Latin letters, Greek (both sigmas), Cyrillic, Hangul, compatibility forms, and
# the characters that patterns and SQL treat specially.
ALPHABET = "aAeEzZ0 éÉèüÜçñßẞøØæŒłıİ\u0301\u0308ΣσςάДЁё한ﬁＺ%_*?/\\'.-"
words = st.text(ALPHABET, min_size=1, max_size=6)
CODES = [None, "", "FR", "DE", "BE", "ES"]
EMAILS = [None, "", "anna@contoso.com", "zoë@ÿ.org", "b_c@x.io", "%@y.org", "ab@x.io"]


@pytest.fixture
def text_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    """Text and code fields accept the range operators (the filter language may not list them all yet)."""
    for kind in ("text", "code"):
        ops = OPS_BY_TYPE[kind]
        monkeypatch.setitem(OPS_BY_TYPE, kind, ops + tuple(op for op in RANGES if op not in ops))


def _like(pattern: str, text: str) -> bool:
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, text, re.DOTALL) is not None


def text_holds(cond: Condition, row: dict[str, Any]) -> bool:
    """docs/filters.md on one text condition: free text folded, codes and e-mails as stored, ranges folded."""
    op, value, v = cond.op, cond.value, row[cond.field]
    if op in ("ne", "not_in"):
        return not text_holds(Condition(cond.field, "eq" if op == "ne" else "in", value), row)
    empty = v is None or v == ""
    if op in ("is_empty", "is_not_empty"):
        return empty == (op == "is_empty")
    if empty:
        return False
    if op in RANGES:
        key = reference(v)
        if op == "between":
            return reference(value[0]) <= key <= reference(value[1])
        w = reference(value)
        return {"lt": key < w, "le": key <= w, "gt": key > w, "ge": key >= w}[op]
    if cond.field in FOLDED:
        s, norm = reference(v), reference
    else:
        # Stored normalised: equality is exact on the normalised value, patterns compare lower-cased.
        if op == "eq":
            return v == value
        if op == "in":
            return v in value
        s, norm = v.lower(), str.lower
    if op == "eq":
        return s == norm(value)
    if op == "in":
        return s in {norm(x) for x in value}
    if op == "contains":
        return norm(value) in s
    if op == "starts_with":
        return s.startswith(norm(value))
    if op == "ends_with":
        return s.endswith(norm(value))
    assert op == "matches"
    return _like(norm(value), s)


def text_model(node: Node, row: dict[str, Any]) -> bool:
    if isinstance(node, Condition):
        return text_holds(node, row)
    if isinstance(node, Group):
        results = [text_model(c, row) for c in node.children]
        return all(results) if node.kind == "all" else any(results)
    assert isinstance(node, Not)
    return not text_model(node.child, row)


def _condition(field: str) -> st.SearchStrategy[Condition]:
    values = st.sampled_from([c for c in CODES if c]) if field == "country" else words
    patterns = st.text(ALPHABET + "**??", min_size=1, max_size=4)
    return st.one_of(
        st.builds(Condition, st.just(field), st.sampled_from(["eq", "ne", "contains", "starts_with", "ends_with"]),
                  values),
        st.builds(Condition, st.just(field), st.sampled_from(["in", "not_in"]),
                  st.lists(values, min_size=1, max_size=3).map(tuple)),
        st.builds(Condition, st.just(field), st.just("matches"), patterns),
        st.builds(Condition, st.just(field), st.sampled_from(["is_empty", "is_not_empty"])),
        st.builds(Condition, st.just(field), st.sampled_from(["lt", "le", "gt", "ge"]), words),
        st.builds(Condition, st.just(field), st.just("between"),
                  st.tuples(words, words).map(lambda p: tuple(sorted(p, key=reference)))),
    )


text_conditions = st.sampled_from(["name", "city", "contact_no", "country", "email"]).flatmap(_condition)
text_trees = st.recursive(
    text_conditions,
    lambda kids: st.one_of(
        st.builds(Group, st.sampled_from(["all", "any"]), st.lists(kids, max_size=3).map(tuple)),
        st.builds(Not, kids),
    ),
    max_leaves=4,
)
text_rows = st.lists(
    st.fixed_dictionaries({
        "name": st.text(ALPHABET, max_size=8),
        "city": st.one_of(st.none(), st.just(""), st.text(ALPHABET, max_size=6)),
        "country": st.sampled_from(CODES),
        "email": st.sampled_from(EMAILS),
    }),
    min_size=1,
    max_size=8,
)


@pytest.mark.usefixtures("text_ranges")
@settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(rows=text_rows, filters=st.lists(text_trees, min_size=1, max_size=5))
def test_text_matching_ignores_accents_alike_everywhere(
    db: Database, rows: list[dict[str, Any]], filters: list[Node]
) -> None:
    with db.write() as conn:
        conn.execute(delete(Contact.__table__))
        conn.execute(insert(Contact.__table__), [
            {"id": i, "contact_no": f"Nº{i}-Ç" if i % 2 else f"c{i}", "type": "person", "gender": "unknown",
             "total_spent": 0, "purchase_count": 0, "exclude_from_segments": False, **row}
            for i, row in enumerate(rows, start=1)
        ])  # fmt: skip
        bump_data_version(conn)
        stored = {r.id: dict(r._mapping) for r in conn.execute(select(Contact.__table__))}
    with db.read() as conn:
        snap = _build(conn, data_version(conn))
        for raw in filters:
            try:
                tree = validate(raw)
            except FilterError:
                assume(False)  # e.g. a value the language refuses (blank code)
            want = {i for i, row in stored.items() if text_model(tree, row)}
            got_sql = set(conn.execute(matching_ids(tree)).scalars())
            got_fast = {int(i) for i in snap.ids[fast_evaluate(tree, snap)]}
            with threads(2, min_rows=1):
                assert {int(i) for i in snap.ids[fast_evaluate(tree, snap)]} == got_fast, to_json(tree)
            assert got_sql == want, to_json(tree)
            assert got_fast == want, to_json(tree)
