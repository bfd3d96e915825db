"""The Builder's "Review & log" tab: submit or withdraw, the status history, Log segment with its options, the record.

Every rule (who may do what in which status, the holdout draw, the minimum size) lives in segcore._lifecycle; this
module only draws the controls and reports the core's answer. Writes pass the version of the segment the page showed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import streamlit as st

from segcore import (
    Database,
    LoggedInfo,
    SegcoreError,
    SegmentInfo,
    cancel_logged,
    get_logged,
    is_small,
    log_refusal,
    log_segment,
    logged_interactions,
    logged_members,
    minimum_segment_size,
    status_history,
    submit_segment,
    withdraw_segment,
)
from ui import frame, state
from ui.format import n, plural, when
from ui.results import logged_result, power_hint
from ui.tables import PLACEHOLDER, table_height

__all__ = ["TEMPLATES", "history_table", "log_form", "logged_box", "review_and_log_tab", "small_warning"]

TEMPLATES = ("EMAIL", "CALL", "MEETING", "LETTER")
K_LOG_DIALOG = "sx.log_dialog"  # the options of a Log segment waiting for confirmation
K_CANCEL_DIALOG = "sx.cancel_dialog"
PAGE_SIZE = 50
STATUS_TEXT = {
    "draft": "Draft: being built. Submit it when it is ready for a manager's review.",
    "submitted": "Submitted: waiting for a manager's decision on the Review page. Any change sends it back to draft.",
    "approved": "Approved: ready to log. Any change to its members sends it back to draft.",
    "rejected": "Rejected: change it and submit it again, or withdraw it to draft.",
    "logged": "Logged: its members and log are kept as a record and cannot change.",
}


def small_warning(db: Database, info: SegmentInfo) -> None:
    """Say when a segment is under the minimum size: it cannot be exported or logged, and small buckets are hidden."""
    minimum = minimum_segment_size(db)
    if 0 < info.size and is_small(info.size, minimum):
        st.warning(
            f"Small segment: {plural(info.size, 'member')}, under the minimum of {n(minimum)}. It cannot be exported "
            "or logged, and its charts hide buckets with fewer contacts than the minimum.",
            icon=":material/visibility_off:",
        )


# ------------------------------------------------------------------------------------------------- callbacks


SLOT_REVIEW = "bd.review"


def _transition(db: Database, action: str, no: str, version: int, comment_key: str) -> None:
    comment = st.session_state.get(comment_key) or None
    with state.core_errors(to_flash=True, slot=SLOT_REVIEW):
        if action == "submit":
            submit_segment(db, no, comment=comment, expected_version=version, user=state.user())
            state.flash("success", f"Segment {no} submitted for review.")
        else:
            withdraw_segment(db, no, comment=comment, expected_version=version, user=state.user())
            state.flash("success", f"Segment {no} is a draft again.")
        st.session_state.pop(comment_key, None)


def _ask_log(no: str, version: int) -> None:
    ss = st.session_state
    pct = float(ss.get("bd.log.holdout") or 0)
    seed_text = str(ss.get("bd.log.seed") or "").strip()
    ss[K_LOG_DIALOG] = {
        "no": no, "version": version, "template": str(ss.get("bd.log.template") or ""),
        "date": ss.get("bd.log.date") or dt.date.today(), "follow_up": bool(ss.get("bd.log.fu")),
        "follow_up_no": str(ss.get("bd.log.fu_no") or "").strip() or None,
        "holdout_pct": pct or None, "seed": seed_text or None,
    }


def _close(key: str) -> None:
    st.session_state.pop(key, None)


# ------------------------------------------------------------------------------------------------- dialogs


@st.dialog("Log segment?", on_dismiss=lambda: _close(K_LOG_DIALOG))
def _log_dialog(db: Database, info: SegmentInfo, opts: dict[str, Any]) -> None:
    held = f", keeping a seeded {opts['holdout_pct']:g} % of members out as the control group" if opts["holdout_pct"] else ""
    st.markdown(
        f"Write one **{opts['template'].upper()}** interaction dated **{opts['date']:%Y-%m-%d}** for each of the "
        f"{plural(info.size, 'member')} of **{info.no}**{held}. The segment then becomes read-only; its members are "
        "kept as the logged record."
    )
    if opts["follow_up"]:
        st.markdown(f"A follow-up draft segment **{opts['follow_up_no'] or info.no + '-FU'}** gets the same members.")
    if opts["holdout_pct"]:
        power_hint(db, info.no, info.version, info.size, opts["holdout_pct"])
    st.caption("A log cannot be undone; it can be cancelled, which marks its interactions cancelled.")
    c1, c2 = st.columns(2)
    if c1.button("Log segment", type="primary", width="stretch", key="bd.log.confirm"):
        seed: int | None = None
        ok = True
        if opts["seed"] is not None:
            try:
                seed = int(opts["seed"])
            except ValueError:
                st.error(f"the seed {opts['seed']!r} is not a whole number")
                ok = False
        if ok:
            with state.core_errors():
                rec = log_segment(
                    db, info.no, template=opts["template"], date=opts["date"], follow_up=opts["follow_up"],
                    follow_up_no=opts["follow_up_no"], holdout_pct=opts["holdout_pct"], seed=seed,
                    expected_version=info.version, user=state.user(),
                )
                state.flash("success", _logged_text(rec))
                _close(K_LOG_DIALOG)
                st.rerun()
    if c2.button("Cancel", width="stretch", key="bd.log.back"):
        _close(K_LOG_DIALOG)
        st.rerun()


@st.dialog("Cancel the log?", on_dismiss=lambda: _close(K_CANCEL_DIALOG))
def _cancel_dialog(db: Database, rec: LoggedInfo) -> None:
    st.markdown(
        f"Mark the {plural(rec.contacted_count, 'interaction')} written by the log of **{rec.segment_no}** as "
        "cancelled. Filters on interactions stop counting them; the logged record stays, marked cancelled."
    )
    c1, c2 = st.columns(2)
    if c1.button("Cancel the log", type="primary", width="stretch", key="bd.cancel.confirm"):
        with state.core_errors():
            cancel_logged(db, rec.segment_no, user=state.user())
            state.flash("success", f"The log of {rec.segment_no} is cancelled: its interactions are marked cancelled.")
            _close(K_CANCEL_DIALOG)
            st.rerun()
    if c2.button("Keep it", width="stretch", key="bd.cancel.back"):
        _close(K_CANCEL_DIALOG)
        st.rerun()


def _logged_text(rec: LoggedInfo) -> str:
    held = f", {n(rec.holdout_count)} held out (seed {rec.holdout_seed})" if rec.holdout_count else ""
    fu = f"; follow-up segment {rec.follow_up_segment_no}" if rec.follow_up_segment_no else ""
    word = "interaction" if rec.contacted_count == 1 else "interactions"
    return f"Logged {rec.segment_no}: {n(rec.contacted_count)} {rec.template} {word} written{held}{fu}."


# ------------------------------------------------------------------------------------------------- parts


def _review_box(db: Database, info: SegmentInfo) -> None:
    st.markdown("**Review**")
    with st.container(horizontal=True, vertical_alignment="center"):
        frame.status_badge(info.status)
        st.caption(STATUS_TEXT.get(info.status, ""))
    # A rejection's comment shows under the Builder's header (frame.rejection_note), above every tab.
    if info.status == "logged":
        return
    refusal = state.refusal("segment.submit", owner=info.owner)
    if refusal is not None:
        st.caption(refusal)
        return
    comment_key = "bd.review.comment"
    st.text_input("Comment (optional)", key=comment_key, max_chars=500,
                  placeholder="e.g. ready for the spring newsletter" if info.status == "draft" else "why")
    with st.container(horizontal=True):
        if info.status == "draft":
            missing = ("it needs a description (Segments page)" if not info.description.strip()
                       else "it has no members yet" if info.size == 0 else None)
            st.button("Submit for review", type="primary", icon=":material/send:", key="bd.review.submit",
                      disabled=missing is not None, help=f"Cannot submit: {missing}" if missing else None,
                      on_click=_transition, args=(db, "submit", info.no, info.version, comment_key))
        else:
            st.button("Back to draft", icon=":material/undo:", key="bd.review.withdraw",
                      on_click=_transition, args=(db, "withdraw", info.no, info.version, comment_key))
    state.show_flashes(SLOT_REVIEW)
    if info.status == "submitted":
        st.page_link("pages/review.py", label="Managers decide on the Review page", icon=":material/fact_check:")


def history_table(db: Database, info: SegmentInfo) -> None:
    events = status_history(db, info.no)
    st.markdown("**Status history**")
    if not events:
        st.caption("No status change yet.")
        return
    frame_ = pd.DataFrame({
        "Time (UTC)": [when(e.at) for e in events],
        "From": [e.from_status for e in events],
        "To": [e.to_status for e in events],
        "User": [e.user for e in events],
        "Comment": [e.comment or "" for e in events],
    })
    st.dataframe(frame_, hide_index=True, height=table_height(len(frame_), max_rows=8),
                 column_config={"Comment": st.column_config.TextColumn(width="large")})


def log_form(db: Database, info: SegmentInfo) -> None:
    st.markdown("**Log segment**")
    blocked = log_refusal(db, info.no)
    st.caption("Writes one interaction per member (template, date, campaign, segment number, user) and keeps the "
               "members as an immutable record; the segment becomes read-only.")
    c1, c2 = st.columns(2)
    state.seed_widget("bd.log.template", TEMPLATES[0])
    c1.selectbox("Template", TEMPLATES, key="bd.log.template", accept_new_options=True,
                 help="The interaction's template code; type another code if you need one")
    state.seed_widget("bd.log.date", dt.date.today())
    c2.date_input("Date", key="bd.log.date")
    c3, c4 = st.columns(2)
    state.seed_widget("bd.log.holdout", 0)
    c3.number_input("Holdout %", key="bd.log.holdout", min_value=0, max_value=90, step=5,
                    help="A random share of members kept out of the interactions and stored as the control group")
    c4.text_input("Seed", key="bd.log.seed", placeholder="drawn at random",
                  help="The same seed draws the same control group again", disabled=not st.session_state.get("bd.log.holdout"))
    # Right under the holdout: the smallest lift this split can detect (the base rate is cached; a change of the
    # share only reruns the power formula).
    if info.size > 0:
        power_hint(db, info.no, info.version, info.size, float(st.session_state.get("bd.log.holdout") or 0))
    fu = st.checkbox("Create a follow-up segment", key="bd.log.fu",
                     help="A new draft segment with the same members and campaign, for the next contact")
    if fu:
        st.text_input("Follow-up number", key="bd.log.fu_no", placeholder=f"{info.no}-FU", max_chars=30)
    st.button("Log segment…", type="primary", icon=":material/outgoing_mail:", key="bd.log.go",
              disabled=blocked is not None, help=f"Cannot log: {blocked}" if blocked else None,
              on_click=_ask_log, args=(info.no, info.version))
    if blocked:
        st.caption(f"Cannot log now: {blocked}.")
    opts = st.session_state.get(K_LOG_DIALOG)
    if opts and opts["no"] == info.no:
        _log_dialog(db, info, opts)


def logged_box(db: Database, info: SegmentInfo) -> None:
    try:
        rec = get_logged(db, info.no)
    except SegcoreError as e:
        st.error(str(e))
        return
    st.markdown("**Logged record**")
    # Sized to their content: three bordered metrics in a narrow column would cut "4,265" to "4,…".
    with st.container(horizontal=True):
        st.metric("Members", n(rec.member_count), border=True, width="content")
        st.metric("Interactions", n(rec.contacted_count), border=True, width="content")
        st.metric("Held out", n(rec.holdout_count), border=True, width="content",
                  help=f"{rec.holdout_pct:g} % with seed {rec.holdout_seed}" if rec.holdout_count else None)
    st.caption(" · ".join(x for x in (
        f"{rec.template} on {rec.date:%Y-%m-%d}", f"campaign {rec.campaign_no}" if rec.campaign_no else "",
        f"logged by {rec.logged_by} at {when(rec.logged_at)} UTC",
        f"holdout {rec.holdout_pct:g} %, seed {rec.holdout_seed}" if rec.holdout_count else "",
    ) if x))
    if rec.cancelled:
        st.warning(f"Cancelled at {when(rec.cancelled_at)} UTC: its interactions are marked cancelled.",
                   icon=":material/cancel:")
    logged_result(db, rec.segment_no)
    with st.container(horizontal=True, vertical_alignment="center"):
        if rec.follow_up_segment_no:
            st.page_link("pages/builder.py", label=f"Open follow-up {rec.follow_up_segment_no}",
                         icon=":material/redo:", query_params={"segment": rec.follow_up_segment_no})
        if state.can("segment.cancel_log", owner=info.owner):
            st.button("Cancel the log…", icon=":material/cancel:", key="bd.cancel.go", disabled=rec.cancelled,
                      on_click=lambda: st.session_state.__setitem__(K_CANCEL_DIALOG, rec.segment_no))
    if st.session_state.get(K_CANCEL_DIALOG) == rec.segment_no:
        _cancel_dialog(db, rec)
    _logged_tables(db, rec)


def _logged_tables(db: Database, rec: LoggedInfo) -> None:
    state.seed_widget("bd.logged.view", "interactions")
    view = st.segmented_control("Show", ["interactions", "members"], key="bd.logged.view", required=True,
                                format_func={"interactions": "Interactions written",
                                             "members": "Members and control group"}.get) or "interactions"
    page_key = f"bd.logged.page.{view}"
    page_no = int(st.session_state.get(page_key, 1))
    fetch = logged_interactions if view == "interactions" else logged_members
    rows, total = fetch(db, rec.segment_no, limit=PAGE_SIZE, offset=(page_no - 1) * PAGE_SIZE)
    if total == 0:
        st.caption("Nothing to show.")
        return
    frame_ = pd.DataFrame(rows)
    st.dataframe(frame_, hide_index=True, height=table_height(len(frame_), max_rows=10), placeholder=PLACEHOLDER,
                 column_config={"contact_no": "Contact", "name": "Name", "email": "E-mail", "date": "Date",
                                "template": "Template", "campaign_no": "Campaign", "segment_no": "Segment",
                                "created_by": "Logged by",
                                "cancelled": st.column_config.CheckboxColumn("Cancelled"),
                                "holdout": st.column_config.CheckboxColumn("Control group")})
    with st.container(horizontal=True, vertical_alignment="center"):
        first = (page_no - 1) * PAGE_SIZE + 1
        st.caption(f"{n(first)}–{n(first + len(rows) - 1)} of {n(total)}")
        pages = -(-total // PAGE_SIZE)
        if pages > 1:
            st.pagination(pages, key=page_key, default=min(page_no, pages))


# ------------------------------------------------------------------------------------------------- the tab


def review_and_log_tab(db: Database, info: SegmentInfo) -> None:
    """Status and review actions with their history on the left; Log segment or the logged record on the right."""
    left, right = st.columns([5, 7], gap="large")
    with left:
        _review_box(db, info)
        history_table(db, info)
    with right:
        if info.status == "logged":
            logged_box(db, info)
        elif (refusal := state.refusal("segment.log", owner=info.owner)) is not None:
            st.markdown("**Log segment**")
            st.caption(refusal)
        else:
            log_form(db, info)
