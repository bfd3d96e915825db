"""Time the Builder's preview fragment server-side: preview_step + the seven Plotly figures + their JSON.

    python -m ui.bench_preview [--contacts 20000] [--runs 20]

Uses a throwaway SQLite database with the demo contacts, a segment holding one Add step, and a typical pending
Refine (country, age range, e-mail interaction in the last 90 days). Prints the median and the spread in ms.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import plotly.io as pio

from segcore import (
    ActionRequest,
    Database,
    apply_action,
    create_segment,
    from_json,
    load_demo,
)
from ui.charts import preview_with_figures

ADD = {"field": "country", "op": "in", "value": ["FR", "DE", "BE", "NL"]}
REFINE = {
    "all": [
        {"field": "age", "op": "between", "value": [25, 54]},
        {"related": "interactions", "where": {"all": [
            {"field": "template", "op": "in", "value": ["EMAIL"]},
            {"field": "date", "op": "ge", "value": "today-90d"},
        ]}, "min_count": 1},
    ]
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = Database.open(f"sqlite:///{Path(folder) / 'bench.db'}")
        load_demo(db, args.contacts)
        create_segment(db, "BENCH")
        apply_action(db, "BENCH", ActionRequest("add", filter=from_json(ADD)))
        request = ActionRequest("refine", filter=from_json(REFINE))
        preview_with_figures(db, "BENCH", request)  # first call builds the snapshot, as the first page view does
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            p, figures = preview_with_figures(db, "BENCH", request)
            for fig in figures.values():
                pio.to_json(fig, validate=False)  # what st.plotly_chart sends
            times.append((time.perf_counter() - start) * 1000)
        db.dispose()
    c = p.counts
    print(f"{args.contacts:,} contacts, segment {c.size_before:,} -> {c.size_after:,} (removed {c.removed:,}), "
          f"backend {p.backend}")
    print(f"preview + 7 figures + JSON: median {statistics.median(times):.1f} ms, "
          f"min {min(times):.1f} ms, max {max(times):.1f} ms over {args.runs} runs")


if __name__ == "__main__":
    main()
