"""`source add|list|show|remove` and `segment create --source`: stored in the application database, checked in
Spark before anything is written, refused to non-administrators, and a bad configuration is one line that changes
nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from segcore._db import Database
from segcore._models import AuditEntry, ContactSource
from segcore.auth import add_user
from segcore.cli import main
from tests import test_filter_sql as scen
from tests.spark_support import SPARK_URL, export_source


@pytest.fixture(scope="module")
def files(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """The scenario world as Parquet (contacts and interactions) and a CSV with its own header names."""
    folder = tmp_path_factory.mktemp("spark_sources")
    db = Database.open(f"sqlite:///{folder / 'world.db'}")
    scen._fill(db)
    contacts_path, interactions_path = export_source(db, folder / "parquet")
    db.dispose()
    csv = folder / "people.csv"
    csv.write_text(
        "Customer Id,Full Name,Pays,Spend,Born\n"
        "C1,Anna Müller,fr,500.5,1990-02-28\n"
        "C2,Bob Smith,DE,12,2000-02-29\n"
        "C3,Zoë Ünal,FR,,\n",
        encoding="utf-8",
    )
    mapping = folder / "people.json"
    mapping.write_text(json.dumps({"columns": {"Customer Id": "contact_no", "Full Name": "name", "Pays": "country",
                                               "Spend": "total_spent", "Born": "birth_date"}}))  # fmt: skip
    wrong = folder / "wrong.json"
    wrong.write_text(json.dumps({"columns": {"contact_no": "contact_no", "name": "rating"}}))
    missing = folder / "missing.json"
    missing.write_text(json.dumps({"columns": {"contact_no": "contact_no", "Loyalty": "loyalty"}}))
    yield {"contacts": contacts_path, "interactions": interactions_path, "csv": csv, "mapping": mapping,
           "wrong": wrong, "missing": missing}  # fmt: skip


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'app.db'}"


def run(capsys: pytest.CaptureFixture[str], url: str, *argv: str) -> tuple[int, Any, str]:
    capsys.readouterr()
    code = main(["--db", url, "--json", *argv])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def _stored(url: str) -> list[str]:
    db = Database.open(url)
    try:
        with db.read() as conn:
            return list(conn.execute(select(ContactSource.name)).scalars())
    finally:
        db.dispose()


def test_add_list_show_a_source_and_build_a_segment_over_it(
    capsys: pytest.CaptureFixture[str], url: str, files: dict[str, Path]
) -> None:
    code, data, err = run(capsys, url, "source", "add", "LAKE", "--spark", SPARK_URL, "--path", str(files["contacts"]),
                          "--interactions-path", str(files["interactions"]))  # fmt: skip
    assert (code, err) == (0, "")
    assert data["fields"]["country"] == "country" and data["interaction_fields"]["template"] == "template"

    code, data, _ = run(capsys, url, "source", "list")
    assert code == 0 and [(s["name"], s["kind"], s["format"]) for s in data] == [("LAKE", "path", "parquet")]

    code, data, _ = run(capsys, url, "source", "show", "LAKE")
    assert code == 0 and data["rows"] == len(scen.CONTACTS) and data["segments"] == []
    assert {"contact_no", "mailing_groups", "profile"} <= set(data["fields"])

    code, data, err = run(capsys, url, "segment", "create", "S1", "--description", "From the lake", "--source", "LAKE")
    assert (code, err, data["source"]) == (0, "", "LAKE")
    # Steps run in Spark; the members come back into the application database.
    code, data, err = run(capsys, url, "segment", "add", "S1", "--where", "country=FR")
    assert (code, err) == (0, "") and data["added"] == 3
    code, data, _ = run(capsys, url, "segment", "show", "S1")
    assert code == 0 and data["size"] == 3
    code, data, _ = run(capsys, url, "segment", "members", "S1")
    assert code == 0 and sorted(m if isinstance(m, str) else m["contact_no"] for m in data) == ["K1", "P1", "P6"]

    # In use: refused, named, nothing removed.
    code, data, err = run(capsys, url, "source", "remove", "LAKE")
    assert code == 1 and data is None
    assert err == "error: source LAKE is used by segment S1\n"
    assert _stored(url) == ["LAKE"]

    # The plain text form too.
    capsys.readouterr()
    assert main(["--db", url, "source", "show", "LAKE"]) == 0
    text = capsys.readouterr().out
    assert f"{len(scen.CONTACTS)} contacts" in text and "segments: S1" in text

    db = Database.open(url)
    with db.read() as conn:
        kinds = list(conn.execute(select(AuditEntry.kind).order_by(AuditEntry.id)).scalars())
    db.dispose()
    assert kinds[:2] == ["source.add", "segment.create"]


def test_a_csv_source_with_a_mapping_file_and_removal(
    capsys: pytest.CaptureFixture[str], url: str, files: dict[str, Path]
) -> None:
    code, data, err = run(capsys, url, "source", "add", "PEOPLE", "--spark", SPARK_URL, "--path", str(files["csv"]),
                          "--format", "csv", "--mapping", str(files["mapping"]))  # fmt: skip
    assert (code, err) == (0, ""), err
    assert data["fields"] == {"contact_no": "Customer Id", "name": "Full Name", "country": "Pays",
                              "total_spent": "Spend", "birth_date": "Born"}  # fmt: skip
    code, data, _ = run(capsys, url, "source", "show", "PEOPLE")
    assert (code, data["rows"], data["format"]) == (0, 3, "csv")

    from segcore._filter_tree import from_json
    from segcore.spark import open_stored_source

    db = Database.open(url)
    source = open_stored_source(db, "PEOPLE")
    db.dispose()
    assert source.matched_ids(from_json({"field": "country", "op": "eq", "value": "FR"})) == ["C1", "C3"]
    assert source.matched_ids(from_json({"field": "total_spent", "op": "is_empty"})) == ["C3"]

    code, data, err = run(capsys, url, "source", "remove", "PEOPLE")
    assert (code, err, data) == (0, "", {"removed": "PEOPLE"})
    assert _stored(url) == []


BAD = [
    pytest.param(["--table", "no_such_table"], 1, "source BAD: Spark has no table 'no_such_table'", id="missing-table"),
    pytest.param(["--path", "/nonexistent/contacts.parquet"], 1, "source BAD: no parquet data at /nonexistent",
                 id="missing-path"),
    pytest.param(["--path", "{contacts}", "--mapping", "{missing}"], 1,
                 "source BAD: column 'Loyalty' (mapped to loyalty) is not in parquet", id="missing-column"),
    pytest.param(["--path", "{contacts}", "--mapping", "{wrong}"], 1,
                 "source BAD: column 'name' is string, but rating needs a number", id="wrong-type"),
    pytest.param(["--path", "{contacts}", "--spark", "sc://127.0.0.1:1"], 1,
                 "cannot reach the Spark Connect server 127.0.0.1:1", id="unreachable"),
    pytest.param(["--path", "{contacts}", "--spark", "yarn"], 2, "'yarn' is not a Spark URL", id="bad-url"),
    pytest.param(["--table", "t", "--format", "csv"], 2, "--format goes with --path", id="format-without-path"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "exit_code", "message"), BAD)
def test_a_bad_configuration_is_one_line_and_changes_nothing(
    capsys: pytest.CaptureFixture[str], url: str, files: dict[str, Path], args: list[str], exit_code: int,
    message: str,
) -> None:
    argv = [a.format(**{k: str(v) for k, v in files.items()}) for a in args]
    if "--spark" not in argv:
        argv += ["--spark", SPARK_URL]
    code, data, err = run(capsys, url, "source", "add", "BAD", *argv)
    assert code == exit_code and data is None
    assert err.startswith(f"error: {message}") and err.count("\n") == 1, err
    assert _stored(url) == []


def test_a_segment_over_an_unknown_source_is_refused(capsys: pytest.CaptureFixture[str], url: str) -> None:
    code, _, err = run(capsys, url, "segment", "create", "S1", "--description", "x", "--source", "NOPE")
    assert (code, err) == (1, "error: no source 'NOPE' (see: source list)\n")


def test_only_an_administrator_adds_or_removes_a_source(
    capsys: pytest.CaptureFixture[str], url: str, files: dict[str, Path]
) -> None:
    db = Database.open(url)
    add_user(db, "ada", "admin", user="ada")
    add_user(db, "mark", "marketer", user="ada")
    db.dispose()
    add = ["source", "add", "LAKE", "--spark", SPARK_URL, "--path", str(files["contacts"])]
    capsys.readouterr()
    code = main(["--db", url, "--user", "mark", *add])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "mark" in err
    assert _stored(url) == []
    assert main(["--db", url, "--user", "ada", *add]) == 0
    capsys.readouterr()
    assert main(["--db", url, "--user", "mark", "source", "remove", "LAKE"]) == 1
    assert _stored(url) == ["LAKE"]
    # Anyone may look.
    assert main(["--db", url, "--user", "mark", "source", "list"]) == 0


# ------------------------------------------------------------------------------------- the session's own checks


@pytest.mark.parametrize(
    ("url", "parsed"),
    [("local", (True, None, "", 0)), ("local[2]", (True, 2, "", 0)), ("local[*]", (True, None, "", 0)),
     ("sc://spark.example.com", (False, None, "spark.example.com", 15002)), ("sc://10.0.0.5:443", (False, None, "10.0.0.5", 443))],
)  # fmt: skip
def test_spark_urls(url: str, parsed: tuple[Any, ...]) -> None:
    from segcore.spark import parse_spark_url

    u = parse_spark_url(url)
    assert (u.local, u.cores, u.host, u.port) == parsed


@pytest.mark.parametrize("url", ["yarn", "local[0]", "spark://h:7077", "sc://", ""])
def test_a_malformed_spark_url_is_a_usage_error(url: str) -> None:
    from segcore import UsageError
    from segcore.spark import parse_spark_url

    with pytest.raises(UsageError) as err:
        parse_spark_url(url)
    assert err.value.exit_code == 2 and "\n" not in str(err.value)


def test_without_pyspark_or_java_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from segcore.spark import SparkUnavailable, spark_session
    from segcore.spark import session as session_module

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyspark" else real(name, *a))
    with pytest.raises(SparkUnavailable, match=r"^pyspark is not installed: pip install 'pyspark\[connect\]>=4.0'$"):
        spark_session("local[3]")
    monkeypatch.setattr(importlib.util, "find_spec", real)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(session_module.shutil, "which", lambda name: None)
    with pytest.raises(SparkUnavailable, match="needs Java 17 or later.*openjdk-17-jre-headless"):
        spark_session("local[3]")


# ------------------------------------------------------------------------------ a source's own custom fields


def test_columns_that_are_no_built_in_field_become_typed_custom_fields(spark: Any, tmp_path: Path) -> None:
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    from segcore import UsageError
    from segcore._filter_tree import from_json
    from segcore.spark import Location, SourceSpec, open_source

    D = dt.date
    pq.write_table(pa.table({
        "Customer Id": ["A", "B", "C", "D"],
        "Name": ["Ann", "Bob", "Cid", "Dee"],
        "Loyalty Points": pa.array([150, 20, None, 100], pa.int64()),
        "VIP": pa.array([True, False, None, True]),
        "Signup": pa.array([D(2023, 5, 1), D(2024, 2, 1), None, D(2022, 1, 9)], pa.date32()),
        "Tier": ["Gold", "sílver", "", None],
        "Tags": pa.array([["a", "b"], ["B"], [], None], pa.list_(pa.string())),
        "Blob": pa.array([b"x", b"y", b"z", b"w"], pa.binary()),  # no field type fits: left out
    }), tmp_path / "c.parquet")  # fmt: skip
    source = open_source(SourceSpec("CUSTOM", SPARK_URL, Location("path", str(tmp_path / "c.parquet"), "parquet")))
    assert source.describe()["custom_fields"] == {
        "loyalty_points": "number", "vip": "boolean", "signup": "date", "tier": "text", "tags": "list",
    }  # fmt: skip
    assert "Blob" not in source.describe()["fields"].values()

    def ids(obj: dict[str, Any]) -> list[str]:
        return source.matched_ids(from_json(obj, source.fields))

    assert ids({"field": "loyalty_points", "op": "ge", "value": 100}) == ["A", "D"]
    assert ids({"field": "loyalty_points", "op": "ne", "value": 20}) == ["A", "C", "D"]
    assert ids({"field": "vip", "op": "is_true"}) == ["A", "D"]
    assert ids({"field": "vip", "op": "is_false"}) == ["B", "C"]
    assert ids({"field": "signup", "op": "lt", "value": "2024-01-01"}) == ["A", "D"]
    assert ids({"field": "tier", "op": "eq", "value": "GOLD"}) == ["A"]
    assert ids({"field": "tier", "op": "starts_with", "value": "silv"}) == ["B"]
    assert ids({"field": "tier", "op": "is_empty"}) == ["C", "D"]
    assert ids({"field": "tags", "op": "has_any", "value": ["B"]}) == ["A", "B"]
    assert ids({"field": "tags", "op": "has_none", "value": ["A"]}) == ["B", "C", "D"]
    charts = source.distributions(dimensions=["tags", "country"])
    assert charts["tags"].counts == {"B": 2, "A": 1, "(none)": 2}
    assert charts["country"].counts == {"(none)": 4}
    # The source's own custom fields chart like built-in ones (number bands, years, yes/no).
    charts = source.distributions(dimensions=["loyalty_points", "signup", "vip"])
    assert charts["loyalty_points"].counts == {"10–100": 1, "100–1,000": 2, "(none)": 1}
    assert charts["signup"].counts == {"2022": 1, "2023": 1, "2024": 1, "(none)": 1}
    assert charts["vip"].counts == {"yes": 2, "no": 1, "(none)": 1}
    with pytest.raises(UsageError, match="'tier' is not a chart dimension"):
        source.distributions(dimensions=["tier"])
