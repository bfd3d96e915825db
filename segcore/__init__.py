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
from ._importer import (
    ImportReport,
    RowError,
    import_contacts,
    import_interactions,
    validate_contacts,
    validate_interactions,
)

__all__ = [
    "ConfigError",
    "ConflictError",
    "Database",
    "FilterError",
    "FilterSyntaxError",
    "ImportRejected",
    "ImportReport",
    "NotFoundError",
    "RefusedError",
    "RowError",
    "SegcoreError",
    "UsageError",
    "default_url",
    "import_contacts",
    "import_interactions",
    "resolve_url",
    "validate_contacts",
    "validate_interactions",
]
