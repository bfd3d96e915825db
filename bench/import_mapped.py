"""Benchmark: a marketer's own file at a million rows — mapped import, snapshot ready, previews on custom fields.

Not a test: it prints figures and ratios side by side. The targets (issue "Bring your own contacts"):
- a 1,000,000-row CSV with its own headers and 5 custom fields imports in <= 20 s;
- the preview snapshot is ready <= 5 s after that import;
- a preview whose filter uses two custom fields stays within 1.5x of one on two built-in fields.

    python -m bench.import_mapped --contacts 1000000 [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from segcore import (
    ActionRequest,
    Database,
    create_segment,
    fields_of,
    import_contacts,
    parse_text,
    preview_step,
)
from segcore._snapshot import drop_cached, load_snapshot

__all__ = ["main", "write_file"]

HEADER = ("Customer Id;Nom;Prénom;Adresse e-mail;Pays;Date de naissance;Montant total;"
          "Fidélité;Points;Inscription;VIP;Centres d'intérêt\n")  # fmt: skip
COUNTRIES = np.array(["France", "Allemagne", "Belgique", "Espagne", "Italie", "Pays-Bas", "UK", "United States"])
TIERS = np.array(["BRONZE", "SILVER", "GOLD", "PLATINUM"])
HOBBIES = np.array(["GOLF", "TENNIS", "CHESS", "SKI", "VOILE", "CUISINE"])


def write_file(path: Path, n: int, seed: int = 7) -> None:
    """A ';'-separated UTF-8 file as a French CRM exports it: dates DD/MM/YYYY, decimal commas, oui/non."""
    rng = np.random.default_rng(seed)
    birth = np.datetime64("1940-01-01") + rng.integers(0, 365 * 65, n).astype("timedelta64[D]")
    signup = np.datetime64("2015-01-01") + rng.integers(0, 365 * 10, n).astype("timedelta64[D]")
    spend = rng.gamma(2.0, 300.0, n).round(2)
    points = rng.integers(0, 5000, n)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(HEADER)
        chunk = 100_000
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            idx = np.arange(start, stop)
            b = birth[start:stop].astype("datetime64[D]").astype(str)
            s = signup[start:stop].astype("datetime64[D]").astype(str)
            country = COUNTRIES[rng.integers(0, len(COUNTRIES), stop - start)]
            tier = TIERS[rng.integers(0, len(TIERS), stop - start)]
            vip = np.where(rng.random(stop - start) < 0.1, "oui", "non")
            h1 = HOBBIES[rng.integers(0, len(HOBBIES), stop - start)]
            h2 = HOBBIES[rng.integers(0, len(HOBBIES), stop - start)]
            lines = [
                f"C{i:07d};Nom{i % 9973};Prénom{i % 997};p{i}@exemple.fr;{c};{bd[8:10]}/{bd[5:7]}/{bd[:4]};"
                f"{str(sp).replace('.', ',')};{t};{pt};{sd[8:10]}/{sd[5:7]}/{sd[:4]};{v};\"{x};{y}\"\n"
                for i, c, bd, sp, t, pt, sd, v, x, y in zip(
                    idx, country, b, spend[start:stop], tier, points[start:stop], s, vip, h1, h2, strict=True
                )
            ]
            fh.writelines(lines)


def _previews(db: Database, filters: list[str], repeat: int) -> list[float]:
    fields = fields_of(db)
    out = []
    for text in filters:
        request = ActionRequest("add", filter=parse_text(text, fields))
        preview_step(db, "BENCH", request, backend="memory")  # warm
        for _ in range(repeat):
            t0 = time.perf_counter()
            preview_step(db, "BENCH", request, backend="memory")
            out.append((time.perf_counter() - t0) * 1000)
    return out


BUILTIN_FILTERS = [
    "country=FR|DE\ntotal_spent=>=500",
    "age=25..44\ncountry=BE|ES",
    "total_spent=100..900\nbirth_date=1970-01-01..",
]
CUSTOM_FILTERS = [
    "fidelite=GOLD|PLATINUM\npoints=>=2500",
    "inscription=2020-01-01..\nvip=true",
    "points=100..900\ncentres_d_interet=golf|ski",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {"contacts": args.contacts}
    with tempfile.TemporaryDirectory(prefix="segcore-bench-") as tmp:
        path = Path(tmp) / "clients.csv"
        t0 = time.perf_counter()
        write_file(path, args.contacts)
        figures["file_mb"] = round(path.stat().st_size / 1e6, 1)
        figures["write_file_s"] = round(time.perf_counter() - t0, 1)
        db = Database.open(f"sqlite:///{tmp}/bench.db")
        marks: dict[str, float] = {}
        start = time.perf_counter()

        def progress(done: int, total: int, stage: str) -> None:
            marks[stage] = round(time.perf_counter() - start, 2)

        report = import_contacts(db, path, date_format="DMY", progress=progress)
        figures["import_s"] = round(time.perf_counter() - start, 2)
        figures["import_stages_s"] = marks
        figures["import_rows"] = report.rows_valid
        figures["import_errors"] = report.errors_total
        figures["new_fields"] = list(report.new_fields)
        drop_cached()
        t0 = time.perf_counter()
        snap = load_snapshot(db, wait=True)
        figures["snapshot_s"] = round(time.perf_counter() - t0, 2)
        figures["snapshot_mb"] = round(snap.nbytes() / 1e6, 1) if snap is not None else None
        create_segment(db, "BENCH", description="bench")
        built = _previews(db, BUILTIN_FILTERS, args.repeat)
        custom = _previews(db, CUSTOM_FILTERS, args.repeat)
        figures["preview_builtin_p50_ms"] = round(statistics.median(built), 1)
        figures["preview_custom_p50_ms"] = round(statistics.median(custom), 1)
        figures["preview_ratio"] = round(figures["preview_custom_p50_ms"] / figures["preview_builtin_p50_ms"], 2)
        db.dispose()
    figures["load"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    if args.json:
        print(json.dumps(figures, indent=2, ensure_ascii=False))
    else:
        print(f"{args.contacts:,} rows, {figures['file_mb']} MB, {figures['import_errors']} errors")
        print(f"import               {figures['import_s']:>8} s   target <= 20 s   stages {marks}")
        print(f"snapshot ready       {figures['snapshot_s']:>8} s   target <= 5 s    ({figures['snapshot_mb']} MB)")
        print(f"preview built-in p50 {figures['preview_builtin_p50_ms']:>8} ms")
        print(f"preview custom p50   {figures['preview_custom_p50_ms']:>8} ms  ratio {figures['preview_ratio']}"
              " (target <= 1.5)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
