"""Custom fields: made by imports, usable everywhere a built-in field is; SQL, the in-memory path and an independent
model agree on every filter; rename, retype and delete keep what users stored and refuse what would break them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from segcore import (
    ActionRequest,
    ConflictError,
    Database,
    FilterError,
    NotFoundError,
    RefusedError,
    UsageError,
    apply_action,
    count_filter,
    create_dynamic,
    create_segment,
    delete_custom_field,
    describe,
    drift,
    export_members,
    fields_of,
    from_json,
    get_dynamic,
    import_contacts,
    list_custom_fields,
    member_contact_nos,
    parse_text,
    rename_custom_field,
    retype_custom_field,
    reuse_criteria,
    save_criteria,
    to_json,
    to_text,
)
from segcore._fast_eval import evaluate
from segcore._filter_sql import matching_ids
from segcore._models import Contact
from segcore._snapshot import load_snapshot

D = dt.date
TODAY = D(2025, 6, 30)

# Six contacts with one custom field of each type; empties on purpose.
FILE = (
    b"contact_no,type,name,Loyalty Tier,Score,Signup,Vip,Hobbies,Note\n"
    b"C1,person,Ann,GOLD,12.5,01/02/2021,yes,golf;chess,hello\n"
    b"C2,person,Bob,silver,3,15/03/2022,no,golf,\n"
    b"C3,person,Cat,,100,,oui,,World\n"
    b"C4,person,Dan,GOLD,,20/12/2020,,chess;tennis,hello world\n"
    b"C5,person,Eve,BRONZE,0,31/12/2019,non,tennis,\n"
    b"C6,person,Fay,,-4,05/05/2023,,,\n"
)

# What the file says, as the model keeps it (None = not set).
MODEL: dict[str, dict[str, Any]] = {
    "C1": {"loyalty_tier": "GOLD", "score": 12.5, "signup": D(2021, 2, 1), "vip": True, "hobbies": {"GOLF", "CHESS"},
           "note": "hello"},
    "C2": {"loyalty_tier": "SILVER", "score": 3.0, "signup": D(2022, 3, 15), "vip": False, "hobbies": {"GOLF"},
           "note": None},
    "C3": {"loyalty_tier": None, "score": 100.0, "signup": None, "vip": True, "hobbies": set(), "note": "World"},
    "C4": {"loyalty_tier": "GOLD", "score": None, "signup": D(2020, 12, 20), "vip": None,
           "hobbies": {"CHESS", "TENNIS"}, "note": "hello world"},
    "C5": {"loyalty_tier": "BRONZE", "score": 0.0, "signup": D(2019, 12, 31), "vip": False, "hobbies": {"TENNIS"},
           "note": None},
    "C6": {"loyalty_tier": None, "score": -4.0, "signup": D(2023, 5, 5), "vip": None, "hobbies": set(), "note": None},
}  # fmt: skip


def _import(db: Database) -> None:
    report = import_contacts(
        db, FILE, mapping={"columns": {
            "contact_no": "contact_no", "type": "type", "name": "name",
            "Loyalty Tier": {"field": "loyalty_tier", "type": "code"},
            "Score": {"field": "score", "type": "number"},
            "Signup": {"field": "signup", "type": "date"},
            "Vip": {"field": "vip", "type": "boolean"},
            "Hobbies": {"field": "hobbies", "type": "list"},
            "Note": {"field": "note", "type": "text"},
        }},
    )  # fmt: skip
    assert report.errors == () and report.inserted == 6, report.errors
    assert set(report.new_fields) == {"loyalty_tier", "score", "signup", "vip", "hobbies", "note"}


@pytest.fixture
def world(db: Database) -> Database:
    _import(db)
    return db


# ------------------------------------------------------------------------------------------ the independent model


def holds(field: str, op: str, value: Any, row: dict[str, Any]) -> bool:
    v = row[field]
    if field == "hobbies":
        wanted = {x.upper() for x in value}
        return {"has_any": bool(v & wanted), "has_all": wanted <= v, "has_none": not (v & wanted)}[op]
    if op == "is_true":
        return v is True
    if op == "is_false":
        return v is not True
    empty = v is None or v == ""
    if op == "is_empty":
        return empty
    if op == "is_not_empty":
        return not empty
    if op in ("ne", "not_in"):
        return not holds(field, "eq" if op == "ne" else "in", value, row)
    if empty:
        return False
    if field in ("loyalty_tier", "note"):
        text = v.lower()
        if op == "eq":
            return text == str(value).lower()
        if op == "in":
            return text in {str(x).lower() for x in value}
        if op == "contains":
            return str(value).lower() in text
        if op == "starts_with":
            return text.startswith(str(value).lower())
        raise AssertionError(op)
    conv = (lambda x: D.fromisoformat(x) if isinstance(x, str) else x) if field == "signup" else float
    if op == "between":
        return conv(value[0]) <= v <= conv(value[1])
    x = conv(value)
    return {"eq": v == x, "lt": v < x, "le": v <= x, "gt": v > x, "ge": v >= x}[op]


def model_matches(node_json: dict[str, Any]) -> set[str]:
    def ev(n: dict[str, Any], row: dict[str, Any]) -> bool:
        if "all" in n:
            return all(ev(c, row) for c in n["all"])
        if "any" in n:
            return any(ev(c, row) for c in n["any"])
        if "not" in n:
            return not ev(n["not"], row)
        return holds(n["field"], n["op"], n.get("value"), row)

    return {no for no, row in MODEL.items() if ev(node_json, row)}


def sql_matches(db: Database, node: Any) -> set[str]:
    fields = fields_of(db)
    c = Contact.__table__
    with db.read() as conn:
        ids = select(c.c.contact_no).where(c.c.id.in_(matching_ids(node, today=TODAY, fields=fields)))
        return set(conn.execute(ids).scalars())


def memory_matches(db: Database, node: Any) -> set[str]:
    snap = load_snapshot(db, wait=True)
    assert snap is not None
    mask = evaluate(node, snap, today=TODAY)
    nos = snap.text["contact_no"]
    values = nos.values.to_pylist()
    return {values[nos.codes[i]].upper() for i in np.flatnonzero(mask)}


CASES = [
    "loyalty_tier=GOLD", "loyalty_tier=gold|Silver", "loyalty_tier=<>GOLD", "loyalty_tier=''", "loyalty_tier=<>''",
    "loyalty_tier=G*", "score=>=3", "score=<0", "score=0..12.5", "score=<>3", "score=''", "signup=2021-01-01..",
    "signup=..2020-12-31", "signup=''", "signup=<>2022-03-15", "vip=true", "vip=false", "hobbies=golf",
    "hobbies=golf&chess", "hobbies=<>tennis", "note=*world*", "note=hello", "note=''",
    "loyalty_tier=GOLD\nscore=>10", "vip=false\nsignup=2020-01-01..",
]  # fmt: skip


@pytest.mark.parametrize("text", CASES)
def test_sql_memory_and_model_agree(world: Database, text: str) -> None:
    fields = fields_of(world)
    node = parse_text(text, fields)
    expected = model_matches(to_json(node))
    assert sql_matches(world, node) == expected
    assert memory_matches(world, node) == expected


def _conditions() -> st.SearchStrategy[dict[str, Any]]:
    tiers = st.sampled_from(["GOLD", "gold", "SILVER", "BRONZE", "PLATINUM"])
    nums = st.sampled_from([-4, 0, 3, 12.5, 100, 7])
    days = st.sampled_from(["2019-12-31", "2021-02-01", "2022-01-01", "2023-05-05"])
    hobbies = st.lists(st.sampled_from(["golf", "chess", "tennis", "ski"]), min_size=1, max_size=3, unique=True)
    return st.one_of(
        st.builds(lambda op, v: {"field": "loyalty_tier", "op": op, "value": v},
                  st.sampled_from(["eq", "ne", "contains", "starts_with"]), tiers),
        st.builds(lambda op, v: {"field": "loyalty_tier", "op": op, "value": v},
                  st.sampled_from(["in", "not_in"]), st.lists(tiers, min_size=1, max_size=3, unique=True)),
        st.builds(lambda op, v: {"field": "score", "op": op, "value": v},
                  st.sampled_from(["eq", "ne", "lt", "le", "gt", "ge"]), nums),
        st.builds(lambda op, v: {"field": "signup", "op": op, "value": v},
                  st.sampled_from(["eq", "ne", "lt", "le", "gt", "ge"]), days),
        st.builds(lambda f, op: {"field": f, "op": op},
                  st.sampled_from(["loyalty_tier", "score", "signup", "note"]), st.sampled_from(["is_empty", "is_not_empty"])),
        st.builds(lambda op: {"field": "vip", "op": op}, st.sampled_from(["is_true", "is_false"])),
        st.builds(lambda op, v: {"field": "hobbies", "op": op, "value": v},
                  st.sampled_from(["has_any", "has_all", "has_none"]), hobbies),
    )  # fmt: skip


trees = st.recursive(
    _conditions(),
    lambda kids: st.one_of(
        st.builds(lambda k, cs: {k: cs}, st.sampled_from(["all", "any"]), st.lists(kids, min_size=1, max_size=3)),
        st.builds(lambda c: {"not": c}, kids),
    ),
    max_leaves=5,
)


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(tree=trees)
def test_random_trees_agree_with_the_model(world: Database, tree: dict[str, Any]) -> None:
    fields = fields_of(world)
    node = from_json(tree, fields)
    expected = model_matches(to_json(node))
    assert sql_matches(world, node) == expected
    assert memory_matches(world, node) == expected
    # The text form, when it exists, reads back to the same contacts.
    lines = to_text(node, fields)
    if lines is not None:
        assert sql_matches(world, parse_text(lines, fields)) == expected


# ------------------------------------------------------------------------------------------------ registry rules


def test_a_custom_field_is_unknown_without_the_registry(world: Database) -> None:
    with pytest.raises(FilterError, match="unknown field 'loyalty_tier'"):
        parse_text("loyalty_tier=GOLD")
    assert "Loyalty Tier is GOLD" in describe(parse_text("loyalty_tier=GOLD", fields_of(world)), fields_of(world))


def test_values_are_bound_parameters_never_sql(world: Database) -> None:
    node = from_json({"field": "note", "op": "eq", "value": "'; DROP TABLE contacts; --"}, fields_of(world))
    compiled = str(matching_ids(node, fields=fields_of(world)).compile())
    assert "DROP" not in compiled and "custom_values" in compiled


def test_list_fields_and_counts(world: Database) -> None:
    fields = fields_of(world)
    assert count_filter(world, parse_text("hobbies=golf", fields), backend="sql")[0] == 2
    assert count_filter(world, parse_text("hobbies=golf", fields), backend="memory")[0] == 2
    infos = {i.name: i for i in list_custom_fields(world)}
    assert (infos["hobbies"].type, infos["hobbies"].contacts) == ("list", 4)
    assert (infos["score"].type, infos["score"].contacts) == ("number", 5)


# ------------------------------------------------------------------------------------------ segments and friends


def test_segment_steps_dynamic_criteria_and_drift_use_custom_fields(world: Database) -> None:
    fields = fields_of(world)
    create_segment(world, "S1", description="Gold")
    apply_action(world, "S1", ActionRequest("add", filter=parse_text("loyalty_tier=GOLD", fields)), today=TODAY)
    apply_action(world, "S1", ActionRequest("refine", filter=parse_text("signup=2021-01-01..", fields)), today=TODAY)
    assert member_contact_nos(world, "S1") == ["C1"]
    save_criteria(world, "S1", "GOLDNEW")
    create_segment(world, "S2", description="Replay")
    reuse_criteria(world, "GOLDNEW", "S2", today=TODAY)
    assert member_contact_nos(world, "S2") == ["C1"]
    assert drift(world, "S1", today=TODAY).unchanged
    dyn = create_dynamic(world, "D1", parse_text("score=>=3", fields))
    assert dyn.expression == "score>=3"  # compact: the comparison follows the name
    assert count_filter(world, dyn.filter)[0] == 3


def test_rename_rewrites_saved_filters(world: Database) -> None:
    fields = fields_of(world)
    create_dynamic(world, "D1", parse_text("loyalty_tier=GOLD", fields))
    create_segment(world, "S1", description="x")
    apply_action(world, "S1", ActionRequest("add", filter=parse_text("loyalty_tier=GOLD", fields)), today=TODAY)
    save_criteria(world, "S1", "C")
    rename_custom_field(world, "loyalty_tier", "tier", label="Tier")
    assert get_dynamic(world, "D1").expression == "tier=GOLD"
    create_segment(world, "S2", description="y")
    reuse_criteria(world, "C", "S2", today=TODAY)
    assert member_contact_nos(world, "S2") == ["C1", "C4"]
    assert drift(world, "S1", today=TODAY).unchanged
    with pytest.raises(RefusedError, match="exists already"):
        rename_custom_field(world, "tier", "score")
    with pytest.raises(UsageError, match="built-in field"):
        rename_custom_field(world, "tier", "country")


def test_delete_is_refused_while_used_and_names_the_users(world: Database) -> None:
    fields = fields_of(world)
    create_dynamic(world, "D1", parse_text("vip=true", fields))
    with pytest.raises(RefusedError, match="dynamic segment D1"):
        delete_custom_field(world, "vip")
    assert "vip" in {i.name for i in list_custom_fields(world)}
    delete_custom_field(world, "note")
    assert "note" not in fields_of(world).contact
    with pytest.raises(NotFoundError):
        delete_custom_field(world, "note")


@pytest.mark.parametrize(
    ("name", "new_type", "ok", "check"),
    [
        pytest.param("note", "code", True, ("note=HELLO", {"C1"}), id="text-to-code"),
        pytest.param("score", "text", True, ("score=*.5", {"C1"}), id="number-to-text"),
        pytest.param("loyalty_tier", "number", False, None, id="code-to-number-refused"),
        pytest.param("hobbies", "text", True, ("hobbies=*chess*", {"C1", "C4"}), id="list-to-text"),
        pytest.param("signup", "text", True, ("signup=2021*", {"C1"}), id="date-to-text"),
    ],
)
def test_retype(world: Database, name: str, new_type: str, ok: bool, check: Any) -> None:
    if not ok:
        with pytest.raises(RefusedError, match="cannot become"):
            retype_custom_field(world, name, new_type)
        assert fields_of(world).contact[name].type != new_type
        return
    retype_custom_field(world, name, new_type)
    fields = fields_of(world)
    assert fields.contact[name].type == new_type
    text, expected = check
    assert sql_matches(world, parse_text(text, fields)) == expected
    assert memory_matches(world, parse_text(text, fields)) == expected


def test_retype_back_and_forth_keeps_values(world: Database) -> None:
    retype_custom_field(world, "score", "text")
    retype_custom_field(world, "score", "number")
    fields = fields_of(world)
    assert sql_matches(world, parse_text("score=>=3", fields)) == {"C1", "C2", "C3"}


def test_retype_refused_while_a_filter_would_not_fit(world: Database) -> None:
    create_dynamic(world, "D1", parse_text("score=>=3", fields_of(world)))
    with pytest.raises(RefusedError, match="dynamic segment D1"):
        retype_custom_field(world, "score", "text")


def test_export_carries_custom_fields_and_imports_back(world: Database, tmp_path: Any) -> None:
    from segcore import set_setting

    set_setting(world, "minimum_segment_size", 1)
    fields = fields_of(world)
    create_segment(world, "ALL", description="all")
    apply_action(world, "ALL", ActionRequest("add", filter=parse_text("name=*", fields)), today=TODAY)
    data = export_members(world, "ALL", "csv")
    header = data.decode("utf-8-sig").splitlines()[0].split(",")
    assert header[-6:] == ["hobbies", "loyalty_tier", "note", "score", "signup", "vip"]
    # The file imports back onto the same fields: nothing changes.
    report = import_contacts(world, data)
    assert report.new_fields == () and report.updated == 6 and report.errors == ()
    for text in CASES:
        node = parse_text(text, fields_of(world))
        assert sql_matches(world, node) == model_matches(to_json(node)), text


def test_concurrent_change_is_not_lost(world: Database) -> None:
    # A sanity check that custom-field steps keep the engine's optimistic concurrency.
    fields = fields_of(world)
    create_segment(world, "S1", description="x")
    apply_action(world, "S1", ActionRequest("add", filter=parse_text("vip=true", fields)), today=TODAY,
                 expected_version=0)
    with pytest.raises(ConflictError):
        apply_action(world, "S1", ActionRequest("add", filter=parse_text("vip=false", fields)), today=TODAY,
                     expected_version=0)
