"""What an import hands back: the report (rows read, valid, rejected, written; the errors with line and column;
how the file was read and mapped) and the error log the stages fill column by column."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._words import plural

__all__ = ["MAX_ERRORS_KEPT", "ErrorLog", "ImportReport", "RowError", "row_errors"]

# Keep the first errors only: a garbage file of a million rows must not build a million messages.
MAX_ERRORS_KEPT = 1000


@dataclass(frozen=True)
class RowError:
    """One rejected cell or row: `line` is the line in the file (the header is line 1)."""

    line: int
    column: str
    reason: str
    value: str = ""

    @property
    def message(self) -> str:
        where = f"line {self.line}, column {self.column}" if self.column else f"line {self.line}"
        return f"{where}: '{self.value}' {self.reason}" if self.value else f"{where}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column, "reason": self.reason, "value": self.value}


@dataclass(frozen=True)
class ImportReport:
    """What an import found and did; for validate_*, inserted/updated say what an import would do."""

    kind: str
    encoding: str
    rows_total: int
    rows_valid: int
    rows_rejected: int
    inserted: int = 0
    updated: int = 0
    applied: bool = False
    unknown_columns: tuple[str, ...] = ()
    errors: tuple[RowError, ...] = ()
    errors_total: int = 0
    # How the file was read ("CSV, ';' separated, Windows-1252"), mapped (one line a column) and its values read
    # (one line a column whose rule is worth saying, e.g. "Birth date: dates DD/MM/YYYY").
    source: str = ""
    mapping: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    new_fields: tuple[str, ...] = ()

    @property
    def errors_truncated(self) -> bool:
        return self.errors_total > len(self.errors)

    def summary(self) -> str:
        """One line for a person."""
        read = self.source or self.encoding
        head = f"{self.kind}: {plural(self.rows_total, 'row')} read ({read}), {self.rows_valid:,} valid"
        head += f", {self.rows_rejected:,} rejected"
        if self.applied:
            head += f"; {self.inserted:,} inserted" + (
                f", {self.updated:,} updated" if self.kind in ("contacts", "outcomes") else ""
            )
        else:
            head += "; nothing written"
        if self.new_fields:
            head += "; new fields: " + ", ".join(self.new_fields)
        if self.unknown_columns:
            head += "; columns skipped: " + ", ".join(self.unknown_columns)
        return head

    def to_frame(self) -> pd.DataFrame:
        """The kept errors as a table (line, column, value, reason, message) for display."""
        return pd.DataFrame(
            {
                "line": [e.line for e in self.errors],
                "column": [e.column for e in self.errors],
                "value": [e.value for e in self.errors],
                "reason": [e.reason for e in self.errors],
                "message": [e.message for e in self.errors],
            },
            columns=["line", "column", "value", "reason", "message"],
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "kind": self.kind,
            "encoding": self.encoding,
            "rows_total": self.rows_total,
            "rows_valid": self.rows_valid,
            "rows_rejected": self.rows_rejected,
            "inserted": self.inserted,
            "updated": self.updated,
            "applied": self.applied,
            "unknown_columns": list(self.unknown_columns),
            "source": self.source,
            "mapping": list(self.mapping),
            "rules": list(self.rules),
            "new_fields": list(self.new_fields),
            "errors_total": self.errors_total,
            "errors_truncated": self.errors_truncated,
            "errors": [e.as_dict() for e in self.errors],
        }


# --------------------------------------------------------------------------------------------------------------------
# Errors collected column by column


class ErrorLog:
    """Failing cells gathered as small frames; turned into RowError values only for the first MAX_ERRORS_KEPT."""

    def __init__(self) -> None:
        self._parts: list[pd.DataFrame] = []

    def add(
        self, lines: np.ndarray, column: str, reason: str | np.ndarray, values: np.ndarray | str = ""
    ) -> None:
        if len(lines) == 0:
            return
        self._parts.append(
            pd.DataFrame(
                {
                    "line": np.asarray(lines, dtype=np.int64),
                    "column": column,
                    "reason": reason,
                    "value": values,
                }
            )
        )

    def frame(self) -> pd.DataFrame:
        if not self._parts:
            return pd.DataFrame({"line": [], "column": [], "reason": [], "value": []})
        out = pd.concat(self._parts, ignore_index=True)
        return out.sort_values("line", kind="stable", ignore_index=True)

    def copy(self) -> ErrorLog:
        """A log with the same errors so far, to add to without touching this one (a plan runs more than once)."""
        out = ErrorLog()
        out._parts = list(self._parts)
        return out

    def __bool__(self) -> bool:
        return bool(self._parts)


def _clip(value: Any) -> str:
    text = str(value).replace("\r", " ").replace("\n", " ")
    return text if len(text) <= 80 else text[:77] + "..."


def row_errors(errors: pd.DataFrame) -> tuple[tuple[RowError, ...], int]:
    head = errors.head(MAX_ERRORS_KEPT)
    kept = tuple(
        RowError(int(line), str(column), str(reason), _clip(value))
        for line, column, reason, value in zip(
            head["line"], head["column"], head["reason"], head["value"], strict=True
        )
    )
    return kept, len(errors)
