"""Import stage 4 of read → map → check → write: validated rows into the database, in the caller's transaction.

New contacts get their ids up front, so org_id (the company's id) is known before anything is written; they go in
with one bulk INSERT (COPY on PostgreSQL, multi-row statements on SQLite). Stored contacts are UPDATEd from a staging
table, and only in the columns the file maps: a column it does not carry is left as stored, and an empty cell leaves
the stored value unless the user asked for "empty cells clear the field". List codes, profile answers and custom
values follow the same rule. One transaction: a failed import changes nothing.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    cast,
    delete,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import REGCLASS

from .._errors import ImportRejected
from .._models import Base, CustomValue, table_of
from .._snapshot import bump_data_version
from ..fields import LIST_FIELDS
from ..fields.custom import create_custom_field
from .check import CONTACT_FRAME_COLUMNS, INTERACTION_FRAME_COLUMNS, OUTCOME_COLUMNS

__all__ = [
    "ContactBatch",
    "CustomColumn",
    "Progress",
    "checks_references",
    "write_contacts",
    "write_interactions",
    "write_outcomes",
]

Progress = Callable[[int, int, str], None]

_STAGE_CHUNK = 50_000
# From this many rows on, a load into SQLite rebuilds the secondary indexes instead of growing them.
_BULK_INDEX_ROWS = 50_000
_NULLABLE_INT_COLUMNS = frozenset({"rating", "duration_min", "purchase_count"})
_FLOAT_COLUMNS = frozenset({"total_spent", "cost", "amount"})
_NOT_NULL_TEXT = frozenset({"contact_no", "type", "name", "gender", "template"})
# Columns every new contact gets from the frame, mapped or not (NOT NULL, with a default in the frame).
_ALWAYS_WRITTEN = frozenset({"contact_no", "type", "name", "gender", "exclude_from_segments"})

_CONTACTS: Table = Base.metadata.tables["contacts"]
_CODES: Table = Base.metadata.tables["contact_codes"]
_PROFILE: Table = Base.metadata.tables["profile_answers"]
_INTERACTIONS: Table = Base.metadata.tables["interactions"]
_OUTCOMES: Table = Base.metadata.tables["outcomes"]
_VALUES: Table = table_of(CustomValue)


@dataclass(frozen=True, eq=False)
class CustomColumn:
    """One custom field's cells for a batch: a value per contact row (empty: NaN / ''), or list codes (pos, code)."""

    name: str
    label: str
    type: str
    integer: bool = False
    new: bool = False  # create the field with this import
    values: pd.Series | None = None  # number/boolean: float; date: 'YYYY-MM-DD'; code/text: str
    codes: pd.DataFrame | None = None  # list fields: pos (the contact's row in the batch), code
    filled: np.ndarray | None = None  # list fields: which batch rows had a non-empty cell


@dataclass(frozen=True, eq=False)
class ContactBatch:
    """Validated contacts ready to write: one row per contact plus their list codes and profile answers.

    contacts has CONTACT_FRAME_COLUMNS (text and dates as str with '' for empty, rating Int64, total_spent float,
    purchase_count int, exclude_from_segments bool, attributes a JSON object text or ''); codes has contact_no, kind,
    code; profile has contact_no, questionnaire, answer; both may carry `pos`, the contact's row in `contacts`, which
    saves looking the number up. Contact numbers are unique.
    """

    contacts: pd.DataFrame
    codes: pd.DataFrame
    profile: pd.DataFrame
    # The targets the file maps (None: every column, as the demo loader writes whole contacts) and what an empty
    # cell means for a stored contact: keep its value (default) or clear it.
    columns: frozenset[str] | None = None
    empty_clears: bool = False
    custom: tuple[CustomColumn, ...] = field(default=())
    user: str = ""
    # Which cells of the mapped columns were empty in the file (one bool column per mapped target, a row a contact).
    blank: pd.DataFrame | None = None


def _db_values(frame: pd.DataFrame, name: str, *, sqlite: bool = False) -> list[Any]:
    """One column as Python values for the driver: '' and NA become None (NULL) except in required text.

    `sqlite`: booleans as the integers 0/1 SQLite stores for them anyway. Python's sqlite3 module binds an exact
    int, float or str directly but sends any other value (a bool, None) through its adapter lookup first, which a
    million-row import pays once per cell."""
    s = frame[name]
    if name in _NULLABLE_INT_COLUMNS or name == "org_id":
        values = s.astype("Int64")
        return values.astype(object).where(values.notna(), None).tolist()
    if name in _FLOAT_COLUMNS:
        floats = s.astype("float64").round(2)
        return floats.astype(object).where(floats.notna(), None).tolist()
    if name in ("purchase_count", "contact_id"):
        return s.astype("int64").tolist()
    if name == "exclude_from_segments":
        return s.astype(bool).astype(np.int64).tolist() if sqlite else s.astype(bool).tolist()
    return _text_values(s, empty_is_null=name not in _NOT_NULL_TEXT)


# A column whose first rows hold at most this many distinct values is converted through its distinct values.
_FEW_DISTINCT = 1_000
_DISTINCT_PROBE = 10_000


def _text_values(s: pd.Series, *, empty_is_null: bool) -> list[Any]:
    """A text column as Python strings for the driver ('' and NA as None when `empty_is_null`, else as '').

    Converted in Arrow; a column of few distinct values (countries, genders, types) makes one Python string per
    distinct value and repeats it, instead of a million equal strings."""
    arr = pa.array(s.fillna("").astype("str"), type=pa.large_string(), from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.null_count:
        arr = pc.fill_null(arr, "")
    if empty_is_null:
        arr = pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.large_string()), arr)
    if len(arr) > 2 * _DISTINCT_PROBE and pc.count_distinct(arr.slice(0, _DISTINCT_PROBE)).as_py() <= _FEW_DISTINCT:
        encoded = pc.dictionary_encode(arr)
        distinct = np.append(np.asarray(encoded.dictionary.to_numpy(zero_copy_only=False), dtype=object), None)
        codes = np.asarray(pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
        return distinct[codes].tolist()
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object).tolist()


def _chunks(rows: Iterator[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    while True:
        chunk = list(itertools.islice(rows, size))
        if not chunk:
            return
        yield chunk


def _sqlite_rows_per_statement(ncols: int) -> int:
    # Several rows per INSERT cut SQLite's per-statement work; stay under its bound-parameter limit.
    import sqlite3

    limit = 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999
    return max(1, min(200, limit // max(ncols, 1)))


def _values_sql(conn: Connection, table: Table, names: Sequence[str], rows: int) -> str:
    """`INSERT INTO table (names) VALUES (?, ...), ...` for `rows` rows: our own table and column names, quoted by
    the dialect; the values are bound parameters."""
    key = (conn.dialect.name, table.name, tuple(names), rows)
    sql = _VALUES_SQL.get(key)
    if sql is None:
        quote = conn.dialect.identifier_preparer
        one = "(" + ", ".join("?" * len(names)) + ")"
        # Names from our own table definitions, quoted; every value a bound parameter.
        sql = (
            f"INSERT INTO {quote.format_table(table)} ({', '.join(quote.quote(n) for n in names)}) "  # noqa: S608
            f"VALUES {', '.join([one] * rows)}"
        )
        _VALUES_SQL[key] = sql
    return sql


_VALUES_SQL: dict[tuple[str, str, tuple[str, ...], int], str] = {}


def checks_references(rows: int) -> bool:
    """Whether an import of `rows` contacts keeps SQLite's per-row foreign-key checks (db.write(foreign_keys=...)).

    A bulk load goes without them: every contact and field id write_contacts writes is one it read or wrote in the
    same transaction, and for millions of child rows the checks cost seconds."""
    return rows < _BULK_INDEX_ROWS


def _executemany(
    conn: Connection,
    table: Table,
    names: Sequence[str],
    columns: Sequence[list[Any]],
    progress: Progress | None,
    stage: str,
) -> None:
    """Run an INSERT for every row: raw multi-row executemany on SQLite, Core executemany elsewhere.

    Values are always bound parameters; the SQL text is made from our own table definitions."""
    total = len(columns[0]) if columns else 0
    done = 0
    raw: Any = conn.connection.dbapi_connection
    if conn.dialect.name == "sqlite" and raw is not None:
        per = _sqlite_rows_per_statement(len(names))
        ncols = len(names)
        cur = raw.cursor()
        try:
            for start in range(0, total, _STAGE_CHUNK):
                end = min(total, start + _STAGE_CHUNK)
                count = end - start
                # Row-major parameters built column by column with slice assignment: no tuple per row.
                flat: list[Any] = [None] * (count * ncols)
                for j, values in enumerate(columns):
                    flat[j::ncols] = values[start:end]
                full = count // per
                step = per * ncols
                if full:
                    cur.executemany(
                        _values_sql(conn, table, names, per), (flat[i * step : (i + 1) * step] for i in range(full))
                    )
                rest = count - full * per
                if rest:
                    cur.execute(_values_sql(conn, table, names, rest), flat[full * step :])
                done += count
                if progress:
                    progress(done, total, stage)
        finally:
            cur.close()
        return
    statement = table.insert().values({n: bindparam(n) for n in names})
    for chunk in _chunks(zip(*columns, strict=True), _STAGE_CHUNK):
        conn.execute(statement, [dict(zip(names, row, strict=True)) for row in chunk])
        done += len(chunk)
        if progress:
            progress(done, total, stage)


def _insert_rows(
    conn: Connection,
    table: Table,
    names: Sequence[str],
    columns: Sequence[list[Any]],
    progress: Progress | None = None,
    stage: str = "",
) -> None:
    """Bulk insert: COPY on PostgreSQL, executemany elsewhere."""
    if not columns or not len(columns[0]):
        return
    raw: Any = conn.connection.dbapi_connection
    if conn.dialect.name == "postgresql" and raw is not None:
        from psycopg import sql

        total = len(columns[0])
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table.name), sql.SQL(", ").join(sql.Identifier(n) for n in names)
        )
        done = 0
        with raw.cursor() as cur, cur.copy(copy_sql) as copy:
            for row in zip(*columns, strict=True):
                copy.write_row(row)
                done += 1
                if progress and done % _STAGE_CHUNK == 0:
                    progress(done, total, stage)
        if progress:
            progress(total, total, stage)
        return
    _executemany(conn, table, names, columns, progress, stage)


def _temp_table(conn: Connection, name: str, columns: Sequence[Column[Any]]) -> Table:
    table = Table(name, MetaData(), *columns, prefixes=["TEMPORARY"])
    table.create(conn)
    return table


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _stored_contacts(conn: Connection) -> pd.DataFrame:
    """contact_no, id and type of every stored contact, indexed by contact_no."""
    raw = conn.exec_driver_sql("SELECT contact_no, id, type FROM contacts").fetchall()
    frame = pd.DataFrame(raw, columns=["contact_no", "id", "type"])
    frame = frame.astype({"contact_no": "str", "id": "int64", "type": "str"})
    return frame.set_index("contact_no")


def _new_ids(conn: Connection, count: int) -> np.ndarray:
    """Ids for `count` new contacts, taken the way the database would take them."""
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    if conn.dialect.name == "postgresql":
        seq = conn.exec_driver_sql("SELECT pg_get_serial_sequence('contacts', 'id')").scalar_one()
        got = conn.execute(
            select(func.nextval(cast(literal(seq), REGCLASS))).select_from(func.generate_series(1, count))
        ).scalars()
        return np.sort(np.fromiter(got, dtype=np.int64, count=count))
    # SQLite: the write transaction holds the lock, and a rowid table takes max(id) + 1 for a new row anyway.
    top = conn.execute(select(func.max(_CONTACTS.c.id))).scalar_one()
    start = int(top or 0) + 1
    return np.arange(start, start + count, dtype=np.int64)


def _ids(conn: Connection) -> pd.Series:
    """contact_no -> id of every stored contact."""
    stored = _stored_contacts(conn)
    return stored["id"]


def _roomy_cache(conn: Connection, rows: int) -> None:
    """Give a big SQLite load a page cache that holds the whole transaction, so dirty pages never spill mid-way."""
    if conn.dialect.name != "sqlite" or rows < _BULK_INDEX_ROWS:
        return
    kib = int(min(4 << 20, max(256 << 10, rows * 2)))
    current = conn.exec_driver_sql("PRAGMA cache_size").scalar_one()
    if current < 0 and -current >= kib:
        return
    conn.exec_driver_sql(f"PRAGMA cache_size = {-kib:d}")


@contextmanager
def _bulk_indexes(conn: Connection, tables: Sequence[Table], rows: int, stored: int) -> Iterator[None]:
    """For a big load into SQLite, drop the secondary indexes and build them again once the rows are in.

    Building an index from sorted rows is several times faster than growing it row by row. DDL is transactional in
    SQLite, so a failed import gets its indexes back with the rollback; readers keep seeing the old snapshot.
    """
    if conn.dialect.name != "sqlite" or rows < _BULK_INDEX_ROWS or rows < stored:
        yield
        return
    indexes = [ix for t in tables for ix in sorted(t.indexes, key=lambda i: i.name or "")]
    for ix in indexes:
        ix.drop(conn)
    yield
    for ix in indexes:
        ix.create(conn)


def _keyed_rows(
    frame: pd.DataFrame, cols: Sequence[str], numbers: np.ndarray, ids: np.ndarray
) -> tuple[list[str], list[str], list[int]]:
    """Code rows (two key columns + contact_id) without duplicates, in primary-key order, as driver values.

    Integer keys instead of string columns: the factorised codes sort like the strings, so one integer sort both
    drops duplicates and orders the rows, and rows in key order fill the primary-key index by appending.
    """
    # The contact's position in the batch: given by the importer and the demo, else looked up by number.
    if "pos" in frame.columns:
        pos = frame["pos"].to_numpy(dtype=np.int64)
    else:
        pos = pd.Index(numbers).get_indexer(frame["contact_no"].to_numpy())
    if len(pos) and (pos.min() < 0 or pos.max() >= len(numbers)):
        raise ImportRejected("list codes or profile answers name a contact that is not in the batch")
    a_codes, a_labels = pd.factorize(frame[cols[0]].astype("str"), sort=True)
    b_codes, b_labels = pd.factorize(frame[cols[1]].astype("str"), sort=True)
    contact_id = ids[pos]
    span = int(contact_id.max()) + 1
    key = (a_codes.astype(np.int64) * len(b_labels) + b_codes) * span + contact_id
    key = np.sort(key)
    key = key[np.r_[True, key[1:] != key[:-1]]]
    contact_id = key % span
    pair = key // span
    first = np.asarray(a_labels, dtype=object)[pair // len(b_labels)]
    second = np.asarray(b_labels, dtype=object)[pair % len(b_labels)]
    return first.tolist(), second.tolist(), contact_id.tolist()


def write_contacts(
    conn: Connection, batch: ContactBatch, *, progress: Progress | None = None
) -> tuple[int, int]:
    """Insert or update validated contacts, their org_id, list codes, profile answers and custom values; returns
    (inserted, updated).

    Runs inside the caller's write transaction (db.write()). New contacts go in whole (a column the file does not
    map gets its default: empty, gender unknown, not excluded). Stored contacts keep their id and change only in the
    columns `batch.columns` names; an empty cell keeps the stored value unless `batch.empty_clears`.
    """
    contacts = batch.contacts
    total = len(contacts)
    if total == 0:
        return 0, 0
    # Same transaction as the rows: the in-memory preview snapshot must be rebuilt after this commits.
    bump_data_version(conn)
    if contacts["contact_no"].duplicated().any():
        raise ImportRejected("the contacts to write hold the same contact number twice")
    c = _CONTACTS
    whole = batch.columns is None
    clears = whole or batch.empty_clears
    mapped = (
        frozenset(CONTACT_FRAME_COLUMNS) | frozenset(LIST_FIELDS) | {"profile"}
        if batch.columns is None
        else batch.columns
    )
    had_rows = conn.execute(select(c.c.id).limit(1)).first() is not None
    stored = (
        _stored_contacts(conn) if had_rows else pd.DataFrame({"id": [], "type": []}).astype({"id": "int64"})
    )
    numbers = contacts["contact_no"].to_numpy()
    old_id = stored["id"].reindex(numbers) if had_rows else pd.Series(np.nan, index=numbers)
    known = old_id.notna().to_numpy()
    existing = int(known.sum())
    ids = np.zeros(total, dtype=np.int64)
    ids[known] = old_id.to_numpy()[known].astype(np.int64)
    ids[~known] = _new_ids(conn, total - existing)
    id_of = pd.Series(ids, index=numbers)

    is_company = (contacts["type"] == "company").to_numpy()
    # org_id: a company's own id, a person's company's id (in the batch, else stored), NULL without a company.
    company_id = pd.concat([stored["id"][stored["type"] == "company"], id_of[is_company]])
    company_id = company_id[~company_id.index.duplicated(keep="last")]
    # Looked up for the rows that name a company only: a file without companies maps nothing.
    company_no = contacts["company_no"]
    named = (company_no.notna() & (company_no != "")).to_numpy()
    org = np.full(total, None, dtype=object)
    if named.any():
        org[named] = company_no[named].map(company_id).astype("Int64").to_numpy(dtype=object, na_value=None)
    org[is_company] = ids[is_company]

    stamp = _now()
    processor = c.c.updated_at.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    now_value = processor(stamp) if processor else stamp
    _roomy_cache(conn, total + len(stored))
    with _bulk_indexes(conn, (c, _CODES, _PROFILE, _VALUES), total, len(stored)):
        new = ~known
        if new.any():
            fresh = contacts.loc[new]
            # A column the file does not map is NULL for a new contact: left out of the INSERT rather than bound
            # a million times (the NOT NULL ones carry their defaults in the frame).
            written = [n for n in CONTACT_FRAME_COLUMNS if n in mapped or n in _ALWAYS_WRITTEN]
            if "email" in mapped and "email_domain" not in written:
                written.append("email_domain")
            sqlite = conn.dialect.name == "sqlite"
            names = ["id", *written, "updated_at"]
            columns = [ids[new].tolist(), *(_db_values(fresh, n, sqlite=sqlite) for n in written),
                       [now_value] * int(new.sum())]  # fmt: skip
            if pd.notna(org[new]).any():
                # Left out when no new contact has a company (NULL all the same): a million NULLs are not bound.
                names.append("org_id")
                columns.append(org[new].tolist())
            _insert_rows(conn, c, names, columns, progress, "writing contacts")
        if existing:
            _update_stored(conn, batch, known, ids, org, mapped, clears, stamp, progress)
        if had_rows:
            # Stored persons follow their company: keep every org_id right, set-based.
            c2 = c.alias("company")
            their_company = (
                select(c2.c.id)
                .where(c2.c.contact_no == c.c.company_no, c2.c.type == "company")
                .scalar_subquery()
            )
            conn.execute(
                update(c)
                .where(c.c.type == "person", c.c.org_id.is_distinct_from(their_company))
                .values(org_id=their_company)
            )
        if progress:
            progress(total, total, "writing contacts")
        lists = [k for k in LIST_FIELDS if k in mapped]
        if existing and lists:
            for kind in lists:
                _delete_for(conn, _CODES, ids, _touched(batch, kind, known, clears), _CODES.c.kind == kind)
        if existing and "profile" in mapped:
            _delete_for(conn, _PROFILE, ids, _touched(batch, "profile", known, clears))
        for table, frame, cols in (
            (_CODES, batch.codes, ["kind", "code"]),
            (_PROFILE, batch.profile, ["questionnaire", "answer"]),
        ):
            if len(frame) == 0:
                continue
            first, second, contact_id = _keyed_rows(frame, cols, numbers, ids)
            _insert_rows(
                conn,
                table,
                [*cols, "contact_id"],
                [first, second, contact_id],
                progress,
                f"writing {table.name.replace('_', ' ')}",
            )
        for col in batch.custom:
            _write_custom(conn, col, ids, known, clears, batch.user, progress)
    return total - existing, existing


def _code_pairs(codes: pd.DataFrame, ids: np.ndarray) -> tuple[list[str], list[int]]:
    """A list field's (code, contact id) pairs without duplicates, in primary-key order (code, then contact).

    One integer sort over factorised codes (sorted like the strings) instead of sorting a million string pairs; each
    distinct code is one Python string, repeated."""
    labels_codes, labels = pd.factorize(codes["code"].astype("str"), sort=True)
    contact_id = ids[codes["pos"].to_numpy(dtype=np.int64)]
    span = int(contact_id.max()) + 1
    key = np.sort(labels_codes.astype(np.int64) * span + contact_id)
    key = key[np.r_[True, key[1:] != key[:-1]]]  # np.unique hashes first: slower here than a sort
    code = np.asarray(labels, dtype=object)[key // span]
    return code.tolist(), (key % span).tolist()


def _touched(batch: ContactBatch, column: str, known: np.ndarray, clears: bool) -> np.ndarray:
    """The stored contacts whose `column` this batch replaces: all of them when empty cells clear, else those whose
    cell was filled."""
    if clears or batch.blank is None or column not in batch.blank.columns:
        return known
    return known & ~batch.blank[column].to_numpy(dtype=bool)


def _delete_for(conn: Connection, table: Table, ids: np.ndarray, rows: np.ndarray, *where: Any) -> None:
    """Delete `table`'s rows of the contacts at `rows` (optionally narrowed by `where`), through a staged id list."""
    if not rows.any():
        return
    ids_t = _temp_table(conn, "segcore_stage_ids", [Column("id", Integer, primary_key=True)])
    _insert_rows(conn, ids_t, ["id"], [ids[rows].tolist()])
    conn.execute(delete(table).where(table.c.contact_id.in_(select(ids_t.c.id)), *where))
    ids_t.drop(conn)


def _update_stored(
    conn: Connection,
    batch: ContactBatch,
    known: np.ndarray,
    ids: np.ndarray,
    org: np.ndarray,
    mapped: frozenset[str],
    clears: bool,
    now_value: Any,
    progress: Progress | None,
) -> None:
    """UPDATE the stored contacts of the batch in the mapped columns only, from a staging table, in one statement."""
    c = _CONTACTS
    names = [n for n in CONTACT_FRAME_COLUMNS if n != "contact_no" and n in mapped]
    if "email" in mapped and "email_domain" not in names:
        names.append("email_domain")
    with_org = "type" in mapped or "company_no" in mapped
    rows = batch.contacts.loc[known]
    values: list[list[Any]] = []
    for n in names:
        column = _db_values(rows, n, sqlite=conn.dialect.name == "sqlite")
        blank_col = "email" if n == "email_domain" else n
        if not clears and batch.blank is not None and blank_col in batch.blank.columns:
            # An empty cell keeps the stored value: staged as NULL, and the UPDATE takes COALESCE(new, stored).
            blank = batch.blank[blank_col].to_numpy(dtype=bool)[known]
            column = [None if b else v for v, b in zip(column, blank, strict=True)]
        values.append(column)
    stage_cols = [Column("id", Integer, primary_key=True), *(Column(n, c.c[n].type) for n in names)]
    if with_org:
        stage_cols.append(Column("org_id", Integer))
    stage = _temp_table(conn, "segcore_stage_contacts", stage_cols)
    staged = ["id", *names] + (["org_id"] if with_org else [])
    columns = [ids[known].tolist(), *values] + ([org[known].tolist()] if with_org else [])
    _insert_rows(conn, stage, staged, columns, progress, "updating contacts")
    sets: dict[str, Any] = {}
    for n in names:
        keep_stored = not clears or n in _NOT_NULL_TEXT or n in ("gender", "exclude_from_segments")
        sets[n] = func.coalesce(stage.c[n], c.c[n]) if keep_stored else stage.c[n]
    if with_org:
        sets["org_id"] = stage.c.org_id
    sets["updated_at"] = now_value
    conn.execute(update(c).where(c.c.id == stage.c.id).values(sets))
    stage.drop(conn)


def _write_custom(
    conn: Connection,
    col: CustomColumn,
    ids: np.ndarray,
    known: np.ndarray,
    clears: bool,
    user: str,
    progress: Progress | None,
) -> None:
    """One custom field's values: the field made if new, stored contacts' old values replaced where the file says."""
    from .._models import CustomField

    fields_t = table_of(CustomField)
    if col.new:
        field_id = create_custom_field(conn, col.name, col.label, col.type, integer=col.integer, user=user)
    else:
        found = conn.execute(select(fields_t.c.id).where(fields_t.c.name == col.name)).scalar()
        if found is None:
            raise ImportRejected(f"custom field {col.name!r} does not exist any more")
        field_id = int(found)
        bump_data_version(conn)
    if col.type == "list":
        assert col.codes is not None and col.filled is not None
        kind = f"cf{field_id}"
        if known.any():
            rows = known if clears else known & col.filled
            _delete_for(conn, _CODES, ids, rows, _CODES.c.kind == kind)
        if len(col.codes):
            code, contact_id = _code_pairs(col.codes, ids)
            _insert_rows(
                conn,
                _CODES,
                ["kind", "code", "contact_id"],
                [[kind] * len(code), code, contact_id],
                progress,
                f"writing {col.name}",
            )
        return
    assert col.values is not None
    values = col.values
    if col.type in ("number", "boolean"):
        filled = values.notna().to_numpy()
    else:
        filled = (values.fillna("").astype(str) != "").to_numpy()
    if known.any():
        rows = known if clears else known & filled
        _delete_for(conn, _VALUES, ids, rows, _VALUES.c.field_id == field_id)
    if not filled.any():
        return
    target = {"number": "num", "boolean": "num", "date": "day"}.get(col.type, "txt")
    kept = values[filled]
    data = kept.astype("float64").tolist() if target == "num" else _text_values(kept, empty_is_null=False)
    n = len(data)
    _insert_rows(
        conn,
        _VALUES,
        ["field_id", "contact_id", target],
        [[field_id] * n, ids[filled].tolist(), data],
        progress,
        f"writing {col.name}",
    )


def write_interactions(
    conn: Connection,
    frame: pd.DataFrame,
    *,
    created_by: str | None = None,
    progress: Progress | None = None,
) -> int:
    """Append validated interactions (INTERACTION_FRAME_COLUMNS; every contact_no must exist); returns how many."""
    if len(frame) == 0:
        return 0
    bump_data_version(conn)
    _roomy_cache(conn, len(frame))
    ids = _ids(conn)
    contact_id = ids.reindex(frame["contact_no"].to_numpy())
    if contact_id.isna().any():
        missing = frame["contact_no"][contact_id.isna().to_numpy()].iloc[0]
        raise ImportRejected(f"interaction for an unknown contact: {missing}")
    names = ["contact_id", *INTERACTION_FRAME_COLUMNS[1:], "cancelled", "created_by"]
    columns = [contact_id.astype("int64").tolist()]
    columns += [_db_values(frame, n) for n in INTERACTION_FRAME_COLUMNS[1:]]
    columns += [[False] * len(frame), [created_by] * len(frame)]
    stored = conn.execute(select(func.count()).select_from(_INTERACTIONS)).scalar_one()
    with _bulk_indexes(conn, (_INTERACTIONS,), len(frame), int(stored)):
        _insert_rows(conn, _INTERACTIONS, names, columns, progress, "writing interactions")
    if progress:
        progress(len(frame), len(frame), "writing interactions")
    return len(frame)


def _stored_outcomes(conn: Connection, frame: pd.DataFrame, has_ref: np.ndarray) -> np.ndarray:
    """The stored outcome id of each row with a (kind, reference) already stored, else -1 (a staged join)."""
    found = np.full(len(frame), -1, dtype=np.int64)
    if not has_ref.any() or conn.execute(select(_OUTCOMES.c.id).limit(1)).first() is None:
        return found  # nothing stored to match (a first load): no staging
    pos = np.flatnonzero(has_ref)
    stage = _temp_table(
        conn,
        "segcore_stage_outcome_refs",
        [Column("pos", Integer, primary_key=True), Column("kind", String(20)), Column("reference", String(60))],
    )
    try:
        _insert_rows(
            conn,
            stage,
            ["pos", "kind", "reference"],
            [pos.tolist(), frame["kind"].to_numpy()[pos].tolist(), frame["reference"].to_numpy()[pos].tolist()],
        )
        rows = conn.execute(
            select(stage.c.pos, _OUTCOMES.c.id).join(
                _OUTCOMES, and_(_OUTCOMES.c.kind == stage.c.kind, _OUTCOMES.c.reference == stage.c.reference)
            )
        ).all()
    finally:
        stage.drop(conn)
    if rows:
        matched = np.asarray(rows, dtype=np.int64)
        found[matched[:, 0]] = matched[:, 1]
    return found


def write_outcomes(
    conn: Connection,
    frame: pd.DataFrame,
    *,
    created_by: str | None = None,
    progress: Progress | None = None,
    dry_run: bool = False,
) -> tuple[int, int]:
    """Store validated outcomes (OUTCOME_COLUMNS, every contact_no stored); returns (inserted, updated).

    A row whose (kind, reference) is stored already updates that outcome's contact, date and amount: a reference
    counts once. Rows without a reference are added. `dry_run` only counts what would happen."""
    if len(frame) == 0:
        return 0, 0
    ids = _ids(conn)
    contact_id = ids.reindex(frame["contact_no"].to_numpy())
    if contact_id.isna().any():
        missing = frame["contact_no"][contact_id.isna().to_numpy()].iloc[0]
        raise ImportRejected(f"outcome for an unknown contact: {missing}")
    frame = frame.assign(
        contact_id=contact_id.astype("int64").to_numpy(), reference=frame["reference"].fillna("").astype("str")
    )
    stored = _stored_outcomes(conn, frame, (frame["reference"] != "").to_numpy())
    known = stored >= 0
    if dry_run:
        return int((~known).sum()), int(known.sum())
    stamp = _now()
    processor = _OUTCOMES.c.created_at.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    now_value = processor(stamp) if processor else stamp
    if known.any():
        rows = frame.loc[known]
        stage = _temp_table(
            conn,
            "segcore_stage_outcomes",
            [
                Column("id", Integer, primary_key=True),
                *(Column(n, _OUTCOMES.c[n].type) for n in ("contact_id", "date", "amount")),
            ],
        )
        _insert_rows(
            conn,
            stage,
            ["id", "contact_id", "date", "amount"],
            [stored[known].tolist(), rows["contact_id"].tolist(), _db_values(rows, "date"), _db_values(rows, "amount")],
            progress,
            "updating outcomes",
        )
        conn.execute(
            update(_OUTCOMES)
            .where(_OUTCOMES.c.id == stage.c.id)
            .values(contact_id=stage.c.contact_id, date=stage.c.date, amount=stage.c.amount)
        )
        stage.drop(conn)
    new = frame.loc[~known]
    if len(new):
        _roomy_cache(conn, len(new))
        names = ["contact_id", *OUTCOME_COLUMNS[1:], "created_by", "created_at"]
        columns = [new["contact_id"].tolist()] + [_db_values(new, n) for n in OUTCOME_COLUMNS[1:]]
        columns += [[created_by] * len(new), [now_value] * len(new)]
        count = conn.execute(select(func.count()).select_from(_OUTCOMES)).scalar_one()
        with _bulk_indexes(conn, (_OUTCOMES,), len(new), int(count)):
            _insert_rows(conn, _OUTCOMES, names, columns, progress, "writing outcomes")
    if progress:
        progress(len(frame), len(frame), "writing outcomes")
    return int(len(new)), int(known.sum())
