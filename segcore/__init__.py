"""Segment Explorer's core: data model, import, filter language, segment engine, statistics and CLI.

No Streamlit here, ever: the pages call this package, and so do the command line and the tests.
"""

from __future__ import annotations

from ._db import Database, default_url, resolve_url
from ._errors import (
    ConfigError,
    ConflictError,
    FilterError,
    FilterSyntaxError,
    ImportRejected,
    NotFoundError,
    RefusedError,
    SegcoreError,
    UsageError,
)
from ._filter_describe import describe
from ._filter_sql import compile_filter, matching_ids
from ._filter_text import parse_text, to_text
from ._filter_tree import EMPTY, Condition, Group, Node, Not, Related, from_json, to_json, validate
from ._importer import (
    ImportReport,
    RowError,
    import_contacts,
    import_interactions,
    validate_contacts,
    validate_interactions,
)

__all__ = [
    "EMPTY",
    "Condition",
    "ConfigError",
    "ConflictError",
    "Database",
    "FilterError",
    "FilterSyntaxError",
    "Group",
    "ImportRejected",
    "ImportReport",
    "Node",
    "Not",
    "NotFoundError",
    "RefusedError",
    "Related",
    "RowError",
    "SegcoreError",
    "UsageError",
    "compile_filter",
    "default_url",
    "describe",
    "from_json",
    "import_contacts",
    "import_interactions",
    "matching_ids",
    "parse_text",
    "resolve_url",
    "to_json",
    "to_text",
    "validate",
    "validate_contacts",
    "validate_interactions",
]
