"""`python -m bench.scale` end to end on a small population: the databases copied from the demo, the in-memory
path and a Spark source over the Parquet copy (the test run's one Spark session), the same numbers on both."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from bench.scale import main
from bench.scale_data import base_size
from segcore import Database
from segcore._models import Contact


@pytest.mark.parametrize(
    ("n", "base"),
    [(10, 10), (1_000_000, 1_000_000), (10_000_000, 1_000_000), (3_000_000, 1_000_000), (1_500_000, 750_000)],
)
def test_base_size_divides_up_to_the_demo_maximum(n: int, base: int) -> None:
    assert base_size(n) == base


def test_scale_bench_on_a_small_population(
    tmp_path: Path, spark: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    sqlite, parquet = tmp_path / "scale.db", tmp_path / "parquet"
    args = ["--contacts", "600", "--base", "200", "--sqlite", str(sqlite), "--parquet", str(parquet),
            "--filters", "country eq,age range,emailed last 30d", "--repeat", "1", "--commit-repeat", "1",
            "--pg-url", "", "--spark", "local[2]", "--spark-in-process", "--json"]  # fmt: skip
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["disagreements"] == []
    assert result["filters"] == ["country eq", "age range", "emailed last 30d"]
    for op in ("count", "preview", "add", "refine"):
        assert set(result["side_by_side"][op]) == {"memory", "spark"}
        assert result["side_by_side"][op]["memory"]["ratio"] == 1.0
    assert result["commit_sqlite"]["add_members"] > 0
    assert result["snapshot"]["bytes_mb"] >= 0 and result["python_rss"]["peak_rss_mb"] > 0
    assert set(result["memory_previews"]) >= {"threads_1"}

    # Three copies of the demo's 200 contacts: distinct numbers and ids, the same attributes.
    db = Database.open(f"sqlite:///{sqlite}", create=False)
    with db.read() as conn:
        assert conn.execute(select(func.count(func.distinct(Contact.contact_no)))).scalar_one() == 600
        first, copy = conn.execute(
            select(Contact.country, Contact.birth_date).where(Contact.id.in_([7, 407]))
        ).all()
    assert first == copy
    db.dispose()
    assert pq.read_table(parquet / "contacts.parquet").num_rows == 600

    # A second run reuses the databases as they are.
    assert main(args) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["build"]["sqlite"] == {}
    assert (
        again["columns"]["memory"]["country eq"]["count"]["matched"]
        == result["columns"]["memory"]["country eq"]["count"]["matched"]
    )
