"""The Data page's Sources section (warehouse mode): contact sources that stay in Spark — a Spark table or a
Parquet/CSV location, mapped to our fields — listed with the segments built over each; administrators add and
remove them; anyone may count one.

Every rule (the name, the Spark URL, the location, the mapping and its column types, the refusal to remove a source
a segment uses, who may) is segcore.spark's: this module draws the controls and says the core's answer, as one
sentence, by the control that caused it. Adding and counting start Spark (a local one takes several seconds the
first time), so both run only on a click, under a spinner.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from segcore import (
    Database,
    Location,
    Mapping,
    SegcoreError,
    SourceInfo,
    SourceSpec,
    add_source,
    list_sources,
    open_stored_source,
    read_mappings,
    remove_source,
    sources_in_use,
)
from ui import state
from ui.format import plural, sentence, when
from ui.tables import table_height

__all__ = ["THIS_DATABASE", "segment_sources", "source_label", "source_names", "sources_section"]

THIS_DATABASE = "This database"
DEFAULT_SPARK = "local[2]"
# Where contacts (or interactions) lie: a path's format, or a table.
WHERE = {"parquet": "Parquet files", "csv": "CSV files", "table": "Spark table"}
K_SHOWN = "sx.sources.shown"  # source name -> (row count, SparkSource.describe()): what "Show" found
K_FORM = "sx.sources.form"  # the add form's generation: a new one starts empty once a source is added
SLOT_ADD, SLOT_PICK = "src.add", "src.pick"
W_PICK = "src.pick"
SPARK_HELP = ("`local[2]` runs Spark inside the dashboard's process (Java 17 needed on this machine); "
              "`sc://HOST:15002` reaches a Spark Connect server next to your cluster.")
LOCATION_HELP = ("A table Spark knows (`catalog.schema.contacts`), or a file or folder as Spark sees it: a path on "
                 "the machine Spark runs on, or an `s3a://`, `abfss://` … address.")
MAPPING_HELP = ("Which column feeds which field, as a file import's saved mapping (`{\"columns\": {\"Customer Id\": "
                "\"contact_no\", …}}`, or `{\"contacts\": …, \"interactions\": …}`). Without one, columns are "
                "matched by their names (English, French and German) and every other column becomes a custom field "
                "of the source. A contact number column is needed.")


def source_names(db: Database) -> list[str]:
    """The stored sources' names, for a "Contacts from" choice (empty when none, or when they cannot be read)."""
    try:
        return [s.name for s in list_sources(db)]
    except SegcoreError:
        return []


def source_label(name: str | None) -> str:
    """How a page names where a segment's contacts come from."""
    return f"{name} (Spark)" if name else THIS_DATABASE


# --------------------------------------------------------------------------------------------- the list


def _table(sources: list[SourceInfo], using: dict[str, list[str]]) -> None:
    # A static table: a location is often a long path or URL, and a data grid cut it at its column's width with no
    # way to read the rest; here it wraps and shows whole.
    st.table(pd.DataFrame({
        "Name": [s.name for s in sources],
        "Spark": [s.spark_url for s in sources],
        "Contacts": [s.contacts.describe() for s in sources],
        "Interactions": [s.interactions.describe() if s.interactions else "" for s in sources],
        "Segments": [", ".join(using.get(s.name, [])) for s in sources],
        "Added": [f"{when(s.created_at)} UTC by {s.created_by}" for s in sources],
    }), hide_index=True)  # fmt: skip
    st.caption("Spark `local[N]` runs in this process, `sc://…` is a Spark Connect server. A source cannot be removed "
               "while segments are built over it.")


def _shown(rows: int, described: dict[str, Any]) -> None:
    """What "Show" found: the row count and the mapped fields, named by their labels, with the column feeding each."""
    fields = described.get("fields") or {}
    custom = described.get("custom_fields") or {}
    labels = described.get("labels") or {}
    inter = described.get("interaction_fields") or {}
    inter_labels = described.get("interaction_labels") or {}
    st.markdown(f"**{described.get('name')}**: {plural(rows, 'contact')} in {described.get('contacts')}"
                + (f", interactions in {described['interactions']}" if described.get("interactions") else "")
                + f" · {plural(len(fields), 'mapped field')}")
    mapped = pd.DataFrame({
        "Field": [labels.get(f, f) for f in fields],
        "Column": list(fields.values()),
        "Kind": [f"custom field ({custom[f]})" if f in custom else "built-in" for f in fields],
        # What the Builder's text form and the command line write (`loyalty=GOLD`): a custom one cannot be guessed.
        "In text filters": list(fields),
    })  # fmt: skip
    st.dataframe(mapped, hide_index=True, height=table_height(len(mapped), max_rows=10), width=760, column_config={
        "Field": st.column_config.TextColumn(help="The field as filters' descriptions and charts name it"),
        "Column": st.column_config.TextColumn(help="The source's column that feeds it"),
        "Kind": st.column_config.TextColumn(help="A column that matches no built-in field becomes a custom field "
                                                 "of the source, typed from Spark's type"),
        "In text filters": st.column_config.TextColumn(help="How the Builder's text form and the command line name "
                                                            "it: loyalty=GOLD"),
    })  # fmt: skip
    if inter:
        st.caption("Interaction fields: " + ", ".join(f"{inter_labels.get(f, f)} ← {c}" for f, c in inter.items()))


def _show_and_remove(db: Database, sources: list[SourceInfo], may_write: bool) -> None:
    names = [s.name for s in sources]
    if st.session_state.get(W_PICK) not in names:
        st.session_state[W_PICK] = names[0]
    with st.container(horizontal=True, vertical_alignment="bottom"):
        pick = st.selectbox("Source", names, key=W_PICK, width=260)
        show = st.button("Show", key="src.show", icon=":material/visibility:",
                         help="Counts the source's contacts in Spark and lists its mapped fields.")
        remove = may_write and st.button(
            "Remove", key="src.remove", icon=":material/delete:",
            help="Forgets the source's definition (its data stay where they are); refused while a segment is built "
                 "over it.")  # fmt: skip
    shown: dict[str, tuple[int, dict[str, Any]]] = st.session_state.setdefault(K_SHOWN, {})
    state.show_flashes(SLOT_PICK)
    if show:
        with st.spinner(f"Reading {pick} in Spark…"):
            try:
                source = open_stored_source(db, pick)
                shown[pick] = (source.row_count(), source.describe())
            except SegcoreError as e:
                shown.pop(pick, None)
                st.error(sentence(e), icon=":material/error:")
    if remove:
        try:
            remove_source(db, pick, user=state.user())
        except SegcoreError as e:
            st.error(sentence(e), icon=":material/error:")
        else:
            shown.pop(pick, None)
            st.session_state.pop(W_PICK, None)
            state.flash("success", f"Source {pick} removed; its data stay where they are.", SLOT_PICK)
            st.rerun()
    if pick in shown:
        _shown(*shown[pick])


# --------------------------------------------------------------------------------------------- adding


def _mapping_of(upload: Any) -> tuple[Mapping | None, Mapping | None]:
    """The contacts and interactions mappings of an uploaded JSON file (as `source add --mapping` reads one)."""
    if upload is None:
        return None, None
    return read_mappings(upload.getvalue(), upload.name)


def _location(where: str, text: str) -> Location:
    text = text.strip()
    return Location("table", text) if where == "table" else Location("path", text, where)


def _add_form(db: Database) -> None:
    gen = st.session_state.get(K_FORM, 0)

    def key(name: str) -> str:
        return f"src.new.{name}.{gen}"

    with st.form(f"src.add.{gen}", border=True, enter_to_submit=False):
        st.markdown("**Add a source**")
        a, b = st.columns([2, 3])
        name = a.text_input("Name", key=key("name"), max_chars=60, placeholder="e.g. LAKE",
                            help="1 to 60 letters, digits, '-', '_' or '.'")
        spark = b.text_input("Spark", value=DEFAULT_SPARK, key=key("spark"), max_chars=300, help=SPARK_HELP)
        c, d = st.columns([2, 5])
        where = c.selectbox("Contacts are in", list(WHERE), format_func=WHERE.get, key=key("where"))
        location = d.text_input("Contacts location", key=key("location"), max_chars=1000,
                                placeholder="/data/contacts.parquet, or catalog.schema.contacts", help=LOCATION_HELP)
        e, f = st.columns([2, 5])
        iwhere = e.selectbox("Interactions are in", list(WHERE), format_func=WHERE.get, key=key("iwhere"))
        ilocation = f.text_input("Interactions location (optional)", key=key("ilocation"), max_chars=1000,
                                 placeholder="empty: no interactions", help="Contact number, date and template "
                                 "columns at least; leave empty for a source without interactions.")
        upload = st.file_uploader("Column mapping (optional)", type=["json"], key=key("mapping"), help=MAPPING_HELP)
        st.caption("Without a mapping file, columns are matched by their names. Adding reads the source's columns "
                   "and checks their types in Spark; nothing is stored unless it fits.")
        submitted = st.form_submit_button("Add source", type="primary", icon=":material/add:")
        state.show_flashes(SLOT_ADD)
        if not submitted:
            return
        with st.spinner("Checking the source in Spark…"):
            try:
                mapping, imapping = _mapping_of(upload)
                spec = SourceSpec((name or "").strip(), (spark or "").strip(), _location(where, location or ""),
                                  mapping, _location(iwhere, ilocation) if (ilocation or "").strip() else None,
                                  imapping)
                source = add_source(db, spec, user=state.user())
            except SegcoreError as e:
                st.error(sentence(e), icon=":material/error:")
                return
        fields = len(source.describe()["fields"])
        state.flash("success", f"Source {spec.name} added: {spec.contacts.describe()}, {plural(fields, 'mapped field')}."
                    " Choose it under “Contacts from” when you create a segment.", SLOT_ADD)
        st.session_state[K_FORM] = gen + 1
        st.session_state[W_PICK] = spec.name
        st.rerun()


# --------------------------------------------------------------------------------------------- the section


def sources_section(db: Database) -> None:
    """The sources, the segments over each, Show for anyone; Add and Remove for who may (segcore's `import`)."""
    may_write = state.can("import")
    try:
        sources = list_sources(db)
        using = sources_in_use(db)
    except SegcoreError as e:
        st.error(sentence(e))
        return
    if sources:
        _table(sources, using)
        _show_and_remove(db, sources, may_write)
    else:
        st.caption("None yet. A source is a Spark table or a Parquet or CSV location holding contacts; segments "
                   "built over it read them where they lie.")
        state.show_flashes(SLOT_PICK)  # "removed": the last source is gone, and its row of buttons with it
    if may_write:
        _add_form(db)
    elif (why := state.refusal("import")) is not None:
        st.caption(f"Sources are added and removed by whoever may import data. {why}")


def segment_sources(segments: list[Any]) -> dict[str, str]:
    """Segment number -> the source it is built over, for the segments over a source (the others: this database)."""
    return {s.no: s.source for s in segments if s.source}
