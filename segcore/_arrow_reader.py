"""The snapshot's Arrow read, run as a child process: `python _arrow_reader.py DATABASE OUT_DIR` < request.json.

Why a separate process: the ADBC SQLite driver carries its own copy of SQLite, and two copies of SQLite in one process
break each other's POSIX file locks (closing one copy's descriptor drops the locks the other holds), which can let a
writer in under a reader and corrupt the file (sqlite.org/howtocorrupt.html, "multiple copies of SQLite linked into
the same application"). Alone in its process the driver is one more reader, which SQLite is made for.

This file is run by path, not imported as `segcore._arrow_reader`: it needs only pyarrow and the driver, so the
child starts without loading the whole package. The request (JSON on standard input) holds the statements, our own
constants compiled by the parent; each result is written to OUT_DIR/NAME.arrow (Arrow IPC), and the data versions
read before and after go to standard output as JSON, so the parent can tell a consistent read from a torn one.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

# The two largest reads (custom values, list codes) run beside the rest on a second connection: the driver
# releases the GIL while it reads, so two cores share the work.
HEAVY = ("custom_values", "codes")


def _version(adbc: Any, path: str, sql: str) -> Any:
    with adbc.connect(path) as conn, conn.cursor() as cur:
        cur.execute("PRAGMA busy_timeout = 30000")  # wait out a writer's checkpoint instead of failing
        cur.execute(sql)
        row = cur.fetchone()
    value = row[0] if row else None
    return json.loads(value) if isinstance(value, str) else value


def _read(adbc: Any, pa: Any, path: str, out: Path, statements: dict[str, str]) -> None:
    with adbc.connect(path) as conn, conn.cursor() as cur:
        cur.execute("PRAGMA busy_timeout = 30000")
        # One batch per result: the driver infers each column's type from the rows of a batch, and a first batch
        # of NULLs followed by numbers would otherwise be an error.
        cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": "1000000000"})
        for name, sql in statements.items():
            cur.execute(sql)
            table = cur.fetch_arrow_table()
            with pa.OSFile(str(out / f"{name}.arrow"), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)


def main(argv: list[str]) -> int:
    import adbc_driver_sqlite.dbapi as adbc
    import pyarrow as pa
    import pyarrow.ipc  # noqa: F401 - pa.ipc

    path, out = argv[0], Path(argv[1])
    request = json.load(sys.stdin)
    statements: dict[str, str] = request["statements"]
    heavy = {n: s for n, s in statements.items() if n in HEAVY}
    rest = {n: s for n, s in statements.items() if n not in HEAVY}
    before = _version(adbc, path, request["version_sql"])
    with ThreadPoolExecutor(max_workers=2) as pool:
        for done in [pool.submit(_read, adbc, pa, path, out, part) for part in (heavy, rest)]:
            done.result()
    after = _version(adbc, path, request["version_sql"])
    json.dump({"versions": [before, after]}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
