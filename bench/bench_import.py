"""Benchmark: import N generated contacts (and their interactions) into a fresh embedded SQLite database.

Not a test: it prints figures. The target (SPEC §6 and the import contract) is 1,000,000 contacts in at most 60 s.

    python bench/bench_import.py --contacts 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from segcore import (  # noqa: E402
    Database,  # noqa: E402
    import_contacts,
    import_interactions,
)
from segcore._demo import write_demo_csv  # noqa: E402

__all__ = ["main"]

TARGET_SECONDS_PER_MILLION = 60.0


def _stage_timer() -> tuple[dict[str, float], object]:
    marks: dict[str, float] = {}
    start = time.perf_counter()

    def progress(done: int, total: int, stage: str) -> None:
        marks[stage] = time.perf_counter() - start

    return marks, progress


def _load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main(argv: list[str] | None = None) -> int:
    """Generate the files (not timed), import them (timed) and print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--contacts", type=int, default=1_000_000, help="how many contacts (default 1,000,000)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--skip-interactions", action="store_true", help="time the contacts file only")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="segcore-bench-") as tmp:
        folder = args.dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        contacts_csv, interactions_csv = write_demo_csv(
            folder, args.contacts, seed=args.seed, today=dt.date(2025, 6, 30)
        )
        gen = time.perf_counter() - t0
        size_mb = contacts_csv.stat().st_size / 1e6
        print(f"generated {args.contacts:,} contacts ({size_mb:,.0f} MB CSV) in {gen:.1f} s (not timed)")

        db_path = folder / "bench.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)
        db = Database.open(f"sqlite:///{db_path}")
        # Other work on the machine shows in the wall time; the CPU time of this process does not depend on it.
        load_before = _load()

        marks, progress = _stage_timer()
        t0, c0 = time.perf_counter(), time.process_time()
        report = import_contacts(db, contacts_csv, strict=True, progress=progress)  # type: ignore[arg-type]
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        rate = report.inserted / seconds if seconds else 0.0
        target = TARGET_SECONDS_PER_MILLION * args.contacts / 1_000_000
        print(report.summary())
        print(
            f"contacts import: {seconds:.1f} s wall ({cpu:.1f} s CPU of this process), {rate:,.0f} rows/s; "
            f"target {target:.0f} s -> {seconds / target:.2f} of the budget "
            f"({'OK' if seconds <= target else 'TOO SLOW'})"
        )
        print(f"  machine load average before/after: {load_before} / {_load()}")
        print("  stage ends (s): " + ", ".join(f"{k} {v:.1f}" for k, v in marks.items()))

        if not args.skip_interactions:
            marks, progress = _stage_timer()
            t0 = time.perf_counter()
            inter = import_interactions(db, interactions_csv, strict=True, progress=progress)  # type: ignore[arg-type]
            seconds = time.perf_counter() - t0
            rate = inter.inserted / seconds if seconds else 0.0
            print(inter.summary())
            print(f"interactions import: {seconds:.1f} s, {rate:,.0f} rows/s (no target)")
        db.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
