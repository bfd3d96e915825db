"""The one exception tree of segcore.

SegcoreError
├── UsageError            the request itself is malformed (CLI exit 2)
│   ├── FilterError       a filter tree or text that does not fit the language
│   │   └── FilterSyntaxError   text form that does not parse; carries the position
│   └── ConfigError       a bad database URL or setting
└── RefusedError          a well-formed request the data does not allow (CLI exit 1)
    ├── NotFoundError     a segment, contact, criteria code ... that does not exist
    ├── ConflictError     the record changed under the caller ("segment changed, review and retry")
    └── ImportRejected    an import that was refused as a whole; carries the report

Every message is meant for a person: one line, no traceback, no SQL.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConfigError",
    "ConflictError",
    "FilterError",
    "FilterSyntaxError",
    "ImportRejected",
    "NotFoundError",
    "RefusedError",
    "SegcoreError",
    "UsageError",
]


class SegcoreError(Exception):
    """Base of every error segcore raises on purpose."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(SegcoreError):
    """The request is malformed: fix the command, the filter or the setting."""

    exit_code = 2


class FilterError(UsageError):
    """A filter that does not fit the language: unknown field, wrong operator, wrong value type."""


class FilterSyntaxError(FilterError):
    """Text form that does not parse; `position` counts the characters before the fault (SPEC: `age=25..x: position 8`)."""

    def __init__(self, message: str, *, text: str, position: int) -> None:
        self.text = text
        self.position = position
        self.reason = message
        super().__init__(f"{text}: position {position}: {message}")


class ConfigError(UsageError):
    """A bad database URL or setting."""


class RefusedError(SegcoreError):
    """A well-formed request that the current data or state does not allow."""

    exit_code = 1


class NotFoundError(RefusedError):
    """Something named by the user does not exist."""


class ConflictError(RefusedError):
    """The record changed since the caller looked at it; nothing was written."""


class ImportRejected(RefusedError):
    """An import refused as a whole; `report` says which rows failed and why."""

    def __init__(self, message: str, report: Any = None) -> None:
        super().__init__(message)
        self.report = report
