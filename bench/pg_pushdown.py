"""Previews pushed down to PostgreSQL at 10,000,000 contacts: `python -m bench.pg_pushdown --db-url URL [--json]`.

Beyond `preview_memory_max_contacts` (default 10,000,000; set it lower to measure this path at 10M) previews do not load the in-memory snapshot: every count
and chart aggregation runs in the database. This measures that path on a large PostgreSQL database:

- loading: the 1M benchmark files (`python -m bench --contacts 1000000` writes them) go through the importer once,
  then the population is replicated in SQL (new contact numbers and e-mails, same attributes, their list codes,
  profile answers and interactions) up to N — the importer is measured by the 1M benchmark; this is only a fast
  way to get N realistic rows. Reused when the database already holds N contacts.
- previews (counts + the Builder's seven chart aggregations, and counts alone) for the benchmark's filters and each
  action kind, on a base segment of the French and Dutch contacts, with the serving path reported;
- commits of Add, Refine, Reduce and their undo / redo.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import func, insert, select

from segcore import import_contacts, import_interactions
from segcore._db import Database
from segcore._engine import ActionRequest, apply_action, create_segment, redo, undo
from segcore._filter_text import parse_text
from segcore._filter_tree import from_json
from segcore._models import Base, Contact, ContactCode, Interaction, ProfileAnswer, table_of
from segcore._preview import preview_step
from segcore._snapshot import bump_data_version

from .filters import FILTERS

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("add", "refine", "reduce")
contacts = table_of(Contact)


def _say(*parts: Any) -> None:
    print(*parts, file=sys.stderr, flush=True)


def _count(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(contacts)).scalar_one())


def _replicate(db: Database, copies: int, base: int) -> None:
    """Copy contacts 1..base `copies` times with ids shifted by k × base, with their related rows."""
    codes, answers, inter = table_of(ContactCode), table_of(ProfileAnswer), table_of(Interaction)
    cols = [c for c in contacts.c if c.name not in ("id", "contact_no", "email", "org_id")]
    for k in range(1, copies + 1):
        start = time.perf_counter()
        shift = sa.literal(k * base)
        tag = sa.literal(f"R{k}-")
        with db.write() as conn:
            conn.execute(insert(contacts).from_select(
                ["id", "contact_no", "email", "org_id", *[c.name for c in cols]],
                select(contacts.c.id + shift, tag + contacts.c.contact_no,
                       sa.case((contacts.c.email.is_(None), None), else_=sa.literal(f"r{k}.") + contacts.c.email),
                       contacts.c.org_id + shift, *cols).where(contacts.c.id <= base),
            ))
            conn.execute(insert(codes).from_select(
                ["kind", "code", "contact_id"],
                select(codes.c.kind, codes.c.code, codes.c.contact_id + shift).where(codes.c.contact_id <= base),
            ))
            conn.execute(insert(answers).from_select(
                ["questionnaire", "answer", "contact_id"],
                select(answers.c.questionnaire, answers.c.answer, answers.c.contact_id + shift)
                .where(answers.c.contact_id <= base),
            ))
            icols = [c for c in inter.c if c.name not in ("id", "contact_id")]
            conn.execute(insert(inter).from_select(
                ["contact_id", *[c.name for c in icols]],
                select(inter.c.contact_id + shift, *icols).where(inter.c.contact_id <= base),
            ))
        _say(f"  copy {k}/{copies}: {time.perf_counter() - start:.1f} s")
    with db.write() as conn:
        conn.execute(select(func.setval(func.pg_get_serial_sequence("contacts", "id"),
                                        select(func.max(contacts.c.id)).scalar_subquery())))
        bump_data_version(conn)


def load(db: Database, n: int, source: Path, out: dict[str, Any]) -> None:
    have = _count(db)
    if have == n:
        _say(f"reusing the {n:,} contacts already loaded")
        return
    if have:
        _say(f"the database holds {have:,} contacts, not {n:,}: recreating the schema")
        Base.metadata.drop_all(db.engine)
        db.ensure_schema()
    start = time.perf_counter()
    import_contacts(db, source / "contacts.csv", strict=True)
    import_interactions(db, source / "interactions.csv", strict=True)
    out["import_base_s"] = round(time.perf_counter() - start, 1)
    base = _count(db)
    _say(f"imported {base:,} contacts in {out['import_base_s']} s")
    if n % base:
        raise SystemExit(f"--contacts must be a multiple of the base population ({base:,})")
    start = time.perf_counter()
    _replicate(db, n // base - 1, base)
    out["replicate_s"] = round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    out["analyze_s"] = round(time.perf_counter() - start, 1)
    _say(f"replicated to {n:,} in {out['replicate_s']} s; VACUUM ANALYZE {out['analyze_s']} s")


def _timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return (time.perf_counter() - start) * 1000, result


def _p(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.pg_pushdown", description=__doc__.splitlines()[0])
    ap.add_argument("--db-url", required=True, help="a PostgreSQL URL (a database this benchmark may fill)")
    ap.add_argument("--contacts", type=int, default=10_000_000)
    ap.add_argument("--source", type=Path, default=None, help="folder with the 1M benchmark's contacts/interactions.csv")
    ap.add_argument("--filters", type=int, default=len(FILTERS), help="how many of the benchmark's filters (counts)")
    ap.add_argument("--charts-filters", type=int, default=len(FILTERS),
                    help="of those, how many also get the full preview with the seven chart aggregations")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    source = args.source or max((ROOT / "bench" / "out").glob("n1000000_s7_*"), default=None)
    if source is None:
        raise SystemExit("no 1M benchmark files: run `python -m bench --contacts 1000000` once, or give --source")
    db = Database.open(args.db_url)
    if db.engine.dialect.name != "postgresql":
        raise SystemExit("this benchmark is for PostgreSQL")
    out: dict[str, Any] = {"contacts": args.contacts, "database": "postgresql"}
    load(db, args.contacts, Path(source), out)
    today = dt.date.today()

    # Base segment: Add of the French and Dutch contacts (a commit at this scale, measured).
    base_no = "PG-BASE"
    with db.read() as conn:
        from segcore._models import Segment

        exists = conn.execute(select(Segment.id).where(Segment.no == base_no)).first() is not None
    if not exists:
        create_segment(db, base_no, description="benchmark base", owner="bench")
        t, res = _timed(lambda: apply_action(db, base_no, ActionRequest("add", parse_text(["country=FR|NL"])),
                                             user="bench"))
        out["base_add_ms"] = round(t)
        _say(f"base segment: +{res.added:,} in {t / 1000:.1f} s")

    rows = []
    full: dict[str, list[float]] = {k: [] for k in KINDS}
    counts_only: dict[str, list[float]] = {k: [] for k in KINDS}
    backends = set()
    for i, f in enumerate(FILTERS[: args.filters]):
        node = parse_text(f.ours) if isinstance(f.ours, list) else from_json(f.ours)
        for kind in KINDS:
            req = ActionRequest(kind, node)
            t_count, pv = _timed(lambda r=req: preview_step(db, base_no, r, today=today, dimensions=()))
            t_full = float("nan")
            if i < args.charts_filters:
                t_full, pv = _timed(lambda r=req: preview_step(db, base_no, r, today=today))
                full[kind].append(t_full)
            backends.add(pv.backend)
            counts_only[kind].append(t_count)
            rows.append((f.name, kind, pv.counts.matched, t_count, t_full))
            _say(f"{f.name:<24}{kind:<8}{pv.counts.matched:>12,}{t_count:>10.0f}{t_full:>10.0f}  ({pv.backend})")
    every_full = [v for vs in full.values() for v in vs]
    every_count = [v for vs in counts_only.values() for v in vs]
    out["preview_backend"] = ",".join(sorted(backends))
    out["preview_filters"] = min(args.filters, len(FILTERS))
    out["preview_chart_filters"] = min(args.charts_filters, args.filters, len(FILTERS))
    out["preview_p50_ms"] = round(_p(every_full, 50))
    out["preview_p95_ms"] = round(_p(every_full, 95))
    out["preview_count_only_p50_ms"] = round(_p(every_count, 50))
    out["preview_count_only_p95_ms"] = round(_p(every_count, 95))
    for kind in KINDS:
        if full[kind]:
            out[f"preview_{kind}_p50_ms"] = round(statistics.median(full[kind]))
        out[f"preview_{kind}_count_only_p50_ms"] = round(statistics.median(counts_only[kind]))

    # Commits, undo and redo on a fresh segment.
    no = f"PG-C{int(time.time())}"
    create_segment(db, no, description="benchmark commits", owner="bench")
    sizes = {}
    for kind, lines in (("add", ["country=FR|NL"]), ("refine", ["age_band=18-24|25-34|35-44|45-54"]),
                        ("reduce", ["churn_risk=high"])):
        t, res = _timed(lambda k=kind, ln=lines: apply_action(db, no, ActionRequest(k, parse_text(ln)), user="bench"))
        out[f"commit_{kind}_ms"] = round(t)
        sizes[kind] = res.added or res.removed
        out[f"undo_{kind}_ms"] = round(_timed(lambda: undo(db, no, user="bench"))[0])
        out[f"redo_{kind}_ms"] = round(_timed(lambda: redo(db, no, user="bench"))[0])
        _say(f"{kind}: {sizes[kind]:,} members, commit {out[f'commit_{kind}_ms']} ms, undo {out[f'undo_{kind}_ms']} ms, "
             f"redo {out[f'redo_{kind}_ms']} ms")
    out["commit_sizes"] = sizes
    out["undo_ms"] = max(out["undo_add_ms"], out["undo_refine_ms"], out["undo_reduce_ms"])
    out["python_max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    db.dispose()
    _say(f"previews p50 {out['preview_p50_ms']} ms, p95 {out['preview_p95_ms']} ms (counts only p50 "
         f"{out['preview_count_only_p50_ms']} ms) via {out['preview_backend']}; python RSS {out['python_max_rss_mb']} MB")
    result = ROOT / "bench" / "out" / f"pg_pushdown_{args.contacts}.json"
    result.write_text(json.dumps(out, indent=2))
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
