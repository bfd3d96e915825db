"""Builder: the open segment's pending step (filter, options, live preview), commit, undo/redo, log and members.

The segment comes from the URL (`?segment=NO`), so a link can be shared. Every write passes the version of the
segment this page showed (bound into the button's callback when it was drawn), so a change made by someone else in
between is refused with "segment changed, review and retry" instead of being overwritten.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pandas as pd
import streamlit as st

from segcore import (
    ActionOptions,
    ActionRequest,
    FieldRegistry,
    SegcoreError,
    SegmentInfo,
    apply_action,
    criteria_log,
    export_members,
    fields_for,
    fields_of,
    find_contacts,
    from_json,
    list_criteria,
    list_segments,
    preview_samples,
    provenance,
    redo,
    reuse_criteria,
    save_criteria,
    segment_members_page,
    split_emails,
    split_values,
    to_text,
    undo,
)
from ui import filter_builder as fb
from ui import frame, state
from ui.charts import (
    AFTER_NAME,
    BEFORE_NAME,
    breakdown_picker,
    current_distributions,
    distribution_figure,
    legend_html,
    preview_with_figures,
)
from ui.export import choose_scope
from ui.format import n, plural, signed, when
from ui.lifecycle import review_and_log_tab, small_warning
from ui.tables import PLACEHOLDER, contact_columns, table_height

K_KIND = "sx.kind"
K_OPTS = "sx.options"
K_UNMATCHED = "sx.unmatched"
K_PENDING_FOR = "sx.pending_for"  # the segment the pending step (kind, options, filter) belongs to
K_EXPORTS = "sx.builder.exports"  # export files made for (segment, version, format)
W_CTYPE = "bd.ctype"
CONTACT_TYPE_LABELS = {"both": "Both", "person": "Persons only", "company": "Companies only"}
CONTACT_TYPE_HELP = ("Which contacts the filter takes, before the company options below apply: both persons and "
                     "companies (Business Central's Add), persons only or companies only. Your choice is remembered "
                     "as your default.")
# The Builder's inputs that belong to one segment: a new segment starts without them.
SEGMENT_INPUTS = ("bd.prov", "bd.mem.q", "bd.mem.page", "bd.hand.nos", "bd.hand.emails", "bd.review.comment",
                  "bd.loadstep", "bd.crit.code", "bd.crit.desc", K_UNMATCHED)
# Where each control's errors show (state.show_flashes(slot) right by it).
SLOT_ACTION, SLOT_LOG, SLOT_HAND, SLOT_REUSE, SLOT_MEMBERS, SLOT_EXPORT = (
    "bd.action", "bd.log", "bd.hand", "bd.reuse", "bd.members", "bd.export")
FILE_FORMATS = (("csv", "CSV", "text/csv"),
                ("xlsx", "Excel", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))
KINDS = {"add": "Add", "refine": "Refine", "reduce": "Reduce"}
KIND_HELP = {
    "add": "Put the contacts the filter matches into the segment.",
    "refine": "Keep only the members the filter matches.",
    "reduce": "Take the members the filter matches out.",
}
APPLY_LABEL = {"add": "Add to segment", "refine": "Refine segment", "reduce": "Reduce segment"}
OPTIONS = {
    "add": (
        ("expand_companies", "Expand companies", "Also every contact of a matched contact's company"),
        ("related_companies", "Related companies", "Also the company of each matched person"),
        ("ignore_exclusion", "Ignore exclusion", "Also contacts flagged 'exclude from segments'"),
    ),
    "refine": (("entire_companies", "Entire companies", "Keep a whole company when any of its contacts matches"),),
    "reduce": (("entire_companies", "Entire companies", "Remove a whole company when any of its contacts matches"),),
}
SAMPLE_COLUMNS = ("contact_no", "name", "type", "country", "city", "gender", "churn_risk", "total_spent")
MEMBER_COLUMNS = ("contact_no", "name", "type", "company_no", "email", "city", "country", "gender", "churn_risk",
                  "total_spent")  # fmt: skip
PAGE_SIZE = 50

K_DIMS = "sx.dims.builder"

frame.page_guard()
db = state.get_db()
# The fields a filter may name, read once per run and handed to everything that reads a filter: this database's
# (custom ones included) until the open segment is known, then those of the contacts it is built from.
fields = fields_of(db)


# ------------------------------------------------------------------------------------------------- actions


def _done(verb: str, r: Any) -> None:
    state.flash(
        "success",
        f"{verb} step {r.seq}: {n(r.matched)} matched, {signed(r.added)} added, "
        f"{signed(-r.removed) if r.removed else '0'} removed → {plural(r.size_after, 'member')}.",
    )


def _apply(no: str, version: int, step: dict[str, Any], slot: str = SLOT_ACTION) -> None:
    with state.core_errors(to_flash=True, slot=slot):
        result = apply_action(db, no, ActionRequest.from_step(step, fields), expected_version=version,
                              user=state.user())
        _done("Applied", result)
        if result.unmatched:
            st.session_state[K_UNMATCHED] = list(result.unmatched)


def _undo(no: str, version: int) -> None:
    with state.core_errors(to_flash=True, slot=SLOT_ACTION):
        r = undo(db, no, expected_version=version, user=state.user())
        # Undo reports what the step had done: its additions leave again, its removals come back.
        state.flash("success", f"Undid step {r.seq}: {n(r.added)} taken out, {n(r.removed)} put back → "
                               f"{plural(r.size_after, 'member')}. Redo brings the step back.")


def _redo(no: str, version: int) -> None:
    with state.core_errors(to_flash=True, slot=SLOT_ACTION):
        _done("Redid", redo(db, no, expected_version=version, user=state.user()))


def _save_criteria(no: str) -> None:
    code = st.session_state.get("bd.crit.code", "")
    with state.core_errors(to_flash=True, slot=SLOT_REUSE + ".save"):
        count = save_criteria(db, no, code, description=st.session_state.get("bd.crit.desc", ""),
                              replace_existing=bool(st.session_state.get("bd.crit.replace")), user=state.user())
        state.flash("success", f"Saved {plural(count, 'step')} as criteria {code.strip().upper()}.")


def _reuse_criteria(no: str, version: int, code: str) -> None:
    with state.core_errors(to_flash=True, slot=SLOT_REUSE):
        results = reuse_criteria(db, code, no, expected_version=version, user=state.user())
        last = results[-1] if results else None
        size = f" → {plural(last.size_after, 'member')}" if last else ""
        state.flash("success", f"Replayed criteria {code}: {plural(len(results), 'step')}{size}.")


def _load_step(filter_json: dict[str, Any], kind: str) -> None:
    """Put a logged step's filter back into the builder as text, to adjust it and apply again."""

    try:
        lines = to_text(from_json(filter_json, fields), fields)
    except SegcoreError as e:
        state.flash("warning", f"This step's filter no longer fits the fields: {e}", SLOT_LOG)
        return
    if lines is None:
        state.flash("warning", "This filter has no text form; rebuild it with the widgets.", SLOT_LOG)
        return
    fb.set_text("\n".join(lines))
    if kind in KINDS:
        st.session_state[K_KIND] = kind
        st.session_state["bd.kind"] = kind


# ------------------------------------------------------------------------------------------------- pending step


def _clear_pending() -> None:
    """A clean pending step: Add, no option, the user's default contact type, an empty filter, no input or message
    left from another segment. The way of building (widgets or text) and the date order are the user's, and stay."""
    ss = st.session_state
    ss[K_KIND] = ss["bd.kind"] = "add"
    ss[K_OPTS] = {}
    fb.clear()
    keep = {"fb.mode", fb.W_DATE_ORDER, f"{fb.W_DATE_ORDER}.user"}
    for key in list(ss.keys()):
        if str(key).startswith(("bd.opt.", "fb.")) and key not in keep:
            del ss[key]
    for key in (W_CTYPE, *SEGMENT_INPUTS):
        ss.pop(key, None)


def own_pending_step(no: str) -> None:
    """The pending step belongs to one segment: opening another starts clean, unless the user carried the step
    over with "Use this filter on…" (which hands it to the target before the page runs again)."""
    if st.session_state.get(K_PENDING_FOR) != no:
        _clear_pending()
        st.session_state[K_PENDING_FOR] = no


def _carry_to(source: str) -> None:
    target = st.session_state.get("bd.carry.to")
    if not target or target == source:
        return
    st.session_state[K_PENDING_FOR] = target  # the pending step goes along: no clean start for this opening
    for key in SEGMENT_INPUTS:
        st.session_state.pop(key, None)
    state.remember_segment(target)
    st.query_params["segment"] = target
    kind = KINDS.get(st.session_state.get(K_KIND, "add"), "Add")
    state.flash("info", f"Opened {target} with the pending {kind} step from {source}. Nothing changes until you "
                        f"press **{APPLY_LABEL.get(st.session_state.get(K_KIND, 'add'), 'Apply')}**.")


def _step_controls(info: SegmentInfo) -> tuple[str, ActionOptions]:
    state.seed_widget("bd.kind", state.session(K_KIND, "add"))
    kind = st.segmented_control("Action", list(KINDS), key="bd.kind", format_func=KINDS.get, required=True,
                                width="stretch", label_visibility="collapsed") or "add"
    st.session_state[K_KIND] = kind
    contact_type: str | None = None
    if kind == "add":
        # The first choice of an Add: which contacts the filter takes (BC's Add takes both).
        state.seed_preference_widget(W_CTYPE, "add_contact_type")
        chosen_type = st.segmented_control(
            "Contacts", list(CONTACT_TYPE_LABELS), key=W_CTYPE, format_func=CONTACT_TYPE_LABELS.get, required=True,
            help=CONTACT_TYPE_HELP, on_change=state.save_preference,
            args=("add_contact_type", W_CTYPE),
        ) or "both"
        state.show_flashes(W_CTYPE)
        contact_type = None if chosen_type == "both" else chosen_type
    st.caption(KIND_HELP[kind])
    saved: dict[str, bool] = state.session(K_OPTS, {})
    chosen: dict[str, bool] = {}
    with st.container(horizontal=True, gap="medium"):
        for name, label, help_text in OPTIONS[kind]:
            key = f"bd.opt.{kind}.{name}"
            state.seed_widget(key, bool(saved.get(f"{kind}.{name}")))
            chosen[name] = st.checkbox(label, key=key, help=help_text)
            saved[f"{kind}.{name}"] = chosen[name]
    return kind, ActionOptions(**chosen, contact_type=contact_type)


def _pending_request(kind: str, options: ActionOptions, built: fb.BuiltFilter) -> dict[str, Any] | None:
    if built.node is None:
        return None
    try:
        return ActionRequest(kind, filter=built.node, options=options).to_step()
    except SegcoreError as e:
        st.error(str(e))
        return None


def _action_bar(info: SegmentInfo, kind: str, step: dict[str, Any] | None) -> None:
    if EDIT_REFUSAL is not None:
        # Previewing is reading: anyone may try a filter and see the counts; only the step itself is refused.
        st.caption(f"You can try filters and see their effect here, but not apply them. {EDIT_REFUSAL}")
        return
    with st.container(horizontal=True):
        st.button(
            APPLY_LABEL[kind], type="primary", icon=":material/check:", disabled=step is None or info.read_only,
            on_click=_apply, args=(info.no, info.version, step), key="bd.apply",
            help=None if step else "Build a filter first",
        )
        st.button("Undo", icon=":material/undo:", disabled=not info.can_undo, on_click=_undo,
                  args=(info.no, info.version), key="bd.undo")
        st.button("Redo", icon=":material/redo:", disabled=not info.can_redo, on_click=_redo,
                  args=(info.no, info.version), key="bd.redo")
        others = [s for s in list_segments(db) if s.no != info.no and not s.read_only]
        with st.popover("Use this filter on…", icon=":material/content_copy:", disabled=step is None or not others,
                        help="Open another segment with this pending step, to apply it there"
                        if others else "No other segment to use it on"):
            if others:
                labels = {s.no: f"{s.no} · {s.description}" if s.description else s.no for s in others}
                st.selectbox("Segment", list(labels), format_func=labels.get, key="bd.carry.to")
                st.button("Open it with this filter", key="bd.carry.go", type="primary", on_click=_carry_to,
                          args=(info.no,), icon=":material/arrow_forward:")
    # An apply, undo or redo that failed says so here, by its buttons.
    state.show_flashes(SLOT_ACTION)


# ------------------------------------------------------------------------------------------------- preview


def _metrics(before: int, after: int, added: int, removed: int, matched: int | None) -> None:
    # Four cards in two rows of two: each card gets half of the preview column, room for "10,000,000" and its
    # delta at 1440 px (four in a row, or cards as wide as their content, cut "Added +4,…" to an ellipsis).
    top = st.columns(2, gap="small")
    top[0].metric("Members now", n(before), border=True)
    # The delta needs an ASCII "-" for Streamlit to draw a falling arrow; the values use a typographic minus.
    top[1].metric("After this step", n(after), delta=f"{after - before:+,}" if after != before else None,
                  border=True)
    bottom = st.columns(2, gap="small")
    bottom[0].metric("Added", signed(added) if added else "0", border=True,
                     help=f"{plural(matched, 'contact')} match the filter" if matched is not None else None)
    bottom[1].metric("Removed", signed(-removed) if removed else "0", border=True)


def match_caption(matched: int, left_out: int) -> str:
    """"4,265 contacts match the filter · 74 excluded from segments are left out": the second part explains the gap
    with a value's count in the widgets (FR (4,339)), which counts every contact."""
    text = f"{plural(matched, 'contact')} {'matches' if matched == 1 else 'match'} the filter"
    if left_out:
        text += (f" · {n(left_out)} excluded from segments {'is' if left_out == 1 else 'are'} left out "
                 "(tick *Ignore exclusion* to take them)")
    return text


def _charts(figures: dict[str, Any], legend: tuple[str, ...]) -> None:
    if not figures:
        st.caption("Pick what the charts break down by above.")
        return
    st.markdown(legend_html(legend), unsafe_allow_html=True)
    names = list(figures)
    for i in range(0, len(names), 2):
        cols = st.columns(2)
        for col, name in zip(cols, names[i : i + 2], strict=False):
            col.plotly_chart(figures[name], config={"displayModeBar": False}, key=f"pv.chart.{name}")


def _samples(title: str, rows: list[dict[str, Any]], total: int) -> None:
    if not rows:
        return
    st.markdown(f"**{title}** · first {n(len(rows))} of {n(total)}")
    st.dataframe(pd.DataFrame(rows, columns=list(SAMPLE_COLUMNS)), hide_index=True, height=table_height(len(rows), max_rows=6),
                 column_config=contact_columns(SAMPLE_COLUMNS), placeholder=PLACEHOLDER)


def _spark_wait(source: str | None) -> Any:
    """A spinner naming the source while Spark answers (seconds; the first question of a session starts Spark)."""
    return st.spinner(f"Asking Spark about the contacts of {source}…") if source else contextlib.nullcontext()


@st.fragment
def preview_panel(
    no: str, step: dict[str, Any] | None, size: int, fields: FieldRegistry, source: str | None = None
) -> None:
    """The live preview: counts before → after, the charts now vs after (broken down by the dimensions picked),
    who would enter or leave. Over a Spark `source` the wait says so (a first question starts Spark)."""
    state.seed_widget("pv.mode", state.session("sx.chart_mode", "count"))
    head = st.columns([3, 2], vertical_alignment="bottom")
    head[0].subheader("Preview" if step else "Segment now", anchor=False)
    mode = head[1].segmented_control("Charts show", ["count", "share"], key="pv.mode", required=True,
                                     format_func={"count": "Contacts", "share": "Share %"}.get, width="stretch",
                                     label_visibility="collapsed") or "count"
    st.session_state["sx.chart_mode"] = mode
    if step is None:
        cols = st.columns([2, 3], vertical_alignment="center")
        cols[0].metric("Members now", n(size), border=True)
        with cols[1]:
            st.caption("Build a filter on the left: its step is previewed here before anything is written.")
        if size == 0:
            st.info("The segment is empty. Build a filter on the left and press **Add to segment**: the counts and "
                    "charts here show what the step would do before anything is written.", icon=":material/info:")
            return
        dims = breakdown_picker("pv.dims", K_DIMS, fields)
        with _spark_wait(source):
            dists = current_distributions(db, no, dimensions=dims)
        _charts({d: distribution_figure(d, {BEFORE_NAME: dists[d]}, mode=mode, fields=fields) for d in dims},
                (BEFORE_NAME,))
        return
    # The counts come first, then the picker, then the charts; the picker runs first, as the preview needs it.
    counts_box = st.container()
    dims = breakdown_picker("pv.dims", K_DIMS, fields)
    try:
        with _spark_wait(source):
            p, figures = preview_with_figures(db, no, ActionRequest.from_step(step, fields), mode=mode,
                                              dimensions=dims, fields=fields)
    except SegcoreError as e:
        counts_box.error(str(e))
        return
    c = p.counts
    with counts_box:
        _metrics(c.size_before, c.size_after, c.added, c.removed, c.matched)
        st.caption(f"{match_caption(c.matched, c.skipped_excluded)} · computed in {p.elapsed_ms:,.0f} ms")
    _charts(figures, (BEFORE_NAME, AFTER_NAME))
    entering, leaving = preview_samples(db, no, p, SAMPLE_COLUMNS)
    _samples("Would enter", entering, c.added)
    _samples("Would leave", leaving, c.removed)


# ------------------------------------------------------------------------------------------------- tabs


def _log_tab(info: SegmentInfo) -> None:
    entries = criteria_log(db, info.no)
    if not entries:
        st.info("No steps yet. Each Add, Refine or Reduce appears here, and can be undone.", icon=":material/info:")
        return
    frame_ = pd.DataFrame(
        {
            "Step": [e.seq for e in entries],
            "Action": [e.label for e in entries],
            "Description": [e.description for e in entries],
            "Matched": [e.matched for e in entries],
            "Added": [e.added for e in entries],
            "Removed": [e.removed for e in entries],
            "Size after": [e.size_after for e in entries],
            "User": [e.user for e in entries],
            "Time (UTC)": [when(e.created_at) for e in entries],
            "State": ["undone" if e.undone else "applied" for e in entries],
        }
    )
    undone = [e.undone for e in entries]
    styled = frame_.style.apply(
        lambda row: ["color: #9AA3AF; font-style: italic" if undone[row.name] else "" for _ in row], axis=1
    )
    count = {"format": "%,d", "width": 75}
    st.dataframe(styled, hide_index=True, height=table_height(len(frame_)), column_config={
        "Step": st.column_config.NumberColumn(width=45), "Action": st.column_config.TextColumn(width=100),
        "Matched": st.column_config.NumberColumn(**count), "Added": st.column_config.NumberColumn(**count),
        "Removed": st.column_config.NumberColumn(**count), "Size after": st.column_config.NumberColumn(**count),
        "User": st.column_config.TextColumn(width=80), "Time (UTC)": st.column_config.TextColumn(width=125),
        "State": st.column_config.TextColumn(width=70),
    })
    if any(undone):
        st.caption("Greyed steps were undone; Redo brings them back until a new step is taken.")
    with_filter = [e for e in entries if e.filter_json is not None]
    c1, c2 = st.columns(2, gap="large")
    with c1:
        st.markdown("**Why is this contact here?**")
        query = st.text_input("Contact", key="bd.prov", placeholder="Contact no., name or e-mail",
                              help="A contact number in any case, part of a name (accents and case ignored) or an "
                              "e-mail address.")
        if query.strip():
            with state.core_errors():
                found = find_contacts(db, query, limit=20)
                if not found:
                    st.warning(f"No contact matches “{query.strip()}”.", icon=":material/search_off:")
                else:
                    picked = found[0]
                    if len(found) > 1:
                        labels = {r["contact_no"]: _contact_label(r) for r in found}
                        more = " (the first 20)" if len(found) == 20 else ""
                        chosen = st.selectbox(f"{len(found)} contacts match{more}", list(labels), format_func=labels.get, key="bd.prov.pick")
                        picked = next(r for r in found if r["contact_no"] == chosen)
                    st.info(provenance(db, info.no, picked["contact_no"]).explain(), icon=":material/search:")
    with c2:
        if with_filter:
            st.markdown("**Reuse a step's filter**")
            labels = {e.seq: f"{e.seq}. {e.label}: {e.description}" for e in with_filter}
            seq = st.selectbox("Step", list(labels), format_func=labels.get, key="bd.loadstep")
            entry = next(e for e in with_filter if e.seq == seq)
            st.button("Edit in the builder", icon=":material/edit:", on_click=_load_step,
                      args=(entry.filter_json, entry.kind), key="bd.loadbtn")
            state.show_flashes(SLOT_LOG)


def _contact_label(row: dict[str, Any]) -> str:
    """A look-up match as a person recognises it: CT000123 · Marie Lefèvre · marie@example.com."""
    return " · ".join(str(row[k]) for k in ("contact_no", "name", "email") if row.get(k))


def _reset_members_page() -> None:
    st.session_state.pop("bd.mem.page", None)


def _remove_selected(no: str, version: int, contact_nos: list[str]) -> None:
    with state.core_errors(to_flash=True, slot=SLOT_MEMBERS):
        _done("Removed contacts in", apply_action(db, no, ActionRequest("remove_contacts", contact_nos=tuple(contact_nos)),
                                                  expected_version=version, user=state.user()))


def _members_tab(info: SegmentInfo) -> None:
    if info.size == 0:
        st.info("No members yet. Add contacts with a filter, by number or by e-mail.", icon=":material/info:")
        return
    # Over a source the search looks at the contact numbers kept here (the other fields are Spark's).
    hint = "Search members by contact number" if info.source else "Search members by number, name, e-mail or city"
    query = st.text_input("Search members", key="bd.mem.q", placeholder=hint,
                          on_change=_reset_members_page, label_visibility="collapsed", icon=":material/search:")
    page_no = int(st.session_state.get("bd.mem.page", 1))
    page = segment_members_page(db, info.no, query, offset=(page_no - 1) * PAGE_SIZE, limit=PAGE_SIZE,
                                columns=MEMBER_COLUMNS)
    if page.total == 0:
        st.caption("No member matches this search.")
        return
    frame_ = pd.DataFrame(page.rows, columns=[*MEMBER_COLUMNS, "added_seq"]).rename(columns={"added_seq": "step"})
    event = st.dataframe(
        frame_, hide_index=True, key=f"bd.mem.table.{page_no}.{query}", on_select="rerun",
        selection_mode="multi-row", height=table_height(len(frame_)), placeholder=PLACEHOLDER,
        column_config=contact_columns(
            MEMBER_COLUMNS, step=st.column_config.NumberColumn("Step", help="The step that brought this member in")
        ),
    )
    with st.container(horizontal=True, vertical_alignment="center"):
        first = page.offset + 1
        total = f"{n(page.total)}+" if page.capped else n(page.total)
        st.caption(f"{n(first)}–{n(page.offset + len(page.rows))} of {total} {'member' if page.total == 1 else 'members'}"
                   + (f" matching “{query}”" if query else "")
                   + (" · type more to narrow the search" if page.capped else ""))
        if page.pages > 1:
            st.pagination(page.pages, key="bd.mem.page", default=min(page_no, page.pages))
        selected = [frame_.iloc[i]["contact_no"] for i in event.selection.rows] if event else []
        if EDIT_REFUSAL is None:
            st.button(f"Remove selected ({len(selected)})", icon=":material/person_remove:",
                      disabled=not selected or info.read_only, on_click=_remove_selected,
                      args=(info.no, info.version, selected), key="bd.mem.remove")
    state.show_flashes(SLOT_MEMBERS)


def _by_hand_tab(info: SegmentInfo) -> None:
    if EDIT_REFUSAL is not None:
        st.info(EDIT_REFUSAL, icon=":material/lock:")
        return
    c1, c2 = st.columns(2, gap="large")
    with c1:
        st.markdown("**Contacts by number**")
        text = st.text_area("Contact numbers", key="bd.hand.nos", height=120,
                            placeholder="CT000001, CT000002 …  (spaces, commas, semicolons or new lines)")
        nos = split_values(text or "")
        st.caption(f"{plural(len(nos), 'number')} read" if nos else "Numbers must exist; a typo refuses the step.")
        with st.container(horizontal=True):
            for kind, label in (("add_contacts", "Add contacts"), ("remove_contacts", "Remove contacts")):
                step = ActionRequest(kind, contact_nos=nos).to_step() if nos else None
                st.button(label, key=f"bd.hand.{kind}", disabled=step is None or info.read_only, on_click=_apply,
                          args=(info.no, info.version, step, SLOT_HAND))
        state.show_flashes(SLOT_HAND)
    with c2:
        st.markdown("**Contacts by e-mail**")
        text = st.text_area("E-mail addresses", key="bd.hand.emails", height=120,
                            placeholder="Paste addresses: separated by spaces, commas, semicolons or new lines")
        emails = split_emails(text or "")
        st.caption(f"{plural(len(emails), 'address', 'addresses')} read; unknown ones are reported back"
                   if emails else "Up to 10,000 and more at a time; matched case-insensitively.")
        step = ActionRequest("add_emails", emails=emails).to_step() if emails else None
        st.button("Add e-mails", key="bd.hand.add_emails", disabled=step is None or info.read_only,
                  on_click=_apply, args=(info.no, info.version, step, SLOT_HAND + ".emails"))
        state.show_flashes(SLOT_HAND + ".emails")
        unmatched = st.session_state.get(K_UNMATCHED)
        if unmatched:
            with st.expander(f"{plural(len(unmatched), 'address', 'addresses')} matched no contact", expanded=True):
                st.code("\n".join(unmatched[:1000]), language=None)
                if len(unmatched) > 1000:
                    st.caption(f"… and {n(len(unmatched) - 1000)} more")
            st.button("Dismiss", key="bd.hand.dismiss", on_click=lambda: st.session_state.pop(K_UNMATCHED, None))


def _reuse_tab(info: SegmentInfo) -> None:
    if EDIT_REFUSAL is not None and not state.can("segment.edit"):
        st.info(EDIT_REFUSAL, icon=":material/lock:")
        return
    c1, c2, c3 = st.columns(3, gap="large")
    with c1:
        st.markdown("**Save criteria**")
        st.caption("Store this segment's applied steps under a code, to replay them on any segment.")
        st.text_input("Code", key="bd.crit.code", placeholder="e.g. FR-ACTIVE", max_chars=30)
        st.text_input("Description", key="bd.crit.desc", placeholder=info.description)
        st.checkbox("Replace if the code exists", key="bd.crit.replace")
        st.button("Save criteria", key="bd.crit.save", disabled=info.head_seq == 0, on_click=_save_criteria,
                  args=(info.no,), help=None if info.head_seq else "No applied step to save yet")
        state.show_flashes(SLOT_REUSE + ".save")
    with c2:
        st.markdown("**Reuse criteria**")
        saved = list_criteria(db)
        if not saved:
            st.caption("No saved criteria yet.")
        else:
            labels = {c["code"]: f"{c['code']} · {c['description']} ({plural(len(c['steps']), 'step')})" for c in saved}
            code = st.selectbox("Criteria", list(labels), format_func=labels.get, key="bd.crit.pick")
            st.caption("Each replayed step is its own undoable step.")
            st.button("Replay on this segment", key="bd.crit.reuse", disabled=info.read_only or bool(EDIT_REFUSAL),
                      on_click=_reuse_criteria, args=(info.no, info.version, code), help=EDIT_REFUSAL)
            state.show_flashes(SLOT_REUSE)
    with c3:
        st.markdown("**Reuse segment**")
        others = [s for s in list_segments(db) if s.no != info.no]
        if not others:
            st.caption("No other segment yet.")
        else:
            labels = {s.no: f"{s.no} · {s.description} ({n(s.size)})" for s in others}
            source = st.selectbox("Segment", list(labels), format_func=labels.get, key="bd.reuse.pick")
            st.caption("Adds that segment's members to this one.")
            st.button("Add its members", key="bd.reuse.go", disabled=info.read_only or bool(EDIT_REFUSAL),
                      on_click=_apply, help=EDIT_REFUSAL,
                      args=(info.no, info.version, ActionRequest("reuse_segment", source_segment_no=source).to_step(),
                            SLOT_REUSE + ".segment"))
            state.show_flashes(SLOT_REUSE + ".segment")


def _export_popover(info: SegmentInfo) -> None:
    """Export the members (CSV or Excel) from here too; the core decides what may go out (small segments are
    refused; a logged segment gives its contacted members unless the control group is asked for by name)."""
    if not state.can("segment.export", owner=info.owner):
        return
    with st.popover("Export", icon=":material/download:", help="Download the members with their contact fields"):
        scope = choose_scope(db, info.no, key="bd.export.group")
        if scope is None:
            return
        st.caption(f"{plural(scope.count, 'member')} ({scope.label}) with every contact field. A cell a "
                   "spreadsheet would run as a formula is neutralised.")
        with st.container(horizontal=True):
            for fmt, label, mime in FILE_FORMATS:
                # The file is written when the button is pressed, not on every run of the page.
                st.download_button(f"Download {label}", _export_file(info.no, fmt, scope.group),
                                   file_name=scope.file_name(fmt), mime=mime, icon=":material/download:",
                                   key=f"bd.export.{fmt}", on_click="ignore")


def _export_file(no: str, fmt: str, group: str | None) -> Any:
    who = state.user()  # taken now: the file is written later, when the button is pressed

    def make() -> bytes:
        return export_members(db, no, fmt, group=group, user=who)

    return make


# ------------------------------------------------------------------------------------------------- page

info = frame.open_segment_info()
if info is None:
    frame.header("Builder")
    st.info("No segment is open. Create or open one on **Segments**, then build it here step by step.",
            icon=":material/lightbulb:")
    st.page_link(state.PAGES["segments"], label="Go to Segments", icon=":material/view_list:")
    st.stop()

# The URL names the segment, so the address bar is a link to this very view.
if st.query_params.get("segment") != info.no:
    st.query_params["segment"] = info.no

own_pending_step(info.no)
# Over a source, its own custom fields (not this database's): the widgets, the text form and the steps read them.
fields = fields_for(db, info.source)
# The value lists and slider ends of the filter widgets count the contacts this segment is built from.
fb.use_values_of(info.source)
# Asked once a run, of the core's own check: who may change this segment (its owner, or a manager).
EDIT_REFUSAL = state.refusal("segment.edit", owner=info.owner)

with st.container(horizontal=True, vertical_alignment="center"):
    st.header(f"{info.no}", anchor=False, width="content")
    frame.status_badge(info.status)
    st.space("stretch")
    _export_popover(info)
st.caption(" · ".join(x for x in (
    info.description or "No description",
    f"campaign {info.campaign_no}" if info.campaign_no else "",
    f"owner {info.owner}" if info.owner else "",
    f"{plural(info.head_seq, 'step')}",
    plural(info.size, "member"),
    f"contacts from {info.source} (Spark)" if info.source else "",
) if x))
frame.rejection_note(db, info)
state.show_flashes()
if info.read_only:
    st.warning("This segment is logged: its members and log are kept as a record and cannot change.")
small_warning(db, info)

left, right = st.columns([5, 7], gap="large")
with left:
    st.subheader("Pending step", anchor=False)
    kind, options = _step_controls(info)
    built = fb.filter_builder(fields)
    if built.error:
        st.error(built.error)
    elif built.description:
        st.info(f"**Filter:** {built.description}", icon=":material/filter_alt:")
    step = _pending_request(kind, options, built)
    _action_bar(info, kind, step)
with right:
    preview_panel(info.no, step, info.size, fields, info.source)

st.divider()
TABS = ["Criteria log", "Members", "Add by hand", "Save & reuse", "Review & log"]
tabs = st.tabs(TABS, key="bd.tab", on_change="rerun")
renderers = (_log_tab, _members_tab, _by_hand_tab, _reuse_tab, lambda i: review_and_log_tab(db, i))
for tab, render in zip(tabs, renderers, strict=True):
    # Only the open tab does its work (tabs track state): the members page query runs only when shown.
    if tab.open is not False:
        with tab:
            render(info)
# A message whose control is not on screen this run (another tab is open) still shows, at the end.
state.show_leftover_flashes()
