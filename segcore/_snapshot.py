"""A columnar, read-only copy of the contact attributes in memory, for fast previews.

SQL stays the system of record. The snapshot holds what filters and charts read, encoded compactly: strings as
dictionary codes over distinct values, folded for free text (case and accents, segcore/_fold.py) and lower-cased for
codes and e-mails; dates as int32 day numbers; codes of list fields and related records as (row position, value
code) pairs. Row position i is the i-th contact by id.

It is rebuilt when the data changes (`data_version` in the settings table, bumped by every import); segment
members are not part of it (the preview reads them per segment version).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import json
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc
import sqlalchemy as sa
from sqlalchemy import Connection, Select, func, select, update
from sqlalchemy.engine import make_url

from ._db import Database
from ._fold import fold_array
from ._models import (
    Contact,
    ContactCode,
    CustomField,
    CustomValue,
    Interaction,
    ProfileAnswer,
    Setting,
    table_of,
)
from .fields import BUILTIN, RELATIONS, FieldRegistry, FieldSpec, custom_spec

__all__ = [
    "NULL_DAY",
    "Snapshot",
    "StrColumn",
    "bump_data_version",
    "data_version",
    "load_snapshot",
    "snapshot_path",
    "start_background_build",
]

NULL_DAY = np.iinfo(np.int32).min
EPOCH = dt.date(1970, 1, 1)

TEXT_COLUMNS = (
    "contact_no", "type", "company_no", "name", "email", "email_domain", "phone", "city", "post_code", "territory",
    "salesperson", "country", "language", "gender", "acquisition_source", "churn_risk",
)  # fmt: skip
DATE_COLUMNS = ("birth_date", "acquisition_date", "last_purchase_date")
NUMBER_COLUMNS = ("rating", "total_spent", "purchase_count")
LIST_KINDS = ("mailing_groups", "industry_groups", "job_responsibilities")
INTERACTION_TEXT = ("template", "campaign_no", "segment_no", "evaluation", "salesperson")
# 3: free-text columns are folded (case and accents), codes and e-mails lower-cased (StrColumn.folded).
FORMAT_VERSION = 3


def _folds(spec: FieldSpec | None) -> bool:
    """Free text is compared folded (case and accents); codes and e-mails (stored normalised) lower-cased only."""
    return spec is not None and spec.type == "text" and not spec.stored_lower


FOLDED_COLUMNS = frozenset(name for name in TEXT_COLUMNS if _folds(BUILTIN.get(name)))


@dataclass(frozen=True)
class StrColumn:
    """A string column as codes into its distinct values (lower-cased, or folded); code -1 is empty (NULL or '')."""

    codes: np.ndarray  # int32, one per row
    values: pa.Array  # distinct lower-cased or folded strings (Arrow: compact, and vectorised string kernels)
    # True when the values are folded (case and accents, free text), False when lower-cased only (codes, e-mails).
    folded: bool = False

    @classmethod
    def encode(
        cls, raw: Sequence[Any] | np.ndarray | pd.Series | pa.Array | pa.ChunkedArray, *, folded: bool = False
    ) -> StrColumn:
        return _encode(raw, folded=folded)

    def value_mask(self, predicate_mask: np.ndarray) -> np.ndarray:
        """Rows whose distinct value satisfies predicate_mask (one bool per distinct value); empty rows never."""
        ext = np.append(predicate_mask, False)  # code -1 picks the appended False
        return ext[self.codes]

    def nbytes(self) -> int:
        return int(self.codes.nbytes + self.values.nbytes)


def _encode(raw: Any, *, folded: bool = False, distinct: bool = False) -> StrColumn:
    """StrColumn.encode; `distinct` says the values are all different and never NULL (a column under a UNIQUE and
    NOT NULL constraint, such as contact_no): the first hashing pass, which finds the distinct values, is skipped."""
    arr = _as_arrow(raw)
    if not pa.types.is_string(arr.type):
        # A column that is NULL throughout comes back typed as something else; its values are all empty.
        arr = pa.nulls(len(arr), pa.string()) if arr.null_count == len(arr) else pc.cast(arr, pa.string())
    # Dictionary-encode in C, fold or lower the distinct values only, then merge distinct values that fold
    # together and treat '' as empty.
    indices: np.ndarray | None
    if distinct and arr.null_count == 0:
        indices, dictionary = None, arr
    elif _mostly_distinct(arr):
        # Names, e-mails: finding the distinct values first saves nothing. Every row is folded or lowered, then
        # hashed once; the distinct values come out in the same first-row order as the two-pass way below.
        lowered = fold_array(arr) if folded else _lowered(arr)
        lowered = pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), lowered)
        merged = pc.dictionary_encode(lowered)
        codes = np.asarray(pc.fill_null(merged.indices, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
        uniques = merged.dictionary
        dtype = np.int16 if len(uniques) < np.iinfo(np.int16).max else np.int32
        return StrColumn(codes.astype(dtype), uniques, folded)
    else:
        encoded = pc.dictionary_encode(arr)
        indices = np.asarray(pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
        dictionary = encoded.dictionary
    # Empty is decided on the stored value: a value of accents alone folds to '' and is still not empty (SQL
    # tests `col = ''` on the column itself).
    empty = pc.equal(dictionary, "")
    lowered = fold_array(dictionary) if folded else _lowered(dictionary)
    lowered = pc.if_else(empty, pa.scalar(None, pa.string()), lowered)
    codes2, uniques = _merged(lowered, dictionary, known_distinct=True, folded=folded)
    remap = np.append(codes2, -1).astype(np.int32)
    if indices is None:
        final = remap[:-1]
    else:
        final = remap[indices] if len(indices) else np.zeros(0, dtype=np.int32)
    # int16 codes where the distinct values allow: most code columns have a handful.
    dtype = np.int16 if len(uniques) < np.iinfo(np.int16).max else np.int32
    return StrColumn(final.astype(dtype), uniques, folded)


# A column of more rows than this whose first _PROBE_ROWS rows are over half distinct is encoded row by row.
_ROWS_FIRST = 100_000
_PROBE_ROWS = 10_000


def _mostly_distinct(arr: pa.Array) -> bool:
    if len(arr) <= _ROWS_FIRST:
        return False
    head = arr.slice(0, _PROBE_ROWS)
    return bool(pc.count_distinct(head, mode="only_valid").as_py() > _PROBE_ROWS // 2)


def _merged(
    lowered: pa.Array, original: pa.Array, *, known_distinct: bool, folded: bool
) -> tuple[np.ndarray, pa.Array]:
    """Codes into the distinct non-null values of `lowered` (-1 for null) and those values, in first-row order.

    Hashing a million values again is skipped when nothing can merge: the lowering changed no value of a column
    known distinct (e-mails, stored lower-cased); or, lower-cased only, distinct ASCII values all in upper case
    (codes, contact numbers: lower-casing cannot make two of them equal)."""
    valid = np.asarray(lowered.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    count = int(valid.sum())

    def unchanged(a: pa.Array, b: pa.Array) -> bool:
        return pc.all(pc.equal(a, b)).as_py() is not False  # nulls (empty values) do not count

    same = known_distinct and unchanged(lowered, original)
    if not same and known_distinct and not folded and pc.all(pc.string_is_ascii(original)).as_py() is not False:
        same = unchanged(original, pc.ascii_upper(original))
    if same:
        codes = np.where(valid, np.cumsum(valid) - 1, -1).astype(np.int64)
        return codes, lowered.filter(pa.array(valid)) if count < len(lowered) else lowered
    merged = pc.dictionary_encode(lowered)
    codes = np.asarray(pc.fill_null(merged.indices, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
    return codes, merged.dictionary


def _lowered(dictionary: pa.Array) -> pa.Array:
    """Python's str.lower of each value (the folding SQLite's lower() uses here), in C for ASCII values."""
    # ASCII folds the same in Arrow as in Python: a million distinct e-mails are lowered in C; only the values with
    # other letters go through Python's str.lower.
    lowered = pc.ascii_lower(dictionary)
    ascii_mask = np.asarray(pc.fill_null(pc.string_is_ascii(dictionary), True).to_numpy(zero_copy_only=False))
    if not ascii_mask.all():
        others = np.flatnonzero(~ascii_mask)
        values = np.asarray(lowered.to_numpy(zero_copy_only=False), dtype=object)
        values[others] = [v.lower() for v in dictionary.take(pa.array(others)).to_pylist()]
        lowered = pa.array(values, type=pa.string())
    return lowered


@dataclass
class Pairs:
    """Many-to-one rows (list codes, profile answers, interactions): row position plus attributes."""

    pos: np.ndarray  # int32 contact position
    cols: dict[str, Any] = field(default_factory=dict)  # name -> StrColumn or int32 day array

    def nbytes(self) -> int:
        total = self.pos.nbytes
        for c in self.cols.values():
            total += c.nbytes() if isinstance(c, StrColumn) else c.nbytes
        return int(total)


@dataclass
class Snapshot:
    """The in-memory columns of every contact, for one data version."""

    version: str
    n: int
    ids: np.ndarray  # int64 sorted contact ids; position = index
    text: dict[str, StrColumn]
    dates: dict[str, np.ndarray]  # int32 days since 1970-01-01, NULL_DAY for empty
    numbers: dict[str, np.ndarray]  # float64, NaN for empty
    excluded: np.ndarray  # bool
    org_pos: np.ndarray  # int32 position of the company a contact is or belongs to, -1 for none
    is_person: np.ndarray  # bool
    lists: dict[str, Pairs]
    profile: Pairs
    interactions: Pairs
    # The fields this snapshot holds: the built-in ones plus the custom fields (in text/dates/numbers/lists by name).
    fields: FieldRegistry = BUILTIN
    built_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC).replace(tzinfo=None))

    def positions(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Row positions of contact ids (ids must exist)."""
        arr = np.asarray(ids, dtype=np.int64)
        return np.searchsorted(self.ids, arr).astype(np.int64)

    def mask_of(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        mask = np.zeros(self.n, dtype=bool)
        if len(ids):
            mask[self.positions(ids)] = True
        return mask

    def nbytes(self) -> int:
        total = self.ids.nbytes + self.excluded.nbytes + self.org_pos.nbytes + self.is_person.nbytes
        total += sum(c.nbytes() for c in self.text.values())
        total += sum(a.nbytes for a in self.dates.values()) + sum(a.nbytes for a in self.numbers.values())
        total += sum(p.nbytes() for p in self.lists.values()) + self.profile.nbytes() + self.interactions.nbytes()
        return int(total)


# ----------------------------------------------------------------------------------------------- data version

_DATA_VERSION_KEY = "data_version"


def data_version(conn: Connection) -> str:
    """A token that changes whenever contacts, their codes, answers or interactions change."""
    value = conn.execute(select(Setting.value).where(Setting.key == _DATA_VERSION_KEY)).scalar()
    return str(value or "0")


def bump_data_version(conn: Connection) -> None:
    """Call in the same transaction as any change to contacts, codes, profile answers or interactions."""
    table = table_of(Setting)
    # A random token, not a counter: a database recreated at the same path must not match an old snapshot file.
    token = uuid.uuid4().hex
    if conn.execute(select(table.c.key).where(table.c.key == _DATA_VERSION_KEY)).first() is None:
        conn.execute(table.insert().values(key=_DATA_VERSION_KEY, value=token))
    else:
        conn.execute(update(table).where(table.c.key == _DATA_VERSION_KEY).values(value=token))


# ----------------------------------------------------------------------------------------------- building


def _as_arrow(values: Any) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    return pa.array(list(values) if not isinstance(values, list) else values, from_pandas=True)


def _days(values: Any) -> np.ndarray:
    """ISO text (SQLite) or dates (PostgreSQL) to int32 day numbers; empty to NULL_DAY."""
    arr = _as_arrow(values)
    if arr.null_count == len(arr):
        return np.full(len(arr), NULL_DAY, dtype=np.int32)
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        arr = pc.cast(pc.strptime(arr, format="%Y-%m-%d", unit="s", error_is_null=True), pa.date32())
    elif not pa.types.is_date32(arr.type):
        arr = pc.cast(arr, pa.date32())
    return np.asarray(pc.fill_null(arr.cast(pa.int32()), NULL_DAY).to_numpy(zero_copy_only=False), dtype=np.int32)


def _numbers(values: Any, dtype: Any) -> np.ndarray:
    arr = _as_arrow(values)
    if arr.null_count == len(arr):
        return np.full(len(arr), np.nan, dtype=dtype)
    return np.asarray(pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64).astype(dtype)


def _raw(col: Any) -> Any:
    # Dates come back as the driver gives them (ISO text on SQLite): parsing a million of them in one vectorised
    # call beats a Python conversion per row.
    return sa.type_coerce(col, sa.String).label(col.name) if isinstance(col.type, sa.Date) else col


# Money needs float64; small integers are exact in float32 and halve the memory.
_NUMBER_DTYPES = {"rating": np.float32, "purchase_count": np.float32, "total_spent": np.float64}
_CONTACT_COLUMNS = ("id", "org_id", "exclude_from_segments", *NUMBER_COLUMNS, *DATE_COLUMNS, *TEXT_COLUMNS)


def _statements() -> dict[str, Select[Any]]:
    """What the snapshot reads: constant statements, no user input."""
    t, ct, pt, it = table_of(Contact), table_of(ContactCode), table_of(ProfileAnswer), table_of(Interaction)
    cf, cv = table_of(CustomField), table_of(CustomValue)
    return {
        "custom_fields": select(cf.c.id, cf.c.name, cf.c.label, cf.c.type, cf.c.integer).order_by(cf.c.name),
        "custom_values": select(cv.c.field_id, cv.c.contact_id, cv.c.num, cv.c.txt, _raw(cv.c.day)),
        "contacts": select(*[_raw(t.c[c]) for c in _CONTACT_COLUMNS]).order_by(t.c.id),
        "codes": select(ct.c.kind, ct.c.code, ct.c.contact_id),
        "profile": select(pt.c.contact_id, pt.c.questionnaire, pt.c.answer),
        # Cancelled interactions never count in filters, so they are not loaded at all.
        "interactions": select(it.c.contact_id, _raw(it.c.date), *[it.c[c] for c in INTERACTION_TEXT]).where(
            it.c.cancelled.is_(False)
        ),
    }


def _fetch(conn: Connection) -> dict[str, pa.Table]:
    """Run the snapshot's statements on the driver cursor of this transaction's connection.

    The statements are our own constants compiled with literal values (no user input); skipping SQLAlchemy's
    row objects saves about a third of the time at a million contacts."""
    raw: Any = conn.connection.dbapi_connection
    tables = {}
    for name, stmt in _statements().items():
        sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        names = [c.name for c in stmt.selected_columns]
        # Read in slices, each turned into Arrow before the next: the whole result as Python tuples would be some
        # 20 GB at ten million contacts (the process was killed for it). On PostgreSQL a server-side cursor, or
        # the driver would hold every row in client memory before the first slice.
        cursor = raw.cursor(name=f"segcore_snapshot_{name}") if conn.dialect.name == "postgresql" else raw.cursor()
        try:
            cursor.execute(sql)
            slices = []
            while rows := cursor.fetchmany(_FETCH_ROWS):
                cols = list(zip(*rows, strict=True))
                del rows
                slices.append(pa.table({n: _as_arrow(c) for n, c in zip(names, cols, strict=True)}))
        finally:
            cursor.close()
        if not slices:
            slices.append(pa.table({n: _as_arrow(()) for n in names}))
        # A slice whose column is all NULL has Arrow's null type: the others' type wins.
        tables[name] = pa.concat_tables(slices, promote_options="permissive").combine_chunks()
    return tables


_FETCH_ROWS = 200_000


def _fetch_arrow(
    path: str, version: str, on_table: Callable[[str, pa.Table], None] | None = None
) -> dict[str, pa.Table] | None:
    """The snapshot's tables straight into Arrow through the ADBC SQLite driver (no Python object per value), read
    by a child process (segcore/_arrow_reader.py says why), or None when the driver is missing, the child fails or
    the data changed while reading (the caller then reads through our own connection).

    The reads are separate statements, so the data version is read before and after: equal tokens (random, never
    reused) mean no write committed in between. `on_table(name, table)` sees each table as soon as the child has
    written it, while it reads the others; whatever it starts is only good once this returns tables."""
    if importlib.util.find_spec("adbc_driver_sqlite") is None:
        return None
    from sqlalchemy.dialects import sqlite

    request = _arrow_request(sqlite.dialect())
    with tempfile.TemporaryDirectory(prefix="segcore-snapshot-", dir=_SHM if os.access(_SHM, os.W_OK) else None) as tmp:
        folder = Path(tmp)
        tables: dict[str, pa.Table] = {}
        result: dict[str, Any] = {}
        # The child's messages go to a file: a pipe nobody reads until the end could fill and stop it.
        with open(folder / "stderr.txt", "w+", encoding="utf-8", errors="replace") as errors:
            try:
                child = subprocess.Popen(  # noqa: S603 - our own interpreter and script, arguments from our own code
                    [sys.executable, str(_READER), path, tmp], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=errors, text=True,
                )  # fmt: skip
            except (OSError, subprocess.SubprocessError) as exc:
                _last_arrow_failure[:] = [f"{type(exc).__name__}: {exc}"]
                return None
            watchdog = threading.Timer(_READER_TIMEOUT, child.kill)
            watchdog.start()
            try:
                code = _follow(child, request, folder, tables, result, on_table)
            except (OSError, ValueError, subprocess.SubprocessError) as exc:
                _last_arrow_failure[:] = [f"{type(exc).__name__}: {exc}"]
                return None
            finally:
                watchdog.cancel()
                with child:  # closes the pipes, waits for the child (killed first if still running)
                    if child.poll() is None:
                        child.kill()
            if code != 0:
                errors.seek(0)
                last = (errors.read().strip().splitlines() or ["no message"])[-1]
                _last_arrow_failure[:] = [f"the Arrow reader exited with {code}: {last}"]
                return None
    seen = result.get("versions")
    if not seen or any(str(v or "0") != version for v in seen):
        _last_arrow_failure[:] = [f"the data version changed while reading ({seen} against {version})"]
        return None
    return tables


def _follow(
    child: subprocess.Popen[str],
    request: dict[str, Any],
    folder: Path,
    tables: dict[str, pa.Table],
    result: dict[str, Any],
    on_table: Callable[[str, pa.Table], None] | None,
) -> int:
    """Send the request, take each table the child announces, keep its last message; the child's exit code."""
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(json.dumps(request))
    child.stdin.close()
    for line in child.stdout:
        message = json.loads(line)
        if "table" not in message:
            result.update(message)
            continue
        name = str(message["table"])
        # Memory-mapped, no copy: on Linux a mapping outlives the removal of its file, which the end of the
        # caller's block does; the pages go when the last table using them does.
        table = pa.ipc.open_file(pa.memory_map(str(folder / f"{name}.arrow"))).read_all()
        # Columns the child found empty throughout were not read: they are columns of nulls.
        for column in message.get("empty", ()):
            table = table.append_column(str(column), pa.nulls(table.num_rows))
        tables[name] = table
        if on_table is not None:
            on_table(name, table)
    return child.wait()


def _arrow_request(dialect: Any) -> dict[str, Any]:
    """The child's request: our own statements compiled to text (constants, no user input).

    The contacts are probed for empty nullable columns (an import maps a few columns; a column that holds nothing
    costs the driver as much as one that holds a value per row); custom values and list codes are read per field
    and per kind, only the columns the snapshot uses (_arrow_reader.py's docstring)."""

    def sql(stmt: Any) -> str:
        return str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))

    statements = {n: sql(st) for n, st in _statements().items() if n not in ("custom_values", "codes")}
    t, ct, cv = table_of(Contact), table_of(ContactCode), table_of(CustomValue)
    contacts = statements["contacts"]
    tail = contacts[contacts.index("FROM ") :]
    nullable = [c for c in _CONTACT_COLUMNS if t.c[c].nullable]
    field_id, kind = sa.bindparam("field_id", type_=sa.Integer), sa.bindparam("kind", type_=sa.String)

    def param_sql(stmt: Any) -> str:
        return str(stmt.compile(dialect=dialect))

    return {
        "version_sql": sql(select(Setting.value).where(Setting.key == _DATA_VERSION_KEY)),
        "statements": statements,
        "probe": {
            "name": "contacts",
            "columns": nullable,
            "count_sql": sql(select(*[func.count(t.c[c]).label(c) for c in nullable])) if nullable else "",
            "select": [[c, f"{sql(_raw(t.c[c]))} AS {c}"] for c in _CONTACT_COLUMNS],
            "sql": "SELECT {columns} " + tail,
        },
        "per_field": {
            "kinds": list(LIST_KINDS),
            "values": {
                name: param_sql(
                    select(cv.c.contact_id, _raw(cv.c[name])).where(cv.c.field_id == field_id).order_by(cv.c.contact_id)
                )
                for name in ("num", "txt", "day")
            },
            "codes": param_sql(
                select(ct.c.contact_id, ct.c.code).where(ct.c.kind == kind).order_by(ct.c.code, ct.c.contact_id)
            ),
        },
    }


_READER = Path(__file__).with_name("_arrow_reader.py")
# Shared memory, where the system has it: the child's files never touch a disk.
_SHM = "/dev/shm"
# A million contacts read in a few seconds; a read that takes ten minutes is stuck, and the driver path takes over.
_READER_TIMEOUT = 600


# Why the last Arrow read fell back to the driver (for tests and debugging; the fallback itself is silent).
_last_arrow_failure: list[str] = []


def _build(conn: Connection, version: str, path: str | None = None) -> Snapshot:
    if path:
        # The contacts' text columns are encoded as soon as the child has read them, while it reads the rest.
        with ThreadPoolExecutor(max_workers=2) as pool:
            early: dict[str, Any] = {}

            def on_table(name: str, table: pa.Table) -> None:
                if name == "contacts":
                    early.update(_encode_text(table, pool))

            tables = _fetch_arrow(path, version, on_table)
            if tables is not None:
                return _assemble(tables, version, text={name: f.result() for name, f in early.items()} or None)
            for future in early.values():
                future.cancel()
    return _assemble(_fetch(conn), version)


def _encode_text(contacts: pa.Table, pool: ThreadPoolExecutor) -> dict[str, Any]:
    """The contacts' text columns encoded on the pool (Arrow's kernels release the GIL): name -> future."""
    # The widest first, so the two threads end together.
    order = sorted(TEXT_COLUMNS, key=lambda name: name not in _WIDE_COLUMNS)
    return {
        name: pool.submit(
            _encode, contacts.column(name), folded=name in FOLDED_COLUMNS, distinct=name in _DISTINCT_COLUMNS
        )
        for name in order
    }


def _assemble(tables: dict[str, pa.Table], version: str, *, text: dict[str, StrColumn] | None = None) -> Snapshot:
    """The snapshot from the read tables: either whole `custom_values` and `codes` tables (the driver read) or one
    table per custom field (`cv.ID`) and per list kind (`codes.KIND`) (the Arrow read). `text`: the contacts' text
    columns when they are encoded already (_build)."""
    cols = tables["contacts"]
    ids = np.asarray(cols.column("id").to_numpy(), dtype=np.int64)
    n = len(ids)
    if text is None:
        with ThreadPoolExecutor(max_workers=2) as pool:
            encoded = {name: f.result() for name, f in _encode_text(cols, pool).items()}
    else:
        encoded = dict(text)
    text = {name: encoded[name] for name in TEXT_COLUMNS}
    dates = {name: _days(cols.column(name)) for name in DATE_COLUMNS}
    numbers = {name: _numbers(cols.column(name), _NUMBER_DTYPES[name]) for name in NUMBER_COLUMNS}
    excluded = _numbers(cols.column("exclude_from_segments"), np.float64) == 1
    org = _numbers(cols.column("org_id"), np.float64)
    has = ~np.isnan(org)
    org_pos = np.full(n, -1, dtype=np.int32)
    org_pos[has] = np.searchsorted(ids, org[has].astype(np.int64))
    type_values = text["type"].values
    is_person = text["type"].value_mask(
        np.asarray(pc.equal(type_values, "person").to_numpy(zero_copy_only=False), dtype=bool)
    )

    # Ids without gaps (a database loaded by imports): a contact's position is its id minus the first one.
    contiguous = n > 0 and int(ids[-1]) - int(ids[0]) == n - 1

    def positions(contact_ids: Any) -> np.ndarray:
        arr = np.asarray(_as_arrow(contact_ids).to_numpy(zero_copy_only=False), dtype=np.int64)
        if contiguous:
            return (arr - ids[0]).astype(np.int32)
        return np.searchsorted(ids, arr).astype(np.int32)

    source = _Source(tables, positions)
    lists = {kind: source.list_pairs(kind) for kind in LIST_KINDS}

    prof = tables["profile"]
    profile = Pairs(
        positions(prof.column("contact_id")),
        {"questionnaire": StrColumn.encode(prof.column("questionnaire")), "answer": StrColumn.encode(prof.column("answer"))},
    )
    inter = tables["interactions"]
    inter_cols: dict[str, Any] = {"date": _days(inter.column("date"))}
    for name in INTERACTION_TEXT:
        inter_cols[name] = StrColumn.encode(inter.column(name), folded=_folds(RELATIONS["interactions"][name]))
    interactions = Pairs(positions(inter.column("contact_id")), inter_cols)

    fields = _custom_columns(tables, n, source, text, dates, numbers, lists)
    return Snapshot(
        version=version, n=n, ids=ids, text=text, dates=dates, numbers=numbers, excluded=excluded,
        org_pos=org_pos, is_person=is_person, lists=lists, profile=profile, interactions=interactions,
        fields=fields,
    )


# Unique in the table (and NOT NULL): each value is its own distinct value, no hashing needed to find them.
_DISTINCT_COLUMNS = frozenset({"contact_no"})
# Usually a distinct value per contact: the costly ones to encode.
_WIDE_COLUMNS = frozenset({"name", "email", "contact_no", "phone"})


class _Source:
    """List codes and custom values by kind / field, from either shape of read tables (see _assemble)."""

    def __init__(self, tables: dict[str, pa.Table], positions: Any) -> None:
        self.tables = tables
        self.positions = positions
        self._kinds: tuple[np.ndarray, np.ndarray, pa.Array] | None = None
        self._field_ids: np.ndarray | None = None

    def list_pairs(self, kind: str) -> Pairs:
        table = self.tables.get(f"codes.{kind}")
        if table is not None or "codes" not in self.tables:
            if table is None:
                return Pairs(np.zeros(0, dtype=np.int32), {"code": StrColumn.encode(pa.array([], pa.string()))})
            return Pairs(self.positions(table.column("contact_id")), {"code": StrColumn.encode(table.column("code"))})
        if self._kinds is None:
            codes = self.tables["codes"]
            kind_arr = np.asarray(_as_arrow(codes.column("kind")).to_numpy(zero_copy_only=False), dtype=object)
            self._kinds = (kind_arr, self.positions(codes.column("contact_id")), _as_arrow(codes.column("code")))
        kind_arr, pos_all, code_col = self._kinds
        sel = kind_arr == kind
        return Pairs(pos_all[sel], {"code": StrColumn.encode(code_col.filter(pa.array(sel)))})

    def values(self, field_id: int, column: str) -> tuple[np.ndarray, pa.Array]:
        """(row positions, values) of one custom field, in position order."""
        table = self.tables.get(f"cv.{field_id}")
        if table is None and "custom_values" in self.tables:
            values = self.tables["custom_values"]
            if self._field_ids is None:
                self._field_ids = np.asarray(
                    _as_arrow(values.column("field_id")).to_numpy(zero_copy_only=False), dtype=np.int64
                )
            table = values.filter(pa.array(self._field_ids == field_id))
        if table is None:
            return np.zeros(0, dtype=np.int32), pa.nulls(0)
        pos = self.positions(table.column("contact_id"))
        col = _as_arrow(table.column(column))
        if len(pos) > 1 and not bool(np.all(pos[1:] >= pos[:-1])):
            # Position order: a text column's distinct values are then in the order of their first row.
            order = np.argsort(pos, kind="stable")
            pos, col = pos[order], col.take(pa.array(order))
        return pos, col


def _custom_columns(
    tables: dict[str, pa.Table],
    n: int,
    source: _Source,
    text: dict[str, StrColumn],
    dates: dict[str, np.ndarray],
    numbers: dict[str, np.ndarray],
    lists: dict[str, Pairs],
) -> FieldRegistry:
    """Every custom field as a full-length column (no value row = empty), keyed by its name like a built-in one."""
    defs = tables["custom_fields"].to_pylist()
    if not defs:
        return BUILTIN
    specs = []
    for d in defs:
        spec = custom_spec(int(d["id"]), d["name"], d["label"], d["type"], bool(d["integer"]))
        specs.append(spec)
        if spec.type == "list":
            lists[spec.name] = source.list_pairs(spec.code_kind)
            continue
        if spec.type in ("number", "boolean"):
            pos, values = source.values(spec.custom_id, "num")
            arr = np.full(n, np.nan, dtype=np.float64)
            arr[pos] = _numbers(values, np.float64)
            numbers[spec.name] = arr
        elif spec.type == "date":
            pos, values = source.values(spec.custom_id, "day")
            days = np.full(n, NULL_DAY, dtype=np.int32)
            days[pos] = _days(values)
            dates[spec.name] = days
        else:
            # Encoded on the rows that have a value, the codes then spread to every contact (-1: no value): the same
            # column as encoding a full-length one, without a million Python objects.
            pos, values = source.values(spec.custom_id, "txt")
            col = _encode(values, folded=_folds(spec))
            codes = np.full(n, -1, dtype=col.codes.dtype)
            codes[pos] = col.codes
            text[spec.name] = StrColumn(codes, col.values, col.folded)
    return FieldRegistry.of(tuple(specs))


# ----------------------------------------------------------------------------------------------- persistence


def _file_of(db: Database) -> str | None:
    """The file of an SQLite file database (None for other databases)."""
    url = make_url(db.url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return url.database


def snapshot_path(db: Database) -> Path | None:
    """Where the snapshot of an SQLite file database is kept between processes (None for other databases)."""
    url = make_url(db.url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(f"{url.database}.snapshot")


def _save(snap: Snapshot, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + f".{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(_MAGIC)
        fh.write(f"{FORMAT_VERSION} {snap.version}\n".encode())  # readable without unpickling
        pickle.dump((FORMAT_VERSION, snap.version, snap), fh, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)  # atomic: a reader never sees half a file


def _kept_version(path: Path) -> str | None:
    """The data version of the snapshot file, read from its header (None if absent or not ours)."""
    try:
        with open(path, "rb") as fh:
            if fh.read(len(_MAGIC)) != _MAGIC:
                return None
            fmt, _, version = fh.readline().decode().strip().partition(" ")
    except (OSError, UnicodeDecodeError):
        return None
    return version if fmt == str(FORMAT_VERSION) else None


def _load(path: Path, version: str) -> Snapshot | None:
    """The kept snapshot if it is for this data version; our own file next to our own database."""
    try:
        with open(path, "rb") as fh:
            if fh.read(len(_MAGIC)) != _MAGIC:
                return None
            fh.readline()
            fmt, kept_version, snap = pickle.load(fh)  # noqa: S301 - written by _save beside the database
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, AttributeError, ImportError):
        return None
    if fmt != FORMAT_VERSION or kept_version != version or not isinstance(snap, Snapshot):
        return None
    return snap


_MAGIC = b"SEGCORE-SNAPSHOT\n"


# ----------------------------------------------------------------------------------------------- cache

_cache: dict[str, Snapshot] = {}
_lock = threading.Lock()
_building: dict[str, threading.Thread] = {}


def _cache_key(db: Database | str) -> str:
    return hashlib.sha1((db if isinstance(db, str) else db.url).encode()).hexdigest()


def cached_snapshot(db: Database | str, version: str) -> Snapshot | None:
    """The snapshot this process holds for the database (or its URL), if it is of data version `version`."""
    snap = _cache.get(_cache_key(db))
    return snap if snap is not None and snap.version == version else None


# Up to this many contacts a missing snapshot is built in the caller's thread (well under two seconds); above it,
# in the background while previews run in SQL, so a first preview after an import never waits half a minute.
SYNC_BUILD_MAX = 100_000


def load_snapshot(
    db: Database, *, max_contacts: int | None = None, wait: bool | None = None
) -> Snapshot | None:
    """The snapshot for the database's current data: from memory, from its file, or built.

    None when the database has more contacts than `max_contacts` (previews then run in SQL), or while a large
    snapshot is still being built in the background. `wait=True` always builds in the caller's thread,
    `wait=False` never does; None decides by size (SYNC_BUILD_MAX)."""
    with db.read() as conn:
        version = data_version(conn)
        snap = cached_snapshot(db, version)
        if snap is not None:
            return snap
        count = None
        if max_contacts is not None or wait is None:
            count = conn.execute(select(func.count()).select_from(table_of(Contact))).scalar_one()
        if max_contacts is not None and count is not None and count > max_contacts:
            return None
    path = snapshot_path(db)
    if wait is None:
        # A kept file for this very data loads in about a second: worth waiting for.
        wait = (count or 0) <= SYNC_BUILD_MAX or (path is not None and _kept_version(path) == version)
    if not wait:
        start_background_build(db)
        return None
    return _load_or_build(db)


def _load_or_build(db: Database) -> Snapshot:
    key = _cache_key(db)
    with _lock:
        with db.read() as conn:
            # The version is read inside the transaction that reads the rows, so the two match.
            version = data_version(conn)
            snap = cached_snapshot(db, version)
            if snap is not None:
                return snap
            path = snapshot_path(db)
            snap = _load(path, version) if path is not None else None
            if snap is None:
                snap = _build(conn, version, _file_of(db))
                if path is not None:
                    # Kept for the next process on a thread of its own: this one can use the snapshot already.
                    # Not a daemon: a process that ends right away still finishes writing the file.
                    threading.Thread(target=_quiet_save, args=(snap, path), name="snapshot-save").start()
        _cache[key] = snap
        return snap


def _quiet_save(snap: Snapshot, path: Path) -> None:
    try:
        _save(snap, path)
    except OSError:
        pass  # a read-only data folder only costs the next process a rebuild


def start_background_build(db: Database) -> None:
    """Build (or load) the snapshot in a daemon thread, once at a time per database."""
    key = _cache_key(db)
    with _lock:
        thread = _building.get(key)
        if thread is not None and thread.is_alive():
            return
        thread = threading.Thread(target=_quiet_build, args=(db,), name=f"snapshot-{key[:8]}", daemon=True)
        _building[key] = thread
        thread.start()


def _quiet_build(db: Database) -> None:
    try:
        _load_or_build(db)
    except Exception:  # noqa: BLE001 - previews fall back to SQL; the next call retries
        pass


def drop_cached(db: Database | None = None) -> None:
    """Forget cached snapshots (all, or one database's); files on disk are checked by version anyway."""
    with _lock:
        if db is None:
            _cache.clear()
        else:
            _cache.pop(_cache_key(db), None)
