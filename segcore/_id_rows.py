"""A list of integer ids as the rows of a one-column table, bound as one parameter; or inserted as rows in one go.

Three million ids bound one row at a time (executemany) cost seconds of driver calls; bound as one text the
database expands them itself, in C: SQLite's `json_each` over a JSON array, PostgreSQL's `unnest` over a `bigint[]`.
The text is a bound parameter like any other (digits, commas and spaces only, built by numpy), never SQL text.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy import BigInteger, Connection, Select, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY

__all__ = ["id_rows", "id_text", "insert_ids"]


def id_text(ids: Any) -> str:
    """The ids as `1, 22,333` (comma-separated, numbers right-aligned with spaces: JSON and PostgreSQL's array
    input both skip white space around a number); numpy writes the digits of all of them at once."""
    a = np.asarray(ids, dtype=np.int64)
    if not len(a):
        return ""
    if int(a.min()) < 0:
        # Negative ids (a source's contacts) come in small numbers: the plain way is fast enough.
        return ",".join(map(str, a.tolist()))
    width = len(str(int(a.max())))
    buf = np.empty((len(a), width + 1), dtype=np.uint8)
    rest = a.copy()
    for k in range(width - 1, -1, -1):
        buf[:, k] = 48 + rest % 10
        rest //= 10
    for k in range(width - 1):
        # A leading zero would not be a JSON number: a space in its place.
        buf[a < 10 ** (width - 1 - k), k] = 32
    buf[:, width] = 44
    return buf.tobytes()[:-1].decode("ascii")


def id_rows(conn: Connection, ids: Any) -> Select[Any]:
    """SELECT id FROM the given ids (one row each, in the order given), for `IN (...)` or `INSERT ... SELECT`."""
    # The text is written when the statement runs (`callable_`), not before: a caller that ends up not running it
    # (the Add, which inserts from the array itself) pays nothing.
    if conn.dialect.name == "postgresql":
        text = bindparam("id_list", callable_=lambda: "{" + id_text(ids) + "}", type_=sa.Text, unique=True)
        table = func.unnest(sa.cast(text, ARRAY(BigInteger))).table_valued("id").render_derived(name="ids")
        return select(table.c.id)
    text = bindparam("id_list", callable_=lambda: "[" + id_text(ids) + "]", type_=sa.Text, unique=True)
    each = func.json_each(text).table_valued("value")
    return select(each.c.value.label("id"))


def insert_ids(conn: Connection, table: sa.Table, column: str, ids: Any, **constants: int) -> int:
    """Insert one row per id into `table`: the id in `column`, the same `constants` in every row; how many.

    SQLite: one INSERT ... SELECT over `id_rows`. PostgreSQL: COPY in its binary format, which numpy writes for all
    rows at once; the server then fills whole pages per WAL record (an INSERT ... SELECT writes one record per row,
    most of a 3M-member Add's time). The COPY statement is our table's and columns' names, quoted by the dialect;
    the rows are data, never SQL."""
    a = np.asarray(ids, dtype=np.int64)
    if conn.dialect.name != "postgresql":
        rows = id_rows(conn, a).subquery()
        names = [*constants, column]
        picked = [sa.literal(v, table.c[k].type) for k, v in constants.items()] + [rows.c.id]
        return int(conn.execute(sa.insert(table).from_select(names, select(*picked))).rowcount)
    if not len(a):
        return 0
    names = [column, *constants]
    fields = []
    for name in names:
        big = isinstance(table.c[name].type, BigInteger)
        fields += [(f"{name}_len", ">i4"), (name, ">i8" if big else ">i4")]
    if not isinstance(table.c[column].type, BigInteger) and (int(a.min()) < -(2**31) or int(a.max()) >= 2**31):
        raise ValueError(f"ids out of range for {table.name}.{column}")
    buf = np.empty(len(a), dtype=np.dtype([("count", ">i2"), *fields]))
    buf["count"] = len(names)
    for name in names:
        buf[f"{name}_len"] = 8 if isinstance(table.c[name].type, BigInteger) else 4
        buf[name] = a if name == column else constants[name]
    # Signature, flags, header extension length; the rows; the trailer.
    data = b"PGCOPY\n\xff\r\n\x00" + bytes(8) + buf.tobytes() + b"\xff\xff"
    prep = conn.dialect.identifier_preparer
    statement = (
        f"COPY {prep.format_table(table)} ({', '.join(prep.quote(n) for n in names)}) FROM STDIN (FORMAT BINARY)"
    )
    raw: Any = conn.connection.dbapi_connection
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(data)
    return len(a)
