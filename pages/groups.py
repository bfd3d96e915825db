"""Known user groups: e-mail lists (typed, pasted or from CSV) matched to contacts; matched and unmatched addresses,
CSV export, and the group's contacts added to a segment as one undoable step."""

from __future__ import annotations

from functools import partial

import pandas as pd
import streamlit as st

from segcore import (
    GroupChange,
    GroupInfo,
    SegcoreError,
    add_emails,
    create_group,
    delete_group,
    export_group_csv,
    group_addresses,
    group_to_segment,
    list_groups,
    list_segments,
    parse_email_csv,
    parse_emails,
    remove_emails,
)
from ui import frame, state
from ui.format import n, plural, shown_range
from ui.tables import PLACEHOLDER, table_height

K_PICK = "gr.pick"
PAGE_SIZE = 50
STATUS = {"all": "All", "matched": "Matched", "unmatched": "Unmatched"}

frame.page_guard()
db = state.get_db()
frame.header("Known user groups", "E-mail lists matched to contacts: paste or upload them, see who matches, export "
             "them, add their contacts to a segment.")


# ------------------------------------------------------------------------------------------------- input


def _entries(prefix: str) -> list[str]:
    """The pasted text and the uploaded file's e-mail column, read from the session at the moment of the click
    (button arguments are bound at the previous render and would miss text typed just before clicking)."""
    ss = st.session_state
    entries = [ss.get(f"{prefix}.text") or ""]
    upload = ss.get(f"{prefix}.file.{ss.get(f'{prefix}.gen', 0)}")
    if upload is not None:
        entries.extend(parse_email_csv(upload.getvalue()))
    return entries


def _addresses_input(prefix: str) -> bool:
    """Paste box and CSV upload, with what was read; False (the error shown) when the file cannot be read."""
    st.text_area("Addresses", key=f"{prefix}.text", height=110,
                 placeholder="Paste addresses: separated by spaces, commas, semicolons or new lines")
    upload = st.file_uploader("…or a CSV file", type=["csv", "txt"], key=f"{prefix}.file.{state.session(f'{prefix}.gen', 0)}",
                              help="An export from a mail tool: the column headed e-mail (or mail, courriel) is "
                                   "read, else the column that holds addresses. UTF-8 or Windows-1252; , or ;")
    try:
        valid, invalid = parse_emails(_entries(prefix))
    except SegcoreError as e:
        st.error(f"{upload.name if upload else 'file'}: {e}")
        return False
    if valid or invalid:
        st.caption(f"{plural(len(valid), 'address', 'addresses')} read"
                   + (f"; {plural(len(invalid), 'entry', 'entries')} not an address: {', '.join(invalid[:5])}"
                      + ("…" if len(invalid) > 5 else "") if invalid else ""))
    return True


def _reset_input(prefix: str) -> None:
    ss = st.session_state
    ss.pop(f"{prefix}.text", None)
    ss[f"{prefix}.gen"] = ss.get(f"{prefix}.gen", 0) + 1  # a new uploader key empties it


def _change_text(change: GroupChange) -> str:
    parts = [f"{plural(change.added, 'address', 'addresses')} added"]
    if change.already_there:
        parts.append(f"{n(change.already_there)} already in the group")
    if change.invalid:
        parts.append(f"{plural(len(change.invalid), 'entry', 'entries')} skipped as not an address "
                     f"({', '.join(change.invalid[:5])}{'…' if len(change.invalid) > 5 else ''})")
    return "; ".join(parts) + "."


# ------------------------------------------------------------------------------------------------- callbacks


def _create() -> None:
    ss = st.session_state
    with state.core_errors(to_flash=True):
        info, change = create_group(db, ss.get("gr.new.name") or "", description=ss.get("gr.new.desc") or "",
                                    emails=_entries("gr.new"), user=state.user())
        state.flash("success", f"Group {info.name} created: {_change_text(change)} "
                               f"{n(info.matched_count)} {'matches' if info.matched_count == 1 else 'match'} a contact.")
        ss[K_PICK] = info.name
        ss.pop("gr.new.name", None)
        ss.pop("gr.new.desc", None)
        _reset_input("gr.new")


def _add(name: str) -> None:
    with state.core_errors(to_flash=True):
        state.flash("success", f"{name}: {_change_text(add_emails(db, name, _entries('gr.add'), user=state.user()))}")
        _reset_input("gr.add")


def _remove(name: str) -> None:
    with state.core_errors(to_flash=True):
        removed = remove_emails(db, name, _entries("gr.add"), user=state.user())
        state.flash("success", f"{name}: {plural(removed, 'address', 'addresses')} removed.")
        _reset_input("gr.add")


def _to_segment(name: str) -> None:
    no = st.session_state.get("gr.seg")
    if not no:
        return
    with state.core_errors(to_flash=True):
        r = group_to_segment(db, name, no, user=state.user())
        state.flash("success", f"Added group {name} to {no} as step {r.seq}: {n(r.added)} added, "
                               f"{plural(len(r.unmatched), 'address', 'addresses')} without a contact → "
                               f"{plural(r.size_after, 'member')}.")


def _delete(name: str) -> None:
    with state.core_errors(to_flash=True):
        delete_group(db, name, user=state.user())
        state.flash("success", f"Group {name} deleted; segments built from it keep their members.")
        st.session_state.pop(K_PICK, None)


# ------------------------------------------------------------------------------------------------- parts


def _new(expanded: bool) -> None:
    with st.expander("New group", expanded=expanded, icon=":material/group_add:"):
        c1, c2 = st.columns([1, 2])
        c1.text_input("Name", key="gr.new.name", max_chars=100, placeholder="e.g. Trade fair 2026")
        c2.text_input("Description", key="gr.new.desc", max_chars=200, placeholder="e.g. Visitors scanned at the booth")
        readable = _addresses_input("gr.new")
        st.button("Create group", type="primary", key="gr.create", disabled=not readable, on_click=_create)


def _addresses(info: GroupInfo) -> None:
    state.seed_widget("gr.status", "all")
    status = st.segmented_control("Show", list(STATUS), key="gr.status", required=True, format_func=STATUS.get) or "all"
    page_key = f"gr.page.{info.name}.{status}"
    page_no = int(st.session_state.get(page_key, 1))
    rows, total = group_addresses(db, info.name, status=status, limit=PAGE_SIZE, offset=(page_no - 1) * PAGE_SIZE)
    if total == 0:
        st.caption("No address here.")
        return
    frame_ = pd.DataFrame(rows, columns=["email", "contact_no", "name"])
    st.dataframe(frame_, hide_index=True, height=table_height(len(frame_)), placeholder=PLACEHOLDER,
                 column_config={"email": st.column_config.TextColumn("E-mail", width="medium"),
                                "contact_no": "Contact no.", "name": "Name"})
    with st.container(horizontal=True, vertical_alignment="center"):
        first = (page_no - 1) * PAGE_SIZE + 1
        kind = "" if status == "all" else f"{STATUS[status].lower()} "
        st.caption(shown_range(first - 1, len(rows), total, f"{kind}address", f"{kind}addresses"))
        pages = -(-total // PAGE_SIZE)
        if pages > 1:
            st.pagination(pages, key=page_key, default=min(page_no, pages))


def _export(info: GroupInfo) -> None:
    st.markdown("**Export**")
    st.download_button(
        f"Download CSV ({plural(info.address_count, 'address', 'addresses')})",
        partial(export_group_csv, db, info.name, user=state.user()),  # made when clicked, not on every rerun
        file_name=f"group-{info.name}.csv", mime="text/csv", icon=":material/download:", key="gr.export",
        on_click="ignore", disabled=info.address_count == 0,
    )
    st.caption("Columns: email, matched, contact_no, name. Cells a spreadsheet would run as a formula are "
               "prefixed with a quote.")


def _detail(info: GroupInfo) -> None:
    with st.container(border=True):
        st.subheader(info.name, anchor=False)
        if info.description:
            st.caption(info.description)
        # Cards as wide as their numbers, in a row that wraps (equal columns cut long numbers short).
        with st.container(horizontal=True, gap="small"):
            st.metric("Addresses", n(info.address_count), border=True, width="content")
            st.metric("Matched", n(info.matched_count), border=True, width="content",
                      help="Addresses equal to a contact's e-mail (case does not matter)")
            st.metric("Unmatched", n(info.unmatched_count), border=True, width="content")
        left, right = st.columns([3, 2], gap="large")
        with left:
            _addresses(info)
        with right:
            st.markdown("**Add to a segment**")
            # Only segments this person may change: their own, or any for a manager (the core's own check, asked
            # once per owner rather than once per segment).
            candidates = [s for s in list_segments(db) if not s.read_only]
            allowed = {o for o in {s.owner for s in candidates} if state.can("segment.edit", owner=o)}
            open_segments = [s for s in candidates if s.owner in allowed]
            if not open_segments:
                st.caption("No static segment you may change: create one on Segments."
                           if state.can("segment.edit") else state.refusal("segment.edit") or "")
            else:
                labels = {s.no: f"{s.no} · {s.description} ({n(s.size)})" for s in open_segments}
                st.selectbox("Segment", list(labels), format_func=labels.get, key="gr.seg")
                st.button(f"Add {plural(info.matched_count, 'matched contact')}", key="gr.toseg",
                          disabled=info.matched_count == 0, on_click=_to_segment, args=(info.name,),
                          help="One Add e-mails step: undoable in the Builder; unmatched addresses are reported")
            if state.can("segment.export"):
                _export(info)
            if not MAY_EDIT:
                return
            st.markdown("**More addresses**")
            readable = _addresses_input("gr.add")
            with st.container(horizontal=True):
                st.button("Add addresses", key="gr.addbtn", disabled=not readable, on_click=_add, args=(info.name,))
                st.button("Remove these", key="gr.rmbtn", disabled=not readable, on_click=_remove, args=(info.name,))
            with st.popover("Delete group", icon=":material/delete:"):
                st.write(f"Delete **{info.name}** and its {plural(info.address_count, 'address', 'addresses')}?")
                st.button("Delete group", type="primary", key="gr.delete", on_click=_delete, args=(info.name,))


# ------------------------------------------------------------------------------------------------- page

MAY_EDIT = state.can("group.edit")  # hiding is a courtesy: the core refuses anyway
groups = list_groups(db)
if groups:
    st.dataframe(pd.DataFrame({
        "Name": [g.name for g in groups], "Description": [g.description for g in groups],
        "Addresses": [g.address_count for g in groups], "Matched": [g.matched_count for g in groups],
        "Unmatched": [g.unmatched_count for g in groups],
    }), hide_index=True, height=table_height(len(groups), max_rows=6), column_config={
        k: st.column_config.NumberColumn(format="%,d") for k in ("Addresses", "Matched", "Unmatched")})
    by_name = {g.name: g for g in groups}
    if st.session_state.get(K_PICK) not in by_name:
        st.session_state[K_PICK] = groups[0].name
    picked = st.selectbox("Group", list(by_name), key=K_PICK, width=420)
    with state.core_errors():  # deleted in another tab meanwhile: one line, not a traceback
        _detail(by_name[picked])
else:
    st.info("No group yet. Paste the addresses of a trade-fair list or a webinar's sign-ups below, or upload the "
            "CSV your mail tool exported: you see at once which of them are your contacts.",
            icon=":material/lightbulb:")
if MAY_EDIT:
    _new(expanded=not groups)
