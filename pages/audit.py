"""Audit: who did what and when, from segcore's append-only audit trail; filter by person, object, kind and dates,
download as CSV. Reading it needs the manager role once the database has accounts (segcore refuses otherwise, and
the refusal shows here as one line)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from segcore import SegcoreError, audit_rows
from ui import frame, state
from ui.format import n, plural, sentence
from ui.tables import table_height

EVERYONE, ANY = "__everyone__", "__any__"
SHOWN = 1_000  # rows drawn in the table; the CSV has them all
OPTIONS_FROM = 5_000  # recent rows the person, kind and object lists are made from
COLUMNS = {"at": "When (UTC)", "user": "Who", "kind": "Kind", "object": "Object", "summary": "What",
           "before": "Before", "after": "After"}

frame.page_guard()
db = state.get_db()
frame.header("Audit", "Every write, sign-in and failed sign-in, newest first. The trail is append-only: nothing in "
             "the app edits or deletes it.")

try:
    recent = audit_rows(db, limit=OPTIONS_FROM, reader=state.user())
except SegcoreError as e:
    st.error(sentence(e), icon=":material/lock:")
    st.stop()

people = sorted({r.user for r in recent if r.user})
kinds = sorted({r.kind for r in recent} | {r.kind.split(".")[0] for r in recent})
objects = sorted({r.object for r in recent if r.object})
today = dt.datetime.now(dt.UTC).date()

with st.container(horizontal=True):
    person = st.selectbox("Person", [EVERYONE, *people], key="au.user", width=220,
                          format_func=lambda p: "Everyone" if p == EVERYONE else p)
    kind = st.selectbox("Kind", [ANY, *kinds], key="au.kind", width=240,
                        format_func=lambda k: "Any kind" if k == ANY else (k if "." in k else f"{k}.*"),
                        help="A family (segment.*) or one kind (segment.approve).")
    obj = st.selectbox("Object", [ANY, *objects], key="au.object", width=260,
                       format_func=lambda o: "Any object" if o == ANY else o)
    dates = st.date_input("Dates (UTC)", value=(today - dt.timedelta(days=30), today), key="au.dates", width=240,
                          max_value=today, format="YYYY-MM-DD")

start, end = (dates[0], dates[1]) if isinstance(dates, tuple) and len(dates) == 2 else (
    (dates[0], None) if isinstance(dates, tuple) and dates else (None, None))
try:
    rows = audit_rows(db, user=None if person == EVERYONE else person, kind=None if kind == ANY else kind,
                      object=None if obj == ANY else obj, since=start, until=end, reader=state.user())
except SegcoreError as e:
    st.error(sentence(e), icon=":material/lock:")
    st.stop()

if not rows:
    st.info("No audit row matches these filters.", icon=":material/info:")
else:
    table = pd.DataFrame([r.as_dict() for r in rows]).drop(columns=["id"]).rename(columns=COLUMNS)
    table["When (UTC)"] = pd.to_datetime(table["When (UTC)"])
    # A change with nothing before (a creation) or after (a deletion) shows an empty cell, not "None".
    table[["Before", "After"]] = table[["Before", "After"]].fillna("")
    st.caption(plural(len(rows), "row") + (f", the newest {n(SHOWN)} shown; the CSV has all" if len(rows) > SHOWN
                                           else ""))
    st.dataframe(table.head(SHOWN), hide_index=True, key="au.table", height=table_height(min(len(rows), SHOWN),
                                                                                          max_rows=16),
                 column_config={"When (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
                                "What": st.column_config.TextColumn(width="medium")})
    st.download_button("Download CSV", table.to_csv(index=False).encode("utf-8"), icon=":material/download:",
                       file_name=f"audit-{today.isoformat()}.csv", mime="text/csv", key="au.csv",
                       on_click="ignore")
state.show_leftover_flashes()
