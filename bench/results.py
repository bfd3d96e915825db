"""Benchmark: campaign results of a logged segment of 1,000,000 members with 5,000,000 outcomes (issue 14: ≤ 2 s).

    python -m bench.results [--members 1000000] [--outcomes 5000000] [--repeat 5] [--json]

Builds (once, cached under the temp folder, keyed by the sizes and seed) an embedded SQLite database with N contacts,
one segment holding all of them logged 45 days ago with a 10 % holdout, and M outcomes (ORDER with amounts and
SIGNUP) over the two years around the log, the treated members buying a little more in the window. Then times
segment_results (cold and warm), with every kind, with positive interactions, the response curve, the base rate
and the power hint, and prints each figure beside the 2 s target. The last line is JSON with --json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from segcore._db import Database  # noqa: E402
from segcore._engine import ActionRequest, apply_action, create_segment  # noqa: E402
from segcore._filter_text import parse_text  # noqa: E402
from segcore._lifecycle import log_segment, logged_members  # noqa: E402
from segcore._models import Base  # noqa: E402
from segcore.imports.write import _insert_rows  # noqa: E402
from segcore.results import (  # noqa: E402
    base_rate,
    detectable_lift,
    response_curve,
    segment_results,
)

__all__ = ["main"]

TARGET_S = 2.0
SEGMENT = "BENCH-RES"
LOG_AGE_DAYS = 45


def _build(path: Path, members: int, outcomes: int, seed: int, today: dt.date) -> None:
    """Contacts, the logged segment and the outcomes, written once; a later run reuses the file."""
    db = Database.open(f"sqlite:///{path}")
    rng = np.random.default_rng(seed)
    contacts = Base.metadata.tables["contacts"]
    stamp = dt.datetime.now().isoformat(sep=" ")  # DateTime as SQLAlchemy stores it on SQLite
    t0 = time.perf_counter()
    with db.write() as conn:
        nos = [f"B{i:07d}" for i in range(1, members + 1)]
        _insert_rows(
            conn, contacts, ["id", "contact_no", "type", "name", "gender", "exclude_from_segments", "updated_at"],
            [list(range(1, members + 1)), nos, ["person"] * members, nos, ["unknown"] * members,
             [False] * members, [stamp] * members],
        )
    print(f"  {members:,} contacts in {time.perf_counter() - t0:.1f} s", flush=True)
    t0 = time.perf_counter()
    create_segment(db, SEGMENT, description="results benchmark", owner="bench")
    apply_action(db, SEGMENT, ActionRequest("add", parse_text(["type=person"])), user="bench")
    log_date = today - dt.timedelta(days=LOG_AGE_DAYS)
    log_segment(db, SEGMENT, template="EMAIL", date=log_date, holdout_pct=10, seed=seed, user="bench")
    print(f"  segment of {members:,} logged with a 10 % holdout in {time.perf_counter() - t0:.1f} s", flush=True)

    t0 = time.perf_counter()
    assert logged_members(db, SEGMENT, limit=1)[1] == members
    with db.read() as conn:
        held = np.fromiter(
            conn.exec_driver_sql(
                "SELECT contact_id FROM logged_segment_members WHERE holdout = 1"  # constant benchmark SQL
            ).scalars(),
            dtype=np.int64,
        )
    treated = np.ones(members + 1, dtype=bool)
    treated[held] = False
    treated[0] = False
    # Outcomes over the two years up to today; 1 % of them extra for treated members inside the window (the effect).
    extra = int(outcomes * 0.01)
    base = outcomes - extra
    who = rng.integers(1, members + 1, base)
    days_ago = rng.integers(0, 730, base)
    t_ids = np.flatnonzero(treated)
    who = np.concatenate([who, rng.choice(t_ids, extra)])
    days_ago = np.concatenate([days_ago, LOG_AGE_DAYS - rng.integers(1, 31, extra)])
    epoch = (today - dt.date(1970, 1, 1)).days
    dates = (np.datetime64("1970-01-01") + (epoch - days_ago).astype("timedelta64[D]")).astype(str).tolist()
    is_order = rng.random(outcomes) < 0.8
    kind = np.where(is_order, "ORDER", "SIGNUP").tolist()
    amount = np.where(is_order, np.round(rng.lognormal(np.log(40), 0.8, outcomes), 2), np.nan)
    amounts = [None if np.isnan(a) else float(a) for a in amount]
    outcomes_t = Base.metadata.tables["outcomes"]
    with db.write() as conn:
        _insert_rows(
            conn, outcomes_t, ["contact_id", "date", "kind", "amount", "created_by", "created_at"],
            [who.tolist(), dates, kind, amounts, ["bench"] * outcomes, [stamp] * outcomes],
        )
    print(f"  {outcomes:,} outcomes in {time.perf_counter() - t0:.1f} s", flush=True)
    with db.write() as conn:
        conn.exec_driver_sql("ANALYZE")  # constant benchmark SQL
    db.dispose()


def _times(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """(first run, median of the next `repeat` runs) in seconds, and the last result."""
    start = time.perf_counter()
    result = fn()
    first = time.perf_counter() - start
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - start)
    return first, statistics.median(runs) if runs else first, result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.results", description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=1_000_000)
    ap.add_argument("--outcomes", type=int, default=5_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "segcore-bench-results")
    ap.add_argument("--rebuild", action="store_true", help="build the database again even when cached")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    today = dt.date.today()
    args.dir.mkdir(parents=True, exist_ok=True)
    path = args.dir / f"m{args.members}_o{args.outcomes}_s{args.seed}_{today.isoformat()}.db"
    if args.rebuild or not path.exists():
        for suffix in ("", "-wal", "-shm", ".building"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        building = path.with_suffix(".building")
        print(f"building {path} ...", flush=True)
        _build(building, args.members, args.outcomes, args.seed, today)
        for suffix in ("-wal", "-shm"):
            Path(f"{building}{suffix}").unlink(missing_ok=True)
        os.replace(building, path)
    else:
        print(f"reusing {path}", flush=True)

    db = Database.open(f"sqlite:///{path}")
    out: dict[str, Any] = {"members": args.members, "outcomes": args.outcomes, "target_s": TARGET_S}
    cases: list[tuple[str, Callable[[], Any]]] = [
        ("results ORDER", lambda: segment_results(db, SEGMENT, kinds="ORDER", today=today)),
        ("results any kind", lambda: segment_results(db, SEGMENT, today=today)),
        ("results + positive interactions",
         lambda: segment_results(db, SEGMENT, kinds="ORDER", include_positive_interactions=True, today=today)),
        ("response curve", lambda: response_curve(db, SEGMENT, kinds="ORDER", today=today)),
        ("base rate (90 days, segment)", lambda: base_rate(db, "ORDER", segment_no=SEGMENT, today=today)),
    ]
    print(f"\n{'what':<34}{'first s':>9}{'median s':>10}{'target s':>10}{'ratio':>8}")
    headline = None
    for name, fn in cases:
        first, median, result = _times(fn, args.repeat)
        key = name.split(" (")[0].replace(" + ", "_").replace(" ", "_")
        out[f"{key}_first_s"] = round(first, 3)
        out[f"{key}_median_s"] = round(median, 3)
        print(f"{name:<34}{first:>9.3f}{median:>10.3f}{TARGET_S:>10.1f}{max(first, median) / TARGET_S:>8.2f}")
        if name == "results ORDER":
            headline = result
    start = time.perf_counter()
    for pct in range(1, 51):
        detectable_lift(args.members, pct, 0.05)
    hint_ms = (time.perf_counter() - start) * 1000 / 50
    out["power_hint_ms"] = round(hint_ms, 2)
    print(f"{'power hint (one slider move)':<34}{hint_ms / 1000:>9.4f}{'':>10}{'':>10}{'':>8}")
    if headline is not None:
        t, c = headline.treated, headline.control
        print(f"\nresult: state {headline.state}, treated {t.responders:,}/{t.contacts:,} = {t.rate:.4f}, control "
              f"{c.responders:,}/{c.contacts:,} = {c.rate:.4f}, lift {headline.lift_abs:+.4f} "
              f"[{headline.lift_abs_low:+.4f}, {headline.lift_abs_high:+.4f}], p = {headline.p_value:.3g} "
              f"({headline.test})")
        out["lift_abs"] = headline.lift_abs
        out["ratio_to_target"] = round(max(out["results_ORDER_first_s"], out["results_ORDER_median_s"]) / TARGET_S, 2)
    db.dispose()
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
