"""`python -m bench.commit_scale` on a small population: the big Add, a Refine and its undo, from the snapshot (what
the dashboard commits through) and from SQL (what the CLI commits through), on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from bench.commit_scale import main


def test_commit_bench_on_a_small_population(
    tmp_path: Path, pg_server_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    server = make_url(pg_server_url).set(database="postgres").render_as_string(hide_password=False)
    args = ["--contacts", "600", "--base", "200", "--sqlite", str(tmp_path / "scale.db"), "--pg-url", server,
            "--repeat", "1", "--sql", "--json"]  # fmt: skip
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for name in ("sqlite", "pg"):
        done = result[name]
        assert done["snapshot"]["sets"] == "MemoryStepSets" and done["sql"]["sets"] == "SqlEvaluator"
        # Both paths write the same steps: as many members in, as many out.
        assert done["snapshot"]["add"] == done["sql"]["add"] > 0
        assert done["snapshot"]["refine_removed"] == done["sql"]["refine_removed"] > 0
        assert done["snapshot"]["add_ms"] > 0 and done["rss_mb"] > 0
