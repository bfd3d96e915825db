"""AppTest support shared by the dashboard tests: a demo database per test and small helpers to drive the app.

Loaded as a pytest plugin from conftest.py, so every test module can use the `app_db` fixture.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from segcore._db import Database
from segcore._demo import load_demo
from segcore._engine import ActionRequest
from segcore._filter_tree import from_json
from segcore._preview import preview_step
from ui.format import n, signed

ROOT = Path(__file__).resolve().parent.parent
DEMO_N = 2_000
TIMEOUT = 60
BUILDER, SEGMENTS, CONTACTS, DATA = "pages/builder.py", "pages/segments.py", "pages/contacts.py", "pages/data.py"
REVIEW = "pages/review.py"


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2,000 demo contacts, generated once per session."""
    path = tmp_path_factory.mktemp("demo") / "template.db"
    db = Database.open(f"sqlite:///{path}")
    load_demo(db, DEMO_N, seed=7)
    db.dispose()
    # Fold the write-ahead log into the file, so copying the one file copies everything.
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture
def app_db(demo_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """A private copy of the demo database, which the app opens through SEGCORE_DATABASE_URL."""
    path = tmp_path / "app.db"
    shutil.copyfile(demo_template, path)
    url = f"sqlite:///{path}"
    monkeypatch.setenv("SEGCORE_DATABASE_URL", url)
    monkeypatch.chdir(ROOT)
    db = Database.open(url)
    yield db
    db.dispose()


def new_app() -> AppTest:
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def open_builder(no: str) -> AppTest:
    at = new_app()
    at.query_params["segment"] = no
    run(at)
    at.switch_page(BUILDER)
    return run(at)


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def texts(elements: Any) -> list[str]:
    return [e.value for e in elements]


def table_with(at: AppTest, column: str) -> Any:
    """The first table that has this column (the preview's samples come before the log and members)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def button(at: AppTest, label: str) -> Any:
    return next(b for b in at.button if b.label == label)


def add_condition(at: AppTest, group: str, field: str) -> None:
    at.selectbox(key=f"fb.{group}.add").set_value(field)
    run(at)


def engine_preview(db: Database, no: str, kind: str, flt: dict[str, Any]) -> Any:
    return preview_step(db, no, ActionRequest(kind, filter=from_json(flt)), dimensions=()).counts


def assert_preview_shown(at: AppTest, expected: Any) -> None:
    shown = metrics(at)
    assert shown["Members now"] == n(expected.size_before)
    assert shown["After this step"] == n(expected.size_after)
    assert shown["Added"] == (signed(expected.added) if expected.added else "0")
    assert shown["Removed"] == (signed(-expected.removed) if expected.removed else "0")


