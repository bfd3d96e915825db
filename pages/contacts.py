"""Contacts: browse and search every contact (paged in SQL); one contact's fields, memberships and interactions."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from segcore import (
    BROWSE_COLUMNS,
    FieldRegistry,
    FieldSpec,
    contact_detail,
    fields_of,
    search_contacts,
)
from ui import frame, state
from ui.format import money, n, plural, shown_range, when
from ui.tables import PLACEHOLDER, contact_columns, table_height

PAGE_SIZE = 50
K_PICK = "sx.contact"
TYPES = {"": "All", "company": "Companies", "person": "Persons"}

frame.page_guard()
db = state.get_db()
fields = fields_of(db)
frame.header("Contacts", "Every contact in the database: search, then pick one to see its segments and interactions.")


def _reset_page() -> None:
    st.session_state.pop("ct.page", None)


def _pick_row(nos: list[str], key: str) -> None:
    rows = st.session_state[key].selection.rows
    if rows:
        st.session_state[K_PICK] = nos[rows[0]]
        st.session_state["ct.lookup"] = nos[rows[0]]


def _browse() -> None:
    c1, c2 = st.columns([3, 2], vertical_alignment="center")
    query = c1.text_input("Search", key="ct.q", placeholder="Search by number, name, e-mail or city",
                          on_change=_reset_page, label_visibility="collapsed", icon=":material/search:")
    with c2:
        ctype = st.segmented_control("Type", list(TYPES), key="ct.type", format_func=TYPES.get, required=True,
                                     default="", on_change=_reset_page, label_visibility="collapsed") or ""
    page_no = int(st.session_state.get("ct.page", 1))
    page = search_contacts(db, query, offset=(page_no - 1) * PAGE_SIZE, limit=PAGE_SIZE, contact_type=ctype or None)
    if page.total == 0:
        st.info("No contact matches. Try fewer letters, or import contacts on **Data**.", icon=":material/search_off:")
        return
    frame_ = pd.DataFrame(page.rows, columns=list(BROWSE_COLUMNS))
    nos = list(frame_["contact_no"])
    key = f"ct.table.{page_no}.{query}.{ctype}"
    st.dataframe(
        frame_, hide_index=True, key=key, on_select=lambda: _pick_row(nos, key), selection_mode="single-row",
        height=table_height(len(frame_)), column_config=contact_columns(BROWSE_COLUMNS, fields=fields),
        placeholder=PLACEHOLDER,
    )
    with st.container(horizontal=True, vertical_alignment="center"):
        hint = "type more to narrow the search" if page.capped else "click a row to see the contact"
        st.caption(f"{shown_range(page.offset, len(page.rows), page.total, 'contact', capped=page.capped)} · {hint}")
        if page.pages > 1:
            st.pagination(page.pages, key="ct.page", default=min(page_no, page.pages))


def _shown(spec: FieldSpec, value: Any) -> str:
    if spec.name == "total_spent":
        return money(value)
    if isinstance(value, bool) or (spec.type == "boolean" and value in (0, 1)):
        return "yes" if value else "no"
    if hasattr(value, "isoformat"):
        return when(value)
    if spec.type == "number" and isinstance(value, int | float):
        return f"{value:,.0f}" if spec.integer or float(value).is_integer() else f"{value:,}"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def _fields_table(values: dict[str, Any], age: int | None, registry: FieldRegistry) -> pd.DataFrame:
    """The contact's fields with a value, built-in ones first, then its custom fields (label and value)."""
    rows = []
    for name, value in values.items():
        spec = registry.get(name)
        if spec is None or spec.custom or value in (None, ""):
            continue
        rows.append((spec.label, _shown(spec, value)))
        if name == "birth_date" and age is not None:
            rows.append(("Age", str(age)))
    # Custom values, when the core returns them with the contact's fields (under the field's name).
    for spec in sorted(registry.custom, key=lambda s: s.label.lower()):
        value = values.get(spec.name)
        if spec.type != "list" and value not in (None, ""):
            rows.append((spec.label, _shown(spec, value)))
    return pd.DataFrame(rows, columns=["Field", "Value"])


def _list_label(name: str, registry: FieldRegistry) -> str:
    """The label of a list field the core returns by its name."""
    spec = registry.get(name)
    return spec.label if spec is not None else name


def _detail(contact_no: str) -> None:
    with state.core_errors():
        d = contact_detail(db, contact_no)
        f = d.fields
        st.subheader(f"{f['name']} · {f['contact_no']}", anchor=False)
        kind = "Company" if f["type"] == "company" else (f"Person at {f['company_no']}" if f.get("company_no") else "Person")
        st.caption(" · ".join(x for x in (kind, f.get("email") or "", f.get("city") or "", f.get("country") or "") if x))
        left, right = st.columns([2, 3], gap="large")
        with left:
            table = _fields_table(f, d.age, fields)
            st.dataframe(table, hide_index=True, height=table_height(len(table), max_rows=30),
                         column_config={"Field": st.column_config.TextColumn(width=130),
                                        "Value": st.column_config.TextColumn(width="large")})
            for kind_name, codes in d.lists.items():
                if codes:
                    st.markdown(f"**{_list_label(kind_name, fields)}:** " + ", ".join(codes))
            if d.profile:
                st.markdown("**Profile:** " + ", ".join(f"{p['questionnaire']}={p['answer']}" for p in d.profile))
            if d.extra:
                st.markdown("**Other attributes:** " + ", ".join(f"{k}={v}" for k, v in d.extra.items()))
        with right:
            st.markdown(f"**Segments** ({n(len(d.memberships))})")
            if not d.memberships:
                st.caption("Not a member of any segment.")
            for m in d.memberships:
                with st.container(horizontal=True, vertical_alignment="center"):
                    st.page_link(state.PAGES["builder"], label=f"{m['segment_no']}", icon=":material/tune:",
                                 query_params={"segment": m["segment_no"]})
                    st.caption(f"{m['description'] or ''} · {m['status']} · came in with step {m['step']}"
                               + (f" ({m['step_description']})" if m.get("step_description") else ""))
            st.markdown(f"**Interactions** ({n(d.interactions_total)})")
            if not d.interactions:
                st.caption("No interactions logged.")
            else:
                inter = pd.DataFrame(d.interactions)
                inter["cancelled"] = inter["cancelled"].map({True: "cancelled", False: ""})
                inter.columns = [c.replace("_", " ").capitalize() for c in inter.columns]
                st.dataframe(inter, hide_index=True, height=table_height(len(inter), max_rows=10),
                             placeholder=PLACEHOLDER,
                             column_config={"Date": st.column_config.DateColumn(format="YYYY-MM-DD"),
                                            "Cost": st.column_config.NumberColumn(format="%,.2f"),
                                            "Campaign no": "Campaign", "Segment no": "Segment",
                                            "Duration min": st.column_config.NumberColumn("Minutes", format="%d"),
                                            "Cancelled": ""})
                if d.interactions_total > len(d.interactions):
                    st.caption(f"The latest {plural(len(d.interactions), 'interaction')} are shown.")


_browse()
st.divider()
# The picked contact lives under our own key too, so it is still shown after a visit to another page.
state.seed_widget("ct.lookup", st.session_state.get(K_PICK, ""))
lookup = st.text_input("Contact no.", key="ct.lookup", placeholder="Type a contact number, or click a row above")
chosen = (lookup or "").strip()
if chosen:
    st.session_state[K_PICK] = chosen
    _detail(chosen)
else:
    st.caption("Pick a contact to see its fields, segments and interactions.")
