"""Data: import contacts, interactions and outcomes (read and map the file, check it, then import the valid rows or nothing);
the contact sources that stay in Spark (ui/sources.py); the custom fields imports create; export; the settings
(minimum segment size, where previews run).

The import is segcore's pipeline: `plan_import` reads and maps the file without writing, `run_import` checks it
(dry run: the validation report) or writes it. This page only renders a plan and turns the user's choices into the
arguments of those two calls. The uploaded file is kept in the session (K_UPLOAD, name and bytes), so the flow after
the upload does not depend on the uploader widget (and tests can drive it by setting that state).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pandas as pd
import streamlit as st

from segcore import (
    CONTACT_TARGETS,
    CUSTOM_TYPES,
    DATE_ORDERS,
    INTERACTION_TARGETS,
    OUTCOME_TARGETS,
    SETTINGS,
    ImportPlan,
    ImportReport,
    SegcoreError,
    custom_field_name,
    delete_custom_field,
    delete_mapping,
    export_members,
    fields_of,
    list_custom_fields,
    list_mappings,
    list_segments,
    plan_import,
    rename_custom_field,
    retype_custom_field,
    run_import,
    save_mapping,
    set_settings,
    settings_of,
)
from ui import auth, frame, state
from ui.export import choose_scope
from ui.format import n, plural, when
from ui.results import forget_outcomes
from ui.sources import sources_section
from ui.tables import table_height
from ui.team import team_section

KINDS = {"contacts": "Contacts", "interactions": "Interactions", "outcomes": "Outcomes"}
# What each kind of file needs, for the line under an empty uploader.
NEEDS = {
    "contacts": "a contact number or e-mail column",
    "interactions": "contact number, date and template",
    "outcomes": "contact number, date and kind (an order, a sign-up … as a code such as ORDER); amount and "
                "reference (an order number: the same reference imported again counts once) are optional",
}
K_UPLOAD = "sx.import.upload"  # (file name, bytes) of the file being imported
K_TOKEN = "sx.import.token"  # (those bytes, name, digest): the digest identifies the file in the caches below
K_SEEN = "sx.import.seen"  # the token the settings below belong to
K_SETTINGS = "sx.import.settings"  # the user's choices for this file: sheet, key, dates, new columns, columns
K_PLANS = "sx.import.plans"  # plan key -> ImportPlan, the last few (a rerun does not read the file again)
K_REPORT = "sx.import.report"  # (plan key, check report, import report or None)
K_MSG = "sx.import.msg"  # control -> (kind, text): a message to show next to that control on the next run
K_GEN = "sx.import.gen"  # uploader generation: a new key empties the uploader
K_EDITOR = "sx.import.editor"  # mapping editor generation: a new key drops the edits once they are applied
K_MAPPINGS_VERSION = "sx.import.mappings"  # bumped when a mapping is saved or deleted (plans depend on them)
K_FILES = "sx.export.files"
K_CF_NEXT = "sx.cf.next"  # the custom field to select on the next run (after a rename)
W_CF_PICK = "dt.cf.pick"
SKIP, NEW = "(skip)", "(new custom field)"
PLANS_KEPT = 3
FILE_FORMATS = (
    ("csv", "CSV", "text/csv"),
    ("xlsx", "Excel", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
)
DATE_LABELS = {"auto": "Auto-detect", "DMY": "Day first (31/12/2024)", "MDY": "Month first (12/31/2024)",
               "YMD": "Year first (2024-12-31)"}
NEW_FIELD_LABELS = {"auto": "Become new custom fields", "skip": "Are not imported"}
TYPE_HELP = ("number, date, code (a short value, compared without case: GOLD), text, boolean (yes/no) "
             "or list (several codes separated by ; or ,)")
UPLOAD_HELP = ("A CSV or text file whose first line names the columns, separated by commas, semicolons, tabs or "
               "| (found out from the file), in UTF-8, UTF-16 or Windows-1252 (also found out); or an Excel "
               "workbook (.xlsx). Columns are matched to fields by their names, in English, French or German; "
               "you can change every match before anything is written.")
OPTION_KEYS = ("dt.imp.sheet", "dt.imp.key", "dt.imp.dates", "dt.imp.new", "dt.imp.empty", "dt.imp.save.name")

frame.page_guard()
db = state.get_db()
# The field registry, read once per run (an import or a rename reruns the page).
registry = fields_of(db)
frame.header("Data", "Bring contacts, interactions and outcomes in from CSV or Excel files, or read contacts where "
             "they lie in Spark; take a segment's members out.")


# --------------------------------------------------------------------------------------------- small helpers


def _progress_bar(label: str, where: Any = st) -> tuple[Any, Callable[[int, int, str], None]]:
    bar = where.progress(0.0, text=label)

    def progress(done: int, total: int, stage: str) -> None:
        bar.progress(min(1.0, done / total) if total else 1.0, text=f"{stage.capitalize()}: {n(done)} of {n(total)}")

    return bar, progress


def _size(nbytes: int) -> str:
    return f"{nbytes / 1_000_000:,.1f} MB" if nbytes >= 1_000_000 else f"{max(1, nbytes // 1000):,} KB"


def _say(control: str, kind: str, text: str) -> None:
    """A message for the next run, shown next to `control` (callbacks cannot draw where the control is)."""
    st.session_state.setdefault(K_MSG, {})[control] = (kind, text)


def _show_msg(control: str) -> None:
    kind, text = st.session_state.get(K_MSG, {}).pop(control, (None, None))
    if text:
        {"error": st.error, "warning": st.warning, "success": st.success}.get(kind or "", st.info)(text)


# --------------------------------------------------------------------------------------------- the held file


def _upload() -> tuple[str, bytes] | None:
    held = st.session_state.get(K_UPLOAD)
    return held if held and held[1] else None


def _token() -> str:
    """What identifies the held file (its name and content); computed once per upload."""
    name, data = st.session_state[K_UPLOAD]
    cached = st.session_state.get(K_TOKEN)
    if cached and cached[0] is data and cached[1] == name:  # the same bytes object (kept here, so not reused)
        return cached[2]
    digest = hashlib.sha1(name.encode() + b"\0" + data).hexdigest()[:16]  # noqa: S324 - a cache key, not security
    st.session_state[K_TOKEN] = (data, name, digest)
    return digest


def _fresh_settings() -> dict[str, Any]:
    return {"sheet": None, "key": "", "dates": "auto", "new": "auto", "empty": False, "fields": {}, "types": {}}


def _forget_file() -> None:
    """Start over: no file, no choices, no reports; the uploader is emptied."""
    for k in (K_UPLOAD, K_TOKEN, K_SEEN, K_SETTINGS, K_PLANS, K_REPORT, K_MSG):
        st.session_state.pop(k, None)
    for k in OPTION_KEYS:
        st.session_state.pop(k, None)
    st.session_state[K_GEN] = st.session_state.get(K_GEN, 0) + 1


def _settings() -> dict[str, Any]:
    """The user's choices for the held file; a new file starts with the defaults."""
    token = _token()
    if st.session_state.get(K_SEEN) != token:
        st.session_state[K_SEEN] = token
        st.session_state[K_SETTINGS] = _fresh_settings()
        for k in (K_REPORT, K_MSG, *OPTION_KEYS):
            st.session_state.pop(k, None)
    return st.session_state[K_SETTINGS]


# --------------------------------------------------------------------------------------------- planning


def _plan_key(kind: str, s: dict[str, Any], registry_key: Any) -> tuple[Any, ...]:
    return (_token(), kind, s["sheet"], s["key"], s["dates"], s["new"], tuple(s["fields"].items()),
            tuple(s["types"].items()), registry_key, st.session_state.get(K_MAPPINGS_VERSION, 0))


def _plan(kind: str, s: dict[str, Any]) -> tuple[tuple[Any, ...], ImportPlan]:
    """The plan for these choices (cached): the file read and mapped, nothing written. Raises SegcoreError."""
    key = _plan_key(kind, s, registry.key)
    plans: dict[tuple[Any, ...], ImportPlan] = st.session_state.setdefault(K_PLANS, {})
    if key in plans:
        return key, plans[key]
    name, data = st.session_state[K_UPLOAD]
    options = dict(new_fields=s["new"] if kind == "contacts" else "skip", date_format=s["dates"],
                   key=s["key"] or None, sheet=s["sheet"])
    with st.spinner(f"Reading {name}…"):
        plan = plan_import(db, data, kind, overrides=s["fields"], **options)
        # A new custom field's type is chosen through the mapping (overrides name fields only).
        mapping = plan.mapping
        for source, new_type in s["types"].items():
            choice = next((c for c in mapping.columns if c.source == source), None)
            if choice is not None and choice.field in plan.new_fields:
                mapping = mapping.with_choice(source, choice.field, new_type=new_type, label=choice.label)
        if mapping is not plan.mapping:
            saved = plan.saved_mapping
            plan = plan_import(db, data, kind, mapping=mapping, raw=plan.raw, **options)
            if saved and not plan.saved_mapping:
                plan = replace(plan, saved_mapping=saved)  # still the saved mapping, with the types chosen
    for old in list(plans)[: max(0, len(plans) - PLANS_KEPT + 1)]:
        del plans[old]
    plans[key] = plan
    return key, plan


def _try(kind: str, s: dict[str, Any], control: str) -> bool:
    """Plan with these choices; on a refusal (or a mapping that cannot be imported) say why next to `control` and
    keep the previous choices."""
    try:
        _, plan = _plan(kind, s)
    except SegcoreError as e:
        _say(control, "error", str(e))
        return False
    if plan.problem:
        _say(control, "error", plan.problem[0].upper() + plan.problem[1:] + ".")
        return False
    return True


def _option_changed(kind: str, setting: str, widget: str, control: str) -> None:
    """on_change of an option: re-plan with it, or put the widget back and say why."""
    s = st.session_state[K_SETTINGS]
    value = st.session_state.get(widget)
    candidate = {**s, setting: value}
    if setting == "sheet":  # another sheet has another header: the column choices do not carry over
        candidate.update(fields={}, types={})
    if _try(kind, candidate, control):
        st.session_state[K_SETTINGS] = candidate
    else:
        st.session_state[widget] = s[setting]


def _targets(kind: str) -> tuple[dict[str, str], dict[str, str]]:
    """(built-in import targets, existing custom fields): field name -> label, in the order the dropdown shows."""
    if kind == "interactions":
        return dict(INTERACTION_TARGETS), {}
    if kind == "outcomes":
        return dict(OUTCOME_TARGETS), {}
    custom = {spec.name: spec.label for spec in registry.custom}
    return dict(CONTACT_TARGETS), custom


# --------------------------------------------------------------------------------------------- the mapping table


def _field_value(plan: ImportPlan, field: str) -> str:
    if not field:
        return SKIP
    return NEW if field in plan.new_fields else field


def _mapping_frame(plan: ImportPlan) -> pd.DataFrame:
    rows = []
    for c in plan.columns:
        shown = "name" if c.field in ("first_name", "last_name") else c.field
        rule = c.rule
        if c.source in plan.ambiguous:
            rule = "choose the date order (below)"
        elif c.note and c.note not in ("new field", "skipped"):
            rule = f"{rule}; {c.note}" if rule else c.note
        # Until the date order is chosen every cell of an ambiguous column "does not read": no count to show yet.
        problems = None if c.source in plan.ambiguous else c.problems
        rows.append({"source": c.source, "field": _field_value(plan, c.field), "name": shown,
                     "type": c.type or None, "samples": " · ".join(c.samples), "rule": rule,
                     "problems": problems})
    return pd.DataFrame(rows, columns=["source", "field", "name", "type", "samples", "rule", "problems"])


def _style_mapping(table: pd.DataFrame) -> Any:
    def row_style(row: pd.Series) -> list[str]:
        grey = "color: #8a8f98" if row["field"] == SKIP else ""
        bad = pd.notna(row["problems"]) and row["problems"] > 0
        return [("color: #d93025; font-weight: 600" if col == "problems" and bad else grey)
                for col in row.index]

    return table.style.apply(row_style, axis=1)


def _apply_edits(kind: str, plan: ImportPlan, table: pd.DataFrame, edits: dict[Any, dict[str, Any]]) -> None:
    """Turn edited cells into the user's column choices; re-plan; a refused choice is said and not kept."""
    s = st.session_state[K_SETTINGS]
    fields, types = dict(s["fields"]), dict(s["types"])
    builtin, custom = _targets(kind)
    taken = set(builtin) | set(custom) | {c.field for c in plan.columns if c.field}
    ignored: list[str] = []

    def choose(source: str, field: str, *, keep_type: bool = False) -> None:
        for other, f in list(fields.items()):
            if field and f == field and other != source:
                fields[other] = ""  # a field moves to the column that took it
        fields[source] = field
        if not keep_type:
            types.pop(source, None)

    for row, changed in sorted((int(k), v) for k, v in edits.items()):
        if not 0 <= row < len(table):
            continue
        before = table.iloc[row]
        after = {**before.to_dict(), **changed}
        source = before["source"]
        if after["field"] != before["field"]:
            if after["field"] == SKIP:
                choose(source, "")
            elif after["field"] == NEW:
                base = custom_field_name(source)
                name, k = base, 2
                while name in taken:
                    name, k = f"{base[:36]}_{k}", k + 1
                taken.add(name)
                choose(source, name)
            else:
                choose(source, str(after["field"]))
        elif (after["name"] or "") != (before["name"] or ""):
            if before["field"] == NEW and str(after["name"] or "").strip():
                choose(source, str(after["name"]).strip(), keep_type=True)
            else:
                ignored.append(source)
        elif after["type"] != before["type"]:
            if before["field"] == NEW and after["type"]:
                types[source] = str(after["type"])
            else:
                ignored.append(source)
    if ignored:
        _say("map", "info", f"Only a new custom field's name and type can be changed here ({', '.join(ignored)}): "
             "built-in fields have theirs, and existing custom fields change under **Custom fields** below.")
    candidate = {**s, "fields": fields, "types": types}
    if candidate != s and _try(kind, candidate, "map"):
        st.session_state[K_SETTINGS] = candidate
    st.session_state[K_EDITOR] = st.session_state.get(K_EDITOR, 0) + 1
    st.rerun()


def _mapping_editor(kind: str, plan: ImportPlan) -> None:
    builtin, custom = _targets(kind)
    options = [*builtin, *custom, *([NEW] if kind == "contacts" else []), SKIP]
    labels = {**builtin, **{k: f"{v} (custom field)" for k, v in custom.items()}, NEW: "New custom field",
              SKIP: "Skip (not imported)"}
    table = _mapping_frame(plan)
    key = f"dt.imp.map.{st.session_state.get(K_EDITOR, 0)}"
    st.data_editor(
        _style_mapping(table), key=key, hide_index=True, width="stretch", placeholder="–",
        height=table_height(len(table), max_rows=16),
        disabled=["source", "samples", "rule", "problems"],
        # Fixed widths that add up to the page's width at 1440 px: every column visible, problems never cut off.
        column_order=["source", "field", "name", "type", "problems", "samples", "rule"],
        column_config={
            "source": st.column_config.TextColumn("Column in the file", width=140),
            "field": st.column_config.SelectboxColumn(
                "Imported as", options=options, format_func=lambda v: labels.get(v, v), required=True,
                width=165, help="The field this column fills: a built-in field, a custom field, a new custom "
                "field, or nothing"),
            "name": st.column_config.TextColumn(
                "Filter name", width=105,
                help="What to type in a text filter, e.g. fidelite=GOLD. A new custom field's name can be changed."),
            "type": st.column_config.SelectboxColumn(
                "Type", options=list(CUSTOM_TYPES), width=80,
                help=f"A new custom field's type can be chosen: {TYPE_HELP}"),
            "problems": st.column_config.NumberColumn(
                "Problems", format="%d", width=80,
                help="Cells of this column that do not read as the field's type: their rows are rejected"),
            "samples": st.column_config.TextColumn("Sample values", width=180),
            "rule": st.column_config.TextColumn("Read as", width=200,
                                                help="How the values are read, when it is not as written"),
        },
    )
    # The edits are read from the editor's state: exactly the cells the user changed.
    edits = (st.session_state.get(key) or {}).get("edited_rows") or {}
    if edits:
        _apply_edits(kind, plan, table, edits)
    _show_msg("map")
    if st.session_state[K_SETTINGS]["fields"] or st.session_state[K_SETTINGS]["types"]:
        st.button("Undo my changes to the matches", icon=":material/undo:", type="tertiary", key="dt.imp.reset",
                  on_click=_reset_columns)


def _reset_columns() -> None:
    st.session_state[K_SETTINGS] = {**st.session_state[K_SETTINGS], "fields": {}, "types": {}}
    st.session_state[K_EDITOR] = st.session_state.get(K_EDITOR, 0) + 1


# --------------------------------------------------------------------------------------------- options


def _options(kind: str, plan: ImportPlan) -> None:
    s = st.session_state[K_SETTINGS]
    if kind == "contacts":
        key_col, dates_col, new_col = st.columns(3, gap="medium")
    else:
        key_col = new_col = None
        dates_col = st.columns(3, gap="medium")[0]
    if key_col is not None:
        with key_col:
            by = {c.field: c.source for c in plan.columns if c.field in ("contact_no", "email")}
            current = by.get(plan.mapping.key, "")
            field_word = "e-mail address" if plan.mapping.key == "email" else "contact number"
            state.seed_widget("dt.imp.key", s["key"])
            st.selectbox(
                "Key column", ["", *plan.raw.header], key="dt.imp.key",
                format_func=lambda v: v or (f"As suggested: {current}" if current else "As suggested"),
                help="The column that tells which contact a row is: a stored contact with that number (or e-mail "
                     "address, for a column of e-mail addresses) is updated, any other is added.",
                on_change=_option_changed, args=(kind, "key", "dt.imp.key", "key"))
            st.caption(f"Contacts are found by their {field_word}" + (f" (column {current})." if current else "."))
            _show_msg("key")
    with dates_col:
        state.seed_widget("dt.imp.dates", s["dates"])
        st.selectbox("Date order", list(DATE_ORDERS), key="dt.imp.dates", format_func=DATE_LABELS.get,
                     help="How dates like 03/04/2021 are read. Auto-detect decides from the values when a day is "
                          "over 12 or the year comes first.",
                     on_change=_option_changed, args=(kind, "dates", "dt.imp.dates", "dates"))
        if plan.ambiguous:
            st.warning(f"Choose the date order: {', '.join(f'**{a}**' for a in plan.ambiguous)} "
                       f"{'has' if len(plan.ambiguous) == 1 else 'have'} dates like 03/04/2021 that read day-first "
                       "or month-first.", icon=":material/event:")
        _show_msg("dates")
    if new_col is not None:
        with new_col:
            state.seed_widget("dt.imp.new", s["new"])
            st.selectbox("Columns that match no field", list(NEW_FIELD_LABELS), key="dt.imp.new",
                         format_func=NEW_FIELD_LABELS.get,
                         help="A column that matches no built-in or custom field: a new custom field named after "
                              "its header (filter on it like on any field), or left out.",
                         on_change=_option_changed, args=(kind, "new", "dt.imp.new", "new"))
            _show_msg("new")
            state.seed_widget("dt.imp.empty", s["empty"])
            st.checkbox("Empty cells clear the stored value", key="dt.imp.empty", on_change=_empty_changed,
                        help="By default an empty cell leaves what is stored: a file without phone numbers does "
                             "not erase the phone numbers you have.")


def _empty_changed() -> None:
    st.session_state[K_SETTINGS] = {**st.session_state[K_SETTINGS], "empty": bool(st.session_state.get("dt.imp.empty"))}


def _save_mapping_row(plan: ImportPlan) -> None:
    with st.container(horizontal=True, vertical_alignment="bottom"):
        st.text_input("Save this mapping as…", key="dt.imp.save.name", max_chars=60, width=420,
                      placeholder=plan.saved_mapping or "e.g. CRM export",
                      help="A file with the same columns gets these matches again, next time.")
        clicked = st.button("Save mapping", icon=":material/bookmark_add:", key="dt.imp.save")
    if clicked:
        with state.core_errors():
            name = (st.session_state.get("dt.imp.save.name") or "").strip()
            save_mapping(db, name, plan.mapping, user=state.user())
            # The saved mapping now holds the choices: plan again from it, as the next file will be.
            st.session_state[K_SETTINGS] = {**st.session_state[K_SETTINGS], "fields": {}, "types": {}}
            st.session_state[K_MAPPINGS_VERSION] = st.session_state.get(K_MAPPINGS_VERSION, 0) + 1
            st.session_state.pop("dt.imp.save.name", None)
            _say("save", "success", f"Mapping '{name}' saved: a file with the same columns will use it.")
            st.rerun()
    _show_msg("save")


# --------------------------------------------------------------------------------------------- report


def _report_view(report: ImportReport, *, applied: bool) -> None:
    # One card a number, each as wide as its number, in a row that wraps: four equal columns cut "12,345 / 7,655"
    # (new / updated in one card) to "12,345 / 7,…".
    with st.container(horizontal=True, gap="small"):
        st.metric("Rows read", n(report.rows_total), border=True, width="content")
        st.metric("Valid", n(report.rows_valid), border=True, width="content")
        st.metric("Rejected", n(report.rows_rejected), border=True, width="content")
        if report.kind == "contacts":
            st.metric("New" if not applied else "Inserted", n(report.inserted), border=True, width="content",
                      help="Contacts not in the database yet" if not applied else None)
            st.metric("To update" if not applied else "Updated", n(report.updated), border=True, width="content",
                      help="Contacts already in the database, found by their key" if not applied else None)
        else:
            st.metric("To add" if not applied else "Added", n(report.inserted), border=True, width="content")
            if report.kind == "outcomes":
                st.metric("To update" if not applied else "Updated", n(report.updated), border=True,
                          width="content", help="Outcomes whose kind and reference are stored already: updated, "
                          "not counted twice" if not applied else None)
    notes = [f"Read: {report.source or report.encoding}"]
    if report.new_fields:
        verb = "created" if applied else "to create"
        notes.append(f"new custom fields {verb}: " + ", ".join(report.new_fields))
    if report.unknown_columns:
        notes.append("not imported: " + ", ".join(report.unknown_columns))
    st.caption(" · ".join(notes))
    if report.errors:
        st.markdown(f"**Rejected rows** ({plural(report.errors_total, 'problem')})")
        st.dataframe(report.to_frame()[["line", "column", "value", "reason"]], hide_index=True,
                     height=table_height(len(report.errors), max_rows=10),
                     column_config={"line": st.column_config.NumberColumn("Line", format="%d", help="Line in the file",
                                                                          width="small"),
                                    "column": st.column_config.TextColumn("Column", width="medium"),
                                    "value": st.column_config.TextColumn("Value", width="medium"),
                                    "reason": st.column_config.TextColumn("Reason", width="large")})
        if report.errors_truncated:
            st.caption(f"The first {plural(len(report.errors), 'problem')} "
                       f"{'is' if len(report.errors) == 1 else 'are'} listed.")


# --------------------------------------------------------------------------------------------- import section


def _uploader(kind: str) -> None:
    generation = st.session_state.get(K_GEN, 0)
    upload = st.file_uploader(f"{KINDS[kind]} file", type=["csv", "txt", "xlsx"], key=f"dt.up.{kind}.{generation}",
                              help=UPLOAD_HELP)
    if upload is None:
        st.caption(f"CSV, TXT or Excel; it needs {NEEDS[kind]}. You see how every column is read and check the "
                   "file before anything is written.")
        return
    st.session_state[K_UPLOAD] = (upload.name, upload.getvalue())
    st.rerun()


def _file_line(name: str, data: bytes, plan: ImportPlan | None) -> None:
    with st.container(horizontal=True, vertical_alignment="center"):
        read = f" · Read: {plan.raw.describe()}" if plan is not None else ""
        st.markdown(f":material/description: **{name}** · {_size(len(data))}{read}")
        st.button("Choose another file", icon=":material/restart_alt:", key="dt.imp.another", on_click=_forget_file,
                  type="tertiary")


def _import_section(kind: str) -> None:
    held = _upload()
    if held is None:
        _uploader(kind)
        return
    name, data = held
    s = _settings()
    done = st.session_state.get(K_REPORT)
    if done is not None and done[2] is not None:  # imported: the result, and a way to the next file
        _file_line(name, data, None)
        st.success(done[2].summary())
        _report_view(done[2], applied=True)
        st.button("Import another file", icon=":material/upload_file:", key="dt.imp.next", on_click=_forget_file)
        return
    try:
        plan_key, plan = _plan(kind, s)
    except SegcoreError as e:
        _file_line(name, data, None)
        st.error(str(e))
        return
    if plan.problem:
        # A workbook whose first sheet is a cover or notes sheet: open the first sheet that can be imported.
        other = _another_sheet(kind, s, plan)
        if other is not None:
            s = st.session_state[K_SETTINGS] = {**s, "sheet": other, "fields": {}, "types": {}}
            problem = plan.problem
            plan_key, plan = _plan(kind, s)
            _say("sheet", "info", f"The first sheet cannot be imported ({problem}): showing sheet '{other}'.")
    _file_line(name, data, plan)
    if len(plan.raw.sheets) > 1:
        state.seed_widget("dt.imp.sheet", plan.raw.sheet)
        st.selectbox("Sheet", list(plan.raw.sheets), key="dt.imp.sheet", on_change=_option_changed,
                     args=(kind, "sheet", "dt.imp.sheet", "sheet"), help="The workbook has several sheets: "
                     "choose the one to import.")
        _show_msg("sheet")
    if plan.saved_mapping:
        st.info(f"Using the saved mapping '{plan.saved_mapping}' (saved for a file with these columns)"
                + (", with your changes." if s["fields"] or s["types"] else "."), icon=":material/bookmark:")

    st.markdown("**1 · How each column is imported**")
    _mapping_editor(kind, plan)
    st.markdown("**2 · Options**")
    _options(kind, plan)
    if kind == "contacts":
        _save_mapping_row(plan)
    st.markdown(f"**3 · Preview** · the first {plural(len(plan.preview), 'row')} as they will be stored")
    _preview(kind, plan)
    st.markdown("**4 · Check, then import**")
    _check_and_import(kind, plan_key, plan)


def _another_sheet(kind: str, s: dict[str, Any], first: ImportPlan) -> str | None:
    """For a workbook whose first sheet cannot be imported (a cover sheet, notes): the first sheet that can."""
    if s["sheet"] is not None or len(first.raw.sheets) < 2:
        return None
    for sheet in first.raw.sheets[1:]:
        try:
            _, plan = _plan(kind, {**s, "sheet": sheet, "fields": {}, "types": {}})
        except SegcoreError:
            continue
        if not plan.problem:
            return plan.raw.sheet
    return None


def _preview(kind: str, plan: ImportPlan) -> None:
    builtin, custom = _targets(kind)
    new_labels = {c.field: c.source for c in plan.columns if c.field in plan.new_fields}
    labels = {**builtin, **custom, **new_labels}
    config = {col: st.column_config.TextColumn(labels.get(col, col), help=f"Field {col}") for col in plan.preview.columns}
    st.dataframe(plan.preview, hide_index=True, column_config=config,
                 height=table_height(len(plan.preview), max_rows=10))


def _check_and_import(kind: str, plan_key: tuple[Any, ...], plan: ImportPlan) -> None:
    held = st.session_state.get(K_REPORT)
    report = held[1] if held and held[0] == plan_key else None
    if report is None:
        if plan.problem:
            st.error(plan.problem[0].upper() + plan.problem[1:] + ".", icon=":material/key_off:")
        blocked = bool(plan.ambiguous) or bool(plan.problem)
        if st.button("Check the file", type="primary", icon=":material/rule:", key="dt.imp.check", disabled=blocked,
                     help="Every row is checked against the data rules and the stored data; nothing is written."):
            slot = st.empty()
            _, progress = _progress_bar("Checking the file…", slot)
            with state.core_errors():
                st.session_state[K_REPORT] = (plan_key, run_import(db, plan, dry_run=True,
                                                                   progress=progress, user=state.user()), None)
                slot.empty()
                st.rerun()
        elif blocked:
            st.caption("Choose the date order first (under Options).")
        return
    _report_view(report, applied=False)
    if report.rows_valid == 0:
        st.error("No row can be imported: change the matches above, or fix the file and choose it again.")
        return
    choices = {"valid": f"Import the {plural(report.rows_valid, 'valid row')}", "nothing": "Import nothing"}
    if report.rows_rejected == 0:
        choices = {"valid": f"Import all {plural(report.rows_valid, 'row')}", "nothing": "Import nothing"}
    choice = st.radio("What now?", list(choices), format_func=choices.get, key=f"dt.choice.{kind}", horizontal=True)
    if st.button("Go", type="primary", key=f"dt.go.{kind}"):
        if choice == "nothing":
            _forget_file()
            state.flash("info", "Nothing was imported.")
            st.rerun()
        _, progress = _progress_bar("Importing…")
        with state.core_errors():  # an ImportRejected (data changed since the check) is one red line, here
            s = st.session_state[K_SETTINGS]
            result = run_import(db, plan, empty_clears=bool(s["empty"]) and kind == "contacts",
                                progress=progress, user=state.user())
            if kind == "outcomes":
                forget_outcomes()  # campaign results and base rates count the new outcomes at once
            st.session_state[K_REPORT] = (plan_key, report, result)
            st.rerun()


# --------------------------------------------------------------------------------------------- custom fields


def _custom_fields_section() -> None:
    fields = list_custom_fields(db)
    if not fields:
        st.caption("None yet. An import makes one for every column that matches no built-in field; then filter on "
                   "it like on any field.")
        return
    table = pd.DataFrame({
        "name": [f.name for f in fields], "label": [f.label for f in fields], "type": [f.type for f in fields],
        "contacts": [f.contacts for f in fields], "used_by": [", ".join(f.used_by) for f in fields],
    })  # fmt: skip
    st.dataframe(table, hide_index=True, height=table_height(len(table), max_rows=8), column_config={
        "name": st.column_config.TextColumn("Filter name", width=115),
        "label": st.column_config.TextColumn("Label", width=130),
        "type": st.column_config.TextColumn("Type", width=75),
        "contacts": st.column_config.NumberColumn("Contacts", format="%,d", width=85,
                                                  help="Contacts that have a value"),
        "used_by": st.column_config.TextColumn("Used by", help="Saved criteria and dynamic segments that filter "
                                                               "on the field: it cannot be deleted or retyped"),
    })  # fmt: skip
    by_name = {f.name: f for f in fields}
    pending = st.session_state.pop(K_CF_NEXT, None)
    if pending in by_name:
        st.session_state[W_CF_PICK] = pending
    if st.session_state.get(W_CF_PICK) not in by_name:
        st.session_state[W_CF_PICK] = fields[0].name
    pick = st.selectbox("Field", list(by_name), key=W_CF_PICK, on_change=_forget_cf_inputs,
                        format_func=lambda v: f"{by_name[v].label} ({v}, {by_name[v].type})")
    info = by_name[pick]
    if (refusal := state.refusal("fields.edit")) is not None:
        st.caption(refusal)
        return
    rename, retype, remove = st.tabs(["Rename", "Change the type", "Delete"])
    with rename:
        state.seed_widget("dt.cf.name", info.name)
        state.seed_widget("dt.cf.label", info.label)
        with st.container(horizontal=True, vertical_alignment="bottom"):
            st.text_input("Filter name", key="dt.cf.name", max_chars=40,
                          help="Lower-case letters, digits and _; saved filters that use the field follow the new "
                               "name.")
            st.text_input("Label", key="dt.cf.label", max_chars=200, help="How pages and charts name the field.")
            clicked = st.button("Rename", key="dt.cf.rename", icon=":material/edit:")
        if clicked:
            new_name = (st.session_state.get("dt.cf.name") or "").strip()
            label = (st.session_state.get("dt.cf.label") or "").strip()
            with state.core_errors():
                rename_custom_field(db, info.name, new_name if new_name != info.name else None,
                                    label=label if label != info.label else None, user=state.user())
                what = [f"named {new_name}"] if new_name != info.name else []
                what += [f"labelled '{label}'"] if label != info.label else []
                state.flash("success", f"Custom field {info.name}: " + (" and ".join(what) or "nothing changed")
                            + ".")
                st.session_state[K_CF_NEXT] = new_name
                _forget_cf_inputs()
                st.rerun()
    with retype:
        state.seed_widget("dt.cf.type", info.type)
        with st.container(horizontal=True, vertical_alignment="bottom"):
            new_type = st.selectbox("New type", list(CUSTOM_TYPES), key="dt.cf.type", help=TYPE_HELP)
            if new_type == "date" and info.type != "date":
                st.selectbox("Date order", list(DATE_ORDERS), key="dt.cf.order", format_func=DATE_LABELS.get)
            clicked = st.button("Change type", key="dt.cf.retype", icon=":material/swap_horiz:",
                                disabled=new_type == info.type)
        st.caption("Every stored value must read as the new type, or nothing changes.")
        if clicked:
            with state.core_errors():
                moved = retype_custom_field(db, info.name, new_type,
                                            date_order=st.session_state.get("dt.cf.order") or "auto", user=state.user())
                state.flash("success", f"Custom field {info.name} is now a {new_type} field "
                                       f"({plural(moved, 'value')} converted).")
                _forget_cf_inputs()
                st.rerun()
    with remove:
        with st.container(horizontal=True, vertical_alignment="center"):
            sure = st.checkbox(f"Delete {info.name} and its {plural(info.contacts, 'value')}", key="dt.cf.sure")
            clicked = st.button("Delete field", key="dt.cf.delete", icon=":material/delete:", disabled=not sure)
        if info.used_by:
            st.caption("Used by " + ", ".join(info.used_by) + ": change those first.")
        if clicked:
            with state.core_errors():
                delete_custom_field(db, info.name, user=state.user())
                state.flash("success", f"Custom field {info.name} deleted.")
                _forget_cf_inputs()
                st.rerun()


def _forget_cf_inputs() -> None:
    for k in ("dt.cf.name", "dt.cf.label", "dt.cf.type", "dt.cf.order", "dt.cf.sure"):
        st.session_state.pop(k, None)


def _saved_mappings_section() -> None:
    saved = list_mappings(db)
    if not saved:
        st.caption("None yet. Save a mapping while importing, and a file with the same columns gets it again.")
        return
    may_delete = state.can("import")
    for m in saved:
        columns = m["mapping"].get("columns", []) if isinstance(m.get("mapping"), dict) else []
        with st.container(horizontal=True, vertical_alignment="center"):
            st.markdown(f"**{m['name']}** · {m['kind']} · {plural(len(columns), 'column')} · saved "
                        f"{when(m.get('created_at'))}" + (f" by {m['created_by']}" if m.get("created_by") else ""))
            if may_delete and st.button("Delete", key=f"dt.map.del.{m['name']}", icon=":material/delete:",
                                        type="tertiary"):
                with state.core_errors():
                    delete_mapping(db, m["name"], user=state.user())
                    st.session_state[K_MAPPINGS_VERSION] = st.session_state.get(K_MAPPINGS_VERSION, 0) + 1
                    state.flash("success", f"Mapping '{m['name']}' deleted.")
                    st.rerun()


# --------------------------------------------------------------------------------------------- export, settings


def _export_section() -> None:
    segments = list_segments(db)
    if not segments:
        st.info("No segment to export yet: create one on **Segments**.", icon=":material/info:")
        return
    by_no = {s.no: s for s in segments}
    nos = list(by_no)
    current = state.current_segment_no()
    state.seed_widget("dt.exp.seg", current if current in by_no else nos[0])
    no = st.selectbox("Segment", nos, key="dt.exp.seg",
                      format_func=lambda v: f"{v} · {by_no[v].description} ({plural(by_no[v].size, 'member')})")
    info = by_no[no]
    if (refusal := state.refusal("segment.export", owner=info.owner)) is not None:
        st.caption(refusal)
        return
    scope = choose_scope(db, no, key="dt.exp.group")
    if scope is None:
        return
    with state.core_errors():
        st.caption(f"{plural(scope.count, 'member')} ({scope.label}) with every contact field, in the import format. "
                   "A CSV cell a spreadsheet would run as a formula is prefixed with ' ; in Excel it is a text cell.")
        # Each file is made when asked for (with progress), then kept for this segment version and group only.
        files: dict[str, Any] = st.session_state.setdefault(K_FILES, {})
        row, slot = st.container(horizontal=True), st.empty()
        for fmt, label, mime in FILE_FORMATS:
            key = (no, info.version, scope.group, fmt)
            data = files.get(key)
            if data is None:
                if row.button(f"Prepare {label}", icon=":material/description:", key=f"dt.exp.prepare.{fmt}"):
                    _, progress = _progress_bar(f"Writing {label}…", slot)
                    for old in [k for k in files if k[:3] != (no, info.version, scope.group)]:
                        del files[old]  # files of another segment, version or group are stale
                    files[key] = export_members(db, no, fmt, group=scope.group, progress=progress, user=state.user())
                    st.rerun()
                continue
            row.download_button(
                f"Download {label} ({_size(len(data))})", data, file_name=scope.file_name(fmt), mime=mime,
                icon=":material/download:", type="primary", key=f"dt.exp.{fmt}", on_click="ignore",
            )


def _setting_help(spec: Any) -> str:
    return f"{spec.help[0].upper()}{spec.help[1:]}. Default {spec.default:,}."


def _settings_section() -> None:
    current = settings_of(db)
    with st.form("dt.settings", border=False, enter_to_submit=False):
        # Numbers in one row of equal columns, switches below in a row of their own width: a switch squeezed into
        # a number's column cut its label ("Four-ey…").
        numbers = [spec for spec in SETTINGS.values() if not spec.switch]
        switches = [spec for spec in SETTINGS.values() if spec.switch]
        wanted: dict[str, int] = {}
        for col, spec in zip(st.columns(len(numbers)), numbers, strict=True):
            wanted[spec.key] = int(col.number_input(spec.label, min_value=spec.minimum, max_value=spec.maximum,
                                                    value=current[spec.key], step=1, key=f"dt.set.{spec.key}",
                                                    help=_setting_help(spec)))
        with st.container(horizontal=True, gap="large"):
            for spec in switches:
                wanted[spec.key] = int(st.toggle(spec.label, value=bool(current[spec.key]), key=f"dt.set.{spec.key}",
                                                 help=_setting_help(spec), width="content"))
        if st.form_submit_button("Save settings", icon=":material/save:"):
            changed = {k: v for k, v in wanted.items() if v != current[k]}
            if not changed:
                st.info("Nothing changed.")
                return
            with state.core_errors():
                set_settings(db, changed, user=state.user())
                state.flash("success", "Saved: " + ", ".join(f"{SETTINGS[k].label.lower()} {n(v)}"
                                                               for k, v in changed.items()) + ".")
                st.rerun()


# --------------------------------------------------------------------------------------------- page

st.subheader("Import", anchor=False)
# Import and settings are an administrator's: hidden from the others (a courtesy: segcore refuses them anyway).
if state.can("import"):
    kind = st.segmented_control("What", list(KINDS), key="dt.kind", default="contacts", required=True,
                                format_func=KINDS.get, label_visibility="collapsed") or "contacts"
    _import_section(kind)
else:
    st.caption("Importing data needs the admin role.")

st.divider()
st.subheader("Sources", anchor=False, help="Warehouse mode: contacts that stay in Spark. A segment is built over "
             "this database's contacts or over one source, chosen when it is created.")
sources_section(db)

st.divider()
fields_col, exp = st.columns([3, 2], gap="large")
with fields_col:
    st.subheader("Custom fields", anchor=False)
    _custom_fields_section()
    with st.expander("Saved mappings"):
        _saved_mappings_section()
with exp:
    st.subheader("Export a segment", anchor=False)
    _export_section()

st.divider()
st.subheader("Settings", anchor=False)
if state.can("settings"):
    _settings_section()
else:
    st.caption("Changing settings needs the admin role.")
auth.first_admin_form(db)
if auth.has_accounts(db) and state.can("users"):
    st.divider()
    st.subheader("Team", anchor=False)
    team_section(db)
