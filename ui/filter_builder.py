"""The filter builder: widgets per field type that build a filter tree, or the Business Central text form.

The pending filter is a small JSON-able model kept in st.session_state under `sx.filter*` keys, so it survives a
page switch (Streamlit forgets the widgets of a page that was not rendered). Widgets are seeded from the model and
write back to it on every run. The model turns into the filter language's JSON (SPEC §2) and then, through
segcore, into a tree; the rules (operators per type, value checks, relative dates) stay in segcore.

Model:
    {"combine": "all"|"any", "groups": [group, ...]}
    group = {"id", "kind": "all"|"any", "negate": bool, "items": [item, ...]}
    item  = {"id", "field", "op", "value"}                                   a contact field
          | {"id", "relation": "interactions", "template", "date", "date_range", "campaign_no", "evaluation",
             "min_count"}                                                     at least N interactions that ...
          | {"id", "relation": "profile", "questionnaire", "answer", "min_count"}
Two levels of AND/OR: the groups are combined ALL/ANY, each group is ALL/ANY of its conditions, and a group can be
negated (NOT). Related conditions add a third level (one record meeting all their parts).

Custom fields (made by imports) are offered after the built-in ones, with the widgets of their type. The database's
`FieldRegistry` is read once per run (`filter_builder(fields)`) and handed to every function that looks a field up,
parses, converts or describes a filter: without it the language knows the built-in fields only.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import streamlit as st

from segcore import (
    BUILTIN,
    CONTACT_FIELDS,
    EVALUATIONS,
    PREFERENCES,
    Condition,
    FieldRegistry,
    FieldSpec,
    FilterError,
    FilterSyntaxError,
    Group,
    Node,
    Not,
    Related,
    SegcoreError,
    describe,
    fields_for,
    from_json,
    known_values,
    number_bounds,
    parse_text,
    to_json,
    to_text,
    value_counts,
)
from segcore import (
    data_token as _core_data_token,
)
from ui import state
from ui.format import n, plural, with_count

K_MODEL = "sx.filter"
K_MODE = "sx.filter_mode"
K_TEXT = "sx.filter_text"
K_SEQ = "sx.filter_seq"
K_MODE_NOTE = "sx.filter_mode_note"  # (text it is about, why the widgets cannot show it)
W_DATE_ORDER = "fb.date_order"
MODES = {"widgets": "Widgets", "text": "Text form"}

# UI operators per field type: (ui op, label). Date presets and ranges map onto the language's ge/lt/between.
UI_OPS: dict[str, tuple[tuple[str, str], ...]] = {
    "code": (("in", "is any of"), ("not_in", "is none of"), ("matches", "matches pattern"),
             ("is_empty", "is empty"), ("is_not_empty", "is not empty")),
    "text": (("contains", "contains"), ("matches", "matches pattern (* ?)"), ("eq", "is"), ("ne", "is not"),
             ("starts_with", "starts with"), ("ends_with", "ends with"), ("is_empty", "is empty"),
             ("is_not_empty", "is not empty")),
    "number": (("between", "between"), ("ge", "at least"), ("le", "at most"), ("eq", "equals"),
               ("is_empty", "is empty"), ("is_not_empty", "is not empty")),
    "date": (("last_30", "in the last 30 days"), ("last_90", "in the last 90 days"),
             ("last_365", "in the last 365 days"), ("between", "between dates"), ("lt", "before"),
             ("ge", "on or after"), ("is_empty", "is empty"), ("is_not_empty", "is not empty")),
    "boolean": (("is_true", "is yes"), ("is_false", "is no")),
    "list": (("has_any", "has any of"), ("has_all", "has all of"), ("has_none", "has none of")),
}  # fmt: skip
# The language operator each UI operator needs (to hide what a field does not allow, e.g. age band patterns).
_LANG_OP = {"last_30": "ge", "last_90": "ge", "last_365": "ge"}
DATE_PRESETS = {"last_30": 30, "last_90": 90, "last_365": 365}
# Related-record date choices: "any" means no date condition.
REL_DATES = (("any", "any date"),) + tuple((k, v) for k, v in UI_OPS["date"] if k in DATE_PRESETS) + (
    ("between", "between dates"),
)
RELATED = {"interactions": "Interactions (at least N that…)", "profile": "Profile answer"}
# Fields offered in "Add a condition", in the order a marketer thinks of them; the rest of the whitelist follows.
_FIRST = (
    "country", "age", "age_band", "gender", "type", "industry_groups", "acquisition_source", "churn_risk",
    "total_spent", "purchase_count", "last_purchase_date", "mailing_groups", "email",
)  # fmt: skip
FIELD_CHOICES: tuple[str, ...] = (
    *_FIRST,
    *(f for f in CONTACT_FIELDS if f not in _FIRST),
    *(f"@{r}" for r in RELATED),
)
CUSTOM_SUFFIX = " (custom)"
# How many custom field names the text form lists under its box.
MAX_NAMES_SHOWN = 12


def field_choices(fields: FieldRegistry = BUILTIN) -> tuple[str, ...]:
    """What "Add a condition" offers: the built-in fields, then the database's custom fields (by label), then the
    related-record conditions."""
    custom = tuple(s.name for s in sorted(fields.custom, key=lambda s: s.label.lower()))
    builtin = tuple(c for c in FIELD_CHOICES if not c.startswith("@"))
    return (*builtin, *custom, *(c for c in FIELD_CHOICES if c.startswith("@")))


def field_label(choice: str, fields: FieldRegistry = BUILTIN) -> str:
    """A field as the picker shows it: its label, with "(custom)" after a custom field's."""
    if choice.startswith("@"):
        return RELATED[choice[1:]]
    spec = fields.get(choice)
    if spec is None:
        return choice
    return spec.label + (CUSTOM_SUFFIX if spec.custom else "")


@dataclass(frozen=True)
class BuiltFilter:
    """What the builder produced this run."""

    json: dict[str, Any] | None  # the filter language JSON, None when there is no complete condition
    node: Any  # the segcore tree, None when json is None or invalid
    description: str
    error: str | None = None
    incomplete: int = 0  # conditions shown but not used yet (e.g. nothing selected)


# ------------------------------------------------------------------------------------------------- model


def _next_id(prefix: str) -> str:
    seq = state.session(K_SEQ, 0) + 1
    st.session_state[K_SEQ] = seq
    return f"{prefix}{seq}"


def new_group() -> dict[str, Any]:
    return {"id": _next_id("g"), "kind": "all", "negate": False, "items": []}


def model() -> dict[str, Any]:
    m = state.session(K_MODEL, None)
    if m is None:
        m = {"combine": "all", "groups": [new_group()]}
        st.session_state[K_MODEL] = m
    return m


def clear() -> None:
    """Forget the pending filter, widgets and text form alike."""
    st.session_state[K_MODEL] = {"combine": "all", "groups": [new_group()]}
    st.session_state[K_TEXT] = ""
    st.session_state.pop("fb.text", None)
    st.session_state.pop(K_MODE_NOTE, None)


def default_item(choice: str, fields: FieldRegistry = BUILTIN) -> dict[str, Any]:
    """A new condition for a field (or a related-record condition for `@interactions` / `@profile`)."""
    iid = _next_id("c")
    if choice == "@interactions":
        return {"id": iid, "relation": "interactions", "template": [], "date": "any", "date_range": None,
                "campaign_no": [], "evaluation": [], "min_count": 1}  # fmt: skip
    if choice == "@profile":
        return {"id": iid, "relation": "profile", "questionnaire": None, "answer": [], "min_count": 1}
    spec = fields.get(choice)
    if spec is None:
        raise KeyError(choice)
    op = _ops_for(spec)[0][0]
    return {"id": iid, "field": choice, "op": op, "value": None}


def _ops_for(spec: FieldSpec) -> tuple[tuple[str, str], ...]:
    allowed = set(spec.allowed_ops())
    return tuple((op, label) for op, label in UI_OPS[spec.type] if _LANG_OP.get(op, op) in allowed)


# ------------------------------------------------------------------------------------------------- model -> JSON


def _date_json(field: str, op: str, value: Any) -> dict[str, Any] | None:
    if op in DATE_PRESETS:
        return {"field": field, "op": "ge", "value": f"today-{DATE_PRESETS[op]}d"}
    if op in ("is_empty", "is_not_empty"):
        return {"field": field, "op": op}
    if op == "between":
        if not isinstance(value, list | tuple) or len(value) != 2 or not all(value):
            return None
        return {"field": field, "op": "between", "value": [_iso(value[0]), _iso(value[1])]}
    if not value:
        return None
    return {"field": field, "op": op, "value": _iso(value)}


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def item_json(item: dict[str, Any], fields: FieldRegistry = BUILTIN) -> dict[str, Any] | None:
    """One condition in the filter language, or None while it is incomplete (or its field no longer exists)."""
    if "relation" in item:
        return _related_json(item)
    spec = fields.get(item["field"])
    if spec is None:
        return None
    op, value, field = item["op"], item.get("value"), item["field"]
    if spec.type == "date":
        return _date_json(field, op, value)
    if op in ("is_empty", "is_not_empty", "is_true", "is_false"):
        return {"field": field, "op": op}
    if op in ("in", "not_in", "has_any", "has_all", "has_none"):
        return {"field": field, "op": op, "value": list(value)} if value else None
    if op == "between":
        if not isinstance(value, list | tuple) or len(value) != 2:
            return None
        return {"field": field, "op": "between", "value": [_num(spec, value[0]), _num(spec, value[1])]}
    if value is None or value == "":
        return None
    return {"field": field, "op": op, "value": _num(spec, value) if spec.type == "number" else str(value)}


def _num(spec: FieldSpec, value: Any) -> int | float:
    # Whole amounts go as integers, so the description reads "total spent 100–900", not "100.0–900.0".
    if spec.integer or float(value).is_integer():
        return int(value)
    return float(value)


def _related_json(item: dict[str, Any]) -> dict[str, Any] | None:
    where: list[dict[str, Any]] = []
    if item["relation"] == "interactions":
        for name in ("template", "campaign_no", "evaluation"):
            if item.get(name):
                where.append({"field": name, "op": "in", "value": list(item[name])})
        if item.get("date", "any") != "any":
            cond = _date_json("date", item["date"], item.get("date_range"))
            if cond is None:
                return None
            where.append(cond)
    else:
        if not item.get("questionnaire"):
            return None
        where.append({"field": "questionnaire", "op": "eq", "value": item["questionnaire"]})
        if item.get("answer"):
            where.append({"field": "answer", "op": "in", "value": list(item["answer"])})
    return {"related": item["relation"], "where": {"all": where}, "min_count": int(item.get("min_count") or 1)}


def model_json(m: dict[str, Any], fields: FieldRegistry = BUILTIN) -> tuple[dict[str, Any] | None, int]:
    """The whole filter in the language's JSON (None when empty) and how many conditions are incomplete."""
    groups, incomplete = [], 0
    for g in m["groups"]:
        parts = []
        for item in g["items"]:
            j = item_json(item, fields)
            if j is None:
                incomplete += 1
            else:
                parts.append(j)
        if not parts:
            continue
        node: dict[str, Any] = parts[0] if len(parts) == 1 else {g["kind"]: parts}
        groups.append({"not": node} if g.get("negate") else node)
    if not groups:
        return None, incomplete
    return (groups[0] if len(groups) == 1 else {m["combine"]: groups}), incomplete


# ------------------------------------------------------------------------------------------------- tree -> model


class _NoWidgets(Exception):
    """The widgets cannot show this part of a filter; the message says which part, for the user."""


_RELATIVE_PRESET = {f"today-{days}d": op for op, days in DATE_PRESETS.items()}


def _is_iso(value: Any) -> bool:
    try:
        dt.date.fromisoformat(str(value))
    except ValueError:
        return False
    return True


def _field_item_of(node: Condition, fields: FieldRegistry) -> dict[str, Any]:
    spec = fields.get(node.field)
    if spec is None:
        raise _NoWidgets(f"{node.field} is not a field")
    op, value = node.op, node.value
    if spec.type == "code" and op in ("eq", "ne"):
        op, value = ("in" if op == "eq" else "not_in"), [value]
    elif spec.type == "number" and op in ("gt", "lt") and spec.integer:
        # Whole numbers: > 30 is ≥ 31, exactly.
        op, value = ("ge", value + 1) if op == "gt" else ("le", value - 1)
    elif spec.type == "date" and op not in ("is_empty", "is_not_empty"):
        if op == "ge" and str(value).lower() in _RELATIVE_PRESET:
            op, value = _RELATIVE_PRESET[str(value).lower()], None
        elif op in ("ge", "lt") and _is_iso(value):
            value = str(value)
        elif op == "between" and all(_is_iso(v) for v in value):
            value = [str(v) for v in value]
        else:
            raise _NoWidgets(f"the date condition on {spec.label} ({op} {value})")
    if isinstance(value, tuple):
        value = list(value)
    if op not in dict(_ops_for(spec)):
        raise _NoWidgets(f"“{spec.label}” with the operator {op}")
    return {"id": _next_id("c"), "field": node.field, "op": op, "value": value}


def _related_item_of(node: Related) -> dict[str, Any]:
    where = node.where
    parts = where.children if isinstance(where, Group) and where.kind == "all" else (where,)
    item = default_item(f"@{node.relation}")
    item["min_count"] = int(node.min_count)
    seen: set[str] = set()
    for part in parts:
        if not isinstance(part, Condition) or part.field in seen:
            raise _NoWidgets(f"this {node.relation} condition")
        seen.add(part.field)
        values = list(part.value) if part.op == "in" else [part.value] if part.op == "eq" else None
        if node.relation == "interactions" and part.field in ("template", "campaign_no", "evaluation") and values:
            item[part.field] = [str(v) for v in values]
        elif node.relation == "interactions" and part.field == "date":
            if part.op == "ge" and str(part.value).lower() in _RELATIVE_PRESET:
                item["date"] = _RELATIVE_PRESET[str(part.value).lower()]
            elif part.op == "between" and all(_is_iso(v) for v in part.value):
                item["date"], item["date_range"] = "between", [str(v) for v in part.value]
            else:
                raise _NoWidgets(f"the interaction date condition ({part.op} {part.value})")
        elif node.relation == "profile" and part.field == "questionnaire" and part.op == "eq":
            item["questionnaire"] = str(part.value)
        elif node.relation == "profile" and part.field == "answer" and values:
            item["answer"] = [str(v) for v in values]
        else:
            raise _NoWidgets(f"the {node.relation} condition on {part.field} ({part.op})")
    if node.relation == "profile" and not item.get("questionnaire"):
        raise _NoWidgets("a profile answer without its questionnaire")
    return item


def _leaf(node: Node) -> bool:
    return isinstance(node, Condition | Related)


def _item_of(node: Node, fields: FieldRegistry) -> dict[str, Any]:
    return _related_item_of(node) if isinstance(node, Related) else _field_item_of(node, fields)  # type: ignore[arg-type]


def _group_of(node: Node, fields: FieldRegistry) -> dict[str, Any]:
    """One widget group: a condition, an AND/OR of conditions, or the NOT of either."""
    group = new_group()
    if isinstance(node, Not):
        group["negate"], node = True, node.child
    if isinstance(node, Group):
        if not node.children or not all(_leaf(c) for c in node.children):
            raise _NoWidgets("groups nested more than two levels deep")
        group["kind"] = node.kind
        group["items"] = [_item_of(c, fields) for c in node.children]
    elif _leaf(node):
        group["items"] = [_item_of(node, fields)]
    else:
        raise _NoWidgets("a NOT of a NOT")
    return group


def model_from_tree(node: Node, fields: FieldRegistry = BUILTIN) -> tuple[dict[str, Any] | None, str | None]:
    """The widget model that shows this filter tree, or (None, the part the widgets cannot show).

    The widgets hold two levels (groups combined with AND/OR, each group an AND/OR of conditions, a group may be
    negated), the operators of UI_OPS and the date presets; a text filter within that converts exactly."""
    try:
        if isinstance(node, Group) and not node.children and node.kind == "all":
            return {"combine": "all", "groups": [new_group()]}, None
        if isinstance(node, Group) and node.children and not all(_leaf(c) for c in node.children):
            leaves = [c for c in node.children if _leaf(c)]
            groups = [_group_of(Group(node.kind, tuple(leaves)), fields)] if leaves else []
            groups += [_group_of(c, fields) for c in node.children if not _leaf(c)]
            m = {"combine": node.kind, "groups": groups}
        else:
            m = {"combine": "all", "groups": [_group_of(node, fields)]}
    except _NoWidgets as e:
        return None, str(e)
    _, incomplete = model_json(m, fields)
    if incomplete:
        return None, "a condition the widgets would leave incomplete"
    return m, None


# ------------------------------------------------------------------------------------------------- cached lookups


_SOURCE_KEY = "fb.values_source"


def use_values_of(source: str | None) -> None:
    """Count the widgets' values and slider ends over this contact source (None: the application database), for
    the page that builds a segment over it."""
    st.session_state[_SOURCE_KEY] = source


def _values_source() -> str | None:
    return st.session_state.get(_SOURCE_KEY)


@st.cache_data(show_spinner=False, max_entries=512)
def _value_counts(
    url: str, token: str, field: str, relation: str | None, questionnaire: str | None, source: str | None = None
) -> list[tuple[str, int]]:

    del token  # part of the cache key only: new data, new counts
    return value_counts(state._open(url), field, relation, questionnaire=questionnaire, source=source)


@st.cache_data(show_spinner=False, max_entries=128)
def _bounds(url: str, token: str, field: str, today: dt.date, source: str | None = None) -> tuple[float, float] | None:

    del token
    return number_bounds(state._open(url), field, today=today, source=source)


@st.cache_data(show_spinner=False, ttl=5)
def data_token(url: str) -> str:
    # A few seconds of staleness is fine for value counts; it saves a query on every widget change.

    return _core_data_token(state._open(url))


def counts_for(field: str, relation: str | None = None, questionnaire: str | None = None) -> list[tuple[str, int]]:
    url = state.db_url()
    return _value_counts(url, data_token(url), field, relation, questionnaire, _values_source())


# ------------------------------------------------------------------------------------------------- widgets


def _multiselect(label: str, key: str, options: list[tuple[str, int]], current: list[str] | None) -> list[str]:
    """A multiselect whose options show their counts: FR (4,210). Stored values missing from the data stay."""
    counts = dict(options)
    values = list(counts) + [v for v in (current or []) if v not in counts]
    state.seed_widget(key, [v for v in (current or []) if v in values])
    return st.multiselect(
        label,
        values,
        key=key,
        format_func=lambda v: with_count(v, counts[v]) if v in counts else v,
        placeholder="Choose values…",
        label_visibility="collapsed",
    )


def _date_range(key: str, current: Any) -> Any:
    today = dt.date.today()
    default = current if isinstance(current, list | tuple) and len(current) == 2 else [today - dt.timedelta(days=90), today]
    state.seed_widget(key, tuple(_as_date(v) for v in default))
    value = st.date_input("Dates", key=key, label_visibility="collapsed", format="YYYY-MM-DD")
    return [v.isoformat() for v in value] if isinstance(value, list | tuple) and len(value) == 2 else None


def _as_date(value: Any) -> dt.date:
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


def _value_widget(item: dict[str, Any], spec: FieldSpec) -> Any:
    """The value editor for one contact-field condition; returns the new value."""
    op, key = item["op"], f"fb.{item['id']}.{item['op']}.v"
    current = item.get("value")
    if op in ("is_empty", "is_not_empty", "is_true", "is_false") or op in DATE_PRESETS:
        return None
    if op in ("in", "not_in", "has_any", "has_all", "has_none"):
        options = counts_for(item["field"]) if spec.type in ("code", "list") else []
        return _multiselect(spec.label, key, options, current if isinstance(current, list) else [])
    if spec.type == "number":
        return _number_widget(item, spec, key, current)
    if spec.type == "date":
        if op == "between":
            return _date_range(key, current)
        state.seed_widget(key, _as_date(current) if current else dt.date.today())
        return st.date_input(spec.label, key=key, label_visibility="collapsed", format="YYYY-MM-DD").isoformat()
    hint = "Use * for any text and ? for one character, e.g. *@contoso.com" if op == "matches" else None
    state.seed_widget(key, current if isinstance(current, str) else "")
    return st.text_input(spec.label, key=key, label_visibility="collapsed", placeholder=hint or "Text…", help=hint)


def slider_scale(spec: FieldSpec, lo: float, hi: float) -> tuple[int | float, int | float, int | float, str]:
    """Slider ends, step and format for a number field whose values run from lo to hi: whole numbers step by 1;
    money (built-in amounts) by 10 between whole ends; a custom decimal field by a round step near 1/100 of its
    range, with ends on that step, so every stored value is inside."""
    if spec.integer:
        return int(math.floor(lo)), int(max(math.ceil(hi), math.floor(lo) + 1)), 1, "%d"
    if not spec.custom:
        # Money: whole units are precise enough for a slider, and the ends must cover every value.
        return float(int(lo)), float(int(hi) + 1), 10.0, "%.0f"
    span = hi - lo
    # A power of ten giving some 30 to 300 steps over the range.
    power = math.floor(math.log10(span / 100) + 0.5) if span > 0 else 0
    step = 10.0**power
    decimals = max(0, -power)
    low = round(math.floor(lo / step) * step, decimals)
    high = round(math.ceil(hi / step) * step, decimals)
    if high <= low:
        high = round(low + step, decimals)
    return float(low), float(high), round(step, decimals), f"%.{decimals}f"


def _number_widget(item: dict[str, Any], spec: FieldSpec, key: str, current: Any) -> Any:
    bounds = _bounds(state.db_url(), data_token(state.db_url()), item["field"], dt.date.today(),
                     _values_source()) or (0.0, 100.0)
    lo, hi, step, fmt = slider_scale(spec, *bounds)
    if item["op"] == "between":
        default = tuple(current) if isinstance(current, list | tuple) and len(current) == 2 else (lo, hi)
        default = (min(max(default[0], lo), hi), min(max(default[1], lo), hi))
        state.seed_widget(key, tuple(type(lo)(v) for v in default))
        value = st.slider(spec.label, min_value=lo, max_value=hi, key=key, label_visibility="collapsed",
                          step=step, format=fmt)
        return list(value)
    state.seed_widget(key, type(lo)(current) if isinstance(current, int | float) else lo)
    return st.number_input(spec.label, min_value=lo if lo >= 0 else None, key=key, label_visibility="collapsed",
                           step=step, format=fmt if spec.custom else None)


def _field_item(item: dict[str, Any], group: dict[str, Any], fields: FieldRegistry) -> None:
    spec = fields.get(item["field"])
    if spec is None:
        # A custom field deleted or renamed since this condition was made.
        top = st.columns([9, 1], vertical_alignment="center")
        top[0].warning(f"**{item['field']}** is no longer a field: remove this condition.", icon=":material/warning:")
        _remove_button(top[1], group, item)
        return
    ops = dict(_ops_for(spec))
    top = st.columns([4, 5, 1], vertical_alignment="center")
    top[0].markdown(f"**{spec.label}**", help=f"Custom field `{spec.name}`" if spec.custom else None)
    op_key = f"fb.{item['id']}.op"
    state.seed_widget(op_key, item["op"] if item["op"] in ops else next(iter(ops)))
    op = top[1].selectbox("Operator", list(ops), key=op_key, format_func=ops.get, label_visibility="collapsed")
    if op != item["op"]:
        # Values do not carry over between operators (a list for "is any of", a text for "contains").
        item["op"], item["value"] = op, None
    _remove_button(top[2], group, item)
    item["value"] = _value_widget(item, spec)


def _related_item(item: dict[str, Any], group: dict[str, Any]) -> None:
    iid = item["id"]
    top = st.columns([4, 5, 1], vertical_alignment="center")
    top[0].markdown(f"**{RELATED[item['relation']].split(' (')[0]}**")
    state.seed_widget(f"fb.{iid}.min", int(item.get("min_count") or 1))
    with top[1]:
        item["min_count"] = st.number_input(
            "At least how many", min_value=1, step=1, key=f"fb.{iid}.min",
            help="How many related records must meet every part below (one record meets all of them).",
        )
    _remove_button(top[2], group, item)
    if item["relation"] == "interactions":
        c1, c2 = st.columns(2)
        with c1:
            st.caption("Template")
            item["template"] = _multiselect("Template", f"fb.{iid}.tpl", counts_for("template", "interactions"),
                                            item.get("template"))
            st.caption("Evaluation")
            item["evaluation"] = _multiselect("Evaluation", f"fb.{iid}.eval",
                                              _ordered_counts(counts_for("evaluation", "interactions"), EVALUATIONS),
                                              item.get("evaluation"))
        with c2:
            st.caption("Campaign")
            item["campaign_no"] = _multiselect("Campaign", f"fb.{iid}.camp", counts_for("campaign_no", "interactions"),
                                               item.get("campaign_no"))
            st.caption("Date")
            dates = dict(REL_DATES)
            state.seed_widget(f"fb.{iid}.date", item.get("date", "any"))
            item["date"] = st.selectbox("Date", list(dates), key=f"fb.{iid}.date", format_func=dates.get,
                                        label_visibility="collapsed")
            item["date_range"] = _date_range(f"fb.{iid}.range", item.get("date_range")) if item["date"] == "between" else None
    else:
        questionnaires = counts_for("questionnaire", "profile")
        names = [q for q, _ in questionnaires]
        q_counts = dict(questionnaires)
        c1, c2 = st.columns([2, 3])
        with c1:
            state.seed_widget(f"fb.{iid}.q", item.get("questionnaire") if item.get("questionnaire") in names else None)
            item["questionnaire"] = st.selectbox(
                "Questionnaire", names, key=f"fb.{iid}.q", index=None, placeholder="Questionnaire…",
                format_func=lambda q: with_count(q, q_counts.get(q, 0)), label_visibility="collapsed",
            )
        with c2:
            if item["questionnaire"]:
                item["answer"] = _multiselect(
                    "Answers", f"fb.{iid}.{item['questionnaire']}.a",
                    counts_for("answer", "profile", item["questionnaire"]), item.get("answer"),
                )
            else:
                st.caption("Choose a questionnaire first.")


def _ordered_counts(counts: list[tuple[str, int]], order: tuple[str, ...]) -> list[tuple[str, int]]:
    found = dict(counts)
    return [(v, found.get(v, 0)) for v in order] + [(k, v) for k, v in counts if k not in order]


def _remove_button(where: Any, group: dict[str, Any], item: dict[str, Any]) -> None:
    where.button(":material/close:", key=f"fb.{item['id']}.rm", help="Remove this condition",
                 on_click=_remove_item, args=(group["id"], item["id"]), type="tertiary")


# ------------------------------------------------------------------------------------------------- callbacks


def _group(gid: str) -> dict[str, Any] | None:
    return next((g for g in model()["groups"] if g["id"] == gid), None)


def _remove_item(gid: str, iid: str) -> None:
    g = _group(gid)
    if g is not None:
        g["items"] = [i for i in g["items"] if i["id"] != iid]


def _add_item(gid: str, key: str, fields: FieldRegistry) -> None:
    choice = st.session_state.get(key)
    g = _group(gid)
    if choice and g is not None and (choice.startswith("@") or fields.get(choice) is not None):
        g["items"].append(default_item(choice, fields))
    st.session_state[key] = None


def _add_group() -> None:
    model()["groups"].append(new_group())


def _remove_group(gid: str) -> None:
    m = model()
    m["groups"] = [g for g in m["groups"] if g["id"] != gid] or [new_group()]


def _to_text(lines: list[str]) -> None:
    set_text("\n".join(lines))


def _switch_mode(fields: FieldRegistry) -> None:
    """Carry the filter over when the user switches between the widgets and the text form.

    Text to widgets converts the text's tree when the widgets can show it; when they cannot (or the text has an
    error), the switch stays on the text form and the note next to it says why, so nothing is dropped."""
    ss = st.session_state
    wanted = ss.get("fb.mode") or "widgets"
    ss.pop(K_MODE_NOTE, None)
    if wanted == ss.get(K_MODE, "widgets"):
        return
    if wanted == "widgets":
        text = ss.get(K_TEXT, "") or ""
        if text.strip():
            try:
                node = parse(text, fields)
            except SegcoreError:
                ss[K_MODE_NOTE] = (text, "The text has an error: fix it first, the widgets cannot show it.")
                ss["fb.mode"] = "text"
                return
            m, why = model_from_tree(node, fields)
            if m is None:
                ss[K_MODE_NOTE] = (text, f"The widgets cannot show {why}: the filter stays in the text form.")
                ss["fb.mode"] = "text"
                return
            ss[K_MODEL] = m
        else:
            ss[K_MODEL] = {"combine": "all", "groups": [new_group()]}
    else:
        j, _ = model_json(model(), fields)
        lines: list[str] | None = []
        if j is not None:
            try:
                lines = to_text(from_json(j, fields), fields)
            except SegcoreError:
                lines = None
        if lines is None:
            ss[K_MODE_NOTE] = (None, "This filter has no text form: it stays in the widgets.")
            ss["fb.mode"] = "widgets"
            return
        ss[K_TEXT] = ss["fb.text"] = "\n".join(lines)
    ss[K_MODE] = ss["fb.mode"]


def set_text(text: str) -> None:
    """Put a filter into the text form and show it (callbacks only: widget keys are reset here)."""
    st.session_state[K_TEXT] = text
    st.session_state["fb.text"] = text
    st.session_state[K_MODE] = "text"
    st.session_state["fb.mode"] = "text"


# ------------------------------------------------------------------------------------------------- rendering


def _render_group(m: dict[str, Any], g: dict[str, Any], index: int, fields: FieldRegistry) -> None:
    gid = g["id"]
    with st.container(border=True):
        with st.container(horizontal=True, vertical_alignment="center", gap="medium"):
            st.markdown(f"**Group {index + 1}**" if len(m["groups"]) > 1 else "**Conditions**", width="content")
            kind_key = f"fb.{gid}.kind"
            state.seed_widget(kind_key, g["kind"])
            g["kind"] = st.segmented_control(
                "Match", ["all", "any"], key=kind_key, required=True, label_visibility="collapsed",
                format_func={"all": "All", "any": "Any"}.get, help="Contacts must meet all of these conditions, or any one",
            ) or "all"
            neg_key = f"fb.{gid}.neg"
            state.seed_widget(neg_key, bool(g.get("negate")))
            # No help icon here: it would push the toggle onto a second line in the narrow column.
            g["negate"] = st.toggle("Exclude", key=neg_key)
            if len(m["groups"]) > 1:
                st.button(":material/delete:", key=f"fb.{gid}.rmg", help="Remove this group", type="tertiary",
                          on_click=_remove_group, args=(gid,))
        for item in list(g["items"]):
            with st.container(border=True):
                if "relation" in item:
                    _related_item(item, g)
                else:
                    _field_item(item, g, fields)
        add_key = f"fb.{gid}.add"
        st.selectbox(
            "Add a condition", field_choices(fields), index=None, key=add_key,
            format_func=lambda c: field_label(c, fields), placeholder="+ Add a condition…",
            label_visibility="collapsed", on_change=_add_item, args=(gid, add_key, fields),
        )


def _render_widgets(fields: FieldRegistry) -> tuple[dict[str, Any] | None, int]:
    m = model()
    if len(m["groups"]) > 1:
        key = "fb.combine"
        state.seed_widget(key, m["combine"])
        m["combine"] = st.segmented_control(
            "Contacts must match", ["all", "any"], key=key, required=True,
            format_func={"all": "every group (AND)", "any": "at least one group (OR)"}.get,
        ) or "all"
    for index, g in enumerate(m["groups"]):
        _render_group(m, g, index, fields)
    st.button(":material/add: Add group", on_click=_add_group, type="tertiary",
              help="Groups are combined with AND or OR; each group holds its own conditions")
    return model_json(m, fields)


def _custom_names_caption(fields: FieldRegistry) -> None:
    """The text form names fields by name, not label: list the custom ones, which a user cannot guess."""
    if not fields.custom:
        return
    specs = sorted(fields.custom, key=lambda s: s.label.lower())
    shown = ", ".join(f"`{s.name}` ({s.label}, {s.type})" if s.label != s.name else f"`{s.name}` ({s.type})"
                      for s in specs[:MAX_NAMES_SHOWN])
    more = f" and {n(len(specs) - MAX_NAMES_SHOWN)} more" if len(specs) > MAX_NAMES_SHOWN else ""
    st.caption(f"Custom fields: {shown}{more}.")


@st.cache_resource(show_spinner=False, max_entries=16, ttl=600)
def _known(url: str, token: str, source: str | None = None) -> Any:
    # The code values present in the data (of the source the filter runs on), read once per field when a text
    # names it; new data, new look-up.
    del token
    return known_values(state._open(url), source)


def date_order() -> str:
    """How this user's typed short dates are read (DMY, MDY or YMD): the control by the text form, else their
    preference."""
    return str(st.session_state.get(W_DATE_ORDER) or state.preference("date_order"))


def parse(text: str, fields: FieldRegistry) -> Node:
    """The text form's tree: short dates in the user's date order, codes checked against the data ("did you mean
    FR?")."""
    url = state.db_url()
    return parse_text(text, fields, date_order=date_order(), known=_known(url, data_token(url), _values_source()))


def _date_order_control() -> None:
    state.seed_preference_widget(W_DATE_ORDER, "date_order")
    orders = PREFERENCES["date_order"].values
    st.selectbox("Short dates", orders, key=W_DATE_ORDER, width=150, on_change=state.save_preference,
                 args=("date_order", W_DATE_ORDER), format_func=lambda o: f"Dates {'/'.join(o)}",
                 help="How a short date such as 311225 or 31/12/25 is read: day, month, year (DMY), month first "
                 "(MDY) or year first (YMD). Remembered for you.", label_visibility="collapsed")


def _render_text(fields: FieldRegistry) -> tuple[Any, str | None]:
    state.seed_widget("fb.text", state.session(K_TEXT, ""))
    text = st.text_area(
        "One condition a line, Business Central style",
        key="fb.text",
        height=140,
        placeholder="country=FR|DE|BE\nage=25..44\ninteractions.template=EMAIL\ninteractions.date=today-30d..",
        help="`A|B` or, `10..20` range, `<>A` not, `<`, `>=`, `*` and `?` wildcards, `''` empty. "
        "Lines are combined with AND; `interactions.…` lines form one related-record condition.",
    ) or ""
    st.session_state[K_TEXT] = text
    _custom_names_caption(fields)
    if not text.strip():
        return None, None

    try:
        return parse(text, fields), None
    except FilterSyntaxError as e:
        return None, syntax_error_markdown(e, text)
    except SegcoreError as e:
        return None, str(e)


def syntax_error_markdown(e: FilterSyntaxError, text: str = "") -> str:
    """The faulty text with a caret under the position: easier to see than a column number."""
    line = e.text.replace("\n", " ")
    caret = " " * max(0, e.position - 1) + "^"
    lines = [x.strip() for x in text.splitlines()]
    where = f"Line {lines.index(e.text.strip()) + 1}, position" if e.text.strip() in lines and len(lines) > 1 else "Position"
    return f"{where} {e.position}: {e.reason}\n\n```\n{line}\n{caret}\n```"


def filter_builder(fields: FieldRegistry | None = None) -> BuiltFilter:
    """Render the builder (widgets or text form) and return the filter it holds.

    `fields` is the registry of the contacts the filter runs on, read once per run by the page
    (`fields_for(db, source)`); read here when None, for the source `use_values_of` named."""

    if fields is None:
        fields = fields_for(state.get_db(), _values_source())
    state.seed_widget("fb.mode", state.session(K_MODE, "widgets"))
    with st.container(horizontal=True, vertical_alignment="center"):
        mode = st.segmented_control("Build with", list(MODES), key="fb.mode", format_func=MODES.get, required=True,
                                    label_visibility="collapsed", on_change=_switch_mode, args=(fields,)) or "widgets"
        if mode == "text":
            _date_order_control()
    st.session_state[K_MODE] = mode
    state.show_flashes(W_DATE_ORDER)
    note = st.session_state.get(K_MODE_NOTE)
    if note and (note[0] is None or note[0] == st.session_state.get(K_TEXT)):
        st.warning(note[1], icon=":material/info:")
    incomplete = 0
    if mode == "text":
        node, error = _render_text(fields)
        j = to_json(node) if node is not None else None
    else:
        j, incomplete = _render_widgets(fields)
        node, error = None, None
        if j is not None:
            try:
                node = from_json(j, fields)
            except FilterError as e:
                error = str(e)
    desc = describe(node, fields) if node is not None else ""
    if mode == "widgets" and node is not None:

        lines = to_text(node, fields)
        if lines is not None:
            st.button(":material/edit_note: Edit as text", type="tertiary", on_click=_to_text, args=(lines,),
                      help="Copy this filter into the text form")
    if incomplete:
        st.caption(f"{plural(incomplete, 'condition')} without a value yet "
                   f"{'is' if incomplete == 1 else 'are'} left out.")
    return BuiltFilter(j if node is not None else None, node, desc, error, incomplete)
