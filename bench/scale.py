"""Ten million on one machine: `python -m bench.scale --contacts 10000000 [--pg-url URL] [--json]`.

For the same contacts and the same filters, side by side (times, and ratios to the in-memory path):

- **memory**: the in-memory snapshot of the embedded SQLite database (`evaluation/memory.py`);
- **pg**: PostgreSQL pushdown, the SQL backend on a PostgreSQL database of the same contacts;
- **spark**: a local Spark (`local[2]`) over a Parquet copy of the same contacts, through `SparkSource`.

and for each: **count** (a filter's count), **preview** (an Add's preview with the seven charts; Spark: one
`step_pass`, as the Builder runs it), **add** (the matched contact ids in hand: numpy positions to ids, a SELECT
fetched; Spark: `step_changes`, what an Add's commit asks of Spark: C' counted and the numbers it adds through
Arrow), **refine** (a Refine of the base segment, counts only; Spark: `step_pass` without charts, the members sent
through Arrow). Then the in-memory path alone over every benchmark filter (Add,
Refine and Reduce previews with charts, on one and on every scan thread), the commit of an Add of about 30 % of
the contacts and a Refine after it on SQLite and on PostgreSQL, the snapshot's build time, size and the peak
memory (RSS: numpy's buffers are invisible to tracemalloc), and Spark with one and two cores (`local[1]`,
`local[2]`, each in a child process: one local Spark per process).

The machine may be shared: every figure carries the 1-minute load average (`uptime`) at the time it was taken.
The databases are built once and reused (bench/scale_data.py): /tmp/scale{N}.db, database `scale{N}` on the
PostgreSQL server of `--pg-url`, Parquet under /tmp/scale{N}_parquet.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from segcore._db import Database
from segcore._engine import apply_action, create_segment, delete_segment, member_contact_nos
from segcore._fast_eval import evaluate
from segcore._filter_text import parse_text
from segcore._filter_tree import Node, from_json
from segcore._models import Segment
from segcore._parallel import thread_count, threads
from segcore._snapshot import _kept_version, data_version, drop_cached, load_snapshot, snapshot_path
from segcore._steps import ActionRequest
from segcore.evaluation import clear_caches, evaluator_for, preview_step
from segcore.evaluation.sql import SqlEvaluator

from .filters import FILTERS, BenchFilter
from .scale_data import DEMO_TODAY, contact_count, ensure_contacts, export_parquet

ROOT = Path(__file__).resolve().parent.parent
BASE_NO = "SCALE-BASE"
BASE_FILTER = ["country=FR|NL"]
# Filters tried for the big commit; the one matching closest to COMMIT_SHARE of the contacts is committed.
COMMIT_CANDIDATES = (
    ["country=FR|BE"], ["country=DE|GB|PL"], ["gender=female"], ["age=35..64"], ["total_spent=>=100"], ["churn_risk=low|medium"],
    ["acquisition_source=ads|referral|web"], ["country=<>US", "age=25..54"],
)  # fmt: skip
COMMIT_SHARE = 0.3  # the issue: an Add of 3M members at 10M contacts
REFINE_AFTER = ["age_band=18-24|25-34|35-44|45-54"]
OPS = ("count", "preview", "add", "refine")


def _say(*parts: Any) -> None:
    print(*parts, file=sys.stderr, flush=True)


def load() -> float:
    """The 1-minute load average, as `uptime` prints it."""
    return round(os.getloadavg()[0], 2)


def rss_mb() -> dict[str, int]:
    """This process's resident memory now and at its peak (VmRSS, VmHWM), in MB."""
    out = {"rss_mb": 0, "peak_rss_mb": 0}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss_mb"] = int(line.split()[1]) // 1024
            elif line.startswith("VmHWM:"):
                out["peak_rss_mb"] = int(line.split()[1]) // 1024
    except OSError:
        import resource

        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    return out


def node_of(f: BenchFilter | list[str]) -> Node:
    ours = f.ours if isinstance(f, BenchFilter) else f
    return parse_text(ours) if isinstance(ours, list) else from_json(ours)


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """(median ms, load when measured, last result) over `repeat` runs."""
    times, result = [], None
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), load(), result


def _p(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


# ------------------------------------------------------------------------------------------------ databases


def pg_database_url(server_url: str, n: int) -> str:
    """The URL of database `scale{n}` on the server of `server_url`, created when missing."""
    url = make_url(server_url)
    name = f"scale{n}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).first()
            if exists is None:
                # A database name cannot be a bound parameter; this one is made of digits we chose.
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def _segment_exists(db: Database, no: str) -> bool:
    with db.read() as conn:
        return conn.execute(sa.select(Segment.id).where(Segment.no == no)).first() is not None


def ensure_base(db: Database, out: dict[str, Any]) -> None:
    """The base segment the Refine and Reduce previews start from (an Add of the French and Dutch contacts)."""
    if _segment_exists(db, BASE_NO):
        return
    create_segment(db, BASE_NO, description="bench.scale base", owner="bench")
    ms, ld, res = timed(
        lambda: apply_action(db, BASE_NO, ActionRequest("add", node_of(BASE_FILTER)), user="bench"), 1
    )
    out["base_add"] = {"members": res.added, "ms": round(ms), "load": ld}


# ------------------------------------------------------------------------------------------------ in memory


def snapshot_fresh(db: Database) -> bool:
    """Whether the snapshot file holds the database's current data (so loading it builds nothing, writes nothing)."""
    path = snapshot_path(db)
    with db.read() as conn:
        return path is not None and path.exists() and _kept_version(path) == data_version(conn)


def memory_snapshot(db: Database, rebuild: bool) -> dict[str, Any]:
    path = snapshot_path(db)
    if rebuild and path is not None and path.exists():
        path.unlink()
    source = "file" if path is not None and path.exists() else "built"
    drop_cached(db)
    clear_caches()
    before = rss_mb()
    ms, ld, snap = timed(lambda: load_snapshot(db, wait=True), 1)
    after = rss_mb()
    return {
        "source": source, "ms": round(ms), "load": ld, "bytes_mb": round(snap.nbytes() / 2**20),
        "rss_before_mb": before["rss_mb"], "rss_after_mb": after["rss_mb"], "peak_rss_mb": after["peak_rss_mb"],
    }  # fmt: skip


def memory_ops(db: Database, nodes: dict[str, Node], repeat: int) -> dict[str, dict[str, Any]]:
    """count / preview / add / refine for each filter on the in-memory path."""
    ev = evaluator_for(db, backend="memory")
    snap = ev.snapshot  # type: ignore[attr-defined]
    out: dict[str, dict[str, Any]] = {}
    for name, node in nodes.items():
        row: dict[str, Any] = {}
        ms, ld, c = timed(lambda n=node: ev.count(n, today=DEMO_TODAY), repeat)
        row["count"] = {"ms": ms, "load": ld, "matched": c.matched}
        ms, ld, pv = timed(lambda n=node: preview_step(db, BASE_NO, ActionRequest("add", n), today=DEMO_TODAY,
                                                        backend="memory"), repeat)  # fmt: skip
        row["preview"] = {"ms": ms, "load": ld, "added": pv.counts.added}
        ms, ld, ids = timed(
            lambda n=node: snap.ids[evaluate(n, snap, today=DEMO_TODAY) & ~snap.excluded], repeat
        )
        row["add"] = {"ms": ms, "load": ld, "ids": len(ids)}
        ms, ld, pv = timed(lambda n=node: preview_step(db, BASE_NO, ActionRequest("refine", n), today=DEMO_TODAY,
                                                        dimensions=(), backend="memory"), repeat)  # fmt: skip
        row["refine"] = {"ms": ms, "load": ld, "after": pv.counts.size_after}
        out[name] = row
        _say(
            f"  memory {name:<24} "
            + "  ".join(f"{op} {row[op]['ms']:8.1f} ms" for op in OPS)
            + f"  load {ld}"
        )
    return out


def memory_previews(db: Database, repeat: int) -> dict[str, Any]:
    """Every benchmark filter × Add, Refine, Reduce with the seven charts: p50/p95, on one thread and on all."""
    out: dict[str, Any] = {}
    for label, count in (("threads_1", 1), (f"threads_{max(thread_count(), 1)}", thread_count())):
        with threads(count):
            times, loads = [], []
            for f in FILTERS:
                node = node_of(f)
                for kind in ("add", "refine", "reduce"):
                    ms, ld, _ = timed(lambda k=kind, n=node: preview_step(
                        db, BASE_NO, ActionRequest(k, n), today=DEMO_TODAY, backend="memory"), repeat)  # fmt: skip
                    times.append(ms)
                    loads.append(ld)
            out[label] = {"p50_ms": round(_p(times, 50), 1), "p95_ms": round(_p(times, 95), 1),
                          "max_ms": round(max(times), 1), "previews": len(times), "load": max(loads)}  # fmt: skip
            _say(f"  memory previews with charts, {count} thread(s): p50 {out[label]['p50_ms']} ms, "
                 f"p95 {out[label]['p95_ms']} ms over {len(times)}  load {max(loads)}")  # fmt: skip
    return out


def pick_commit_filter(db: Database, n: int) -> tuple[list[str], int]:
    """The candidate filter whose count is closest to COMMIT_SHARE of the contacts (counted in memory)."""
    ev = evaluator_for(db, backend="memory")
    counts = [(lines, ev.count(node_of(lines), today=DEMO_TODAY).matched) for lines in COMMIT_CANDIDATES]
    return min(counts, key=lambda lc: abs(lc[1] - COMMIT_SHARE * n))


def commits(db: Database, lines: list[str], repeat: int, *, refine: bool = True) -> dict[str, Any]:
    """The big Add on a fresh segment, then a Refine of it; each segment deleted after (the database stays as
    built). Median of `repeat` fresh segments."""
    adds: list[float] = []
    refines: list[float] = []
    loads: list[float] = []
    sizes: dict[str, int] = {}
    for i in range(max(1, repeat)):
        no = f"SCALE-C{os.getpid()}-{i}"
        if _segment_exists(db, no):
            delete_segment(db, no, user="bench")
        create_segment(db, no, description="bench.scale commit", owner="bench")
        ms, ld, res = timed(
            lambda no=no: apply_action(db, no, ActionRequest("add", node_of(lines)), user="bench"), 1
        )
        adds.append(ms)
        loads.append(ld)
        sizes["add"] = res.added
        _say(f"  {db.dialect}: commit add {res.added:,} in {ms:.0f} ms  load {ld}")
        if refine:
            ms, ld, res = timed(lambda no=no: apply_action(db, no, ActionRequest("refine", node_of(REFINE_AFTER)),
                                                           user="bench"), 1)  # fmt: skip
            refines.append(ms)
            loads.append(ld)
            sizes["refine_removed"] = res.removed
            _say(f"  {db.dialect}: commit refine -{res.removed:,} in {ms:.0f} ms  load {ld}")
        delete_segment(db, no, user="bench")
    out: dict[str, Any] = {"filter": lines, "add_members": sizes["add"], "add_ms": round(statistics.median(adds)),
                           "add_ms_all": [round(t) for t in adds], "load": max(loads)}  # fmt: skip
    if refines:
        out.update(refine_removed=sizes["refine_removed"], refine_ms=round(statistics.median(refines)),
                   refine_ms_all=[round(t) for t in refines])  # fmt: skip
    return out


# ------------------------------------------------------------------------------------------------ PostgreSQL


def pg_ops(db: Database, nodes: dict[str, Node], repeat: int) -> dict[str, dict[str, Any]]:
    ev = SqlEvaluator(db)
    out: dict[str, dict[str, Any]] = {}
    for name, node in nodes.items():
        row: dict[str, Any] = {}
        ms, ld, c = timed(lambda n=node: ev.count(n, today=DEMO_TODAY), repeat)
        row["count"] = {"ms": ms, "load": ld, "matched": c.matched}
        ms, ld, pv = timed(lambda n=node: preview_step(db, BASE_NO, ActionRequest("add", n), today=DEMO_TODAY,
                                                        backend="sql"), repeat)  # fmt: skip
        row["preview"] = {"ms": ms, "load": ld, "added": pv.counts.added}

        def ids(n: Node = node) -> list[int]:
            with db.read() as conn:
                found = SqlEvaluator(conn=conn).matched_set(ActionRequest("add", n), today=DEMO_TODAY)
                return list(conn.execute(found.ids).scalars())

        ms, ld, got = timed(ids, repeat)
        row["add"] = {"ms": ms, "load": ld, "ids": len(got)}
        ms, ld, pv = timed(lambda n=node: preview_step(db, BASE_NO, ActionRequest("refine", n), today=DEMO_TODAY,
                                                        dimensions=(), backend="sql"), repeat)  # fmt: skip
        row["refine"] = {"ms": ms, "load": ld, "after": pv.counts.size_after}
        out[name] = row
        _say(
            f"  pg     {name:<24} "
            + "  ".join(f"{op} {row[op]['ms']:8.1f} ms" for op in OPS)
            + f"  load {ld}"
        )
    return out


# ------------------------------------------------------------------------------------------------ Spark


def spark_ops(
    url: str, paths: dict[str, Path], nodes: dict[str, Node], members: list[str], repeat: int
) -> dict[str, Any]:
    """count / preview / add / refine for each filter on a Spark source over the Parquet copy (this process's
    Spark session for `url`)."""
    from segcore.spark import Location, SourceSpec, open_source

    start = time.perf_counter()
    source = open_source(SourceSpec(
        "scale", url, Location("path", str(paths["contacts"]), "parquet"),
        interactions=Location("path", str(paths["interactions"]), "parquet"),
    ))  # fmt: skip
    out: dict[str, Any] = {"open_ms": round((time.perf_counter() - start) * 1000), "filters": {}}
    # The first job of a session pays for the JVM's warm-up (classes, code generation): not a filter's cost.
    start = time.perf_counter()
    source.row_count()
    source.count(next(iter(nodes.values())), today=DEMO_TODAY)
    out["warmup_ms"] = round((time.perf_counter() - start) * 1000)
    for name, node in nodes.items():
        row: dict[str, Any] = {}
        ms, ld, c = timed(lambda n=node: source.count(n, today=DEMO_TODAY), repeat)
        row["count"] = {"ms": ms, "load": ld, "matched": c.matched}

        # What the Builder runs: a preview is one step_pass (counts, the seven charts, a sample of who enters);
        # the Add's commit asks step_changes for the contact numbers it adds; a Refine's preview without charts.
        ms, ld, step = timed(lambda n=node: source.step_pass("add", n, members, today=DEMO_TODAY), repeat)
        row["preview"] = {"ms": ms, "load": ld, "added": step.scan.entering}
        ms, ld, changes = timed(lambda n=node: source.step_changes("add", members, node=n, today=DEMO_TODAY), repeat)
        row["add"] = {"ms": ms, "load": ld, "ids": changes.matched, "new_ids": len(changes.changed)}
        ms, ld, step = timed(
            lambda n=node: source.step_pass("refine", n, members, today=DEMO_TODAY, dimensions=()), repeat
        )
        row["refine"] = {"ms": ms, "load": ld, "after": step.scan.after}
        out["filters"][name] = row
        _say(f"  spark {url:<9} {name:<24} " + "  ".join(f"{op} {row[op]['ms']:8.1f} ms" for op in OPS)
             + f"  load {ld}")  # fmt: skip
    out.update(_jvm_memory())
    return out


def _jvm_memory() -> dict[str, int]:
    """The local Spark JVM's resident memory now and at its peak, in MB (0 when it cannot be read)."""
    try:
        from pyspark import SparkContext

        pid = SparkContext._gateway.proc.pid  # type: ignore[union-attr]
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
    except (AttributeError, ImportError, OSError):
        return {}
    out = {}
    for line in status:
        if line.startswith(("VmRSS:", "VmHWM:")):
            out["jvm_" + ("rss_mb" if line.startswith("VmRSS") else "peak_rss_mb")] = (
                int(line.split()[1]) // 1024
            )
    return out


def spark_child(url: str, args: argparse.Namespace, names: list[str]) -> dict[str, Any]:
    """Spark measured in a child process of its own (one local Spark per process: local[1] and local[2] cannot
    share one); its JSON result."""
    cmd = [sys.executable, "-m", "bench.scale", "--spark-child", url, "--contacts", str(args.contacts),
           "--sqlite", str(args.sqlite), "--parquet", str(args.parquet), "--slow-repeat", str(args.slow_repeat),
           "--spark-driver-memory", args.spark_driver_memory, "--filters", ",".join(names)]  # fmt: skip
    if args.base:
        cmd += ["--base", str(args.base)]
    done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False)  # noqa: S603 - our own module
    if done.returncode != 0:
        return {"error": f"the Spark child for {url} exited with {done.returncode}"}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _run_spark_child(args: argparse.Namespace) -> int:
    from segcore.spark import session

    # Ten million rows need more than the 1 GB driver a local Spark gets for tests and laptops.
    session.LOCAL_CONF["spark.driver.memory"] = args.spark_driver_memory
    db = Database.open(f"sqlite:///{args.sqlite}", create=False)
    nodes = _chosen(args.filters.split(","))
    members = member_contact_nos(db, BASE_NO)
    paths = export_parquet(db, args.parquet, args.contacts, base=args.base)
    result = spark_ops(args.spark_child, paths, nodes, members, args.slow_repeat)
    result.update({"python_" + k: v for k, v in rss_mb().items()}, url=args.spark_child,
                  driver_memory=args.spark_driver_memory)  # fmt: skip
    print(json.dumps(result))
    return 0


# ------------------------------------------------------------------------------------------------ report


def _chosen(names: Sequence[str] | int) -> dict[str, Node]:
    if isinstance(names, int):
        picked = FILTERS[:names]
    else:
        wanted = set(names)
        picked = [f for f in FILTERS if f.name in wanted]
    return {f.name: node_of(f) for f in picked}


def side_by_side(columns: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Per operation: the p50 over the filters of each column, and its ratio to the in-memory path."""
    table: dict[str, Any] = {}
    for op in OPS:
        row: dict[str, Any] = {}
        for col, per_filter in columns.items():
            if per_filter:
                row[col] = {"p50_ms": round(statistics.median(r[op]["ms"] for r in per_filter.values()), 1),
                            "load": max(r[op]["load"] for r in per_filter.values())}  # fmt: skip
        mem = row.get("memory", {}).get("p50_ms")
        for cell in row.values():
            cell["ratio"] = round(cell["p50_ms"] / mem, 1) if mem else None
        table[op] = row
    return table


def check_agreement(columns: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """Where two columns disagree on a count (the same contacts and filters must give the same numbers)."""
    problems = []
    mem = columns.get("memory", {})
    for col, per_filter in columns.items():
        for name, row in per_filter.items():
            ref = mem.get(name)
            if ref is None or col == "memory":
                continue
            if row["count"]["matched"] != ref["count"]["matched"]:
                problems.append(f"{col} {name}: count {row['count']['matched']} != {ref['count']['matched']}")
            if row["add"]["ids"] != ref["add"]["ids"]:
                problems.append(f"{col} {name}: add ids {row['add']['ids']} != {ref['add']['ids']}")
            if row["refine"]["after"] != ref["refine"]["after"]:
                problems.append(f"{col} {name}: refine {row['refine']['after']} != {ref['refine']['after']}")
    return problems


def print_table(result: dict[str, Any]) -> None:
    n = result["contacts"]
    _say(
        f"\n{n:,} contacts; ms (p50 over {len(result['filters'])} filters), ratio to memory, load at the time"
    )
    cols = [c for c in ("memory", "pg", "spark") if any(c in row for row in result["side_by_side"].values())]
    _say(f"{'':<10}" + "".join(f"{c:>30}" for c in cols))
    for op, row in result["side_by_side"].items():
        cells = []
        for c in cols:
            cell = row.get(c)
            cells.append(
                f"{cell['p50_ms']:>12,.1f} ms ×{cell['ratio']:<6} l{cell['load']:<5}" if cell else f"{'':>30}"
            )
        _say(f"{op:<10}" + "".join(f"{x:>30}" for x in cells))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    ap.add_argument("--contacts", type=int, default=10_000_000)
    ap.add_argument(
        "--base",
        type=int,
        default=None,
        help="demo contacts generated before copying (default: "
        "all of --contacts up to 1M, else the largest divisor up to 1M)",
    )
    ap.add_argument("--sqlite", type=Path, default=None, help="the SQLite file (default /tmp/scale{N}.db)")
    ap.add_argument(
        "--pg-url",
        default=os.environ.get("SEGCORE_BENCH_PG_URL"),
        help="a PostgreSQL server URL; database scale{N} on it is used (created when missing)",
    )
    ap.add_argument(
        "--parquet", type=Path, default=None, help="Parquet folder (default /tmp/scale{N}_parquet)"
    )
    ap.add_argument(
        "--filters",
        default="6",
        help="how many benchmark filters (or their names, comma-separated) "
        "to compare across the columns; the in-memory path also runs all of them",
    )
    ap.add_argument("--repeat", type=int, default=5, help="runs per in-memory figure (median)")
    ap.add_argument(
        "--slow-repeat", type=int, default=1, help="runs per PostgreSQL and Spark figure (median)"
    )
    ap.add_argument("--commit-repeat", type=int, default=2)
    ap.add_argument(
        "--no-pg-commit-refine",
        dest="pg_commit_refine",
        action="store_false",
        help="skip the Refine commit on PostgreSQL (minutes at 10M today: see README)",
    )
    ap.add_argument("--spark", default="local[2]", help="the Spark column's URL ('' for no Spark)")
    ap.add_argument(
        "--spark-scaling",
        default="local[1],local[2]",
        help="URLs of the scaling run, each in a child process ('' for none)",
    )
    ap.add_argument(
        "--spark-in-process",
        action="store_true",
        help="run the Spark column in this process (the session already started for --spark: tests)",
    )
    ap.add_argument("--spark-driver-memory", default="4g")
    ap.add_argument(
        "--only-spark",
        action="store_true",
        help="Spark and the in-memory figures of the same filters only (no PostgreSQL, no commits, no in-memory "
        "previews of every filter; the snapshot is loaded from its file, never built): for a machine where "
        "others use the databases",
    )
    ap.add_argument("--spark-child", default=None, help=argparse.SUPPRESS)
    ap.add_argument(
        "--rebuild-snapshot", action="store_true", help="build the snapshot instead of loading its file"
    )
    ap.add_argument("--json", action="store_true", help="print the result as one JSON line on stdout")
    args = ap.parse_args(argv)
    n = args.contacts
    args.sqlite = args.sqlite or Path(f"/tmp/scale{n}.db")
    args.parquet = args.parquet or Path(f"/tmp/scale{n}_parquet")
    if args.spark_child:
        return _run_spark_child(args)
    nodes = _chosen(int(args.filters) if args.filters.isdigit() else args.filters.split(","))
    result: dict[str, Any] = {"contacts": n, "filters": list(nodes), "threads": thread_count(),
                              "cpus": os.cpu_count(), "load_start": load(), "build": {}}  # fmt: skip
    _say(f"bench.scale: {n:,} contacts, load {load()}")

    sqlite = Database.open(f"sqlite:///{args.sqlite}", create=not args.only_spark)
    if args.only_spark:
        # Read only: the database and its snapshot file must be there already, of the same data.
        if contact_count(sqlite) != n or not _segment_exists(sqlite, BASE_NO) or not snapshot_fresh(sqlite):
            raise SystemExit(f"--only-spark needs {args.sqlite} built with {n:,} contacts, its base segment and a "
                             "snapshot file of its data (run without --only-spark once)")  # fmt: skip
        result["only_spark"] = True
    else:
        result["build"]["sqlite"] = ensure_contacts(sqlite, n, base=args.base)
        ensure_base(sqlite, result.setdefault("base", {}))
    pg = None
    if args.pg_url and not args.only_spark:
        pg = Database.open(pg_database_url(args.pg_url, n))
        result["build"]["pg"] = ensure_contacts(pg, n, base=args.base)
        ensure_base(pg, result.setdefault("base_pg", {}))

    _say("in memory (snapshot of the SQLite database):")
    result["snapshot"] = memory_snapshot(sqlite, args.rebuild_snapshot and not args.only_spark)
    _say(f"  snapshot {result['snapshot']}")
    members = member_contact_nos(sqlite, BASE_NO)
    columns: dict[str, dict[str, dict[str, Any]]] = {"memory": memory_ops(sqlite, nodes, args.repeat)}
    if not args.only_spark:
        result["memory_previews"] = memory_previews(sqlite, args.repeat)
        lines, size = pick_commit_filter(sqlite, n)
        _say(f"commit filter {lines}: {size:,} contacts")
        result["commit_sqlite"] = commits(sqlite, lines, args.commit_repeat)
    result["memory_rss"] = rss_mb()
    if pg is not None:
        result["commit_pg"] = commits(pg, lines, args.commit_repeat, refine=args.pg_commit_refine)
        _say("PostgreSQL pushdown:")
        columns["pg"] = pg_ops(pg, nodes, args.slow_repeat)

    if args.spark:
        _say(f"Spark {args.spark}:")
        if args.spark_in_process:
            spark = spark_ops(args.spark, export_parquet(sqlite, args.parquet, n, base=args.base), nodes, members,
                              args.slow_repeat)  # fmt: skip
        else:
            spark = spark_child(args.spark, args, list(nodes))
        result["spark"] = {k: v for k, v in spark.items() if k != "filters"}
        columns["spark"] = spark.get("filters", {})
    scaling = [u for u in args.spark_scaling.split(",") if u] if args.spark else []
    if scaling and not args.spark_in_process:
        result["spark_scaling"] = {}
        for url in scaling:
            # The Spark column's own run counts for its URL; another URL gets a child of its own.
            got = (
                {"filters": columns["spark"]}
                if url == args.spark and columns.get("spark")
                else spark_child(url, args, list(nodes))
            )
            per = got.get("filters") or {}
            result["spark_scaling"][url] = (
                {op: round(statistics.median(r[op]["ms"] for r in per.values()), 1) for op in OPS}
                | {"load": load()}
                if per
                else {"error": got.get("error", "no figures")}
            )
    result["columns"] = columns
    result["side_by_side"] = side_by_side(columns)
    result["disagreements"] = check_agreement(columns)
    result["python_rss"] = rss_mb()
    result["load_end"] = load()
    print_table(result)
    for problem in result["disagreements"]:
        _say(f"DISAGREE {problem}")
    sqlite.dispose()
    if pg is not None:
        pg.dispose()
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"scale_{n}.json").write_text(json.dumps(result, indent=2, default=str))
    if args.json:
        print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
