"""Which members an export holds: for a logged segment the contacted members by default, the control group only
when asked for by name (the core's `export_scope` decides what may go out; this only asks and shows it)."""

from __future__ import annotations

import streamlit as st

from segcore import EXPORT_GROUP_LABELS, EXPORT_GROUPS, Database, ExportScope, SegcoreError, export_scope
from ui.format import plural


def choose_scope(db: Database, no: str, key: str) -> ExportScope | None:
    """The export's scope, with a group choice for a logged segment; None (and the reason shown) when refused."""
    try:
        scope = export_scope(db, no)
    except SegcoreError as e:
        st.warning(str(e), icon=":material/block:")
        return None
    if not scope.logged or not scope.holdout_count:
        return scope
    group = st.radio(
        "Members to export", EXPORT_GROUPS, format_func=lambda g: EXPORT_GROUP_LABELS[g].capitalize(), key=key,
        help=f"Segment {no} was logged with a control group of {plural(scope.holdout_count, 'member')}, who were "
        "not contacted. Sending to them from another tool would void the test: they are left out unless you ask.",
    )
    try:
        return export_scope(db, no, group)
    except SegcoreError as e:
        st.warning(str(e), icon=":material/block:")
        return None
