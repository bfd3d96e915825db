"""The commit of a big Add at ten million contacts: `python -m bench.commit_scale --contacts 10000000 [--pg-url URL]`.

A step's commit writes its member rows in the application database. The dashboard holds the in-memory snapshot
(its previews need it), so its commit finds who enters or leaves with numpy and sends only their ids, as one bound
list (`evaluation/memory.py` MemoryStepSets); a process without the snapshot (the CLI) commits in SQL, which scans
the contacts table again. For SQLite and, with `--pg-url`, PostgreSQL (the databases of bench/scale.py, built once
and reused), this prints side by side:

- **snapshot**: the Add of about 30 % of the contacts (bench/scale.py's commit filter) on a fresh segment, a Refine
  after it, the undo of that Refine, with the snapshot loaded first (its load time and the RSS are printed);
- **sql** (`--sql`, minutes at 10M): the same steps with no snapshot in the process.

Every figure carries the 1-minute load average: the machine may be shared. The segments are deleted after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from segcore._db import Database
from segcore._engine import apply_action, create_segment, delete_segment, undo
from segcore._snapshot import drop_cached, load_snapshot
from segcore._steps import ActionRequest
from segcore.evaluation import step_sets

from .scale import (
    REFINE_AFTER,
    _say,
    _segment_exists,
    load,
    node_of,
    pg_database_url,
    pick_commit_filter,
    rss_mb,
)
from .scale_data import ensure_contacts


def _timed(fn: Any) -> tuple[float, float, Any]:
    start = time.perf_counter()
    out = fn()
    return round((time.perf_counter() - start) * 1000, 1), load(), out


def run_path(db: Database, lines: list[str], repeat: int, path: str) -> dict[str, Any]:
    """Add, Refine and the Refine's undo on `repeat` fresh segments; medians and every run."""
    with db.write() as conn:
        used = type(step_sets(conn)).__name__
    runs: dict[str, list[float]] = {"add": [], "refine": [], "undo": []}
    loads: list[float] = []
    sizes: dict[str, int] = {}
    for i in range(max(1, repeat)):
        no = f"COMMIT-{path[:3].upper()}{os.getpid()}-{i}"
        if _segment_exists(db, no):
            delete_segment(db, no, user="bench")
        create_segment(db, no, description="bench.commit_scale", owner="bench")
        ms, ld, res = _timed(lambda no=no: apply_action(db, no, ActionRequest("add", node_of(lines)), user="bench"))
        runs["add"].append(ms)
        loads.append(ld)
        sizes["add"] = res.added
        _say(f"  {db.dialect} {path}: add {res.added:,} in {ms:.0f} ms  load {ld}")
        ms, ld, res = _timed(
            lambda no=no: apply_action(db, no, ActionRequest("refine", node_of(REFINE_AFTER)), user="bench")
        )
        runs["refine"].append(ms)
        loads.append(ld)
        sizes["refine_removed"] = res.removed
        _say(f"  {db.dialect} {path}: refine -{res.removed:,} in {ms:.0f} ms  load {ld}")
        ms, ld, _ = _timed(lambda no=no: undo(db, no, user="bench"))
        runs["undo"].append(ms)
        loads.append(ld)
        _say(f"  {db.dialect} {path}: undo of the refine in {ms:.0f} ms  load {ld}")
        delete_segment(db, no, user="bench")
    out: dict[str, Any] = {"sets": used, "load": max(loads), **sizes}
    for op, times in runs.items():
        out[f"{op}_ms"] = round(statistics.median(times))
        out[f"{op}_ms_all"] = [round(t) for t in times]
    return out


def run_database(db: Database, n: int, args: argparse.Namespace, base: int) -> dict[str, Any]:
    out: dict[str, Any] = {"build": ensure_contacts(db, n, base=base)}
    start = time.perf_counter()
    load_snapshot(db, wait=True)
    out["snapshot_load_s"] = round(time.perf_counter() - start, 1)
    out["snapshot_load_load"] = load()
    out.update(rss_mb())
    _say(f"{db.dialect}: snapshot in {out['snapshot_load_s']} s, RSS {out['rss_mb']} MB  load {load()}")
    lines, size = pick_commit_filter(db, n)
    out["filter"], out["matched"] = lines, size
    _say(f"{db.dialect}: commit filter {lines}: {size:,} contacts")
    out["snapshot"] = run_path(db, lines, args.repeat, "snapshot")
    if args.sql:
        drop_cached(db)
        out["sql"] = run_path(db, lines, 1, "sql")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.commit_scale", description=__doc__.split("\n\n")[0])
    ap.add_argument("--contacts", type=int, default=10_000_000)
    ap.add_argument("--base", type=int, default=None, help="size of the demo copied to make the contacts")
    ap.add_argument("--sqlite", type=Path, default=None, help="SQLite file (default /tmp/scale{N}.db)")
    ap.add_argument("--pg-url", default=os.environ.get("SEGCORE_BENCH_PG_URL"), help="a PostgreSQL server URL")
    ap.add_argument("--repeat", type=int, default=2, help="fresh segments per figure (median)")
    ap.add_argument("--sql", action="store_true", help="also commit with no snapshot in the process (slow)")
    ap.add_argument("--no-sqlite", dest="use_sqlite", action="store_false", help="PostgreSQL only")
    ap.add_argument("--json", action="store_true", help="print the result as one JSON line on stdout")
    args = ap.parse_args(argv)
    n = args.contacts
    result: dict[str, Any] = {"contacts": n, "cpus": os.cpu_count(), "load_start": load()}
    if args.use_sqlite:
        sqlite = Database.open(f"sqlite:///{args.sqlite or Path(f'/tmp/scale{n}.db')}")
        result["sqlite"] = run_database(sqlite, n, args, args.base)
        drop_cached(sqlite)  # one snapshot in memory at a time: ten million contacts take gigabytes
        sqlite.dispose()
    if args.pg_url:
        pg = Database.open(pg_database_url(args.pg_url, n))
        result["pg"] = run_database(pg, n, args, args.base)
        pg.dispose()
    result.update({"final_" + k: v for k, v in rss_mb().items()})
    _say(f"{'':12}{'sets':>16}{'add':>10}{'refine':>10}{'undo':>10}{'load':>7}")
    for name in ("sqlite", "pg"):
        for path in ("snapshot", "sql"):
            row = result.get(name, {}).get(path)
            if row:
                _say(f"{name + ' ' + path:<12}{row['sets']:>16}{row['add_ms']:>8} ms{row['refine_ms']:>7} ms"
                     f"{row['undo_ms']:>7} ms{row['load']:>7}")  # fmt: skip
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
