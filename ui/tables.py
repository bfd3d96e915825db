"""Column headings and formats for contact tables, so every page labels a field the same way."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from segcore import (
    BUILTIN,
    FieldRegistry,
)

# Empty cells show as nothing, not as a grey "None".
PLACEHOLDER = ""
_SHORT = {"company_no": "Company", "acquisition_source": "Source", "contact_no": "Contact no."}


def contact_columns(
    columns: Sequence[str], *, fields: FieldRegistry | None = None, **extra: Any
) -> dict[str, Any]:
    """st.dataframe column_config for contact columns: field labels from the registry (`fields`, the database's, for
    custom fields; the built-in fields when None), numbers and dates formatted."""
    registry = fields or BUILTIN
    config: dict[str, Any] = {}
    for name in columns:
        spec = registry.get(name)
        label = _SHORT.get(name) or (spec.label if spec else name.replace("_", " ").capitalize())
        if spec is not None and spec.type == "number":
            fmt = "%,d" if spec.integer else "%,.2f"
            config[name] = st.column_config.NumberColumn(label, format=fmt)
        elif spec is not None and spec.type == "date":
            config[name] = st.column_config.DateColumn(label, format="YYYY-MM-DD")
        else:
            config[name] = st.column_config.TextColumn(label)
    config.update(extra)
    return config


def table_height(rows: int, *, max_rows: int = 12) -> int:
    """Fit the table to its rows (header + rows), up to max_rows before it scrolls."""
    return 38 + 35 * max(1, min(rows, max_rows))
