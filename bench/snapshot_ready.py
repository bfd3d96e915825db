"""Benchmark: how long the preview snapshot takes to be ready on an existing SQLite database (a fresh build each time).

Not a test: it prints figures. The target (issue "Bring your own contacts"): ready <= 5 s after an import of
1,000,000 contacts. Each run forgets the snapshot in memory and removes the kept file beside the database (a cache,
rebuilt anyway), then times `load_snapshot(db, wait=True)`. "read" is the child's Arrow read (the contacts' text
columns are encoded beside it as soon as they arrive), "assemble" what is left once the text columns are ready.

    python -m bench.snapshot_ready --db /tmp/b1m.db [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import segcore._snapshot as snapshot
from segcore import Database
from segcore._snapshot import drop_cached, load_snapshot, snapshot_path

__all__ = ["main"]


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _once(db: Database) -> dict[str, Any]:
    drop_cached()
    kept = snapshot_path(db)
    if kept is not None:
        kept.unlink(missing_ok=True)
    marks: dict[str, float] = {}
    fetch, assemble = snapshot._fetch_arrow, snapshot._assemble

    def timed_fetch(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fetch(*args, **kwargs)
        finally:
            marks["read_s"] = round(time.perf_counter() - t0, 2)

    def timed_assemble(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return assemble(*args, **kwargs)
        finally:
            marks["assemble_s"] = round(time.perf_counter() - t0, 2)

    snapshot._fetch_arrow, snapshot._assemble = timed_fetch, timed_assemble  # type: ignore[assignment]
    load = _load()
    try:
        t0 = time.perf_counter()
        snap = load_snapshot(db, wait=True)
        seconds = time.perf_counter() - t0
    finally:
        snapshot._fetch_arrow, snapshot._assemble = fetch, assemble  # type: ignore[assignment]
    return {
        "ready_s": round(seconds, 2),
        **marks,
        "arrow_failure": list(snapshot._last_arrow_failure),
        "contacts": snap.n if snap is not None else None,
        "load_before": load,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--db", type=Path, required=True, help="an SQLite database file (e.g. after bench.import_mapped)"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    db = Database.open(f"sqlite:///{args.db}", create=False)
    runs = []
    for _ in range(args.repeat):
        runs.append(_once(db))
        time.sleep(1.0)  # let the kept file's writer finish: it is not part of "ready"
    db.dispose()
    ready = [r["ready_s"] for r in runs]
    figures = {"runs": runs, "min_s": min(ready), "median_s": statistics.median(ready), "load_after": _load()}
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for r in runs:
            print(
                f"ready {r['ready_s']:>6} s  (read {r.get('read_s')} s, assemble {r.get('assemble_s')} s)  "
                f"{r['contacts']:,} contacts  load {r['load_before']}"
                + (f"  FELL BACK: {r['arrow_failure']}" if r["arrow_failure"] else "")
            )
        print(
            f"snapshot ready: min {figures['min_s']} s, median {figures['median_s']} s (target <= 5 s); "
            f"load after {figures['load_after']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
