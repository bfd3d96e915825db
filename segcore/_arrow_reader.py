"""The snapshot's Arrow read, run as a child process: `python _arrow_reader.py DATABASE OUT_DIR` < request.json.

Why a separate process: the ADBC SQLite driver carries its own copy of SQLite, and two copies of SQLite in one process
break each other's POSIX file locks (closing one copy's descriptor drops the locks the other holds), which can let a
writer in under a reader and corrupt the file (sqlite.org/howtocorrupt.html, "multiple copies of SQLite linked into
the same application"). Alone in its process the driver is one more reader, which SQLite is made for.

This file is run by path, not imported as `segcore._arrow_reader`: it needs only pyarrow and the driver, so the
child starts without loading the whole package. The request (JSON on standard input) holds the statements, our own
constants compiled by the parent; each result is written to OUT_DIR/NAME.arrow (Arrow IPC) and announced on standard
output as a JSON line ({"table": NAME, "empty": [...]}), so the parent can start on it; the last line holds the data
versions read before and after, so the parent can tell a consistent read from a torn one.

The driver spends its time per cell read, so the request asks for as few cells as it can:
- `probe`: the nullable columns of `probe.table` that hold no value at all (one counting scan) are left out of that
  statement; their names come back under "empty" and the parent makes them columns of nulls;
- `per_field`: custom values are read one field at a time, only the column the field's type uses ("cv.ID"), and
  list codes one kind at a time without the kind ("codes.KIND"); the fields come from the `custom_fields` statement,
  the kinds from `per_field.kinds` plus the custom list fields'.
Statements go to two connections on two threads, largest first: the driver releases the GIL while it reads.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
from pathlib import Path
from typing import Any

# A custom field's type -> the custom_values column that holds its values.
VALUE_COLUMN = {"number": "num", "boolean": "num", "date": "day", "code": "txt", "text": "txt"}
WORKERS = 2


def _connect(adbc: Any, path: str) -> tuple[Any, Any]:
    conn = adbc.connect(path)
    cur = conn.cursor()
    cur.execute("PRAGMA busy_timeout = 30000")  # wait out a writer's checkpoint instead of failing
    # One batch per result: the driver infers each column's type from the rows of a batch, and a first batch of
    # NULLs followed by numbers would otherwise be an error.
    cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": "1000000000"})
    return conn, cur


def _version(cur: Any, sql: str) -> Any:
    cur.execute(sql)
    row = cur.fetchone()
    value = row[0] if row else None
    return json.loads(value) if isinstance(value, str) else value


def _table(cur: Any, sql: str, params: list[Any] | None = None) -> Any:
    if params:
        cur.execute(sql, params)
    else:
        cur.execute(sql)
    return cur.fetch_arrow_table()


def _write(pa: Any, out: Path, name: str, table: Any) -> None:
    with pa.OSFile(str(out / f"{name}.arrow"), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def _probed(cur: Any, probe: dict[str, Any], empty: dict[str, list[str]]) -> str:
    """The probed statement without the columns that hold no value (all, when every column is empty)."""
    columns: list[str] = probe["columns"]
    counts = _table(cur, probe["count_sql"]).to_pylist()[0] if columns else {}
    none = [c for c in columns if not counts.get(c)]
    empty[probe["name"]] = none
    keep = [expr for name, expr in probe["select"] if name not in none]
    return probe["sql"].replace("{columns}", ", ".join(keep))


def _tasks(
    request: dict[str, Any], fields: list[dict[str, Any]]
) -> list[tuple[str, str, list[Any] | None, int]]:
    """(output name, statement, parameters, rough size) of every read; the probed statement is marked by None."""
    tasks: list[tuple[str, str, list[Any] | None, int]] = []
    probe = request.get("probe")
    for name, sql in request["statements"].items():
        if name == "custom_fields":
            continue
        if probe and name == probe["name"]:
            tasks.append((name, "", None, 100))
        else:
            tasks.append((name, sql, None, 10))
    per_field = request.get("per_field")
    if per_field:
        kinds = list(per_field["kinds"])
        for f in fields:
            field_id = int(f["id"])
            if f["type"] == "list":
                kinds.append(f"cf{field_id}")
            elif f["type"] in VALUE_COLUMN:
                tasks.append((f"cv.{field_id}", per_field["values"][VALUE_COLUMN[f["type"]]], [field_id], 20))
        tasks += [(f"codes.{kind}", per_field["codes"], [kind], 20) for kind in kinds]
    # Largest first, so the two threads end together.
    return sorted(tasks, key=lambda t: -t[3])


def main(argv: list[str]) -> int:
    import adbc_driver_sqlite.dbapi as adbc
    import pyarrow as pa
    import pyarrow.ipc  # noqa: F401 - pa.ipc

    path, out = argv[0], Path(argv[1])
    request = json.load(sys.stdin)
    conns = [_connect(adbc, path) for _ in range(WORKERS)]
    try:
        first = conns[0][1]
        before = _version(first, request["version_sql"])
        fields_sql = request["statements"].get("custom_fields")
        fields = _table(first, fields_sql) if fields_sql else None
        said = threading.Lock()
        if fields is not None:
            _write(pa, out, "custom_fields", fields)
            print(json.dumps({"table": "custom_fields", "empty": []}), flush=True)
        tasks: queue.SimpleQueue[tuple[str, str, list[Any] | None, int]] = queue.SimpleQueue()
        for task in _tasks(request, fields.to_pylist() if fields is not None else []):
            tasks.put(task)
        empty: dict[str, list[str]] = {}
        written = ["custom_fields"] if fields is not None else []
        failures: list[BaseException] = []

        def work(cur: Any) -> None:
            try:
                while True:
                    try:
                        name, sql, params, _size = tasks.get_nowait()
                    except queue.Empty:
                        return
                    if not sql:
                        sql = _probed(cur, request["probe"], empty)
                    _write(pa, out, name, _table(cur, sql, params))
                    written.append(name)
                    # Each table is announced once written: the parent starts on it while the others are read.
                    with said:
                        print(json.dumps({"table": name, "empty": empty.get(name, [])}), flush=True)
            except BaseException as exc:  # noqa: BLE001 - re-raised by the main thread
                failures.append(exc)

        threads = [threading.Thread(target=work, args=(cur,)) for _conn, cur in conns]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if failures:
            raise failures[0]
        after = _version(first, request["version_sql"])
    finally:
        for conn, cur in conns:
            cur.close()
            conn.close()
    print(json.dumps({"versions": [before, after], "tables": written, "empty": empty}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
