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

__all__ = [
    "ConfigError",
    "ConflictError",
    "Database",
    "FilterError",
    "FilterSyntaxError",
    "ImportRejected",
    "NotFoundError",
    "RefusedError",
    "SegcoreError",
    "UsageError",
    "default_url",
    "resolve_url",
]
