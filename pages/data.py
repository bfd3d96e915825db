"""Data: import contacts and interactions (validation report, then import the valid rows or nothing); export;
the settings (minimum segment size, where previews run)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from segcore._engine import list_segments
from segcore._export import check_exportable, export_members
from segcore.imports import (
    CONTACT_COLUMNS,
    INTERACTION_COLUMNS,
    ImportReport,
    import_contacts,
    import_interactions,
    validate_contacts,
    validate_interactions,
)
from segcore._settings import SETTINGS, set_settings, settings_of
from ui import frame, state
from ui.format import n, plural
from ui.tables import table_height

KINDS: dict[str, dict[str, Any]] = {
    "contacts": {"validate": validate_contacts, "import": import_contacts, "columns": CONTACT_COLUMNS,
                 "required": "contact_no, type, name"},
    "interactions": {"validate": validate_interactions, "import": import_interactions, "columns": INTERACTION_COLUMNS,
                     "required": "contact_no, date, template"},
}  # fmt: skip
K_REPORT = "sx.import.report"
K_FILES = "sx.export.files"
FILE_FORMATS = (
    ("csv", "CSV", "text/csv"),
    ("xlsx", "Excel", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
)

frame.page_guard()
db = state.get_db()
frame.header("Data", "Bring contacts and interactions in from CSV files; take a segment's members out.")


def _progress_bar(label: str, where: Any = st) -> tuple[Any, Callable[[int, int, str], None]]:
    bar = where.progress(0.0, text=label)

    def progress(done: int, total: int, stage: str) -> None:
        bar.progress(min(1.0, done / total) if total else 1.0, text=f"{stage.capitalize()}: {n(done)} of {n(total)}")

    return bar, progress


def _report_view(report: ImportReport, *, applied: bool) -> None:
    cols = st.columns(4)
    cols[0].metric("Rows read", n(report.rows_total), border=True)
    cols[1].metric("Valid", n(report.rows_valid), border=True)
    cols[2].metric("Rejected", n(report.rows_rejected), border=True)
    if report.kind == "contacts":
        cols[3].metric("New / updated" if not applied else "Inserted / updated",
                       f"{n(report.inserted)} / {n(report.updated)}", border=True)
    else:
        cols[3].metric("To add" if not applied else "Added", n(report.inserted), border=True)
    notes = [f"File encoding: {report.encoding}"]
    if report.unknown_columns:
        notes.append("unknown columns kept as attributes: " + ", ".join(report.unknown_columns))
    st.caption("; ".join(notes))
    if report.errors:
        st.markdown(f"**Rejected rows** ({n(report.errors_total)} problems)")
        st.dataframe(report.to_frame()[["line", "column", "value", "reason"]], hide_index=True,
                     height=table_height(len(report.errors), max_rows=10),
                     column_config={"line": st.column_config.NumberColumn("Line", format="%d", help="Line in the file"),
                                    "column": "Column", "value": "Value", "reason": "Reason"})
        if report.errors_truncated:
            st.caption(f"The first {n(len(report.errors))} problems are listed.")


def _import_section(kind: str) -> None:
    spec = KINDS[kind]
    # A new key empties the uploader: "Import nothing" forgets the file.
    generation = st.session_state.get(f"sx.upload_gen.{kind}", 0)
    upload = st.file_uploader(
        f"{kind.capitalize()} file (CSV)", type=["csv", "txt"], key=f"dt.up.{kind}.{generation}",
        help=f"Comma-separated, first line = header. Required columns: {spec['required']}. "
        f"Known columns: {', '.join(spec['columns'])}. UTF-8 (with or without BOM) or Windows-1252.",
    )
    if upload is None:
        st.caption("Choose a file: it is checked first, and nothing is written until you say so.")
        return
    token = (kind, upload.file_id)
    held = st.session_state.get(K_REPORT)
    if not held or held[0] != token:
        slot = st.empty()
        _, progress = _progress_bar("Checking the file…", slot)
        with state.core_errors():
            st.session_state[K_REPORT] = (token, spec["validate"](db, upload, progress=progress), None)
        slot.empty()
        if K_REPORT not in st.session_state or st.session_state[K_REPORT][0] != token:
            return
    _, report, done = st.session_state[K_REPORT]
    if done is not None:
        st.success(done.summary())
        _report_view(done, applied=True)
        return
    _report_view(report, applied=False)
    if report.rows_valid == 0:
        st.error("No row can be imported: fix the file and choose it again.")
        return
    choices = {"valid": f"Import the {plural(report.rows_valid, 'valid row')}", "nothing": "Import nothing"}
    if report.rows_rejected == 0:
        choices = {"valid": f"Import all {plural(report.rows_valid, 'row')}", "nothing": "Import nothing"}
    choice = st.radio("What now?", list(choices), format_func=choices.get, key=f"dt.choice.{kind}", horizontal=True)
    if st.button("Go", type="primary", key=f"dt.go.{kind}"):
        if choice == "nothing":
            st.session_state.pop(K_REPORT, None)
            st.session_state[f"sx.upload_gen.{kind}"] = generation + 1
            state.flash("info", "Nothing was imported.")
            st.rerun()
        _, progress = _progress_bar("Importing…")
        with state.core_errors():  # an ImportRejected (data changed since the check) is one red line
            result = spec["import"](db, upload, strict=False, progress=progress)
            st.session_state[K_REPORT] = (token, report, result)
            st.rerun()


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
                      format_func=lambda v: f"{v} · {by_no[v].description} ({n(by_no[v].size)} members)")
    info = by_no[no]
    with state.core_errors():
        check_exportable(db, no)
        st.caption("Members with every contact field, in the import format. Text that a spreadsheet would run as a "
                   "formula is prefixed with ' .")
        # Each file is made when asked for (with progress), then kept for this segment version only.
        files: dict[str, Any] = st.session_state.setdefault(K_FILES, {})
        row, slot = st.container(horizontal=True), st.empty()
        for fmt, label, mime in FILE_FORMATS:
            key = (no, info.version, fmt)
            data = files.get(key)
            if data is None:
                if row.button(f"Prepare {label}", icon=":material/description:", key=f"dt.exp.prepare.{fmt}"):
                    _, progress = _progress_bar(f"Writing {label}…", slot)
                    for old in [k for k in files if k[:2] != (no, info.version)]:
                        del files[old]  # files of another segment or version are stale
                    files[key] = export_members(db, no, fmt, progress=progress)
                    st.rerun()
                continue
            row.download_button(
                f"Download {label} ({_size(len(data))})", data, file_name=f"segment-{no}.{fmt}", mime=mime,
                icon=":material/download:", type="primary", key=f"dt.exp.{fmt}", on_click="ignore",
            )


def _settings_section() -> None:
    current = settings_of(db)
    with st.form("dt.settings", border=False, enter_to_submit=False):
        cols = st.columns(len(SETTINGS))
        wanted: dict[str, int] = {}
        for col, spec in zip(cols, SETTINGS.values(), strict=True):
            helptext = f"{spec.help[0].upper()}{spec.help[1:]}. Default {spec.default:,}."
            if spec.switch:
                wanted[spec.key] = int(col.toggle(spec.label, value=bool(current[spec.key]), key=f"dt.set.{spec.key}",
                                                  help=helptext))
            else:
                wanted[spec.key] = int(col.number_input(spec.label, min_value=spec.minimum, max_value=spec.maximum,
                                                        value=current[spec.key], step=1, key=f"dt.set.{spec.key}",
                                                        help=helptext))
        if st.form_submit_button("Save settings", icon=":material/save:"):
            changed = {k: v for k, v in wanted.items() if v != current[k]}
            if not changed:
                st.info("Nothing changed.")
                return
            with state.core_errors():
                set_settings(db, changed)
                state.flash("success", "Saved: " + ", ".join(f"{SETTINGS[k].label.lower()} {n(v)}"
                                                               for k, v in changed.items()) + ".")
                st.rerun()


def _size(nbytes: int) -> str:
    return f"{nbytes / 1_000_000:,.1f} MB" if nbytes >= 1_000_000 else f"{max(1, nbytes // 1000):,} KB"


imp, exp = st.columns([3, 2], gap="large")
with imp:
    st.subheader("Import", anchor=False)
    kind = st.segmented_control("What", list(KINDS), key="dt.kind", default="contacts", required=True,
                                format_func=str.capitalize, label_visibility="collapsed") or "contacts"
    _import_section(kind)
with exp:
    st.subheader("Export a segment", anchor=False)
    _export_section()

st.divider()
st.subheader("Settings", anchor=False)
_settings_section()
