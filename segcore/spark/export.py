"""Our contacts as a source holds them: the columns of a Parquet copy of this database's contacts and interactions.

One wide row a contact: every stored built-in field as its own column (dates as dates, numbers as numbers), the
list fields as arrays of strings, the profile as `Q=A` items joined by `;`; the interactions one row each, keyed by
contact number. A source opened on such files needs no mapping (every column has its field's name) and reads the
same contacts as the database: the Spark tests (tests/spark_support.py) and the scale benchmark
(bench/scale_data.py) write them with these functions, so the two never disagree on a column.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from ..fields import LIST_FIELDS

__all__ = ["CONTACT_COLUMNS", "INTERACTION_COLUMNS", "LIST_COLUMNS", "contacts_table", "interactions_table"]

# Every stored built-in contact field (derived ones are computed by the source's views, list fields follow).
CONTACT_COLUMNS = (
    "contact_no", "type", "company_no", "name", "email", "phone", "city", "post_code", "territory", "salesperson",
    "country", "language", "gender", "birth_date", "acquisition_date", "last_purchase_date", "acquisition_source",
    "rating", "churn_risk", "total_spent", "purchase_count", "exclude_from_segments",
)  # fmt: skip
LIST_COLUMNS = (*LIST_FIELDS, "profile")
# An interaction's columns, after its contact number.
INTERACTION_COLUMNS = ("date", "template", "campaign_no", "segment_no", "evaluation", "salesperson")

# Columns that are not strings; Spark reads each as the type its field needs (docs/spark.md, column types).
_TYPES: dict[str, pa.DataType] = {
    "birth_date": pa.date32(), "acquisition_date": pa.date32(), "last_purchase_date": pa.date32(),
    "rating": pa.int32(), "total_spent": pa.float64(), "purchase_count": pa.int64(), "exclude_from_segments": pa.bool_(),
}  # fmt: skip


def _as_date(value: Any) -> dt.date | None:
    # SQLite may hand a date back as its ISO text, PostgreSQL as a date or a timestamp.
    if value is None or (isinstance(value, dt.date) and not isinstance(value, dt.datetime)):
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    return dt.date.fromisoformat(str(value)[:10])


def _array(name: str, values: list[Any]) -> pa.Array:
    kind = _TYPES.get(name, pa.string())
    if kind == pa.date32():
        values = [_as_date(v) for v in values]
    return pa.array(values, kind)


def contacts_table(rows: Sequence[Mapping[str, Any]], lists: Mapping[tuple[str, Any], Sequence[str]]) -> pa.Table:
    """The contacts as one Arrow table: `rows` hold every name of CONTACT_COLUMNS and the contact's `id`; `lists`
    the codes of each list field and the profile's `Q=A` items, by (field or "profile", contact id)."""
    columns: dict[str, pa.Array] = {name: _array(name, [r[name] for r in rows]) for name in CONTACT_COLUMNS}
    for name in LIST_FIELDS:
        columns[name] = pa.array([lists.get((name, r["id"])) for r in rows], pa.list_(pa.string()))
    columns["profile"] = pa.array([";".join(lists.get(("profile", r["id"]), ())) or None for r in rows], pa.string())
    return pa.table(columns)


def interactions_table(rows: Sequence[Sequence[Any]]) -> pa.Table:
    """The interactions as one Arrow table: each row the contact number, then the values of INTERACTION_COLUMNS."""
    out = {"contact_no": pa.array([r[0] for r in rows], pa.string())}
    for i, name in enumerate(INTERACTION_COLUMNS, start=1):
        values = [r[i] for r in rows]
        out[name] = pa.array([_as_date(v) for v in values], pa.date32()) if name == "date" else pa.array(values, pa.string())
    return pa.table(out)
