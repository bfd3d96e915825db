"""Review: a manager's view of campaign targets: status and size, overlaps, composition, drift, decisions, logs.

Everything is computed in segcore (_lifecycle for the workflow, _review for overlap, composition and drift); this
page draws it and passes the version it showed with every decision, so a segment changed meanwhile is refused.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import streamlit as st

from segcore import (
    CAMPAIGN_STATUSES,
    CampaignInfo,
    Drift,
    SegcoreError,
    SegmentInfo,
    approve_segment,
    create_campaign,
    delete_campaign,
    dimension_of,
    drift,
    fields_of,
    is_small,
    list_campaigns,
    list_logged,
    list_segments,
    minimum_segment_size,
    overlap,
    reject_segment,
    segment_composition,
    update_campaign,
)
from ui import frame, state
from ui.charts import breakdown_picker
from ui.filter_builder import data_token
from ui.format import n, plural, when
from ui.lifecycle import history_table, log_form, logged_box
from ui.results import (
    TABLE_CONFIG,
    metric_controls,
    response_chart,
    results_csv,
    results_of,
    results_table,
    show_result,
)
from ui.review_charts import composition_figure, overlap_figure
from ui.tables import table_height

ALL, NONE = "__all__", "__none__"
K_PICK = "rv.pick"
K_TABLE = "rv.table"
K_DIMS = "sx.dims.review"
MAX_OVERLAP = 12

frame.page_guard()
db = state.get_db()
fields = fields_of(db)
frame.header("Review", "Campaign targets: check size, overlap and composition, then approve, reject or log; see what "
             "logged segments achieved against their control group.")


# ------------------------------------------------------------------------------------------------- decisions


SLOT_DECISION, SLOT_NEW_CAMPAIGN, SLOT_EDIT_CAMPAIGN = "rv.decision", "rv.cmp", "rv.cmpe"


def _decide(action: str, no: str, version: int) -> None:
    comment = (st.session_state.get("rv.comment") or "").strip()
    with state.core_errors(to_flash=True, slot=SLOT_DECISION):
        if action == "approve":
            approve_segment(db, no, comment=comment or None, expected_version=version, user=state.user())
            state.flash("success", f"Segment {no} approved. It can be logged now.")
        else:
            reject_segment(db, no, comment=comment, expected_version=version, user=state.user())
            state.flash("success", f"Segment {no} rejected; its owner sees your comment.")
        st.session_state.pop("rv.comment", None)


def _decision_box(info: SegmentInfo) -> None:
    if info.status == "submitted":
        st.markdown("**Decision**")
        st.text_input("Comment", key="rv.comment", max_chars=500,
                      placeholder="Required to reject; optional to approve")
        # Hidden from those who may not decide (a courtesy: segcore refuses them anyway).
        may_approve, may_reject = state.can("segment.approve"), state.can("segment.reject")
        if not (may_approve or may_reject):
            st.caption("Approving and rejecting need the manager role.")
            return
        with st.container(horizontal=True):
            if may_approve:
                st.button("Approve", type="primary", icon=":material/check_circle:", key="rv.approve",
                          on_click=_decide, args=("approve", info.no, info.version))
            if may_reject:
                st.button("Reject", icon=":material/block:", key="rv.reject",
                          on_click=_decide, args=("reject", info.no, info.version))
        # A refused decision (a reject without a comment, a four-eyes refusal) shows here, under its buttons.
        state.show_flashes(SLOT_DECISION)
    elif info.status == "approved":
        log_form(db, info)
    elif info.status == "logged":
        logged_box(db, info)
    elif info.status == "rejected":
        st.error(f"Rejected: {info.status_comment or 'no comment'}", icon=":material/block:")
    else:
        st.caption("A draft: its owner submits it when it is ready for review.")


# ------------------------------------------------------------------------------------------------- targets


def _targets_frame(targets: list[SegmentInfo], minimum: int) -> pd.DataFrame:
    return pd.DataFrame({
        "No.": [s.no for s in targets],
        "Description": [s.description for s in targets],
        "Campaign": [s.campaign_no or "" for s in targets],
        "Status": [s.status.capitalize() for s in targets],
        "Members": [s.size for s in targets],
        "Small": ["small" if is_small(s.size, minimum) else "" for s in targets],
        "Owner": [s.owner for s in targets],
        "Last change": [s.updated_at for s in targets],
        "Comment": [s.status_comment or "" for s in targets],
    })


def _picked_from_table(nos: list[str]) -> None:
    rows = st.session_state[K_TABLE].selection.rows
    if rows:
        st.session_state[K_PICK] = nos[rows[0]]


def _composition(info: SegmentInfo) -> None:
    st.markdown("**Composition against all contacts**")
    st.caption("Bars: share of the segment (colour) beside share of all contacts (grey). The number is the index: "
               "share in segment ÷ share in all × 100; above 100 the segment over-represents the bucket.")
    names = breakdown_picker("rv.dims", K_DIMS, fields)
    if not names:
        st.caption("Pick what the charts break down by above.")
        return
    try:
        comp = segment_composition(db, info.no, dimensions=tuple(names))
    except SegcoreError as e:
        st.error(str(e))
        return
    for i in range(0, len(names), 2):
        cols = st.columns(2)
        for col, name in zip(cols, names[i : i + 2], strict=False):
            dim = dimension_of(name, fields)
            col.plotly_chart(composition_figure(dim.title, comp[name], segment_name=info.no, dimension=dim),
                             config={"displayModeBar": False}, key=f"rv.comp.{name}")
    if is_small(info.size, minimum_segment_size(db)):
        st.caption("Small segment: buckets with fewer contacts than the minimum are hidden.")


@st.cache_data(show_spinner="Replaying the criteria on today's data…", max_entries=64, ttl=3600)
def _drift_of(url: str, no: str, version: int, data: str, segments: tuple[tuple[str, int], ...],
              today: dt.date) -> Drift:
    # The replay takes the database's write lock while it runs (then rolls back), so it runs once per version of
    # the segment, of the contacts and of the segments it may reuse, and day; not on every click on this page.
    del version, data, segments
    return drift(state._open(url), no, today=today)


CARD_DIGITS = 7  # "999,999": what a half-column card shows in full at 1440 px


def card_number(value: int) -> str:
    """A count as a narrow card shows it: exact up to 999,999, then compact (12.3M, 1.23M, 123.4k never cut)."""
    text = n(value)
    if len(text) <= CARD_DIGITS:
        return text
    return f"{value / 1_000_000:.3g}M" if abs(value) >= 1_000_000 else f"{value / 1_000:.4g}k"


def _card(where: Any, label: str, value: int, *, delta: int | None = None) -> None:
    shown = card_number(value)
    where.metric(label, shown, delta=f"{delta:+,}" if delta else None, border=True,
                 help=f"Exactly {n(value)}" if shown != n(value) else None)


def _drift(info: SegmentInfo) -> None:
    st.markdown("**Drift**" + (" since approval" if info.status in ("approved", "logged") else ""))
    if info.head_seq == 0:
        st.caption("No criteria to replay yet.")
        return
    try:
        d = _drift_of(state.db_url(), info.no, info.version, data_token(state.db_url()),
                      tuple((s.no, s.version) for s in everything), dt.date.today())
    except SegcoreError as e:
        st.error(str(e))
        return
    ref = "what was approved" if d.reference == "approval" else "its criteria"
    if d.unchanged:
        st.success(f"Replaying {ref} ({plural(d.steps_replayed, 'step')}) on today's data gives the same "
                   f"{plural(d.current_size, 'member')}.", icon=":material/verified:")
        return
    # Two cards a row: three in this narrow column cut "10,993" to "10,…" at 1440 px.
    top, bottom = st.columns(2, gap="small"), st.columns(2, gap="small")
    _card(top[0], "Members now", d.current_size)
    _card(top[1], "After replay", d.replay_size, delta=d.replay_size - d.current_size)
    _card(bottom[0], "Would join", d.joined)
    _card(bottom[1], "Would leave", d.left)
    st.caption(f"If {ref} ({plural(d.steps_replayed, 'step')}) were replayed on today's data, the segment would have "
               f"{plural(d.replay_size, 'member')}.")
    samples = {"Would join": d.joined_sample, "Would leave": d.left_sample}
    shown = {k: ", ".join(v) for k, v in samples.items() if v}
    if shown:
        st.dataframe(pd.DataFrame({"": list(shown), "Contacts (first 20)": list(shown.values())}), hide_index=True)


def _targets_tab(targets: list[SegmentInfo]) -> None:
    if not targets:
        st.info("No segment here yet. Marketers build segments on **Segments** and **Builder** and submit them for "
                "review.", icon=":material/info:")
        return
    minimum = minimum_segment_size(db)
    by_status = {s: sum(t.status == s for t in targets) for s in ("submitted", "approved", "logged")}
    cols = st.columns(4)
    cols[0].metric("Targets", n(len(targets)), border=True)
    cols[1].metric("Waiting for review", n(by_status["submitted"]), border=True)
    cols[2].metric("Approved", n(by_status["approved"]), border=True)
    cols[3].metric("Logged", n(by_status["logged"]), border=True)
    nos = [s.no for s in targets]
    st.dataframe(
        _targets_frame(targets, minimum), hide_index=True, key=K_TABLE, on_select=lambda: _picked_from_table(nos),
        selection_mode="single-row", height=table_height(len(targets), max_rows=8),
        column_config={
            "Members": st.column_config.NumberColumn(format="%,d"),
            "Small": st.column_config.TextColumn(help=f"Under the minimum of {minimum:,} members: cannot be "
                                                 "exported or logged"),
            "Last change": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm", help="UTC"),
            "Description": st.column_config.TextColumn(width="medium"),
        },
    )
    by_no = {s.no: s for s in targets}
    if st.session_state.get(K_PICK) not in by_no:
        waiting = [s.no for s in targets if s.status == "submitted"]
        st.session_state[K_PICK] = waiting[0] if waiting else nos[0]
    picked = st.selectbox("Segment under review", nos, key=K_PICK, width=420,
                          format_func=lambda no: f"{no} · {by_no[no].description}" if by_no[no].description else no)
    info = by_no[picked]
    with st.container(border=True):
        with st.container(horizontal=True, vertical_alignment="center"):
            st.subheader(info.no, anchor=False, width="content")
            frame.status_badge(info.status)
            if is_small(info.size, minimum):
                st.badge("Small", color="orange", icon=":material/visibility_off:")
        st.caption(" · ".join(x for x in (
            info.description or "No description", f"campaign {info.campaign_no}" if info.campaign_no else "",
            f"owner {info.owner}", plural(info.size, "member"), f"{plural(info.head_seq, 'step')}",
        ) if x))
        left, right = st.columns([5, 7], gap="large")
        with left:
            _decision_box(info)
            history_table(db, info)
            _drift(info)
            st.page_link(state.PAGES["builder"], label="Open in Builder", icon=":material/tune:",
                         query_params={"segment": info.no})
        with right:
            _composition(info)


# ------------------------------------------------------------------------------------------------- overlap


def _overlap_tab(targets: list[SegmentInfo], everything: list[SegmentInfo]) -> None:
    options = [s.no for s in everything]
    if len(options) < 2:
        st.info("Overlap needs at least two segments.", icon=":material/info:")
        return
    default = [s.no for s in targets][:6] if len(targets) >= 2 else options[:6]
    state.seed_widget("rv.ov.pick", default)
    picked = st.multiselect("Segments to compare", options, key="rv.ov.pick", max_selections=MAX_OVERLAP)
    state.seed_widget("rv.ov.mode", "count")
    mode = st.segmented_control("Show", ["count", "jaccard"], key="rv.ov.mode", required=True,
                                format_func={"count": "Members in both", "jaccard": "Jaccard"}.get) or "count"
    if len(picked) < 2:
        st.caption("Pick two segments or more.")
        return
    try:
        ov = overlap(db, picked)
    except SegcoreError as e:
        st.error(str(e))
        return
    matrix = ov.jaccard_matrix() if mode == "jaccard" else ov.counts
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.plotly_chart(overlap_figure(ov.nos, matrix, mode=mode), config={"displayModeBar": False}, key="rv.ov.fig")
    with right:
        rows = [
            {"Pair": f"{ov.nos[i]} & {ov.nos[j]}", "In both": ov.counts[i][j], "Jaccard": round(ov.jaccard(i, j), 3)}
            for i in range(len(ov.nos)) for j in range(i + 1, len(ov.nos))
        ]
        rows.sort(key=lambda r: -r["In both"])
        st.dataframe(pd.DataFrame(rows), hide_index=True, height=table_height(len(rows), max_rows=10),
                     column_config={"In both": st.column_config.NumberColumn(format="%,d")})
        st.caption("Jaccard = members in both ÷ members in either; 1 means the same contacts, 0 none in common.")


# ------------------------------------------------------------------------------------------------- logged


def _logged_tab(campaign: str) -> None:
    records = list_logged(db, campaign_no=None if campaign in (ALL, NONE) else campaign)
    if campaign == NONE:
        records = [r for r in records if r.campaign_no is None]
    if not records:
        st.info("No logged segment here yet. An approved segment is logged from this page or the Builder.",
                icon=":material/info:")
        return
    frame_ = pd.DataFrame({
        "Segment": [r.segment_no for r in records],
        "Description": [r.description for r in records],
        "Campaign": [r.campaign_no or "" for r in records],
        "Template": [r.template for r in records],
        "Date": [r.date for r in records],
        "Members": [r.member_count for r in records],
        "Interactions": [r.contacted_count for r in records],
        "Held out": [r.holdout_count for r in records],
        "Follow-up": [r.follow_up_segment_no or "" for r in records],
        "Logged by": [r.logged_by for r in records],
        "Logged at": [when(r.logged_at) for r in records],
        "Cancelled": [r.cancelled for r in records],
    })
    count = st.column_config.NumberColumn(format="%,d")
    st.dataframe(frame_, hide_index=True, height=table_height(len(records), max_rows=8), column_config={
        "Members": count, "Interactions": count, "Held out": count,
        "Date": st.column_config.DateColumn(format="YYYY-MM-DD"),
    })
    labels = {r.segment_no: f"{r.segment_no} · {r.template} {r.date:%Y-%m-%d}" for r in records}
    no = st.selectbox("Logged segment", list(labels), format_func=labels.get, key="rv.logged.pick", width=420)
    segments_by_no = {s.no: s for s in list_segments(db)}
    if no in segments_by_no:
        logged_box(db, segments_by_no[no])


# ------------------------------------------------------------------------------------------------- results


def _results_tab(campaign: str) -> None:
    """The campaign's logged segments side by side: treated against control for the chosen metric, exportable, and
    one segment's result in words with its cumulative chart."""
    records = list_logged(db, campaign_no=None if campaign in (ALL, NONE) else campaign)
    if campaign == NONE:
        records = [r for r in records if r.campaign_no is None]
    if not records:
        st.info("No logged segment here yet. Results compare a logged segment's contacted members with its control "
                "group (the holdout kept out when it was logged).", icon=":material/info:")
        return
    metric = metric_controls(db, "rv.res")
    with state.core_errors():
        if campaign in (ALL, NONE):
            results = results_of(db, nos=[r.segment_no for r in records], metric=metric)
        else:
            results = results_of(db, campaign=campaign, metric=metric)
        st.caption(f"A member responded with {metric.words()} (only days that have passed count). Treated = "
                   "contacted members, control = the holdout. Rates with their 95% Wilson interval, the lift with its "
                   "95% Newcombe interval; p-value from Fisher's exact test when a cell is under 10, else the "
                   "z-test.")
        st.dataframe(results_table(results), hide_index=True, height=table_height(len(results), max_rows=8),
                     column_config=TABLE_CONFIG, key="rv.res.table")
        name = "all" if campaign == ALL else "no-campaign" if campaign == NONE else campaign
        st.download_button("Download results (CSV)", results_csv(results), file_name=f"results-{name}.csv",
                           mime="text/csv", icon=":material/download:", key="rv.res.csv", on_click="ignore")
        by_no = {r.segment_no: r for r in results}
        if st.session_state.get("rv.res.pick") not in by_no:
            st.session_state["rv.res.pick"] = results[0].segment_no
        no = st.selectbox("Logged segment", list(by_no), key="rv.res.pick", width=420,
                          format_func=lambda v: f"{v} · logged {by_no[v].log_date:%Y-%m-%d}")
        r = by_no[no]
        left, right = st.columns([5, 7], gap="large")
        with left:
            show_result(r)
        with right:
            response_chart(db, r, metric, key="rv.res.chart")


# ------------------------------------------------------------------------------------------------- campaigns


def _save_campaign() -> None:
    ss = st.session_state
    with state.core_errors(to_flash=True, slot=SLOT_NEW_CAMPAIGN):
        c = create_campaign(db, (ss.get("rv.cmp.no") or "").strip(), description=ss.get("rv.cmp.desc") or "",
                            start_date=ss.get("rv.cmp.start"), end_date=ss.get("rv.cmp.end"),
                            status=ss.get("rv.cmp.status") or "planned", user=state.user())
        state.flash("success", f"Campaign {c.no} created.")
        for k in ("rv.cmp.no", "rv.cmp.desc"):
            ss.pop(k, None)


def _edit_campaign(no: str) -> None:
    ss = st.session_state
    with state.core_errors(to_flash=True, slot=SLOT_EDIT_CAMPAIGN):
        update_campaign(db, no, description=ss.get(f"rv.cmpe.desc.{no}"), start_date=ss.get(f"rv.cmpe.start.{no}") or "",
                        end_date=ss.get(f"rv.cmpe.end.{no}") or "", status=ss.get(f"rv.cmpe.status.{no}"), user=state.user())
        state.flash("success", f"Campaign {no} saved.")


def _delete_campaign(no: str) -> None:
    with state.core_errors(to_flash=True, slot=SLOT_EDIT_CAMPAIGN):
        delete_campaign(db, no, user=state.user())
        state.flash("success", f"Campaign {no} deleted.")


def _campaigns_tab(campaigns: list[CampaignInfo]) -> None:
    if campaigns:
        st.dataframe(pd.DataFrame({
            "No.": [c.no for c in campaigns], "Description": [c.description for c in campaigns],
            "Status": [c.status for c in campaigns], "Start": [c.start_date for c in campaigns],
            "End": [c.end_date for c in campaigns], "Segments": [c.segment_count for c in campaigns],
            "Logged": [c.logged_count for c in campaigns],
        }), hide_index=True, height=table_height(len(campaigns), max_rows=8), column_config={
            "Start": st.column_config.DateColumn(format="YYYY-MM-DD"),
            "End": st.column_config.DateColumn(format="YYYY-MM-DD"),
            "Description": st.column_config.TextColumn(width="large"),
        })
    if (refusal := state.refusal("campaign.edit")) is not None:
        st.caption(refusal)  # campaigns are a manager's: others read the table
        return
    c1, c2 = st.columns(2, gap="large")
    with c1, st.form("rv.cmp.form", border=True):
        st.markdown("**New campaign**")
        a, b = st.columns([2, 3])
        a.text_input("Number", key="rv.cmp.no", max_chars=30, placeholder="e.g. SPRING26")
        b.text_input("Description", key="rv.cmp.desc", max_chars=200, placeholder="e.g. Spring sale 2026")
        a, b, c = st.columns(3)
        a.date_input("Start", key="rv.cmp.start", value=None)
        b.date_input("End", key="rv.cmp.end", value=None)
        c.selectbox("Status", CAMPAIGN_STATUSES, key="rv.cmp.status")
        st.form_submit_button("Create campaign", type="primary", on_click=_save_campaign)
        state.show_flashes(SLOT_NEW_CAMPAIGN)
    if not campaigns:
        return
    with c2, st.container(border=True):
        st.markdown("**Edit a campaign**")
        by_no = {c.no: c for c in campaigns}
        no = st.selectbox("Campaign", list(by_no), key="rv.cmpe.pick",
                          format_func=lambda v: f"{v} · {by_no[v].description}" if by_no[v].description else v)
        cur = by_no[no]
        # Widgets are keyed per campaign, so switching campaigns shows that campaign's values.
        keys = {k: state.seed_widget(f"rv.cmpe.{k}.{no}", v) for k, v in (
            ("desc", cur.description), ("start", cur.start_date), ("end", cur.end_date), ("status", cur.status))}
        st.text_input("Description", key=keys["desc"], max_chars=200)
        a, b, c = st.columns(3)
        a.date_input("Start", key=keys["start"])
        b.date_input("End", key=keys["end"])
        c.selectbox("Status", CAMPAIGN_STATUSES, key=keys["status"])
        with st.container(horizontal=True):
            st.button("Save", key="rv.cmpe.save", on_click=_edit_campaign, args=(no,))
            st.button("Delete", key="rv.cmpe.delete", icon=":material/delete:", on_click=_delete_campaign, args=(no,),
                      disabled=cur.segment_count > 0 or cur.logged_count > 0,
                      help="A campaign with segments or logs is kept" if cur.segment_count or cur.logged_count else None)
        state.show_flashes(SLOT_EDIT_CAMPAIGN)


# ------------------------------------------------------------------------------------------------- page

campaigns = list_campaigns(db)
everything = list_segments(db)
choices = {ALL: "All campaigns", **{c.no: f"{c.no} · {c.description}" if c.description else c.no for c in campaigns},
           NONE: "No campaign"}
campaign = st.selectbox("Campaign", list(choices), format_func=choices.get, key="rv.campaign", width=420)
if campaign == ALL:
    targets = everything
elif campaign == NONE:
    targets = [s for s in everything if s.campaign_no is None]
else:
    targets = [s for s in everything if s.campaign_no == campaign]

TABS = ["Targets", "Overlap", "Logged", "Results", "Campaigns"]
tabs = st.tabs(TABS, key="rv.tab", on_change="rerun")
renderers = (lambda: _targets_tab(targets), lambda: _overlap_tab(targets, everything), lambda: _logged_tab(campaign),
             lambda: _results_tab(campaign), lambda: _campaigns_tab(campaigns))
for tab, render in zip(tabs, renderers, strict=True):
    if tab.open is not False:
        with tab:
            render()
# A message whose control is not on screen this run still shows, at the end.
state.show_leftover_flashes()
