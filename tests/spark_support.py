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
from segcore.fields import LIST_FIELDS

IN_CI = os.environ.get("CI", "").lower() == "true"
SPARK_URL = "local[2]"

# The contact columns of a source written from a database: every stored built-in field.
_SCALAR = (
    "contact_no", "type", "company_no", "name", "email", "phone", "city", "post_code", "territory", "salesperson",
    "country", "language", "gender", "birth_date", "acquisition_date", "last_purchase_date", "acquisition_source",
    "rating", "churn_risk", "total_spent", "purchase_count", "exclude_from_segments",
)  # fmt: skip
_TYPES = {
    "birth_date": pa.date32(), "acquisition_date": pa.date32(), "last_purchase_date": pa.date32(),
    "rating": pa.int32(), "total_spent": pa.float64(), "purchase_count": pa.int64(), "exclude_from_segments": pa.bool_(),
}  # fmt: skip
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
        rows = [dict(r) for r in conn.execute(select(*[c.c[n] for n in _SCALAR], c.c.id)).mappings()]
        codes: dict[tuple[str, int], list[str]] = defaultdict(list)
        for kind, code, cid in conn.execute(
            select(ContactCode.kind, ContactCode.code, ContactCode.contact_id).order_by(ContactCode.code)
        ):
            codes[(kind, cid)].append(code)
        profile: dict[int, list[str]] = defaultdict(list)
        for q, a, cid in conn.execute(select(ProfileAnswer.questionnaire, ProfileAnswer.answer, ProfileAnswer.contact_id)):
            profile[cid].append(f"{q}={a}")
        customs = conn.execute(select(CustomField.id, CustomField.name, CustomField.type)).all()
        values: dict[tuple[int, int], Any] = {}
        for fid, cid, num, txt, day in conn.execute(
            select(CustomValue.field_id, CustomValue.contact_id, CustomValue.num, CustomValue.txt, CustomValue.day)
        ):
            values[(fid, cid)] = (num, txt, day)
        inter = conn.execute(
            select(c.c.contact_no, Interaction.date, Interaction.template, Interaction.campaign_no,
                   Interaction.segment_no, Interaction.evaluation, Interaction.salesperson)
            .join(c, c.c.id == Interaction.contact_id)
            .where(Interaction.cancelled.is_(False))
        ).all()  # fmt: skip
    columns: dict[str, pa.Array] = {}
    for name in _SCALAR:
        columns[name] = pa.array([r[name] for r in rows], _TYPES.get(name, pa.string()))
    for name in LIST_FIELDS:
        columns[name] = pa.array([codes.get((name, r["id"])) for r in rows], pa.list_(pa.string()))
    columns["profile"] = pa.array([";".join(profile[r["id"]]) or None for r in rows], pa.string())
    for fid, fname, ftype in customs:
        if ftype == "list":
            columns[fname] = pa.array([codes.get((f"cf{fid}", r["id"])) for r in rows], pa.list_(pa.string()))
            continue
        picked = []
        for r in rows:
            num, txt, day = values.get((fid, r["id"]), (None, None, None))
            picked.append(bool(num) if ftype == "boolean" and num is not None else
                          num if ftype in ("number", "boolean") else day if ftype == "date" else txt)  # fmt: skip
        columns[fname] = pa.array(picked, _CUSTOM_TYPES.get(ftype, pa.string()))
    contacts_path = folder / "contacts.parquet"
    pq.write_table(pa.table(columns), contacts_path)
    keys = ("contact_no", "date", "template", "campaign_no", "segment_no", "evaluation", "salesperson")
    itable = pa.table(
        {k: pa.array([row[i] for row in inter], pa.date32() if k == "date" else pa.string()) for i, k in enumerate(keys)}
    )
    interactions_path = folder / "interactions.parquet"
    pq.write_table(itable, interactions_path)
    return contacts_path, interactions_path


def custom_types(db: Database) -> dict[str, str]:
    """The custom fields of a database, name → type (the mapping a source of its export needs)."""
    with db.read() as conn:
        return {n: t for n, t in conn.execute(select(CustomField.name, CustomField.type))}
