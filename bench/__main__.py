"""Benchmark: `python -m bench --contacts N [--json]`.

Generates (or reuses) N demo contacts as import files, imports them into a fresh embedded database, then measures
previews (ours in memory, ours in SQL, pandas and DuckDB baselines on the same data and filters), commits of
add/refine/reduce with their undo and redo, and the Builder page's first render. Prints a table; with --json the
last line is one JSON object with the headline figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.dialects import postgresql

from bench.baseline import duckdb_connection, load_pandas, pandas_preview
from bench.filters import FILTERS, BenchFilter
from segcore import import_contacts, import_interactions
from segcore._db import Database
from segcore._demo import write_demo_csv
from segcore._engine import ActionRequest, apply_action, create_segment, redo, undo
from segcore._filter_sql import compile_filter
from segcore._filter_text import parse_text
from segcore._filter_tree import Node, from_json
from segcore._models import Contact
from segcore._preview import clear_caches, preview_step
from segcore._snapshot import drop_cached, load_snapshot

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("add", "refine", "reduce")


def _ms(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000)
    return times, result


def _p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return float(np.percentile(np.asarray(values), q))


def _node(f: BenchFilter) -> Node:
    return parse_text(f.ours) if isinstance(f.ours, list) else from_json(f.ours)


def _say(quiet: bool, *parts: Any) -> None:
    if not quiet:
        print(*parts, flush=True)


def _duckdb_preview(con: Any, node: Node, seg_id: int, kind: str, today: dt.date) -> int:
    contacts = Contact.__table__
    where = str(
        select(contacts.c.id)
        .where(compile_filter(node, today=today))
        .compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    )
    # Benchmark-only SQL: our own compiled filter and integer ids, never user input.
    members = f"SELECT contact_id FROM segment_members WHERE segment_id = {seg_id}"  # noqa: S608
    if kind == "add":
        after = f"SELECT contact_id AS id FROM segment_members WHERE segment_id = {seg_id} UNION ({where})"  # noqa: S608
    elif kind == "refine":
        after = f"{members} AND contact_id IN ({where})"
    else:
        after = f"{members} AND contact_id NOT IN ({where})"
    n = con.execute(f"SELECT count(*) FROM ({after})").fetchone()[0]  # noqa: S608 - our own compiled SQL
    for col in ("country", "gender", "acquisition_source", "churn_risk"):
        con.execute(f"SELECT {col}, count(*) FROM contacts WHERE id IN ({after}) GROUP BY 1").fetchall()  # noqa: S608
    return int(n)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--contacts", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=5, help="runs of each preview measurement")
    ap.add_argument("--commit-repeat", type=int, default=3, help="runs of each commit/undo/redo measurement")
    ap.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--no-duckdb", action="store_true")
    ap.add_argument("--no-sql-preview", action="store_true", help="skip the (slow) SQL-path previews")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    quiet = False
    today = dt.date.today()
    n = args.contacts
    out: dict[str, Any] = {"contacts": n}

    work = args.workdir / f"n{n}_s{args.seed}_{today.isoformat()}"
    contacts_csv, interactions_csv = work / "contacts.csv", work / "interactions.csv"
    if not (contacts_csv.exists() and interactions_csv.exists()):
        _say(quiet, f"generating {n:,} demo contacts into {work} ...")
        write_demo_csv(work, n, seed=args.seed, today=today)

    db_path = work / "bench.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    db = Database.open(f"sqlite:///{db_path}")
    start = time.perf_counter()
    report = import_contacts(db, contacts_csv, strict=True)
    out["import_s"] = round(time.perf_counter() - start, 2)
    start = time.perf_counter()
    ireport = import_interactions(db, interactions_csv, strict=True)
    out["import_interactions_s"] = round(time.perf_counter() - start, 2)
    out["interactions"] = ireport.rows_valid
    _say(quiet, f"import: {report.rows_valid:,} contacts in {out['import_s']} s; "
         f"{ireport.rows_valid:,} interactions in {out['import_interactions_s']} s")

    drop_cached()
    start = time.perf_counter()
    snap = load_snapshot(db, wait=True)
    assert snap is not None
    out["snapshot_build_s"] = round(time.perf_counter() - start, 2)
    out["snapshot_mb"] = round(snap.nbytes() / 1e6, 1)
    _say(quiet, f"snapshot: built in {out['snapshot_build_s']} s, {out['snapshot_mb']} MB")

    # ---------------------------------------------------------------- previews
    base_no = "BENCH-BASE"
    create_segment(db, base_no, description="benchmark base", owner="bench")
    apply_action(db, base_no, ActionRequest("add", parse_text(["country=FR|NL"])), user="bench")
    with db.read() as conn:
        from segcore._engine import _segment_row

        base_row = _segment_row(conn, base_no)
    _say(quiet, f"base segment: {base_row.size:,} members")
    with db.read() as conn:
        order = list(conn.execute(select(Contact.contact_no).order_by(Contact.id)).scalars())
    pdata = load_pandas(contacts_csv, interactions_csv, today, order)
    from segcore._preview import _members_mask

    members = _members_mask(db, snap, base_row.id, base_row.version)
    con = None if args.no_duckdb else duckdb_connection(db_path)
    if con is None and not args.no_duckdb:
        _say(quiet, "duckdb not installed: its baseline is skipped")

    ours: list[float] = []
    ours_by_kind: dict[str, list[float]] = {k: [] for k in KINDS}
    pandas_t: list[float] = []
    duck_t: list[float] = []
    sql_t: list[float] = []
    disagree: list[str] = []
    rows = []
    for f in FILTERS:
        node = _node(f)
        mask = np.asarray(f.pandas(pdata), dtype=bool)
        for kind in KINDS:
            request = ActionRequest(kind, node)
            preview_step(db, base_no, request, today=today)  # warm the member and chart caches once
            t_ours, pv = _ms(lambda r=request: preview_step(db, base_no, r, today=today), args.repeat)
            t_pd, pres = _ms(lambda m=mask, k=kind: pandas_preview(pdata, m, members, k), args.repeat)
            if (pv.counts.added, pv.counts.removed) != (pres["added"], pres["removed"]):
                disagree.append(f"{f.name}/{kind}: ours +{pv.counts.added}/-{pv.counts.removed}, "
                                f"pandas +{pres['added']}/-{pres['removed']}")
            ours += t_ours
            ours_by_kind[kind] += t_ours
            pandas_t += t_pd
            t_duck: list[float] = []
            if con is not None:
                t_duck, _ = _ms(lambda k=kind, nd=node: _duckdb_preview(con, nd, base_row.id, k, today), args.repeat)
                duck_t += t_duck
            t_sql: list[float] = []
            if not args.no_sql_preview and kind == "add":
                t_sql, _ = _ms(lambda r=request: preview_step(db, base_no, r, today=today, backend="sql"), 1)
                sql_t += t_sql
            rows.append((f.name, kind, pv.counts.matched, statistics.median(t_ours), statistics.median(t_pd),
                         statistics.median(t_duck) if t_duck else float("nan"),
                         t_sql[0] if t_sql else float("nan")))
    _say(quiet, "")
    _say(quiet, f"{'filter':<24}{'kind':<8}{'matched':>10}{'ours ms':>10}{'pandas':>10}{'duckdb':>10}{'sql':>10}")
    for name, kind, matched, a, b, c, d in rows:
        _say(quiet, f"{name:<24}{kind:<8}{matched:>10,}{a:>10.1f}{b:>10.1f}{c:>10.1f}{d:>10.1f}")
    out["preview_filters"] = len(FILTERS)
    out["preview_p50_ms"] = round(_p(ours, 50), 1)
    out["preview_p95_ms"] = round(_p(ours, 95), 1)
    for kind in KINDS:
        out[f"preview_{kind}_p50_ms"] = round(_p(ours_by_kind[kind], 50), 1)
    out["baseline_pandas_p50_ms"] = round(_p(pandas_t, 50), 1)
    out["baseline_pandas_p95_ms"] = round(_p(pandas_t, 95), 1)
    if duck_t:
        out["baseline_duckdb_p50_ms"] = round(_p(duck_t, 50), 1)
    if sql_t:
        out["preview_sql_p50_ms"] = round(_p(sql_t, 50), 1)
    out["preview_ratio"] = round(out["preview_p50_ms"] / out["baseline_pandas_p50_ms"], 2)
    out["preview_disagreements"] = len(disagree)
    for line in disagree:
        _say(quiet, "DISAGREE", line)

    # ---------------------------------------------------------------- commits, undo, redo
    commit: dict[str, list[float]] = {}
    add_f = parse_text(["country=FR|NL"])
    # Keeps the 45+ and so removes ~180k of the ~284k added: the "~200k removed" refine the targets speak of.
    refine_f = parse_text(["age_band=45-54|55-64|65+"])
    reduce_f = parse_text(["churn_risk=high"])
    sizes: dict[str, int] = {}
    for r in range(args.commit_repeat):
        no = f"BENCH-C{r}"
        create_segment(db, no, description="benchmark commits", owner="bench")
        for kind, flt in (("add", add_f), ("refine", refine_f), ("reduce", reduce_f)):
            t, res = _ms(lambda k=kind, fl=flt, s=no: apply_action(db, s, ActionRequest(k, fl), user="bench"), 1)
            commit.setdefault(f"commit_{kind}_ms", []).extend(t)
            sizes[kind] = res.added or res.removed
            t, _ = _ms(lambda s=no: undo(db, s, user="bench"), 1)
            commit.setdefault(f"undo_{kind}_ms", []).extend(t)
            t, _ = _ms(lambda s=no: redo(db, s, user="bench"), 1)
            commit.setdefault(f"redo_{kind}_ms", []).extend(t)
    _say(quiet, "")
    _say(quiet, f"commits (median of {args.commit_repeat}): add +{sizes['add']:,}, refine -{sizes['refine']:,}, "
         f"reduce -{sizes['reduce']:,} members")
    for key, values in commit.items():
        out[key] = round(statistics.median(values), 1)
        _say(quiet, f"  {key:<20}{out[key]:>10.1f} ms")
    out["commit_sizes"] = sizes
    out["undo_ms"] = max(out["undo_add_ms"], out["undo_refine_ms"], out["undo_reduce_ms"])

    # ---------------------------------------------------------------- first Builder render
    render = _builder_first_render(db, base_no)
    if render is not None:
        out["builder_first_render_s"] = round(render, 2)
        _say(quiet, f"Builder first render (AppTest, cold caches): {render:.2f} s")

    _say(quiet, "")
    _say(quiet, f"preview p50 {out['preview_p50_ms']} ms, p95 {out['preview_p95_ms']} ms; pandas p50 "
         f"{out['baseline_pandas_p50_ms']} ms; ratio {out['preview_ratio']}")
    db.dispose()
    if args.json:
        print(json.dumps(out))
    return 0


def _builder_first_render(db: Database, segment_no: str) -> float | None:
    """Seconds for AppTest to render the Builder from cold caches (None until the page exists)."""
    if not (ROOT / "pages" / "builder.py").exists():
        return None
    from streamlit.testing.v1 import AppTest

    drop_cached()
    clear_caches()
    os.environ["SEGCORE_DATABASE_URL"] = db.url
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params["segment"] = segment_no
    start = time.perf_counter()
    at.switch_page("pages/builder.py")
    at.run()
    elapsed = time.perf_counter() - start
    if at.exception:
        print("Builder render raised:", at.exception[0].message, file=sys.stderr)
    return elapsed


if __name__ == "__main__":
    raise SystemExit(main())
