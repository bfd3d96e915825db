"""The Spark fixtures: ONE local Spark session for the whole test run, and sources written from a database.

Loaded from tests/conftest.py (`pytest_plugins`). Without pyspark or Java the Spark tests are skipped on a
developer's machine and FAIL under CI=true (scripts/test installs both there).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from segcore._db import Database
from segcore._models import Contact, ContactCode, CustomField, CustomValue, Interaction, ProfileAnswer
from segcore.spark.export import CONTACT_COLUMNS, INTERACTION_COLUMNS, contacts_table, interactions_table

IN_CI = os.environ.get("CI", "").lower() == "true"
SPARK_URL = "local[2]"

_CUSTOM_TYPES = {"number": pa.float64(), "boolean": pa.bool_(), "date": pa.date32()}


def _missing(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true", pytrace=False)
    pytest.skip(f"{what} not available on this machine")


def spark_available() -> None:
    """Skip (fail under CI=true) unless pyspark and Java are here."""
    if importlib.util.find_spec("pyspark") is None:
        _missing("pyspark")
    home = os.environ.get("JAVA_HOME")
    if not (home and Path(home, "bin", "java").exists()) and shutil.which("java") is None:
        _missing("Java (openjdk-17-jre-headless)")


@pytest.fixture(scope="session")
def spark() -> Any:
    """The one local Spark session of the test run (local[2], 1 GB driver), shared by every Spark test."""
    spark_available()
    from segcore.spark.session import spark_session

    return spark_session(SPARK_URL)


def export_source(db: Database, folder: Path) -> tuple[Path, Path]:
    """Write a database's contacts (one wide row each: list fields as arrays, profile as Q=A items, custom fields as
    columns) and its interactions (cancelled ones left out: they never count) as Parquet; their two paths."""
    folder.mkdir(parents=True, exist_ok=True)
    c = Contact.__table__
    with db.read() as conn:
        rows = [dict(r) for r in conn.execute(select(*[c.c[n] for n in CONTACT_COLUMNS], c.c.id)).mappings()]
        lists: dict[tuple[str, int], list[str]] = defaultdict(list)
        for kind, code, cid in conn.execute(
            select(ContactCode.kind, ContactCode.code, ContactCode.contact_id).order_by(ContactCode.code)
        ):
            lists[(kind, cid)].append(code)
        for q, a, cid in conn.execute(select(ProfileAnswer.questionnaire, ProfileAnswer.answer, ProfileAnswer.contact_id)):
            lists[("profile", cid)].append(f"{q}={a}")
        customs = conn.execute(select(CustomField.id, CustomField.name, CustomField.type)).all()
        values: dict[tuple[int, int], Any] = {}
        for fid, cid, num, txt, day in conn.execute(
            select(CustomValue.field_id, CustomValue.contact_id, CustomValue.num, CustomValue.txt, CustomValue.day)
        ):
            values[(fid, cid)] = (num, txt, day)
        inter = conn.execute(
            select(c.c.contact_no, *[getattr(Interaction, k) for k in INTERACTION_COLUMNS])
            .join(c, c.c.id == Interaction.contact_id)
            .where(Interaction.cancelled.is_(False))
        ).all()
    # The built-in columns as segcore.spark.export writes them (as the scale benchmark does), then the custom ones.
    table = contacts_table(rows, lists)
    for fid, fname, ftype in customs:
        if ftype == "list":
            column = pa.array([lists.get((f"cf{fid}", r["id"])) for r in rows], pa.list_(pa.string()))
            table = table.append_column(fname, column)
            continue
        picked = []
        for r in rows:
            num, txt, day = values.get((fid, r["id"]), (None, None, None))
            picked.append(bool(num) if ftype == "boolean" and num is not None else
                          num if ftype in ("number", "boolean") else day if ftype == "date" else txt)  # fmt: skip
        table = table.append_column(fname, pa.array(picked, _CUSTOM_TYPES.get(ftype, pa.string())))
    contacts_path = folder / "contacts.parquet"
    pq.write_table(table, contacts_path)
    interactions_path = folder / "interactions.parquet"
    pq.write_table(interactions_table(inter), interactions_path)
    return contacts_path, interactions_path


def custom_types(db: Database) -> dict[str, str]:
    """The custom fields of a database, name → type (the mapping a source of its export needs)."""
    with db.read() as conn:
        return {n: t for n, t in conn.execute(select(CustomField.name, CustomField.type))}
