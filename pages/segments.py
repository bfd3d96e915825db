"""Segments: the list of static segments; create (over this database's contacts or a Spark source), open, edit, copy
and delete."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from segcore import (
    REVIEWED_STATUSES,
    CampaignInfo,
    SegmentInfo,
    contact_count,
    copy_segment,
    create_segment,
    delete_segment,
    is_small,
    list_campaigns,
    list_segments,
    minimum_segment_size,
    update_segment,
)
from ui import frame, state
from ui.format import n, plural
from ui.sources import THIS_DATABASE, segment_sources, source_names

K_PICK = "seg.pick"
K_TABLE = "seg.table"
# Which dialog is open, kept in session state: the dialog stays up across reruns until done, cancelled or dismissed.
K_DIALOG = "seg.dialog"
K_NEXT_PICK = "seg.next_pick"  # the picker's value for the next run (a drawn widget's key cannot be set)

frame.page_guard()
db = state.get_db()
frame.header("Segments", "Static segments, built step by step: add, refine, reduce, undo.")


def _frame(segments: list[SegmentInfo], minimum: int, sources: dict[str, str] | None) -> pd.DataFrame:
    """The list; with `sources` (segment number -> its Spark source), a "Contacts from" column (empty: this
    database)."""
    table = pd.DataFrame(
        {
            "No.": [s.no for s in segments],
            "Description": [s.description for s in segments],
            "Campaign": [s.campaign_no or "" for s in segments],
            "Owner": [s.owner for s in segments],
            "Status": [s.status.capitalize() for s in segments],
            "Members": [s.size for s in segments],
            "Small": ["small" if is_small(s.size, minimum) else "" for s in segments],
            "Steps": [s.head_seq for s in segments],
            "Last change": [s.updated_at for s in segments],
        }
    )
    if sources is not None:
        table.insert(4, "Contacts from", [sources.get(s.no, "") for s in segments])
    return table


def _picked_from_table(nos: list[str]) -> None:
    # A click on a row picks that segment for the buttons below.
    rows = st.session_state[K_TABLE].selection.rows
    if rows:
        st.session_state[K_PICK] = nos[rows[0]]


def _open_dialog(kind: str, no: str) -> None:
    st.session_state[K_DIALOG] = (kind, no)


def _close_dialog() -> None:
    st.session_state.pop(K_DIALOG, None)


@st.dialog("Copy segment", on_dismiss=_close_dialog)
def _copy_dialog(info: SegmentInfo, taken: set[str]) -> None:
    st.write(f"A new draft segment with the {plural(info.size, 'member')} of **{info.no}**.")
    suggestion = next(f"{info.no}-COPY{i or ''}" for i in range(100) if f"{info.no}-COPY{i or ''}" not in taken)
    state.seed_widget("seg.copy.no", suggestion[:30])
    new_no = st.text_input("New number", key="seg.copy.no", max_chars=30)
    description = st.text_input("Description", value=f"Copy of {info.description or info.no}"[:200], max_chars=200)
    if st.button("Copy segment", type="primary"):
        with state.core_errors():
            copy_segment(db, info.no, new_no.strip(), description=description, owner=state.user(), user=state.user())
            state.flash("success", f"Segment {new_no.strip()} created as a copy of {info.no}.")
            _close_dialog()
            st.session_state[K_NEXT_PICK] = new_no.strip()
            st.rerun()


@st.dialog("Edit segment", on_dismiss=_close_dialog)
def _edit_dialog(info: SegmentInfo, campaigns: list[CampaignInfo]) -> None:
    if info.status in REVIEWED_STATUSES:
        st.warning(f"{info.no} is {info.status}: a new description or campaign sends it back to draft for a new "
                   "review.", icon=":material/undo:")
    # Keys per segment version: reopened for another segment (or after a change), the fields start from its values.
    tag = f"{info.no}.{info.version}"
    description = st.text_input("Description", value=info.description, max_chars=200, key=f"seg.edit.desc.{tag}")
    options = [""] + [c.no for c in campaigns]
    labels = {c.no: f"{c.no} · {c.description}" for c in campaigns}
    campaign = st.selectbox("Campaign", options, index=options.index(info.campaign_no or "")
                            if (info.campaign_no or "") in options else 0,
                            format_func=lambda v: labels.get(v, "(none)"), key=f"seg.edit.campaign.{tag}")
    c1, c2 = st.columns(2)
    if c1.button("Save", type="primary", width="stretch"):
        with state.core_errors():
            after = update_segment(db, info.no, description=description, campaign_no=campaign,
                                   expected_version=info.version, user=state.user())
            changed = after.version != info.version
            state.flash("success" if changed else "info",
                        f"Segment {info.no} saved" + (f" ({after.status})." if changed else ": nothing changed."))
            _close_dialog()
            st.rerun()
    if c2.button("Cancel", width="stretch"):
        _close_dialog()
        st.rerun()


@st.dialog("Delete segment?", on_dismiss=_close_dialog)
def _delete_dialog(info: SegmentInfo) -> None:
    st.write(
        f"Delete **{info.no}** ({info.description or 'no description'}) with its "
        f"{plural(info.size, 'member')} and its criteria log? This cannot be undone."
    )
    c1, c2 = st.columns(2)
    if c1.button("Delete segment", type="primary", width="stretch"):
        with state.core_errors():
            delete_segment(db, info.no, expected_version=info.version, user=state.user())
            if state.current_segment_no() == info.no:
                state.remember_segment(None)
            state.flash("success", f"Segment {info.no} deleted.")
            _close_dialog()
            st.rerun()
    if c2.button("Cancel", width="stretch"):
        _close_dialog()
        st.rerun()


def _create_form(campaigns: list[CampaignInfo], sources: list[str], expanded: bool) -> None:
    with st.expander("New segment", expanded=expanded, icon=":material/add:"):
        with st.form("seg.create", clear_on_submit=False, border=False):
            # "Contacts from" only once there is a source to choose (Data page, Sources): else it has one answer.
            cols = st.columns([2, 4, 2, 2] if sources else [2, 4, 2])
            c1, c2, c3 = cols[:3]
            no = c1.text_input("Number", placeholder="e.g. SPRING-FR", max_chars=30, key="seg.new.no",
                               help="1 to 30 letters, digits, '-', '_' or '.'")
            description = c2.text_input("Description", placeholder="e.g. Spring newsletter, France", max_chars=200,
                                        key="seg.new.desc")
            options = [""] + [c.no for c in campaigns]
            labels = {c.no: f"{c.no} · {c.description}" for c in campaigns}
            campaign = c3.selectbox("Campaign", options, format_func=lambda v: labels.get(v, "(none)"),
                                    key="seg.new.campaign")
            source = ""
            if sources:
                source = cols[3].selectbox("Contacts from", ["", *sources], key="seg.new.source",
                                      format_func=lambda v: f"{v} (Spark)" if v else THIS_DATABASE,
                                      help="Where the segment's members come from: the contacts of this database, "
                                           "or a Spark source (Data page, Sources). Chosen once, when the segment "
                                           "is created.")
            if st.form_submit_button("Create and open", type="primary"):
                with state.core_errors():
                    info = create_segment(db, no, description=description, campaign_no=campaign or None,
                                          owner=state.user(), user=state.user(), source=source or None)
                    state.open_segment(info.no)


segments = list_segments(db)
campaigns = list_campaigns(db)
sources = source_names(db)
MAY_BUILD = state.can("segment.edit")
if MAY_BUILD:
    _create_form(campaigns, sources, expanded=not segments)

if not segments:
    st.info(
        f"No segments yet. Create your first one above (a number like `SPRING-FR` and a description); the Builder "
        f"then lets you add contacts out of the {n(contact_count(db))} in the database with filters and watch the "
        "counts and charts move."
        if MAY_BUILD
        else "No segments yet. Marketers create them; you will see them here.",
        icon=":material/lightbulb:",
    )
    st.stop()

st.caption(f"{plural(len(segments), 'segment')} · {plural(contact_count(db), 'contact')} in the database")
nos = [s.no for s in segments]
minimum = minimum_segment_size(db)
st.dataframe(
    _frame(segments, minimum, segment_sources(segments) if sources else None),
    hide_index=True,
    key=K_TABLE,
    on_select=lambda: _picked_from_table(nos),
    selection_mode="single-row",
    column_config={
        "Members": st.column_config.NumberColumn(format="%,d"),
        "Small": st.column_config.TextColumn(help=f"Under the minimum of {plural(minimum, 'member')}: cannot be exported or "
                                             "logged, and small chart buckets are hidden"),
        "Steps": st.column_config.NumberColumn(format="%d", help="Applied steps in the criteria log"),
        "Last change": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm", help="UTC"),
        "Description": st.column_config.TextColumn(width="large"),
        "Contacts from": st.column_config.TextColumn(help="The Spark source the segment is built over; empty: the "
                                                     "contacts of this database"),
    },
)

by_no = {s.no: s for s in segments}
if st.session_state.get(K_NEXT_PICK) in by_no:
    st.session_state[K_PICK] = st.session_state.pop(K_NEXT_PICK)
if st.session_state.get(K_PICK) not in by_no:
    st.session_state[K_PICK] = state.current_segment_no() if state.current_segment_no() in by_no else nos[0]
with st.container(horizontal=True, vertical_alignment="bottom"):
    picked = st.selectbox(
        "Segment", nos, key=K_PICK, width=360,
        format_func=lambda no: f"{no} · {by_no[no].description}" if by_no[no].description else no,
        help="Click a row in the table, or choose here",
    )
    info = by_no[picked]
    if st.button("Open in Builder", type="primary", icon=":material/tune:"):
        state.open_segment(info.no)
    # Edit and Delete are the owner's (or a manager's); Copy makes a new segment of one's own.
    may_change = state.can("segment.edit", owner=info.owner)
    if may_change:
        st.button("Edit", icon=":material/edit:", disabled=info.read_only, on_click=_open_dialog,
                  args=("edit", info.no), help="A logged segment is kept as a record" if info.read_only else
                  "Description and campaign")
    if MAY_BUILD:
        st.button("Copy", icon=":material/content_copy:", on_click=_open_dialog, args=("copy", info.no))
    if may_change:
        st.button("Delete", icon=":material/delete:", disabled=info.read_only, on_click=_open_dialog,
                  args=("delete", info.no), help="A logged segment is kept as a record" if info.read_only else None)

dialog = st.session_state.get(K_DIALOG)
if dialog and dialog[1] in by_no:
    if dialog[0] == "copy":
        _copy_dialog(by_no[dialog[1]], set(nos))
    elif dialog[0] == "edit":
        _edit_dialog(by_no[dialog[1]], campaigns)
    else:
        _delete_dialog(by_no[dialog[1]])
