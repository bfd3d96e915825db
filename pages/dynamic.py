"""Dynamic segments: saved filters evaluated against today's data, their count over time, freeze into a static one.

The filter is built with the same builder as the Builder page (the filter being built is shared between the two),
and its count is shown live before anything is saved.
"""

from __future__ import annotations

import datetime as dt
import time

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from segcore import (
    DynamicInfo,
    Node,
    SegcoreError,
    count_filter,
    count_history,
    create_dynamic,
    delete_dynamic,
    fields_for,
    freeze_dynamic,
    from_json,
    get_dynamic,
    list_campaigns,
    list_dynamic,
    refresh_dynamic,
    to_json,
    to_text,
    update_dynamic,
)
from ui import filter_builder as fb
from ui import frame, state
from ui.charts import ACCENT
from ui.format import n, pct, plural, when
from ui.sources import source_label, source_names
from ui.tables import table_height

K_PICK = "dy.pick"

frame.page_guard()
db = state.get_db()
frame.header("Dynamic segments", "Saved filters evaluated against today's data: always current, nothing to "
             "rebuild. Refresh records the count over time; freeze copies today's members into a static segment.")


# ------------------------------------------------------------------------------------------------- callbacks


def _create(filter_json: dict) -> None:
    ss = st.session_state
    with state.core_errors(to_flash=True):
        source = ss.get("dy.new.source") or None
        info = create_dynamic(db, (ss.get("dy.new.no") or "").strip(), from_json(filter_json, fields_for(db, source)),
                              description=ss.get("dy.new.desc") or "", owner=state.user(), user=state.user(),
                              source=source)
        refresh_dynamic(db, info.no, user=state.user())
        state.flash("success", f"Dynamic segment {info.no} saved.")
        ss[K_PICK] = info.no
        for k in ("dy.new.no", "dy.new.desc"):
            ss.pop(k, None)


def _replace_filter(no: str, filter_json: dict) -> None:
    with state.core_errors(to_flash=True):
        # Read with the fields of the contacts that dynamic segment counts (a source's custom fields are its own).
        fields = fields_for(db, get_dynamic(db, no).source)
        update_dynamic(db, no, filter=from_json(filter_json, fields), user=state.user())
        refresh_dynamic(db, no, user=state.user())
        state.flash("success", f"The filter of {no} is replaced; its count history goes on.")


def _refresh(no: str) -> None:
    with state.core_errors(to_flash=True):
        p = refresh_dynamic(db, no, user=state.user())
        state.flash("success", f"{no}: {plural(p.count, 'contact')} of {n(p.total)} recorded.")


def _freeze(no: str) -> None:
    ss = st.session_state
    with state.core_errors(to_flash=True):
        info = freeze_dynamic(db, no, (ss.get(f"dy.fz.no.{no}") or "").strip(), user=state.user(),
                              description=ss.get(f"dy.fz.desc.{no}") or None,
                              campaign_no=ss.get(f"dy.fz.campaign.{no}") or None)
        state.flash("success", f"Static segment {info.no} created with {plural(info.size, 'member')} (one Add step, "
                               "undoable). Open it in the Builder to refine it.")
        ss["dy.frozen"] = info.no


def _load(info: DynamicInfo) -> None:
    fb.set_text(info.expression)


def _delete(no: str) -> None:
    with state.core_errors(to_flash=True):
        delete_dynamic(db, no, user=state.user())
        state.flash("success", f"Dynamic segment {no} deleted; segments frozen from it stay.")
        st.session_state.pop(K_PICK, None)


# ------------------------------------------------------------------------------------------------- parts


def _history_figure(points: list) -> go.Figure:
    fig = go.Figure(go.Scatter(
        x=[p.at for p in points], y=[p.count for p in points], mode="lines+markers", line={"color": ACCENT},
        customdata=[plural(p.count, "contact") for p in points],
        hovertemplate="%{x|%Y-%m-%d %H:%M}: %{customdata}<extra></extra>",
    ))
    fig.update_layout(height=220, margin={"l": 10, "r": 10, "t": 10, "b": 10}, plot_bgcolor="white",
                      yaxis={"rangemode": "tozero", "gridcolor": "#EEF1F4", "tickformat": ",d"})
    return fig


def _detail(info: DynamicInfo) -> None:
    with st.container(border=True):
        st.subheader(info.no, anchor=False)
        st.caption(" · ".join(x for x in (info.description or "No description", f"owner {info.owner}",
                                          f"contacts from {source_label(info.source)}" if info.source else "",
                                          f"changed {when(info.updated_at)} UTC") if x))
        st.code(info.expression, language=None)
        try:
            start = time.perf_counter()
            count, total = count_filter(db, info.filter, source=info.source)
            ms = (time.perf_counter() - start) * 1000
        except SegcoreError as e:
            st.error(str(e))
            return
        # Cards as wide as their numbers, in a row that wraps: equal columns cut "+4,123 since…" and "10,…".
        with st.container(horizontal=True, gap="small"):
            last = info.last_count
            changed = last is not None and count != last
            st.metric("Contacts in segment", n(count), border=True, width="content",
                      delta=f"{count - last:+,} since last refresh" if last is not None and changed else None,
                      help=f"{plural(last, 'contact')} at the last refresh, {when(info.last_refreshed_at)} UTC"
                      if last is not None and changed else None)
            st.metric("All contacts", n(total), border=True, width="content")
            st.metric("Share", pct(count / total if total else None), border=True, width="content")
        st.caption(f"Counted now in {ms:,.0f} ms. Contacts flagged “exclude from segments” are left out, as a "
                   "static segment's Add leaves them out.")
        with st.container(horizontal=True):
            if MAY_EDIT:
                st.button("Refresh and record", icon=":material/refresh:", key="dy.refresh", on_click=_refresh,
                          args=(info.no,))
            st.button("Edit in the filter builder", icon=":material/edit:", key="dy.load", on_click=_load,
                      args=(info,), disabled=to_text(info.filter, fields_for(db, info.source)) is None,
                      help="Load this filter into the builder below, change it, then replace it")
            if MAY_EDIT:
                with st.popover("Delete", icon=":material/delete:"):
                    st.write(f"Delete **{info.no}** and its count history?")
                    st.button("Delete dynamic segment", type="primary", key="dy.delete", on_click=_delete,
                              args=(info.no,))
        points = count_history(db, info.no)
        left, right = st.columns([3, 2], gap="large")
        with left:
            st.markdown("**Count over time**")
            if len(points) >= 2:
                st.plotly_chart(_history_figure(points), config={"displayModeBar": False}, key="dy.hist")
            elif points:
                st.caption(f"One count so far: {n(points[0].count)} on {when(points[0].at)} UTC. Refresh later "
                           "(or run `python -m segcore dynamic refresh --all` on a schedule) to see it move.")
            else:
                st.caption("Not refreshed yet.")
        with right:
            st.markdown("**Freeze into a static segment**")
            if (refusal := state.refusal("segment.edit")) is not None:
                st.caption(refusal)
                return
            default_no = f"{info.no}-{dt.date.today():%Y%m%d}"[:30]
            state.seed_widget(f"dy.fz.no.{info.no}", default_no)
            st.text_input("New segment number", key=f"dy.fz.no.{info.no}", max_chars=30)
            st.text_input("Description", key=f"dy.fz.desc.{info.no}", max_chars=200,
                          placeholder=info.description or f"Frozen from dynamic segment {info.no}")
            campaigns = [c.no for c in list_campaigns(db)]
            st.selectbox("Campaign", ["", *campaigns], key=f"dy.fz.campaign.{info.no}",
                         format_func=lambda v: v or "(none)")
            st.button(f"Freeze {plural(count, 'contact')}", type="primary", icon=":material/ac_unit:", key="dy.freeze",
                      on_click=_freeze, args=(info.no,), disabled=count == 0)
            frozen = st.session_state.get("dy.frozen")
            if frozen:
                st.page_link(state.PAGES["builder"], label=f"Open {frozen} in Builder", icon=":material/tune:",
                             query_params={"segment": frozen})


def _new(dyns: list[DynamicInfo], expanded: bool) -> None:
    with st.expander("New dynamic segment, or change a filter", expanded=expanded, icon=":material/add:"):
        source = None
        if SOURCES:
            source = st.selectbox("Contacts from", [None, *SOURCES], key="dy.new.source", width=420,
                                  format_func=source_label,
                                  help="The contacts it counts: this database's, or a Spark source's (Data page, "
                                       "Sources). Chosen when it is saved.") or None
        fb.use_values_of(source)  # the widgets' value lists count the contacts the filter will run on
        built = fb.filter_builder()
        node: Node | None = built.node
        if built.error:
            st.error(built.error)
        elif node is not None:
            st.info(f"**Filter:** {built.description}", icon=":material/filter_alt:")
            try:
                count, total = count_filter(db, node, source=source)
                st.caption(f"**{n(count)}** of {plural(total, 'contact')} {'matches' if count == 1 else 'match'} "
                           "today.")
            except SegcoreError as e:
                st.error(str(e))
                node = None
        if not MAY_EDIT:
            st.caption(state.refusal("dynamic.edit") or "")
            return
        c1, c2 = st.columns([1, 2])
        c1.text_input("Number", key="dy.new.no", max_chars=30, placeholder="e.g. FR-BIG-SPENDERS")
        c2.text_input("Description", key="dy.new.desc", max_chars=200, placeholder="e.g. French customers, 1,000+")
        with st.container(horizontal=True):
            payload = to_json(node) if node is not None else None
            st.button("Save dynamic segment", type="primary", key="dy.create", disabled=payload is None,
                      on_click=_create, args=(payload,), help=None if payload else "Build a filter first")
            picked = st.session_state.get(K_PICK)
            if picked and any(d.no == picked for d in dyns):
                st.button(f"Replace the filter of {picked}", key="dy.replace", disabled=payload is None,
                          on_click=_replace_filter, args=(picked, payload))


# ------------------------------------------------------------------------------------------------- page

MAY_EDIT = state.can("dynamic.edit")  # hiding is a courtesy: the core refuses anyway
SOURCES = source_names(db)
dyns = list_dynamic(db)
if dyns:
    frame_ = pd.DataFrame({
        "No.": [d.no for d in dyns],
        "Description": [d.description for d in dyns],
        **({"Contacts from": [source_label(d.source) for d in dyns]} if SOURCES else {}),
        "Expression": [d.expression.replace("\n", " · ") for d in dyns],
        "Last count": [d.last_count for d in dyns],
        "All contacts": [d.last_total for d in dyns],
        "Last refresh": [d.last_refreshed_at for d in dyns],
    })
    st.dataframe(frame_, hide_index=True, height=table_height(len(dyns), max_rows=6), column_config={
        "Last count": st.column_config.NumberColumn(format="%,d"),
        "All contacts": st.column_config.NumberColumn(format="%,d"),
        "Last refresh": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm", help="UTC"),
        "Expression": st.column_config.TextColumn(width="large"),
    })
    by_no = {d.no: d for d in dyns}
    if st.session_state.get(K_PICK) not in by_no:
        st.session_state[K_PICK] = dyns[0].no
    picked = st.selectbox("Dynamic segment", list(by_no), key=K_PICK, width=420,
                          format_func=lambda v: f"{v} · {by_no[v].description}" if by_no[v].description else v)
    with state.core_errors():  # deleted in another tab meanwhile: one line, not a traceback
        _detail(by_no[picked])
else:
    st.info("No dynamic segment yet. Build a filter below and save it: its count is always today's.",
            icon=":material/lightbulb:")
_new(dyns, expanded=not dyns)
